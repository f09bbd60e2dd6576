"""Stage 3: SCAM+ teachers S+, SA+, ST+ with short / long / cross-term sampling (spec 4).

Each branch of the preset (e.g. ``sa_plus_long``) is one teacher trained on graph samples of its
term (``training.data.datasets.GraphDataset``: short = t, t-3, t+3 (ST+: triplets t-4..t+4), long = 2
random frames of the same video, cross = 2 random frames of random same-class videos; SA+ on event
frames only, as the original's switch-filtered lists). Its CAMs of every frame of every split go to
``cams/plus_<branch>.h5``; the export draws partners as the original test loaders did: short for the
short term, otherwise 2 random frames of the same video (at test time no class is known).

Imports ``training.{data,stages.common,presets,cams}``, ``stanet_rt.models``.
"""

from __future__ import annotations

from collections.abc import Sequence

from stanet_rt.training.cams import write_cams
from stanet_rt.training.data.datasets import GraphDataset
from stanet_rt.training.data.frames import MediaStore
from stanet_rt.training.data.records import VideoRecord
from stanet_rt.training.ddp import barrier
from stanet_rt.training.presets import Trainer, plus_branch
from stanet_rt.training.stages.common import (
    StageContext,
    accuracy_validator,
    export_cams,
    fit,
    new_model,
    preset_warm_start,
    summary_of,
    teacher_step,
)

from stanet_rt.config import ModelConfig

SHORT_STEP = 3  # node centres t-3, t, t+3 (ST+ triplets cover t-4 .. t+4)


def plus_dataset(
    records: Sequence[VideoRecord],
    config: ModelConfig,
    mode: str,
    store: MediaStore,
    trainer: Trainer,
    train: bool,
    stride: int = 1,
) -> GraphDataset:
    """Graph samples of one SCAM+ branch: anchor node first; ST+ nodes are (t-1, t, t+1) triplets."""
    node_offsets = (-1, 0, 1) if config.arch == "st_plus" else (0,)
    return GraphDataset(
        records,
        config,
        mode=mode,
        node_offsets=node_offsets,
        short_step=SHORT_STEP,
        only_events=train and config.arch == "sa_plus",
        stride=stride,
        store=store,
        augment=trainer.augment if train else None,
        seed=trainer.settings.seed,
    )


def run_plus(ctx: StageContext) -> None:
    """Stage ``scam-plus``: train and export every SCAM+ branch of the preset."""
    stores = {split: ctx.store(split) for split in ctx.export_splits()}
    for branch, trainer in ctx.preset.plus.items():
        path = ctx.cams_path("plus", branch)
        if ctx.resume and path.is_file():
            ctx.log(f"scam-plus/{branch}: done ({path.name} exists)")
            continue
        _, mode = plus_branch(branch)
        config = ctx.model_config(trainer)
        train_ds = plus_dataset(
            ctx.records("train"), config, mode, stores["train"], trainer, True, trainer.stride
        )
        model = new_model(ctx, config, train_ds, trainer.settings.seed)
        preset_warm_start(ctx, "scam-plus", branch, model)  # light presets: from the S+ branch trained before
        val = None
        if ctx.preset.val_stride and ctx.records("val"):
            val = plus_dataset(
                ctx.records("val"),
                config,
                "short" if mode == "short" else "long",
                ctx.store("val"),
                trainer,
                False,
                ctx.preset.val_stride,
            )
        fit(
            ctx,
            "scam-plus",
            branch,
            model,
            train_ds,
            teacher_step,
            trainer,
            accuracy_validator(val, ctx.preset.export_batch),
        )
        if ctx.info.is_main:
            export_mode = "short" if mode == "short" else "long"
            cams = {}
            for split, store in stores.items():
                ds = plus_dataset(ctx.records(split), config, export_mode, store, trainer, False)
                cams.update(
                    export_cams(
                        model,
                        ds,
                        ctx.records(split),
                        ctx.preset.frame_size,
                        ctx.preset.export_batch,
                        progress=ctx.progress,
                        desc=f"scam-plus/{branch} CAMs {split}",
                    )
                )
            write_cams(path, cams, {"branch": branch, "stage": "scam-plus", "canvas": ctx.preset.frame_size})
            s = summary_of(cams)
            ctx.log(
                f"scam-plus/{branch}: CAMs for {s['with_cam']:.0%} of {s['frames']} frames "
                f"(mean probability {s['mean_prob']:.3f}) -> {path}"
            )
        barrier(ctx.info)
