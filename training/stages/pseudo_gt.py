"""Stage 4: pseudo-GT from the teachers' CAMs (spec 5.5-5.7), written for every split.

Per video: the coarse-to-fine S / SA / ST maps are smoothed over a centred t-2..t+2 window and cut
below 3 x mean (``training.pseudo_gt.temporal_smooth``; the original's recursive look-ahead filter is
fixed), then all branch maps (those 3 plus the preset's SCAM+ branches; 11 in the paper) are fused
by class confidence with the fixed ``CAMFuse.m`` denominator. Output (replaced atomically as a
whole): ``pseudo_gt/<video_id>/<frame:05d>.png`` (8-bit), ``pseudo_gt/probabilities.csv`` (the
per-branch probabilities each map used) and ``pseudo_gt/complete.json`` (counts).

Imports ``training.{cams,pseudo_gt,data.atomic,stages.common}``.
"""

from __future__ import annotations

import json

from training.cams import CamFile
from training.data.atomic import atomic_dir, write_text
from training.ddp import barrier
from training.pseudo_gt import ProbabilityTable, write_video_pseudo_gt
from training.stages.common import StageContext

MARKER = "complete.json"
TABLE = "probabilities.csv"


def pseudo_gt_complete(ctx: StageContext) -> bool:
    return (ctx.pseudo_gt_dir / MARKER).is_file()


def run_pseudo_gt(ctx: StageContext) -> None:
    """Stage ``pseudo-gt``: smooth, fuse and write the pseudo-GT maps of every exported split."""
    if ctx.resume and pseudo_gt_complete(ctx):
        ctx.log(f"pseudo-gt: done ({ctx.pseudo_gt_dir / MARKER} exists)")
        return
    if ctx.info.is_main:
        preset = ctx.preset
        files = {b: CamFile(ctx.cams_path("fine", b)) for b in preset.fine}
        files.update({b: CamFile(ctx.cams_path("plus", b)) for b in preset.plus})
        table = ProbabilityTable(list(files))
        counts: dict[str, dict[str, int]] = {}
        try:
            with atomic_dir(ctx.pseudo_gt_dir) as tmp:
                for split in ctx.export_splits():
                    written = total = 0
                    for rec in ctx.records(split):
                        branches = {}
                        for name, f in files.items():
                            maps = f.video(rec.video_id)
                            if name in preset.fine:
                                maps = maps.smoothed(preset.smooth_radius, preset.smooth_factor)
                            branches[name] = maps
                        written += write_video_pseudo_gt(tmp, rec.video_id, branches, table, preset.min_maps)
                        total += rec.n_frames
                    counts[split] = {"frames": total, "pseudo_gt": written}
                    ctx.log(f"pseudo-gt {split}: {written} of {total} frames have a pseudo-GT map")
                table.write(tmp / TABLE)
                summary = {
                    "branches": list(files),
                    "min_maps": preset.min_maps,
                    "counts": counts,
                    "smooth_radius": preset.smooth_radius,
                    "smooth_factor": preset.smooth_factor,
                }
                write_text(tmp / MARKER, json.dumps(summary, indent=1) + "\n")
        finally:
            for f in files.values():
                f.close()
        ctx.log(f"pseudo-gt: wrote {ctx.pseudo_gt_dir}")
    barrier(ctx.info)
