"""Stage 5: the AudioSwitch (spec 7), a 2-way "is the sound relevant to this frame" classifier trained on
the event on/off labels (AVE segments; the synthetic set's event segments), negatives subsampled to
balance every epoch. Output: ``switch/audio_switch/checkpoint.pt`` (its own audio net included).

Imports torch, ``stanet_rt.models`` and ``training.{data,engine,losses,stages.common}``.
"""

from __future__ import annotations

from stanet_rt.training.data.datasets import SwitchDataset
from stanet_rt.training.engine import StepOutput, ValidateFn, is_complete
from stanet_rt.training.losses import switch_loss
from stanet_rt.training.stages.common import StageContext, fit, model_batches, new_model
from torch import Tensor, nn

BRANCH = "audio_switch"


def switch_step(model: nn.Module, batch: dict[str, Tensor]) -> StepOutput:
    """Cross-entropy of the switch on one batch (frame (B, 1, 3, S, S) -> (B, 3, S, S)) and its accuracy."""
    logits = model(batch["frames"][:, 0], batch["spectrograms"][:, 0])
    target = batch["target"]
    correct = (logits.argmax(1) == target).sum().item()
    return StepOutput(switch_loss(logits, target), float(correct), int(target.shape[0]))


def switch_validator(dataset: SwitchDataset | None, batch: int) -> ValidateFn | None:
    if dataset is None or len(dataset) == 0:
        return None

    def validate(model: nn.Module) -> dict[str, float]:
        correct = total = 0
        for b in model_batches(model, dataset, batch):
            logits = model(b["frames"][:, 0], b["spectrograms"][:, 0])
            correct += int((logits.argmax(1) == b["target"]).sum())
            total += len(b["target"])
        return {"accuracy": correct / max(1, total)}

    return validate


def switch_dir(ctx: StageContext):
    return ctx.run_dir("switch", BRANCH)


def run_switch(ctx: StageContext) -> None:
    """Stage ``switch``: train the AudioSwitch."""
    if ctx.resume and is_complete(switch_dir(ctx)):
        ctx.log(f"switch: done ({switch_dir(ctx) / 'checkpoint.pt'} is complete)")
        return
    trainer = ctx.preset.switch
    config = ctx.model_config(trainer)
    train_ds = SwitchDataset(
        ctx.records("train"),
        config,
        store=ctx.store("train"),
        augment=trainer.augment,
        seed=trainer.settings.seed,
        stride=trainer.stride,
    )
    model = new_model(ctx, config, train_ds, trainer.settings.seed)
    val = None
    if ctx.preset.val_stride and ctx.records("val"):
        val = SwitchDataset(ctx.records("val"), config, store=ctx.store("val"), stride=ctx.preset.val_stride)
    fit(
        ctx,
        "switch",
        BRANCH,
        model,
        train_ds,
        switch_step,
        trainer,
        switch_validator(val, ctx.preset.export_batch),
    )
