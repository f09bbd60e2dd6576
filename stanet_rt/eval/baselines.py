"""Training-free baselines (numpy + scipy): the centre bias, a colour-saturation map and a motion map.

A method that learned anything about a scene must beat all three: the centre bias (where people look
without seeing anything), the saturation map (bright saturated objects) and the motion map (what moves).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def centre_bias(shape: tuple[int, int], sigma_frac: float = 0.25) -> np.ndarray:
    """(H, W) Gaussian centred in the frame with sigma = ``sigma_frac`` x side, max 1."""
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2) / (sigma_frac * h)
    x = (np.arange(w) - (w - 1) / 2) / (sigma_frac * w)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def _blur(maps: np.ndarray, sigma_frac: float) -> np.ndarray:
    """Gaussian blur of (T, H, W) maps over space only (sigma = ``sigma_frac`` x the frame height)."""
    sigma = sigma_frac * maps.shape[1]
    return gaussian_filter(maps, sigma=(0, sigma, sigma), mode="nearest").astype(np.float32)


def saturation_map(frames: np.ndarray, sigma_frac: float = 0.03) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) float32: HSV saturation ((max - min) / max per pixel), blurred."""
    rgb = frames.astype(np.float32) / 255.0
    hi, lo = rgb.max(axis=-1), rgb.min(axis=-1)
    return _blur((hi - lo) / np.maximum(hi, 1e-6), sigma_frac)


def motion_map(frames: np.ndarray, sigma_frac: float = 0.03) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) float32: absolute grey-level change from the previous frame
    (the first frame uses the change to the next one), blurred. A single frame gives zeros."""
    grey = frames.astype(np.float32).mean(axis=-1)
    if len(grey) < 2:
        return np.zeros(grey.shape, np.float32)
    diff = np.abs(np.diff(grey, axis=0))
    return _blur(np.concatenate([diff[:1], diff], axis=0), sigma_frac)
