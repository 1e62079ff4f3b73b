"""`netpipe evaluate` and `netpipe export` on REAL stage outputs: the tiny project of tests/conftest.py
(`pipeline_project`: tiny CIFAR-format data, three variants trained 2 steps, evaluated, exported, benchmarked).
CPU only, no mocks: accuracies are recomputed independently (torchvision's TenCrop on the real checkpoint), the
ONNX files are checked with onnx.checker and run through onnxruntime, and export is re-run on a copy of the project
with a sabotaged tolerance and a tampered metrics file to see it fail with the measured numbers.

Full-file checks use the small variant (alexnet_thinner_4, 22 MB); the 400 MB alexnet_cifar files are only read
through their JSON records, to keep this file fast on 2 CPU cores.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from torchvision.transforms import v2

from pipeline import evaluate, export, params, paths, predict, preprocess, runtime, transforms
from pipeline.data import load_prepared
from pipeline.errors import NetpipeError
from pipeline.model import load_model, norm_tensors
from tests.conftest import TINY_VARIANTS

SMALL = "alexnet_thinner_4"  # 22 MB: the variant whose files the tests open
NETPIPE = Path(sys.executable).with_name("netpipe")
METADATA_KEYS = {"netpipe_format", "variant", "arch", "dataset", "format", "classes", "channels", "input_size",
                 "image_size", "mean", "std", "eval", "commit", "params_hash", "netpipe_version", "precision"}
ACC_KEYS = ("top1", "top5", "top1_10crop", "top5_10crop")


@pytest.fixture
def project(pipeline_project, monkeypatch):
    monkeypatch.chdir(pipeline_project)
    return pipeline_project


@pytest.fixture
def p(project):
    return params.load("params.yaml")


def _load(path) -> dict:
    return json.loads(Path(path).read_text())


def _test_split(p, variant):
    data = load_prepared(p.dataset_of(variant))
    x_test, y_test, x_val, y_val = evaluate.eval_images(p.plan(variant), data)
    return data, x_test, y_test, x_val, y_val


def _copy_for_export(src: Path, dst: Path, variant: str) -> Path:
    """A project copy where `netpipe export VARIANT` may write: params, data and artifacts copied, a real models/
    holding a link to the fixture's checkpoint (read only; export writes new .onnx files beside it)."""
    dst.mkdir(parents=True)
    shutil.copy(src / "params.yaml", dst / "params.yaml")
    shutil.copytree(src / "artifacts", dst / "artifacts")
    shutil.copytree(src / "data", dst / "data")
    (dst / "models").mkdir()
    os.symlink(src / "models" / f"{variant}.pt", dst / "models" / f"{variant}.pt")
    return dst


