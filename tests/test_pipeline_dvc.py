"""A real `dvc repro` of the whole pipeline in a temporary copy of the project, on tiny data written in the
real formats (CIFAR pickled batches, MNIST idx, an image-folder tarball), with a reduced set of variants and
steps set through params. Then: every output exists and holds sane values, a second `dvc repro` does nothing,
changing one variant's learning rate invalidates that variant only, and a `dvc repro` interrupted in the
middle of a training stage finishes when run again without redoing the stages that had completed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.datagen import make_cifar_batches, make_image_folder, make_mnist_idx
from tests.procs import pythonpath, read_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# One small variant per dataset and format (googlenet_cifar's 3 GFLOPs an image would double the run on 2 cores;
# tests/test_nets.py trains it a step).
VARIANTS = {"alexnet_cifar": "cifar10", "alexnet_mnist": "mnist", "alexnet_thinner_4": "shapes"}


def _params(root: Path) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    tiny = {"epochs": 2, "batch_size": 8, "max_steps_per_epoch": 3, "eval_batch_size": 64, "log_every": 2}
    raw["data"] = {
        "cifar10": {**raw["data"]["cifar10"], "source": "local", "path": str(root / "raw" / "cifar"), "val_size": 20},
        "mnist": {**raw["data"]["mnist"], "source": "local", "path": str(root / "raw" / "mnist"), "val_size": 8},
        "shapes": {"source": "folder", "path": str(root / "raw" / "shapes.tar.gz"), "val_size": 6},
    }
    raw["variants"] = VARIANTS
    raw["datasets"] = sorted(set(raw["variants"].values()))
    nets = {}
    for name in VARIANTS:
        net = raw["nets"][name]
        net["train"].update(tiny)
        nets[name] = net
    nets["alexnet_mnist"]["train"]["batch_size"] = 4
    nets["alexnet_cifar"]["options"]["pool_stride"] = 2  # the compact version keeps files small
    raw["nets"] = nets
    raw["export"].update({"parity_samples": 4, "int8_calibration_images": 16})  # tests/test_int8.py: calibration
    raw["bench"] = {"batch_sizes": [1, 4], "warmup": 1, "iterations": 3, "backends": ["ort_cpu", "torch_eager"],
                    "precisions": ["fp32"]}
    return raw


def _env(root: Path) -> dict:
    """The stages run the project copy's own code (PYTHONPATH comes before the editable install), and Python
    writes bytecode as on a user's machine, so __pycache__ appears beside the code DVC hashes as deps."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": pythonpath(root), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=900)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return r


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("netpipe")
    for name in ("dvc.yaml", ".dvcignore", "pyproject.toml"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    make_cifar_batches(root / "raw" / "cifar", n_train=80, n_test=40)
    make_mnist_idx(root / "raw" / "mnist", n_train=40, n_test=10)  # alexnet_mnist runs at 227x227: few images
    tar = make_image_folder(root / "raw" / "shapes", classes=("circle", "square", "triangle"), n_train=10, n_test=5,
                            size=32, tar=True)
    shutil.move(tar, root / "raw" / "shapes.tar.gz")
    (root / "params.yaml").write_text(yaml.safe_dump(_params(root), sort_keys=False))
    (root / ".gitignore").write_text("/raw/\n")
    _run(["git", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "init"], root)
    r = _run([sys.executable, "-m", "dvc", "repro"], root)
    (root / "first_repro.log").write_text(r.stdout + r.stderr)
    return root


def test_outputs_exist_and_are_sane(project):
    for name, dataset in VARIANTS.items():
        assert (project / "models" / f"{name}.pt").stat().st_size > 1000
        assert (project / "models" / f"{name}.onnx").stat().st_size > 1000
        m = json.loads((project / "artifacts" / "metrics" / f"{name}.json").read_text())
        for key in ("top1", "top1_10crop", "top5", "val_top1"):
            assert 0.0 <= m[key] <= 1.0, (name, key, m[key])
        t = json.loads((project / "artifacts" / "train" / f"{name}.json").read_text())
        assert t["epochs"] == 2 and t["steps_per_epoch"] == 3 and t["train_seconds"] > 0
        curves = (project / "artifacts" / "train" / f"{name}.csv").read_text().splitlines()
        assert curves[0].startswith("epoch,") and len(curves) == 3
        e = json.loads((project / "artifacts" / "export" / f"{name}.json").read_text())
        par = e["parity"]  # the stage's own rule: absolute up to logits of 1, relative beyond (quick runs' logits are huge)
        assert par["max_abs_diff"] <= par["tolerance"] * max(1.0, par["logit_scale"]) and par["max_rel_diff"] <= 1e-4
        b = json.loads((project / "artifacts" / "bench" / f"{name}.json").read_text())
        assert b["results"]["ort_cpu"]["fp32"]["1"]["p50_ms"] > 0
    summary = json.loads((project / "artifacts" / "summary.json").read_text())
    assert set(summary["variants"]) == set(VARIANTS)
    assert set(summary["best"]) == {"cifar10", "mnist", "shapes"}
    report = (project / "artifacts" / "report.md").read_text()
    for name in VARIANTS:
        assert name in report


def test_dvc_metrics_and_plots_render(project):
    """DVC's metrics are the headline files only: 7 numbers a variant (the full records are plain outputs)."""
    r = _run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], project)
    shown = json.loads(r.stdout)
    files = {path: d["data"] for rev in shown.values() for path, d in rev["data"].items()}
    assert set(files) == {f"artifacts/headline/{v}.{st}.json" for v in VARIANTS
                          for st in ("train", "evaluate", "export", "bench")}
    for name in VARIANTS:
        numbers = {k: v for st in ("train", "evaluate", "export", "bench")
                   for k, v in files[f"artifacts/headline/{name}.{st}.json"].items()}
        assert sorted(numbers) == ["images_per_s_largest_batch", "latency_ms_batch1", "parity_max_abs_diff", "top1",
                                   "top1_10crop", "train_minutes", "val_top1"]
        assert all(isinstance(x, (int, float)) for x in numbers.values()), numbers
        m = json.loads((project / "artifacts" / "metrics" / f"{name}.json").read_text())
        assert (numbers["top1"], numbers["top1_10crop"]) == (m["top1"], m["top1_10crop"])
    r = _run([sys.executable, "-m", "dvc", "plots", "show", "--json"], project)
    shown = json.loads(r.stdout)
    assert not shown.get("errors"), shown["errors"]
    for name in VARIANTS:
        assert f"artifacts/train/{name}.csv" in shown["data"]
    assert '"val_acc"' in r.stdout


