"""`netpipe plots-template` and a real `dvc plots show` with it: the page carries vega, vega-lite and vega-embed
inline and loads nothing from the network (DVC's default page loads them from a CDN and is blank offline)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

NETPIPE = Path(sys.executable).with_name("netpipe")
DVC = Path(sys.executable).with_name("dvc")


def test_dvc_plots_show_with_the_template_needs_no_network(tmp_path):
    r = subprocess.run([str(NETPIPE), "plots-template"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    template = tmp_path / "dvc_plots" / "offline-template.html"
    assert "dvc plots show --html-template" in r.stderr and template.is_file()
    assert subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp_path).returncode == 0
    (tmp_path / "curve.csv").write_text("epoch,val_acc\n1,0.41\n2,0.53\n3,0.59\n")
    r = subprocess.run([str(DVC), "plots", "show", "curve.csv", "-x", "epoch", "-y", "val_acc", "-o", "out",
                        "--html-template", str(template)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page), "no script is loaded from anywhere"
    assert "cdn.jsdelivr" not in page and "{scripts}" not in page and "{plot_divs}" not in page
    assert "window.vegaEmbed=" in page.replace(" ", "")  # the library, inline
    assert "vegaEmbed('#" in page and "0.53" in page  # DVC's plot, with its data


def test_default_dvc_page_would_load_from_a_cdn(tmp_path):
    """Why the template exists (fails if DVC stops loading vega from a CDN: then the template can go)."""
    assert subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp_path).returncode == 0
    (tmp_path / "curve.csv").write_text("epoch,val_acc\n1,0.41\n2,0.53\n")
    r = subprocess.run([str(DVC), "plots", "show", "curve.csv", "-o", "out"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"<script[^>]*src=\"https://", (tmp_path / "out" / "index.html").read_text())
