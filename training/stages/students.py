"""Stage 6: the students STA and STA+ trained on the pseudo-GT (spec 6), and the STANet+ fused output.

* STA (``sta``, and the light ``stanet_lite`` arch): frames at its window offsets; its two decoder
  levels of frame t are both trained against the pseudo-GT of t.
* STA+ (``sta_plus``): 9 frames t-4..t+4 as 3 triplet nodes; its 3 node maps (centres t-3, t, t+3) are
  trained against their pseudo-GTs. Its AudioSwitch is the one trained in stage 5, whole (with its own
  audio net) and frozen (the original ran it under ``no_grad`` in eval mode).
* Both audio nets start from the trained switch's audio net when the shapes match (the original's
  audio nets started from VGGSound weights); a preset may start a student's trunk (and STA+'s CAM
  head) from a trained teacher (``Preset.warm_start``; the CPU presets' stand-in for the paper's
  pretrained trunks).
* Loss: BCE-with-logits + KL per sample on every output map (``training.losses``; the original's KL
  was normalised per batch, valid only at its batch size of 1).

Outputs: ``students/<name>/`` (engine run: checkpoint.pt with optimiser state, logs) and the slim
self-describing model file ``students/<name>.pt`` that ``stanet-rt run --model`` and the default
model use. :func:`stanet_plus_fusion` is the original's ``FinalFusion.m``.

Imports torch, numpy, ``stanet_rt.{checkpoint,models}`` and ``training.{data,engine,losses,pseudo_gt,
stages.common,stages.switch}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from stanet_rt.training.data.datasets import ClipDataset, StudentDataset
from stanet_rt.training.data.records import VideoRecord
from stanet_rt.training.engine import StepFn, StepOutput, ValidateFn, is_complete
from stanet_rt.training.losses import student_loss
from stanet_rt.training.presets import Trainer
from stanet_rt.training.pseudo_gt import normalize
from stanet_rt.training.stages.common import StageContext, fit, model_batches, new_model, preset_warm_start
from stanet_rt.training.stages.switch import switch_dir
from torch import Tensor, nn

from stanet_rt.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from stanet_rt.config import ModelConfig
from stanet_rt.errors import InputError
from stanet_rt.pipeline.model_runner import combine_maps

STUDENT_ORDER = ("sta", "sta_plus")


def gt_offsets(config: ModelConfig) -> tuple[int, ...]:
    """Offsets whose pseudo-GT the loss needs: STA: (0,); STA+: its 3 node centres (-3, 0, 3)."""
    if config.arch == "sta_plus":
        o = config.window_offsets
        return (o[1], o[4], o[7])
    return (0,)


class TrainForward(nn.Module):
    """Routes ``forward`` to the student's ``forward_train`` (all its output maps), so that DDP wraps the
    training forward; shares the student's parameters (the engine checkpoints the student itself)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(
        self, frames: Tensor, spectrograms: Tensor | None = None, audio_on: Tensor | None = None
    ) -> Tensor:
        return self.student.forward_train(frames, spectrograms, audio_on)


def student_step(model: nn.Module, batch: dict[str, Tensor]) -> StepOutput:
    """BCE + KL of every output map (``model``: a :class:`TrainForward`, maybe DDP-wrapped) against its
    pseudo-GT (batch ``gt`` (B, G, 1, S, S)); ``audio_on`` (B,), when the batch has it, opens or closes
    each clip's audio gate."""
    maps = model(batch["frames"], batch.get("spectrograms"), batch.get("audio_on"))
    return StepOutput(student_loss(maps, batch["gt"]))


