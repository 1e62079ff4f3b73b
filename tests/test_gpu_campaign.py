"""tools/gpu_campaign.sh, the one GPU call, rehearsed on the CPU on tiny generated data (docs/gpu.md): every stage of
the chain runs, a time box stops a run and counts as planned, the results pack into $OUT and a second call on a
fresh machine restores them and runs nothing twice; the budget stops stages before they start."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from tests.datagen import make_image_folder, make_mnist_idx

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
VARIANTS = {"alexnet_thinner_4_short": "cifar10", "googlenet_cifar": "cifar10", "alexnet_mnist_bn_short": "mnist"}


def _load_campaign_module():
    spec = importlib.util.spec_from_file_location("gpu_campaign", ROOT / "tools" / "gpu_campaign.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _project(root: Path) -> Path:
    """A copy of the project's code and params (three variants, tiny validation splits)."""
    for d in ("pipeline", "tools"):
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["variants"] = dict(VARIANTS)
    raw["nets"] = {v: raw["nets"][v] for v in VARIANTS}
    for ds in ("cifar10", "mnist"):
        raw["data"][ds]["val_size"] = 8
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The carried data's layout: cifar10-jpeg.tar.gz (class folders of JPEG files) and mnist/ (idx files)."""
    d = tmp_path_factory.mktemp("carry") / "data"
    tgz = make_image_folder(d / "cifar", classes=CLASSES, n_train=3, n_test=1, ext="jpg", tar=True)
    tgz.rename(d / "cifar10-jpeg.tar.gz")
    shutil.rmtree(d / "cifar")
    make_mnist_idx(d / "mnist", n_train=40, n_test=10)
    return d


def _campaign(root: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    return subprocess.run(["bash", "tools/gpu_campaign.sh", "--rehearse", "--quiet", "--data", str(data), *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)


def test_rehearsal_runs_the_chain_packs_the_results_and_a_fresh_machine_resumes_from_them(tmp_path, data):
    p = _project(tmp_path / "p")
    r = _campaign(p, data, "--order", "main,demo,first", "--first-box", "1", "--out", str(tmp_path / "out1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    done = json.loads((p / "campaign" / "done.json").read_text())
    assert [k for k in done] == ["env", "prepare", "train", "evaluate", "export", "bench", "demo",
                                 "first:alexnet_thinner_4_short", "first:alexnet_mnist_bn_short"]
    assert all(done[k]["status"] == "ok" and done[k]["rc"] == 0 for k in ("train", "evaluate", "export", "bench", "demo"))
    for k in ("first:alexnet_thinner_4_short", "first:alexnet_mnist_bn_short"):  # stopped by the 1-s box: as planned
        assert (done[k]["status"], done[k]["rc"], done[k]["epochs"]) == ("ok", 124, 0), done[k]
        assert "stopped by the time box" in done[k]["note"]
    log = (p / done["train"]["log"]).read_text()
    assert log.startswith("$ (cd . && ") and " -m pipeline train googlenet_cifar -p campaign/params.yaml)" in log

    out = tmp_path / "out1"
    assert sorted(f.name for f in out.iterdir() if not f.name.startswith(".")) == \
        ["campaign.log", "campaign.tar.gz", "pretrained-cifar10.onnx", "summary.md"]
    assert all(f.stat().st_size < 16 * 2**20 for f in out.iterdir())
    with tarfile.open(out / "campaign.tar.gz") as tar:
        names = tar.getnames()
    assert "artifacts/train/googlenet_cifar.json" in names and "artifacts/bench/googlenet_cifar.json" in names
    assert "campaign/done.json" in names and not [n for n in names if "/models/" in n or n.endswith(".onnx")]
    shipped = json.loads(tarfile.open(out / "campaign.tar.gz").extractfile("campaign/demo/pretrained/cifar10.json").read())
    assert (shipped["variant"], shipped["bytes"]) == ("alexnet_thinner_4_short", (out / "pretrained-cifar10.onnx").stat().st_size)
    summary = (out / "summary.md").read_text()
    assert "REHEARSAL" in summary and "| train | ok |" in summary and "| googlenet_cifar | 1 |" in summary

    # a fresh machine: the same code without the first call's files, the returned results carried back
    q = _project(tmp_path / "q")
    r2 = _campaign(q, data, "--order", "main,demo,first", "--resume", str(out), "--out", str(tmp_path / "out2"))
    assert r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    # everything is skipped but prepare: the data is prepared again on each machine
    assert r2.stdout.count("done in an earlier call, skipped") == len(done) - 1
    assert "prepare: ok" in r2.stdout and (q / "data" / "prepared" / "cifar10.npz").exists()
    assert not (q / "models").exists()  # nothing ran again
    calls = json.loads((q / "campaign" / "calls.json").read_text())
    assert [c["command"].split()[-1] for c in calls] == [str(tmp_path / "out1"), str(tmp_path / "out2")]


def test_the_budget_stops_a_stage_before_it_starts_and_large_results_travel_in_parts(tmp_path, monkeypatch):
    gc = _load_campaign_module()
    monkeypatch.setattr(gc, "C", tmp_path / "campaign")
    gc.C.mkdir()
    (gc.C / "logs").mkdir()
    (gc.C / "campaign.log").write_text("")
    args = Namespace(rehearse=True, budget=100, out=str(tmp_path / "out"), skip=[], first_box=None, quiet=True)
    c = gc.Campaign(args)
    ran = []
    c.stage("evaluate", lambda t: ran.append(t) or {"rc": 0, "seconds": 0.0})
    assert len(ran) == 1 and 100 - gc.RESERVE_S - 2 <= ran[0] <= 100 - gc.RESERVE_S  # the budget left, under its cap
    c.deadline = time.monotonic() + gc.RESERVE_S + gc.MIN_STAGE_S - 1  # less than a stage's minimum left
    c.stage("export", lambda t: ran.append(t) or {"rc": 0})
    assert len(ran) == 1 and c.done["export"]["status"] == "not run" and "budget spent" in c.done["export"]["note"]
    assert c.done["evaluate"]["status"] == "ok"

    # results larger than one returned file go in numbered parts, and --resume joins them
    (gc.C / "big.bin").write_bytes(os.urandom(300_000))
    monkeypatch.setattr(gc, "PART_BYTES", 100_000)
    c.pack()
    parts = sorted(f.name for f in (tmp_path / "out").glob("campaign.tar.gz*"))
    assert parts == [f"campaign.tar.gz.part{i}" for i in range(4)]
    shutil.rmtree(gc.C)
    monkeypatch.setattr(gc, "ROOT", tmp_path)
    gc.restore(tmp_path / "out")
    assert (gc.C / "big.bin").stat().st_size == 300_000
    assert json.loads((gc.C / "done.json").read_text())["export"]["status"] == "not run"