def test_second_repro_does_nothing(project):
    # the stages ran this copy's code, and its bytecode beside it does not count as a changed dependency
    assert list((project / "pipeline" / "nets" / "__pycache__").glob("*.pyc"))
    r = _run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Running stage" not in r.stdout + r.stderr
    assert "up to date" in (r.stdout + r.stderr).lower()


def test_changing_one_lr_reruns_that_variant_only(project):
    params_file = project / "params.yaml"
    original = params_file.read_text()
    raw = yaml.safe_load(original)
    raw["nets"]["alexnet_cifar"]["train"]["optimizer"]["lr"] *= 0.5
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        r = _run([sys.executable, "-m", "dvc", "status", "--json"], project)
        changed = set(json.loads(r.stdout))
        assert "train@alexnet_cifar" in changed
        assert not {s for s in changed if s.endswith(("alexnet_mnist", "alexnet_thinner_4"))}
        assert not {s for s in changed if s.startswith("prepare")}
        # dvc params diff names the one changed knob, old and new value
        r = _run([sys.executable, "-m", "dvc", "params", "diff", "--json"], project)
        diff = json.loads(r.stdout)["params.yaml"]
        lr = diff.pop("nets.alexnet_cifar.train.optimizer.lr")
        assert lr["new"] == lr["old"] * 0.5 and not diff, diff
    finally:
        params_file.write_text(original)


def _changed_after(project: Path, path: Path, edit) -> set[str]:
    """The stages `dvc status` marks changed after `edit(text)` is written to `path` (restored afterwards)."""
    original = path.read_text()
    path.write_text(edit(original))
    try:
        r = _run([sys.executable, "-m", "dvc", "status", "--json"], project)
        return set(json.loads(r.stdout))
    finally:
        path.write_text(original)


