"""The int8 ONNX file `netpipe export` writes (pipeline/quantize.py), on the REAL outputs of the tiny project of
tests/conftest.py (`pipeline_project`: tiny CIFAR-format data, variants trained 2 steps, evaluated, exported and
benchmarked): the file is a QDQ graph with int8 weights and float32 input and output, calibrated on exactly the
evenly spread training images, and its recorded accuracy is what onnxruntime gives on the test images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from pipeline import evaluate, export, params, paths, quantize, runtime
from pipeline.data import load_prepared
from pipeline.model import norm_tensors

SMALL = "alexnet_thinner_4"


@pytest.fixture
def project(pipeline_project, monkeypatch):
    monkeypatch.chdir(pipeline_project)
    return pipeline_project


@pytest.fixture
def pl(project):
    return params.load("params.yaml").plan(SMALL)


def _record() -> dict:
    return json.loads(paths.export_report(SMALL).read_text())


def _initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_int8_file_is_a_qdq_graph_with_int8_weights_and_float_io(pl):
    path = paths.onnx(SMALL, "int8")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    conv_fc = sum(1 for n in onnx.load(str(paths.onnx(SMALL))).graph.node if n.op_type in ("Conv", "Gemm", "MatMul"))
    assert len([w for w in weights if w.ndim >= 2]) == conv_fc, "every convolution's and matmul's weights in int8"
    scales = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
              and any(t.name == n.input[1] and len(t.dims) == 1 and t.dims[0] > 1 for t in model.graph.initializer)]
    assert scales, "per-channel weight scales (export.int8_per_channel)"
    io_types = {v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)}
    assert io_types == {onnx.TensorProto.FLOAT}
    meta = {p.key: p.value for p in model.metadata_props}
    fp32_meta = {p.key: p.value for p in onnx.load(str(paths.onnx(SMALL))).metadata_props}
    assert meta["precision"] == "int8" and meta["quantization"] == quantize.INT8_METHOD
    assert {k: v for k, v in meta.items() if k not in ("precision", "quantization")} == \
        {k: v for k, v in fp32_meta.items() if k != "precision"}
    sess = runtime.session(path, provider_list=["CPUExecutionProvider"])
    size = pl.net.input_size
    for n in (1, 5):  # dynamic batch, as the fp32 file
        x = np.random.default_rng(n).standard_normal((n, pl.channels, size, size), dtype=np.float32)
        assert sess.run(None, {"input": x})[0].shape == (n, 10)


def test_int8_calibrated_on_exactly_the_spread_training_images(pl, tmp_path):
    """Re-quantizing the fp32 file with the training images export.int8_calibration_images names gives the same
    scales, and calibrating on the test images gives other ones: the file was calibrated on training images."""
    data = load_prepared(pl.dataset)
    mean, std = norm_tensors(pl, torch.device("cpu"))
    n = _record()["int8"]["calibration"]["images"]
    assert n == min(pl.export.int8_calibration_images, len(data.y_train)) and n > 1
    train = quantize.calibration_images(pl, data.x_train, n, mean, std)
    quantize.quantize(paths.onnx(SMALL), tmp_path / "train.onnx", train, pl.export)
    ours, again = _initializers(paths.onnx(SMALL, "int8")), _initializers(tmp_path / "train.onnx")
    assert ours.keys() == again.keys() and all(np.array_equal(ours[k], again[k]) for k in ours)
    test = quantize.calibration_images(pl, data.x_test, n, mean, std)
    quantize.quantize(paths.onnx(SMALL), tmp_path / "test.onnx", test, pl.export)
    other = _initializers(tmp_path / "test.onnx")
    assert any(not np.array_equal(ours[k], other[k]) for k in ours if k.endswith("_scale"))


def test_int8_accuracy_recorded_is_onnxruntimes_on_the_test_images(pl):
    r = _record()
    i8, fp32 = r["int8"], r["accuracy"]["onnx"]
    data = load_prepared(pl.dataset, train=False)
    x_test, y_test, _, _ = evaluate.eval_images(pl, data)
    mean, std = norm_tensors(pl, torch.device("cpu"))
    sess = runtime.session(paths.onnx(SMALL, "int8"), provider_list=["CPUExecutionProvider"])
    acc = evaluate.accuracy(evaluate.crop_logits(export.ort_forward(sess), x_test, pl.net, mean, std,
                                                 torch.device("cpu")), y_test)
    assert {k: i8["accuracy"][k] for k in acc} == acc and i8["accuracy"]["n_test"] == len(y_test)
    assert i8["drop_pp"] == {k: round(100 * (fp32[k] - acc[k]), 6) for k in acc}
    assert i8["calibration"]["split"] == "train" and i8["provider"] == "CPUExecutionProvider"
    assert i8["bytes"] == paths.onnx(SMALL, "int8").stat().st_size < 0.5 * r["onnx_bytes"]
    assert i8["within_max_drop"] == (max(i8["drop_pp"]["top1"], i8["drop_pp"]["top1_10crop"])
                                     <= pl.export.int8_max_drop_pp + 1e-9)


def test_int8_drop_over_the_limit_is_marked_with_a_warning(pl, capsys):
    """The same file against an fp32 accuracy of 100%: a drop no int8 copy of a 2-step net stays within."""
    data = load_prepared(pl.dataset, train=False)
    x_test, y_test, _, _ = evaluate.eval_images(pl, data)
    mean, std = norm_tensors(pl, torch.device("cpu"))
    perfect = {"top1": 1.0, "top5": 1.0, "top1_10crop": 1.0, "top5_10crop": 1.0}
    out = quantize.check(paths.onnx(SMALL, "int8"), perfect, x_test, y_test, pl, mean, std, export.ort_forward, 8, 0.0)
    assert out["within_max_drop"] is False and out["drop_pp"]["top1"] > pl.export.int8_max_drop_pp
    assert f"int8 top-1 is {out['drop_pp']['top1']:.2f} pp below the fp32 file's" in capsys.readouterr().err


def _input_scale(path: Path) -> float:
    """The scale of the QuantizeLinear that reads the graph's input: the calibrated range of the input images."""
    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == model.graph.input[0].name)
    return float(_initializers(path)[node.input[1]])