def _set_params(root: Path, **export_fields) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["export"].update(export_fields)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _ort(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _pad_mode(mode: str) -> str:
    return {"replicate": "edge"}.get(mode, mode)


# ---------------------------------------------------------------------------------------------------------
# evaluate: artifacts/metrics/VARIANT.json
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(TINY_VARIANTS))
def test_metrics_json_keys_and_consistency(p, variant):
    m = _load(paths.metrics(variant))
    data, x_test, y_test, x_val, y_val = _test_split(p, variant)
    classes = list(data.classes)
    assert m["variant"] == variant and m["dataset"] == TINY_VARIANTS[variant]
    assert m["command"] == f"netpipe evaluate {variant}" and m["quick"] is True
    for k in ACC_KEYS + ("val_top1",):
        assert isinstance(m[k], float) and 0.0 <= m[k] <= 1.0, (k, m[k])
    assert m["top1"] <= m["top5"] and m["top1_10crop"] <= m["top5_10crop"]
    assert m["crops"] == 10 and "10-crop" in m["protocol"] and "mirrored" in m["protocol"]
    assert m["n_test"] == len(y_test) == p.quick.eval_samples  # 16 of the tiny test sets
    assert m["n_val"] == len(y_val) > 0
    assert m["precision"] == "fp32" and m["device"]
    if not torch.cuda.is_available():
        assert m["device"].startswith("cpu")
    assert m["eval_seconds"] > 0  # both rounded: eval_seconds to 1 ms
    assert m["images_per_s"] == pytest.approx(m["n_test"] / m["eval_seconds"], rel=0.02 + 0.0006 / m["eval_seconds"])
    assert m["checkpoint"]["config_hash"] == p.variant_hash(variant)

    conf = m["confusion"]
    assert conf["classes"] == classes
    matrix = np.array(conf["matrix"])
    assert matrix.shape == (len(classes), len(classes)) and (matrix >= 0).all()
    assert matrix.sum() == m["n_test"]
    support = np.bincount(y_test, minlength=len(classes))
    assert matrix.sum(1).tolist() == support.tolist(), "rows are the true classes"
    assert np.trace(matrix) / m["n_test"] == pytest.approx(m["top1"], abs=1e-6), "single-crop top-1 = diagonal"
    assert list(m["per_class_top1"]) == classes
    for i, c in enumerate(classes):
        got = m["per_class_top1"][c]
        if support[i] == 0:
            assert got is None, c
        else:
            assert got == pytest.approx(matrix[i, i] / support[i], abs=1e-6), c


