"""docs/results/learn/: the table is learn.py's own output, from the files beside it (issue 30).

No run: learn.py with no variant rewrites README.md's table from the JSON/CSV files; here the table it would write
is the one the README holds, a row stopped inside its seed's plateau is "not known" (never "yes"), a variant with no
row of its own says so, and a row run with --set carries that --set in its learn_command and its name.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "docs" / "results" / "learn"


def _learn():
    spec = importlib.util.spec_from_file_location("learn", HERE / "learn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells
    return rows


def test_the_readme_table_is_the_scripts_output():
    learn = _learn()
    text = (HERE / "README.md").read_text()
    held = text.split("<!-- table -->\n", 1)[1].split("\n<!-- /table -->", 1)[0]
    assert held == learn.table(ROOT / "params.yaml"), "README's learn table is not learn.py's: run learn.py"
    rows = _rows(held)
    for name in learn.SEED_PLATEAU:  # both mnist rows stopped at chance inside the plateau 004's logs show
        assert rows[name][5].startswith("not known: at chance after "), rows[name][5]
    variants = yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]
    assert set(variants) <= set(rows), "every built variant has a row, run or not"
    # alexnet_cifar_adam's recipe took the seed's FC L2 term after its rows ran: none of them is today's recipe
    assert rows["alexnet_cifar_adam"][5] == "not run here (no row of this recipe)"


def test_a_set_run_is_named_and_commanded_by_its_set():
    for name, lr in (("alexnet_cifar_adam+lr=0.0001", "0.0001"), ("alexnet_cifar_adam+lr=0.001", "0.001")):
        s = json.loads((HERE / f"{name}.json").read_text())
        assert s["learn_command"].endswith(f" --set nets.alexnet_cifar_adam.train.optimizer.lr={lr}"), name