def test_a_seed_reference_note_reruns_the_report_only(project):
    def edit(text):
        raw = yaml.safe_load(text)
        raw["nets"]["alexnet_cifar"]["seed_reference"]["note"] = "a figure re-read from the document"
        return yaml.safe_dump(raw, sort_keys=False)

    assert _changed_after(project, project / "params.yaml", edit) == {"report"}


@pytest.mark.parametrize(("key", "value", "stages"), [
    ("bench_iterations", 7, {"bench"}),  # the quick check's benchmark only
    ("bench_warmup", 2, {"bench"}),
    ("eval_samples", 12, {"train", "evaluate", "export"}),  # the images validated, evaluated and checked on
])
def test_a_quick_key_reruns_the_stages_that_read_it(project, key, value, stages):
    def edit(text):
        raw = yaml.safe_load(text)
        raw["quick"][key] = value
        return yaml.safe_dump(raw, sort_keys=False)

    changed = _changed_after(project, project / "params.yaml", edit)
    assert {s.split("@")[0] for s in changed} == stages, changed


@pytest.mark.parametrize(("module", "stages"), [
    ("train.py", {"train"}),  # the training loop: training only
    ("model.py", {"train", "evaluate", "export", "bench"}),  # shared by every stage that loads a model
    ("report.py", {"report"}),
])
def test_a_code_edit_reruns_the_stages_that_run_that_code(project, module, stages):
    changed = _changed_after(project, project / "pipeline" / module, lambda t: t + "\n# edited\n")
    assert {s.split("@")[0] for s in changed} == stages, changed
    per_variant = stages - {"report", "prepare"}
    assert {s for s in changed if "@" in s} == {f"{st}@{v}" for st in per_variant for v in VARIANTS}


def test_interrupted_repro_finishes_without_redoing_completed_stages(project, tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while `dvc repro` trains, after the data
    stage before it has run, then `dvc repro` again: the stage that had completed is not run again, and the
    interrupted training resumes from its checkpoint although DVC deleted that stage's outputs before running
    it again. On a copy of the project (without its models and DVC cache, which these two stages do not need),
    so the other tests see the project as the first `dvc repro` left it, in whatever order they run."""
    project = shutil.copytree(project, tmp_path / "copy", symlinks=True,
                              ignore=lambda d, names: [n for n in names if (Path(d).name, n) in
                                                       {(project.name, "models"), (".dvc", "cache"), (".dvc", "tmp")}])
    params_file = project / "params.yaml"
    original = params_file.read_text()
    raw = yaml.safe_load(original)
    raw["data"]["shapes"]["val_size"] = 9  # prepare@shapes runs first (train@alexnet_thinner_4 depends on it)
    raw["nets"]["alexnet_thinner_4"]["train"].update({"epochs": 4, "log_every": 1})
    raw["nets"]["alexnet_thinner_4"]["train"]["optimizer"]["lr"] = 0.001
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    targets = ["train@alexnet_thinner_4"]
    dvc = [sys.executable, "-m", "dvc", "repro", *targets]
    try:
        proc = subprocess.Popen(dvc, cwd=project, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        seen = read_until(proc, proc.stdout, "[alexnet_thinner_4] epoch 1/4:", timeout=300)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        first = "".join(seen) + out
        assert proc.returncode != 0, first[-3000:]
        assert first.index("Running stage 'prepare@shapes'") < first.index("Running stage 'train@alexnet_thinner_4'")
        assert (project / "models" / "resume" / "alexnet_thinner_4.pt").exists(), first[-3000:]

        r = _run(dvc, project)
        log = r.stdout + r.stderr
        assert "Running stage 'prepare@shapes'" not in log, log  # completed before the interruption
        assert "Running stage 'train@alexnet_thinner_4'" in log and "resuming from" in log, log
        summary = json.loads((project / "artifacts" / "train" / "alexnet_thinner_4.json").read_text())
        curves = (project / "artifacts" / "train" / "alexnet_thinner_4.csv").read_text().splitlines()
        assert summary["epochs"] == 4 and len(curves) == 5
        assert (project / "models" / "alexnet_thinner_4.pt").stat().st_size > 1000
        assert not list((project / "models" / "resume").iterdir())  # finished: no resume state left
        r = _run([sys.executable, "-m", "dvc", "status", *targets], project)
        assert "up to date" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    finally:
        params_file.write_text(original)