def test_evaluate_accuracy_recomputed_independently(p):
    """Single-crop, 10-crop (torchvision's TenCrop directly, padding by torchvision) and validation accuracy of the
    real checkpoint, computed here without evaluate.py or transforms.py, equal the recorded ones."""
    net = p.variant(SMALL)
    ev = net.eval
    _, x_test, y_test, x_val, y_val = _test_split(p, SMALL)
    model, _ = load_model(p.plan(SMALL), torch.device("cpu"))
    mean, std = (t.view(1, -1, 1, 1) for t in norm_tensors(p.plan(SMALL), torch.device("cpu")))

    def logits(views_u8: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model((views_u8.float() / 255.0 - mean) / std)

    def padded(x: np.ndarray) -> torch.Tensor:
        return v2.functional.pad(torch.from_numpy(x), [ev.pad], fill=0, padding_mode=_pad_mode(ev.padding_mode))

    assert not ev.resize and ev.crop == net.input_size  # no resize step in this protocol
    crops = v2.TenCrop(ev.crop)(padded(x_test))  # 10 x (N, C, 32, 32)
    per_view = torch.stack([logits(c) for c in crops], 1)  # (N, 10, classes)
    probs = per_view.softmax(-1).mean(1)
    centre = logits(v2.functional.center_crop(padded(x_test), [ev.crop]))
    y = torch.from_numpy(y_test)

    def top(scores, k):
        return (scores.topk(k, 1).indices == y[:, None]).any(1).float().mean().item()

    m = _load(paths.metrics(SMALL))
    assert m["top1"] == pytest.approx(top(centre, 1), abs=1e-6)
    assert m["top5"] == pytest.approx(top(centre, 5), abs=1e-6)
    assert m["top1_10crop"] == pytest.approx(top(probs, 1), abs=1e-6)
    assert m["top5_10crop"] == pytest.approx(top(probs, 5), abs=1e-6)
    val = logits(v2.functional.center_crop(padded(x_val), [ev.crop]))
    assert m["val_top1"] == pytest.approx((val.argmax(1) == torch.from_numpy(y_val)).float().mean().item(), abs=1e-6)

    # the logits evaluate.py computes are these, view for view (view 4 = the centre crop)
    ours = evaluate.crop_logits(model, x_test, net, *norm_tensors(p.plan(SMALL), torch.device("cpu")), torch.device("cpu"))
    scale = max(1.0, float(per_view.abs().max()))
    assert ours.shape == per_view.shape
    assert float((ours - per_view).abs().max()) <= 1e-5 * scale
    assert float((ours[:, evaluate.CENTRE] - centre).abs().max()) <= 1e-5 * scale


def test_multi_crop_averages_probabilities_not_logits():
    """Pinned on logits where the two rules disagree for every image: one confident view for class 0 (logit 10)
    and nine mild views for class 1 (logit 1). Averaged logits pick class 0 (1.0 vs 0.9); averaged softmax
    probabilities, computed here by hand, pick class 1 (0.518 vs 0.291): evaluate must score class 1."""
    e = math.exp(1.0)
    mild = [1 / (2 + e), e / (2 + e), 1 / (2 + e)]  # softmax of (0, 1, 0)
    confident = [math.exp(10) / (math.exp(10) + 2), 1 / (math.exp(10) + 2), 1 / (math.exp(10) + 2)]
    by_hand = [(confident[c] + 9 * mild[c]) / 10 for c in range(3)]
    assert by_hand[1] > by_hand[0] > by_hand[2]
    views = torch.tensor([[10.0, 0.0, 0.0]] + [[0.0, 1.0, 0.0]] * 9)  # (10 views, 3 classes)
    logits = views.expand(4, 10, 3).clone()  # 4 images
    assert logits.mean(1).argmax(1).tolist() == [0] * 4  # what logit averaging would score
    acc = evaluate.accuracy(logits, np.array([1, 1, 1, 1]))
    assert acc["top1_10crop"] == 1.0
    assert evaluate.accuracy(logits, np.array([0, 0, 0, 0]))["top1_10crop"] == 0.0


@pytest.mark.parametrize("flips, views", [(True, 10), (False, 5)])
def test_multi_crop_costs_one_forward_pass_per_view(p, flips, views):
    """10-crop (5-crop without mirroring, MNIST's protocol) feeds exactly `views` images per test image through the
    network, in batches no larger than eval.batch_size, and the views are FiveCrop/TenCrop's in their order."""
    net = p.variant(SMALL)
    net = net.model_copy(update={"eval": net.eval.model_copy(update={"flips": flips, "batch_size": 6})})
    _, x_test, y_test, _, _ = _test_split(p, SMALL)
    model, _ = load_model(p.plan(SMALL), torch.device("cpu"))
    fed = []

    def forward(x):
        fed.append(x.shape[0])
        return model(x)

    with torch.no_grad():
        out = evaluate.crop_logits(forward, x_test, net, *norm_tensors(p.plan(SMALL), torch.device("cpu")),
                                   torch.device("cpu"))
    n = len(x_test)
    assert out.shape == (n, views, 10)
    assert sum(fed) == views * n, f"{sum(fed)} images through the network for {n} test images x {views} views"
    assert max(fed) <= 6 and len(fed) == views * math.ceil(n / 6)
    assert transforms.num_crops(net.eval) == views
    acc = evaluate.accuracy(out, y_test)
    assert set(acc) == set(ACC_KEYS)

    # the views: the four corners and the centre of the padded image, then (flips) the same of its mirror image
    x = torch.from_numpy(x_test[:3])
    cut = transforms.multi_crops(x, net.eval, net.input_size)
    pad, c = net.eval.pad, net.eval.crop
    xp = transforms.pad(x, pad, net.eval.padding_mode)
    h = xp.shape[-1]
    assert torch.equal(cut[0], xp[..., :c, :c]) and torch.equal(cut[3], xp[..., h - c:, h - c:])
    assert torch.equal(cut[4], v2.functional.center_crop(xp, [c]))
    if flips:
        assert torch.equal(cut[5], xp.flip(-1)[..., :c, :c])
    theirs = (v2.TenCrop(c) if flips else v2.FiveCrop(c))(xp)  # torchvision's own views, in its order
    assert len(theirs) == views and all(torch.equal(cut[i], t) for i, t in enumerate(theirs))


# ---------------------------------------------------------------------------------------------------------
# export: the JSON record
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(TINY_VARIANTS))
def test_export_json_parity_and_accuracy(p, variant):
    r = _load(paths.export_report(variant))
    m = _load(paths.metrics(variant))
    assert r["variant"] == variant and r["command"] == f"netpipe export {variant}"
    assert r["opset"] == p.export.opset and r["dynamic_batch"] is True and r["exporter"] == "torchscript"
    assert Path(r["onnx"]) == paths.onnx(variant) and r["onnx_bytes"] == paths.onnx(variant).stat().st_size

    par = r["parity"]
    assert par["tolerance"] == p.export.tolerance and par["samples"] == p.export.parity_samples
    assert par["random_samples"] == par["samples"]
    expect = {"CPUExecutionProvider"} | ({"CUDAExecutionProvider"} if runtime.cuda_usable() else set())
    assert set(par["by_provider"]) == expect, "the CPU provider always, CUDA too where usable"
    assert all(set(d) == {"real", "random"} for d in par["by_provider"].values())
    assert par["max_abs_diff"] == max(max(d.values()) for d in par["by_provider"].values())
    scale = par["logit_scale"]
    assert scale >= 1.0
    assert 0.0 <= par["max_abs_diff"] <= p.export.tolerance * scale, "recorded parity is within the tolerance"
    assert par["max_rel_diff"] == pytest.approx(par["max_abs_diff"] / scale)

    acc = r["accuracy"]
    assert acc["n_test"] == m["n_test"] and acc["allowed_pp"] == 0.01
    for k in ACC_KEYS:
        assert acc["torch"][k] == m[k], "the PyTorch side is evaluate's metrics file"
        assert abs(acc["onnx"][k] - m[k]) * 100 <= 0.01 + 1e-9, (k, acc["onnx"][k], m[k])
        assert acc["diff_pp"][k] == pytest.approx(100 * (acc["onnx"][k] - m[k]), abs=1e-6)

    f16 = r["fp16"]
    assert Path(f16["path"]) == paths.onnx(variant, "fp16") and f16["tolerance"] == p.export.fp16_tolerance
    assert f16["bytes"] == paths.onnx(variant, "fp16").stat().st_size
    assert f16["bytes"] < 0.6 * r["onnx_bytes"], "fp16 weights: about half the fp32 file"
    # onnxruntime 1.31's CPU provider runs these fp16 graphs: measured everywhere
    assert f16["measured"] is True
    assert f16["provider"] == ("CUDAExecutionProvider" if runtime.cuda_usable() else "CPUExecutionProvider")
    if f16["max_abs_diff"] is not None:
        assert f16["within_tolerance"] == (f16["max_abs_diff"] <= p.export.fp16_tolerance * scale)
        assert f16["max_abs_diff"] == max(f16["by_input"].values())
    else:
        assert f16["within_tolerance"] is False and "overflow" in f16["reason"]
    n16 = f16["accuracy"].pop("n_test")  # a spread subset on the CPU provider (export.fp16_cpu_accuracy_samples)
    assert 0 < n16 <= min(acc["n_test"], p.export.fp16_cpu_accuracy_samples)
    assert set(f16["accuracy"]) == set(ACC_KEYS) and all(0 <= v <= 1 for v in f16["accuracy"].values())
    assert METADATA_KEYS - {"classes", "precision"} <= set(r["metadata"])


