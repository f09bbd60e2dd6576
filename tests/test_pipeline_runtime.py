"""The streaming runtime as users hit it (issue 13 runtime items, issue 14.4 / 14.5): live camera with an
overlay, variable-frame-rate files, SIGKILL mid-run, exact frame accounting on live sources, silence
messages, the torch-free ONNX Runtime path, the ``stanet_rt.stream`` generator, the audio ring built
from the model's audio config, and one preprocessing definition for training, runtime and parity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import h5py
import numpy as np
import pytest

from stanet_rt.config import AudioConfig, get_config
from stanet_rt.pipeline.api import RunOptions, Scheduler, open_run, run
from stanet_rt.pipeline.clips import make_clip

LIVE_CAMERA = "lavfi:testsrc2=size=96x64:rate=30"
LIVE_MIC = "lavfi:sine=frequency=440:sample_rate=16000"


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> Path:
    import torch

    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("rt") / "lite.pt", build_model(get_config("tiny_lite")))


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stanet_rt.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _decoded_pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def test_live_camera_with_overlay_writes_a_playable_video_and_honest_stats(lite, tmp_path) -> None:
    """Issue 13.1: ``run --camera lavfi:... --mic lavfi:... -o live.mp4`` crashed in the muxer (rc 1) while
    stats.json said exit code 0. The counts of a --max-frames run add up to the frames asked for."""
    out, stats = tmp_path / "live.mp4", tmp_path / "stats.json"
    res = _cli("run", "--camera", LIVE_CAMERA, "--mic", LIVE_MIC, "-m", str(lite), "-o", str(out),
               "--maps", str(tmp_path / "m.h5"), "--max-frames", "40", "--stats", str(stats))
    assert res.returncode == 0, res.stderr
    s = json.loads(stats.read_text())
    assert s["exit_code"] == 0
    assert s["frames_in"] == 40 and s["frames_in"] == s["frames_out"] + s["dropped"]
    pts = _decoded_pts(out)
    assert len(pts) == s["frames_out"] and all(b > a for a, b in zip(pts, pts[1:], strict=False))
    with h5py.File(tmp_path / "m.h5") as fh:
        assert fh["maps"].shape[0] == s["frames_out"]


def _vfr_clip(path: Path, pts_ms: list[int]) -> Path:
    """An H.264 mp4 with frames at the given times (milliseconds): variable frame rate, as phones write."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 1000)
        vs.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts_ms):
            img = np.full((64, 96, 3), (i * 37) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def test_variable_frame_rate_file_keeps_its_timestamps(lite, tmp_path) -> None:
    """Issue 13.2: a VFR file crashed ``-o``; the overlay now carries the input's own timestamps."""
    times = [0, 33, 50, 120, 121, 200, 260, 261, 400, 433, 500, 700, 701, 733, 800]
    clip = _vfr_clip(tmp_path / "vfr.mp4", times)
    in_pts = _decoded_pts(clip)
    res = run(clip, [lite], RunOptions(overlay=tmp_path / "o.mp4", maps=tmp_path / "m.h5"), log=None)
    assert res.status == "done" and res.frames_out == len(in_pts)
    with av.open(str(clip)) as a, av.open(str(tmp_path / "o.mp4")) as b:
        tin = [float(f.time) for f in a.decode(video=0)]
        tout = [float(f.time) for f in b.decode(video=0)]
    np.testing.assert_allclose(tout, tin, atol=1e-3)
    with h5py.File(tmp_path / "m.h5") as fh:
        np.testing.assert_allclose(fh["pts"][:], tin, atol=1e-3)


def test_sigkill_leaves_a_playable_partial_overlay(lite, tmp_path) -> None:
    """Issue 13.5: the overlay is a fragmented MP4 written in place; killing the process mid-run leaves
    a file that decodes (before: the video sat in a temp file whose moov was never written)."""
    clip = make_clip(tmp_path / "long.mp4", seconds=60.0, fps=10, width=128, height=96)
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "stanet_rt.cli", "run", str(clip), "-m", str(lite), "-o", str(out),
                             "--batch", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not out.exists() or out.stat().st_size < 60_000):
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    pts = _decoded_pts(out)
    assert 10 <= len(pts) < 600 and pts == sorted(pts)


