"""What every stage shares: the run context (data, output folders, preset, DDP rank), teacher training
and evaluation steps, and the CAM export of a trained teacher.

Output layout under ``--out`` (one folder per run):

    cache/                      decoded frames / spectrograms (training.data.frames.MediaStore)
    scam-coarse/<s|sa|st>/      checkpoint.pt, log.jsonl, log.csv (training.engine)
    scam-fine/<s|sa|st>/        the same, trained on the crops
    scam-plus/<branch>/         e.g. sa_plus_long/
    switch/audio_switch/        AudioSwitch
    students/<sta|sta_plus>/    the students; students/<name>.pt: the slim model file (no optimiser)
    cams/                       coarse_*.h5, boxes.h5, fine_*.h5, plus_*.h5 (training.cams)
    pseudo_gt/                  <video_id>/<frame:05d>.png + probabilities.csv + complete.json
    report/                     the evaluation (training.report)

Imports torch, ``stanet_rt.{config,models,errors}`` and ``training.{data,engine,ddp,cams,losses,presets,
pseudo_gt}``; must not import the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stanet_rt.training.cams import to_uint8
from stanet_rt.training.data.frames import MediaStore
from stanet_rt.training.data.records import ClassIndex, VideoRecord
from stanet_rt.training.ddp import DistInfo, barrier, unwrap
from stanet_rt.training.engine import StepOutput, TrainResult, ValidateFn, is_complete, to_device, train
from stanet_rt.training.losses import teacher_loss
from stanet_rt.training.presets import Preset, Trainer
from stanet_rt.training.pseudo_gt import Box, BranchMaps, recover
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from stanet_rt.config import AUDIO, ModelConfig
from stanet_rt.errors import InputError
from stanet_rt.progress import track

SPLITS = ("train", "val", "test")


@dataclass
class StageContext:
    """One training run: the ``preset``, the data root (AVE layout, synthetic or real), the output
    folder, ``resume`` (continue / skip finished trainers), the DDP position and a log function.
    Only rank 0 writes exports; every rank trains."""

    preset: Preset
    data: Path
    out: Path
    resume: bool = False
    progress: bool = True
    info: DistInfo = field(default_factory=DistInfo)
    log_fn: Callable[[str], None] = print

    def log(self, message: str) -> None:
        if self.info.is_main:
            self.log_fn(message)

    # -- data --------------------------------------------------------------------------------------
    @cached_property
    def classes(self) -> ClassIndex:
        from stanet_rt.training.data.ave import read_class_index

        return read_class_index(self.data)

    @cached_property
    def _records(self) -> dict[str, list[VideoRecord]]:
        return {}

    def records(self, split: str) -> list[VideoRecord]:
        """The videos of ``split`` (train / val / test), read once."""
        if split not in self._records:
            from stanet_rt.training.data.ave import read_ave

            recs = read_ave(self.data, split, classes=self.classes, cache_dir=self.out / "cache")
            if not recs and split == "train":
                raise InputError(f"{self.data}: the train split has no videos")
            self._records[split] = recs
        return self._records[split]

    @cached_property
    def _stores(self) -> dict[str, MediaStore]:
        return {}

    def store(self, split: str) -> MediaStore:
        """The frame / spectrogram store of ``split`` at the preset's frame size (cached on disk by rank 0
        first, so DDP ranks do not decode the same video twice)."""
        if split not in self._stores:
            store = MediaStore(self.records(split), self.preset.frame_size, self.out / "cache", AUDIO)
            if self.info.is_main:
                store.prepare(audio=True, progress=self.progress)
            barrier(self.info)
            self._stores[split] = store
        return self._stores[split]

    def model_config(self, trainer: Trainer) -> ModelConfig:
        """The trainer's config with the data's class count (the AudioSwitch stays 2-way)."""
        if trainer.config.arch == "audio_switch":
            return trainer.config
        return trainer.config.replace(num_classes=len(self.classes))

    # -- paths -------------------------------------------------------------------------------------
    def run_dir(self, stage: str, branch: str) -> Path:
        return self.out / stage / branch

    def cams_path(self, kind: str, branch: str) -> Path:
        return self.out / "cams" / f"{kind}_{branch}.h5"

    @property
    def boxes_path(self) -> Path:
        return self.out / "cams" / "boxes.h5"

    @property
    def pseudo_gt_dir(self) -> Path:
        return self.out / "pseudo_gt"

    def export_splits(self) -> list[str]:
        """Splits whose CAMs / pseudo-GT are exported (the preset's, in the order train, val, test;
        train always); splits without videos are left out."""
        wanted = {"train", *self.preset.export_splits}
        return [s for s in SPLITS if s in wanted and self.records(s)]


# ---------------------------------------------------------------------------------------------------
# teachers: one training step, accuracy, CAM export
# ---------------------------------------------------------------------------------------------------
def sample_frames(dataset: Dataset, n: int = 16) -> Tensor:
    """Frames of ``n`` samples spread over ``dataset`` (no augmentation needed): (N * T, 3, S, S)."""
    picks = torch.linspace(0, len(dataset) - 1, min(n, len(dataset))).round().long().unique().tolist()
    return torch.cat([dataset[i]["frames"] for i in picks])


def new_model(ctx: StageContext, config: ModelConfig, dataset: Dataset, seed: int = 0) -> nn.Module:
    """Build ``config``'s network and give it its starting weights (``training.init.start_weights``)."""
    from stanet_rt.training.init import start_weights

    from stanet_rt.models.factory import build_model

    torch.manual_seed(seed)
    model = build_model(config)
    for line in start_weights(model, config, lambda: sample_frames(dataset)):
        ctx.log(f"{config.name}: {line}")
    return model