# ---------------------------------------------------------------------------------------------------------
# export: the ONNX files themselves
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_onnx_files_pass_checker_and_carry_metadata(p, fp16):
    path = paths.onnx(SMALL, "fp16" if fp16 else "fp32")
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path))
    meta = {e.key: e.value for e in proto.metadata_props}
    assert METADATA_KEYS <= set(meta), METADATA_KEYS - set(meta)
    data = load_prepared(p.dataset_of(SMALL))
    net = p.variant(SMALL)
    mean, std = p.normalization(SMALL)
    assert meta["netpipe_format"] == predict.META_FORMAT and meta["variant"] == SMALL
    assert meta["precision"] == ("fp16" if fp16 else "fp32")
    assert json.loads(meta["classes"]) == list(data.classes)
    assert int(meta["channels"]) == 3 and int(meta["input_size"]) == net.input_size
    assert json.loads(meta["image_size"]) == list(data.x_test.shape[2:])
    assert json.loads(meta["mean"]) == pytest.approx(mean) and json.loads(meta["std"]) == pytest.approx(std)
    assert json.loads(meta["eval"]) == net.eval.model_dump(mode="json")
    assert meta["params_hash"] == p.variant_hash(SMALL) and meta["dataset"] == "cifar10" and meta["format"] == "cifar10"
    assert meta["commit"] and meta["netpipe_version"]
    assert {o.domain or "": o.version for o in proto.opset_import}[""] == p.export.opset

    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "input" and out.name == "logits"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value"), "dynamic batch dimension"
    assert [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    if fp16:  # fp16 inside: Cast nodes at both ends, fp16 weights
        assert sum(n.op_type == "Cast" for n in proto.graph.node) >= 2
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)

    # predict reads the same metadata from an onnxruntime session
    sess = _ort(path)
    pm = predict.read_meta(sess, path)
    assert pm.classes == list(data.classes) and pm.variant == SMALL and pm.digits is False
    assert pm.eval == net.eval.model_dump(mode="json")


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_dynamic_batch_and_parity_on_real_images(p, fp16):
    """The session runs at batch 1 and 5; each image's logits do not depend on the batch; the logits match the
    PyTorch checkpoint within export.tolerance (fp32) or export.fp16_tolerance (fp16), scaled as export says."""
    net = p.variant(SMALL)
    _, x_test, _, _, _ = _test_split(p, SMALL)
    cpu = torch.device("cpu")
    mean, std = norm_tensors(p.plan(SMALL), cpu)
    x = transforms.normalize(transforms.center_crop(torch.from_numpy(x_test[:5]), net.eval, net.input_size), mean, std)
    x = x.contiguous()
    model, _ = load_model(p.plan(SMALL), cpu)
    with torch.no_grad():
        ref = model(x).numpy()
    sess = _ort(paths.onnx(SMALL, "fp16" if fp16 else "fp32"))
    five = sess.run(None, {"input": x.numpy()})[0]
    ones = np.concatenate([sess.run(None, {"input": x[i:i + 1].numpy()})[0] for i in range(5)])
    assert five.shape == (5, 10) and ones.shape == (5, 10) and five.dtype == np.float32
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.abs(five - ones).max() <= 1e-5 * scale
    tol = p.export.fp16_tolerance if fp16 else p.export.tolerance
    diff = float(np.abs(five - ref).max())
    assert diff <= tol * scale, (diff, tol, scale)
    if not fp16:
        assert (five.argmax(1) == ref.argmax(1)).all()


