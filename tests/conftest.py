"""Shared pytest set-up: small thread pools (2-core CI), GPU / TensorRT skips with a clear reason."""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _cuda_available() -> bool:
    from stanet_rt.devices import cuda_available

    return cuda_available()


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


def _ort_has_cuda() -> bool:
    try:
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except Exception:  # pragma: no cover - onnxruntime missing or broken
        return False


ORT_CUDA_REASON = "this onnxruntime has no CUDA execution provider (install onnxruntime-gpu)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_cuda = _cuda_available()
    skip_ort_cuda = pytest.mark.skip(reason=ORT_CUDA_REASON)
    ort_cuda = any("ort_cuda" in item.keywords for item in items) and _ort_has_cuda()
    has_trt = importlib.util.find_spec("tensorrt") is not None
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none is present on this machine")
    skip_trt = pytest.mark.skip(
        reason="needs TensorRT and a CUDA GPU; "
        + ("no CUDA GPU is present" if not has_cuda else "the tensorrt package is not installed")
    )
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        elif "ort_cuda" in item.keywords and not ort_cuda:
            item.add_marker(skip_ort_cuda)
        if "trt" in item.keywords and not (has_cuda and has_trt):
            item.add_marker(skip_trt)
