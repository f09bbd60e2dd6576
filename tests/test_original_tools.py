"""Imported (compatibility-mode) models through the tools: `stanet-rt run`, `stanet-rt export --fp16` with its
parity check and `stanet-rt bench models`, on the tiny original configs with the parity fixtures' fill-rule
weights and (slow) on the full-size STA and STA+ imported from the fixtures' files; FP16 parity on flat maps."""

from __future__ import annotations

import json
from pathlib import Path

import _original_fixtures as fx
import h5py
import numpy as np
import pytest
import torch
from stanet_rt.export.parity import FP16_STEPS, fp16_step, judge
from typer.testing import CliRunner

from stanet_rt.checkpoint import load_checkpoint, save_checkpoint
from stanet_rt.cli import app
from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model
from stanet_rt.pipeline.clips import make_clip

runner = CliRunner()
needs_fixtures = pytest.mark.skipif(fx.parity_missing_reason() is not None, reason=str(fx.parity_missing_reason()))


def _filled(name: str) -> torch.nn.Module:
    """A tiny original-mode model with every state-dict entry set by the fixtures' fill rule (seeded by
    our key names: the same kind of weights as the imported fixture models, at a tiny size)."""
    model = build_model(get_config(name))
    state = model.state_dict()
    fx.fill_rule().fill(state)
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny_original")
    out = {name: save_checkpoint(d / f"{name}.pt", _filled(name)) for name in ("tiny_sta_original",
                                                                               "tiny_sta_plus_original")}
    out["clip"] = make_clip(d / "clip.mp4", seconds=1.2, fps=10)
    return out


def _run(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def _check_run(model: Path, clip: Path, maps: Path, frames: int, *options: str) -> np.ndarray:
    """`stanet-rt run clip -m model --maps maps`: one finite, non-constant map per frame; returns them."""
    _run(["run", str(clip), "-m", str(model), "--maps", str(maps), *options])
    with h5py.File(maps) as fh:
        out = fh["maps"][:].astype(np.float32)
    assert out.shape[0] == frames and np.isfinite(out).all()
    assert float(out.std()) > 0
    return out


def _check_export(checkpoint: Path, tmp: Path) -> str:
    """`export --fp16`: exits 0 only when every graph passed its parity check (ORT vs PyTorch)."""
    output = _run(["export", str(checkpoint), "--fp16", "--no-trt", "--out", str(tmp / "exported")])
    graphs = {p.name.split(".", 1)[1] for p in (tmp / "exported").glob("*.onnx")}
    assert graphs == {f"{part}.{p}onnx" for part in ("audio", "encoder", "head") for p in ("", "fp16.")}, graphs
    return output


@pytest.mark.slow
@needs_fixtures
@pytest.mark.parametrize("name", ["tiny_sta_original", "tiny_sta_plus_original"])
def test_tiny_original_models_run_export_fp16_and_bench(tiny, tmp_path: Path, name: str) -> None:
    _, config, _ = load_checkpoint(tiny[name])
    assert config.original
    ours = _check_run(tiny[name], tiny["clip"], tmp_path / "maps.h5", 12)
    _check_export(tiny[name], tmp_path)
    half = _check_run(tmp_path / "exported", tiny["clip"], tmp_path / "maps16.h5", 12, "--backend", "onnxruntime",
                      "--precision", "fp16")  # the exported FP16 graphs stream the same maps
    assert np.corrcoef(ours.ravel(), half.ravel())[0, 1] > 0.999
    _run(["bench", "models", "--models", str(tiny[name]), "--backends", "torch,ort-cpu", "--precisions", "fp32",
          "--batches", "1", "--iterations", "1", "--out", str(tmp_path / "bench"), "--name", "b"])
    rows = json.loads(next((tmp_path / "bench").glob("b.*.json")).read_text())["rows"]
    timed = {(r["backend"], r["part"]) for r in rows if "p50_ms" in r}
    assert {("torch", "frame (cached)"), ("ort-cpu", "frame (cached)")} <= timed, rows


def test_fp16_parity_judges_a_flat_map_on_fp16_steps() -> None:
    """An FP16 graph writes its output in FP16 steps: on a map only ~25 steps wide (a tiny random STA+
    head) that rounding alone pulls CC below 0.999; it passes on max abs error within FP16_STEPS steps,
    and a map that is off by more does not."""
    rng = np.random.default_rng(0)
    ref = (0.275 + 1.5e-3 * rng.standard_normal((2, 1, 64, 64))).astype(np.float32)
    rounded = ref.astype(np.float16).astype(np.float32)
    err, cc, passed, note = judge(rounded, ref, "fp16")
    assert cc < 0.9995 and passed and "FP16 steps" in note and err <= fp16_step(ref)
    assert not judge(rounded, ref, "fp32")[2]  # FP32 graphs have no such excuse
    off = rounded + (FP16_STEPS + 1) * fp16_step(ref) * np.sign(rng.standard_normal(ref.shape)).astype(np.float32)
    assert not judge(off, ref, "fp16")[2]
    wide = ref * 100
    assert judge(wide.astype(np.float16).astype(np.float32), wide, "fp16")[3] == ""  # CC decides


@pytest.mark.slow
@needs_fixtures
@pytest.mark.parametrize("arch", ["sta", "sta_plus"])
def test_imported_full_size_models_run_export_fp16_and_bench(tmp_path: Path, arch: str) -> None:
    """Full size: the fixtures' STA (DataParallel state dict) and STA+ (that + the pickled AudioSwitch)
    through `stanet-rt import`, then run / export --fp16 / bench models as any checkpoint."""
    fixture, name = {"sta": ("sta", "STANet.pth"), "sta_plus": ("staplus", "STAGCN.pth")}[arch]
    files = [fx.write_state_dict(fixture, tmp_path / name)]
    args = ["import", str(files[0]), "--arch", arch, "--out", str(tmp_path / "imported.pt")]
    if arch == "sta_plus":
        files.append(fx.write_switch_pickle(tmp_path / "27001.pt"))
        args += ["--switch", str(files[1])]
    _run(args)
    for f in files:
        f.unlink()
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4, fps=10, width=96, height=64)
    _check_run(tmp_path / "imported.pt", clip, tmp_path / "maps.h5", 4)
    _check_export(tmp_path / "imported.pt", tmp_path)
    _run(["bench", "models", "--models", str(tmp_path / "imported.pt"), "--backends", "torch", "--precisions", "fp32",
          "--batches", "1", "--iterations", "1", "--out", str(tmp_path / "bench"), "--name", "b"])
    rows = json.loads(next((tmp_path / "bench").glob("b.*.json")).read_text())["rows"]
    assert any(r.get("part") == "frame (cached)" and "p50_ms" in r for r in rows), rows
