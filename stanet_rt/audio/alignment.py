"""Which 0.5 s of audio belongs to which video frame (spec section 1, step 2).

Two placements, both returned as half-open sample ranges [start, stop) into a 16 kHz waveform:

* ``start_aligned_windows``: the original ``audiostft.py``: T windows spread evenly from the start of the
  clip (window 0 = [0, 8000)) to its end; offline only, since it needs the whole clip's length.
* ``end_aligned_window(s)``: the streaming window, the 0.5 s that ends at the frame's timestamp; it
  only needs audio up to the frame, so it is causal.

Ranges may reach outside the waveform (before its start or past its end); ``slice_windows`` cuts them
out and zero-pads the missing part. Imports numpy only; must not import torch, av or anything above.
"""

from __future__ import annotations

import numpy as np

WINDOW_SAMPLES = 8000  # 0.5 s at 16 kHz
SAMPLE_RATE = 16000


def start_aligned_windows(n_samples: int, n_frames: int, window: int = WINDOW_SAMPLES) -> np.ndarray:
    """The original's evenly spread, start-aligned windows: (T, 2) int64 [start, stop) sample ranges.

    With L = ``n_samples`` and T = ``n_frames``: step = floor((L - window) / (T - 1)) and frame i gets
    [i * step, i * step + window), so the last window ends at most at L.

    Deliberate differences from the original (it crashed on both):
    * T == 1: the single window [0, window) (the original divided by T - 1 = 0).
    * L < window: every frame gets [0, window), zero-padded past the end of the audio by
      ``slice_windows`` (the original's step went negative).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    step = (n_samples - window) // (n_frames - 1) if n_frames > 1 and n_samples > window else 0
    starts = np.arange(n_frames, dtype=np.int64) * step
    return np.stack([starts, starts + window], axis=1)


def end_sample(t_seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Index one past the last sample at or before time ``t_seconds`` (seconds since sample 0).

    Rounded to the nearest sample, so frame timestamps that are exact multiples of 1/fps map to the
    same sample on every platform.
    """
    return int(np.floor(t_seconds * sample_rate + 0.5))


def end_aligned_window(
    t_seconds: float, window: int = WINDOW_SAMPLES, sample_rate: int = SAMPLE_RATE
) -> tuple[int, int]:
    """The streaming window of a frame shown at ``t_seconds``: [stop - window, stop) with stop at t.

    ``t_seconds`` is measured from the first audio sample. The start is negative for frames in the
    first 0.5 s; those samples lie before the stream and are zero-padded by ``slice_windows`` (the
    frame at t = 0 gets an all-zero window).
    """
    stop = end_sample(t_seconds, sample_rate)
    return stop - window, stop


def end_aligned_windows(
    timestamps: np.ndarray, window: int = WINDOW_SAMPLES, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """``end_aligned_window`` for every frame: (T,) seconds -> (T, 2) int64 [start, stop) ranges."""
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    stops = np.floor(ts * sample_rate + 0.5).astype(np.int64)
    return np.stack([stops - window, stops], axis=1)


def slice_windows(waveform: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Cut (T, 2) [start, stop) ranges out of a (L,) waveform: (T, W) float32, zero outside [0, L).

    All ranges must have the same width W = stop - start.
    """
    wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    widths = ranges[:, 1] - ranges[:, 0]
    if len(ranges) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if np.any(widths != widths[0]) or widths[0] <= 0:
        raise ValueError(f"all windows must have the same positive width, got widths {np.unique(widths)}")
    width = int(widths[0])
    # Copy only the span these windows cover (a batch of a long file touches a small part of it).
    lo, hi = int(ranges[:, 0].min()), int(ranges[:, 1].max())
    span = np.zeros(hi - lo, dtype=np.float32)
    src_lo, src_hi = max(lo, 0), min(hi, len(wave))
    if src_hi > src_lo:
        span[src_lo - lo : src_hi - lo] = wave[src_lo:src_hi]
    index = ranges[:, :1] - lo + np.arange(width, dtype=np.int64)[None, :]
    return span[index]
