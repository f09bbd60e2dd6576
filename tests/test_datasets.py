"""Stage datasets: shapes, frame addressing and edge clamping, aligned crops, graph partners, switch
balancing, student pseudo-GT, the media cache, and a batch through real models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import wavfile
from stanet_rt.training.data.datasets import (
    ClipDataset,
    FrameDataset,
    GraphDataset,
    StudentDataset,
    SwitchDataset,
    clamp_frames,
)
from stanet_rt.training.data.frames import MediaStore
from stanet_rt.training.data.pseudo_gt import write_pseudo_gt
from stanet_rt.training.data.records import VideoRecord
from stanet_rt.training.data.transforms import Augment

from stanet_rt.config import get_config

SIZE = 64  # the tiny configs' input size
FPS = 8
VIDEOS = (("a", 0, 12), ("b", 0, 10), ("c", 1, 6))  # id, class, frames
STEP = 8  # frame i of every video is a flat image of grey level STEP * i + 4 (red) over a fixed texture


def _texture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(SIZE, SIZE), dtype=np.uint8)


def _make_video(root: Path, vid: str, n: int, seed: int) -> tuple[Path, Path]:
    folder = root / "frames" / vid
    folder.mkdir(parents=True)
    texture = _texture(seed)
    for i in range(n):  # unpadded names: lexicographic order would put img_10 before img_2
        img = np.stack([np.full((SIZE, SIZE), STEP * i + 4, np.uint8), texture, texture], axis=-1)
        Image.fromarray(img).save(folder / f"img_{i + 1}.png")
    wav = root / "audio" / f"{vid}.wav"
    wav.parent.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    samples = (0.3 * rng.standard_normal(int(n / FPS * 16000))).clip(-1, 1)
    wavfile.write(wav, 16000, (samples * 32767).astype(np.int16))
    return folder, wav


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[VideoRecord]:
    root = tmp_path_factory.mktemp("media")
    out = []
    for k, (vid, klass, n) in enumerate(VIDEOS):
        folder, wav = _make_video(root, vid, n, k)
        events = np.arange(n) < 3  # the first 3 frames are the event
        out.append(VideoRecord(vid, folder, klass, f"class{klass}", n, FPS, events, audio_path=wav))
    return out


@pytest.fixture(scope="module")
def store(records: list[VideoRecord], tmp_path_factory: pytest.TempPathFactory) -> MediaStore:
    return MediaStore(records, SIZE, tmp_path_factory.mktemp("cache"))


def _frame_ids(frames: torch.Tensor, config) -> list[int]:
    """Recover each frame's index from its red level (no augmentation)."""
    red = frames[:, 0].mean(dim=(-2, -1)) * config.std[0] + config.mean[0]
    return [round((float(r) * 255 - 4) / STEP) for r in red]


def test_frame_dataset_shapes_and_labels(records, store) -> None:
    cfg = get_config("tiny_sa")
    ds = FrameDataset(records, cfg, store=store)
    assert len(ds) == sum(n for _, _, n in VIDEOS)
    s = ds[13]  # video b, frame 1
    assert s["frames"].shape == (1, 3, SIZE, SIZE) and s["frames"].dtype == torch.float32
    assert s["spectrograms"].shape == (1, 1, 257, 48)
    assert (int(s["video_index"]), int(s["frame_index"])) == (1, 1)
    assert _frame_ids(s["frames"], cfg) == [1]
    torch.testing.assert_close(s["label"], torch.tensor([1.0, 0, 0, 0]))
    assert float(s["event"]) == 1.0
    events_only = FrameDataset(records, cfg, store=store, only_events=True)
    assert len(events_only) == 3 * len(VIDEOS)
    assert all(float(events_only[i]["event"]) == 1.0 for i in range(len(events_only)))
    no_audio = FrameDataset(records, get_config("tiny_s"), store=store)
    assert "spectrograms" not in no_audio[0]


