"""Where the int8 file's accuracy goes on an AVX2 CPU without VNNI, decided on VALIDATION images (not the test set):
the fp32 file, the int8 file export wrote, and int8 files re-quantized from the same fp32 file and calibration images
with reduce_range (7-bit weights: onnxruntime's advice against the saturation of its u8s8 kernels, vpmaddubsw, on
CPUs without VNNI), all through onnxruntime's CPU provider, single centre view.

    cd /work/run-int8 && PYTHONPATH=. python /work/main/docs/results/cpu-int8/reduce_range.py > .../reduce_range.txt
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from pipeline import params, paths, quantize, runtime, transforms
from pipeline.data import load_prepared, spread
from pipeline.predict import infer

V = "alexnet_thinner_4_e8"
N_VAL = 2000


def main() -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    p = params.load("params.yaml")
    pl = p.plan(V)
    data = load_prepared(pl.dataset)
    mean, std = (torch.tensor(v) for v in (pl.mean, pl.std))
    keep = spread(len(data.y_val), N_VAL)
    xv = transforms.normalize(transforms.center_crop(torch.from_numpy(data.x_val[keep]), pl.net.eval,
                                                     pl.net.input_size), mean, std).numpy()
    yv = data.y_val[keep]
    x_cal = quantize.calibration_images(pl, data.x_train, pl.export.int8_calibration_images, mean, std)
    files = {"fp32": paths.onnx(V), "int8 as exported (quint8, per-channel)": paths.onnx(V, "int8")}
    tmp = Path("/tmp/netpipe-rr")
    tmp.mkdir(exist_ok=True)
    quant_pre_process(str(paths.onnx(V)), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
    for label, act, rr, pc in (("int8 reduce_range (quint8, per-channel)", QuantType.QUInt8, True, True),
                               ("int8 reduce_range (quint8, per-tensor)", QuantType.QUInt8, True, False)):
        out = tmp / f"{len(files)}.onnx"
        quantize_static(str(tmp / "pre.onnx"), str(out), quantize._reader(x_cal, "input", 32, False),
                        quant_format=QuantFormat.QDQ, per_channel=pc, reduce_range=rr, activation_type=act,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        files[label] = out
    print(f"{V}: top-1 on {len(yv):,} validation images (evenly spread), centre view, onnxruntime CPU provider;"
          f" images/s at batch 256 (best of 3 runs)")
    for label, f in files.items():
        sess = runtime.session(f, provider_list=["CPUExecutionProvider"])
        acc = float((infer(sess, xv).argmax(1) == yv).mean())
        xb = xv[:256]
        best = min(_t(sess, xb) for _ in range(3))
        print(f"- {label}: {100 * acc:.2f}%, {256 / best:,.0f} img/s")


def _t(sess, xb: np.ndarray) -> float:
    t0 = time.perf_counter()
    sess.run(None, {"input": xb})
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