def preset_warm_start(ctx: StageContext, stage: str, name: str, model: nn.Module) -> list[str]:
    """Start ``model`` (``stage``/``name``) from the run that ``ctx.preset.warm_start[name]`` names: copy the
    parameters under its prefixes whose names and shapes match. Returns the names copied ([] when the
    preset names no source). Raises :class:`InputError` when the source has not been trained."""
    from stanet_rt.training.engine import CHECKPOINT
    from stanet_rt.training.init import warm_start

    if name not in ctx.preset.warm_start:
        return []
    source, prefixes = ctx.preset.warm_start[name]
    ckpt = ctx.out / source / CHECKPOINT
    if not ckpt.is_file():
        raise InputError(f"{ckpt}: {stage}/{name} starts from {source}, which has not been trained")
    copied = warm_start(model, ckpt, prefixes=prefixes)
    what = ", ".join(p or "all parameters" for p in prefixes)
    ctx.log(f"{stage}/{name}: {what} from {source} ({len(copied)} tensors)")
    return copied


def teacher_forward(model: nn.Module, batch: dict[str, Tensor]) -> Any:
    return model(batch["frames"], batch.get("spectrograms"))


def teacher_step(model: nn.Module, batch: dict[str, Tensor]) -> StepOutput:
    """MLSM loss of a SCAM / SCAM+ teacher on one batch, and its anchor-frame accuracy."""
    out = teacher_forward(model, batch)
    loss = teacher_loss(model, out, batch["label"])
    pred = unwrap(model).anchor_logits(out).argmax(dim=1)
    correct = (pred == batch["class_index"]).sum().item()
    return StepOutput(loss, float(correct), int(pred.shape[0]))


def loader(dataset: Dataset, batch: int) -> DataLoader:
    """A sequential, non-shuffled loader for evaluation / export."""
    return DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def model_batches(model: nn.Module, dataset: Dataset, batch: int) -> Iterator[dict[str, Any]]:
    """The batches of :func:`loader` on ``model``'s device: what every evaluation / export loop feeds a
    model that training may have left on the GPU."""
    device = model_device(model)
    for b in loader(dataset, batch):
        yield to_device(b, device)


def accuracy_validator(dataset: Dataset | None, batch: int) -> ValidateFn | None:
    """``validate`` hook: anchor accuracy of a teacher on ``dataset`` (None: no validation)."""
    if dataset is None or len(dataset) == 0:
        return None

    def validate(model: nn.Module) -> dict[str, float]:
        correct = total = 0
        for b in model_batches(model, dataset, batch):
            out = teacher_forward(model, b)
            correct += int((model.anchor_logits(out).argmax(1) == b["class_index"]).sum())
            total += len(b["class_index"])
        return {"accuracy": correct / max(1, total)}

    return validate


