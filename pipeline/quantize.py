"""The int8 ONNX file (models/VARIANT.int8.onnx), written by `netpipe export` beside the fp32 and fp16 ones.

Method (INT8_METHOD): onnxruntime's static quantization of the fp32 file. First `quant_pre_process` (onnx and
symbolic shape inference, then onnxruntime's graph optimisations, which fold BatchNorm into the convolutions), then
`quantize_static` in the QDQ format: QuantizeLinear/DequantizeLinear pairs around each quantised operator, weights
per output channel (export.int8_per_channel), activations with scales from a calibration pass
(export.int8_calibration_method: minmax, entropy or percentile) over export.int8_calibration_images images of the
TRAINING split, evenly spread, seen as evaluation sees them (the centre crop, normalised). Never the validation or
test images: the test accuracy measured afterwards would otherwise have been fitted.

Like the fp16 file it takes and returns float32 (a QuantizeLinear follows the input, a DequantizeLinear precedes the
logits), with the same metadata, so predict and bench feed it the same arrays.

Its test accuracy through onnxruntime's CPU provider with evaluate's protocol (single and multi-crop, every test
image) and the drop from the fp32 ONNX file go into artifacts/export/VARIANT.json (records.Int8Check). A drop above
export.int8_max_drop_pp keeps the file but marks it (`within_max_drop: false`, a warning, and the report says so).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from . import evaluate, transforms
from .data import spread
from .errors import NetpipeError
from .params import ExportParams, Plan

INT8_METHOD = ("onnxruntime static quantization of the fp32 file: quant_pre_process (shape inference, graph "
               "optimisation), then quantize_static, QDQ format, int8 weights (per channel where int8_per_channel), "
               "activations calibrated on training images only (centre crop, normalised)")
CALIBRATION_BATCH = 32


def calibration_images(pl: Plan, x_train: np.ndarray, n: int, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """`n` training images evenly spread over the training split, centre-cropped and normalised as evaluate's single
    view: float32 (n, C, S, S)."""
    keep = spread(len(x_train), n)
    x = torch.from_numpy(x_train[keep])
    return transforms.normalize(transforms.center_crop(x, pl.net.eval, pl.net.input_size), mean, std).numpy()


def _reader(x: np.ndarray, input_name: str, batch: int, fixed: bool):
    """Batches of `batch` images; with a fixed batch dimension (export.dynamic_batch: false) whole ones only."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = (x[i:i + batch] for i in range(0, len(x) - batch + 1 if fixed else len(x), batch))

        def get_next(self):
            b = next(self.batches, None)
            return None if b is None else {input_name: np.ascontiguousarray(b, dtype=np.float32)}

    return Reader()


def quantize(src: Path, dst: Path, x_cal: np.ndarray, ex: ExportParams) -> None:
    """Write the int8 QDQ version of the fp32 ONNX file `src` to `dst` (INT8_METHOD), its metadata kept."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[ex.int8_calibration_method]
    act = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[ex.int8_activations]
    src_proto = onnx.load(str(src))
    dim0 = src_proto.graph.input[0].type.tensor_type.shape.dim[0]
    fixed = dim0.HasField("dim_value")  # export.dynamic_batch: false
    batch = dim0.dim_value if fixed else CALIBRATION_BATCH
    if fixed and batch > len(x_cal):
        raise NetpipeError(f"{len(x_cal)} calibration images are fewer than the model's fixed batch of {batch}")
    with tempfile.TemporaryDirectory(prefix="netpipe-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # onnx's own shape inference reads the named batch dimension; onnxruntime's symbolic one is not needed
        # (and can stop with "Incomplete symbolic shape inference" on graphs it does not know)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        # no CalibMaxIntermediateOutputs: onnxruntime's MinMax calibrator drops what it collected each time that
        # many batches pile up (1.30/1.31: "No data is collected" at 8 batches or more); MinMax keeps one min and
        # max per tensor and batch, so memory stays small without it
        quantize_static(str(pre), str(dst), _reader(x_cal, src_proto.graph.input[0].name, batch, fixed),
                        quant_format=QuantFormat.QDQ, per_channel=ex.int8_per_channel, activation_type=act,
                        reduce_range=ex.int8_reduce_range,
                        weight_type=QuantType.QInt8, calibrate_method=method,
                        calibration_providers=["CPUExecutionProvider"])
    proto, meta = onnx.load(str(dst)), {p.key: p.value for p in src_proto.metadata_props}
    del proto.metadata_props[:]
    for key, value in {**meta, "precision": "int8", "quantization": INT8_METHOD}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(dst))


def check(path: Path, fp32_acc: dict, x_test: np.ndarray, y_test: np.ndarray, pl: Plan, mean: torch.Tensor,
          std: torch.Tensor, forward_of: Callable, n_cal: int, quant_seconds: float) -> dict:
    """The int8 file's accuracy through onnxruntime's CPU provider with evaluate's protocol on these test images,
    its drop from the fp32 ONNX file's (`fp32_acc`), and whether that stays within export.int8_max_drop_pp."""
    from . import runtime

    ex = pl.export
    sess = runtime.session(path, provider_list=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    acc = evaluate.accuracy(evaluate.crop_logits(forward_of(sess), x_test, pl.net, mean, std, torch.device("cpu"),
                                                 desc=f"[{pl.variant}] onnxruntime int8, test"), y_test)
    drop = {k: round(100 * (fp32_acc[k] - acc[k]), 6) for k in acc}
    worst = max(drop["top1"], drop["top1_10crop"])
    ok = bool(worst <= ex.int8_max_drop_pp + 1e-9)
    if not ok:
        print(f"warning: {path}: int8 top-1 is {worst:.2f} pp below the fp32 file's on {len(y_test):,} test images "
              f"(export.int8_max_drop_pp = {ex.int8_max_drop_pp:g}): the file is kept and marked", file=sys.stderr)
    return {"path": str(path), "bytes": path.stat().st_size, "method": INT8_METHOD,
            "calibration": {"images": n_cal, "split": "train", "method": ex.int8_calibration_method,
                            "per_channel": ex.int8_per_channel, "activations": ex.int8_activations,
                            "weights": "qint8, 7-bit (reduce_range)" if ex.int8_reduce_range else "qint8"},
            "provider": sess.get_providers()[0], "accuracy": {**acc, "n_test": len(y_test)}, "drop_pp": drop,
            "max_drop_pp": ex.int8_max_drop_pp, "within_max_drop": ok,
            "quantize_seconds": round(quant_seconds, 3), "eval_seconds": round(time.perf_counter() - t0, 3)}
