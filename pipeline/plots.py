"""Figures shared by the stages, and `netpipe plots-template`.

`pyplot` and `save` are how every figure is drawn and written (Agg, atomic PNG); `confusion` draws a confusion matrix (evaluate's artifacts/confusion/VARIANT.png and the report's per-dataset copy).

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

from pathlib import Path

from . import fileio
from .errors import NetpipeError

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
