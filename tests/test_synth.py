"""The synthetic audio-visual event set: files, determinism, decodability, ground-truth semantics,
distractors, and that the AVE / STAViS readers and ``stanet-rt evaluate`` read what it writes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from stanet_rt.training.data.ave import read_annotations, read_ave
from stanet_rt.training.data.frames import decode_video
from stanet_rt.training.data.synth import PRESETS, STAVIS_DB, SynthConfig, assign_splits, generate_synth, make_clip
from stanet_rt.training.data.synth_scene import SceneParams

from stanet_rt.audio.io import read_audio, read_video_info

N_VIDEOS = 6
TINY = PRESETS["tiny"]  # 64 px, 2 s at 8 fps, 4 classes


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synth(tmp_path_factory.mktemp("synth") / "set", N_VIDEOS, seed=7, preset="tiny")


def _ids(n: int = N_VIDEOS) -> list[str]:
    return [f"synth{i:05d}" for i in range(n)]


def test_layout_files_exist(synth_set: Path) -> None:
    for vid in _ids():
        assert (synth_set / "videos" / f"{vid}.mp4").is_file()
        assert (synth_set / "meta" / f"{vid}.json").is_file()
        assert (synth_set / "gt" / f"{vid}.h5").is_file()
    rows = read_annotations(synth_set / "Annotations.txt")
    assert [r.video_id for r in rows] == _ids()
    assert (synth_set / "Annotations.txt").read_text().splitlines()[
        0
    ] == "Category&VideoID&Quality&StartTime&EndTime"
    split_ids = {
        s: [r.video_id for r in read_annotations(synth_set / f"{s}Set.txt")] for s in ("train", "val", "test")
    }
    assert sum(len(v) for v in split_ids.values()) == N_VIDEOS
    assert all(split_ids.values()), "every split gets at least one clip"
    # the test split in the STAViS layout, 1-based frames
    fold = (synth_set / "stavis" / "fold_lists" / f"{STAVIS_DB}_list_test_1_fps.txt").read_text().split("\n")
    assert [line.split()[0] for line in fold if line] == split_ids["test"]
    t = TINY.n_frames
    for vid in split_ids["test"]:
        frames = sorted((synth_set / "stavis" / "video_frames" / STAVIS_DB / vid).glob("img_*.jpg"))
        assert [p.name for p in frames] == [f"img_{i:05d}.jpg" for i in range(1, t + 1)]
        assert (synth_set / "stavis" / "video_audio" / STAVIS_DB / vid / f"{vid}.wav").is_file()
        ann = synth_set / "stavis" / "annotations" / STAVIS_DB / vid
        assert (
            len(list(ann.glob("fixMap_*.mat"))) == t and len(list((ann / "maps").glob("eyeMap_*.jpg"))) == t
        )
    assert not list(synth_set.rglob("*.tmp*")), "no temp files are left behind"


def test_video_decodes_with_frames_and_audio(synth_set: Path) -> None:
    path = synth_set / "videos" / "synth00000.mp4"
    info = read_video_info(path)
    assert info is not None and info.n_frames == TINY.n_frames and info.fps == pytest.approx(TINY.fps)
    assert (info.width, info.height) == (TINY.size, TINY.size)
    audio = read_audio(path)
    assert audio.sample_rate == 16000 and audio.duration == pytest.approx(TINY.seconds, abs=0.1)
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01
    frames = decode_video(path, TINY.size)
    assert frames.shape == (TINY.n_frames, TINY.size, TINY.size, 3) and frames.dtype == np.uint8
    clip = make_clip(TINY, 7, 0)
    assert np.abs(frames.astype(float) - clip.frames).mean() < 6.0, "the mp4 shows the rendered frames"


def test_generation_is_deterministic(synth_set: Path, tmp_path: Path) -> None:
    again = generate_synth(tmp_path / "again", N_VIDEOS, seed=7, preset="tiny")
    for name in ("Annotations.txt", "trainSet.txt", "valSet.txt", "testSet.txt", "synth.json"):
        assert (again / name).read_bytes() == (synth_set / name).read_bytes()
    for vid in _ids():
        assert (again / "meta" / f"{vid}.json").read_bytes() == (
            synth_set / "meta" / f"{vid}.json"
        ).read_bytes()
        with h5py.File(again / "gt" / f"{vid}.h5") as a, h5py.File(synth_set / "gt" / f"{vid}.h5") as b:
            for key in ("density", "fixations"):
                np.testing.assert_array_equal(a[key][()], b[key][()])
        np.testing.assert_array_equal(
            decode_video(again / "videos" / f"{vid}.mp4", 32),
            decode_video(synth_set / "videos" / f"{vid}.mp4", 32),
        )
    other = make_clip(TINY, 8, 0)
    assert not np.array_equal(other.frames, make_clip(TINY, 7, 0).frames), "another seed, another clip"


def test_meta_and_gt_arrays(synth_set: Path) -> None:
    meta = json.loads((synth_set / "meta" / "synth00001.json").read_text())
    t = TINY.n_frames
    assert meta["n_frames"] == t and len(meta["events"]) == t
    assert len(meta["source"]["boxes"]) == t and all(len(b) == 4 for b in meta["source"]["boxes"])
    with h5py.File(synth_set / "gt" / "synth00001.h5") as fh:
        density, fix = fh["density"][()], fh["fixations"][()]
        assert fh.attrs["normalisation"] == "max1"
    assert density.shape == (t, TINY.size, TINY.size) and density.dtype == np.float32
    np.testing.assert_allclose(density.max(axis=(1, 2)), 1.0, rtol=1e-6)
    assert fix.dtype == np.uint8 and set(np.unique(fix)) <= {0, 1}
    assert fix.sum(axis=(1, 2)).min() >= 1 and fix.sum(axis=(1, 2)).max() <= TINY.fixations
    assert density[fix > 0].mean() > 3 * density.mean(), "fixations fall where the density is high"


def _centre_px(box: np.ndarray) -> tuple[int, int]:
    return int(round((box[1] + box[3]) / 2 - 0.5)), int(round((box[0] + box[2]) / 2 - 0.5))


def test_density_peaks_at_the_source_when_it_sounds() -> None:
    config = dataclasses.replace(TINY, scene=SceneParams(distractor_prob=1.0, other_prob=1.0))
    seen_on = seen_off = 0
    for index in range(4):
        clip = make_clip(config, 11, index)
        source_boxes = clip.tracks[0].boxes()
        for i, on in enumerate(clip.events):
            peak = np.unravel_index(np.argmax(clip.density[i]), clip.density[i].shape)
            if on:
                seen_on += 1
                assert np.hypot(*np.subtract(peak, _centre_px(source_boxes[i]))) <= 1.5
            else:  # silent: every visible object carries density
                seen_off += 1
                for track in clip.tracks:
                    y, x = _centre_px(track.boxes()[i])
                    assert clip.density[i, y, x] > 0.3
    assert seen_on and seen_off, "the clips cover sounding and silent frames"


def test_same_class_distractor_is_a_silent_twin() -> None:
    with_twin = dataclasses.replace(TINY, scene=SceneParams(distractor_prob=1.0, other_prob=0.0))
    without = dataclasses.replace(TINY, scene=SceneParams(distractor_prob=0.0))
    for index in range(3):
        clip = make_clip(with_twin, 5, index)
        assert clip.has_same_class_distractor and clip.meta(with_twin)["has_same_class_distractor"]
        source, twin = clip.tracks
        assert twin.role == "same_class" and twin.class_index == source.class_index
        assert not np.allclose(twin.pulse, source.pulse), "the twin does not pulse with the audio"
        colour = np.array(clip.klass.colour, dtype=float)
        for i in (0, len(clip.events) - 1):  # both are drawn in the class colour
            for track in (source, twin):
                y, x = _centre_px(track.boxes()[i])
                pixel = clip.frames[i, y, x].astype(float)
                scale = 0.8 + 0.2 * track.pulse[i]
                assert np.abs(pixel - np.minimum(colour * scale, 255)).max() < 25
        assert not make_clip(without, 5, index).has_same_class_distractor


def test_flags_in_the_generated_set_match_the_distractors(synth_set: Path) -> None:
    for vid in _ids():
        meta = json.loads((synth_set / "meta" / f"{vid}.json").read_text())
        twins = [d for d in meta["distractors"] if d["same_class"]]
        assert meta["has_same_class_distractor"] == bool(twins)
        assert all(d["class_index"] == meta["source"]["class_index"] == meta["class_index"] for d in twins)


def test_source_pulse_follows_its_sound() -> None:
    config = dataclasses.replace(
        TINY, seconds=4, scene=SceneParams(distractor_prob=1.0, other_prob=0.0, async_prob=1.0)
    )
    clip = make_clip(config, 3, 2)
    rate, fps = config.sample_rate, config.fps
    # loudness of the audio around each frame time (40 ms), against the objects' sizes
    loud = np.array(
        [
            np.sqrt(np.mean(clip.audio[max(0, int(i / fps * rate) - 320) : int(i / fps * rate) + 320] ** 2))
            for i in range(config.n_frames)
        ]
    )
    source, twin = clip.tracks
    assert np.corrcoef(loud, source.sides)[0, 1] > 0.8
    assert np.corrcoef(loud, twin.sides)[0, 1] < 0.6


def test_source_location_varies() -> None:
    centres = np.array([make_clip(TINY, 1, i).tracks[0].centres[0] for i in range(12)])
    assert centres.std(axis=0).min() > 0.12 * TINY.size


def test_splits_and_config_validation() -> None:
    assert assign_splits(10, (0.7, 0.15, 0.15)) == ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    assert assign_splits(3, (0.7, 0.15, 0.15)) == ["train", "val", "test"]
    from stanet_rt.errors import InputError

    with pytest.raises(InputError, match="even"):
        SynthConfig(size=63)


def test_ave_reader_reads_the_synthetic_set(synth_set: Path) -> None:
    everything = read_ave(synth_set, split=None)
    assert [r.video_id for r in everything] == _ids()
    by_split = {s: read_ave(synth_set, s) for s in ("train", "val", "test")}
    assert sorted(r.video_id for rs in by_split.values() for r in rs) == _ids()
    for rec in everything:
        meta = json.loads((synth_set / "meta" / f"{rec.video_id}.json").read_text())
        assert rec.class_index == meta["class_index"] and rec.class_name == meta["class_name"]
        assert rec.n_frames == TINY.n_frames and rec.fps == pytest.approx(TINY.fps)
        np.testing.assert_array_equal(rec.events, np.array(meta["events"], dtype=bool))
        assert rec.path == synth_set / "videos" / f"{rec.video_id}.mp4"


def test_stavis_layout_scores_with_evaluate(synth_set: Path, tmp_path: Path) -> None:
    from stanet_rt.training.data.stavis import read_stavis

    from stanet_rt.eval.evaluate import evaluate

    test_ids = [r.video_id for r in read_stavis(synth_set / "stavis", STAVIS_DB, 1)]
    pred = tmp_path / "pred"
    for vid in test_ids:  # the ground-truth maps as predictions: must beat the centre bias by far
        shutil.copytree(synth_set / "stavis" / "annotations" / STAVIS_DB / vid / "maps", pred / vid)
    rows = {
        r["method"]: r
        for r in evaluate(
            pred, synth_set / "stavis", STAVIS_DB, [1], baseline="centre", progress=False
        ).summary()
    }
    assert rows["centre"]["entries"] == len(test_ids)
    assert rows[next(m for m in rows if m != "centre")]["CC"] > 0.9 > rows["centre"]["CC"] + 0.3


def test_cli_synth(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stanet_rt.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app, ["synth", str(out), "--videos", "3", "--preset", "tiny", "--size", "32", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert len(list((out / "videos").glob("*.mp4"))) == 3
    again = runner.invoke(app, ["synth", str(out), "--videos", "3", "--preset", "tiny", "-q"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    unrelated = tmp_path / "mine"
    (unrelated / "videos").mkdir(parents=True)
    refused = runner.invoke(app, ["synth", str(unrelated), "--videos", "1", "--overwrite", "-q"])
    assert refused.exit_code == 2 and (unrelated / "videos").is_dir()


def test_variation_randomises_looks_rates_and_adds_salient_distractors() -> None:
    """Issue 15: the hard configuration varies fps, sample rate, colours, textures and sizes per clip, and
    adds bright saturated silent distractors; a same-class twin still looks exactly like the source."""
    hard = PRESETS["tiny-hard"]
    clips = [make_clip(hard, 3, i) for i in range(12)]
    assert len({c.fps for c in clips}) > 1 and len({c.sample_rate for c in clips}) > 1
    for c in clips:
        assert len(c.frames) == c.fps * hard.seconds and len(c.audio) == c.sample_rate * hard.seconds
    salient = [t for c in clips for t in c.tracks if t.role == "salient"]
    assert salient and all(t.colour is not None and max(t.colour) == 255 and min(t.colour) == 0 for t in salient)
    assert all(t.pulsing and t.class_index == -1 for t in salient)
    # the same clip twice is the same clip; the plain tiny preset is untouched by the variation stream
    again = make_clip(hard, 3, 5)
    np.testing.assert_array_equal(again.frames, clips[5].frames)
    np.testing.assert_array_equal(again.audio, clips[5].audio)
    assert all(t.role != "salient" for i in range(6) for t in make_clip(TINY, 3, i).tracks)
    # colours are jittered per clip: the source's rendered colour is not always the class colour
    def source_rgb(c):
        box = c.tracks[0].boxes()[0].round().astype(int)
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        return c.frames[0, cy, cx].astype(int)

    offsets = [np.abs(source_rgb(c) - np.array(c.klass.colour) * (0.8 + 0.2 * c.tracks[0].pulse[0])).max()
               for c in clips]
    assert max(offsets) > 20


def test_twin_keeps_the_sources_look_under_variation() -> None:
    hard = dataclasses.replace(
        PRESETS["tiny-hard"], scene=dataclasses.replace(PRESETS["tiny-hard"].scene, distractor_prob=1.0, salient=0),
        noise=0.0, clutter=0)
    clip = make_clip(hard, 1, 0)
    src, twin = clip.tracks[0], next(t for t in clip.tracks if t.role == "same_class")

    def mean_rgb(track, t):  # the mean colour inside the inner half of the object's box
        x0, y0, x1, y1 = track.boxes()[t]
        qx, qy = (x1 - x0) / 4, (y1 - y0) / 4
        return clip.frames[t, int(y0 + qy):int(y1 - qy), int(x0 + qx):int(x1 - qx)].reshape(-1, 3).mean(0)

    t = int(np.argmin(np.abs(src.pulse - twin.pulse)))  # a frame where both pulse alike
    assert np.abs(mean_rgb(src, t) - mean_rgb(twin, t)).max() < 25
    assert meta_roles(clip) >= {"source", "same_class"}


def meta_roles(clip) -> set[str]:
    meta = clip.meta(PRESETS["tiny-hard"])
    return {meta["source"]["role"], *(d["role"] for d in meta["distractors"])}
