"""What `netpipe bench` measures with and against: the machine (its description, and its matmul and copy peaks
measured at the start of the run), a model's FLOPs and bytes (`model_stats`) and the floor they set on those peaks
(`floor_ms`, bench.FLOOR_METHOD), and the timer and loop every latency figure comes from (`Timer`, `measure`).
"""

from __future__ import annotations

import gc
import os
import platform
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import speed

CPU_MIN_ITERATIONS = 10  # a CPU measurement stops after bench.cpu_max_seconds once it has this many timed runs
TORCH_DTYPE = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ---------------------------------------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------------------------------------
cpu_model = speed.cpu_model


def machine_info(cuda_torch: bool, cuda_ort: bool, ort_threads: int | None) -> dict:
    import onnxruntime as ort

    from importlib.metadata import PackageNotFoundError, version

    try:  # the installed version, without importing onnx (0.5 s) for it
        onnx_version = version("onnx")
    except PackageNotFoundError:  # pragma: no cover
        onnx_version = None
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,  # others' work skews CPU figures
        "torch_threads": torch.get_num_threads(),
        "ort_threads": ort_threads or "default (physical cores)",
        "gpu": torch.cuda.get_device_name(0) if cuda_torch else None,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda_torch else None,
        "cuda_torch": cuda_torch,
        "cuda_onnxruntime": cuda_ort,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tf32": bool(cuda_torch),  # fp32 matmul/conv on the GPU may use TF32 (PyTorch and onnxruntime alike)
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "onnx": onnx_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    return info


