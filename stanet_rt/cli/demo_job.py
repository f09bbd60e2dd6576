"""``stanet-rt demo`` (CLI layer: it may import training): the main job on its defaults.
Generates a held-out clip of the synthetic
audio-visual event set (``training.data.synth``: the domain the default model was trained on; a
sounding object pulsing with its sound and a silent look-alike of the same class, so only the audio
tells which one to look at), runs the default model(s) through the full streaming pipeline, writes the
overlay video, the maps, the statistics and a contact sheet PNG, and scores the maps against the clip's
true sound-source maps (CC; the centre-bias baseline beside it).

Imports numpy, pillow, ``stanet_rt.{eval,pipeline}`` and (lazily) the synthetic generator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from stanet_rt.pipeline.api import STATUS_DONE, RunOptions, run
from stanet_rt.pipeline.sinks import write_stats


def contact_sheet(video: Path, out: Path, columns: int = 4, rows: int = 2) -> Path:
    """A grid of evenly spaced frames of ``video`` as one PNG."""
    from PIL import Image

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, columns * rows).round().astype(int)
    h, w = frames[0].shape[:2]
    sheet = np.zeros((rows * h, columns * w, 3), np.uint8)
    for k, i in enumerate(picks):
        r, c = divmod(k, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = frames[i]
    Image.fromarray(sheet).save(out)
    return out


DEMO_SEED = 20261125  # a seed no training set uses: the clip is held out


def demo_clip(path: Path, size: int = 256, seconds: int = 6) -> tuple[Path, np.ndarray]:
    """Write the demo clip (the first clip of the seed with a silent same-class distractor and an event
    over the whole clip) to ``path``; returns it and its true density maps (T, size, size)."""
    from dataclasses import replace

    from stanet_rt.training.data.synth import PRESETS
    from stanet_rt.training.data.synth import make_clip as synth_clip
    from stanet_rt.training.data.synth_io import write_mp4

    config = replace(PRESETS["synth-lite"], size=size, seconds=seconds, full_event_prob=1.0)
    for index in range(1000):
        clip = synth_clip(config, DEMO_SEED, index, "test")
        if clip.has_same_class_distractor and clip.events.all():
            break
    write_mp4(path, clip.frames, config.fps, clip.audio, config.sample_rate)
    return path, clip.density


def score(maps_file: Path, density: np.ndarray) -> dict[str, float]:
    """Mean CC of the written maps (resized to the truth) and of the centre bias against ``density``."""
    import h5py

    from stanet_rt.eval.baselines import centre_bias
    from stanet_rt.eval.metrics import cc
    from stanet_rt.eval.postprocess import imresize

    with h5py.File(maps_file, "r") as fh:
        maps = fh["maps"][()].astype(np.float64)
    size = density.shape[1:]
    centre = centre_bias(size)
    n = min(len(maps), len(density))
    return {"CC": float(np.nanmean([cc(imresize(maps[t], size), density[t]) for t in range(n)])),
            "centre bias CC": float(np.nanmean([cc(centre, density[t]) for t in range(n)]))}


def run_demo(out_dir: str | Path = "outputs/demo", models: list[str] | None = None,
             log: Callable[[str], None] = print) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip, density = demo_clip(out / "input.mp4")
    paths = {"input": clip, "overlay": out / "overlay.mp4", "maps": out / "maps.h5", "stats": out / "stats.json"}
    opts = RunOptions(overlay=paths["overlay"], maps=paths["maps"], progress=False)
    result = run(clip, list(models or []), opts, log=log)
    write_stats(paths["stats"], result.stats)
    if result.status != STATUS_DONE:
        raise RuntimeError(f"demo run ended early: {result.status}")
    paths["contact_sheet"] = contact_sheet(paths["overlay"], out / "overlay_frames.png")
    s = result.stats
    log(f"{result.frames_out} frames at {s['fps']} fps with {', '.join(s['models'])} ({', '.join(s['backend'])})")
    scores = score(paths["maps"], density)
    log(f"CC against the true sound source: {scores['CC']:.3f} (centre bias: {scores['centre bias CC']:.3f})")
    return paths
