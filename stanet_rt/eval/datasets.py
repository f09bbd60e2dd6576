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
        entries.append(VideoEntry(parts[0], int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0))
    return entries


def read_mat_variable(path: Path, name: str = "eyeMap") -> np.ndarray:
    """Read ``name`` from a MATLAB .mat file (v5 via scipy, v7.3 via h5py)."""
    import scipy.io

    try:
        return np.asarray(scipy.io.loadmat(str(path))[name], dtype=np.float64)
    except NotImplementedError:  # v7.3 = HDF5
        import h5py

        with h5py.File(path, "r") as fh:
            return np.asarray(fh[name], dtype=np.float64).T  # MATLAB stores column-major
    except KeyError:
        raise InputError(f"{path}: no variable {name!r}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable .mat file ({exc})") from None


def read_gray(path: Path) -> np.ndarray:
    """An 8-bit image as float in [0, 1] (im2double); channel 1 if it has colour."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im, dtype=np.float64) / 255.0
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

    def shuffle_union(self) -> np.ndarray | None:
        """createShuffmap1.m: binary union of every frame's fixations of this video (None if none)."""
        union = None
        for frame in range(1, self.entry.n_frames + 1):
            path = self.fixation_path(frame)
            if path.exists():
                fix = self.fixations(frame) > 0
                union = fix if union is None else (union | fix) if union.shape == fix.shape else union
        return union
