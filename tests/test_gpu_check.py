"""benchmarks/gpu_check: the per-frame steps it times (run here on the CPU, eager) and its refusal without a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from stanet_rt.benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["tiny_sta", "tiny_sta_plus", "tiny_lite"])
def test_student_step_gives_a_normalised_map_and_uses_the_newest_audio(name: str) -> None:
    step = gpu_check.make_step(name, "cpu", "fp32")
    with torch.no_grad():
        out = step.run()
    assert out.ndim == 4 and out.shape[:2] == (1, 1)
    assert float(out.min()) == pytest.approx(0.0, abs=1e-6) and float(out.max()) == pytest.approx(1.0, abs=1e-6)
    emb = step.inputs.get("encoder.audio_embedding")
    if emb is not None:  # the audio front end's output reached the encoder's static input
        assert emb.abs().sum() > 0


def test_fused_step_is_the_normalised_maximum() -> None:
    a = gpu_check.make_step("tiny_sta", "cpu", "fp32")
    b = gpu_check.make_step("tiny_lite", "cpu", "fp32")
    with torch.no_grad():
        fused = gpu_check.fused_step([a, b]).run()
        ma, mb = a.run(), b.run()
    size = max(ma.shape[-2:], mb.shape[-2:])
    assert fused.shape[-2:] == size and float(fused.max()) == pytest.approx(1.0, abs=1e-6)


def test_bench_rows_on_the_cpu() -> None:
    result = gpu_check.bench(["tiny_lite"], ["fp32", "fp16"], ["eager"], 0.0, device="cpu", log=lambda _: None)
    fp32, fp16 = result.rows
    assert fp32["p50_ms"] > 0 and "skipped" not in fp32
    assert "fp16" in fp16["skipped"] and "CUDA" in fp16["skipped"]  # the torch backend's FP16 needs CUDA


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_refuses_without_a_gpu_in_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "stanet_rt.benchmarks.gpu_check", "--skip-tests"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "CUDA GPU" in proc.stderr
    sh = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                        timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert sh.returncode == 2 and "CUDA GPU" in sh.stderr
