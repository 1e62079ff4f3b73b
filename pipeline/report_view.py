"""The report's typed view: every stage record of every variant, read into one dict per variant (`gather`), and
the figures derived from them (latency tables, training speed, the ranking accuracy, the Pareto front, the 95%
intervals). No text is formatted here: report_md.py renders this view as markdown, plots.py draws it.

A missing stage output is None in its fields (the markdown shows "n/a"). No torch import.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Optional

from . import paths
from .params import BENCH_RESULT_ORDER, Params
from .records import BenchReport, ExportReport, Metrics, Peak, TrainSummary

PRECISION_ORDER = ("fp32", "fp16", "bf16", "int8")


# ---------------------------------------------------------------------------------------------------------
# reading the stage outputs
# ---------------------------------------------------------------------------------------------------------
def _read_curves(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        rec = {}
        for k, v in row.items():
            try:
                rec[k] = float(v)
            except (TypeError, ValueError):
                rec[k] = None
        rows.append(rec)
    return rows


def prepared_meta(dataset: str) -> Optional[dict]:
    path = paths.prepared(dataset)
    if not path.exists():
        return None
    try:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception:  # a corrupt file is prepare's business; the report just does without
        return None


def num(x: Any) -> Optional[float]:
    if isinstance(x, bool) or x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def backend_key(backend: str, precision: str) -> str:
    """Latency keys in summary.json: 'ort_cpu' for fp32, 'ort_cpu_fp16' for other precisions."""
    return backend if precision == "fp32" else f"{backend}_{precision}"


def key_order(key: str) -> tuple:
    for i, b in enumerate(BENCH_RESULT_ORDER):
        for j, prec in enumerate(PRECISION_ORDER):
            if key == backend_key(b, prec):
                return (i, j, key)
    return (len(BENCH_RESULT_ORDER), 0, key)


LATENCY_FIELDS = ("p50_ms", "p90_ms", "p99_ms", "images_per_s")
# how far each backend is from PyTorch eager (same run, same batch) and from the machine's limit (machine.py's floor)
LIMIT_FIELDS = ("speedup_vs_torch_eager", "floor_ms", "fraction_of_peak", "first_inference_ms")


def latency_table(bench: Optional[BenchReport], fields: tuple[str, ...] = LATENCY_FIELDS) -> dict[str, dict[str, dict]]:
    """{BACKEND_KEY: {BATCH: {field: value}}} from a bench record (default: p50/p90/p99 and images/s)."""
    out: dict[str, dict[str, dict]] = {}
    for backend, per_prec in (bench.results if bench else {}).items():
        for prec, per_batch in per_prec.items():
            rows = {b: {k: num(getattr(r, k)) for k in fields}
                    for b, r in sorted(per_batch.items(), key=lambda kv: int(kv[0]))}
            if rows:
                out[backend_key(backend, prec)] = rows
    return dict(sorted(out.items(), key=lambda kv: key_order(kv[0])))


def _fastest_batch1(lat: dict[str, dict[str, dict]]) -> Optional[dict]:
    """The backend with the lowest p50 at the smallest batch size measured."""
    fastest = None
    for key, rows in lat.items():
        b0 = min(rows, key=int)
        v = rows[b0]["p50_ms"]
        if v is not None and (fastest is None or (int(b0), v) < (int(fastest["batch"]), fastest["p50_ms"])):
            fastest = {"backend": key, "batch": b0, "p50_ms": v}
    return fastest


def gather(p: Params) -> dict:
    """Every variant's figures from the stage outputs (None where an output is missing)."""
    variants: dict[str, dict] = {}
    for name, dataset in p.variants.items():
        tr = TrainSummary.read_optional(paths.train_summary(name), "training summary")
        me = Metrics.read_optional(paths.metrics(name), "metrics file")
        ex = ExportReport.read_optional(paths.export_report(name), "export report")
        be = BenchReport.read_optional(paths.bench(name), "benchmark")
        ref = p.nets[name].seed_reference or {}
        curves = _read_curves(paths.train_log(name))
        flops = be.model.flops_per_image if be else None
        lat = latency_table(be)
        fp16_acc = ex.fp16.accuracy if ex else None
        i8 = ex.int8 if ex else None
        variants[name] = {
            "dataset": dataset,
            "arch": p.nets[name].arch,
            "params": tr.params if tr else (be.model.params if be else None),
            "flops_per_image": flops,
            **{k: num(getattr(me, k)) if me else None for k in ("top1", "top5", "top1_10crop", "top5_10crop")},
            "crops": me.crops if me else None,
            "val_top1": num(me.val_top1 if me and me.val_top1 is not None else (tr.val_top1 if tr else None)),
            "n_test": me.n_test if me else None,
            "seed_reference": {"doc": ref.get("doc"), "top1": num(ref.get("top1")), "params": ref.get("params"),
                               "n_test": ref.get("n_test"), "note": ref.get("note"),
                               "comparable": ref.get("comparable", True) is not False,
                               "protocol": ref.get("protocol")},
            "seed_protocol": me.seed_protocol.model_dump() if me and me.seed_protocol else None,
            "git_commit": {"train": tr.git_commit if tr else None, "evaluate": me.git_commit if me else None},
            "train_seconds": tr.train_seconds if tr else None,
            "train_device": tr.train_device if tr else None,
            "epochs": tr.epochs if tr else None,
            "train_speed": train_speed(tr, curves, flops, be.peak if be else None),
            "onnx_bytes": ex.onnx_bytes if ex else None,
            "onnx": str(paths.onnx(name)),
            "onnx_top1": num(ex.accuracy.onnx.top1) if ex else None,
            "onnx_fp16_bytes": ex.fp16.bytes if ex else None,
            "parity_max_abs_diff": num(ex.parity.max_abs_diff) if ex else None,
            "fp16_max_abs_diff": num(ex.fp16.max_abs_diff) if ex else None,
            "fp16_top1": num(fp16_acc.top1) if fp16_acc else None,
            "fp16_n_test": fp16_acc.n_test if fp16_acc else None,
            "int8": None if i8 is None else {
                "bytes": i8.bytes, "top1": num(i8.accuracy.top1), "top1_10crop": num(i8.accuracy.top1_10crop),
                "n_test": i8.accuracy.n_test, "drop_pp": num(i8.drop_pp.top1), "drop_10crop_pp": num(i8.drop_pp.top1_10crop),
                "max_drop_pp": i8.max_drop_pp, "within_max_drop": i8.within_max_drop,
                "calibration": f"{i8.calibration.images:,} {i8.calibration.split} images, {i8.calibration.method}"},
            "latency": lat,
            "latency_vs_limits": latency_table(be, LIMIT_FIELDS),
            "fastest_batch1": _fastest_batch1(lat),
            "bench_machine": be.machine.model_dump(mode="json") if be else None,
            "skipped": [s.model_dump() for s in be.skipped] if be else [],
            "quick": any(r.quick for r in (tr, me, be) if r is not None),
            "have": {"train": tr is not None, "metrics": me is not None, "export": ex is not None, "bench": be is not None},
            "commands": {stage: rec.command if rec else f"netpipe {stage} {name}"
                         for stage, rec in (("train", tr), ("evaluate", me), ("export", ex), ("bench", be))},
            "_curves": curves,
            "_confusion": me.confusion if me else None,
            "_deviations": ref.get("deviations") or [],  # params text, for the report only (not summary.json)
        }
    return variants