def test_onnx_accuracy_equals_pytorch_image_for_image(p):
    """The fp32 file through onnxruntime, with evaluate's protocol: the same single- and 10-crop predictions for
    every test image as the PyTorch checkpoint, hence the same accuracy (to 0.01 pp) as the metrics file."""
    net = p.variant(SMALL)
    _, x_test, y_test, _, _ = _test_split(p, SMALL)
    cpu = torch.device("cpu")
    mean, std = norm_tensors(p.plan(SMALL), cpu)
    model, _ = load_model(p.plan(SMALL), cpu)
    sess = _ort(paths.onnx(SMALL))
    lo = evaluate.crop_logits(export.ort_forward(sess), x_test, net, mean, std, cpu)
    lt = evaluate.crop_logits(model, x_test, net, mean, std, cpu)
    assert torch.equal(lo[:, evaluate.CENTRE].argmax(1), lt[:, evaluate.CENTRE].argmax(1))
    assert torch.equal(lo.softmax(-1).mean(1).argmax(1), lt.softmax(-1).mean(1).argmax(1))
    acc = evaluate.accuracy(lo, y_test)
    m = _load(paths.metrics(SMALL))
    for k in ACC_KEYS:
        assert abs(acc[k] - m[k]) * 100 <= 0.01, k


