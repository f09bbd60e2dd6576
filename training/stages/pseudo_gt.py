"""Stage 4: pseudo-GT from the teachers' CAMs (spec 5.5-5.7), written for every split.

Per video: the coarse-to-fine S / SA / ST maps are smoothed over a centred t-2..t+2 window and cut
below 3 x mean (``training.pseudo_gt.temporal_smooth``; the original's recursive look-ahead filter is
fixed), then all branch maps (those 3 plus the preset's SCAM+ branches; 11 in the paper) are fused
by class confidence with the fixed ``CAMFuse.m`` denominator. With the preset's ``av_sync`` settings
(light presets; not the paper's) every fused map is then reweighted by the audio-visual synchrony of
its pixels (``training.av_sync``: what the category tags cannot teach, which of two look-alikes is
the one that sounds); videos without a waveform keep the fused map. With the preset's ``visual_prior``
(light presets; not the paper's) every map then gets the visual prior (``training.visual_prior``: motion on
frames that sound, motion and colour where the clip is silent). Output (replaced atomically as a
whole): ``pseudo_gt/<video_id>/<frame:05d>.png`` (8-bit), ``pseudo_gt/probabilities.csv`` (the
per-branch probabilities each map used) and ``pseudo_gt/complete.json`` (counts).

Imports ``training.{av_sync,cams,pseudo_gt,stages.common,visual_prior}``, ``stanet_rt.eval.baselines`` and
``stanet_rt.fileio``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
from stanet_rt.training.av_sync import SyncSettings, apply_sync, frame_loudness, sync_maps
from stanet_rt.training.cams import CamFile
from stanet_rt.training.ddp import barrier
from stanet_rt.training.pseudo_gt import BranchMaps, ProbabilityTable, write_video_pseudo_gt
from stanet_rt.training.stages.common import StageContext
from stanet_rt.training.visual_prior import VisualPrior, apply_visual_prior, audio_presence

from stanet_rt.eval.baselines import motion_map, saturation_map
from stanet_rt.fileio import atomic_dir, write_text

MARKER = "complete.json"
TABLE = "probabilities.csv"


def pseudo_gt_complete(ctx: StageContext) -> bool:
    return (ctx.pseudo_gt_dir / MARKER).is_file()


Refiner = Callable[[list[np.ndarray | None]], list[np.ndarray | None]]


def video_refiner(
    ctx: StageContext, split: str, v: int, sync: SyncSettings | None, prior: VisualPrior | None
) -> tuple[Refiner | None, bool]:
    """The steps that follow the fusion for video ``v`` of ``split``, at the pseudo-GT grid: with ``sync``
    :func:`~training.av_sync.apply_sync` (skipped for a video without a waveform), then with ``prior``
    :func:`~training.visual_prior.apply_visual_prior` (given the same sync maps; a video without a
    waveform is silent throughout). Returns (the steps or None when there are none, whether it synced)."""
    if sync is None and prior is None:  # the paper preset: nothing to decode
        return None, False
    store = ctx.store(split)
    frames = store.frames(v)
    track = store.audio_track(v)
    loudness = fps = None
    if track is not None:
        waveform, frame_samples, fps = track
        loudness = frame_loudness(waveform, frame_samples, max(1, round(store.audio.sample_rate / fps / 2)))
    steps: list[Refiner] = []
    sync_map = None
    if sync is not None and loudness is not None:
        sync_map, activity = sync_maps(frames, loudness, sync)
        steps.append(lambda maps: apply_sync(maps, sync_map, activity, sync))
    if prior is not None:
        presence = (
            np.zeros(len(frames), np.float32) if loudness is None else audio_presence(loudness, fps, prior)
        )
        motion, saturation = motion_map(frames), saturation_map(frames)
        steps.append(lambda maps: apply_visual_prior(maps, motion, saturation, presence, prior, sync_map))
    if not steps:  # sync only, and the video has no waveform
        return None, False

    def run(maps: list[np.ndarray | None]) -> list[np.ndarray | None]:
        for step in steps:
            maps = step(maps)
        return maps

    return run, sync_map is not None


def open_branch_files(ctx: StageContext) -> dict[str, CamFile]:
    """The CAM files of every branch the pseudo-GT fuses (fine S / SA / ST, then the SCAM+ branches)."""
    files = {b: CamFile(ctx.cams_path("fine", b)) for b in ctx.preset.fine}
    files.update({b: CamFile(ctx.cams_path("plus", b)) for b in ctx.preset.plus})
    return files


def video_branches(ctx: StageContext, files: dict[str, CamFile], video_id: str) -> dict[str, BranchMaps]:
    """One video's branch maps as fused: the fine S / SA / ST ones temporally smoothed (spec 5.5)."""
    preset = ctx.preset
    branches = {}
    for name, f in files.items():
        maps = f.video(video_id)
        if name in preset.fine:
            maps = maps.smoothed(preset.smooth_radius, preset.smooth_factor)
        branches[name] = maps
    return branches


def run_pseudo_gt(ctx: StageContext) -> None:
    """Stage ``pseudo-gt``: smooth, fuse and write the pseudo-GT maps of every exported split."""
    if ctx.resume and pseudo_gt_complete(ctx):
        ctx.log(f"pseudo-gt: done ({ctx.pseudo_gt_dir / MARKER} exists)")
        return
    if ctx.info.is_main:
        preset = ctx.preset
        files = open_branch_files(ctx)
        table = ProbabilityTable(list(files))
        counts: dict[str, dict[str, int]] = {}
        try:
            with atomic_dir(ctx.pseudo_gt_dir) as tmp:
                for split in ctx.export_splits():
                    written = total = synced = 0
                    for v, rec in enumerate(ctx.records(split)):
                        branches = video_branches(ctx, files, rec.video_id)
                        refine, synced_video = video_refiner(ctx, split, v, preset.av_sync, preset.visual_prior)
                        synced += synced_video
                        written += write_video_pseudo_gt(
                            tmp, rec.video_id, branches, table, preset.min_maps, refine
                        )
                        total += rec.n_frames
                    counts[split] = {"frames": total, "pseudo_gt": written, "av_sync_videos": synced}
                    ctx.log(f"pseudo-gt {split}: {written} of {total} frames have a pseudo-GT map"
                            + (f"; {synced} videos reweighted by audio-visual sync" if preset.av_sync else ""))
                table.write(tmp / TABLE)
                summary = {
                    "branches": list(files),
                    "min_maps": preset.min_maps,
                    "counts": counts,
                    "smooth_radius": preset.smooth_radius,
                    "smooth_factor": preset.smooth_factor,
                    "av_sync": dataclasses.asdict(preset.av_sync) if preset.av_sync else None,
                    "visual_prior": dataclasses.asdict(preset.visual_prior) if preset.visual_prior else None,
                }
                write_text(tmp / MARKER, json.dumps(summary, indent=1) + "\n")
        finally:
            for f in files.values():
                f.close()
        ctx.log(f"pseudo-gt: wrote {ctx.pseudo_gt_dir}")
    barrier(ctx.info)
