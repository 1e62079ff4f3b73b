"""`netpipe export VARIANT`: models/VARIANT.onnx (fp32) and models/VARIANT.fp16.onnx, checked against PyTorch.

fp32: torch.onnx.export of the best checkpoint in eval mode, on the CPU (no GPU needed): the TorchScript exporter,
or the torch.export-based one when export.dynamo (weights inside the file: external_data=False). Input "input"
(N, C, S, S) float32, normalised; output "logits"; batch dimension dynamic when export.dynamic_batch; opset
export.opset.

fp16: fp16 weights and activations with float32 input and output: the fp32 graph converted by onnxruntime's
`convert_float_to_float16` (onnxruntime.transformers.float16, keep_io_types: a Cast of the input to fp16 and of the
logits back to fp32). It is a drop-in replacement of the fp32 file: same input, same metadata, so predict and bench
feed it the same arrays. Converting the ONNX graph instead of exporting `model.half()` again needs no fp16 kernels
in PyTorch (its CPU has none for the avg_pool3d inside LocalResponseNorm) and no second export: the torch.export-
based exporter this took before cost 5-16 s a net on 2 cores, plus 2.5 s of imports.

Both files carry their own preprocessing in ONNX metadata_props (see `metadata`), so predict needs nothing else.
Files are written atomically.

Checks (a failure stops the stage with NetpipeError and the measured numbers):
- onnx.checker on both files;
- parity: onnxruntime (CPU provider, and CUDA too when usable) vs PyTorch fp32 on the CPU, on
  export.parity_samples real test images (centre-cropped as evaluate does) and as many random inputs: the max
  abs logit difference must be <= export.tolerance * max(1, max |logit|). For logits up to 1 that is the plain
  absolute tolerance; beyond, it scales with them, because fp32 arithmetic itself differs by about 1e-7 of the
  logits' size (an untrained or quick-run net can have logits of 1e4 and more, where no absolute 1e-4 holds);
  an export bug shows as differences of the logits' own size, caught either way;
- accuracy: the ONNX file evaluated through onnxruntime on the same test images with the same protocol as
  evaluate (shared code: evaluate.crop_logits/accuracy) must match artifacts/metrics/VARIANT.json to 0.01
  percentage points, single-crop and multi-crop.
The fp16 file's difference to PyTorch fp32 (same inputs, same rule) is compared with export.fp16_tolerance and its
accuracy recorded, wherever onnxruntime can run it: CUDA when usable, else the CPU provider (onnxruntime 1.31's
CPU provider runs these fp16 graphs); where none can, both are null with the reason. Above the tolerance is a
warning and `within_tolerance: false`, not a failure: a quick-run net's fp16 logits may simply overflow.
artifacts/export/VARIANT.json records all of it (records.ExportReport).
"""

from __future__ import annotations

import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from . import evaluate, fileio, paths, quantize, runtime, transforms
from .data import load_prepared, spread
from .errors import NetpipeError, first_line
from .params import ExportParams, Params, Plan
from .records import Accuracy, ExportReport, Fp16Check, Int8Check, Metrics, OnnxAccuracy, Parity
from .predict import META_FORMAT, infer
from .model import load_model, norm_tensors

ACCURACY_PP = 0.01  # allowed ONNX-vs-PyTorch accuracy difference, in percentage points
CUDA = ("CUDAExecutionProvider", {"use_tf32": "0"})  # exact fp32 for the comparisons
TOLERANCE_RULE = "max abs logit diff <= tolerance * max(1, max |PyTorch logit|)"
FP16_METHOD = ("the fp32 graph through onnxruntime.transformers.float16.convert_float_to_float16 (keep_io_types: fp32 "
               "input and output, Cast nodes inside)")


def netpipe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("netpipe")
    except PackageNotFoundError:
        return "unknown"


def metadata(pl: Plan, ck: dict, image_hw: tuple[int, int]) -> dict[str, str]:
    """Everything predict needs to turn an image file into this model's input (ONNX metadata_props)."""
    net, mean, std = pl.net, list(pl.mean), list(pl.std)
    return {
        "netpipe_format": META_FORMAT, "variant": pl.variant, "arch": net.arch, "dataset": pl.dataset,
        "format": pl.dataset_format,  # "mnist" -> digit-style preprocessing in predict
        "classes": json.dumps(list(ck["classes"])), "channels": str(ck["in_channels"]),
        "input_size": str(net.input_size), "image_size": json.dumps(list(image_hw)),
        "mean": json.dumps(mean), "std": json.dumps(std), "eval": json.dumps(net.eval.model_dump(mode="json")),
        "commit": (fileio.git_commit() or "unknown"), "params_hash": str(ck.get("config_hash")), "netpipe_version": netpipe_version(),
    }