@pytest.mark.parametrize("size", [24, 227])  # a slice of 32x32 images; 28 -> 227 resizes (the MNIST AlexNets)
def test_eval_views_are_cut_on_the_cpu_whatever_device_the_network_runs_on(monkeypatch, size):
    """Export recomputes evaluate's accuracy through onnxruntime from crops cut on the CPU and allows 0.01 pp: so
    evaluate cuts its crops on the CPU too, also when its network runs on a GPU (torchvision's uint8 resize differs
    between CUDA and the CPU in the last level). The meta device stands in for the GPU: the network is fed there,
    and every crop was cut on the CPU before it went there."""
    from types import SimpleNamespace

    from pipeline.params import EvalParams

    net = SimpleNamespace(input_size=size, eval=EvalParams(crop=24 if size == 24 else 28, batch_size=3))
    x = np.random.default_rng(0).integers(0, 256, (5, 1, 32 if size == 24 else 28, 32 if size == 24 else 28),
                                          dtype=np.uint8)
    cut_on = []
    real_multi_crops = transforms.multi_crops

    def multi_crops(xb, ev, input_size):
        cut_on.append(xb.device.type)
        return real_multi_crops(xb, ev, input_size)

    monkeypatch.setattr(transforms, "multi_crops", multi_crops)
    fed = []

    def forward(c):
        fed.append(c.device.type)
        return torch.zeros(len(c), 10)

    meta = torch.device("meta")
    logits = evaluate.crop_logits(forward, x, net, torch.zeros(1, device=meta), torch.ones(1, device=meta), meta)
    assert set(cut_on) == {"cpu"} and len(cut_on) == 2  # two batches of at most 3 images
    assert set(fed) == {"meta"} and logits.shape == (5, transforms.num_crops(net.eval), 10)


# ---------------------------------------------------------------------------------------------------------
# export: failures stop the stage with the measured numbers
# ---------------------------------------------------------------------------------------------------------
def test_export_fails_above_tolerance_with_measured_difference(pipeline_project, tmp_path):
    """export.tolerance 1e-12 on a copy: `netpipe export` exits 1 with one line giving the measured max abs logit
    difference (per provider and input), and writes no export record."""
    root = _copy_for_export(pipeline_project, tmp_path / "proj", SMALL)
    _set_params(root, tolerance=1e-12)
    record = root / paths.export_report(SMALL)
    before = record.read_bytes()
    r = subprocess.run([str(NETPIPE), "export", SMALL], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"netpipe: error: {SMALL}: onnxruntime differs from PyTorch by ")
    measured = float(re.search(r"differs from PyTorch by ([0-9.eE+-]+) ", lines[0]).group(1))
    per_input = {k: float(v) for k, v in re.findall(r"'(real|random)': ([0-9.eE+-]+)", lines[0])}
    assert set(per_input) == {"real", "random"}
    assert measured == pytest.approx(max(per_input.values()), rel=1e-2)  # printed with 3 significant digits
    scale = float(re.search(r"logits up to ([0-9.eE+-]+)\)", lines[0]).group(1))
    assert measured > 1e-12 * max(1.0, scale)
    assert "allowed: export.tolerance 1e-12" in lines[0]
    # the recorded difference of the successful export was of the same kind (fp32 rounding, far below 1e-2)
    assert measured < 1e-2 * max(1.0, scale)
    assert record.read_bytes() == before, "a failed export leaves the previous record alone"


