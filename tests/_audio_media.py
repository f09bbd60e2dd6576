"""Tiny media files for the audio tests, generated with PyAV and scipy (no downloaded data)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from scipy.io import wavfile


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """(n,) float32 sine."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, channels: np.ndarray, rate: int) -> Path:
    """``channels`` (C, n) float in [-1, 1] -> 16-bit PCM wav."""
    data = np.clip(np.asarray(channels, dtype=np.float64), -1, 1)
    wavfile.write(path, rate, (data.T * 32767).astype(np.int16))
    return path


def write_video(
    path: Path,
    n_frames: int = 10,
    fps: int = 25,
    audio: np.ndarray | None = None,
    audio_rate: int = 44100,
    vcodec: str = "libx264",
    acodec: str = "aac",
) -> Path:
    """A 32x32 video of ``n_frames`` frames; ``audio`` (C, n) float32 (C = 1 or 2) or None for none."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        if audio is not None:
            layout = "stereo" if len(audio) == 2 else "mono"
            ast = out.add_stream(acodec, rate=audio_rate, layout=layout)
        for i in range(n_frames):
            img = np.full((32, 32, 3), (i * 20) % 255, np.uint8)
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if audio is not None:
            chunk = ast.codec_context.frame_size or 1024
            for start in range(0, audio.shape[1], chunk):
                data = np.ascontiguousarray(audio[:, start : start + chunk], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = audio_rate, start, Fraction(1, audio_rate)
                for packet in ast.encode(frame):
                    out.mux(packet)
            for packet in ast.encode():
                out.mux(packet)
    return path
