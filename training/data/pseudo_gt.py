"""Where pseudo-GT maps live and how they are stored: ``<pseudo_gt_dir>/<video_id>/<frame:05d>.png``.

``frame`` is the 0-based frame index of the video (the same index the datasets use); the map is an
8-bit grayscale PNG, 255 = the map's maximum (the original wrote ``NNNN_c.jpg``; PNG is lossless and
the index is 5 digits so no video overflows it). The pseudo-GT writer and ``StudentDataset`` both go
through these functions, so the layout is defined once.

Imports numpy, pillow and ``stanet_rt.fileio`` only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stanet_rt.errors import InputError
from stanet_rt.fileio import atomic_path

SUFFIX = ".png"


def pseudo_gt_path(root: str | Path, video_id: str, frame: int) -> Path:
    """Path of the pseudo-GT map of (``video_id``, 0-based ``frame``)."""
    if frame < 0:
        raise ValueError(f"frame index must be >= 0, got {frame}")
    return Path(root) / video_id / f"{frame:05d}{SUFFIX}"


def write_pseudo_gt(root: str | Path, video_id: str, frame: int, saliency: np.ndarray) -> Path:
    """Write ``saliency`` (H, W): float in [0, 1] (scaled by 255, rounded) or uint8, atomically."""
    from PIL import Image

    arr = np.asarray(saliency)
    if arr.ndim != 2:
        raise ValueError(f"a pseudo-GT map must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    path = pseudo_gt_path(root, video_id, frame)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return path


def read_pseudo_gt(path: str | Path) -> np.ndarray:
    """A pseudo-GT map as (H, W) float32 in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except OSError as exc:
        raise InputError(f"{path}: unreadable pseudo-GT map ({exc})") from None


def available_frames(root: str | Path, video_id: str) -> set[int]:
    """0-based frame indices of ``video_id`` that have a pseudo-GT map (empty if the folder is missing)."""
    folder = Path(root) / video_id
    if not folder.is_dir():
        return set()
    out = set()
    for p in folder.iterdir():
        if p.suffix == SUFFIX and p.stem.isdigit() and not p.name.startswith("."):
            out.add(int(p.stem))
    return out
