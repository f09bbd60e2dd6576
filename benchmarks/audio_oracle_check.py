"""Can the light student use its audio at all? An oracle check on a finished synth-lite run.

The training issue asks the audio-gated students to beat their audio-free twins on clips with a silent
same-class twin; the synth-lite report shows they do not. This check separates the two possible causes:
it trains the preset's light student (the ``distill`` trainer) on the TRUE source maps of the synthetic
set (oracle targets: not weak supervision) and scores it on the test twin clips with its audio-visual
gate open and closed. If the oracle student cannot tell a pulsing twin from the source either, the
limit is the student's audio path (0.5 s window, z-normalised, NetVLAD pooling), not the pseudo-GT.

Run after ``stanet-rt train all --preset synth-lite --out RUN``:
``python -m stanet_rt.benchmarks.audio_oracle_check RUN [--out benchmarks/results]`` (a few minutes on 2 cores;
writes ``RUN/oracle_maps``, ``RUN/students/oracle.pt`` and ``audio_oracle_check.<machine>.{json,md}``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from stanet_rt.benchmarks.common import RESULTS_DIR, BenchmarkResult
from stanet_rt.training.data.pseudo_gt import write_pseudo_gt
from stanet_rt.training.presets import get_preset
from stanet_rt.training.report import read_truth, source_share, twin_pulses
from stanet_rt.training.stages.common import StageContext
from stanet_rt.training.stages.students import load_student, student_file, student_maps, train_student

from stanet_rt.errors import InputError
from stanet_rt.eval.evaluate import evaluate_maps
from stanet_rt.fileio import atomic_dir

NAME = "oracle"


def write_oracle_targets(ctx: StageContext, out: Path) -> Path:
    """The true source density of every train / val frame, max-normalised, in the pseudo-GT layout."""
    if out.is_dir():
        return out
    with atomic_dir(out) as tmp:
        for split in ("train", "val"):
            for rec in ctx.records(split):
                density, _, _ = read_truth(ctx.data, rec.video_id)
                for t in range(rec.n_frames):
                    if density[t].max() > 0:
                        write_pseudo_gt(tmp, rec.video_id, t, density[t] / density[t].max())
    return out


def run(run_dir: Path, preset: str = "synth-lite") -> BenchmarkResult:
    if not (run_dir / "pseudo_gt").is_dir() or not (run_dir / "synth" / "gt").is_dir():
        raise InputError(f"{run_dir}: not a finished synth run (no pseudo_gt/ or synth/gt/; run "
                         f"`stanet-rt train all --preset {preset} --out {run_dir}` first)")
    ctx = StageContext(get_preset(preset), run_dir / "synth", run_dir, progress=False)
    trainer = ctx.preset.distill
    if trainer is None:
        raise InputError(f"preset {preset!r} has no light student")
    targets = write_oracle_targets(ctx, run_dir / "oracle_maps")
    path = student_file(ctx, NAME)
    if not path.is_file():
        train_student(ctx, NAME, trainer, stage=NAME, targets=targets, kind="oracle check: true source maps")
    model, config = load_student(path)
    records, store = ctx.records("test"), ctx.store("test")
    result = BenchmarkResult("audio_oracle_check")
    for audio_on in (1.0, 0.0):
        maps = student_maps(model, config, records, store, ctx.preset.frame_size, audio_on, 8)
        shares: list[float] = []
        pulsing: list[float] = []
        ccs: list[float] = []
        for rec in records:
            density, fixations, meta = read_truth(ctx.data, rec.video_id)
            if not meta.get("has_same_class_distractor"):
                continue
            share = source_share(maps[rec.video_id], meta, range(rec.n_frames))
            shares += share
            if twin_pulses(meta):
                pulsing += share
            ccs.append(evaluate_maps(maps[rec.video_id], density, fixations, metrics=("CC",))["CC"])
        result.add(
            student=f"{config.name} on true maps",
            audio="on" if audio_on else "off (gate closed)",
            twin_videos=len(ccs),
            CC=round(float(np.mean(ccs)), 4),
            source_share=round(float(np.mean(shares)), 4),
            source_share_pulsing_twin=round(float(np.mean(pulsing)), 4) if pulsing else None,
        )
    result.notes.append(
        "source share = map mean on the true source's box / (that + on the silent same-class twin's box); "
        "0.5 = cannot tell them apart; test clips with a twin only"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished `stanet-rt train all --preset synth-lite` run")
    parser.add_argument("--preset", default="synth-lite")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    try:
        result = run(args.run_dir, args.preset)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    paths = result.write(args.out)
    print(result.markdown())
    print(f"wrote {paths['md']}")


if __name__ == "__main__":
    main()
