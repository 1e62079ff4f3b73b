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
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Optional

from . import fileio, paths, plots
from .params import BENCH_RESULT_ORDER, Params
from .records import BenchReport, Confusion, ExportReport, Metrics, Peak, TrainSummary

NA = "n/a"
PLOT_FILES = {
    "accuracy_vs_latency": "accuracy_vs_latency.png",
    "training_curves": "training_curves.png",
    "latency_vs_batch": "latency_vs_batch.png",
}
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


def _prepared_meta(dataset: str) -> Optional[dict]:
    path = paths.prepared(dataset)
    if not path.exists():
        return None
    try:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception:  # a corrupt file is prepare's business; the report just does without
        return None


def _num(x: Any) -> Optional[float]:
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


def _key_order(key: str) -> tuple:
    for i, b in enumerate(BENCH_RESULT_ORDER):
        for j, prec in enumerate(PRECISION_ORDER):
            if key == backend_key(b, prec):
                return (i, j, key)
    return (len(BENCH_RESULT_ORDER), 0, key)


LATENCY_FIELDS = ("p50_ms", "p90_ms", "p99_ms", "images_per_s")
# how far each backend is from PyTorch eager (same run, same batch) and from the machine's limit (bench.py's floor)
LIMIT_FIELDS = ("speedup_vs_torch_eager", "floor_ms", "fraction_of_peak", "first_inference_ms")


