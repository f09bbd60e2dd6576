"""CAM files: one HDF5 file per exported teacher branch, and the crop boxes of the fine stage.

``<out>/cams/<kind>_<branch>.h5`` (kind: ``coarse``, ``fine``, ``plus``) holds, per video, a group
``<video_id>`` with

* ``cam`` (T, S, S) uint8: the branch's CAM of the tagged class in the S x S canvas (the frame grid of
  the preset; the original's 356 space), scaled so its maximum is 255 (the original wrote
  ``cam / max * 255`` images; every later step min-max normalises again);
* ``prob`` (T,) float32: the softmax probability of the tagged class (the number ``CAMFuse.m`` weighs
  by; the original never shipped the script that wrote it);
* ``valid`` (T,) bool: False where the branch misclassified the frame (no CAM, spec 3.1) or, for fine
  CAMs, where the frame had no crop box.

``<out>/cams/boxes.h5``: per video ``boxes`` (T, 4) int32 ``[top, bottom, left, right]`` (inclusive, in
the canvas) and ``valid`` (T,) bool.

Files are written to a temporary name and renamed, so a file that exists is complete.

Imports numpy, h5py and ``training.pseudo_gt and stanet_rt.fileio``; must not import torch or models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from stanet_rt.training.pseudo_gt import BranchMaps

from stanet_rt.errors import InputError
from stanet_rt.fileio import atomic_path


def to_uint8(cam: np.ndarray) -> np.ndarray:
    """(..., H, W) non-negative CAM(s) -> uint8 with each map's maximum at 255 (all-zero stays 0)."""
    cam = np.asarray(cam, dtype=np.float32)
    peak = cam.reshape(*cam.shape[:-2], -1).max(axis=-1)[..., None, None]
    return np.round(np.clip(cam / np.maximum(peak, 1e-8), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_cams(
    path: str | Path, videos: Mapping[str, BranchMaps], attrs: Mapping[str, Any] | None = None
) -> Path:
    """Write one branch's maps of every video atomically (``maps`` in [0, 1] or any non-negative scale)."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        for video_id, b in videos.items():
            g = f.create_group(video_id)
            g.create_dataset(
                "cam",
                data=to_uint8(b.maps),
                compression="gzip",
                compression_opts=4,
                chunks=(1, *b.maps.shape[1:]),
            )
            g.create_dataset("prob", data=np.asarray(b.probs, dtype=np.float32))
            g.create_dataset("valid", data=np.asarray(b.valid, dtype=bool))
    return path


class CamFile:
    """Read access to a CAM file: ``video(video_id) -> BranchMaps`` (maps float32 in [0, 1])."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: CAM file not found (run the stage that exports it)")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise InputError(f"{self.path}: unreadable CAM file ({exc})") from None

    def __enter__(self) -> CamFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._file.attrs)

    def videos(self) -> list[str]:
        return sorted(self._file.keys())

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._file

    def video(self, video_id: str) -> BranchMaps:
        if video_id not in self._file:
            raise InputError(f"{self.path}: no CAMs for video {video_id!r}")
        g = self._file[video_id]
        return BranchMaps(g["cam"][()].astype(np.float32) / 255.0, g["prob"][()], g["valid"][()].astype(bool))

    def __iter__(self) -> Iterator[tuple[str, BranchMaps]]:
        for video_id in self.videos():
            yield video_id, self.video(video_id)


def write_boxes(path: str | Path, boxes: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write per video (boxes (T, 4) int32, valid (T,) bool) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for video_id, (b, valid) in boxes.items():
            g = f.create_group(video_id)
            g.create_dataset("boxes", data=np.asarray(b, dtype=np.int32))
            g.create_dataset("valid", data=np.asarray(valid, dtype=bool))
    return path


def read_boxes(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per video (boxes (T, 4) int32, valid (T,) bool) from :func:`write_boxes`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: crop boxes not found (run scam-fine after scam-coarse)")
    with h5py.File(path, "r") as f:
        return {k: (f[k]["boxes"][()], f[k]["valid"][()].astype(bool)) for k in f}
