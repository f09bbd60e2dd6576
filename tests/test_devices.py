"""``stanet_rt.devices``: the one GPU probe. It agrees with torch, and without torch it says "no GPU"
instead of raising."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from stanet_rt import devices


def test_probe_agrees_with_torch() -> None:
    assert devices.cuda_available() == torch.cuda.is_available()
    assert len(devices.gpus()) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert devices.driver_version() is None or devices.driver_version()[0].isdigit()


def test_without_torch_there_is_no_gpu_and_no_import(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("torch must not be asked"))
    assert devices.cuda_available() is False and devices.gpus() == []


def test_broken_cuda_counts_as_no_gpu(monkeypatch) -> None:
    def broken() -> bool:
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    assert devices.cuda_available() is False and devices.gpus() == []


@pytest.mark.gpu
def test_gpu_names_match_torch() -> None:
    (first, *_) = devices.gpus()
    assert first.name == torch.cuda.get_device_name(0)
    assert first.compute_capability == "{}.{}".format(*torch.cuda.get_device_capability(0))
    assert first.memory_gib > 0
