"""Decoding media with PyAV, per-frame features, the h5 / stanet files, and the audio-features CLI."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from _audio_media import tone, write_video, write_wav
from typer.testing import CliRunner

from stanet_rt.audio.features import (
    ReferenceCheck,
    compute_features,
    extract_file,
    extract_folder,
    plan_features,
    save_features,
    write_features,
)
from stanet_rt.audio.io import read_audio, read_video_info
from stanet_rt.cli import app
from stanet_rt.errors import InputError


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    stereo = np.stack([tone(1.2, 44100, 440, 0.5), tone(1.2, 44100, 880, 0.3)])
    return {
        "mp4": write_video(d / "clip.mp4", n_frames=30, fps=25, audio=stereo),
        "mkv": write_video(
            d / "clip30.mkv",
            n_frames=12,
            fps=30,
            audio=stereo[:1],
            audio_rate=48000,
            vcodec="mpeg4",
            acodec="libopus",
        ),
        "silent_video": write_video(d / "noaudio.mp4", n_frames=5, fps=25, audio=None),
        "short_audio": write_video(d / "short.mp4", n_frames=50, fps=25, audio=stereo[:, :22050]),
        # left = 0.5 sine, right = silence: the channel mean has amplitude 0.25
        "wav": write_wav(d / "speech.wav", np.stack([tone(2.0, 22050, 300, 0.5), np.zeros(44100)]), 22050),
        "tiny_wav": write_wav(d / "tiny.wav", tone(0.1, 16000)[None], 16000),
    }


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is not a video" * 100)
    return path


# --- io ------------------------------------------------------------------------------------------------


def test_read_audio_resamples_and_averages_channels(media: dict[str, Path]) -> None:
    track = read_audio(media["wav"])
    assert track.sample_rate == 16000 and track.samples.dtype == np.float32
    assert track.duration == pytest.approx(2.0, abs=2e-3)
    # the original averages the channels (FFmpeg's own mono down-mix would give 0.5 / sqrt(2))
    assert np.abs(track.samples[1000:-1000]).max() == pytest.approx(0.25, abs=0.01)
    aac = read_audio(media["mp4"])
    assert aac.duration == pytest.approx(1.2, abs=0.05)


def test_read_video_info(media: dict[str, Path]) -> None:
    info = read_video_info(media["mp4"])
    assert info is not None and info.n_frames == 30 and info.fps == 25.0
    np.testing.assert_allclose(info.timestamps, np.arange(30) / 25, atol=1e-6)
    mkv = read_video_info(media["mkv"])
    assert mkv is not None and mkv.n_frames == 12 and mkv.fps == pytest.approx(30)
    assert read_video_info(media["wav"]) is None


@pytest.mark.parametrize(
    ("key", "message"),
    [("silent_video", "no audio track"), ("missing", "no such file"), ("garbage", "cannot read")],
)
def test_read_audio_errors_name_the_file(
    media: dict[str, Path], tmp_path: Path, key: str, message: str
) -> None:
    path = {"missing": tmp_path / "nope.mp4", "garbage": _garbage(tmp_path)}.get(key) or media[key]
    with pytest.raises(InputError, match=message) as err:
        read_audio(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --- features ------------------------------------------------------------------------------------------


def test_video_gives_one_window_per_frame(media: dict[str, Path]) -> None:
    check = ReferenceCheck()
    fs = compute_features(media["mp4"], check=check)
    assert fs.features.shape == (30, 257, 48) and fs.features.dtype == np.float32
    assert fs.fps == 25.0 and fs.alignment == "start"
    assert check.n_windows == 30 and check.max_abs_error < 1e-4
    ranges = fs.plan.ranges
    assert ranges[0, 0] == 0 and ranges[-1, 1] <= len(fs.plan.waveform)
    # each frame's features are the spectrogram of exactly its own window
    np.testing.assert_allclose(
        fs.features[7], compute_features(media["mp4"], n_frames=30, batch_size=4).features[7], atol=1e-5
    )


def test_end_alignment_uses_the_half_second_before_each_frame(media: dict[str, Path]) -> None:
    fs = compute_features(media["mp4"], alignment="end")
    np.testing.assert_array_equal(fs.plan.ranges[:, 1], np.round(np.arange(30) / 25 * 16000))
    assert not fs.features[0].any()  # frame 0: only padding before the stream -> zeros
    assert fs.features[20].std() == pytest.approx(1, abs=1e-3)


def test_audio_only_file_needs_fps(media: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="--fps") as err:
        plan_features(media["wav"])
    assert "speech.wav" in str(err.value)
    fs = compute_features(media["wav"], fps=10)
    assert fs.n_frames == 20  # floor(2.0 s * 10 fps)
    np.testing.assert_allclose(fs.timestamps, np.arange(20) / 10)
    assert compute_features(media["wav"], fps=10, n_frames=5).n_frames == 5


def test_audio_shorter_than_half_a_second_is_zero_padded(media: dict[str, Path]) -> None:
    fs = compute_features(media["tiny_wav"], fps=25)  # 0.1 s: 2 frames, both [0, 8000)
    assert fs.n_frames == 2
    np.testing.assert_array_equal(fs.plan.ranges, [[0, 8000], [0, 8000]])
    assert np.isfinite(fs.features).all()


def test_h5_layout(media: dict[str, Path], tmp_path: Path) -> None:
    fs = compute_features(media["mp4"])
    out = save_features(fs, tmp_path / "clip.h5", "h5")
    with h5py.File(out) as f:
        assert f["features"].shape == (30, 257, 48) and f["features"].dtype == np.float32
        np.testing.assert_array_equal(f["features"][:], fs.features)
        assert f.attrs["alignment"] == "start" and f.attrs["source"] == "clip.mp4"
        assert f.attrs["fps"] == 25.0 and f.attrs["sample_rate"] == 16000 and f.attrs["n_frames"] == 30
        assert f["timestamps"].shape == (30,) and f["sample_ranges"].shape == (30, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.h5"]  # no temp files left


def test_stanet_layout(media: dict[str, Path], tmp_path: Path) -> None:
    result = extract_file(media["mp4"], tmp_path / "clip", layout="stanet")
    names = sorted(p.name for p in result.output.iterdir())
    assert names == [f"{i:04d}_asp.h5" for i in range(30)]
    reference = compute_features(media["mp4"]).features
    for i in (0, 29):
        with h5py.File(result.output / f"{i:04d}_asp.h5") as f:
            assert list(f.keys()) == ["dataset"] and f["dataset"].shape == (257, 48)
            np.testing.assert_allclose(f["dataset"][:], reference[i], atol=1e-6)
    # re-running replaces the folder as a whole
    extract_file(media["mp4"], tmp_path / "clip", layout="stanet", n_frames=3)
    assert len(list((tmp_path / "clip").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


@pytest.mark.parametrize(
    ("key", "kwargs", "message"),
    [
        ("silent_video", {}, "no audio track"),
        ("short_audio", {}, "audio too short"),
        ("wav", {}, "audio-only file"),
        ("garbage", {}, "cannot read"),
        ("missing", {}, "no such file"),
    ],
)
@pytest.mark.parametrize("layout", ["h5", "stanet"])
def test_bad_input_leaves_no_output(
    media: dict[str, Path], tmp_path: Path, key: str, kwargs: dict, message: str, layout: str
) -> None:
    src = {"missing": tmp_path / "nope.mp4", "garbage": _garbage(tmp_path)}.get(key) or media[key]
    out_dir = tmp_path / "out"
    with pytest.raises(InputError, match=message):
        extract_file(src, out_dir / ("x.h5" if layout == "h5" else "x"), layout=layout, **kwargs)
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize("layout", ["h5", "stanet"])
def test_failure_while_writing_keeps_the_previous_output(
    media: dict[str, Path], tmp_path: Path, layout
) -> None:
    plan = plan_features(media["mp4"])
    out = tmp_path / ("clip.h5" if layout == "h5" else "clip")
    write_features(plan, plan.iter_features(), out, layout)
    before = sorted(p.name for p in tmp_path.rglob("*"))

    def failing():
        yield next(plan.iter_features(batch_size=8))
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_features(plan, failing(), out, layout)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_folder_mirrors_subfolders_and_skips_bad_files(media: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "videos"
    (src / "class_a").mkdir(parents=True)
    (src / "class_a" / "v1.mp4").write_bytes(media["mp4"].read_bytes())
    (src / "v2.mkv").write_bytes(media["mkv"].read_bytes())
    (src / "noaudio.mp4").write_bytes(media["silent_video"].read_bytes())
    (src / "notes.txt").write_text("not media")
    seen = []
    results, failures = extract_folder(src, tmp_path / "feats", on_done=lambda p, o: seen.append(p.name))
    assert sorted(seen) == ["noaudio.mp4", "v1.mp4", "v2.mkv"]
    assert {r.output.relative_to(tmp_path / "feats").as_posix() for r in results} == {
        "class_a/v1.h5",
        "v2.h5",
    }
    assert [p.name for p, _ in failures] == ["noaudio.mp4"]
    assert not (tmp_path / "feats" / "noaudio.h5").exists()


# --- CLI -----------------------------------------------------------------------------------------------


def test_cli_writes_features_and_checks(media: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["audio-features", str(media["mp4"]), "-o", str(tmp_path), "--check"])
    assert res.exit_code == 0, res.output
    assert "30 frames" in res.output and "check: max" in res.output
    with h5py.File(tmp_path / "clip.h5") as f:
        assert f["features"].shape == (30, 257, 48)
    res = runner.invoke(
        app,
        [
            "audio-features",
            str(media["wav"]),
            "-o",
            str(tmp_path / "s"),
            "--fps",
            "5",
            "--layout",
            "stanet",
            "--alignment",
            "end",
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "s").iterdir())) == 10


@pytest.mark.parametrize(
    ("key", "extra", "message"),
    [
        ("wav", [], "audio-only file"),
        ("silent_video", [], "no audio track"),
        ("short_audio", [], "too short"),
    ],
)
def test_cli_errors_are_one_line(
    media: dict[str, Path], tmp_path: Path, key: str, extra, message: str
) -> None:
    res = CliRunner().invoke(app, ["audio-features", str(media[key]), "-o", str(tmp_path / "o.h5"), *extra])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "o.h5").exists()
