"""Frame preprocessing shared by training, the runtime and export parity: one definition, in numpy.

``preprocess(images, config)``: (N, H, W, 3) uint8 RGB -> (N, 3, S, S) float32, i.e. scale to [0, 1],
square resize to ``config.input_size`` (bilinear, antialiased when shrinking: the triangle filter
widened by the scale, exactly ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
antialias=True)``), then ``(x - mean) / std`` per channel. Training's torch path
(``training.data.transforms.prepare_frames`` with no augmentation) and export parity compute the same
numbers (a test pins the agreement to 1e-5), so what the model saw in training is what it sees at run time.

The resize is two matrix products with banded weight matrices (cached per size pair), applied a band of
output rows at a time, so a 1080p frame costs a few milliseconds without torch.

Imports numpy only (no torch: the ONNX Runtime path of ``stanet-rt run`` runs without it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

_BAND = 16  # output rows per band of the vertical pass


@lru_cache(maxsize=32)
def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 weights of a 1-D antialiased bilinear resize (rows sum to 1).

    Output sample i is centred at ``scale * (i + 0.5)`` input pixels (``scale = n_in / n_out``); when
    shrinking, the triangle filter is ``scale`` pixels wide on each side (PIL's / torch's antialias),
    when enlarging it is plain bilinear with clamped edges."""
    if n_in <= 0 or n_out <= 0:
        raise ValueError(f"resize from {n_in} to {n_out} samples")
    scale = n_in / n_out
    support = max(scale, 1.0)
    inv = 1.0 / support
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        taps = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - centre + 0.5) * inv))
        weights[i, lo:hi] = taps / taps.sum()
    return weights.astype(np.float32)


@lru_cache(maxsize=32)
def _bands(n_in: int, n_out: int) -> tuple[tuple[slice, slice, np.ndarray], ...]:
    """The weight matrix cut into bands of ``_BAND`` output rows with the input rows they touch."""
    w = resize_weights(n_in, n_out)
    bands = []
    for start in range(0, n_out, _BAND):
        block = w[start : start + _BAND]
        cols = np.flatnonzero(block.any(axis=0))
        lo, hi = int(cols[0]), int(cols[-1]) + 1
        bands.append((slice(start, start + len(block)), slice(lo, hi), np.ascontiguousarray(block[:, lo:hi])))
    return tuple(bands)


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) (any real dtype) -> (N, h, w, C) float32, antialiased bilinear (see the module doc)."""
    x = np.asarray(images)
    n, h_in, w_in, c = x.shape
    h, w = size
    if (h_in, w_in) == (h, w):
        return x.astype(np.float32)
    out = np.empty((n, h, w, c), dtype=np.float32)
    wx = resize_weights(w_in, w)
    for k in range(n):
        rows = np.empty((h, w_in * c), dtype=np.float32)  # vertical pass, one band of output rows at a time
        flat = x[k].reshape(h_in, w_in * c)
        for out_rows, in_rows, block in _bands(h_in, h):
            rows[out_rows] = block @ flat[in_rows].astype(np.float32)
        # horizontal pass: (h, w_in, c) -> (h, w, c)
        out[k] = np.einsum("vw,hwc->hvc", wx, rows.reshape(h, w_in, c), optimize=True)
    return out


def normalise(x: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> ``(x - mean) / std`` per channel, float32."""
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ((x - m) / s).astype(np.float32, copy=False)


def preprocess(images: np.ndarray, config: Any) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB frames -> (N, 3, S, S) float32 model input for ``config`` (a ModelConfig:
    ``input_size``, ``mean``, ``std``)."""
    s = int(config.input_size)
    x = resize(images, (s, s)) / np.float32(255.0)
    return normalise(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), config.mean, config.std)