TRAIN_FLOPS_METHOD = ("training FLOP/s = 3 x forward FLOPs per image (forward + backward ~ 2x forward) x images/s "
                      "over the epochs (validation included); fraction_of_peak = that / the matmul peak `netpipe bench` "
                      "measured on the same device, in the precision training ran in (bf16 autocast on CUDA, else fp32)")


def train_speed(tr: Optional[TrainSummary], curves: list[dict], flops: Optional[float], peak: Optional[Peak]) -> dict:
    """Epoch time, images/s, achieved training FLOP/s and its fraction of the device's measured peak."""
    out: dict[str, Any] = {"epoch_seconds": None, "images_per_s": None, "flops_per_s": None, "fraction_of_peak": None,
                           "peak_flops_per_s": None, "precision": None, "uses": None, "why": None}
    if not tr:
        return out
    secs = [r["seconds"] for r in curves if isinstance(r.get("seconds"), (int, float))]
    out["epoch_seconds"] = sum(secs) / len(secs) if secs else None
    out["images_per_s"] = ips = num(tr.images_per_s)
    cuda = not tr.train_device.startswith("cpu")
    out["precision"] = "bf16" if tr.amp_bf16 else "fp32"
    out["uses"] = " + ".join((["bf16 autocast"] if tr.amp_bf16 else ["fp32"])
                             + (["channels-last"] if tr.channels_last else []) + (["compile"] if tr.compiled else []))
    out["why"] = tr.speed.reason
    if ips is None or not flops:
        return out
    out["flops_per_s"] = 3.0 * float(flops) * ips
    d = peak and (peak.cuda if cuda else peak.cpu)
    same = d is not None and (d.device == tr.train_device or (not cuda and d.device.startswith("cpu")))
    entry = getattr(d, out["precision"]) if same else None
    if entry is not None:
        out["peak_flops_per_s"] = entry.matmul_flops_per_s
        out["fraction_of_peak"] = out["flops_per_s"] / entry.matmul_flops_per_s
    return out


