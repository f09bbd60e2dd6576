"""Stage 7 (``stanet-rt train distill``): the causal light student ``stanet_lite`` distilled from the
fused STANet+ output, so that ``stanet-rt run --camera 0 --mic default`` is live on a CPU.

1. Teacher maps: the trained students of stage 6 (STA and STA+, those present) run over the train (and
   val) videos through the runtime's encode / head contract with audio on; their maps are fused as the
   original's ``FinalFusion.m`` (N(max of N(maps)), :func:`~training.stages.students.stanet_plus_fusion`;
   the mean instead of the max with ``Preset.fusion="mean"``)
   and written as 8-bit PNGs in the pseudo-GT layout under ``distill/teacher_maps/``. With
   ``Preset.distill_pgt_weight`` = w > 0 the target is (1 - w) * teacher + w * pseudo-GT on the frames
   that have a pseudo-GT (the teacher alone elsewhere).
2. The student (``Preset.distill``: a ``stanet_lite`` config, causal window, audio path kept) trains on
   those maps with the students' loss (BCE + KL per sample), its audio net from the AudioSwitch and,
   per ``Preset.warm_start['lite']``, its trunk from a trained model; under ``torchrun`` like every
   trainer. Output: ``distill/lite/`` (engine run) and the slim model file ``students/lite.pt``.

Only the teacher maps' rank-0 writes are guarded; every rank reads them after a barrier.

Imports torch, numpy, ``training.{data,ddp,stages.students,report}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from stanet_rt.training.data.pseudo_gt import available_frames, pseudo_gt_path, read_pseudo_gt, write_pseudo_gt
from stanet_rt.training.ddp import barrier
from stanet_rt.training.pseudo_gt import resize_bilinear
from stanet_rt.training.stages.common import StageContext
from stanet_rt.training.stages.students import (
    STUDENT_ORDER,
    load_student,
    stanet_plus_fusion,
    student_file,
    student_maps,
    train_student,
)

from stanet_rt.errors import InputError
from stanet_rt.fileio import write_text

STAGE = "distill"
NAME = "lite"
COMPLETE = "complete.json"


def teacher_dir(ctx: StageContext) -> Path:
    return ctx.out / STAGE / "teacher_maps"


def distilled_file(ctx: StageContext) -> Path:
    """``students/lite.pt``: the distilled student's slim model file."""
    return student_file(ctx, NAME)


def teacher_files(ctx: StageContext) -> list[Path]:
    """The stage-6 student files the teacher fuses (STA, STA+: those trained)."""
    files = [student_file(ctx, n) for n in STUDENT_ORDER if student_file(ctx, n).is_file()]
    if not files:
        raise InputError(f"{ctx.out / 'students'}: no trained student to distil from (run `stanet-rt train students`)")
    return files


def _stamp(files: list[Path], weight: float, splits: list[str]) -> dict:
    return {"teachers": {str(f): f.stat().st_mtime_ns for f in files}, "pgt_weight": weight, "splits": splits}


def write_teacher_maps(ctx: StageContext, splits: list[str]) -> Path:
    """Fused STANet+ maps (audio on) of every frame of ``splits``, blended with the pseudo-GT per the
    preset, as PNGs under :func:`teacher_dir`; skipped when they exist for the same teachers."""
    out = teacher_dir(ctx)
    files = teacher_files(ctx)
    weight = float(ctx.preset.distill_pgt_weight)
    stamp = _stamp(files, weight, splits)
    marker = out / COMPLETE
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == stamp:
        ctx.log(f"{STAGE}: teacher maps done ({out})")
        return out
    size = ctx.preset.frame_size
    teachers = [load_student(f) for f in files]
    for split in splits:
        records = ctx.records(split)
        per_model = [student_maps(m, c, records, ctx.store(split), size, 1.0, ctx.preset.export_batch)
                     for m, c in teachers]
        for rec in records:
            have = available_frames(ctx.pseudo_gt_dir, rec.video_id) if weight > 0 else set()
            for t in range(rec.n_frames):
                target = stanet_plus_fusion([p[rec.video_id][t] for p in per_model], ctx.preset.fusion)
                if t in have:
                    pgt = read_pseudo_gt(pseudo_gt_path(ctx.pseudo_gt_dir, rec.video_id, t))
                    if pgt.shape != target.shape:
                        pgt = resize_bilinear(pgt, target.shape)
                    target = (1.0 - weight) * target + weight * pgt
                write_pseudo_gt(out, rec.video_id, t, target)
        ctx.log(f"{STAGE}: teacher maps of {len(records)} {split} videos ({' + '.join(f.stem for f in files)}, "
                f"fused) -> {out}")
    write_text(marker, json.dumps(stamp, indent=1) + "\n")
    return out


def run_distill(ctx: StageContext) -> None:
    """Stage ``distill``: teacher maps (rank 0), then the light student trained on them."""
    trainer = ctx.preset.distill
    if trainer is None:
        raise InputError(f"preset {ctx.preset.name!r} has no light student to distil")
    if trainer.config.arch != "stanet_lite" or any(o > 0 for o in trainer.config.window_offsets):
        raise InputError(f"preset {ctx.preset.name!r}: the distilled student must be a causal stanet_lite")
    splits = [s for s in ("train", "val") if ctx.records(s)]
    if ctx.resume and distilled_file(ctx).is_file() and (ctx.run_dir(STAGE, NAME) / "checkpoint.pt").is_file():
        from stanet_rt.training.engine import is_complete

        if is_complete(ctx.run_dir(STAGE, NAME)):
            ctx.log(f"{STAGE}/{NAME}: done ({distilled_file(ctx)} exists)")
            return
    if ctx.info.is_main:
        write_teacher_maps(ctx, splits)
    barrier(ctx.info)
    train_student(ctx, NAME, trainer, stage=STAGE, targets=teacher_dir(ctx),
                  kind="stanet_lite distilled from the fused STANet+ output (STA + STA+)")