def test_export_fails_when_onnx_accuracy_differs_from_metrics(pipeline_project, tmp_path, monkeypatch):
    """A metrics file whose 10-crop top-1 is one test image off (6.25 pp of 16): export's ONNX accuracy check fails
    and names the metric and the difference in percentage points."""
    root = _copy_for_export(pipeline_project, tmp_path / "proj", SMALL)
    monkeypatch.chdir(root)
    mpath = paths.metrics(SMALL)
    m = _load(mpath)
    true10 = m["top1_10crop"]
    m["top1_10crop"] = true10 + 1 / 16 if true10 < 0.5 else true10 - 1 / 16
    mpath.write_text(json.dumps(m))
    with pytest.raises(NetpipeError) as exc:
        export.run(params.load("params.yaml"), SMALL)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{SMALL}: ONNX accuracy differs from PyTorch's")
    diff = float(re.search(r"top1_10crop ([+-][0-9.]+) pp", msg).group(1))
    assert diff == pytest.approx(100 * (true10 - m["top1_10crop"]), abs=1e-3) and abs(diff) == pytest.approx(6.25)
    assert "top1 " not in msg.replace("top1_10crop", ""), "the untouched single-crop top-1 matched"
    assert "16 test images" in msg and "0.01 pp" in msg


def test_export_refuses_metrics_of_another_checkpoint(pipeline_project, tmp_path, monkeypatch):
    root = _copy_for_export(pipeline_project, tmp_path / "proj", SMALL)
    monkeypatch.chdir(root)
    m = _load(paths.metrics(SMALL))
    m["checkpoint"]["config_hash"] = "0000000000000000"
    paths.metrics(SMALL).write_text(json.dumps(m))
    with pytest.raises(NetpipeError, match=rf"run `netpipe evaluate {SMALL}` first"):
        export.run(params.load("params.yaml"), SMALL)


@pytest.mark.parametrize("h,w,crop", [(32, 32, 28), (33, 37, 28), (36, 36, 32), (28, 28, 28), (31, 30, 24)])
def test_center_crop_is_torchvisions(h, w, crop):
    """transforms cuts the centre crop as a slice (training needn't import torchvision for it): the same pixels
    as torchvision's center_crop, odd margins included, for the single-crop view and unaugmented training."""
    x = torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8)
    want = v2.functional.center_crop(x, [crop, crop])
    assert torch.equal(preprocess.centre(x, crop), want)
    assert np.array_equal(preprocess.centre(x[0].numpy(), crop), want[0].numpy())  # predict's numpy path
    ev = params.EvalParams(pad=0, crop=crop, flips=False)
    assert torch.equal(transforms.center_crop(x, ev, crop), want)
    off = params.AugmentParams(enabled=False, crop=crop)
    assert torch.equal(transforms.augment(x, off, crop, torch.Generator().manual_seed(0)), want)


def test_fp16_weights_clipped_to_the_finite_range_and_rounded_to_nearest():
    """to_fp16 casts the weights of a Gemm in one pass: values beyond fp16's range (+-inf too) become its largest
    finite value, the rest round to nearest as numpy's cast does, NaN stays NaN; the graph runs in onnxruntime."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.array([[1e6, -1e6, 65519.0, 65520.0], [np.inf, -np.inf, 1.0 / 3, -2.5e-8]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w"], ["logits"], transB=1)], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(w, "w")])
    proto = export.to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8))
    half = numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name == "w"))
    assert half.dtype == np.float16
    expected = np.array([[65504, -65504, 65504, 65504], [65504, -65504, np.float16(1.0 / 3), np.float16(-2.5e-8)]],
                        dtype=np.float16)
    assert np.array_equal(half, expected)
    nan = np.array([np.nan], dtype=np.float32)
    graph.initializer[0].CopyFrom(numpy_helper.from_array(np.concatenate([w.ravel()[:7], nan]).reshape(2, 4), "w"))
    proto = export.to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8))
    assert np.isnan(numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name == "w"))[1, 3])
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": np.array([[0, 0, 0, 1]], dtype=np.float32)})[0]
    assert out.dtype == np.float32 and out[0, 0] == 65504
