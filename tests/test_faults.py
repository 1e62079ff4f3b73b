"""Faults: a real training process killed (SIGTERM, SIGINT, SIGKILL) and started again with the same command
resumes and ends with exactly the same weights and curves as an uninterrupted run (CPU, deterministic).
Also: atomic outputs, corrupt checkpoints reported by name, unwritable output directories."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import data, fileio, params
from pipeline.errors import NetpipeError
from tests.conftest import _cwd
from tests.datagen import make_cifar_batches
from tests.procs import pythonpath, read_until

ROOT = Path(__file__).resolve().parents[1]
VARIANT = "alexnet_cifar"  # small and with dropout: exercises the RNG state on resume
pytestmark = pytest.mark.slow


def _project(root: Path) -> Path:
    make_cifar_batches(root / "raw", n_train=120, n_test=20)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"] = {"cifar10": {"source": "local", "path": str(root / "raw"), "val_size": 24}}
    raw["variants"] = {VARIANT: "cifar10"}
    raw["datasets"] = sorted(set(raw["variants"].values()))
    net = raw["nets"][VARIANT]
    net["options"]["pool_stride"] = 2  # the compact version: fast checkpoints
    net["train"].update({"epochs": 3, "batch_size": 12, "max_steps_per_epoch": 8, "log_every": 1, "eval_batch_size": 24,
                         "deterministic": True})
    raw["nets"] = {VARIANT: net}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with _cwd(root):  # in this process: the training commands are what these tests run for real
        data.prepare(params.load("params.yaml"), "cifar10")
    return root


HOOKS = ROOT / "tests" / "hooks"  # sitecustomize.py: NETPIPE_TEST_SIGNAL sends a signal after a given step
STEPS = 3 * 8  # epochs x max_steps_per_epoch in _project


def _env(signal_at: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath(HOOKS, ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("NETPIPE_TEST_SIGNAL", None)
    if signal_at:
        env["NETPIPE_TEST_SIGNAL"] = signal_at
    return env


def _cmd(root: Path, *args: str, signal_at: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=root, env=_env(signal_at),
                          capture_output=True, text=True, timeout=600)


def _train_and_kill(root: Path, sig: int, after_line: str, delay: float) -> subprocess.CompletedProcess:
    """Start training, wait for `after_line` on stderr (plus `delay` s), send `sig`, wait for the exit."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "train", VARIANT], cwd=root, env=_env(),
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = read_until(proc, proc.stderr, after_line, timeout=300)
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