def test_calibration_folds_in_every_batch(pl, tmp_path):
    """Ten calibration batches, the widest-ranged images in the first: the input's scale is theirs, so no batch was
    dropped (onnxruntime's CalibMaxIntermediateOutputs dropped every 8 batches' data: 'No data is collected')."""
    data = load_prepared(pl.dataset)
    mean, std = norm_tensors(pl, torch.device("cpu"))
    x = quantize.calibration_images(pl, data.x_train, 32, mean, std)
    wide = x * 3.0  # a batch no other one reaches
    many = np.concatenate([wide] + [x] * 9)
    assert len(many) == 10 * quantize.CALIBRATION_BATCH
    quantize.quantize(paths.onnx(SMALL), tmp_path / "many.onnx", many, pl.export)
    quantize.quantize(paths.onnx(SMALL), tmp_path / "wide.onnx", wide, pl.export)
    quantize.quantize(paths.onnx(SMALL), tmp_path / "plain.onnx", x, pl.export)
    assert _input_scale(tmp_path / "many.onnx") == pytest.approx(_input_scale(tmp_path / "wide.onnx"), rel=1e-6)
    assert _input_scale(tmp_path / "many.onnx") > 2 * _input_scale(tmp_path / "plain.onnx")


def test_a_fixed_batch_model_is_calibrated_in_its_own_batch(pl, tmp_path):
    """export.dynamic_batch: false: the fp32 graph takes batches of one; calibration feeds it so."""
    from pipeline.model import load_model

    model, ck = load_model(pl, torch.device("cpu"))
    size = pl.net.input_size
    ex = pl.export.model_copy(update={"dynamic_batch": False})
    proto = export._export(model, ex, (int(ck["in_channels"]), size, size), dynamo=False)
    onnx.save(proto, str(tmp_path / "fixed.onnx"))
    data = load_prepared(pl.dataset)
    mean, std = norm_tensors(pl, torch.device("cpu"))
    quantize.quantize(tmp_path / "fixed.onnx", tmp_path / "fixed.int8.onnx",
                      quantize.calibration_images(pl, data.x_train, 5, mean, std), ex)
    sess = runtime.session(tmp_path / "fixed.int8.onnx", provider_list=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == 1
