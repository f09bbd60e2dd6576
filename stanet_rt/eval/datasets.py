"""Readers for the STAViS evaluation layout (metrics-and-peers.md 1.1):

    <root>/annotations/<DB>/<video>/fixMap_%05d.mat    (variable ``eyeMap``, binary fixations, 1-based)
    <root>/annotations/<DB>/<video>/maps/eyeMap_%05d.jpg  (8-bit density map)
    <root>/fold_lists/<DB>_list_test_<split>_fps.txt   (``video n_frames fps`` per line;
                                                         DIEM: one list ``DIEM_list_test_fps.txt``)

``.mat`` files are read with scipy (v5) or h5py (v7.3). Imports numpy, scipy, h5py, pillow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stanet_rt.errors import InputError

DATASETS = ("AVAD", "DIEM", "SumMe", "ETMD_av", "Coutrot_db1", "Coutrot_db2")


@dataclass(frozen=True)
class VideoEntry:
    """One line of a fold list."""

    name: str
    n_frames: int
    fps: float


def fold_list_path(root: Path, dataset: str, split: int) -> Path:
    folds = Path(root) / "fold_lists"
    if dataset == "DIEM" and (folds / "DIEM_list_test_fps.txt").exists():
        return folds / "DIEM_list_test_fps.txt"  # DIEM uses one list for all three splits
    return folds / f"{dataset}_list_test_{split}_fps.txt"


def read_fold_list(path: Path) -> list[VideoEntry]:
    if not path.is_file():
        raise InputError(f"{path}: fold list not found")
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise InputError(f"{path}:{lineno}: expected 'video n_frames fps', got {line!r}")
        try:
            entries.append(VideoEntry(parts[0], int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0))
        except ValueError:
            raise InputError(f"{path}:{lineno}: expected 'video n_frames fps' with numbers, got {line!r}") from None
    return entries


def read_mat_variable(path: Path, name: str = "eyeMap") -> np.ndarray:
    """Read ``name`` from a MATLAB .mat file (v5 via scipy, v7.3 via h5py). Any unreadable, truncated or
    empty file, or a missing variable, is an :class:`InputError` naming the file."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: .mat file not found")
    try:
        data = scipy.io.loadmat(str(path), variable_names=[name])
    except NotImplementedError:  # scipy's answer for a v7.3 (HDF5) .mat: h5py reads those
        return _read_v73_variable(path, name)
    except Exception as exc:  # MatReadError, ValueError, zlib / struct errors of a damaged file ...
        raise InputError(f"{path}: unreadable .mat file ({exc})") from None
    if name not in data:
        raise InputError(f"{path}: no variable {name!r}")
    try:
        return np.asarray(data[name], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: variable {name!r} is not a numeric array ({exc})") from None


def _read_v73_variable(path: Path, name: str) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            if name not in fh:
                raise InputError(f"{path}: no variable {name!r}")
            return np.asarray(fh[name], dtype=np.float64).T  # MATLAB stores column-major
    except InputError:
        raise
    except Exception as exc:  # OSError of a truncated HDF5 file, TypeError of a group / struct, ...
        raise InputError(f"{path}: unreadable .mat file ({exc})") from None


# im2double's divisor per Pillow mode: uint8 / 255, uint16 / 65535, logical 0/1, floats unchanged
_IM2DOUBLE = {"1": 1.0, "L": 255.0, "LA": 255.0, "P": 255.0, "PA": 255.0, "RGB": 255.0, "RGBA": 255.0,
              "RGBX": 255.0, "CMYK": 255.0, "YCbCr": 255.0, "LAB": 255.0, "HSV": 255.0,
              "I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "F": 1.0}


def read_gray(path: Path) -> np.ndarray:
    """An image as float (im2double: 8-bit / 255, 16-bit / 65535); channel 1 if it has colour.
    An unreadable image is an :class:`InputError` naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
            raw = np.asarray(im)
    except Exception as exc:  # UnidentifiedImageError, truncated data (OSError), decompression bombs ...
        raise InputError(f"{path}: unreadable image ({exc})") from None
    if mode in _IM2DOUBLE:
        divisor = _IM2DOUBLE[mode]
    elif mode == "I":  # 32-bit integer mode; Pillow uses it for 16-bit PNGs too: scale as MATLAB's uint16
        divisor = 65535.0
    else:
        divisor = 255.0
    arr = raw.astype(np.float64) / divisor
    return arr[..., 0] if arr.ndim == 3 else arr


class VideoGroundTruth:
    """Ground truth of one video: fixation maps and density maps by 1-based frame index."""

    def __init__(self, root: Path, dataset: str, entry: VideoEntry) -> None:
        self.dir = Path(root) / "annotations" / dataset / entry.name
        self.entry = entry
        if not self.dir.is_dir():
            raise InputError(f"{self.dir}: annotation folder not found")

    def fixation_path(self, frame: int) -> Path:
        return self.dir / f"fixMap_{frame:05d}.mat"

    def density_path(self, frame: int) -> Path:
        return self.dir / "maps" / f"eyeMap_{frame:05d}.jpg"

    def fixations(self, frame: int) -> np.ndarray:
        return read_mat_variable(self.fixation_path(frame))

    def density(self, frame: int) -> np.ndarray:
        return read_gray(self.density_path(frame))

    def shuffle_union(self, unreadable: list[Path] | None = None) -> np.ndarray | None:
        """createShuffmap1.m: binary union of every frame's fixations of this video (None if none).

        With ``unreadable`` (a list) an unreadable fixMap is left out of the union and its path appended
        (MATLAB would stop the whole run); without it the :class:`InputError` propagates."""
        union = None
        for frame in range(1, self.entry.n_frames + 1):
            path = self.fixation_path(frame)
            if path.exists():
                try:
                    fix = self.fixations(frame) > 0
                except InputError:
                    if unreadable is None:
                        raise
                    unreadable.append(path)
                    continue
                union = fix if union is None else (union | fix) if union.shape == fix.shape else union
        return union
