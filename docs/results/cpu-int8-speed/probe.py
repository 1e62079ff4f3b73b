"""Why the int8 file is not faster than fp32 at batch 256 here: one net (alexnet_thinner_4, random weights: speed does
not depend on them), exported as export does, quantized several ways; each file's graph after onnxruntime's
optimisations (which ops run quantised) and its images/s at batch 1 and 256 through the CPU provider, same run.

    PYTHONPATH=. python docs/results/cpu-int8-speed/probe.py [ARCH] > docs/results/cpu-int8-speed/probe-ARCH.txt
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from pipeline import nets, quantize
from pipeline.params import ExportParams
from pipeline.export import _export

TMP = Path("/tmp/int8-probe")


def session(path: Path, opt_out: Path | None = None, **cfg) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.log_severity_level = 3
    if opt_out:
        o.optimized_model_filepath = str(opt_out)
    for k, v in cfg.items():
        o.add_session_config_entry(k, v)
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def ops(path: Path) -> str:
    c = collections.Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.items()))


def speed(sess, batch: int, reps: int) -> float:
    x = np.random.default_rng(0).standard_normal((batch, 3, 32, 32), dtype=np.float32)
    sess.run(None, {"input": x})
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, {"input": x})
        best = min(best, time.perf_counter() - t0)
    return batch / best


def main() -> None:
    arch = sys.argv[1] if len(sys.argv) > 1 else "alexnet_thinner_4"
    TMP.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = nets.create(arch, num_classes=10).eval()
    with torch.no_grad():  # biases as a trained net has them (zeros are deduplicated by the exporter)
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.uniform_(-0.05, 0.05)
    fp32 = TMP / "fp32.onnx"
    onnx.save(_export(model, ExportParams(), (3, 32, 32), False), str(fp32))
    rng = np.random.default_rng(1)
    x_cal = rng.standard_normal((64, 3, 32, 32), dtype=np.float32)
    files = {"fp32": fp32}
    for label, upd in [("int8 as export writes (pre-process, per-channel, 7-bit)", {}),
                       ("int8, 8-bit weights", {"int8_reduce_range": False}),
                       ("int8, per-tensor", {"int8_per_channel": False}),
                       ("int8, qint8 activations", {"int8_activations": "qint8"})]:
        out = TMP / f"q{len(files)}.onnx"
        quantize.quantize(fp32, out, x_cal, ExportParams().model_copy(update=upd))
        files[label] = out
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    out = TMP / "noprep.onnx"
    quantize_static(str(fp32), str(out), quantize._reader(x_cal, "input", 32, False), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8)
    files["int8, no pre-process, defaults"] = out
    print(f"{arch}, random weights, onnxruntime {ort.__version__} CPU provider, {torch.get_num_threads()} threads; "
          f"images/s best of N runs")
    for label, f in files.items():
        opt = TMP / f"{f.stem}.opt.onnx"
        s = session(f, opt)
        print(f"- {label}: batch 1 {speed(s, 1, 50):,.0f} img/s, batch 256 {speed(s, 256, 5):,.0f} img/s")
        print(f"    after optimisation: {ops(opt)}")


if __name__ == "__main__":
    main()