def _final_state(root: Path, steps_done: int) -> dict:
    """Train on from the resume point up to the last step of the last epoch, stopping there with SIGTERM (after the
    last epoch's checkpoint, before the run completes): the resume checkpoint then holds the final weights,
    optimizer state and generator states. Returns it."""
    r = _cmd(root, "train", VARIANT, signal_at=f"{STEPS - steps_done} SIGTERM self")
    assert r.returncode == 128 + signal.SIGTERM, r.stderr[-2000:]
    assert "SIGTERM: stopped after epoch 3" in r.stderr, r.stderr[-2000:]
    return torch.load(root / "models" / "resume" / f"{VARIANT}.pt", weights_only=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its final training state, then (the same command again) its best model and curves."""
    root = _project(tmp_path_factory.mktemp("ref"))
    final = _final_state(root, 0)
    r = _cmd(root, "train", VARIANT)
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr and not (root / "models" / "resume" / f"{VARIANT}.pt").exists()
    return _result(root), final


def _same(a: tuple[dict, str], b: tuple[dict, str]) -> None:
    assert a[1] == b[1]
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), k


def _same_state(a: dict, b: dict) -> None:
    """Final weights, optimizer state (momentum buffers, lr) and generator states: bitwise."""
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (3, 0)
    _same((a["model"], ""), (b["model"], ""))
    oa, ob = a["optimizer"], b["optimizer"]
    assert oa["param_groups"] == ob["param_groups"] and oa["state"].keys() == ob["state"].keys()
    for i in oa["state"]:
        assert oa["state"][i].keys() == ob["state"][i].keys()
        for k in oa["state"][i]:
            assert torch.equal(oa["state"][i][k], ob["state"][i][k]), (i, k)
    assert a["history"] == b["history"] or [{**h, "seconds": 0} for h in a["history"]] == \
        [{**h, "seconds": 0} for h in b["history"]]


# Kill points, on purpose (each after step 4: see tests/hooks/sitecustomize.py): inside epoch 1, the last step of epoch 1 (the signal lands at the epoch boundary: the
# run stops after validating epoch 1), the first step of epoch 2, and one inside epoch 2 drawn from a seeded generator.
KILLS = [("SIGINT", 5), ("SIGTERM", 8), ("SIGTERM", 9), ("SIGTERM", random.Random(14).randrange(10, 16))]


@pytest.mark.parametrize("name,step", KILLS, ids=[f"{n}-step{s}" for n, s in KILLS])
def test_signal_checkpoints_and_resumes_bitwise(tmp_path, reference, name, step):
    root = _project(tmp_path)
    sig = signal.Signals[name]
    r = _cmd(root, "train", VARIANT, signal_at=f"{step} {name} self")
    assert r.returncode == 128 + sig, r.stderr[-2000:]
    epoch, at = divmod(step, 8)
    where = f"stopped after epoch {epoch}" if at == 0 else f"checkpoint saved at epoch {epoch + 1} step {at}/8"
    assert f"{name}: {where}" in r.stderr and "run the same command to resume" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    # `dvc repro` deletes a stage's outputs before it runs the stage again: the best epoch so far must survive
    (root / "models" / f"{VARIANT}.pt").unlink(missing_ok=True)
    shutil.rmtree(root / "artifacts" / "train", ignore_errors=True)
    final = _final_state(root, step)
    _same_state(reference[1], final)
    r2 = _cmd(root, "train", VARIANT)
    assert r2.returncode == 0, r2.stderr
    assert "resuming from" in r2.stderr
    _same(reference[0], _result(root))


def test_sigkill_resumes_from_last_epoch(tmp_path, reference):
    root = _project(tmp_path)
    r = _cmd(root, "train", VARIANT, signal_at="13 SIGKILL self")  # mid-epoch 2: nothing saved since epoch 1
    assert r.returncode == -signal.SIGKILL
    ck = torch.load(root / "models" / "resume" / f"{VARIANT}.pt", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (1, 0)
    _same_state(reference[1], _final_state(root, 8))
    r2 = _cmd(root, "train", VARIANT)
    assert r2.returncode == 0, r2.stderr
    assert "resuming from" in r2.stderr
    _same(reference[0], _result(root))
    # a completed run leaves no resume state: running it again (as `dvc repro` does after a code change) trains
    # from scratch instead of "resuming" a finished run and writing nothing (seen through its first epoch)
    assert not list((root / "models" / "resume").iterdir())
    r3 = _train_and_kill(root, signal.SIGKILL, "] epoch 1/3:", delay=0.0)
    assert "resuming" not in r3.stderr and "epoch 1/3: train loss" in r3.stderr, r3.stderr[-2000:]


def test_changed_params_start_over(tmp_path):
    root = _project(tmp_path)
    r = _train_and_kill(root, signal.SIGTERM, "epoch 1/3:", delay=0.0)
    assert r.returncode == 128 + signal.SIGTERM
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["nets"][VARIANT]["train"]["optimizer"]["lr"] = 0.005
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    r2 = _train_and_kill(root, signal.SIGKILL, "] epoch 1/3:", delay=0.0)  # seen through its first epoch
    assert "params changed" in r2.stderr and "starting over" in r2.stderr and "resuming" not in r2.stderr, r2.stderr


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


def test_stale_temporary_files_are_removed(tmp_path):
    """A write killed between creating its temporary file and the rename (SIGKILL, power loss) leaves the
    temporary file; the next write of the same output, or discarding it, removes it."""
    target = tmp_path / "alexnet_cifar.pt"
    stale = tmp_path / ".alexnet_cifar.pt.k1ll3d.pt"
    other = tmp_path / ".alexnet_cifar.best.pt.k1ll3d.pt"  # another output's: not ours to remove
    stale.write_bytes(b"half a checkpoint")
    other.write_bytes(b"half another checkpoint")
    fileio.write_bytes(target, b"new")
    assert not stale.exists() and other.exists() and target.read_bytes() == b"new"
    stale.write_bytes(b"half a checkpoint")
    fileio.discard(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]


@contextlib.contextmanager
def _unwritable(d: Path):
    """Make directory D unwritable for this process: chmod for a user; for root, who writes anywhere despite the
    mode bits, the immutable attribute (chattr +i: not even root may create a file there)."""
    if os.geteuid() != 0:
        d.chmod(0o500)
    elif subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: no way to make a directory unwritable")
    try:
        yield d
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(d)], check=True)
        d.chmod(0o755)


def test_unwritable_directory_is_one_clear_error(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    fileio.write_json(d / "x.json", {"previous": 1})
    with _unwritable(d), pytest.raises(NetpipeError, match=r"cannot write .*ro/x.json: permission denied"):
        fileio.write_json(d / "x.json", {})
    assert fileio.read_json(d / "x.json") == {"previous": 1}
    assert [p.name for p in d.iterdir()] == ["x.json"]


def test_unwritable_output_directory_through_the_cli(tmp_path):
    """A stage whose output directory can't be written: one line naming the file, exit 1, previous output intact."""
    root = _project(tmp_path)
    prepared = root / "data" / "prepared" / "cifar10.npz"
    before = prepared.read_bytes()
    with _unwritable(prepared.parent):
        r = _cmd(root, "prepare")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "netpipe: error: cannot write data/prepared/cifar10.npz: permission denied (directory not writable); "
        "the previous file, if any, is left unchanged")
    assert prepared.read_bytes() == before


