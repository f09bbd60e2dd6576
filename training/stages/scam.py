"""Stages 1-2: SCAM teachers S, SA, ST, coarse then fine (spec 3 and 5.1-5.4).

* ``scam-coarse``: train S / SA / ST on whole frames (SA on event frames only, as the original kept
  only frames of its "switch" folder), export their CAMs + class probabilities for every frame of every
  split (``cams/coarse_<branch>.h5``).
* ``scam-fine``: fuse the coarse CAMs per frame by confidence (``Coarse_Fine_crop.m``), box the pixels
  above 2 x mean (``cams/boxes.h5``), train S / SA / ST again on the crops, export their CAMs pasted
  back into the full frame (``cams/fine_<branch>.h5``, ``RecoverCAM.m`` without its skipped classes).
  A frame whose crop box is missing (no coarse CAM, or a uniform map) is not trained on and gets no
  fine CAM; as a temporal neighbour of ST it is seen whole.

Imports torch, numpy and ``training.{data,cams,pseudo_gt,stages.common}``, ``stanet_rt.models``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from stanet_rt.training.cams import CamFile, read_boxes, write_boxes, write_cams
from stanet_rt.training.data.datasets import ClipDataset, FrameDataset, StageDataset
from stanet_rt.training.data.frames import MediaStore
from stanet_rt.training.data.records import VideoRecord
from stanet_rt.training.ddp import barrier
from stanet_rt.training.engine import CHECKPOINT
from stanet_rt.training.init import warm_start
from stanet_rt.training.presets import Trainer
from stanet_rt.training.pseudo_gt import Box, box_from_map, confidence_fusion, crop, resize_bilinear
from stanet_rt.training.stages.common import (
    StageContext,
    accuracy_validator,
    export_cams,
    fit,
    new_model,
    summary_of,
    teacher_step,
)

from stanet_rt.config import ModelConfig


def scam_dataset(
    records: Sequence[VideoRecord],
    config: ModelConfig,
    store: MediaStore | CropStore,
    trainer: Trainer,
    train: bool,
    stride: int = 1,
) -> StageDataset:
    """S / SA: one frame (SA: event frames only when training); ST: frames t-1, t, t+1."""
    kw = dict(
        store=store, augment=trainer.augment if train else None, seed=trainer.settings.seed, stride=stride
    )
    if config.arch == "st":
        return ClipDataset(records, config, offsets=(-1, 0, 1), **kw)
    return FrameDataset(records, config, only_events=train and config.arch == "sa", **kw)


class CropStore:
    """A :class:`MediaStore` look-alike whose frames are each frame's crop box, resized to ``size``
    (uint8, (T, size, size, 3)); frames without a box are whole. Spectrograms are the base store's."""

    def __init__(
        self,
        base: MediaStore,
        boxes: dict[str, tuple[np.ndarray, np.ndarray]],
        size: int,
        memory_videos: int = 64,
    ) -> None:
        self.base = base
        self.records = base.records
        self.size = int(size)
        self.boxes = boxes
        self.memory_videos = memory_videos
        self._memory: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.records)

    def valid(self, v: int) -> np.ndarray:
        return self.boxes[self.records[v].video_id][1]

    def frames(self, v: int) -> np.ndarray:
        if v in self._memory:
            self._memory.move_to_end(v)
            return self._memory[v]
        frames = self.base.frames(v)
        boxes, valid = self.boxes[self.records[v].video_id]
        out = np.empty((len(frames), self.size, self.size, 3), np.uint8)
        for t, frame in enumerate(frames):
            part = crop(frame, Box.from_array(boxes[t])) if valid[t] else frame
            out[t] = np.clip(np.round(resize_bilinear(part, (self.size, self.size))), 0, 255).astype(np.uint8)
        self._memory[v] = out
        while len(self._memory) > self.memory_videos:
            self._memory.popitem(last=False)
        return out

    def spectrograms(self, v: int) -> np.ndarray:
        return self.base.spectrograms(v)


