"""Every figure netpipe draws, and `netpipe plots-template`.

`pyplot` and `save` are how every figure is drawn and written (Agg, atomic PNG); `confusion` draws a confusion matrix (evaluate's artifacts/confusion/VARIANT.png and the report's per-dataset copy).

The report's figures (`draw_report`: artifacts/plots/*.png and artifacts/confusion/VARIANT.png) are drawn from
the report's typed view (report_view.gather), one `plot_*` function per figure.

`netpipe plots-template` writes an HTML template for `dvc plots show` that renders without internet.

DVC's HTML page loads vega, vega-lite and vega-embed from a CDN, so offline it stays blank. This template inlines
the three libraries instead, as the Vega project bundles them for offline use (vl-convert-python's
`javascript_bundle`, an optional dependency: `pip install -e ".[offline-plots]"`), and leaves out DVC's
`{scripts}` placeholder, so no CDN script is added:

    netpipe plots-template                               # dvc_plots/offline-template.html
    dvc plots show --html-template dvc_plots/offline-template.html

The PNG plots in artifacts/plots/ (the report stage) need no browser at all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Optional

from . import fileio, paths
from .errors import NetpipeError
from .records import Confusion
from .report_view import accuracy

DEFAULT = Path("dvc_plots") / "offline-template.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot (netpipe, offline)</title>
    <!-- vega, vega-lite and vega-embed inlined (vl-convert-python %(version)s): no network needed -->
    <script type="text/javascript">
%(bundle)s
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """Write the figure as a PNG atomically, then close it."""
    try:
        fileio.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"),
                          suffix=".png")
    finally:
        pyplot().close(fig)


def confusion(path: Path, matrix, classes: list[str], title: str) -> None:
    """Counts in the cells (up to 25 classes), coloured by the fraction of the true class (rows)."""
    import numpy as np

    plt = pyplot()
    m = np.asarray(matrix, dtype=float)
    k = len(m)
    rows = m.sum(1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    size = max(5.0, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 25:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    save(fig, path)


# ---------------------------------------------------------------------------------------------------------
# the report's figures (netpipe report: from report_view's variants)
# ---------------------------------------------------------------------------------------------------------
PLOT_FILES = {
    "accuracy_vs_latency": "accuracy_vs_latency.png",
    "training_curves": "training_curves.png",
    "latency_vs_batch": "latency_vs_batch.png",
}


def draw_report(variants: dict, best: dict, fronts: dict, quick: bool, machine: Optional[dict]) -> dict[str, str]:
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
    plt = pyplot()
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
    save(fig, path)
    return bool(panels)


def plot_training_curves(variants: dict, quick: bool, path: Path) -> bool:
    """Validation accuracy and training loss per epoch, every variant in its own colour and marker (tab20 beyond
    10 of them), one legend below both panels so that it covers no curve, integer epochs on the axis."""
    plt = pyplot()
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
    save(fig, path)
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
    plt = pyplot()
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
    save(fig, path)
    return bool(names)


def plot_confusion(name: str, v: dict, quick: bool, path: Path) -> bool:
    """artifacts/confusion/VARIANT.png: the variant's single-crop confusion matrix from its metrics file
    (evaluate's "confusion"). Drawn here, all variants in one process, not by each evaluate: matplotlib's import
    and a figure cost 1.5 s a process on 2 cores, a tenth of the quick check's evaluate stage."""
    cm: Optional[Confusion] = v["_confusion"]
    if cm is None or not cm.matrix:
        return False
    top1 = f", top-1 {v['top1']:.2%}" if v.get("top1") is not None else ""
    confusion(path, cm.matrix, cm.classes,
              f"Confusion matrix: {name} on the {v['dataset']} test set\n({sum(map(sum, cm.matrix))} images, "
              f"single crop{top1}; cells are counts)" + _quick_tag(quick))
    return True


# ---------------------------------------------------------------------------------------------------------
# netpipe plots-template
# ---------------------------------------------------------------------------------------------------------
def template() -> str:
    try:
        import vl_convert
    except ImportError:
        raise NetpipeError('the offline plots template needs vl-convert-python: pip install -e ".[offline-plots]" '
                           "(or pip install vl-convert-python)") from None
    bundle = vl_convert.javascript_bundle()
    if "</script" in bundle.lower():  # would end the inline script early
        raise NetpipeError("vl-convert-python's bundle cannot be inlined in a <script> element")
    return PAGE % {"bundle": bundle, "version": getattr(vl_convert, "__version__", "?")}


def run(path: Path = DEFAULT) -> Path:
    html = template()
    path.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_with(path, lambda tmp: tmp.write_text(html, encoding="utf-8"), suffix=".html")
    return path
