"""Readers of the AVE layout and the STAViS test layout, on miniature layouts generated in tmp dirs."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.io import wavfile
from stanet_rt.training.data.ave import read_annotations, read_ave, read_class_index
from stanet_rt.training.data.frames import MediaStore, sorted_frames
from stanet_rt.training.data.records import ClassIndex, event_labels
from stanet_rt.training.data.stavis import read_stavis
from stanet_rt.training.data.synth_io import write_mp4

from stanet_rt.errors import InputError

HEADER = "Category&VideoID&Quality&StartTime&EndTime"


def _video(path: Path, n_frames: int, fps: int, seconds: float) -> None:
    rng = np.random.default_rng(n_frames)
    frames = rng.integers(0, 255, size=(n_frames, 32, 32, 3), dtype=np.uint8)
    audio = (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    write_mp4(path, frames, fps, audio, 16000)


@pytest.fixture(scope="module")
def ave_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("AVE_Dataset")
    (root / "AVE").mkdir()
    _video(root / "AVE" / "vidA.mp4", 30, 10, 3.0)  # 3 s at 10 fps
    _video(root / "AVE" / "vidB.mp4", 12, 4, 3.0)  # 3 s at 4 fps
    _video(root / "AVE" / "vid+C.mp4", 20, 10, 2.0)  # a '+' in the id must not matter
    rows = [
        HEADER,
        "Male speech, man speaking&vidA&good&0&1",
        "Male speech, man speaking&vidA&good&2&3",  # two segments of one video
        "Church bell&vidB&good&1&3",
        "Acoustic guitar&vid+C&bad&0&2",
        "Acoustic guitar&gone&good&0&10",  # listed, but its video is missing
    ]
    (root / "Annotations.txt").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    (root / "trainSet.txt").write_text("\n".join(rows[1:4]) + "\n")  # no header, as the split files may be
    (root / "valSet.txt").write_text(HEADER + "\n" + rows[4] + "\n")
    (root / "testSet.txt").write_text(HEADER + "\n" + rows[5] + "\n")
    return root


def test_annotations_parse(ave_root: Path) -> None:
    rows = read_annotations(ave_root / "Annotations.txt")
    assert [r.video_id for r in rows] == ["vidA", "vidA", "vidB", "vid+C", "gone"]
    assert rows[0].category == "Male speech, man speaking" and (rows[1].start, rows[1].end) == (2.0, 3.0)
    classes = read_class_index(ave_root)
    assert classes.names == ("Acoustic guitar", "Church bell", "Male speech, man speaking")


def test_read_ave_split(ave_root: Path) -> None:
    train = read_ave(ave_root, "train")
    assert [r.video_id for r in train] == ["vidA", "vidB"]
    a, b = train
    assert (a.class_index, b.class_index) == (2, 1)  # sorted over all categories of Annotations.txt
    assert (a.n_frames, a.fps, b.n_frames, b.fps) == (30, 10.0, 12, 4.0)
    assert a.segments == ((0.0, 1.0), (2.0, 3.0))
    np.testing.assert_array_equal(a.events, np.r_[np.ones(10), np.zeros(10), np.ones(10)].astype(bool))
    np.testing.assert_array_equal(b.events, np.r_[np.zeros(4), np.ones(8)].astype(bool))  # at its own 4 fps
    (c,) = read_ave(ave_root, "val")
    assert c.video_id == "vid+C" and c.path.name == "vid+C.mp4" and c.events.all()


def test_read_ave_errors(ave_root: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gone"):
        read_ave(ave_root, "test")
    with pytest.raises(InputError, match="split must be"):
        read_ave(ave_root, "holdout")
    bad = tmp_path / "bad.txt"
    bad.write_text(HEADER + "\nChurch bell&x&good&3\n")
    with pytest.raises(InputError, match=r"bad.txt:2"):
        read_annotations(bad)
    bad.write_text("Church bell&x&good&4&2\n")
    with pytest.raises(InputError, match="start < end"):
        read_annotations(bad)


def test_read_ave_probe_cache(ave_root: Path, tmp_path: Path, monkeypatch) -> None:
    first = read_ave(ave_root, "train", cache_dir=tmp_path)
    assert (tmp_path / "ave_probe.json").is_file()
    import stanet_rt.audio.io as io_module

    def refuse(path):
        raise AssertionError(f"probed {path} although cached")

    monkeypatch.setattr(io_module, "read_video_info", refuse)
    again = read_ave(ave_root, "train", cache_dir=tmp_path)
    assert [(r.n_frames, r.fps) for r in again] == [(r.n_frames, r.fps) for r in first]


def test_ave_media_store_decodes_at_the_videos_fps(ave_root: Path, tmp_path: Path) -> None:
    records = read_ave(ave_root, "train")
    store = MediaStore(records, 24, tmp_path, alignment="start")
    frames, spec = store.frames(1), store.spectrograms(1)
    assert frames.shape == (12, 24, 24, 3) and spec.shape == (12, 257, 48)
    assert (tmp_path / "vidB_spec_start.npy").is_file()


def test_event_labels_and_class_index() -> None:
    np.testing.assert_array_equal(event_labels([(1, 2)], 6, 2.0), [False, False, True, True, False, False])
    np.testing.assert_array_equal(event_labels([(0, 1)], 4, 29.97)[:2], [True, True])
    index = ClassIndex.from_names(["b", "a", "b"])
    assert index.names == ("a", "b") and index.index("b") == 1
    np.testing.assert_array_equal(index.one_hot(1), [0.0, 1.0])
    with pytest.raises(KeyError, match="known"):
        index.index("c")


# -- STAViS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stavis_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("stavis")
    db = "DEMO"
    for name, n in (("v1", 12), ("v2", 8)):
        folder = root / "video_frames" / db / name
        folder.mkdir(parents=True)
        for i in range(1, n + 1):
            Image.fromarray(np.full((20, 30, 3), 10 * i, np.uint8)).save(folder / f"img_{i:05d}.jpg")
    wav = root / "video_audio" / db / "v1" / "v1.wav"
    wav.parent.mkdir(parents=True)
    wavfile.write(wav, 16000, (3000 * np.sin(np.arange(8000) / 5)).astype(np.int16))  # 0.5 s for 12 frames
    feats = root / "audio_feature" / db / "v2"
    feats.mkdir(parents=True)
    for i in range(1, 9):
        with h5py.File(feats / f"img_{i:05d}_asp.h5", "w") as fh:
            fh["dataset"] = np.full((257, 48), float(i))
    folds = root / "fold_lists"
    folds.mkdir()
    (folds / f"{db}_list_test_1_fps.txt").write_text("v1 12 24\nv2 8 30\n")
    (folds / f"{db}_list_test_2_fps.txt").write_text("v1 13 24\n")
    return root


def test_read_stavis(stavis_root: Path, tmp_path: Path) -> None:
    v1, v2 = read_stavis(stavis_root, "DEMO", 1)
    assert (v1.video_id, v1.n_frames, v1.fps, v1.class_index) == ("v1", 12, 24.0, -1)
    assert v1.audio_path is not None and v1.audio_features is None and v1.events.all()
    assert v2.audio_path is None and v2.audio_features is not None and v2.fps == 30.0
    store = MediaStore([v1, v2], 16, tmp_path)
    frames = store.frames(0)
    assert frames.shape == (12, 16, 16, 3)
    np.testing.assert_allclose(frames[:, 0, 0, 0], 10 * np.arange(1, 13), atol=3)  # frame order
    assert store.spectrograms(0).shape == (12, 257, 48)
    np.testing.assert_array_equal(store.spectrograms(1)[:, 0, 0], np.arange(1, 9))  # the original's files


def test_read_stavis_errors(stavis_root: Path) -> None:
    with pytest.raises(InputError, match="13 frames"):
        read_stavis(stavis_root, "DEMO", 2)
    with pytest.raises(InputError, match="fold list not found"):
        read_stavis(stavis_root, "DEMO", 3)
    with pytest.raises(InputError, match="frame rate"):
        read_stavis(stavis_root, "DEMO", None)
    assert [r.video_id for r in read_stavis(stavis_root, "DEMO", None, fps=25)] == ["v1", "v2"]


def test_frames_sorted_numerically(tmp_path: Path) -> None:
    for name in ("img_10.jpg", "img_2.jpg", "img_1.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in sorted_frames(tmp_path)] == ["img_1.jpg", "img_2.jpg", "img_10.jpg"]
    (tmp_path / "img_002.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="number 2"):
        sorted_frames(tmp_path)
    with pytest.raises(InputError, match="not found"):
        sorted_frames(tmp_path / "missing")