def test_clip_dataset_offsets_and_edge_clamping(records, store) -> None:
    cfg = get_config("tiny_st_plus")  # offsets -4..4
    ds = ClipDataset(records, cfg, store=store)
    first = ds[0]
    assert first["frames"].shape == (9, 3, SIZE, SIZE)
    assert first["frame_indices"].tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4]
    assert _frame_ids(first["frames"], cfg) == [0, 0, 0, 0, 0, 1, 2, 3, 4]
    last = ds[11]  # video a, last frame
    assert last["frame_indices"].tolist() == [7, 8, 9, 10, 11, 11, 11, 11, 11]
    assert _frame_ids(last["frames"], cfg) == [7, 8, 9, 10, 11, 11, 11, 11, 11]
    assert clamp_frames(1, (-1, 0, 1), 2).tolist() == [0, 1, 1]


def test_clip_crops_and_jitter_are_shared_by_all_frames(records, store) -> None:
    cfg = get_config("tiny_sta")
    ds = ClipDataset(
        records,
        cfg,
        offsets=(-1, 0, 1),
        store=store,
        augment=Augment(crop_scale=(0.5, 0.7), brightness=0.0, contrast=0.0, saturation=0.0),
    )
    plain = ClipDataset(records, cfg, offsets=(-1, 0, 1), store=store)
    for index in (4, 15):
        frames = ds[index]["frames"]
        # green / blue carry the same texture in every frame: identical iff the crop is shared
        torch.testing.assert_close(frames[0, 1:], frames[1, 1:])
        torch.testing.assert_close(frames[1, 1:], frames[2, 1:])
        assert not torch.allclose(frames[1, 1:], plain[index]["frames"][1, 1:])  # it did crop
    jitter = ClipDataset(records, cfg, offsets=(0, 0, 0), store=store, augment=True)
    f = jitter[3]["frames"]
    torch.testing.assert_close(f[0], f[1])
    torch.testing.assert_close(f[0], f[2])
    ds.set_epoch(1)
    assert not torch.allclose(
        ds[4]["frames"],
        ClipDataset(records, cfg, offsets=(-1, 0, 1), store=store, augment=ds.augment)[4]["frames"],
    )


def test_graph_short_nodes(records, store) -> None:
    cfg = get_config("tiny_st_plus")
    ds = GraphDataset(records, cfg, mode="short", node_offsets=(-1, 0, 1), store=store)
    s = ds[5]  # video a, t = 5
    assert s["frames"].shape == (9, 3, SIZE, SIZE)
    assert s["frame_indices"].tolist() == [4, 5, 6, 1, 2, 3, 7, 8, 9]
    assert s["node_centres"].tolist() == [5, 2, 8]
    edge = ds[1]["frame_indices"].tolist()  # t = 1: nodes clamped into the video, never crossing its ends
    assert edge == [0, 1, 2, 0, 0, 1, 3, 4, 5]


def test_graph_long_and_cross_partners(records, store) -> None:
    cfg = get_config("tiny_s_plus")
    long_ds = GraphDataset(records, cfg, mode="long", store=store)
    cross = GraphDataset(records, cfg, mode="cross", store=store)
    for index in range(0, len(long_ds), 3):
        v, t = (int(x) for x in long_ds.items[index])
        s = long_ds[index]
        assert s["video_indices"].tolist() == [v, v, v]
        assert int(s["node_centres"][0]) == t and t not in s["node_centres"][1:].tolist()
        c = cross[index]
        partners = c["video_indices"][1:].tolist()
        if records[v].class_index == 0:  # a and b: the partner is the other video of class 0
            assert partners == [1 - v, 1 - v]
        else:  # c is alone in class 1
            assert partners == [v, v]
        for u, f in zip(partners, c["frame_indices"][1:].tolist(), strict=True):
            assert 0 <= f < records[u].n_frames
        assert torch.equal(
            c["label"], torch.nn.functional.one_hot(torch.tensor(records[v].class_index), 4).float()
        )
    picks = {tuple(long_ds[2]["node_centres"].tolist())}
    for epoch in range(1, 6):
        long_ds.set_epoch(epoch)
        picks.add(tuple(long_ds[2]["node_centres"].tolist()))
    assert len(picks) > 1, "partners are re-drawn every epoch"
    long_ds.set_epoch(3)
    assert long_ds[2]["node_centres"].tolist() == long_ds[2]["node_centres"].tolist()