def _export(model: nn.Module, ex: ExportParams, shape: tuple[int, ...], dynamo: bool) -> onnx.ModelProto:
    """The fp32 ONNX graph of `model` (in memory: it is written once, with its metadata, by `_save`)."""
    dummy = torch.zeros(2 if ex.dynamic_batch else 1, *shape)
    kw = dict(input_names=["input"], output_names=["logits"], opset_version=ex.opset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dyn = ({0: torch.export.Dim("batch")},) if ex.dynamic_batch else None
            return torch.onnx.export(model, (dummy,), None, dynamo=True, dynamic_shapes=dyn, verbose=False,
                                     **kw).model_proto
        axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if ex.dynamic_batch else None
        buf = io.BytesIO()
        torch.onnx.export(model, (dummy,), buf, dynamo=False, dynamic_axes=axes, **kw)
    return onnx.load_from_string(buf.getvalue())


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The fp16 version of an fp32 graph with fp32 input and output (FP16_METHOD); converts `proto` in place.

    The weights of the convolutions and matrix products are cast first, each in one numpy pass (rounded to
    nearest, clipped to fp16's finite range): the converter's own per-tensor checks (several np.where passes) took
    4-7 s for the 58-102M-parameter nets, longer than the export. The converter then does the rest (the other
    initializers, types, constants, the Cast nodes at input and output; it keeps fp32 what its block lists say) and
    appends the input's Cast after the nodes that read it: its topological sort puts it first again."""
    from onnx import numpy_helper
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    readers: dict[str, set[str]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.op_type)
    for t in proto.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and readers.get(t.name, {""}) <= {"Conv", "Gemm", "MatMul"}:
            # clipped to fp16's finite range in fp32 (SIMD; numpy's fp16 arithmetic is emulated: a clip after the
            # cast took 3x as long), then rounded to nearest: the same numbers, +-inf included, NaN kept
            half = np.clip(numpy_helper.to_array(t), -65504.0, 65504.0).astype(np.float16)
            t.CopyFrom(numpy_helper.from_array(half, t.name))
    proto = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=True)
    OnnxModel.graph_topological_sort(proto.graph, is_deterministic=True)
    return proto


def _save(proto: onnx.ModelProto, path: Path, meta: dict) -> None:
    """Set the metadata, check the graph (onnx.checker, full), write it (serialised once for both)."""
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    data = proto.SerializeToString()
    try:
        onnx.checker.check_model(data, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise NetpipeError(f"exported model fails onnx.checker: {first_line(exc)}") from None
    path.write_bytes(data)


def ort_forward(sess):
    """onnxruntime as a `forward` for evaluate.crop_logits: float tensor in, logits tensor out."""
    return lambda x: torch.from_numpy(infer(sess, x.numpy()))


def _by_input(forward, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """forward's logits for each kind of input (real, random images), all kinds in one call."""
    return dict(zip(inputs, forward(torch.cat(list(inputs.values()))).split([len(x) for x in inputs.values()])))


def _max_diff(sess, ref: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float((out - ref[k]).abs().max()) for k, out in _by_input(ort_forward(sess), inputs).items()}


def run(p: Params, variant: str) -> dict:
    t0 = time.perf_counter()
    pl = p.plan(variant)
    net, dataset = pl.net, pl.dataset
    data = load_prepared(dataset)  # the training split too: the int8 file is calibrated on it
    x_test, y_test, _, _ = evaluate.eval_images(pl, data)
    cpu = torch.device("cpu")
    model, ck = load_model(pl, cpu)
    mean, std = norm_tensors(pl, cpu)

    torch_metrics = Metrics.read(paths.metrics(variant), "metrics file")
    if torch_metrics.checkpoint.config_hash != ck.get("config_hash") or torch_metrics.n_test != len(y_test):
        raise NetpipeError(f"{paths.metrics(variant)} was not computed for this checkpoint and these test images "
                           f"({torch_metrics.n_test} vs {len(y_test)} images): run `netpipe evaluate {variant}` first")

    c, s = int(ck["in_channels"]), net.input_size
    meta = metadata(pl, ck, tuple(data.x_test.shape[2:]))
    out32, out16, out8 = paths.onnx(variant), paths.onnx(variant, "fp16"), paths.onnx(variant, "int8")
    ex = pl.export
    proto = _export(model, ex, (c, s, s), ex.dynamo)
    fileio.write_with(out32, lambda tmp: _save(proto, tmp, {**meta, "precision": "fp32"}), suffix=".onnx")
    fileio.write_with(out16, lambda tmp: _save(to_fp16(proto), tmp, {**meta, "precision": "fp16"}), suffix=".onnx")
    t8 = time.perf_counter()
    x_cal = quantize.calibration_images(pl, data.x_train, ex.int8_calibration_images, mean, std)
    fileio.write_with(out8, lambda tmp: quantize.quantize(out32, tmp, x_cal, ex), suffix=".onnx")
    quant_seconds = time.perf_counter() - t8

    # parity: onnxruntime vs PyTorch fp32 (CPU), real and random inputs; then the accuracy through onnxruntime
    n = ex.parity_samples
    real = transforms.normalize(transforms.center_crop(torch.from_numpy(x_test[:n]), net.eval, s), mean, std)
    rand = torch.randn(len(real), c, s, s, generator=torch.Generator().manual_seed(pl.seed))
    inputs = {"real": real.contiguous(), "random": rand}
    with torch.no_grad():
        ref = _by_input(model, inputs)
    sess, parity, worst, scale = _parity(ex, variant, out32, ref, inputs)
    t1 = time.perf_counter()
    onnx_acc, diff_pp = _accuracy_check(variant, sess, x_test, y_test, net, mean, std, torch_metrics)
    eval_seconds = time.perf_counter() - t1

    fp16 = Fp16Check(path=str(out16), bytes=out16.stat().st_size, method=FP16_METHOD,
                     tolerance=ex.fp16_tolerance, **_fp16_check(out16, ref, inputs, x_test, y_test, net, mean,
                                                                       std, ex))
    int8 = Int8Check(**quantize.check(out8, onnx_acc, x_test, y_test, pl, mean, std, ort_forward, len(x_cal),
                                      quant_seconds))
    report = ExportReport(
        variant=variant, dataset=dataset, onnx=str(out32), onnx_bytes=out32.stat().st_size,
        opset=ex.opset, exporter="dynamo" if ex.dynamo else "torchscript",
        dynamic_batch=ex.dynamic_batch, providers=sess.get_providers(),
        parity=Parity(max_abs_diff=worst, max_rel_diff=worst / scale, by_provider=parity, samples=len(real),
                      random_samples=len(rand), logit_scale=scale, tolerance=ex.tolerance, check=TOLERANCE_RULE),
        accuracy=OnnxAccuracy(onnx=onnx_acc, torch=Accuracy(**{k: getattr(torch_metrics, k) for k in onnx_acc}),
                              diff_pp=diff_pp, allowed_pp=ACCURACY_PP, n_test=len(y_test),
                              eval_seconds=round(eval_seconds, 3)),
        fp16=fp16, int8=int8, metadata={k: v for k, v in meta.items() if k not in ("classes",)},
        seconds=round(time.perf_counter() - t0, 3), quick=pl.quick, command=f"netpipe export {variant}",
    )
    out = report.write(paths.export_report(variant), paths.headline(variant, "export"))
    f16 = f"fp16 diff {fp16.max_abs_diff:.3g}" if fp16.max_abs_diff is not None else f"fp16 {fp16.reason}"
    print(f"[{variant}] {out32} ({report.onnx_bytes / 1e6:.1f} MB): parity {worst:.3g}, ONNX top-1 "
          f"{onnx_acc['top1']:.4f} vs PyTorch {torch_metrics.top1:.4f}; {out16}: {f16}; {out8}: top-1 "
          f"{int8.accuracy.top1:.4f} ({-int8.drop_pp.top1:+.2f} pp) -> {paths.export_report(variant)}")
    return out


def _parity(ex: ExportParams, variant: str, path: Path, ref: dict, inputs: dict):
    """(session on the best provider, max |logit difference| per provider and input kind, the worst, the logit
    scale); stops the stage when the worst exceeds export.tolerance (relative to logits larger than 1)."""
    provider_sets = [["CPUExecutionProvider"]] + ([[CUDA, "CPUExecutionProvider"]] if runtime.cuda_usable() else [])
    parity = {}
    for providers in provider_sets:
        sess = runtime.session(path, provider_list=providers)
        parity[sess.get_providers()[0]] = _max_diff(sess, ref, inputs)
    worst = max(max(d.values()) for d in parity.values())
    scale = max(1.0, *(float(r.abs().max()) for r in ref.values()))
    if not worst <= ex.tolerance * scale:
        raise NetpipeError(f"{variant}: onnxruntime differs from PyTorch by {worst:.3g} (max abs logit difference, "
                           f"{parity}; logits up to {scale:.3g}); allowed: export.tolerance {ex.tolerance:g}"
                           + (f" x {scale:.3g}" if scale > 1 else ""))
    return sess, parity, worst, scale


def _accuracy_check(variant: str, sess, x_test, y_test, net, mean, std, torch_metrics: Metrics) -> tuple[dict, dict]:
    """The ONNX file's accuracy through onnxruntime with evaluate's protocol, and its difference from PyTorch's
    (artifacts/metrics) in percentage points; stops the stage beyond ACCURACY_PP."""
    onnx_acc = evaluate.accuracy(evaluate.crop_logits(ort_forward(sess), x_test, net, mean, std, torch.device("cpu"),
                                                      desc=f"[{variant}] onnxruntime fp32, test"), y_test)
    diff_pp = {k: round(100 * (onnx_acc[k] - getattr(torch_metrics, k)), 6) for k in onnx_acc}
    bad = {k: v for k, v in diff_pp.items() if abs(v) > ACCURACY_PP + 1e-9}
    if bad:
        raise NetpipeError(f"{variant}: ONNX accuracy differs from PyTorch's ({paths.metrics(variant)}) by "
                           + ", ".join(f"{k} {v:+.4f} pp" for k, v in bad.items())
                           + f" on {len(y_test)} test images (allowed: {ACCURACY_PP} pp)")
    return onnx_acc, diff_pp


def _fp16_check(path: Path, ref, inputs, x_test, y_test, net, mean, std, ex: ExportParams) -> dict:
    """Parity and accuracy of the fp16 file on the best provider that runs it; null with the reason if none does."""
    providers = [CUDA, "CPUExecutionProvider"] if runtime.cuda_usable() else ["CPUExecutionProvider"]
    try:
        sess = runtime.session(path, provider_list=providers)
        diff = _max_diff(sess, ref, inputs)
    except Exception as exc:  # e.g. NOT_IMPLEMENTED: a provider without fp16 kernels for an op
        why = first_line(exc)
        return {"measured": False, "reason": f"not measured: onnxruntime cannot run it here ({why})",
                "provider": None, "max_abs_diff": None, "within_tolerance": None, "accuracy": None}
    worst = max(diff.values())
    scale = max(1.0, *(float(r.abs().max()) for r in ref.values()))
    ok = bool(worst <= ex.fp16_tolerance * scale)  # False for inf/nan (fp16 overflow)
    if not ok:
        print(f"warning: {path}: fp16 logits differ from fp32 PyTorch by {worst:.3g} with logits up to {scale:.3g} "
              f"(export.fp16_tolerance = {ex.fp16_tolerance:g}, {TOLERANCE_RULE})", file=sys.stderr)
    # the fp16 file's accuracy on an evenly spread subset when it runs on the CPU provider: onnxruntime's CPU kernels
    # emulate much of fp16 (casts around fp32 kernels), which makes it the slowest path of the whole pipeline
    cpu = sess.get_providers()[0] == "CPUExecutionProvider"
    keep = spread(len(y_test), ex.fp16_cpu_accuracy_samples if cpu else None)
    acc = evaluate.accuracy(evaluate.crop_logits(ort_forward(sess), x_test[keep], net, mean, std, torch.device("cpu"),
                                                 desc=f"{path.name}: onnxruntime fp16, test"), y_test[keep])
    acc["n_test"] = len(keep)
    finite = bool(np.isfinite(worst))
    return {"measured": True, "reason": None if finite else "fp16 outputs overflow (inf/nan)",
            "provider": sess.get_providers()[0], "max_abs_diff": worst if finite else None,
            "max_rel_diff": worst / scale if finite else None,
            "by_input": {k: (v if np.isfinite(v) else None) for k, v in diff.items()}, "within_tolerance": ok,
            "accuracy": acc}
