"""pytest-benchmark suite for netpipe's CPU paths, to compare between commits.

Run (from the project root; pyproject's addopts hold --benchmark-skip, which --benchmark-only overrides):

    .venv/bin/pytest tests/benchmarks --benchmark-only --benchmark-autosave

Results are saved under .benchmarks/ (git-ignored), one file per run; compare two runs, e.g. the last two:

    .venv/bin/pytest-benchmark compare --group-by=name --columns=min,median,mean,stddev,rounds

What is measured:
- test_preprocess_throughput        pipeline.preprocess (predict's numpy/PIL path): 64 JPEG images per call
- test_ort_cpu_latency[BATCH]       onnxruntime CPU, one sess.run of a freshly exported alexnet_cifar (fixed seed)
                                    at batch 1, 8 and 64; extra_info holds images_per_s
- test_netpipe_predict_cold         `netpipe predict` as a user runs it: a new process (imports, session, one
                                    image), on a model from the real pipeline (tests/conftest.py pipeline_project)
Timings depend on the machine and its load: compare runs made on the same machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BATCHES = [1, 8, 64]


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """alexnet_cifar (fixed seed weights) exported by torch.onnx.export with a dynamic batch axis."""
    import torch

    from pipeline import nets

    torch.manual_seed(0)
    model = nets.create("alexnet_cifar", num_classes=10, in_channels=3).eval()
    path = tmp_path_factory.mktemp("bench_onnx") / "alexnet_cifar.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, opset_version=18,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


@pytest.mark.parametrize("batch", BATCHES)
def test_ort_cpu_latency(benchmark, tiny_onnx, batch):
    from pipeline import runtime

    sess = runtime.session(tiny_onnx, prefer_cuda=False)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    sess.run(None, {name: x})  # first run (allocation) outside the timing
    benchmark.group = "ort_cpu latency"
    benchmark.extra_info["batch"] = batch
    out = benchmark(sess.run, None, {name: x})
    assert out[0].shape == (batch, 10)
    benchmark.extra_info["images_per_s"] = batch / benchmark.stats.stats.median


@pytest.fixture(scope="module")
def jpeg_images(tmp_path_factory) -> list[Path]:
    from tests.datagen import CIFAR_CLASSES, make_image_folder

    root = make_image_folder(tmp_path_factory.mktemp("bench_images"), classes=CIFAR_CLASSES, n_train=0, n_test=7,
                             ext="jpg")
    files = sorted((root / "test").rglob("*.jpg"))[:64]
    assert len(files) >= 64 or len(files) == 70
    return files


def test_preprocess_throughput(benchmark, jpeg_images, pipeline_project):
    """Predict's preprocessing of 64 JPEG images (decode, colour, native size, centre crop, normalise), with the
    recipe from the metadata of a model exported by the real pipeline: images/s in extra_info."""
    import json

    import onnx

    from pipeline import preprocess

    model_path = pipeline_project / "models" / "alexnet_cifar.onnx"
    meta = {p.key: p.value for p in onnx.load(str(model_path), load_external_data=False).metadata_props}
    channels, hw = int(meta["channels"]), tuple(json.loads(meta["image_size"]))
    ev, size = json.loads(meta["eval"]), int(meta["input_size"])
    mean, std = json.loads(meta["mean"]), json.loads(meta["std"])
    digits = meta.get("format") == "mnist"

    def run():
        x = [preprocess.views(preprocess.load(f, channels, hw, digits), ev, size) for f in jpeg_images]
        return preprocess.normalize(np.concatenate(x), mean, std)

    benchmark.group = "preprocess"
    benchmark.extra_info["images"] = len(jpeg_images)
    out = benchmark(run)
    assert out.shape == (len(jpeg_images), channels, size, size) and out.dtype == np.float32
    benchmark.extra_info["images_per_s"] = len(jpeg_images) / benchmark.stats.stats.median


def test_netpipe_predict_cold(benchmark, pipeline_project, jpeg_images):
    """A cold `netpipe predict --json IMAGE --model M`: a new Python process each round."""
    pytest.importorskip("pipeline.predict")
    exe = shutil.which("netpipe", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "pipeline"]
    model = pipeline_project / "models" / "alexnet_cifar.onnx"
    cmd += ["predict", "--json", "--model", str(model), str(jpeg_images[0])]

    def once():
        r = subprocess.run(cmd, cwd=pipeline_project, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return r

    once()  # OS file cache warm, as for a user's second call
    benchmark.group = "netpipe predict (cold process)"
    r = benchmark.pedantic(once, rounds=5, iterations=1, warmup_rounds=0)
    assert r.stdout.strip()
