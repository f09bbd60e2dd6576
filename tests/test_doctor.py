"""``stanet_rt.doctor.collect`` and ``stanet-rt doctor``."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from stanet_rt.cli import app
from stanet_rt.doctor import check_provider, collect, tiny_onnx_model


@pytest.fixture(scope="module")
def report() -> dict:
    return collect()


def test_report_has_every_section_and_is_json(report: dict) -> None:
    for key in ("python", "packages", "torch", "gpus", "onnx", "onnxruntime", "tensorrt", "av"):
        assert key in report and "error" not in (report[key] if isinstance(report[key], dict) else {})
    assert json.loads(json.dumps(report)) == report
    assert report["torch"]["version"] == torch.__version__
    assert report["torch"]["cuda_build"] == torch.version.cuda
    assert report["onnxruntime"]["available_providers"] == ort.get_available_providers()
    assert report["av"]["ffmpeg"] and report["av"]["libraries"]["libavcodec"]


def test_cpu_provider_really_runs(report: dict) -> None:
    assert report["onnxruntime"]["providers"]["CPUExecutionProvider"] == {"works": True, "detail": "ok"}
    assert set(report["onnxruntime"]["providers"]) == set(ort.get_available_providers())


def test_a_provider_ort_cannot_use_is_reported_as_not_working() -> None:
    missing = [
        p
        for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        if p not in ort.get_available_providers()
    ]
    if not missing:
        pytest.skip("this onnxruntime build has both CUDA and TensorRT providers")
    result = check_provider(missing[0], tiny_onnx_model())
    assert result["works"] is False and result["detail"] != "ok"


def test_gpus_match_torch(report: dict) -> None:
    assert len(report["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


@pytest.mark.gpu
def test_gpu_details() -> None:
    gpu = collect()["gpus"][0]
    major, minor = torch.cuda.get_device_capability(0)
    assert gpu["name"] == torch.cuda.get_device_name(0)
    assert gpu["compute_capability"] == f"{major}.{minor}" and gpu["memory_gib"] > 0


def test_cli_json_and_table() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["onnxruntime"]["providers"]["CPUExecutionProvider"]["works"] is True
    res = runner.invoke(app, ["doctor"])
    assert res.exit_code == 0, res.output
    for label in ("python", "torch", "onnxruntime", "CPUExecutionProvider", "tensorrt", "PyAV"):
        assert label in res.output