def fit(
    ctx: StageContext,
    stage: str,
    branch: str,
    model: nn.Module,
    dataset: Dataset,
    step_fn: Callable[[nn.Module, dict[str, Tensor]], StepOutput],
    trainer: Trainer,
    validate: ValidateFn | None = None,
    find_unused_parameters: bool = True,
    settings_override: Any = None,
    forward_module: nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` with the shared engine into ``<out>/<stage>/<branch>`` (resuming per ``ctx``).

    Under DDP, parameters that a forward does not reach (e.g. S+'s fuse conv, which a single-term
    branch skips) are tolerated (``find_unused_parameters``)."""
    settings = settings_override or trainer.settings
    finished = ctx.resume and is_complete(ctx.run_dir(stage, branch))
    if len(dataset) == 0 and not finished:  # a finished run only reloads (e.g. the unseen set's stages)
        raise InputError(f"{ctx.data}: no training samples for {stage}/{branch}")
    return train(
        model,
        dataset,
        step_fn,
        settings,
        ctx.run_dir(stage, branch),
        name=f"{stage}/{branch}",
        resume=ctx.resume,
        validate=validate,
        info=ctx.info,
        progress=ctx.progress,
        extra_meta={"preset": ctx.preset.name, "stage": stage, "branch": branch},
        log=ctx.log if ctx.info.is_main else None,
        find_unused_parameters=find_unused_parameters,
        forward_module=forward_module,
    )


@torch.no_grad()
def export_cams(
    model: nn.Module,
    dataset: Dataset,
    records: list[VideoRecord],
    canvas: int,
    batch: int,
    boxes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    progress: bool = False,
    desc: str = "export",
) -> dict[str, BranchMaps]:
    """CAMs of the tagged class for every anchor of ``dataset`` (all frames of ``records``, no
    augmentation), as one :class:`BranchMaps` per video in the ``canvas`` x ``canvas`` grid.

    As the original test scripts (spec 3.1): a frame whose argmax class differs from its tag gets no
    CAM (``valid`` False); the CAM is ReLU((raw + refined) / 2) of the anchor; its probability is the
    softmax of the anchor logits at the tag. Coarse CAMs are resized to the whole canvas; with
    ``boxes`` (fine stage) each CAM is resized into its frame's box and pasted into a zero canvas
    (``RecoverCAM``); frames without a box stay invalid.
    """
    model.eval()
    maps = {r.video_id: np.zeros((r.n_frames, canvas, canvas), np.uint8) for r in records}
    probs = {r.video_id: np.zeros(r.n_frames, np.float32) for r in records}
    valid = {r.video_id: np.zeros(r.n_frames, bool) for r in records}
    batches: Any = model_batches(model, dataset, batch)
    for b in track(batches, desc, enabled=progress):
        out = teacher_forward(model, b)
        logits = model.anchor_logits(out)
        cls = b["class_index"]
        p = torch.softmax(logits, dim=1).gather(1, cls[:, None].clamp(min=0))[:, 0]
        ok = (logits.argmax(1) == cls) & (cls >= 0)
        cam = model.cam(out, cls.clamp(min=0))  # (B, h, w)
        if boxes is None:
            cam = F.interpolate(cam[:, None], size=(canvas, canvas), mode="bilinear", align_corners=False)[
                :, 0
            ]
        cam = cam.clamp(min=0).cpu().numpy()
        for i in range(len(cls)):
            rec = records[int(b["video_index"][i])]
            t = int(b["frame_index"][i])
            vid = rec.video_id
            probs[vid][t] = float(p[i])
            m = cam[i]
            if boxes is not None:
                bx, bv = boxes[vid]
                if not bv[t]:
                    continue
                m = recover(m, Box.from_array(bx[t]), canvas)
            maps[vid][t] = to_uint8(m)
            valid[vid][t] = bool(ok[i])
    return {vid: BranchMaps(maps[vid].astype(np.float32) / 255.0, probs[vid], valid[vid]) for vid in maps}


def summary_of(cams: dict[str, BranchMaps]) -> dict[str, float]:
    """Share of frames with a CAM and their mean probability (for the log)."""
    valid = np.concatenate([b.valid for b in cams.values()])
    probs = np.concatenate([b.probs[b.valid] for b in cams.values()])
    return {
        "frames": int(valid.size),
        "with_cam": float(valid.mean()) if valid.size else 0.0,
        "mean_prob": float(probs.mean()) if probs.size else float("nan"),
    }
