"""Audio ring buffer for the streaming runtime: 16 kHz mono float32, fixed capacity, thread-safe.

A capture/decode thread ``push``es samples as they arrive (audio is never dropped); the inference thread
asks for ``window_ending_at(t)``: the 0.5 s ending at a video frame's timestamp (the end-aligned window
of ``alignment.end_aligned_window``), zero-padded before the start of the stream.

Imports numpy, threading and ``stanet_rt.audio.alignment`` only; must not import torch or av.
"""

from __future__ import annotations

import threading

import numpy as np

from stanet_rt.audio.alignment import SAMPLE_RATE, WINDOW_SAMPLES, end_aligned_window


class AudioRing:
    """The last ``capacity`` samples of a stream whose first sample is at ``start_time`` seconds.

    Times are seconds on the caller's clock (stream pts or a monotonic capture clock); sample k of the
    stream is at ``start_time + k / sample_rate``.
    """

    def __init__(
        self,
        capacity: int = 4 * SAMPLE_RATE,
        sample_rate: int = SAMPLE_RATE,
        start_time: float = 0.0,
        window: int = WINDOW_SAMPLES,
    ) -> None:
        if capacity < window:
            raise ValueError(f"capacity ({capacity} samples) must hold at least one window ({window})")
        self.capacity = capacity
        self.sample_rate = sample_rate
        self.start_time = start_time
        self.window = window
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._total = 0  # samples pushed since the start of the stream
        self._lock = threading.Lock()

    @property
    def total_samples(self) -> int:
        """Samples pushed since the start of the stream."""
        with self._lock:
            return self._total

    @property
    def end_time(self) -> float:
        """Time (seconds) just past the newest sample: windows ending up to here are complete."""
        return self.start_time + self.total_samples / self.sample_rate

    def push(self, samples: np.ndarray) -> None:
        """Append (n,) mono samples (any float dtype; stored as float32). Older samples beyond
        ``capacity`` are overwritten."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            n = len(x)
            if n >= self.capacity:  # only the newest ``capacity`` samples survive
                x = x[n - self.capacity :]
            pos = (self._total + n - len(x)) % self.capacity
            first = min(len(x), self.capacity - pos)
            self._buf[pos : pos + first] = x[:first]
            self._buf[: len(x) - first] = x[first:]
            self._total += n

    def window_ending_at(self, t_seconds: float, pad_future: bool = False) -> np.ndarray:
        """The ``window`` samples (8000 = 0.5 s by default) ending at ``t_seconds``: (window,) float32.

        Samples before the start of the stream are zeros. Samples not pushed yet raise ValueError, or
        are zeros with ``pad_future=True`` (a live source whose audio lags its video). Samples already
        overwritten (older than ``capacity``) raise ValueError: the buffer is too small for the delay.
        """
        start, stop = end_aligned_window(t_seconds - self.start_time, self.window, self.sample_rate)
        out = np.zeros(self.window, dtype=np.float32)
        with self._lock:
            total = self._total
            if stop > total and not pad_future:
                raise ValueError(
                    f"window ending at {t_seconds:.4f} s needs audio up to sample {stop}, "
                    f"only {total} pushed so far"
                )
            oldest = total - min(total, self.capacity)
            lo, hi = max(start, 0), min(stop, total)
            if lo < oldest and hi > lo:
                raise ValueError(
                    f"window ending at {t_seconds:.4f} s starts at sample {lo}, already overwritten "
                    f"(ring holds samples {oldest}..{total}); increase the capacity"
                )
            if hi > lo:
                idx = np.arange(lo, hi) % self.capacity
                out[lo - start : hi - start] = self._buf[idx]
        return out