def _train_and_export(
    ctx: StageContext,
    stage: str,
    kind: str,
    branch: str,
    trainer: Trainer,
    stores: dict[str, MediaStore | CropStore],
    boxes=None,
) -> None:
    path = ctx.cams_path(kind, branch)
    if ctx.resume and path.is_file():
        ctx.log(f"{stage}/{branch}: done ({path.name} exists)")
        return
    config = ctx.model_config(trainer)
    train_ds = scam_dataset(ctx.records("train"), config, stores["train"], trainer, True, trainer.stride)
    if boxes is not None:  # fine: train on frames that have a crop
        keep = np.array([stores["train"].valid(v)[t] for v, t in train_ds.items], dtype=bool)
        train_ds.items = train_ds.items[keep]
    model = new_model(ctx, config, train_ds, trainer.settings.seed)
    coarse = ctx.run_dir("scam-coarse", branch) / CHECKPOINT
    if boxes is not None and ctx.preset.fine_from_coarse and coarse.is_file():
        copied = warm_start(model, coarse, prefixes=("",))
        ctx.log(f"{stage}/{branch}: starts from {coarse} ({len(copied)} tensors)")
    val = None
    if ctx.preset.val_stride and ctx.records("val") and (boxes is None or "val" in stores):
        val_store = stores["val"] if "val" in stores else ctx.store("val")  # fine: val crops need val boxes
        val = scam_dataset(ctx.records("val"), config, val_store, trainer, False, ctx.preset.val_stride)
    fit(
        ctx,
        stage,
        branch,
        model,
        train_ds,
        teacher_step,
        trainer,
        accuracy_validator(val, ctx.preset.export_batch),
    )
    if ctx.info.is_main:
        cams = {}
        for split, store in stores.items():
            ds = scam_dataset(ctx.records(split), config, store, trainer, False)
            cams.update(
                export_cams(
                    model,
                    ds,
                    ctx.records(split),
                    ctx.preset.frame_size,
                    ctx.preset.export_batch,
                    boxes=boxes,
                    progress=ctx.progress,
                    desc=f"{stage}/{branch} CAMs {split}",
                )
            )
        write_cams(path, cams, {"branch": branch, "stage": stage, "canvas": ctx.preset.frame_size})
        s = summary_of(cams)
        ctx.log(
            f"{stage}/{branch}: CAMs for {s['with_cam']:.0%} of {s['frames']} frames "
            f"(mean probability {s['mean_prob']:.3f}) -> {path}"
        )
    barrier(ctx.info)


def run_coarse(ctx: StageContext) -> None:
    """Stage ``scam-coarse``: train S / SA / ST on whole frames and export their CAMs."""
    stores = {split: ctx.store(split) for split in ctx.export_splits()}
    for branch, trainer in ctx.preset.coarse.items():
        _train_and_export(ctx, "scam-coarse", "coarse", branch, trainer, stores)


def compute_boxes(ctx: StageContext) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Crop box of every frame from the confidence-weighted fusion of the coarse CAMs (> 2 x mean)."""
    files = {b: CamFile(ctx.cams_path("coarse", b)) for b in ctx.preset.coarse}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        for split in ctx.export_splits():
            for rec in ctx.records(split):
                maps = [f.video(rec.video_id) for f in files.values()]
                boxes = np.zeros((rec.n_frames, 4), np.int32)
                valid = np.zeros(rec.n_frames, bool)
                for t in range(rec.n_frames):
                    fused = confidence_fusion([m.get(t) for m in maps], [float(m.probs[t]) for m in maps])
                    box = box_from_map(fused, ctx.preset.box_factor) if fused is not None else None
                    if box is not None:
                        boxes[t], valid[t] = box.as_array(), True
                out[rec.video_id] = (boxes, valid)
    finally:
        for f in files.values():
            f.close()
    return out


def run_fine(ctx: StageContext) -> None:
    """Stage ``scam-fine``: boxes from the coarse fusion, S / SA / ST on the crops, recovered CAMs."""
    if ctx.info.is_main and not (ctx.resume and ctx.boxes_path.is_file()):
        boxes = compute_boxes(ctx)
        write_boxes(ctx.boxes_path, boxes)
        share = np.mean(np.concatenate([v for _, v in boxes.values()]))
        ctx.log(f"scam-fine: crop boxes for {share:.0%} of the frames -> {ctx.boxes_path}")
    barrier(ctx.info)
    boxes = read_boxes(ctx.boxes_path)
    stores = {
        split: CropStore(ctx.store(split), boxes, ctx.preset.frame_size) for split in ctx.export_splits()
    }
    for branch, trainer in ctx.preset.fine.items():
        _train_and_export(ctx, "scam-fine", "fine", branch, trainer, stores, boxes=boxes)
