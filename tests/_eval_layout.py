"""A miniature of the STAViS evaluation layout, generated for the eval tests (no downloaded data).

    <root>/fold_lists/<DB>_list_test_<split>_fps.txt          ``video n_frames fps`` per line
    <root>/annotations/<DB>/<video>/fixMap_%05d.mat            variable ``eyeMap`` (binary), 1-based
    <root>/annotations/<DB>/<video>/maps/eyeMap_%05d.jpg       8-bit grey density map

plus writers for prediction folders / ``.h5`` map files and a MATLAB v7.3 (HDF5) ``.mat`` writer.
Imports numpy, scipy, h5py and pillow only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from PIL import Image

GT_SIZE = (18, 32)  # (H, W) of the miniature's ground truth
PRED_SIZE = (9, 16)


def gaussian_blob(shape: tuple[int, int], centre: tuple[float, float], sigma: float) -> np.ndarray:
    """(H, W) float64 Gaussian with peak 1 at ``centre`` (row, col), ``sigma`` in pixels."""
    h, w = shape
    y = np.arange(h)[:, None] - centre[0]
    x = np.arange(w)[None, :] - centre[1]
    return np.exp(-(y**2 + x**2) / (2 * sigma**2))


def write_v73_mat(path: Path, name: str, array: np.ndarray) -> Path:
    """A MATLAB v7.3 .mat file (HDF5 with the 128-byte MATLAB header in a 512-byte user block):
    MATLAB stores column-major, so an (H, W) matrix is the HDF5 dataset (W, H)."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        ds = fh.create_dataset(name, data=np.ascontiguousarray(np.asarray(array, dtype=np.float64).T))
        ds.attrs["MATLAB_class"] = np.bytes_(b"double")
    header = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Wed Nov 25 08:00:00 2026 "
              b"HDF5 schema 1.00 .")
    block = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(block)
    return path


def write_fold_list(root: Path, dataset: str, split: int | None, entries: Iterable[tuple[str, int]]) -> Path:
    """``split=None`` writes DIEM's single list ``<DB>_list_test_fps.txt``."""
    folds = Path(root) / "fold_lists"
    folds.mkdir(parents=True, exist_ok=True)
    name = f"{dataset}_list_test_fps.txt" if split is None else f"{dataset}_list_test_{split}_fps.txt"
    path = folds / name
    path.write_text("".join(f"{video} {n} 25\n" for video, n in entries))
    return path


def fixation_map(shape: tuple[int, int], points: Iterable[tuple[int, int]]) -> np.ndarray:
    fix = np.zeros(shape, dtype=np.uint8)
    for r, c in points:
        fix[r, c] = 1
    return fix


def write_video_gt(root: Path, dataset: str, video: str, fixations: list[np.ndarray],
                   densities: list[np.ndarray]) -> Path:
    """Frame i + 1 gets ``fixations[i]`` (binary (H, W)) and ``densities[i]`` ((H, W) in [0, 1])."""
    folder = Path(root) / "annotations" / dataset / video
    (folder / "maps").mkdir(parents=True, exist_ok=True)
    for i, (fix, dens) in enumerate(zip(fixations, densities, strict=True), start=1):
        scipy.io.savemat(folder / f"fixMap_{i:05d}.mat", {"eyeMap": np.asarray(fix, dtype=np.uint8)})
        Image.fromarray(np.round(255 * np.clip(dens, 0, 1)).astype(np.uint8)).save(
            folder / "maps" / f"eyeMap_{i:05d}.jpg", quality=95)
    return folder


def random_fixations(rng: np.random.Generator, shape: tuple[int, int], n: int, centre: tuple[float, float],
                     spread: float) -> np.ndarray:
    """Binary (H, W) map with up to ``n`` fixated pixels scattered around ``centre``."""
    rows = np.clip(np.round(rng.normal(centre[0], spread, n)), 0, shape[0] - 1).astype(int)
    cols = np.clip(np.round(rng.normal(centre[1], spread, n)), 0, shape[1] - 1).astype(int)
    fix = np.zeros(shape, dtype=np.uint8)
    fix[rows, cols] = 1
    return fix


def make_video(root: Path, dataset: str, video: str, n_frames: int, seed: int,
               shape: tuple[int, int] = GT_SIZE) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A video whose attention follows a blob moving left to right; returns (fixations, densities)."""
    rng = np.random.default_rng(seed)
    fixes, dens = [], []
    for t in range(n_frames):
        centre = (shape[0] / 2, shape[1] * (0.3 + 0.4 * t / max(n_frames - 1, 1)))
        fixes.append(random_fixations(rng, shape, 6, centre, 2.0))
        dens.append(gaussian_blob(shape, centre, 3.0))
    write_video_gt(root, dataset, video, fixes, dens)
    return fixes, dens


def write_prediction_images(folder: Path, maps: Iterable[np.ndarray], start: int = 1,
                            pattern: str = "pred_sal_{:06d}.jpg") -> Path:
    """Maps in [0, 1] as 8-bit images named with ``pattern`` from frame ``start``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(maps, start=start):
        Image.fromarray(np.round(255 * np.clip(m, 0, 1)).astype(np.uint8)).save(folder / pattern.format(i))
    return folder


def write_prediction_h5(path: Path, maps: np.ndarray) -> Path:
    """Our runtime's map file: ``maps`` (N, H, W) float16, ``pts`` (N,) seconds at 25 fps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    maps = np.asarray(maps)
    with h5py.File(path, "w") as fh:
        fh.create_dataset("maps", data=maps.astype(np.float16))
        fh.create_dataset("pts", data=np.arange(len(maps)) / 25.0)
        fh.attrs["frames"] = len(maps)
    return path


def predicted_blobs(n_frames: int, shape: tuple[int, int] = PRED_SIZE,
                    offset: float = 0.0) -> list[np.ndarray]:
    """Predictions at ``shape`` following the same moving blob as :func:`make_video` (plus ``offset``
    columns, as a fraction of the width): a good but imperfect model."""
    out = []
    for t in range(n_frames):
        centre = (shape[0] / 2, shape[1] * (0.3 + offset + 0.4 * t / max(n_frames - 1, 1)))
        out.append(gaussian_blob(shape, centre, 1.5))
    return out