def test_disk_full_checkpoint_is_one_clear_error(tmp_path):
    """torch.save on a full disk raises a bare RuntimeError; netpipe reports it in one line naming the file."""
    from pipeline import model

    target = tmp_path / "best.pt"
    model.save(target, {"previous": torch.zeros(1)})
    with pytest.raises(NetpipeError, match=r"cannot write .*best.pt: write failed, disk full or I/O error"):
        fileio.write_with(target, lambda tmp: model.torch_save({"w": torch.zeros(10**6)}, "/dev/full"))
    assert torch.equal(torch.load(target, weights_only=True)["previous"], torch.zeros(1))


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


def test_diverging_loss_stops_with_one_line_naming_epoch_and_step(tmp_path):
    """A learning rate that blows the loss up stops the run at the first check (every step here, log_every 1)
    with one line naming the epoch and step, instead of training on NaNs."""
    root = _project(tmp_path)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["nets"][VARIANT]["train"]["optimizer"]["lr"] = 1.0e6
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    r = _cmd(root, "train", VARIANT)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert re.fullmatch(rf"netpipe: error: {VARIANT}: loss is (nan|inf) at epoch 1, step \d/8 \(lr [0-9.e+]+\); "
                        rf"lower nets\.{VARIANT}\.train\.optimizer\.lr or change the init",
                        r.stderr.strip().splitlines()[-1]), r.stderr[-2000:]
    assert not (root / "models" / f"{VARIANT}.pt").exists()


def test_lost_best_checkpoint_is_one_clear_error(tmp_path):
    """An interrupted run whose best-so-far file was deleted by hand: one line naming it and what to do."""
    root = _project(tmp_path)
    r = _train_and_kill(root, signal.SIGTERM, "] epoch 2/3:", delay=0.0)
    assert r.returncode == 128 + signal.SIGTERM, r.stderr[-2000:]
    best = Path("models") / "resume" / f"{VARIANT}.best.pt"
    (root / best).unlink()
    r2 = _cmd(root, "train", VARIANT)
    assert r2.returncode == 1 and "Traceback" not in r2.stderr, r2.stderr[-2000:]
    assert r2.stderr.strip().splitlines()[-1] == (
        f"netpipe: error: {best} is missing: the best checkpoint of this run is lost; delete "
        f"models/resume/{VARIANT}.pt to train {VARIANT} again")


def test_resume_after_a_code_change_starts_over(tmp_path):
    """A run interrupted, then the training code edited: the next run does not continue the old run (whose weights
    came from other code); it says why in one line and trains from scratch."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "pipeline", code / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    root = _project(tmp_path / "project")
    env = {**_env(), "PYTHONPATH": pythonpath(code)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "train", VARIANT], cwd=root, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    read_until(proc, proc.stderr, f"[{VARIANT}] epoch 1/3:", timeout=300)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=300)
    assert (root / "models" / "resume" / f"{VARIANT}.pt").exists()
    with open(code / "pipeline" / "train.py", "a") as fh:
        fh.write("\n# an edit to the training loop\n")
    r = subprocess.run([sys.executable, "-m", "pipeline", "train", VARIANT], cwd=root, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "the training code (pipeline/, dvc.yaml's deps) changed since" in r.stderr and "resuming" not in r.stderr
    assert len((root / "artifacts" / "train" / f"{VARIANT}.csv").read_text().splitlines()) == 4  # 3 epochs, all new