def test_live_source_with_a_slow_consumer_keeps_the_newest_frame_and_counts_every_frame(lite) -> None:
    """A live source never queues more than it can process: with a consumer slower than the camera,
    frames are dropped (counted), latency stays a few frames, and in = out + dropped exactly."""
    sched, src = open_run(None, [lite], RunOptions(max_frames=45), camera=LIVE_CAMERA, mic=LIVE_MIC)
    latencies = []
    with src:
        for frame in sched.frames():
            time.sleep(0.1)  # a consumer at 10 fps on a 30 fps camera
            latencies.append(time.perf_counter() - frame.arrival)
    res = sched.result()
    assert res.frames_in == 45 and res.frames_in == res.frames_out + res.dropped
    assert res.dropped >= 15 and res.stats["dropped_late"] >= 15
    assert max(latencies) < 0.6  # at most a few frames behind (each costs 0.1 s here), never a queue


def test_stopping_a_live_run_counts_frames_in_flight(lite) -> None:
    sched, src = open_run(None, [lite], RunOptions(), camera=LIVE_CAMERA)
    with src:
        for i, _frame in enumerate(sched.frames()):
            if i == 5:
                sched.request_stop()
    res = sched.result()
    assert res.status == "stopped" and res.frames_out >= 6
    assert res.frames_in == res.frames_out + res.dropped


def test_stream_generator_yields_timestamped_maps_and_stops_on_break(lite) -> None:
    import threading

    import stanet_rt

    clip = make_clip(Path(os.environ.get("TMPDIR", "/tmp")) / f"stream_{os.getpid()}.mp4", seconds=2.0, fps=10)
    before = threading.active_count()
    got = []
    for frame in stanet_rt.stream(clip, model=lite):
        got.append(frame)
        if len(got) == 7:
            break
    assert [round(f.timestamp, 3) for f in got] == [round(i / 10, 3) for i in range(7)]
    assert got[0].image.shape == (96, 160, 3) and got[0].image.dtype == np.uint8
    assert got[0].saliency.shape == (64, 64) and 0.0 <= got[0].saliency.min() <= got[0].saliency.max() <= 1.0
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before  # breaking out of the loop shut the stages down
    assert len(list(stanet_rt.stream(clip, model=[lite, lite]))) == 20  # fused: every frame once
    clip.unlink()


def test_import_stanet_rt_stays_cheap_and_exports_stream() -> None:
    code = ("import sys, stanet_rt; heavy = [m for m in ('numpy', 'torch', 'av', 'onnxruntime') if m in sys.modules];"
            "assert not heavy, heavy; f = stanet_rt.stream; assert callable(f) and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_silence_is_reported_only_for_a_real_silent_stretch(lite, tmp_path) -> None:
    """Issue 13: "silent audio" was printed for almost every clip with sound (the zero padding before
    t = 0 counted). Now only a real silent stretch is reported, with how much."""
    sounding = make_clip(tmp_path / "sound.mp4", seconds=2.0, fps=10)
    said: list[str] = []
    run(sounding, [lite], RunOptions(maps=tmp_path / "a.h5"), log=said.append)
    assert not any("silent" in m for m in said), said
    gap = make_clip(tmp_path / "gap.mp4", seconds=4.0, fps=10, silence=(1.0, 3.0))
    said.clear()
    res = run(gap, [lite], RunOptions(maps=tmp_path / "b.h5"), log=said.append)
    lines = [m for m in said if m.startswith("silent audio")]
    assert len(lines) == 1 and "longest stretch" in lines[0]
    assert 1.0 <= res.stats["silent_audio_s"] <= 2.0  # windows (0.5 s) fully inside the 2 s of silence


def test_audio_free_message_names_the_audioswitch_only_when_there_is_one(lite, tmp_path) -> None:
    silent_video = make_clip(tmp_path / "v.mp4", seconds=1.0, fps=10, audio=False)
    said: list[str] = []
    run(silent_video, [lite], RunOptions(maps=tmp_path / "m.h5"), log=said.append)
    line = next(m for m in said if "audio-free" in m)
    assert "AudioSwitch" not in line and "gate closed" in line


class _FakeEngine:
    info = SimpleNamespace(device="cpu")


def test_ring_and_resampler_follow_the_models_audio_config(tmp_path) -> None:
    """The audio ring and the source's resampler are built from the model's audio config (not 16 kHz / 0.5 s)."""
    audio = replace(AudioConfig(), sample_rate=8000, window_seconds=0.25)
    config = replace(get_config("tiny_lite"), audio=audio)
    bundle = SimpleNamespace(config=config, audio=None, encoder=_FakeEngine(), head=None, backend="fake")
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0, fps=10)
    from stanet_rt.pipeline.sources import FileSource

    with FileSource(clip, sample_rate=audio.sample_rate) as src:
        sched = Scheduler(src, [bundle])
        assert sched.ring.sample_rate == 8000 and sched.ring.window == 2000
        pushed = []
        src.read(lambda item: True, lambda samples, start: pushed.append(len(samples)), __import__("threading").Event())
    assert abs(sum(pushed) - 8000) < 800  # one second of audio at 8 kHz