def latency_table(bench: Optional[BenchReport], fields: tuple[str, ...] = LATENCY_FIELDS) -> dict[str, dict[str, dict]]:
    """{BACKEND_KEY: {BATCH: {field: value}}} from a bench record (default: p50/p90/p99 and images/s)."""
    out: dict[str, dict[str, dict]] = {}
    for backend, per_prec in (bench.results if bench else {}).items():
        for prec, per_batch in per_prec.items():
            rows = {b: {k: _num(getattr(r, k)) for k in fields}
                    for b, r in sorted(per_batch.items(), key=lambda kv: int(kv[0]))}
            if rows:
                out[backend_key(backend, prec)] = rows
    return dict(sorted(out.items(), key=lambda kv: _key_order(kv[0])))


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
            **{k: _num(getattr(me, k)) if me else None for k in ("top1", "top5", "top1_10crop", "top5_10crop")},
            "crops": me.crops if me else None,
            "val_top1": _num(me.val_top1 if me and me.val_top1 is not None else (tr.val_top1 if tr else None)),
            "n_test": me.n_test if me else None,
            "seed_reference": {"doc": ref.get("doc"), "top1": _num(ref.get("top1")), "params": ref.get("params"),
                               "n_test": ref.get("n_test"), "note": ref.get("note"),
                               "comparable": ref.get("comparable", True) is not False},
            "git_commit": {"train": tr.git_commit if tr else None, "evaluate": me.git_commit if me else None},
            "train_seconds": tr.train_seconds if tr else None,
            "train_device": tr.train_device if tr else None,
            "epochs": tr.epochs if tr else None,
            "train_speed": train_speed(tr, curves, flops, be.peak if be else None),
            "onnx_bytes": ex.onnx_bytes if ex else None,
            "onnx": str(paths.onnx(name)),
            "onnx_top1": _num(ex.accuracy.onnx.top1) if ex else None,
            "onnx_fp16_bytes": ex.fp16.bytes if ex else None,
            "parity_max_abs_diff": _num(ex.parity.max_abs_diff) if ex else None,
            "fp16_max_abs_diff": _num(ex.fp16.max_abs_diff) if ex else None,
            "fp16_top1": _num(fp16_acc.top1) if fp16_acc else None,
            "fp16_n_test": fp16_acc.n_test if fp16_acc else None,
            "int8": None if i8 is None else {
                "bytes": i8.bytes, "top1": _num(i8.accuracy.top1), "top1_10crop": _num(i8.accuracy.top1_10crop),
                "n_test": i8.accuracy.n_test, "drop_pp": _num(i8.drop_pp.top1), "drop_10crop_pp": _num(i8.drop_pp.top1_10crop),
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
    out["images_per_s"] = ips = _num(tr.images_per_s)
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


def _uses(ts: dict) -> str:
    """What training used and why (pipeline/speed.py's decision), for the training-speed table."""
    uses = ts.get("uses") or ts.get("precision") or NA
    return f"{uses} ({ts['why']})" if ts.get("why") else uses


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
# formatting
# ---------------------------------------------------------------------------------------------------------
def _pct(x: Optional[float], digits: int = 2) -> str:
    return NA if x is None else f"{100 * x:.{digits}f}%"


def _signed_pp(x: Optional[float]) -> str:
    return NA if x is None else f"{100 * x:+.2f} pp"


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


def _seed_interval(ours: float, n: int, seed: float, n_seed: Optional[int]) -> Optional[tuple[float, float]]:
    return diff_interval(ours, n, seed, n_seed) if n_seed else None


def _vs_seed(ours: Optional[float], n: Optional[int], seed: Optional[float], n_seed: Optional[int]) -> str:
    if ours is None or seed is None or not n:
        return NA
    return f"{_signed_pp(ours - seed)} ({verdict(_seed_interval(ours, n, seed, n_seed))})"


def _count(x: Any) -> str:
    x = _num(x)
    if x is None:
        return NA
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def _bytes(x: Any) -> str:
    x = _num(x)
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


# ---------------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------------
def _quick_tag(quick: bool) -> str:
    return "\nQUICK CHECK RUN: accuracies are meaningless" if quick else ""


def _place_labels(ax, pts: list[tuple[str, float, float]]) -> list:
    """Name each point beside it (right of it, else left), moving a label by growing distances down and up (with a
    leader line) until it lies inside the axes and overlaps no label placed before it, no point and not the
    legend: every name readable however close the points lie. Call it on the final layout (offsets are in points)."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    placed, shown, marks = [], [], [ax.transData.transform((x, y)) for _, x, y in pts]
    blocked = [legend.get_window_extent(renderer)] if legend else []
    offsets = [4.0] + [4.0 + sign * 5.0 * k for k in range(1, 80) for sign in (-1, 1)]  # 4, -1, 9, -6, 14, ...
    for name, x, y in sorted(pts, key=lambda t: -t[2]):  # top to bottom
        for dx, dy in [(dx, dy) for dx in (6, -6) for dy in offsets]:
            t = ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7, va="bottom",
                            ha="left" if dx > 0 else "right")
            box = t.get_window_extent(renderer)
            fits = (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1)
            if fits and not any(box.contains(mx, my) for mx, my in marks) \
                    and not any(box.overlaps(o) for o in placed + blocked):
                break
            t.remove()
        else:  # no free place: beside the point
            dx, dy = 6, 4.0
            box = ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7,
                              va="bottom").get_window_extent(renderer)
        if dy != 4.0:  # moved: a leader line back to its point
            ax.annotate("", (x, y), textcoords="offset points", xytext=(dx, dy + 3),
                        arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
        shown.append(box)
        placed.append(Bbox.from_extents(box.x0 - 6, box.y0, box.x1 + 6, box.y1))  # a gap between names on a line
    return shown


def plot_accuracy_vs_latency(variants: dict, fronts: dict[str, list[str]], quick: bool, path: Path) -> bool:
    """One panel per dataset (their accuracies live on different scales), each variant named beside its point."""
    plt = plots.pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    panels = []
    for i, dataset in enumerate(sorted({v["dataset"] for v in variants.values()})):
        pts = []
        for name, v in variants.items():
            acc, _ = accuracy(v)
            f = v["fastest_batch1"]
            if v["dataset"] == dataset and acc is not None and f:
                pts.append((name, f["p50_ms"], 100 * acc))
        if pts:
            panels.append((dataset, colors[i % len(colors)], pts))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6.5 * max(1, len(panels)), 5.2), squeeze=False)
    for ax, (dataset, c, pts) in zip(axes.flat, panels):
        ax.scatter([x for _, x, _ in pts], [y for _, _, y in pts], color=c, zorder=3, label="variants")
        front = [(variants[n]["fastest_batch1"]["p50_ms"], 100 * accuracy(variants[n])[0]) for n in fronts.get(dataset, [])]
        if len(front) > 1:
            ax.step([x for x, _ in front], [y for _, y in front], where="post", color=c, linestyle="--",
                    label="Pareto front (faster and more accurate)")
        xs, ys = [x for _, x, _ in pts], [y for _, _, y in pts]
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.6, max(xs) * 3.0)  # room on the right for the names
        pad = max(0.5, 0.12 * (max(ys) - min(ys)))
        low, high = min(ys) - 3 * pad, max(ys) + 3 * pad  # room for names below and above the points (legend)
        if low < 0 <= min(ys):  # but no negative accuracies on the axis
            low = -pad / 2
        if high > 100 >= max(ys):  # nor any beyond 100%
            high = 100 + pad / 2
        ax.set_ylim(low, high)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5, 10, 20, ... ms
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("latency at batch 1: p50 on the fastest backend (ms, log scale)")
        ax.set_ylabel("test top-1 accuracy (%, multi-crop where measured)")
        ax.set_title(f"{dataset}: accuracy vs latency" + _quick_tag(quick), fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")  # the names are placed around it
    if not panels:
        ax = axes.flat[0]
        ax.text(0.5, 0.5, "no variant has both test accuracy and benchmark results yet", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_title("Accuracy vs latency" + _quick_tag(quick))
    fig.tight_layout()
    fig.canvas.draw()  # the final layout first: the names are placed in it
    for ax, (_, _, pts) in zip(axes.flat, panels):
        _place_labels(ax, pts)
    plots.save(fig, path)
    return bool(panels)


def plot_training_curves(variants: dict, quick: bool, path: Path) -> bool:
    """Validation accuracy and training loss per epoch, every variant in its own colour and marker (tab20 beyond
    10 of them), one legend below both panels so that it covers no curve, integer epochs on the axis."""
    plt = plots.pyplot()
    from matplotlib.ticker import MaxNLocator

    curves = {name: rows for name, v in variants.items()
              if (rows := [r for r in v["_curves"] if r.get("epoch") is not None])}
    legend_rows = math.ceil(len(curves) / 6)
    height = 5 + 0.22 * legend_rows
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, height))
    cmap = plt.get_cmap("tab20" if len(curves) > 10 else "tab10")
    for i, (name, rows) in enumerate(curves.items()):
        ep = [r["epoch"] for r in rows]
        style = {"color": cmap(i % cmap.N), "marker": "osD^v"[(i + i // 20) % 5],
                 "markersize": 5 if len(rows) < 3 else 3, "label": name}
        ax1.plot(ep, [100 * r["val_acc"] if r.get("val_acc") is not None else math.nan for r in rows], **style)
        ax2.plot(ep, [r["train_loss"] if r.get("train_loss") is not None else math.nan for r in rows], **style)
    ax1.set_title("Validation accuracy" + _quick_tag(quick))
    ax1.set_ylabel("validation top-1 accuracy (%, single crop)")
    ax2.set_title("Training loss" + _quick_tag(quick))
    ax2.set_ylabel("training cross-entropy loss (mean over the epoch)")
    epochs = [r["epoch"] for rows in curves.values() for r in rows]
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("epoch")
        if epochs:
            lo, hi = min(epochs), max(epochs)
            ax.set_xlim(lo - 0.5, hi + 0.5)
            if hi - lo <= 12:  # every epoch a tick; one epoch: the single tick "1", not 0.5 ... 1.5
                ax.set_xticks(range(int(lo), int(hi) + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.text(0.5, 0.5, "no training curves (artifacts/train/*.csv) yet", ha="center", va="center",
                    transform=ax.transAxes)
    bottom = 0
    if curves:
        handles, labels = ax1.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(curves)), fontsize=7, frameon=False)
        bottom = (0.2 * legend_rows + 0.05) / height
    fig.tight_layout(rect=(0, bottom, 1, 1))
    plots.save(fig, path)
    return bool(curves)


def _nice_log_range(lo: float, hi: float) -> tuple[float, float]:
    """The 1-2-5 values (..., 10, 20, 50, 100, ...) just below `lo` and just above `hi`: a log axis with these ends
    has a labelled tick at both, so the lowest and the highest point can be read."""
    def ticks(e: int) -> list[float]:
        return [m * 10.0**e for m in (1, 2, 5)]

    below = max(t for e in range(math.floor(math.log10(lo)) - 1, math.floor(math.log10(lo)) + 1) for t in ticks(e)
                if t <= lo)
    above = min(t for e in range(math.floor(math.log10(hi)), math.floor(math.log10(hi)) + 2) for t in ticks(e)
                if t >= hi)
    return (below, above) if below < above else _nice_log_range(lo * 0.99, hi * 1.01)


def _minor_label(y: float, _pos=None) -> str:
    return f"{y:g}" if y > 0 and round(y / 10 ** math.floor(math.log10(y) + 1e-9)) in (2, 3, 5) else ""


def plot_latency_vs_batch(variants: dict, path: Path, machine: str) -> bool:
    plt = plots.pyplot()
    names = [n for n, v in variants.items() if v["latency"]]
    n = max(len(names), 1)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax, name in zip(axes.flat, names):
        seen: set[int] = set()
        ms: list[float] = []
        for key, per_batch in variants[name]["latency"].items():
            pts = [(int(b), r["p50_ms"]) for b, r in per_batch.items() if r["p50_ms"] is not None]
            if pts:
                ax.plot([b for b, _ in pts], [t for _, t in pts], marker="o", label=key)
                seen.update(b for b, _ in pts)
                ms += [t for _, t in pts if t > 0]
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        if ms:
            ax.set_ylim(*_nice_log_range(min(ms), max(ms)))
        ax.set_xticks(sorted(seen), [str(b) for b in sorted(seen)])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))  # 2, 3, 5 x 10^k: labels that never crowd
        ax.set_title(f"{name}", fontsize=10)
        ax.set_xlabel("batch size (images)")
        ax.set_ylabel("latency p50 (ms per batch)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if not names:
        axes.flat[0].text(0.5, 0.5, "no benchmark results (artifacts/bench/*.json) yet", ha="center", va="center",
                          transform=axes.flat[0].transAxes)
    fig.suptitle(f"Latency vs batch size per backend ({machine})", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (3.8 * rows)))  # the top 0.45 inch for the title, clear of the panels'
    plots.save(fig, path)
    return bool(names)


def plot_confusion(name: str, v: dict, quick: bool, path: Path) -> bool:
    """artifacts/confusion/VARIANT.png: the variant's single-crop confusion matrix from its metrics file
    (evaluate's "confusion"). Drawn here, all variants in one process, not by each evaluate: matplotlib's import
    and a figure cost 1.5 s a process on 2 cores, a tenth of the quick check's evaluate stage."""
    cm: Optional[Confusion] = v["_confusion"]
    if cm is None or not cm.matrix:
        return False
    top1 = f", top-1 {v['top1']:.2%}" if v.get("top1") is not None else ""
    plots.confusion(path, cm.matrix, cm.classes,
                    f"Confusion matrix: {name} on the {v['dataset']} test set\n({sum(map(sum, cm.matrix))} images, "
                    f"single crop{top1}; cells are counts)" + _quick_tag(quick))
    return True


# ---------------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------------
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
    data = {ds: describe_data(p, ds, _prepared_meta(ds)) for ds in datasets}

    best, best_by, fronts = _rank(variants, datasets)
    machines = [v["bench_machine"] for v in variants.values() if v["bench_machine"]]
    machine = machines[0] if machines else None
    commit = fileio.git_commit()
    figures = _plots(variants, best, fronts, quick, machine)

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


def _rank(variants: dict, datasets: list[str]) -> tuple[dict, dict, dict]:
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


def _plots(variants: dict, best: dict, fronts: dict, quick: bool, machine: Optional[dict]) -> dict[str, str]:
    """artifacts/plots/*.png: {key: path}."""
    plot_dir = paths.plots()
    out = {key: str(plot_dir / name) for key, name in PLOT_FILES.items()}
    plot_accuracy_vs_latency(variants, fronts, quick, Path(out["accuracy_vs_latency"]))
    plot_training_curves(variants, quick, Path(out["training_curves"]))
    machine_text = (machine.get("gpu") or machine.get("cpu") or "?") if machine else "no benchmark yet"
    plot_latency_vs_batch(variants, Path(out["latency_vs_batch"]), machine_text)
    drawn = {name for name, v in variants.items()
             if plot_confusion(name, v, bool(v.get("quick")), paths.confusion(name))}  # its own run's tag
    # a variant gone from params.yaml or without metrics
    _remove_other(paths.confusion("*").parent.glob("*.png"), {paths.confusion(name) for name in drawn})
    for ds, name in best.items():  # the best model of each dataset beside the other plots (the same PNG)
        if name in drawn:
            f = plot_dir / f"confusion_{name}.png"
            fileio.write_with(f, lambda tmp, src=paths.confusion(name): fileio.link_or_copy(src, tmp), suffix=".png")
            out[f"confusion_{ds}"] = str(f)
    _remove_other(plot_dir.glob("confusion_*.png"), {Path(f) for f in out.values()})  # a former best
    return out


def _remove_other(files: Iterable[Path], keep: set[Path]) -> None:
    """Delete the `files` not in `keep`: PNGs a previous report drew that this one does not (a plain `netpipe
    report`; under `dvc repro` DVC has removed the report's outputs before it runs)."""
    for f in files:
        if f not in keep:
            f.unlink()


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


def _results_row(name: str, v: dict, keys: list[str], big: Optional[int]) -> list[str]:
    ref = v["seed_reference"]
    seed = ref.get("top1")
    seed_txt = NA if seed is None else f"{100 * seed:.2f}% ({ref.get('doc')})"
    if seed is not None and not ref.get("comparable", True):
        seed_txt, seed = f"{seed_txt}, another setup: not compared", None
    multi = _pct(v["top1_10crop"]) + (f" ({v['crops']}-crop)" if v["top1_10crop"] is not None else "")
    row = [name + ("" if v["have"]["metrics"] else " (not trained here (GPU recipe))" if not v["have"]["train"]
                   else " (missing: no metrics)"), v["dataset"], _params_cell(v["params"], ref.get("params")),
           _count(v["flops_per_image"]),
           _bytes(v["onnx_bytes"]) + (f" (fp16 {_bytes(v['onnx_fp16_bytes'])})" if v["onnx_fp16_bytes"] else ""),
           _pct(v["top1"]), multi, seed_txt,
           f"{_vs_seed(v['top1'], v['n_test'], seed, ref.get('n_test'))} / "
           f"{_vs_seed(v['top1_10crop'], v['n_test'], seed, ref.get('n_test'))}", _pct(v["val_top1"]),
           _seconds(v["train_seconds"]), v["train_device"] or NA]
    for k in keys:
        per = v["latency"].get(k)
        if not per:
            row.append(NA)
            continue
        r1 = per.get("1")
        bmax = max(per, key=int)
        thr = per[bmax]["images_per_s"]
        row.append(f"{_ms(r1['p50_ms']) if r1 else NA} / "
                   + (NA if thr is None else f"{thr:,.0f}" + ("" if int(bmax) == big else f" (@{bmax})")))
    return row


def _md_results(variants: dict, s: dict) -> list[str]:
    keys: list[str] = []
    batches: set[int] = set()
    for v in variants.values():
        for k, rows in v["latency"].items():
            if k not in keys:
                keys.append(k)
            batches.update(int(b) for b in rows)
    keys.sort(key=_key_order)
    big = max(batches) if batches else None
    header = ["variant", "dataset", "params", "FLOPs/img", "ONNX", "test top-1 (1 crop)", "test top-1 (multi-crop)",
              "seed doc top-1", "ours - seed (1 / multi)", "val top-1", "train time", "train device"]
    header += [f"{k}: p50 @1 / img/s @{big}" for k in keys]
    rows = [_results_row(name, v, keys, big) for name, v in variants.items()]
    out = ["## Results", "", _table(header, rows), ""]
    out += ["FLOPs count multiply and add separately (2 per MAC), per image, from torch.utils.flop_counter. "
            "Latency: p50 of one synchronised call at batch 1; throughput: images/s at the largest batch "
            "(mean over the timed calls). Backend keys without a suffix are fp32.", ""]
    return (out + _md_vs_seed(variants) + _md_deviations(variants) + _md_export(variants) + _limits_section(variants)
            + _md_train_speed(variants) + _md_seed_notes(variants, s))


def _interval(p: float, n: Optional[int]) -> str:
    if not n:
        return f"{_pct(p)} (n not stated)"
    lo, hi = wilson(p, n)
    return f"{_pct(p)} [{_pct(lo)}, {_pct(hi)}]"


def _md_vs_seed(variants: dict) -> list[str]:
    """Each measured variant against its seed document's figure: both with 95% Wilson intervals on their test-image
    counts, and their difference with Newcombe's interval, which decides 'within noise'."""
    rows = []
    for name, v in variants.items():
        ref, ours, n = v["seed_reference"], v["top1"], v["n_test"]
        if ours is None or not n or ref.get("top1") is None or not ref.get("comparable", True):
            continue
        seed, n_seed = ref["top1"], ref.get("n_test")
        interval = _seed_interval(ours, n, seed, n_seed)
        diff = _signed_pp(ours - seed) + ("" if interval is None else " [{}, {}]".format(*map(_signed_pp, interval)))
        rows.append([name, _interval(ours, n), f"{n:,}", _interval(seed, n_seed) + f" ({ref.get('doc')})",
                     f"{n_seed:,}" if n_seed else NA, diff, verdict(interval)])
    if not rows:
        return []
    header = ["variant", "ours: test top-1, 1 crop [95%]", "our test images", "seed doc top-1 [95%]",
              "seed's test images", "ours - seed [95%]", "verdict"]
    return ["### Against the seed documents (95% intervals)", "", _table(header, rows), "",
            "Intervals: Wilson's score interval for each accuracy; Newcombe's hybrid score interval for the difference, "
            "which decides the verdict (within noise when it holds 0). Ours is measured under netpipe's protocol "
            "(its training split, the whole test set, eval mode); under each seed's own protocol: not yet measured.",
            ""]


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
                for k, r in sorted(reasons.items(), key=lambda kv: _key_order(kv[0]))]
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
