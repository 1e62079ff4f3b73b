"""The report's markdown: artifacts/report.md rendered from the typed view (report_view.gather), one function per
section (`render_markdown` lists them in order), and the cell formats every table uses (_pct, _ms, _bytes, ...).
Nothing is computed from the stage records here: every figure comes from the view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

from . import paths
from .params import Params
from .report_view import TRAIN_FLOPS_METHOD, accuracy, backend_key, diff_interval, key_order, num, verdict, wilson

NA = "n/a"  # the cell of a figure the stage outputs do not have


# ---------------------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------------------
def _pct(x: Optional[float], digits: int = 2) -> str:
    return NA if x is None else f"{100 * x:.{digits}f}%"


def _signed_pp(x: Optional[float]) -> str:
    return NA if x is None else f"{100 * x:+.2f} pp"


def _seed_interval(ours: float, n: int, seed: float, n_seed: Optional[int]) -> Optional[tuple[float, float]]:
    return diff_interval(ours, n, seed, n_seed) if n_seed else None


def _vs_seed(ours: Optional[float], n: Optional[int], seed: Optional[float], n_seed: Optional[int]) -> str:
    if ours is None or seed is None or not n:
        return NA
    return f"{_signed_pp(ours - seed)} ({verdict(_seed_interval(ours, n, seed, n_seed))})"


def _count(x: Any) -> str:
    x = num(x)
    if x is None:
        return NA
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def _bytes(x: Any) -> str:
    x = num(x)
    if x is None:
        return NA
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= div:
            return f"{x / div:.1f} {unit}"
    return f"{x:.0f} B"


def _seconds(x: Optional[float]) -> str:
    if x is None:
        return NA
    if x >= 3600:
        return f"{x / 3600:.2f} h"
    if x >= 60:
        return f"{x / 60:.1f} min"
    return f"{x:.1f} s"


def _ms(x: Optional[float]) -> str:
    if x is None:
        return NA
    return f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms"


def _md_escape(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _uses(ts: dict) -> str:
    """What training used and why (pipeline/speed.py's decision), for the training-speed table."""
    uses = ts.get("uses") or ts.get("precision") or NA
    return f"{uses} ({ts['why']})" if ts.get("why") else uses


# ---------------------------------------------------------------------------------------------------------
# the sections
# ---------------------------------------------------------------------------------------------------------
def _machine_short(m: Optional[dict]) -> str:
    if not m:
        return NA
    return str(m.get("gpu") or f"CPU {m.get('cpu')} ({m.get('cpu_cores')} cores)")


def _limits_section(variants: dict) -> list[str]:
    """Each backend against PyTorch eager measured in the same run, and against the floor (the model's FLOPs and
    bytes over the machine's measured peaks), at batch 1 and at the largest batch."""
    def ratio(x: Optional[float]) -> str:
        return NA if x is None else f"{x:.2f}x"

    rows = []
    for name, v in variants.items():
        for key, per in v["latency_vs_limits"].items():
            lat = v["latency"].get(key) or {}
            b1, bmax = min(per, key=int), max(per, key=int)
            one, big = per[b1], per[bmax]
            rows.append([name, key, _machine_short(v["bench_machine"]), b1, _ms((lat.get(b1) or {}).get("p50_ms")),
                         ratio(one["speedup_vs_torch_eager"]), _ms(one["floor_ms"]), _pct(one["fraction_of_peak"], 1),
                         bmax, ratio(big["speedup_vs_torch_eager"]), _pct(big["fraction_of_peak"], 1),
                         _ms(one["first_inference_ms"])])
    if not rows:
        return []
    return ["### Latency against PyTorch eager and the machine's limit", "", _table(
        ["variant", "backend", "machine", "batch", "p50", "x eager", "floor", "% of floor", "largest batch",
         "x eager", "% of floor", "first inference (batch 1)"], rows), "",
        "x eager: PyTorch eager fp32's p50 over the backend's, same run and batch. floor: the model's FLOPs over the "
        "measured matmul peak or its weights and input/output bytes over the measured copy bandwidth, whichever is "
        "longer; % of floor = floor / p50 (100% = at the machine's limit). First inference includes compilation, "
        "graph capture or autotuning (artifacts/bench/VARIANT.json).", ""]


def render_markdown(p: Params, variants: dict, s: dict) -> str:
    """artifacts/report.md: one function per section, in this order."""
    at = f" at git commit `{s['git_commit']}`" if s["git_commit"] else ""
    out = _md_head(s, at) + _md_data(s) + _md_results(variants, s) + _md_best(variants, s) + _md_plots(s, at)
    out += _md_machine(variants, s) + _md_provenance(variants, at)
    return "\n".join(out)


def _md_head(s: dict, at: str) -> list[str]:
    out = ["# netpipe report", ""]
    if s["quick"]:
        out += ["> **QUICK CHECK RUN (quick.enabled: true): every model trained for a few steps only. "
                "THE ACCURACIES BELOW ARE MEANINGLESS**; this run checks that every stage works, nothing more.", ""]
    return out + [f"Generated {s['generated']} by `netpipe report`{at} from the stage outputs in artifacts/ "
                  "(no figure in this file is typed in).", ""]


def _md_data(s: dict) -> list[str]:
    out = ["## Data", ""]
    for ds, d in s["data"].items():
        counts = (d.get("prepared") or {}).get("counts")
        cnt = (f": {counts.get('train')} train / {counts.get('val')} validation / {counts.get('test')} test images"
               if isinstance(counts, dict) else "")
        out.append(f"- **{ds}**: {d['description']}{cnt} (params `data.{ds}`: source `{d['source']}`"
                   + (f", path `{d['path']}`" if d.get("path") else "") + ").")
    return out + ["", "Test accuracies are on the dataset's test split; validation accuracy on the held-out part of "
                  "the training set (the checkpoint is the epoch with the best validation accuracy).", ""]


def _params_cell(ours: Optional[int], doc: Optional[int]) -> str:
    """Our parameter count, and the seed document's beside it where it prints one (002's model.summary())."""
    if doc is None:
        return _count(ours)
    return f"{_count(ours)} (doc {doc:,}" + (": same)" if ours == doc else ")")


def _results_row(name: str, v: dict) -> list[str]:
    ref = v["seed_reference"]
    seed = ref.get("top1")
    seed_txt = NA if seed is None else f"{100 * seed:.2f}% ({ref.get('doc')})"
    if seed is not None and not ref.get("comparable", True):
        seed_txt, seed = f"{seed_txt}, another setup: not compared", None
    multi = _pct(v["top1_10crop"]) + (f" ({v['crops']}-crop)" if v["top1_10crop"] is not None else "")
    return [name + ("" if v["have"]["metrics"] else " (not trained here (GPU recipe))" if not v["have"]["train"]
                    else " (missing: no metrics)"), v["dataset"], _params_cell(v["params"], ref.get("params")),
            _pct(v["top1"]), multi, seed_txt,
            f"{_vs_seed(v['top1'], v['n_test'], seed, ref.get('n_test'))} / "
            f"{_vs_seed(v['top1_10crop'], v['n_test'], seed, ref.get('n_test'))}", _pct(v["val_top1"]),
            _seconds(v["train_seconds"]), v["train_device"] or NA]


def _speed_row(name: str, v: dict, big: Optional[int]) -> list[str]:
    """Size and the fastest backend: the lowest p50 at batch 1 and the most images/s at the largest batch, over
    every backend and precision the bench measured (each one's figures: the latency table below)."""
    lat = {k: per for k, per in v["latency"].items() if per}
    at1 = [(per["1"]["p50_ms"], k) for k, per in lat.items() if per.get("1") and per["1"]["p50_ms"] is not None]
    largest = {k: max(per, key=int) for k, per in lat.items()}
    thr = [(lat[k][b]["images_per_s"], k, b) for k, b in largest.items() if lat[k][b]["images_per_s"] is not None]
    sizes = ", ".join(([f"fp16 {_bytes(v['onnx_fp16_bytes'])}"] if v.get("onnx_fp16_bytes") else [])
                      + ([f"int8 {_bytes(v['int8']['bytes'])}"] if v.get("int8") else []))
    fast = min(at1) if at1 else None
    most = max(thr) if thr else None
    return [name, _count(v["flops_per_image"]), _bytes(v["onnx_bytes"]) + (f" ({sizes})" if sizes else ""),
            NA if fast is None else f"{_ms(fast[0])} ({fast[1]})",
            NA if most is None else f"{most[0]:,.0f} ({most[1]}" + ("" if int(most[2]) == big else f", @{most[2]}") + ")"]


def _md_results(variants: dict, s: dict) -> list[str]:
    batches = {int(b) for v in variants.values() for rows in v["latency"].values() for b in rows}
    big = max(batches) if batches else None
    header = ["variant", "dataset", "params", "test top-1 (1 crop)", "test top-1 (multi-crop)", "seed doc top-1",
              "ours - seed (1 / multi)", "val top-1", "train time", "train device"]
    out = ["## Results", "", _table(header, [_results_row(name, v) for name, v in variants.items()]), ""]
    speed = ["variant", "FLOPs/img", "ONNX (fp32, and the other files)", "fastest at batch 1: p50 (backend)",
             f"most images/s at batch {big or NA} (backend)"]
    out += ["### Size and speed", "", _table(speed, [_speed_row(n, v, big) for n, v in variants.items()]), "",
            "FLOPs count multiply and add separately (2 per MAC), per image: the convolutions' and matmuls' FLOPs, counted "
            "by forward hooks (equal to torch.utils.flop_counter's count on every registered network, a test checks). "
            "Latency: p50 of one synchronised call at batch 1; throughput: images/s at the largest batch "
            "(mean over the timed calls); each over every backend and precision the bench measured (backend keys "
            "without a suffix are fp32; every one's figures are in the latency table below).", ""]
    return (out + _md_vs_seed(variants) + _md_deviations(variants) + _md_export(variants) + _limits_section(variants)
            + _md_train_speed(variants) + _md_seed_notes(variants, s))


def _interval(p: float, n: Optional[int]) -> str:
    if not n:
        return f"{_pct(p)} (n not stated)"
    lo, hi = wilson(p, n)
    return f"{_pct(p)} [{_pct(lo)}, {_pct(hi)}]"


def _md_vs_seed(variants: dict) -> list[str]:
    """Each measured variant against its seed document's figure: both with 95% Wilson intervals on their test-image
    counts, and their difference with Newcombe's interval, which decides 'within noise'; under netpipe's protocol,
    then scored the seed's way (pipeline/seed_protocol.py) where that differs."""
    rows = []
    for name, v in variants.items():
        ref, ours, n = v["seed_reference"], v["top1"], v["n_test"]
        if ours is None or not n or ref.get("top1") is None or not ref.get("comparable", True):
            continue
        seed, n_seed = ref["top1"], ref.get("n_test")
        interval = _seed_interval(ours, n, seed, n_seed)
        diff = _signed_pp(ours - seed) + ("" if interval is None else " [{}, {}]".format(*map(_signed_pp, interval)))
        rows.append([name, _interval(ours, n), f"{n:,}", _interval(seed, n_seed) + f" ({ref.get('doc')})",
                     f"{n_seed:,}" if n_seed else NA, diff, verdict(interval), *_seed_way(v, seed, n_seed)])
    if not rows:
        return []
    header = ["variant", "ours: test top-1, 1 crop [95%]", "our test images", "seed doc top-1 [95%]",
              "seed's test images", "ours - seed [95%]", "verdict", "ours scored the seed's way [95%]",
              "verdict, scored the seed's way"]
    return ["### Against the seed documents (95% intervals)", "", _table(header, rows), "",
            "Intervals: Wilson's score interval for each accuracy; Newcombe's hybrid score interval for the difference, "
            "which decides the verdict (within noise when it holds 0). Ours is measured under netpipe's protocol "
            "(its training split, the whole test set, eval mode), then scored the seed's way where its code scored "
            "differently (params `nets.VARIANT.seed_reference.protocol`: its test subset, dropout on, its crop and "
            "mean). What the seed's training did differently (its split, its kept epoch) stays in the deviations "
            "below.", ""]


def _seed_way(v: dict, seed: float, n_seed: Optional[int]) -> list[str]:
    """The two cells of our figure scored under the seed's own protocol."""
    sp = v.get("seed_protocol")
    if not v["seed_reference"].get("protocol"):
        return ["scored as netpipe scores", "-"]
    if sp is None:
        return ["not yet measured (evaluated before netpipe scored the seed's way)", "-"]
    if not sp["measured"]:
        return [sp["reason"], "-"]
    interval = _seed_interval(sp["top1"], sp["n_test"], seed, n_seed)
    return [f"{_interval(sp['top1'], sp['n_test'])} on {sp['n_test']:,} ({sp['protocol']})", verdict(interval)]


DEVIATION_FIELDS = ("what", "seed", "ours", "why", "cite")


def _md_deviations(variants: dict) -> list[str]:
    """Where each variant departs from its seed document's code (params `nets.VARIANT.seed_reference.deviations`):
    one table per document; an item several of its variants share (a YAML alias) is one row naming them."""
    docs: dict[str, tuple[list[str], dict[tuple, list[str]]]] = {}
    for name, v in variants.items():
        doc = v["seed_reference"].get("doc")
        if doc is None or not v["_deviations"]:
            continue
        names, rows = docs.setdefault(str(doc), ([], {}))
        names.append(name)
        for d in v["_deviations"]:
            rows.setdefault(tuple(str(d.get(k) or NA) for k in DEVIATION_FIELDS), []).append(name)
    if not docs:
        return []
    out = ["### Deviations from the seeds' code", "",
           "Where each recipe departs from what its seed document's code did (params "
           "`nets.VARIANT.seed_reference.deviations`): what the seed's code did, what netpipe does, why, and where to "
           "check it. Read each comparison above with these in mind. Recipe decisions are taken on validation data; "
           "the test set is read for the final figures (a breach is named in its row).", ""]
    header = ["variants", "what", "the seed's code", "netpipe", "why", "where"]
    for doc in sorted(docs):
        names, rows = docs[doc]
        out += [f"#### Seed document {doc}: " + ", ".join(f"`{n}`" for n in names), "", _table(header, [
            ["all" if len(users) == len(names) > 1 else ", ".join(f"`{n}`" for n in users), *fields]
            for fields, users in rows.items()]), ""]
    return out


def _md_export(variants: dict) -> list[str]:
    exp = [(n, v) for n, v in variants.items() if v["have"]["export"]]
    if not exp:
        return []
    out = ["ONNX export checks (artifacts/export/VARIANT.json): onnxruntime against PyTorch fp32.", ""]
    for n, v in exp:
        d32, d16 = v["parity_max_abs_diff"], v["fp16_max_abs_diff"]
        out.append(f"- `{n}`: max |logit difference| fp32 {NA if d32 is None else f'{d32:.2g}'}, fp16 "
                   f"{NA if d16 is None else f'{d16:.2g}'}; test top-1 through onnxruntime {_pct(v['onnx_top1'])} "
                   f"(fp16 file: {_pct(v['fp16_top1'])}"
                   + (f" on {v['fp16_n_test']:,} images" if v.get("fp16_n_test") else "") + "); " + _int8_cell(v["int8"]))
    return out + [""]


def _int8_cell(i8: Optional[dict]) -> str:
    """The int8 file's accuracy, its drop from the fp32 file's, and the mark when the drop is over the limit."""
    if i8 is None:
        return "int8 file: not measured (exported before netpipe wrote one: re-run `netpipe export`)"
    mark = ("" if i8["within_max_drop"] else
            f" **MARKED: drops more than export.int8_max_drop_pp = {i8['max_drop_pp']:g} pp**")
    return (f"int8 file ({_bytes(i8['bytes'])}, calibrated on {i8['calibration']}): {_pct(i8['top1'])} / "
            f"{_pct(i8['top1_10crop'])} multi-crop on {i8['n_test']:,} images, {_signed_pp(-i8['drop_pp'] / 100)} / "
            f"{_signed_pp(-i8['drop_10crop_pp'] / 100)} vs fp32{mark}")


def _md_train_speed(variants: dict) -> list[str]:
    trained = [(n, v) for n, v in variants.items() if v["have"]["train"]]
    if not trained:
        return []
    rows = [[n, v["train_device"] or NA, _uses(v["train_speed"]), str(v["epochs"] or NA),
             _seconds(v["train_speed"]["epoch_seconds"]),
             NA if v["train_speed"]["images_per_s"] is None else f"{v['train_speed']['images_per_s']:,.0f}",
             NA if v["train_speed"]["flops_per_s"] is None else f"{v['train_speed']['flops_per_s'] / 1e12:.3g}",
             _pct(v["train_speed"]["fraction_of_peak"], 1)] for n, v in trained]
    header = ["variant", "device", "uses (why)", "epochs", "s / epoch", "images/s", "training TFLOP/s",
              "% of measured peak"]
    return ["### Training speed", "", _table(header, rows), "", TRAIN_FLOPS_METHOD + ".", ""]


def _md_seed_notes(variants: dict, s: dict) -> list[str]:
    out: list[str] = []
    if s["missing"]:
        out += ["**Missing** (no artifacts/metrics/VARIANT.json: run `netpipe evaluate VARIANT` or `dvc repro`): "
                + ", ".join(f"`{n}`" for n in s["missing"]), ""]
    refs = [(n, v["seed_reference"]) for n, v in variants.items() if v["seed_reference"].get("note")]
    if refs:
        out += ["Seed-document figures (params `nets.VARIANT.seed_reference`):", ""]
        out += [f"- `{n}`: {('%.2f%%' % (100 * r['top1'])) if r.get('top1') is not None else 'no figure'}"
                + (f", {r['params']:,} parameters" if r.get("params") else "")
                + f" (doc {r.get('doc')}): {r.get('note')}" for n, r in refs]
        out.append("")
    return out


def _md_best(variants: dict, s: dict) -> list[str]:
    out = ["## Best variant per dataset", ""]
    for ds in s["data"]:
        name = s["best"].get(ds)
        if not name:
            out.append(f"- **{ds}**: none (no variant of this dataset has test metrics yet).")
            continue
        v = variants[name]
        by = s["best_by"][ds]
        acc = v["top1_10crop"] if by != "single-crop" else v["top1"]
        out.append(f"- **{ds}**: `{name}`, {_pct(acc)} test top-1 ({by}; ranked by the highest {by} test top-1 "
                   f"of the {ds} variants).")
    out += ["", "Pareto front of accuracy (multi-crop test top-1 where measured) against latency (batch-1 p50 on "
            "the variant's fastest backend): no variant outside it is both faster and more accurate than one on it.",
            ""]
    for ds, front in s["pareto"].items():
        if not front:
            out.append(f"- **{ds}**: n/a (needs metrics and benchmark results)")
            continue
        parts = []
        for n in front:
            v = variants[n]
            acc, by = accuracy(v)
            f = v["fastest_batch1"]
            parts.append(f"`{n}` ({_pct(acc)} {by}, {_ms(f['p50_ms'])} on {f['backend']}"
                         + ("" if f["batch"] == "1" else f" at batch {f['batch']}") + ")")
        out.append(f"- **{ds}**: " + " -> ".join(parts))
    return out + [""]


PLOT_TITLES = {"accuracy_vs_latency": ("Accuracy vs latency, with the Pareto front",
                                       "`netpipe evaluate VARIANT`, `netpipe bench VARIANT`, `netpipe report`"),
               "training_curves": ("Training curves (validation accuracy and training loss per epoch)",
                                   "`netpipe train VARIANT`, `netpipe report`"),
               "latency_vs_batch": ("Latency vs batch size per backend", "`netpipe bench VARIANT`, `netpipe report`")}


def _md_plots(s: dict, at: str) -> list[str]:
    out = ["## Plots", ""]
    for key, f in s["plots"].items():
        if key.startswith("confusion_"):
            ds = key[len("confusion_"):]
            name = s["best"][ds]
            title, cmd = f"Confusion matrix of the best {ds} model ({name})", f"`netpipe evaluate {name}`, `netpipe report`"
        else:
            title, cmd = PLOT_TITLES[key]
        rel = Path(f).relative_to(paths.ARTIFACTS).as_posix()
        out += [f"### {title}", "", f"![{title}]({rel})", "", f"Produced by {cmd}{at}.", ""]
    return out


def _md_machine(variants: dict, s: dict) -> list[str]:
    out = ["## Benchmark machine", ""]
    m = s["machine"]
    if not m:
        return out + ["No benchmark results yet (`netpipe bench VARIANT`).", ""]
    gpu = (f"{m.get('gpu')} ({m.get('gpu_memory_gib')} GiB), CUDA {m.get('cuda')}, cuDNN {m.get('cudnn')}; "
           if m.get("gpu") else "no GPU; ")
    out += [f"{gpu}CPU {m.get('cpu')} ({m.get('cpu_cores')} logical cores, load average {m.get('load_avg_1min')} "
            f"at the start); torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}, onnx {m.get('onnx')}, "
            f"python {m.get('python')}. Each variant's artifacts/bench/VARIANT.json holds its own machine record, "
            "the measured peaks and the floor (`floor_ms`, `fraction_of_peak`).", ""]
    reasons: dict[str, set[str]] = {}
    for v in variants.values():
        for sk in v["skipped"]:
            reasons.setdefault(backend_key(sk.get("backend", "?"), sk.get("precision", "fp32")), set()).add(
                str(sk.get("reason")))
    if reasons:
        out += ["Not measured on this machine (reason as recorded by `netpipe bench`):", ""]
        out += [f"- {k}: " + "; ".join(sorted(r)[:3]) + (" ..." if len(r) > 3 else "")
                for k, r in sorted(reasons.items(), key=lambda kv: key_order(kv[0]))]
        out.append("")
    return out


STAGE_OUTPUT = {"train": "train", "evaluate": "metrics", "export": "export", "bench": "bench"}


def _md_provenance(variants: dict, at: str) -> list[str]:
    out = ["## Produced by", "",
           "Every figure above comes from these commands (run by `dvc repro`, which records their params):", ""]
    for name, v in variants.items():
        done = [c for stage, c in v["commands"].items() if v["have"][STAGE_OUTPUT[stage]]]
        todo = [c for stage, c in v["commands"].items() if not v["have"][STAGE_OUTPUT[stage]]]
        line = f"- `{name}`: " + (", ".join(f"`{c}`" for c in done) or "nothing yet")
        commits = [f"{stage} at `{c}`" for stage, c in v["git_commit"].items() if c]
        if commits:
            line += " (" + ", ".join(commits) + (f"; trained on {v['train_device']}" if v["train_device"] else "") + ")"
        if todo and not v["have"]["train"]:
            line += " (not trained here: its recipe needs a GPU or more CPU time than this run had)"
        elif todo:
            line += " (outputs missing: " + ", ".join(f"`{c}`" for c in todo) + ")"
        out.append(line)
    return out + [f"- this report: `netpipe report`{at}", ""]
