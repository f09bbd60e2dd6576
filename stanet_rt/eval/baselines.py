"""Baselines: the centre bias, an anisotropic Gaussian at the frame centre (imports numpy only)."""

from __future__ import annotations

import numpy as np


def centre_bias(shape: tuple[int, int], sigma_frac: float = 0.25) -> np.ndarray:
    """(H, W) Gaussian centred in the frame with sigma = ``sigma_frac`` x side, max 1."""
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2) / (sigma_frac * h)
    x = (np.arange(w) - (w - 1) / 2) / (sigma_frac * w)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
