"""Prediction readers: an image folder (``*_<number>.jpg|png``, the number after the last ``_`` is the
1-based frame) or one of our ``.h5`` map files (dataset ``maps`` (N, H, W), frame i+1 = row i).

Both return a mapping frame number -> callable loading the map as float in [0, 1]. Imports numpy,
h5py, pillow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stanet_rt.errors import InputError
from stanet_rt.eval.datasets import read_gray

_NUMBER = re.compile(r"_(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)


def image_folder(folder: Path) -> dict[int, Callable[[], np.ndarray]]:
    frames: dict[int, Callable[[], np.ndarray]] = {}
    for path in Path(folder).iterdir():
        m = _NUMBER.search(path.name)
        if m:
            frames[int(m.group(1))] = lambda p=path: read_gray(p)
    return frames


def h5_maps(path: Path) -> dict[int, Callable[[], np.ndarray]]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: unreadable map file ({exc})") from None
    if "maps" not in fh:
        fh.close()
        raise InputError(f"{path}: no 'maps' dataset")
    maps = np.asarray(fh["maps"], dtype=np.float64)
    fh.close()
    return {i + 1: (lambda a=maps[i]: a) for i in range(maps.shape[0])}


def dataset_folders(root: Path, dataset: str) -> list[Path]:
    """The folders under ``root`` that may hold ``dataset``'s predictions, best first: ``<DB>`` as
    spelled, then ``<db lowercase>`` (what STAViS writes: ``split1_results/avad/``), then any other
    spelling of the name that differs only in case."""
    root = Path(root)
    names = [dataset, dataset.lower()]
    if root.is_dir():
        names += sorted(p.name for p in root.iterdir() if p.name.lower() == dataset.lower())
    return [root / n for n in dict.fromkeys(names)]


def video_predictions(pred_root: Path, dataset: str, video: str) -> dict[int, Callable[[], np.ndarray]]:
    """Find a video's predictions under ``pred_root``: ``<root>/<DB>/<video>/`` (``<DB>`` in any case,
    e.g. STAViS's lowercase ``avad``), ``<root>/<video>/``, ``<root>/<DB>/<video>.h5`` or
    ``<root>/<video>.h5``. Empty dict if none (counted as missing)."""
    root = Path(pred_root)
    folders = dataset_folders(root, dataset)
    for candidate in [f / video for f in folders] + [root / video]:
        if candidate.is_dir():
            return image_folder(candidate)
    for candidate in [f / f"{video}.h5" for f in folders] + [root / f"{video}.h5"]:
        if candidate.is_file():
            return h5_maps(candidate)
    return {}