def accuracy(v: dict) -> tuple[Optional[float], str]:
    """The accuracy that ranks variants: multi-crop test top-1, else single-crop (and which one it was)."""
    if v["top1_10crop"] is not None:
        return v["top1_10crop"], f"{v['crops']}-crop"
    if v["top1"] is not None:
        return v["top1"], "single-crop"
    return None, ""


def pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Names on the front of (latency: lower is better, accuracy: higher is better), fastest first."""
    front = []
    for name, lat, acc in points:
        dominated = any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for n2, l2, a2 in points if n2 != name)
        if not dominated:
            front.append((lat, -acc, name))
    return [n for _, _, n in sorted(front)]


def rank(variants: dict, datasets: list[str]) -> tuple[dict, dict, dict]:
    """Per dataset: the best variant, what it was ranked on (multi-crop where every candidate has it, else
    single-crop for all, never a mix) and the accuracy-latency Pareto front."""
    best: dict[str, str] = {}
    best_by: dict[str, str] = {}
    fronts: dict[str, list[str]] = {}
    for ds in datasets:
        cands = [(accuracy(v), n) for n, v in variants.items() if v["dataset"] == ds and accuracy(v)[0] is not None]
        if cands:
            if all(variants[n]["top1_10crop"] is not None for _, n in cands):
                key, by = "top1_10crop", f"{variants[cands[0][1]]['crops']}-crop"
            else:
                key, by = "top1", "single-crop"
            ranked = [(variants[n][key], n) for _, n in cands if variants[n][key] is not None]
            if ranked:
                best[ds] = max(ranked, key=lambda t: t[0])[1]
                best_by[ds] = by
        pts = [(n, v["fastest_batch1"]["p50_ms"], accuracy(v)[0]) for n, v in variants.items()
               if v["dataset"] == ds and v["fastest_batch1"] and accuracy(v)[0] is not None]
        fronts[ds] = pareto(pts)
    return best, best_by, fronts


def describe_data(p: Params, dataset: str, meta: Optional[dict]) -> dict:
    """What a dataset's figures were measured on, in words and fields (from params and the prepared meta)."""
    ds = p.data[dataset]
    fmt = p.dataset_format(dataset)
    path = ds.path or (meta or {}).get("path")
    fname = Path(path).name if path else None
    official = {"cifar10": "CIFAR-10 (cifar-10-python.tar.gz)", "mnist": "MNIST (the four idx files)"}
    if ds.source == "download":
        text = f"the official {official.get(fmt, fmt)}, downloaded through torchvision (md5-checked)"
    elif ds.source == "local":
        text = f"the official {official.get(fmt, fmt)} read from {path}"
    else:
        lower = (fname or "").lower()
        kind = "JPEG" if ("jpeg" in lower or "jpg" in lower) else "image-file"
        guess = {"cifar": "CIFAR-10", "mnist": "MNIST"}
        named = next((v for k, v in guess.items() if k in lower or k in dataset.lower()), dataset)
        text = (f"the {kind} copy of {named} ({fname}), image folders decoded by PIL: not the original files, so "
                f"accuracies are not directly comparable with figures measured on them")
    out = {"dataset": dataset, "source": ds.source, "format": fmt, "path": path, "description": text,
           "val_size": ds.val_size}
    if meta:
        out["prepared"] = {k: meta.get(k) for k in ("counts", "channels", "image_size", "num_classes", "md5",
                                                     "skipped_bad_images", "seed") if k in meta}
    return out


# ---------------------------------------------------------------------------------------------------------
# accuracy intervals
# ---------------------------------------------------------------------------------------------------------
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson(p: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy `p` measured on `n` images."""
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def diff_interval(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """95% interval of p1 - p2 for two independent accuracies: Newcombe's hybrid score interval (his method 10),
    built from the two Wilson intervals."""
    l1, u1 = wilson(p1, n1)
    l2, u2 = wilson(p2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def verdict(interval: Optional[tuple[float, float]]) -> str:
    """Whether our accuracy differs from the seed's beyond what the two test sets' sizes allow, from the 95% interval
    of the difference (diff_interval; None where the seed's test-image count is not stated)."""
    if interval is None:
        return "no interval (the seed's test-image count is not stated)"
    lo, hi = interval
    return "within noise" if lo <= 0 <= hi else "above the seed" if lo > 0 else "below the seed"
