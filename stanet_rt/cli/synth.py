"""``stanet-rt synth``: generate the synthetic audio-visual event set.

Parses arguments and prints; the work is ``training.data.synth.generate_synth``. Imports only typer
and the standard library at module level.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from stanet_rt.cli import app, fail


@app.command()
def synth(
    out: Path = typer.Argument(
        ..., help="Output folder (videos/, Annotations.txt, split files, meta/, gt/, stavis/)."
    ),
    videos: int = typer.Option(120, "--videos", "-n", min=1, help="Number of clips."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed and settings give the same set."),
    preset: str = typer.Option(
        "synth-lite", "--preset",
        help="Defaults: synth-lite (the original look: 4 classes, 128 px, 4 s, 8 fps), synth-hard (varied "
        "fps, rates, looks, sounds and salient silent distractors: what `train --preset synth-lite` trains on), "
        "synth-unseen (a configuration training never sees), or their small test versions tiny, tiny-hard, "
        "tiny-unseen."
    ),
    classes: int | None = typer.Option(None, "--classes", min=1, max=28, help="Number of classes K."),
    size: int | None = typer.Option(None, "--size", help="Square frame side in pixels (even, >= 32)."),
    fps: int | None = typer.Option(None, "--fps", min=1, help="Frames per second."),
    seconds: int | None = typer.Option(None, "--seconds", min=1, help="Clip length in whole seconds."),
    distractor_prob: float | None = typer.Option(
        None, "--distractor-prob", min=0.0, max=1.0, help="Share of clips with a silent same-class twin."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a synthetic set already in OUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate the synthetic audio-visual event set (AVE layout + evaluation-only ground truth)."""
    from stanet_rt.errors import StanetError
    from stanet_rt.training.data.synth import generate_synth

    started = time.perf_counter()
    try:
        generate_synth(
            out, videos, seed=seed, classes=classes, size=size, fps=fps, seconds=seconds,
            distractor_prob=distractor_prob, preset=preset, overwrite=overwrite, progress=not quiet,
        )
    except StanetError as exc:
        fail(str(exc))
        return
    typer.echo(f"wrote {videos} clip(s) to {out} in {time.perf_counter() - started:.1f} s "
               f"(AVE layout; evaluate with --data {out / 'stavis'} --dataset SYNTH --split 1)")
