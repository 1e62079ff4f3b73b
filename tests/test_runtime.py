"""pipeline/runtime.py: onnxruntime's CUDA provider is asked for only where it can run. Its two sides are asked
separately: does this onnxruntime have a CUDA provider (onnxruntime-gpu has one, the CPU build has none), and does
the driver side load (a device, libcuda, cuBLAS)? Here the driver side is faked to say yes, as on the GPU machine,
where a CUDA torch sits beside the CPU build of onnxruntime."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from pipeline import runtime


@pytest.fixture
def driver_loads(monkeypatch):
    monkeypatch.delenv("NETPIPE_FORCE_CPU", raising=False)
    monkeypatch.setattr(runtime, "cuda_libraries_load", lambda: True)


def test_cpu_build_of_onnxruntime_beside_a_usable_gpu_is_not_cuda(driver_loads, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert not runtime.cuda_usable()
    assert runtime.providers() == ["CPUExecutionProvider"]


def test_onnxruntime_gpu_beside_a_usable_gpu_is_cuda(driver_loads, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert runtime.cuda_usable()
    assert runtime.providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert runtime.providers(prefer_cuda=False) == ["CPUExecutionProvider"]
    monkeypatch.setenv("NETPIPE_FORCE_CPU", "1")
    assert not runtime.cuda_usable()


def test_this_machine_agrees_with_its_own_onnxruntime():
    """Unfaked: CUDA only where this onnxruntime lists the provider and the driver side loads."""
    want = "CUDAExecutionProvider" in ort.get_available_providers() and runtime.cuda_libraries_load()
    assert runtime.cuda_usable() == want
