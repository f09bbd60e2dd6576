"""``stanet-rt demo``: the main job on its defaults. Generates a short clip (a sounding object pulsing
with its tone, a silent look-alike, textured background), runs the default model(s) through the full
streaming pipeline, and writes the overlay video, the maps, the statistics and a contact sheet PNG.

Imports numpy, pillow and ``stanet_rt.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from stanet_rt.pipeline.api import RunOptions, run
from stanet_rt.pipeline.clips import make_clip


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


def run_demo(out_dir: str | Path = "outputs/demo", models: list[str] | None = None,
             log: Callable[[str], None] = print) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip = make_clip(out / "input.mp4", seconds=4.0, fps=10, width=256, height=160)
    paths = {"input": clip, "overlay": out / "overlay.mp4", "maps": out / "maps.h5", "stats": out / "stats.json"}
    opts = RunOptions(overlay=paths["overlay"], maps=paths["maps"], stats=paths["stats"], progress=False)
    result = run(clip, list(models or []), opts, log=log)
    if result.exit_code != 0:
        raise RuntimeError(f"demo run ended with exit code {result.exit_code}")
    paths["contact_sheet"] = contact_sheet(paths["overlay"], out / "overlay_frames.png")
    log(f"{result.frames_out} frames at {result.stats['fps']} fps with {', '.join(result.stats['models'])}")
    return paths
