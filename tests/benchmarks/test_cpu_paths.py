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
- test_netpipe_predict_vs_minimal   the same cold `netpipe predict`, alternated with a minimal onnxruntime + PIL
                                    script doing the same work: both medians and their ratio in extra_info
                                    (issue 16: the ratio should stay <= 1.2)
Timings depend on the machine and its load: compare runs made on the same machine.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BATCHES = [1, 8, 64]
ROUNDS = 9  # per command in test_netpipe_predict_vs_minimal


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
    files = sorted((root / "test").rglob("*.jpg"))
    assert len(files) == 70  # 7 per class
    files = files[:64]
    return files


def test_preprocess_throughput(benchmark, jpeg_images, pipeline_project):
    """Predict's preprocessing of 64 JPEG images (decode, colour, native size, centre crop, normalise), with the
    recipe from the metadata of a model exported by the real pipeline: images/s in extra_info."""
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


def netpipe_cmd() -> list[str]:
    """The console script beside this interpreter (as a user runs it), else `python -m pipeline`."""
    exe = shutil.which("netpipe", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "pipeline"]


def test_netpipe_predict_cold(benchmark, pipeline_project, jpeg_images):
    """A cold `netpipe predict --json IMAGE --model M`: a new Python process each round."""
    pytest.importorskip("pipeline.predict")
    model = pipeline_project / "models" / "alexnet_cifar.onnx"
    cmd = netpipe_cmd() + ["predict", "--json", "--model", str(model), str(jpeg_images[0])]

    def once():
        r = subprocess.run(cmd, cwd=pipeline_project, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return r

    once()  # OS file cache warm, as for a user's second call
    benchmark.group = "netpipe predict (cold process)"
    r = benchmark.pedantic(once, rounds=5, iterations=1, warmup_rounds=0)
    assert r.stdout.strip()


# What `netpipe predict --json --model M IMAGE` does, written as directly as onnxruntime and PIL allow: the
# preprocessing recipe from the model's metadata (native size, the eval protocol's padding and centre crop, the
# input size, mean/std), one session run, the top class. It skips what predict adds for arbitrary user files
# (format checks, EXIF orientation, transparency, aspect-ratio crop, errors as one line), none of which changes
# the work on the benchmark's 32x32 RGB JPEG.
MINIMAL_PREDICT = """\
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

model, image = sys.argv[1:3]
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = sess.get_modelmeta().custom_metadata_map
(h, w), ev, size = json.loads(meta["image_size"]), json.loads(meta["eval"]), int(meta["input_size"])
img = Image.open(image).convert("RGB" if meta["channels"] == "3" else "L").resize((w, h), Image.BILINEAR)
x = np.asarray(img).reshape(h, w, -1).transpose(2, 0, 1)
if ev.get("resize"):
    x = np.stack([np.asarray(Image.fromarray(c).resize((ev["resize"],) * 2, Image.BILINEAR)) for c in x])
if ev.get("pad"):
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[ev.get("padding_mode", "reflect")]
    x = np.pad(x, ((0, 0), (ev["pad"],) * 2, (ev["pad"],) * 2), mode=mode)
top, left = round((x.shape[1] - ev["crop"]) / 2), round((x.shape[2] - ev["crop"]) / 2)
x = x[:, top:top + ev["crop"], left:left + ev["crop"]]
if x.shape[1:] != (size, size):
    x = np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR)) for c in x])
mean, std = (np.array(json.loads(meta[k]), np.float32)[:, None, None] for k in ("mean", "std"))
x = ((x / np.float32(255) - mean) / std).astype(np.float32)[None]
logits = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
print(json.loads(meta["classes"])[int(logits.argmax())])
"""


def test_netpipe_predict_vs_minimal(benchmark, pipeline_project, jpeg_images, tmp_path):
    """Cold `netpipe predict --json --model M IMAGE` and MINIMAL_PREDICT on the same model and image, each a new
    process, alternated ROUNDS times in one run (so both see the same machine load): the median of each and
    netpipe's / the script's in extra_info. Both on the CPU provider (NETPIPE_FORCE_CPU): the same work on any
    machine. The benchmark's own statistics time a pair of runs; the ratio is the figure to compare."""
    pytest.importorskip("pipeline.predict")
    model = pipeline_project / "models" / "alexnet_cifar.onnx"
    script = tmp_path / "minimal_predict.py"
    script.write_text(MINIMAL_PREDICT)
    cmds = {"netpipe": netpipe_cmd() + ["predict", "--json", "--model", str(model), str(jpeg_images[0])],
            "minimal": [sys.executable, str(script), str(model), str(jpeg_images[0])]}
    env = {**os.environ, "NETPIPE_FORCE_CPU": "1"}
    times: dict[str, list[float]] = {name: [] for name in cmds}

    def once(name: str) -> str:
        t0 = time.perf_counter()
        r = subprocess.run(cmds[name], cwd=pipeline_project, capture_output=True, text=True, timeout=120, env=env)
        times[name].append(time.perf_counter() - t0)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout

    # one untimed run each (OS file cache warm), which also checks that both do the same work: the same top class
    assert json.loads(once("netpipe"))[0]["predictions"][0]["class"] == once("minimal").strip()
    for v in times.values():
        v.clear()
    benchmark.group = "netpipe predict vs minimal script (cold processes)"
    benchmark.pedantic(lambda: [once(name) for name in cmds], rounds=ROUNDS, iterations=1, warmup_rounds=0)
    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = med["netpipe"] / med["minimal"]
    benchmark.extra_info.update(rounds=ROUNDS, netpipe_median_s=round(med["netpipe"], 4),
                                minimal_median_s=round(med["minimal"], 4), ratio=round(ratio, 3))
    print(f"\nnetpipe predict {med['netpipe']:.3f} s, minimal script {med['minimal']:.3f} s (medians of {ROUNDS}): "
          f"ratio {ratio:.2f}")
    assert math.isfinite(ratio) and ratio > 0
