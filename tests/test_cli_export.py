"""``stanet-rt export MODEL [--fp16] [--opset 18] [--out DIR] [--check-only] [--trt/--no-trt]``: a checkpoint
exports to checked ONNX graphs with a parity table (an audio-free student has no audio graph and an
encoder that takes only frames), ``--check-only`` re-runs parity on existing files without touching
them and exits 1 when parity fails, TensorRT is skipped with a message where it cannot run, and bad
input is one ``error:`` line with exit code 2 (a non-student config name included)."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from _export_helpers import exported, lively_student
from stanet_rt.export.api import load_student
from typer.testing import CliRunner

from stanet_rt import engines
from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.cli import app
from stanet_rt.models.student_base import StudentModel


def _runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})  # rich wraps at 80 columns otherwise


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.onnx"))}


def test_export_help_lists_its_options() -> None:
    result = _runner().invoke(app, ["export", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("model", "--fp16", "--opset", "--out", "--check-only", "--trt", "--no-trt"):
        assert option in result.output, option


def test_export_an_audio_free_checkpoint(tmp_path) -> None:
    model = lively_student("tiny_lite", audio=False)
    ckpt = save_checkpoint(tmp_path / "lite_silent.pt", model)
    out = tmp_path / "out"
    result = _runner().invoke(app, ["export", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.onnx")) == ["tiny_lite.encoder.onnx", "tiny_lite.head.onnx"]
    text = result.output
    assert "parity" in text and "random" in text and "real" in text and " NO " not in text
    assert f"exporting tiny_lite from checkpoint {ckpt}" in text
    if not (importlib.util.find_spec("tensorrt") and torch.cuda.is_available()):
        assert "TensorRT engines skipped" in text and "the ONNX files were written" in text
    for part in ("encoder", "head"):
        onnx.checker.check_model(str(out / f"tiny_lite.{part}.onnx"), full_check=True)
    assert [i.name for i in onnx.load(str(out / "tiny_lite.encoder.onnx")).graph.input] == ["frames"]

    bundle = engines.open_student(out, device="cpu")
    assert bundle.audio is None and bundle.config == model.config
    frames = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    feats = bundle.encoder.run({"frames": frames})
    logits = bundle.head.run({k: v[None] for k, v in feats.items()})["logits"]  # one window of T = 3
    with torch.no_grad():
        ref = model(torch.from_numpy(frames)[None])
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4)


def test_check_only_reruns_parity_without_touching_the_files() -> None:
    exp = exported("tiny_sta")
    before = _digest(exp.folder)
    result = _runner().invoke(app, ["export", str(exp.checkpoint), "--out", str(exp.folder), "--check-only",
                                    "--fp16", "--no-trt"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for part in ("audio", "encoder", "head"):
        for precision in ("fp32", "fp16"):
            rows = [ln for ln in lines if f" {part} " in ln and f" {precision} " in ln]
            assert len(rows) >= 2 and all(" yes" in r for r in rows), (part, precision)
    assert _digest(exp.folder) == before


def test_check_only_exits_1_when_parity_fails() -> None:
    exp = exported("tiny_sta")
    other = save_checkpoint(exp.folder.parent / "tiny_sta_seed1.pt", lively_student("tiny_sta", seed=1))
    result = _runner().invoke(app, ["export", str(other), "--out", str(exp.folder), "--check-only"])
    assert result.exit_code == 1
    assert " NO" in result.output and "error: parity check failed" in result.output


def test_a_config_name_exports_random_weights_and_says_so() -> None:
    model, source = load_student("tiny_lite")
    assert isinstance(model, StudentModel) and not model.training
    assert source == "config tiny_lite (random weights)"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stanet_rt.cli", "export", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args,message", [
    (["no_such_model", "--no-trt"], "no_such_model: not a model"),
    (["tiny_lite", "--out", "{tmp}/empty", "--check-only"], "tiny_lite.audio.onnx: not found"),
    (["tiny_s", "--out", "{tmp}/t", "--no-trt"], "tiny_s: config tiny_s (s) is not a student"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    proc = _cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr[-2000:]
    assert not list(tmp_path.rglob("*.onnx"))
