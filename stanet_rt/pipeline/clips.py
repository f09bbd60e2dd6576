"""Small generated audio-visual clips (PyAV): a sounding object whose size pulses with its sound, a silent
look-alike distractor and background texture. Used by ``stanet-rt demo``, tests and benchmarks.

Imports numpy and av.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(path: str | Path, seconds: float = 2.0, fps: int = 10, width: int = 160, height: int = 96,
              audio: bool = True, sample_rate: int = 16000, tone_hz: float = 440.0, seed: int = 0,
              silence: tuple[float, float] | None = None) -> Path:
    """Write an mp4 (H.264 or MPEG-4 video, AAC audio when ``audio``; ``silence`` = (start, end) seconds of
    digital silence in the audio). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    background = (rng.random((height, width, 3)) * 60 + 30).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    t_audio = np.arange(int(seconds * sample_rate)) / sample_rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t_audio)  # the source pulses 1.5 times a second
    wave = (0.4 * envelope * np.sin(2 * np.pi * tone_hz * t_audio)).astype(np.float32)
    if silence is not None:
        wave[int(silence[0] * sample_rate):int(silence[1] * sample_rate)] = 0.0
    with av.open(str(path), "w") as out:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        a_s = out.add_stream("aac", rate=sample_rate) if audio else None
        if a_s is not None:
            a_s.layout = "mono"
        for i in range(n):
            t = i / fps
            img = background.copy()
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t)
            cx, cy = width * (0.3 + 0.4 * t / max(seconds, 1e-6)), height * 0.45
            r_src = height * (0.10 + 0.08 * env)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < r_src**2] = (70, 140, 235)
            dx, dy = width * 0.8, height * 0.75  # silent distractor of the same look, constant size
            img[(xx - dx) ** 2 + (yy - dy) ** 2 < (height * 0.12) ** 2] = (70, 140, 235)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if a_s is not None:
            chunk = 1024
            for k in range(0, len(wave), chunk):
                piece = wave[k:k + chunk]
                frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = k
                out.mux(a_s.encode(frame))
            out.mux(a_s.encode(None))
    return path
