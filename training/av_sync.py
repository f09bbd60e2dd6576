"""Audio-visual synchrony term of the pseudo-GT: which pixels change in step with the sound.

Not in the original method (a deliberate addition, off in the ``paper`` preset). The teachers learn
from category tags only, so nothing in their training tells a sounding object from a silent object
of the same class that looks the same: both carry the tag. What does tell them apart is timing: the
source moves, pulses or flashes with its sound. This is the classic "pixels that sound" cue (Hershey
& Movellan, NIPS 1999; Kidron et al., CVPR 2005): correlate every pixel's intensity over time with the
audio's loudness. It needs no labels either, so the pseudo-GT stays weakly supervised.

* :func:`frame_loudness` - RMS of the audio over one frame period centred on each frame's time: (T,).
* :func:`sync_maps` - per frame t, |Pearson r|^power between the blurred grey level of every pixel and
  the loudness over the centred frames t-radius .. t+radius, on a coarse grid, resized back and
  max-normalised: (T, H, W) in [0, 1]; and the window's "audio activity" (T,) in [0, 1] (the
  loudness's std in the window over its largest value in the clip). |r| because an object that
  brightens or grows with its sound darkens the background it covers as often as it brightens it;
  the power keeps the strongly correlated source and drops chance correlations of silent objects.
* :func:`apply_sync` - reweights a pseudo-GT map with the sync map where the audio is active:
  N(P (1 - g + g (floor + S)) + g add S), g the activity; g = 0 leaves P as it is.

Imports numpy, scipy and ``training.pseudo_gt`` only (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from stanet_rt.training.pseudo_gt import normalize, resize_bilinear


@dataclass(frozen=True)
class SyncSettings:
    """Parameters of the synchrony term. ``radius``: frames either side of t in the correlation window;
    ``power``: exponent on |r|; ``grid``: side of the coarse correlation grid (pixels of the frame are
    averaged into it); ``floor``: the pseudo-GT weight kept where the sync map is 0 (active audio);
    ``add``: weight of the sync map added on its own (lets it recover a source the teachers missed)."""

    radius: int = 8
    power: float = 4.0
    grid: int = 32
    floor: float = 0.2
    add: float = 0.3
    differences: bool = False  # correlate frame-to-frame changes (drops slow motion; see sync_maps)

    def __post_init__(self) -> None:
        if self.radius < 1 or self.power <= 0 or self.grid < 2 or self.floor < 0 or self.add < 0:
            raise ValueError(f"invalid sync settings {self}")


def frame_loudness(waveform: np.ndarray, centres: np.ndarray, half: int) -> np.ndarray:
    """RMS of ``waveform`` (L,) over [c - half, c + half) around every centre sample ``centres`` (T,):
    (T,) float32; samples outside [0, L) count as silence."""
    wave = np.asarray(waveform, dtype=np.float64).reshape(-1)
    if half < 1:
        raise ValueError(f"half must be >= 1 sample, got {half}")
    power = np.concatenate([[0.0], np.cumsum(wave * wave)])
    c = np.asarray(centres, dtype=np.int64).reshape(-1)
    lo = np.clip(c - half, 0, len(wave))
    hi = np.clip(c + half, 0, len(wave))
    return np.sqrt((power[hi] - power[lo]) / (2 * half)).astype(np.float32)


def _grey_grid(frames: np.ndarray, grid: int) -> np.ndarray:
    """(T, H, W, 3) or (T, H, W) frames -> (T, grid, grid) float32 grey levels, blurred before the
    resize so that every grid cell averages its pixels."""
    grey = np.asarray(frames, dtype=np.float32)
    if grey.ndim == 4:
        grey = grey.mean(axis=-1)
    sigma = max(grey.shape[1] / grid, grey.shape[2] / grid) / 2
    return np.stack([resize_bilinear(ndimage.gaussian_filter(f, sigma), (grid, grid)) for f in grey])


def sync_maps(
    frames: np.ndarray, loudness: np.ndarray, settings: SyncSettings = SyncSettings()
) -> tuple[np.ndarray, np.ndarray]:
    """Synchrony maps of one video: ``frames`` (T, H, W[, 3]), ``loudness`` (T,) (:func:`frame_loudness`).

    Returns ``maps`` (T, H, W) float32, each max-normalised to [0, 1] (all zero where the pixels or the
    audio do not vary in the window), and ``activity`` (T,) float32 in [0, 1].
    """
    frames = np.asarray(frames)
    loud = np.asarray(loudness, dtype=np.float64).reshape(-1)
    n, h, w = frames.shape[:3]
    if len(loud) != n:
        raise ValueError(f"{n} frames but {len(loud)} loudness values")
    grey = _grey_grid(frames, settings.grid).astype(np.float64)
    if settings.differences:  # change into frame t (frame 0: none), as the students' SyncGate
        grey = np.concatenate([np.zeros_like(grey[:1]), np.diff(grey, axis=0)])
        loud = np.concatenate([[0.0], np.diff(loud)])
    maps = np.zeros((n, h, w), np.float32)
    spread = np.zeros(n)
    for t in range(n):
        lo, hi = max(0, t - settings.radius), min(n, t + settings.radius + 1)
        x = grey[lo:hi] - grey[lo:hi].mean(axis=0)
        e = loud[lo:hi] - loud[lo:hi].mean()
        spread[t] = float(np.sqrt((e * e).mean()))
        den = np.sqrt((x * x).sum(axis=0) * float((e * e).sum()))
        r = np.divide((x * e[:, None, None]).sum(axis=0), den, out=np.zeros_like(den), where=den > 1e-9)
        s = np.abs(r) ** settings.power
        if s.max() > 0:
            maps[t] = np.clip(resize_bilinear(s / s.max(), (h, w)), 0.0, 1.0)
    top = spread.max()
    activity = (spread / top if top > 0 else spread).astype(np.float32)
    return maps, activity


def apply_sync(
    pseudo_gt: Sequence[np.ndarray | None],
    maps: np.ndarray,
    activity: np.ndarray,
    settings: SyncSettings = SyncSettings(),
) -> list[np.ndarray | None]:
    """Reweight one video's per-frame pseudo-GT (T entries of (H, W) in [0, 1] or None) with its sync
    ``maps`` (T, H, W) and ``activity`` (T,): N(P (1 - g + g (floor + S)) + g add S). Frames without a
    pseudo-GT stay None; where g = 0 the map is returned unchanged."""
    if not len(pseudo_gt) == len(maps) == len(activity):
        raise ValueError(f"{len(pseudo_gt)} maps, {len(maps)} sync maps, {len(activity)} activities")
    out: list[np.ndarray | None] = []
    for p, s, g in zip(pseudo_gt, maps, activity, strict=True):
        if p is None:
            out.append(None)
            continue
        if p.shape != s.shape:
            raise ValueError(f"pseudo-GT {p.shape} and sync map {s.shape} differ in shape")
        g = float(g)
        out.append(normalize(p * (1.0 - g + g * (settings.floor + s)) + g * settings.add * s))
    return out
