"""dvc.yaml declares exactly the code each stage runs: its module and everything that module imports from
pipeline/, at the top or inside a function, relative or absolute (the CLI, which only dispatches, is left out).
A missing dep leaves stale results that look current; an extra one reruns a stage for nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.code import PKG, closure

ROOT = PKG.parent
STAGE_MODULE = {"prepare": "data", "train": "train", "evaluate": "evaluate", "export": "export", "bench": "bench",
                "report": "report"}


def declared(stage: dict) -> set[Path]:
    out: set[Path] = set()
    for dep in stage.get("do", stage).get("deps", []):
        p = ROOT / dep
        if p.is_relative_to(PKG):
            out |= {f for f in p.rglob("*.py")} if p.is_dir() else {p}
    return {f for f in out if f.name != "__init__.py" or f.parent != PKG}


@pytest.mark.parametrize("stage", list(STAGE_MODULE))
def test_stage_deps_are_exactly_the_code_it_runs(stage):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    want, got = closure(STAGE_MODULE[stage]), declared(stages[stage])
    rel = lambda s: sorted(str(f.relative_to(ROOT)) for f in s)  # noqa: E731
    assert not want - got, f"{stage}: dvc.yaml misses {rel(want - got)}"
    assert not got - want, f"{stage}: dvc.yaml declares code the stage never runs: {rel(got - want)}"


def test_closure_sees_lazy_and_relative_imports():
    """The checker itself: train imports speed at the top, nets loads its builders inside a function."""
    c = closure("train")
    assert PKG / "speed.py" in c and PKG / "nets" / "googlenet.py" in c and PKG / "errors.py" in c
    assert PKG / "report.py" not in c
