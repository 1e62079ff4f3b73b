"""pytest-benchmark: the int8 ONNX file against the fp32 one and PyTorch's fastest CPU path, in one bench run.

    .venv/bin/pytest tests/benchmarks/test_int8_speed.py --benchmark-only --benchmark-json=docs/results/cpu-int8-speed/benchmark-MACHINE.json

`netpipe bench` itself (bench.run) on alexnet_thinner_4 of the tiny pipeline project (tests/conftest.py; the
weights of a 2-step run: speed does not depend on them), backends ort_cpu and torch_eager, precisions fp32, int8
and bf16 (bf16 runs only where the CPU has native bf16 matrix instructions; elsewhere the bench records why not),
batch 1 and 256, in one process, one after the other. extra_info holds, per batch, images/s of each path and the
ratios the issue sets goals for (read off the JSON, not asserted: timings depend on the machine and its load):
- int8 / onnxruntime fp32: >= 2x at batch 256 on a CPU with int8 dot-product instructions (VNNI/AMX), >= 1.5x on
  one without;
- int8 / PyTorch's fastest CPU path (eager fp32, or bf16 where native): >= 1x.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import yaml

VARIANT = "alexnet_thinner_4"
BATCHES = [1, 256]


def _project(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    shutil.copy(src / "params.yaml", dst / "params.yaml")
    shutil.copytree(src / "artifacts", dst / "artifacts")
    shutil.copytree(src / "data", dst / "data")
    os.symlink(src / "models", dst / "models")
    raw = yaml.safe_load((dst / "params.yaml").read_text())
    raw["quick"]["enabled"] = False
    raw["bench"].update({"backends": ["ort_cpu", "torch_eager"], "precisions": ["fp32", "int8", "bf16"],
                         "batch_sizes": BATCHES, "iterations": 20, "warmup": 3, "cpu_max_seconds": 20.0})
    (dst / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return dst


def test_int8_vs_fp32_and_pytorch(benchmark, pipeline_project, tmp_path):
    from pipeline import bench, params, speed
    from tests.conftest import _cwd

    root = _project(pipeline_project, tmp_path / "proj")
    with _cwd(root):
        out = benchmark.pedantic(bench.run, args=(params.load("params.yaml"), VARIANT), rounds=1, iterations=1)
    res = out["results"]
    info = {"variant": VARIANT, "cpu": out["machine"]["cpu"], "bf16_native": speed.bf16_native(),
            "int8_dot_product": _int8_dot_product(), "skipped": out["skipped"]}
    for b in map(str, BATCHES):
        ips = {f"{backend}_{prec}": per[prec][b]["images_per_s"] for backend, per in res.items() for prec in per
               if b in per[prec]}
        torch_best = max(v for k, v in ips.items() if k.startswith("torch_"))
        info[f"batch_{b}"] = {"images_per_s": {k: round(v, 1) for k, v in ips.items()},
                              "int8_vs_ort_fp32": round(ips["ort_cpu_int8"] / ips["ort_cpu_fp32"], 2),
                              "int8_vs_fastest_torch": round(ips["ort_cpu_int8"] / torch_best, 2)}
        print(f"batch {b}: " + ", ".join(f"{k} {v:,.0f} img/s" for k, v in ips.items())
              + f"; int8/ort fp32 {info[f'batch_{b}']['int8_vs_ort_fp32']:.2f}x, int8/fastest PyTorch "
              f"{info[f'batch_{b}']['int8_vs_fastest_torch']:.2f}x")
    benchmark.group = "int8 ONNX on onnxruntime's CPU provider"
    benchmark.extra_info.update(info)
    assert all(np.isfinite(info[f"batch_{b}"]["int8_vs_ort_fp32"]) for b in BATCHES)


def _int8_dot_product() -> str:
    """Which int8 dot-product instructions the CPU has (onnxruntime's int8 kernels use them), from /proc/cpuinfo."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("amx_int8", "avx512_vnni", "avx_vnni") if f in flags]
    return ", ".join(found) or "none (AVX2 only: int8 through vpmaddubsw)"