def _time_best(fn: Callable[[], None], sync: Callable[[], None], min_time: float, max_reps: int) -> float:
    fn()
    sync()
    best = float("inf")
    t_end = time.perf_counter() + min_time
    for i in range(max_reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() > t_end:
            break
    return best


def _copy_seconds(dev: torch.device, nbytes: int, sync: Callable[[], None], quick: bool) -> float:
    """Best time to copy `nbytes` of fp32 on `dev` (the buffers are freed when this returns)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    return _time_best(lambda: dst.copy_(src), sync, 0.0 if quick else 0.2, 3 if quick else 20)


def _matmul_seconds(dev: torch.device, n: int, dtype: torch.dtype, sync: Callable[[], None], quick: bool) -> float:
    """Best time of one n x n matmul on `dev` (the operands are freed when this returns)."""
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    return _time_best(lambda: torch.mm(a, b), sync, 0.0 if quick else 0.3, 3 if quick else 50)


def measure_peak(dev: torch.device, precisions: list[str], quick: bool = False) -> dict:
    """Peak matmul FLOP/s per precision and copy bytes/s of one device, measured now (best of a few runs; the
    quick check takes the best of 3, not of 0.2-0.3 s of runs: 0.7 s less a bench process on 2 cores)."""
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(dev) if cuda else f"cpu ({cpu_model()}, "
                                                                                  f"{torch.get_num_threads()} threads)"}
    nbytes = (1 << 30) if cuda else (128 << 20)
    out["copy_bytes_per_s"] = 2 * nbytes / _copy_seconds(dev, nbytes, sync, quick)  # read + write
    out["copy_bytes"] = nbytes
    for prec in precisions:
        if not cuda and not (prec == "fp32" or (prec == "bf16" and speed.bf16_native())):
            continue  # CPU fp16 (and bf16 without native support) computes in fp32: the fp32 peak applies (peak_for)
        n = 8192 if cuda else 1024
        t = _matmul_seconds(dev, n, TORCH_DTYPE[prec], sync, quick)
        out[prec] = {"matmul_flops_per_s": 2 * n**3 / t, "matmul_n": n}
    if cuda:
        torch.cuda.empty_cache()
    return out


PEAK_CACHE_VERSION = 1


def machine_peak(dev: torch.device, precisions: list[str], quick: bool = False) -> dict:
    """`measure_peak`, once per machine: cached in ~/.cache/netpipe/peaks.json ($NETPIPE_CACHE_DIR) under the device,
    its threads, torch's version, the precisions and the quick flag; `measured` says when, `cached` whether this
    bench process measured it or read it. A machine's peaks do not change between bench processes, and measuring
    them costs each one 0.7-2 s on 2 cores. Bench processes running side by side (parallel DVC stages) take a lock,
    so one measures and the others read; a measurement taken while the machine is busy (1-minute load above half
    its cores, or $NETPIPE_PEAK_MAX_LOAD: the peaks would read low) is used but not cached."""
    import datetime
    import fcntl
    import json

    from .records import DevicePeak

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
    key = json.dumps({"v": PEAK_CACHE_VERSION, "device": name, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "precisions": sorted(precisions), "quick": quick}, sort_keys=True)
    lock = speed.cache_path("peaks").with_suffix(".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = open(lock, "a")
    except OSError:  # a read-only home: measure, cache nothing
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        hit = speed.read_cache("peaks").get(key)
        try:
            return {**DevicePeak.model_validate({**hit, "cached": True}).model_dump(exclude_none=True)}
        except Exception:  # no entry, or one this version cannot read: measure again
            pass
        out = measure_peak(dev, precisions, quick)
        out["measured"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        limit = float(os.environ.get("NETPIPE_PEAK_MAX_LOAD") or 0.5 * (os.cpu_count() or 1))
        out["load_avg_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        busy = out["load_avg_1min"] is not None and out["load_avg_1min"] > limit
        if fd is not None and not busy:
            speed.write_cache(key, out, "peaks")
        return {**out, "cached": False}
    finally:
        if fd is not None:
            fd.close()


def peak_for(peak: dict, device: str, precision: str) -> tuple[float, float] | None:
    d = peak.get(device)
    if not d:
        return None
    entry = d.get(precision) or d.get("fp32")
    if not entry:
        return None
    return entry["matmul_flops_per_s"], d["copy_bytes_per_s"]


# ---------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------
def layer_flops(m: nn.Module, out: torch.Tensor) -> int:
    """FLOPs of one convolution or linear layer's forward (2 per multiply-add, bias not counted): what
    torch.utils.flop_counter.FlopCounterMode counts for them (tests/test_bench_report.py checks that both agree on
    every registered network). Every other layer counts 0, as there. Its limits: modules only (a functional matmul
    or attention inside a forward is not seen) and leaf modules only (model_stats hooks leaves)."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return 2 * out.numel() * (m.in_channels // m.groups) * int(np.prod(m.kernel_size))
    if isinstance(m, nn.Linear):
        return 2 * out.numel() * m.in_features
    return 0


def model_stats(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """FLOPs (convolutions and matmuls, 2 per multiply-add) and bytes of one image, from forward hooks on the
    leaf layers. Counted by hand rather than with FlopCounterMode because that imports torch._dynamo: 1.5-2 s of
    every bench process on 2 cores, more than the quick check's whole measurement of a small net."""
    act = flops = 0

    def hook(m, _i, out):
        nonlocal act, flops
        for o in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(o, torch.Tensor):
                act += o.numel() * o.element_size()
        if isinstance(out, torch.Tensor):
            flops += layer_flops(m, out)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    x = torch.randn(1, *input_shape, device=next(model.parameters()).device)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    out = out[0] if isinstance(out, (tuple, list)) else out
    params = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    return {
        "flops_per_image": flops,
        "macs_per_image": flops // 2,
        "params": params,
        "weights_bytes": weights,
        "activation_bytes_per_image": act,
        "input_shape": list(input_shape),
        "output_shape": list(out.shape[1:]),
        "input_bytes_per_image": int(np.prod(input_shape)) * 4,
        "output_bytes_per_image": int(out[0].numel()) * 4,
    }


def floor_ms(stats: dict, peak: dict, device: str, precision: str, batch: int) -> float | None:
    pk = peak_for(peak, device, precision)
    if pk is None:
        return None
    flops_s, bytes_s = pk
    scale = {"fp16": 0.5, "bf16": 0.5, "int8": 0.25}.get(precision, 1.0)  # 2- and 1-byte weights and tensors
    nbytes = scale * (stats["weights_bytes"] + batch * (stats["input_bytes_per_image"] + stats["output_bytes_per_image"]))
    return 1e3 * max(stats["flops_per_image"] * batch / flops_s, nbytes / bytes_s)

# ---------------------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------------------
class Timer:
    """Times one call in ms: CUDA events on PyTorch's current stream, else perf_counter (the call syncs itself)."""

    def __init__(self, cuda_events: bool) -> None:
        self.cuda_events = cuda_events
        if cuda_events:
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda_events:
            self.start.record()
            fn()
            self.end.record()
            self.end.synchronize()
            return float(self.start.elapsed_time(self.end))
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3


def measure(fn: Callable[[], Any], timer: Timer, batch: int, *, warmup: int, iterations: int, min_seconds: float,
            max_seconds: float | None, first_ms: float | None = None) -> dict:
    """First inference (unless the caller made and timed it: `first_ms`), warm-up, then the timed runs:
    percentiles (ms) and throughput (images/s)."""
    t_begin = time.perf_counter()
    first = timer(fn) if first_ms is None else first_ms
    for _ in range(warmup):
        if max_seconds is not None and time.perf_counter() - t_begin > max_seconds / 2:
            break
        fn()
    times: list[float] = []
    capped = False
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        while True:
            times.append(timer(fn))
            elapsed = time.perf_counter() - t0
            if len(times) >= iterations and elapsed >= min_seconds:
                break
            if max_seconds is not None and elapsed > max_seconds and len(times) >= min(iterations, CPU_MIN_ITERATIONS):
                capped = True
                break
            if len(times) >= 1_000_000:
                break
    finally:
        if gc_was:
            gc.enable()
    a = np.asarray(times)
    mean = float(a.mean())
    out = {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": mean,
        "images_per_s": batch * 1e3 / mean if mean > 0 else None,
        "iterations": len(times),
        "first_inference_ms": first,
    }
    if capped:
        out["time_capped"] = True
    return out
