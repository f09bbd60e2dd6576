"""Prediction post-processing of the STAViS protocol (metrics-and-peers.md 1.1, 1.2).

- :func:`postprocess_map`: channel 1, x255 clipped, /max x255, min-max (constant -> 0.5), Gaussian
  sigma 2 (13 x 13 unit-sum kernel, ``symmetric`` padding = scipy ``mode="reflect"``) at the
  prediction's own size.
- :func:`imresize`: MATLAB ``imresize`` bicubic (Keys a = -0.5; antialiasing, i.e. a kernel widened by
  1/scale, only when shrinking; MATLAB's coordinate map u = x/scale + 0.5 (1 - 1/scale); symmetric
  edge handling), implemented as two separable weight matrices.

Imports numpy and scipy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _weights(in_len: int, out_len: int) -> np.ndarray:
    """(out_len, in_len) interpolation matrix of MATLAB's bicubic imresize along one axis."""
    scale = out_len / in_len
    width = 4.0
    antialias = scale < 1
    if antialias:
        width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # symmetric padding: index sequence 1..n, n..1 repeated
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), cols.ravel()), w.ravel())
    return mat


def imresize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB-compatible bicubic resize of a 2-D array to ``size`` (rows, cols), float64 out."""
    a = np.asarray(image, dtype=np.float64)
    rows, cols = size
    if a.shape == (rows, cols):
        return a.copy()
    # MATLAB resizes the dimension with the smaller scale first
    r_scale, c_scale = rows / a.shape[0], cols / a.shape[1]
    if r_scale <= c_scale:
        a = _weights(a.shape[0], rows) @ a
        return a @ _weights(a.shape[1], cols).T
    a = a @ _weights(a.shape[1], cols).T
    return _weights(a.shape[0], rows) @ a


def gaussian_kernel(sigma: float = 2.0) -> np.ndarray:
    """fspecial('gaussian', 2*ceil(3*sigma)+1, sigma): unit-sum kernel (13 x 13 for sigma 2)."""
    half = int(math.ceil(3 * sigma))
    ax = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma * sigma))
    return k / k.sum()


def postprocess_map(pred: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """A prediction in [0, 1] (H, W) or (H, W, C) -> the protocol's normalised, blurred map (H, W)."""
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim == 3:
        p = p[..., 0]
    p = np.clip(255.0 * p, 0, 255)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 255.0 * p / p.max()  # max 0 -> NaN map, dropped later as in MATLAB
    lo, hi = np.nanmin(p) if np.isfinite(p).any() else np.nan, np.nanmax(p) if np.isfinite(p).any() else np.nan
    if not np.isfinite(p).all():
        return np.full(p.shape, np.nan)
    p = np.full(p.shape, 0.5) if hi == lo else (p - lo) / (hi - lo)
    if sigma > 0:
        p = ndimage.correlate(p, gaussian_kernel(sigma), mode="reflect")
    return p
