"""`netpipe report`: one report from every stage's outputs (never a number typed in).

Reads, for each variant in params `variants`:
  artifacts/train/VARIANT.json|csv   training summary and per-epoch curves (netpipe train)
  artifacts/metrics/VARIANT.json     test accuracy, single- and multi-crop, confusion matrix (netpipe evaluate)
  artifacts/export/VARIANT.json      ONNX size and parity (netpipe export)
  artifacts/bench/VARIANT.json       latency and throughput per backend (netpipe bench)
  data/prepared/DATASET.npz          only its `meta` (what the data was), when present
Writes artifacts/report.md, artifacts/summary.json and artifacts/plots/*.png, each atomically.

A missing stage output shows as "n/a" in its cells; a variant without metrics is listed as missing.
No torch import: the report runs in seconds.

The work is in three modules, one per step (stage records -> a typed view -> markdown and figures):
  report_view.py   `gather`: every stage record read into one dict per variant, and the figures derived from them
  report_md.py     `render_markdown`: artifacts/report.md, one function per section, and the cells' formats
  plots.py         `draw_report`: artifacts/plots/*.png and artifacts/confusion/VARIANT.png
This module is the stage: `run` writes the three outputs.
"""

from __future__ import annotations

import datetime as _dt

from . import fileio, paths, plots
from .params import Params
from .report_md import _md_escape as _md_escape, render_markdown  # _md_escape: tests/test_seed_deviations.py
from .report_view import describe_data, gather, prepared_meta, rank


def run(p: Params) -> dict:
    """Write artifacts/report.md, artifacts/summary.json and artifacts/plots/*.png; return the summary.

    summary.json: {"variants": {NAME: {dataset, arch, params, flops_per_image, top1, top5, top1_10crop,
    top5_10crop, crops, val_top1, n_test, seed_reference, train_seconds, train_device, epochs, onnx_bytes, onnx,
    onnx_top1, latency: {BACKEND[_PRECISION]: {BATCH: {p50_ms, p90_ms, p99_ms, images_per_s}}}, fastest_batch1,
    quick, have: {train, metrics, export, bench}, commands}}, "missing": [NAME...], "best": {DATASET: NAME},
    "best_by": {DATASET: "10-crop"|"5-crop"|"single-crop"}, "pareto": {DATASET: [NAME...]}, "data": {DATASET:
    {source, format, path, description, val_size, prepared}}, "quick", "machine", "git_commit", "plots", "generated"}
    Accuracies are fractions; latencies ms; throughput images/s.
    """
    variants = gather(p)
    quick = p.quick.enabled or any(v["quick"] for v in variants.values())
    missing = [n for n, v in variants.items() if not v["have"]["metrics"]]
    datasets = sorted(set(p.variants.values()))
    data = {ds: describe_data(p, ds, prepared_meta(ds)) for ds in datasets}

    best, best_by, fronts = rank(variants, datasets)
    machines = [v["bench_machine"] for v in variants.values() if v["bench_machine"]]
    machine = machines[0] if machines else None
    commit = fileio.git_commit()
    figures = plots.draw_report(variants, best, fronts, quick, machine)

    public = {n: {k: val for k, val in v.items() if not k.startswith("_") and k not in ("bench_machine", "skipped")}
              for n, v in variants.items()}
    summary = {
        "variants": public,
        "missing": missing,
        "best": best,
        "best_by": best_by,
        "pareto": fronts,
        "data": data,
        "quick": quick,
        "machine": machine,
        "git_commit": commit,
        "plots": figures,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "netpipe report",
    }
    fileio.write_text(paths.REPORT, render_markdown(p, variants, summary))
    fileio.write_json(paths.SUMMARY, summary)
    return summary