def audio_dropout_step(p: float) -> StepFn:
    """:func:`student_step` with the audio gate of each training clip closed with probability ``p``.

    Not in the original, whose students always trained with audio: the runtime also runs them with the
    gate closed (no audio track, a silent microphone), a path that then was never trained, and a
    student that must sometimes do without its audio learns what the audio adds instead of leaning on
    whatever it happens to carry. ``p`` = 0 is :func:`student_step`.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"audio dropout must be in [0, 1), got {p}")
    if p == 0.0:
        return student_step

    def step(model: nn.Module, batch: dict[str, Tensor]) -> StepOutput:
        n = len(batch["frames"])
        on = (torch.rand(n) >= p).to(batch["frames"].dtype)
        return student_step(model, {**batch, "audio_on": on})

    return step


def loss_validator(dataset: StudentDataset | None, batch: int) -> ValidateFn | None:
    if dataset is None or len(dataset) == 0:
        return None

    def validate(model: nn.Module) -> dict[str, float]:
        total, n = 0.0, 0
        for b in model_batches(model, dataset, batch):
            total += float(student_step(model, b).loss) * len(b["gt"])
            n += len(b["gt"])
        return {"loss": total / max(1, n)}

    return validate


def student_file(ctx: StageContext, name: str) -> Path:
    return ctx.out / "students" / f"{name}.pt"


def init_from_switch(
    model: nn.Module, config: ModelConfig, switch_ckpt: Path, freeze_switch: bool
) -> list[str]:
    """Copy the trained AudioSwitch into a student: its audio net into the student's (when the shapes
    match) and, for STA+, the whole switch (minus its own audio net). Returns the parameter-name
    prefixes to freeze."""
    payload = read_checkpoint(switch_ckpt)
    state: dict[str, Tensor] = payload["state_dict"]
    frozen: list[str] = []
    audio = {k.removeprefix("audio_net."): v for k, v in state.items() if k.startswith("audio_net.")}
    net = getattr(model, "audio_net", None)
    if (
        net is not None
        and audio
        and all(k in net.state_dict() and net.state_dict()[k].shape == v.shape for k, v in audio.items())
    ):
        net.load_state_dict(audio)
    switch = getattr(model, "switch", None)
    if switch is not None and freeze_switch:
        # STA+'s switch is the trained AudioSwitch whole, its own audio net included (it reads its own
        # embedding, not the fine-tuned student's), so every key must fit
        missing, unexpected = switch.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"{switch_ckpt}: AudioSwitch does not fit {config.name!r} "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        frozen += ["switch"]
    return frozen


def student_dataset(
    ctx: StageContext,
    split: str,
    config: ModelConfig,
    trainer: Trainer,
    train: bool,
    stride: int = 1,
    targets: Path | None = None,
) -> StudentDataset:
    """The split's windows with their target maps: the pseudo-GT, or ``targets`` (same layout; the
    distillation stage's fused STANet+ maps)."""
    return StudentDataset(
        ctx.records(split),
        config,
        ctx.pseudo_gt_dir if targets is None else targets,
        offsets=config.window_offsets,
        gt_offsets=gt_offsets(config),
        stride=stride,
        store=ctx.store(split),
        augment=trainer.augment if train else None,
        seed=trainer.settings.seed,
    )


