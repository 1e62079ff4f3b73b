"""onnxruntime sessions without torch, and without onnxruntime-gpu's provider-load errors on machines with no GPU.

onnxruntime-gpu lists the CUDA provider even where no GPU is usable, and asking for it there prints
"Failed to load library ... libcublasLt.so.13" before falling back. We first check, quietly, that the
CUDA driver and cuBLAS can be loaded and that a device exists; only then do we ask for the CUDA provider. Beside a
CUDA torch, the CPU build of onnxruntime has no CUDA provider at all: that is asked first.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path
from typing import Sequence

from .errors import InputError, first_line


def cuda_usable() -> bool:
    """True when onnxruntime's CUDA provider can run here: this onnxruntime has one (onnxruntime-gpu; the CPU build,
    as on the GPU machine, has none) and a CUDA device with the libraries it needs is there."""
    if os.environ.get("NETPIPE_FORCE_CPU"):
        return False
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers() and cuda_libraries_load()


@functools.lru_cache(maxsize=1)
def cuda_libraries_load() -> bool:
    """The driver side, asked quietly: a CUDA device is present and the CUDA 13 libraries that onnxruntime's CUDA
    provider needs (libcuda, cuBLAS) load."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    if libcuda.cuInit(0) != 0 or libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return False
    try:  # the CUDA 13 runtime libraries: from the system or from the nvidia-* wheels torch brings
        import onnxruntime as ort

        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls(directory="")
        ctypes.CDLL("libcublasLt.so.13")
    except OSError:
        return False
    return True


def providers(prefer_cuda: bool = True) -> list[str]:
    if prefer_cuda and cuda_usable():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path: str | os.PathLike, prefer_cuda: bool = True, threads: int | None = None,
            provider_list: Sequence[str] | None = None):
    """An InferenceSession on the best usable provider; a file that is not a loadable ONNX model is an InputError."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise InputError(f"model {path} not found" if not path.exists() else f"model {path} is not a file")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(provider_list or providers(prefer_cuda)))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise InputError(f"model {path} is not a usable ONNX model: {first_line(exc)}") from None