def test_preprocess_is_one_definition_for_training_runtime_and_parity() -> None:
    """The runtime's numpy ``preprocess`` equals training's torch path (no augmentation) and torch's
    antialiased bilinear resize, so the model sees at run time what it saw in training."""
    import torch
    import torch.nn.functional as F
    from stanet_rt.training.data.transforms import AugmentParams, prepare_frames

    from stanet_rt.preprocess import preprocess

    config = get_config("tiny_lite")
    rng = np.random.default_rng(0)
    for shape in ((2, 90, 160, 3), (1, 40, 30, 3), (1, 64, 64, 3)):
        frames = rng.integers(0, 256, shape, dtype=np.uint8)
        ours = preprocess(frames, config)
        training = prepare_frames(frames, AugmentParams(), config.input_size, config.mean, config.std).numpy()
        np.testing.assert_allclose(ours, training, atol=1e-5)
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        ref = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
        mean, std = torch.tensor(config.mean).view(1, 3, 1, 1), torch.tensor(config.std).view(1, 3, 1, 1)
        np.testing.assert_allclose(ours, ((ref - mean) / std).numpy(), atol=1e-5)


def test_export_parity_inputs_use_the_shared_preprocess() -> None:
    import torch
    from stanet_rt.export import parity

    from stanet_rt.models.factory import build_model
    from stanet_rt.preprocess import preprocess

    model = build_model(get_config("tiny_s")).eval()
    spec = SimpleNamespace(part="encoder")
    frames = parity.real_inputs(spec, model, batch=2)[0]
    expected = preprocess(parity.generated_clip_frames(2, model.config.input_size), model.config)
    assert isinstance(frames, torch.Tensor)
    np.testing.assert_array_equal(frames.numpy(), expected)


def test_stats_record_the_exit_code_of_a_crashed_run(lite, tmp_path, monkeypatch) -> None:
    """Issue 13.1: a run that crashed (rc 1) had written ``exit_code: 0`` into its stats."""
    from typer.testing import CliRunner

    from stanet_rt.cli import app
    from stanet_rt.pipeline.model_runner import StreamingStudent

    def exploding_push(self, *args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(StreamingStudent, "push", exploding_push)
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0, fps=10)
    stats = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["run", str(clip), "-m", str(lite), "--maps", str(tmp_path / "m.h5"),
                                   "--stats", str(stats)])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)
    assert json.loads(stats.read_text())["exit_code"] == 1


def test_overlay_on_yuv_planes_matches_the_rgb_blend() -> None:
    """The overlay blends on the yuv420p planes (no RGB round trip); what the viewer sees is the RGB blend."""
    from stanet_rt.pipeline.sinks import overlay, overlay_yuv

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:128]
    image = np.stack([xx * 2, yy * 3, 255 - xx * 2], axis=-1).astype(np.uint8)  # smooth: chroma survives 4:2:0
    yuv = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p").to_ndarray()
    sal = rng.random((9, 16)).astype(np.float32)
    got = av.VideoFrame.from_ndarray(overlay_yuv(yuv, sal), format="yuv420p").to_ndarray(format="rgb24")
    base = av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24")
    want = overlay(base, sal)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 3.0
    assert np.array_equal(overlay_yuv(yuv, np.zeros((9, 16), np.float32)), yuv)  # no saliency: frame untouched


def test_a_bad_microphone_is_one_line_without_native_library_noise(lite) -> None:
    """Issue 13: a bad ``--mic`` printed alsa-lib's own lines on stderr before our message."""
    res = _cli("run", "--camera", "lavfi:testsrc2=size=96x64:rate=10", "--mic", "hw:97", "-m", str(lite),
               "--max-frames", "2")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("warning: microphone 'hw:97': cannot open") and "running without audio" in lines[0]
    assert not any(line.startswith("ALSA") for line in lines)
