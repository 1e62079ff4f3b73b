# the CPU's kind: CI runs on machines with native bf16 (AMX or AVX512-BF16) and on machines without (AVX2 only)
import pytest


def _cpu_kind() -> str:
    from pipeline import speed

    return ("native bf16" if speed.bf16_native() else "no native bf16") + f" ({speed.cpu_model()})"


def pytest_report_header(config):
    return f"CPU: {_cpu_kind()}"


def pytest_configure(config):
    """netpipe's per-machine measurement caches (speed choices, peaks) in a folder of this run's own, shared by its
    xdist workers and the commands they start: never the user's ~/.cache/netpipe, which a measurement taken while
    other tests load the CPUs would skew."""
    import os
    import tempfile

    if not hasattr(config, "workerinput"):  # the controller (or the only process): workers inherit it
        os.environ["NETPIPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="netpipe-test-cache-")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one process when benchmarking (pytest-benchmark measures nothing under
    xdist, and two processes on two cores would time each other); otherwise xdist's own count."""
    return 0 if config.getoption("benchmark_only", False) else None


@pytest.fixture
def cpu_kind(record_property) -> str:
    """For a test whose assertions depend on the CPU's abilities: the kind it ran on, named in the test's report
    properties and counted in the run's closing summary (from the reports, so under xdist too)."""
    kind = _cpu_kind()
    record_property("cpu_kind", kind)
    return kind


_RAN: list[str] = []  # node ids of the tests that took cpu_kind, from their reports (the workers' ones under xdist)


def pytest_runtest_logreport(report):
    if report.when == "call" and any(k == "cpu_kind" for k, _ in report.user_properties):
        _RAN.append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _RAN:
        terminalreporter.write_line(f"{len(_RAN)} CPU-dependent tests ran on a CPU with {_cpu_kind()}")


# data fixtures

from tests.datagen import make_cifar_batches, make_image_folder, make_mnist_idx


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty project directory (prepare writes data/prepared/ relative to the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cifar_dir(tmp_path):
    """A folder holding cifar-10-batches-py/ (100 train, 50 test images)."""
    make_cifar_batches(tmp_path / "cifar")
    return tmp_path / "cifar"


@pytest.fixture
def mnist_dir(tmp_path):
    """A folder with MNIST's four gzipped idx files (100 train, 50 test images)."""
    return make_mnist_idx(tmp_path / "mnist")


@pytest.fixture
def image_folder(tmp_path):
    """train/{cat,dog,frog}/*.png and test/... (8 and 4 RGB 32x32 images per class)."""
    return make_image_folder(tmp_path / "images")


# bench/report fixtures
import contextlib as _contextlib
import os as _os
import shutil as _shutil
from pathlib import Path as _Path

import yaml as _yaml

_REPO = _Path(__file__).resolve().parents[1]
# Two datasets (the official-format CIFAR batches and a JPEG image-folder copy) and three small variants:
# googlenet_cifar (3.1 GFLOPs an image) would make the 10-crop evaluation alone take minutes on 2 CPU cores.
TINY_VARIANTS = {"alexnet_cifar": "cifar10", "alexnet_thinner_4": "cifar10", "alexnet_cifar_nolrn": "cifar10_jpeg"}


@_contextlib.contextmanager
def _cwd(path):
    old = _os.getcwd()
    _os.chdir(path)
    try:
        yield
    finally:
        _os.chdir(old)


def tiny_project_params(root) -> dict:
    """The repo's params.yaml cut down to TINY_VARIANTS on tiny data under ROOT/raw, quick mode on."""
    from tests.datagen import CIFAR_CLASSES

    raw = _yaml.safe_load((_REPO / "params.yaml").read_text())
    raw["data"] = {
        "cifar10": {**raw["data"]["cifar10"], "source": "local", "path": str(root / "raw" / "cifar-10-batches-py"),
                    "val_size": 16},
        "cifar10_jpeg": {"source": "folder", "path": str(root / "raw" / "cifar10-jpeg.tar.gz"), "val_size": 10,
                         "mean": list(raw["data"]["cifar10"]["mean"]), "std": list(raw["data"]["cifar10"]["std"])},
    }
    assert len(CIFAR_CLASSES) == 10
    raw["variants"] = dict(TINY_VARIANTS)
    raw["datasets"] = sorted(set(raw["variants"].values()))
    raw["nets"] = {k: raw["nets"][k] for k in TINY_VARIANTS}
    for net in raw["nets"].values():
        net["train"].update({"batch_size": 8, "eval_batch_size": 64, "log_every": 2})
        net["eval"]["batch_size"] = 64
        if net["arch"] == "alexnet_cifar":  # the compact 32->16->8->4 version: 3.3M parameters, not 102M
            net["options"]["pool_stride"] = 2
    backends, precisions = ["ort_cuda", "ort_cpu", "torch_eager", "torch_cuda_graph"], ["fp32", "fp16"]
    raw["quick"] = {"enabled": True, "epochs": 1, "max_steps_per_epoch": 2, "batch_size": 8, "eval_samples": 16,
                    "bench_batch_sizes": [1, 4], "bench_iterations": 5, "bench_backends": backends,
                    "bench_precisions": precisions}
    raw["export"]["parity_samples"] = 4  # the default tolerance (relative beyond logits of 1: see pipeline/export.py)
    raw["bench"].update({"warmup": 1, "backends": backends, "precisions": precisions})
    return raw


def build_tiny_project(root) -> dict:
    """Write tiny data and params in ROOT and run the real stages prepare -> train -> evaluate -> export -> bench
    for every variant (stage functions in-process, as `netpipe` calls them). Returns {variant: bench output}."""
    from pipeline import bench, data, evaluate, export, params, train
    from tests.datagen import CIFAR_CLASSES, make_cifar_batches, make_image_folder

    root = _Path(root)
    make_cifar_batches(root / "raw", n_train=96, n_test=32)
    tar = make_image_folder(root / "raw" / "jpeg", classes=CIFAR_CLASSES, n_train=4, n_test=2, ext="jpg", tar=True)
    _shutil.move(tar, root / "raw" / "cifar10-jpeg.tar.gz")
    (root / "params.yaml").write_text(_yaml.safe_dump(tiny_project_params(root), sort_keys=False))
    out = {}
    with _cwd(root):
        p = params.load("params.yaml")
        for ds in sorted(set(p.variants.values())):
            data.prepare(p, ds)
        for v in p.variants:
            train.run(p, v)
            evaluate.run(p, v)
            export.run(p, v)
            out[v] = bench.run(p, v)
    return out


@pytest.fixture(scope="session")
def pipeline_project(tmp_path_factory):
    """A tiny project (ROOT) where prepare -> train -> evaluate -> export -> bench have run for TINY_VARIANTS.
    Shared by the whole session: tests that change it must work on a copy."""
    root = tmp_path_factory.mktemp("netpipe_project")
    build_tiny_project(root)
    return root