def test_switch_dataset_balances_negatives(records, store) -> None:
    ds = SwitchDataset(records, get_config("tiny_audio_switch"), store=store)
    targets = [int(ds[i]["target"]) for i in range(len(ds))]
    assert targets.count(1) == targets.count(0) == 3 * len(VIDEOS)
    assert ds[0]["spectrograms"].shape == (1, 1, 257, 48)
    assert "label" not in ds[0]
    many_classes = [
        dataclasses.replace(r, class_index=5) for r in records
    ]  # the switch has 2 outputs, not 2 classes
    assert len(SwitchDataset(many_classes, get_config("tiny_audio_switch"), store=store)) == len(ds)
    negatives = {tuple(x) for x in ds.items[ds.items[:, 1] >= 3].tolist()}
    ds.set_epoch(1)
    assert {tuple(x) for x in ds.items[ds.items[:, 1] >= 3].tolist()} != negatives


def test_student_dataset_pseudo_gt(records, store, tmp_path: Path) -> None:
    cfg = get_config("tiny_sta")
    gt_dir = tmp_path / "pgt"
    for i in range(0, 6):  # video a: frames 0..5 have maps (the texture, so alignment is checkable)
        write_pseudo_gt(gt_dir, "a", i, _texture(0))
    ds = StudentDataset(records, cfg, gt_dir, store=store)
    # t needs maps at t-1, t, t+1 (clamped): t = 0..4 of video a
    assert ds.items.tolist() == [[0, t] for t in range(5)]
    s = ds[0]
    assert s["gt"].shape == (3, 1, SIZE, SIZE) and s["gt_positions"].tolist() == [0, 1, 2]
    only_centre = StudentDataset(records, cfg, gt_dir, gt_offsets=(0,), store=store)
    assert len(only_centre) == 6 and only_centre[5]["gt"].shape == (1, 1, SIZE, SIZE)
    cropped = StudentDataset(
        records,
        cfg,
        gt_dir,
        store=store,
        augment=Augment(crop_scale=(0.5, 0.6), brightness=0, contrast=0, saturation=0, hflip=1),
    )
    s = cropped[2]
    green = s["frames"][1, 1] * cfg.std[1] + cfg.mean[1]  # the texture as the frame shows it
    torch.testing.assert_close(s["gt"][1, 0], green, atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="not among"):
        StudentDataset(records, cfg, gt_dir, gt_offsets=(2,), store=store)


def test_media_store_cache(records, store, monkeypatch) -> None:
    frames, spec = store.frames(0), store.spectrograms(0)
    assert frames.shape == (12, SIZE, SIZE, 3) and spec.shape == (12, 257, 48) and spec.dtype == np.float32
    assert (store.cache_dir / f"a_{SIZE}.npy").is_file() and (store.cache_dir / "a_spec_end.npy").is_file()
    bounded = MediaStore(records, SIZE, None, max_open=1)  # memory only, one video at a time
    np.testing.assert_array_equal(bounded.frames(1)[:, 0, 0], store.frames(1)[:, 0, 0])
    np.testing.assert_array_equal(bounded.frames(2)[:, 0, 0], store.frames(2)[:, 0, 0])
    assert len(bounded._memory) == 1
    import stanet_rt.training.data.frames as frames_module

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(frames_module, "load_frame_folder", refuse)
    again = MediaStore(records, SIZE, store.cache_dir)
    np.testing.assert_array_equal(again.frames(0), frames)
    np.testing.assert_array_equal(again.spectrograms(0), spec)
    windows = store.audio_windows(0)
    assert windows.shape == (12, 8000)
    assert not np.any(windows[0]), "end-aligned: frame 0's window lies before the audio"


def test_batch_through_models(records, store) -> None:
    from torch.utils.data import DataLoader

    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    student_cfg = get_config("tiny_sta")
    batch = next(iter(DataLoader(ClipDataset(records, student_cfg, store=store), batch_size=2)))
    assert batch["frames"].shape == (2, 3, 3, SIZE, SIZE)
    logits = build_model(student_cfg).eval()(batch["frames"], batch["spectrograms"])
    assert logits.shape == (2, 1, SIZE, SIZE)
    teacher_cfg = get_config("tiny_sa_plus")
    batch = next(
        iter(DataLoader(GraphDataset(records, teacher_cfg, mode="cross", store=store), batch_size=2))
    )
    teacher = build_model(teacher_cfg).eval()
    out = teacher(batch["frames"], batch["spectrograms"])
    assert torch.isfinite(teacher.loss(out, batch["label"]))