def train_student(
    ctx: StageContext,
    name: str,
    trainer: Trainer,
    stage: str = "students",
    targets: Path | None = None,
    kind: str = "STANet student trained on weakly supervised pseudo-GT",
) -> Path:
    """Train one student on the pseudo-GT (or on the maps in ``targets``) into ``<out>/<stage>/<name>``;
    returns its slim model file ``students/<name>.pt``. ``name`` is ``sta`` / ``sta_plus`` (stage 6) or
    ``lite`` (the distillation stage, ``training.stages.distill``)."""
    out_file = student_file(ctx, name)
    run_dir = ctx.run_dir(stage, name)
    if ctx.resume and out_file.is_file() and is_complete(run_dir):
        ctx.log(f"{stage}/{name}: done ({out_file} exists)")
        return out_file
    config = ctx.model_config(trainer)
    train_ds = student_dataset(ctx, "train", config, trainer, True, trainer.stride, targets)
    model = new_model(ctx, config, train_ds, trainer.settings.seed)
    frozen: list[str] = []
    switch_ckpt = switch_dir(ctx) / "checkpoint.pt"
    if config.uses_audio and switch_ckpt.is_file():
        frozen = init_from_switch(model, config, switch_ckpt, freeze_switch=config.use_switch)
    elif config.use_switch:
        raise InputError(f"{switch_ckpt}: STA+ needs the trained AudioSwitch (run `stanet-rt train switch`)")
    preset_warm_start(ctx, stage, name, model)  # after the switch: a warm-started audio net replaces its
    settings = trainer.settings.replace(freeze=tuple(frozen))
    val = None
    if ctx.preset.val_stride and ctx.records("val"):
        val = student_dataset(ctx, "val", config, trainer, False, ctx.preset.val_stride, targets)
    # the audio-free path trains only in models that have one (audio_dropout of the preset's settings)
    step = audio_dropout_step(settings.audio_dropout) if config.uses_audio else student_step
    if step is not student_step:
        ctx.log(f"{stage}/{name}: audio gate closed on {settings.audio_dropout:.0%} of the training clips")
    result = fit(
        ctx,
        stage,
        name,
        model,
        train_ds,
        step,
        trainer,
        loss_validator(val, ctx.preset.export_batch),
        settings_override=settings,
        forward_module=TrainForward(model),
    )
    if ctx.info.is_main:
        last = result.history[-1] if result.history else {}
        meta = {
            "kind": kind,
            "preset": ctx.preset.name,
            "epochs": settings.epochs,
            "train_loss": last.get("loss"),
            "val_loss": last.get("val_loss"),
        }
        save_checkpoint(out_file, model, meta)
        ctx.log(f"students/{name}: wrote {out_file} ({out_file.stat().st_size / 1e6:.2f} MB)")
    return out_file


def run_students(ctx: StageContext) -> None:
    """Stage ``students``: STA then STA+ (those in the preset)."""
    for name in STUDENT_ORDER:
        if name in ctx.preset.students:
            train_student(ctx, name, ctx.preset.students[name])


def load_student(path: Path) -> tuple[nn.Module, ModelConfig]:
    model, config, _ = load_checkpoint(path)
    return model, config


@torch.no_grad()
def predict_window(model: nn.Module, frames: Tensor, spectrograms: Tensor | None, audio_on: float) -> Tensor:
    """A student's map of the offset-0 frame through the encode / head contract (what the runtime runs):
    frames (B, T, 3, S, S), spectrograms (B, T, 1, 257, 48) or None, ``audio_on`` 1 (audio) or 0 (the
    audio-free path of the same model). Returns sigmoid maps (B, S, S) in [0, 1]."""
    window = model.encode_window(frames, spectrograms, frames.new_full((frames.shape[0],), float(audio_on)))
    return torch.sigmoid(model.head(window, tuple(frames.shape[-2:])))[:, 0]


def stanet_plus_fusion(maps: Sequence[np.ndarray], fusion: str = "max") -> np.ndarray:
    """``FinalFusion.m``: N(pixel-wise max of N(map_i)) over same-sized maps (H, W) -> (H, W) in [0, 1];
    ``fusion="mean"``: N(mean of N(map_i)) (ours, the light presets'; see
    ``stanet_rt.pipeline.model_runner.fuse_maps``, the runtime's same fusion)."""
    if not maps:
        raise ValueError("no maps to fuse")
    # training's normalize keeps a constant map as it is (as Matlab), the runtime's makes it zeros
    return normalize(combine_maps([normalize(m) for m in maps], fusion))


@torch.no_grad()
def student_maps(
    model: torch.nn.Module,
    config,
    records: list[VideoRecord],
    store,
    size: int,
    audio_on: float,
    batch: int = 16,
) -> dict[str, np.ndarray]:
    """Every frame's map of every video: {video_id: (T, size, size) float32 in [0, 1]}; windows at the
    ends are edge-padded (as the runtime)."""
    ds = ClipDataset(records, config, offsets=config.window_offsets, store=store, augment=None)
    out = {r.video_id: np.zeros((r.n_frames, size, size), np.float32) for r in records}
    model.eval()
    for b in model_batches(model, ds, batch):
        maps = predict_window(model, b["frames"], b.get("spectrograms"), audio_on)
        maps = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
        for i in range(len(maps)):
            out[records[int(b["video_index"][i])].video_id][int(b["frame_index"][i])] = maps[i].cpu().numpy()
    return out
