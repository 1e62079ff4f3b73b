"""`netpipe plots-template`: an HTML template for `dvc plots show` that renders without internet.

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
