"""Training-free baselines (imports numpy and scipy only).

* :func:`centre_bias` - an isotropic-in-relative-units Gaussian at the frame centre.
* :func:`saturation_map` - "what is colourful": per-pixel chroma, blurred.
* :func:`motion_map` - "what moves": per-pixel absolute frame difference, blurred.

The last two are what the synthetic-set report measures every method against (issue 15) and what the
light presets' pseudo-GT uses as its visual prior where nothing sounds (``training.visual_prior``).
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


def blur_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Each map of ``maps`` (T, H, W) Gaussian-blurred by ``sigma`` pixels and scaled to max 1 (an
    all-zero map stays 0): (T, H, W) float32."""
    out = gaussian_filter(np.asarray(maps, dtype=np.float32), sigma=(0, sigma, sigma))
    peak = out.reshape(len(out), -1).max(axis=1)[:, None, None] if len(out) else np.zeros((0, 1, 1))
    return np.where(peak > 0, out / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def saturation_map(frames: np.ndarray) -> np.ndarray:
    """"What is colourful": per pixel chroma (max - min of R, G, B) of ``frames`` (T, H, W, 3) uint8,
    blurred by H / 32 px, max 1 per frame: (T, H, W) float32."""
    f = np.asarray(frames, dtype=np.float32)
    return blur_maps(f.max(axis=-1) - f.min(axis=-1), f.shape[1] / 32)


def motion_map(frames: np.ndarray) -> np.ndarray:
    """"What moves": per pixel mean absolute RGB difference to the previous frame (frame 0: to frame 1)
    of ``frames`` (T, H, W, 3) uint8, blurred by H / 32 px, max 1 per frame: (T, H, W) float32; all
    zero for fewer than 2 frames."""
    f = np.asarray(frames, dtype=np.float32)
    if len(f) < 2:
        return np.zeros(f.shape[:3], np.float32)
    diff = np.abs(np.diff(f, axis=0)).mean(axis=-1)
    return blur_maps(np.concatenate([diff[:1], diff]), f.shape[1] / 32)
