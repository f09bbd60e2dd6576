"""The streaming runtime: files with / without audio, the live path (lavfi camera + microphone),
truncated input, SIGINT during a run, frame counts and timestamps, look-ahead edge padding, errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import av
import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.cli import app
from stanet_rt.config import get_config
from stanet_rt.errors import InputError
from stanet_rt.models.factory import build_model
from stanet_rt.pipeline.api import RunOptions, run
from stanet_rt.pipeline.clips import make_clip
from stanet_rt.pipeline.model_runner import Fuser, StreamingStudent


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe")
    torch.manual_seed(0)
    sta = save_checkpoint(d / "sta.pt", build_model(get_config("tiny_sta")))
    plus = save_checkpoint(d / "plus.pt", build_model(get_config("tiny_sta_plus")))
    lite = save_checkpoint(d / "lite.pt", build_model(get_config("tiny_lite")))
    clip = make_clip(d / "clip.mp4", seconds=2.0, fps=10)
    silent = make_clip(d / "noaudio.mp4", seconds=1.5, fps=10, audio=False)
    return {"dir": d, "sta": sta, "plus": plus, "lite": lite, "clip": clip, "noaudio": silent}


def _video_pts(path):
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)], [s.type for s in c.streams]


def test_file_with_audio_keeps_frames_pts_and_audio(assets, tmp_path) -> None:
    opts = RunOptions(overlay=tmp_path / "o.mp4", maps=tmp_path / "m.h5", batch=3)
    res = run(assets["clip"], [assets["sta"], assets["plus"]], opts, log=lambda m: None)
    assert res.status == "done" and res.frames_in == res.frames_out == 20
    in_pts, _ = _video_pts(assets["clip"])
    out_pts, types = _video_pts(tmp_path / "o.mp4")
    assert out_pts == in_pts and "audio" in types
    with h5py.File(tmp_path / "m.h5") as fh:
        assert fh["maps"].shape == (20, 64, 64) and fh["maps"].dtype == np.float16
        np.testing.assert_allclose(fh["pts"][:], np.arange(20) / 10, atol=1e-6)
        assert float(fh["maps"][5].max()) == pytest.approx(1.0, abs=1e-3)  # fused maps are normalised
    assert set(res.stats["stages"]) >= {"preprocess", "audio", "encoder", "head", "fusion", "sinks"}


def test_file_without_audio_uses_audio_free_path_once(assets, tmp_path) -> None:
    said = []
    res = run(assets["noaudio"], [assets["sta"]], RunOptions(maps=tmp_path / "m.h5"), log=said.append)
    assert res.status == "done" and res.frames_out == 15
    assert sum("audio-free" in m for m in said) == 1


def test_live_lavfi_camera_and_microphone(assets, tmp_path) -> None:
    opts = RunOptions(overlay=tmp_path / "live.mp4", maps=tmp_path / "live.h5", max_frames=12)
    res = run(None, [assets["lite"]], opts, camera="lavfi:testsrc2=size=96x64:rate=10",
              mic="lavfi:sine=frequency=440:sample_rate=16000", log=lambda m: None)
    assert res.status == "done" and res.frames_in == 12 and res.frames_out == res.frames_in - res.dropped
    pts, _ = _video_pts(tmp_path / "live.mp4")
    with h5py.File(tmp_path / "live.h5") as fh:
        assert fh["maps"].shape[0] == len(pts) == res.frames_out
        assert np.all(np.diff(fh["pts"][:]) > 0)


def test_truncated_file_finalizes_outputs(assets, tmp_path) -> None:
    full = make_clip(tmp_path / "full.mkv", seconds=3.0, fps=10)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    res = run(cut, [assets["sta"]], RunOptions(overlay=tmp_path / "o.mp4", maps=tmp_path / "m.h5"),
              log=lambda m: None)
    assert res.status == "source truncated" and 0 < res.frames_out < 30
    pts, _ = _video_pts(tmp_path / "o.mp4")
    with h5py.File(tmp_path / "m.h5") as fh:
        assert len(pts) == fh["maps"].shape[0] == res.frames_out


def test_sigint_during_run_leaves_consistent_outputs(assets, tmp_path) -> None:
    long_clip = make_clip(tmp_path / "long.mp4", seconds=30.0, fps=10, width=128, height=96)
    out, maps = tmp_path / "o.mp4", tmp_path / "m.h5"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "stanet_rt.cli", "run", str(long_clip), "-m", str(assets["sta"]),
                             "-o", str(out), "--maps", str(maps), "--batch", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not out.exists():
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=300)
    assert proc.returncode == 130
    pts, _ = _video_pts(out)
    with h5py.File(maps) as fh:
        n = fh["maps"].shape[0]
    assert 0 < n < 300 and len(pts) == n


def test_lookahead_emits_every_frame_in_order() -> None:
    torch.manual_seed(0)
    model = build_model(get_config("tiny_sta_plus")).eval()  # look-ahead 4
    import stanet_rt.engines.torch_backend as tb
    from stanet_rt.engines.auto import StudentEngines

    parts = tb.torch_engines(model)
    student = StreamingStudent(StudentEngines(model.config, parts["encoder"], parts["head"], parts["audio"]))
    images = np.random.default_rng(0).integers(0, 255, (7, 48, 48, 3), dtype=np.uint8)
    got = []
    for i in range(7):
        got += [idx for idx, _ in student.push(images[i:i + 1], None, np.zeros(1))]
        assert got == list(range(max(0, i - 3)))  # frame i - 4 is ready once frame i is in
    got += [idx for idx, _ in student.flush()]
    assert got == list(range(7))


def test_fuser_is_normalised_max() -> None:
    fuser = Fuser(2, (4, 4))
    a = np.zeros((1, 1, 4, 4), np.float32)
    a[..., 0, 0] = 5
    b = np.zeros((1, 1, 4, 4), np.float32)
    b[..., 3, 3] = 5
    assert fuser.add(0, a) is None
    fused = fuser.add(0, b)
    assert fused[0, 0] == pytest.approx(1.0) and fused[3, 3] == pytest.approx(1.0) and fused[1, 1] == 0


def test_fuser_mean_and_the_training_fusion_agree() -> None:
    from stanet_rt.training.stages.students import stanet_plus_fusion

    from stanet_rt.pipeline.model_runner import fuse_maps, normalise, sigmoid

    g = np.random.default_rng(0)
    logits = [g.normal(size=(1, 1, 8, 8)).astype(np.float32) for _ in range(2)]
    for fusion in ("max", "mean"):
        fuser = Fuser(2, (8, 8), fusion)
        fuser.add(3, logits[0])
        fused = fuser.add(3, logits[1])
        maps = [normalise(sigmoid(x[0, 0])) for x in logits]
        combined = np.max(maps, axis=0) if fusion == "max" else np.mean(maps, axis=0)
        np.testing.assert_allclose(fused, normalise(combined), atol=1e-6)
        np.testing.assert_allclose(stanet_plus_fusion(maps, fusion), fused, atol=1e-6)  # report == runtime
    assert not np.allclose(fuse_maps(maps, "max"), fuse_maps(maps, "mean"))
    with pytest.raises(ValueError, match="fusion"):
        Fuser(2, (8, 8), "median")
    with pytest.raises(ValueError, match="fusion"):
        stanet_plus_fusion(maps, "median")


def test_two_models_fused_by_mean_on_request(assets, tmp_path) -> None:
    maps = {}
    for fusion in ("max", "mean"):
        opts = RunOptions(maps=tmp_path / f"{fusion}.h5", fusion=fusion)
        res = run(assets["clip"], [assets["sta"], assets["plus"]], opts, log=lambda m: None)
        assert res.status == "done" and res.frames_out == 20
        with h5py.File(tmp_path / f"{fusion}.h5") as fh:
            maps[fusion] = fh["maps"][:].astype(np.float32)
    assert np.abs(maps["max"] - maps["mean"]).max() > 0.01
    assert (maps["mean"] <= maps["max"] + 1e-2).mean() > 0.5  # the mean lies under the max almost everywhere


def test_bad_inputs_are_one_line_errors(assets, tmp_path) -> None:
    runner = CliRunner()
    bad = tmp_path / "junk.mp4"
    bad.write_text("junk")
    for args, pattern in ((["run", str(tmp_path / "nope.mp4"), "-m", str(assets["sta"])], "no such file"),
                          (["run", str(bad), "-m", str(assets["sta"])], "cannot read as a media file"),
                          (["run", str(assets["clip"]), "-m", str(tmp_path / "nope.pt")], "checkpoint not found"),
                          (["run", "--camera", "99", "-m", str(assets["sta"])], "cannot open"),
                          (["run", str(assets["clip"]), "--fusion", "median"], "--fusion must be one of")):
        res = subprocess.run([sys.executable, "-m", "stanet_rt.cli", *args], capture_output=True, text=True)
        assert res.returncode == 2, res.stderr
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and pattern in lines[0] and lines[0].startswith("error:")
    assert runner.invoke(app, ["run"]).exit_code != 0
    with pytest.raises(InputError):
        run(assets["clip"], [assets["dir"] / "missing.pt"], RunOptions())


def _run_in_thread(fn, timeout: float = 120.0):
    """Run ``fn`` in a thread; fail the test (instead of hanging CI) if it does not return in time."""
    import threading

    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "run() hung"
    return box


def test_inference_error_is_raised_without_hanging_and_outputs_are_finalized(assets, tmp_path, monkeypatch) -> None:
    long_clip = make_clip(tmp_path / "long.mp4", seconds=12.0, fps=10, width=96, height=64)
    original = StreamingStudent.push
    calls = {"n": 0}

    def failing_push(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("engine exploded")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StreamingStudent, "push", failing_push)
    opts = RunOptions(overlay=tmp_path / "o.mp4", maps=tmp_path / "m.h5", batch=1, queue_size=4)
    box = _run_in_thread(lambda: run(long_clip, [assets["sta"]], opts, log=lambda m: None))
    assert isinstance(box.get("error"), RuntimeError) and "engine exploded" in str(box["error"])
    pts, _ = _video_pts(tmp_path / "o.mp4")  # a playable video with what was done before the error
    with h5py.File(tmp_path / "m.h5") as fh:
        assert fh["maps"].shape[0] == len(pts) < 120


def test_sink_error_is_raised_without_hanging(assets, tmp_path, monkeypatch) -> None:
    from stanet_rt.pipeline import sinks

    long_clip = make_clip(tmp_path / "long.mp4", seconds=12.0, fps=10, width=96, height=64)
    original = sinks.MapsSink.write

    def failing_write(self, sal, pts):
        if pts > 0.25:
            raise OSError("disk full")
        return original(self, sal, pts)

    monkeypatch.setattr(sinks.MapsSink, "write", failing_write)
    opts = RunOptions(maps=tmp_path / "m.h5", batch=2, queue_size=2)
    box = _run_in_thread(lambda: run(long_clip, [assets["lite"]], opts, log=lambda m: None))
    assert isinstance(box.get("error"), OSError)
    with h5py.File(tmp_path / "m.h5") as fh:
        assert fh["maps"].shape[0] == 3  # frames 0..2 (pts <= 0.2) were written and flushed


def test_unopenable_microphone_falls_back_to_the_audio_free_path(assets, tmp_path) -> None:
    said: list[str] = []
    res = run(None, [assets["lite"]], RunOptions(maps=tmp_path / "m.h5", max_frames=5),
              camera="lavfi:testsrc2=size=96x64:rate=10", mic="lavfi:nosuchfilter", log=said.append)
    assert res.status == "done" and res.frames_out >= 1
    assert any("microphone" in m and "without audio" in m for m in said)
    assert any("audio-free" in m for m in said)


def test_first_frames_of_a_sounding_clip_are_not_silent() -> None:
    from stanet_rt.audio.ring import AudioRing
    from stanet_rt.pipeline.api import _valid_rms

    ring = AudioRing(capacity=16000)
    tone = (0.1 * np.sin(np.arange(1600) / 5)).astype(np.float32)
    ring.push(tone)  # 0.1 s of audio: frame 0 (pts 0.05) has 0.05 s of real samples, the rest padding
    w = ring.window_ending_at(0.05, pad_future=True)
    assert _valid_rms(w, 0.05, ring) == pytest.approx(0.1 / np.sqrt(2), rel=0.05)
    assert _valid_rms(ring.window_ending_at(0.0, pad_future=True), 0.0, ring) is None  # nothing real yet
    assert _valid_rms(np.zeros(8000, np.float32), 0.05, ring) == 0.0


def test_overlay_blends_heat_by_saliency() -> None:
    from stanet_rt.pipeline.sinks import COLORMAP, overlay

    image = np.full((40, 60, 3), 100, np.uint8)
    sal = np.zeros((4, 6), np.float32)
    sal[0, 0] = 1.0
    out = overlay(image, sal, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[20:, 20:], image[20:, 20:])  # zero saliency leaves the frame alone
    expected = (0.5 * 100 + 0.5 * COLORMAP[255].astype(float))
    np.testing.assert_allclose(out[:10, :10].reshape(-1, 3), np.broadcast_to(expected, (100, 3)), atol=1)
    assert np.array_equal(overlay(image, np.full((4, 6), np.nan, np.float32)), image)  # NaN maps: no heat
