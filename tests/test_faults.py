"""Faults: a real training process killed (SIGTERM, SIGINT, SIGKILL) and started again with the same command
resumes and ends with exactly the same weights and curves as an uninterrupted run (CPU, deterministic).
Also: atomic outputs, corrupt checkpoints reported by name, unwritable output directories."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import fileio
from pipeline.errors import NetpipeError
from tests.datagen import make_cifar_batches

ROOT = Path(__file__).resolve().parents[1]
VARIANT = "alexnet_cifar"  # small and with dropout: exercises the RNG state on resume
pytestmark = pytest.mark.slow


def _project(root: Path) -> Path:
    make_cifar_batches(root / "raw", n_train=120, n_test=20)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"] = {"cifar10": {"source": "local", "path": str(root / "raw"), "val_size": 24}}
    raw["variants"] = {VARIANT: "cifar10"}
    net = raw["nets"][VARIANT]
    net["options"]["pool_stride"] = 2  # the compact version: fast checkpoints
    net["train"].update({"epochs": 3, "batch_size": 12, "max_steps_per_epoch": 8, "log_every": 1, "eval_batch_size": 24,
                         "deterministic": True})
    raw["nets"] = {VARIANT: net}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _cmd(root, "prepare")
    return root


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cmd(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=root, env=_env(), capture_output=True,
                          text=True, timeout=600)


def _train_and_kill(root: Path, sig: int, after_line: str, delay: float) -> subprocess.CompletedProcess:
    """Start training, wait for `after_line` on stderr (plus `delay` s), send `sig`, wait for the exit."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "train", VARIANT], cwd=root, env=_env(),
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + 300
    for line in proc.stderr:  # type: ignore[union-attr]
        seen.append(line)
        if after_line in line:
            break
        assert time.time() < deadline, "training never reached the kill point"
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(seen) + err)


def _result(root: Path) -> tuple[dict, str]:
    best = torch.load(root / "models" / f"{VARIANT}.pt", weights_only=True)
    curves = (root / "artifacts" / "train" / f"{VARIANT}.csv").read_text()
    # drop the wall-clock column
    rows = ["," .join(line.split(",")[:-1]) for line in curves.splitlines()]
    return best["model"], "\n".join(rows)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = _project(tmp_path_factory.mktemp("ref"))
    r = _cmd(root, "train", VARIANT)
    assert r.returncode == 0, r.stderr
    return _result(root)


def _same(a: tuple[dict, str], b: tuple[dict, str]) -> None:
    assert a[1] == b[1]
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), k


@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_checkpoints_mid_epoch_and_resumes_bitwise(tmp_path, reference, sig, name):
    root = _project(tmp_path)
    # the progress bar reports steps; the epoch-1 summary line marks the second epoch's start
    r = _train_and_kill(root, sig, "epoch 1/3:", delay=random.uniform(0.2, 1.0))
    assert r.returncode == 128 + sig, r.stderr[-2000:]
    assert f"{name}: " in r.stderr and "run the same command to resume" in r.stderr
    assert "Traceback" not in r.stderr
    r2 = _cmd(root, "train", VARIANT)
    assert r2.returncode == 0, r2.stderr
    assert "resuming from" in r2.stderr
    _same(reference, _result(root))


def test_sigkill_resumes_from_last_epoch(tmp_path, reference):
    root = _project(tmp_path)
    r = _train_and_kill(root, signal.SIGKILL, "epoch 2/3:", delay=random.uniform(0.0, 0.5))
    assert r.returncode == -signal.SIGKILL
    r2 = _cmd(root, "train", VARIANT)
    assert r2.returncode == 0, r2.stderr
    assert "resuming from" in r2.stderr
    _same(reference, _result(root))


def test_changed_params_start_over(tmp_path):
    root = _project(tmp_path)
    r = _train_and_kill(root, signal.SIGTERM, "epoch 1/3:", delay=0.0)
    assert r.returncode == 128 + signal.SIGTERM
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["nets"][VARIANT]["train"]["optimizer"]["lr"] = 0.005
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    r2 = _cmd(root, "train", VARIANT)
    assert r2.returncode == 0 and "params changed" in r2.stderr and "resuming" not in r2.stderr


def test_corrupt_checkpoint_reported_by_name(tmp_path):
    root = _project(tmp_path)
    resume = root / "models" / "resume" / f"{VARIANT}.pt"
    resume.parent.mkdir(parents=True)
    resume.write_bytes(b"PK\x03\x04 truncated zip")
    r = _cmd(root, "train", VARIANT)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"netpipe: error: resume checkpoint {resume.relative_to(root)} is corrupt")


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only loading: a checkpoint that would run code when unpickled is refused, and nothing runs."""
    root = _project(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    best = root / "models" / f"{VARIANT}.pt"
    best.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "netpipe-checkpoint-1", "model": Evil()}, best)
    r = _cmd(root, "evaluate", VARIANT)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "is corrupt or not a netpipe checkpoint" in r.stderr
    assert not marker.exists()


def test_atomic_write_keeps_previous_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    fileio.write_json(target, {"top1": 0.5})

    def boom(tmp: Path) -> None:
        tmp.write_text('{"top1": 0.')  # a partial write, then a crash
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        fileio.write_with(target, boom)
    assert fileio.read_json(target) == {"top1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory_is_one_clear_error(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    with pytest.raises(NetpipeError, match=r"cannot write .*ro/x.json: permission denied"):
        fileio.write_json(d / "x.json", {})


def test_disk_full_is_one_clear_error_and_keeps_previous(tmp_path):
    """/dev/full fails every write with ENOSPC: the error names the file, the previous output stays."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    target = tmp_path / "report.md"
    fileio.write_text(target, "previous")

    def to_full(tmp: Path) -> None:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 65536)
            fh.flush()

    with pytest.raises(NetpipeError, match=r"cannot write .*report.md: no space left on device"):
        fileio.write_with(target, to_full)
    assert target.read_text() == "previous"
