"""Pseudo-GT maths (spec section 5) in numpy/scipy: the original's Matlab scripts with their bugs fixed.

Pipeline pieces, each a small pure function on (H, W) maps in one square "canvas" space (the frame
cache's pixel grid; the original used 356 x 356):

* :func:`normalize` - N(M) = (M - min) / (max - min), unchanged if constant (``MatrixNormalization.m``).
* :func:`confidence_fusion` - N((sum_i p_i N(M_i) + 1e-4) / (sum_i p_i + 1e-4)) over the maps present.
  Used for BOTH the coarse S/SA/ST fusion (``Coarse_Fine_crop.m``) and the final fusion of all branches
  (``CAMFuse.m``, whose denominator lacked its ``+`` operators: here it is the intended sum).
* :func:`box_from_map` - the box of the pixels where F > 2 mean(F); :func:`crop` cuts it out.
* :func:`recover` - a fine CAM resized to its box and pasted into a zero canvas (``RecoverCAM*.m``,
  which skipped 2 class folders through ``dir()`` indexing; here every frame of every class is
  recovered because frames are addressed by (video, frame), not by directory position).
* :func:`temporal_smooth` - a CENTRED window t-2..t+2 (edge frames average the neighbours that exist),
  then N and the 3 x mean threshold. The original ``CAMsmooth.m`` was a recursive filter with a 2-frame
  look-ahead in which the frame's own CAM entered only through the recursion (spec 5.5); we fix it.
* :func:`fuse_video` - per-frame final fusion of one video's branch maps; :func:`write_video_pseudo_gt`
  writes the 8-bit PNGs (layout of ``training.data.pseudo_gt``) and :class:`ProbabilityTable` the CSV of
  per-branch class probabilities each map used (the list files the original never shipped a writer for).

Imports numpy, scipy and ``training.data.{pseudo_gt,atomic}`` only; must not import torch or models.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from stanet_rt.training.data.pseudo_gt import write_pseudo_gt

from stanet_rt.fileio import write_text

FUSION_EPS = 1e-4  # the Matlab scripts' "+ 1e-4" in numerator and denominator
BOX_FACTOR = 2.0  # box = pixels where F > 2 * mean(F)
SMOOTH_RADIUS = 2  # centred window t-2 .. t+2
SMOOTH_FACTOR = 3.0  # zero pixels below 3 * mean after smoothing


def normalize(m: np.ndarray) -> np.ndarray:
    """Min-max normalise a map to [0, 1] (float32); a constant map is returned unchanged (as Matlab)."""
    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo <= 0.0:
        return m.copy()
    return (m - lo) / (hi - lo)


def confidence_fusion(maps: Sequence[np.ndarray | None], probs: Sequence[float]) -> np.ndarray | None:
    """Confidence-weighted fusion of maps (H, W) with class probabilities ``probs`` (same order).

    ``None`` entries (a branch that misclassified the frame, so it exported no CAM) are left out of
    both sums. Returns N((sum p_i N(M_i) + 1e-4) / (sum p_i + 1e-4)) as (H, W) float32 in [0, 1], or
    None when no map is present.
    """
    if len(maps) != len(probs):
        raise ValueError(f"{len(maps)} maps but {len(probs)} probabilities")
    num: np.ndarray | None = None
    den = 0.0
    for m, p in zip(maps, probs, strict=True):
        if m is None:
            continue
        term = float(p) * normalize(m)
        if num is None:
            num = term
        else:
            if term.shape != num.shape:
                raise ValueError(f"maps of different shapes {num.shape} and {term.shape}")
            num = num + term
        den += float(p)
    if num is None:
        return None
    return normalize((num + FUSION_EPS) / (den + FUSION_EPS))


@dataclass(frozen=True)
class Box:
    """Inclusive 0-based pixel box ``[top, bottom] x [left, right]`` in a map's pixel grid."""

    top: int
    bottom: int
    left: int
    right: int

    def __post_init__(self) -> None:
        if self.bottom < self.top or self.right < self.left or self.top < 0 or self.left < 0:
            raise ValueError(f"invalid box {self}")

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    def as_array(self) -> np.ndarray:
        """(4,) int32 ``[top, bottom, left, right]``."""
        return np.array([self.top, self.bottom, self.left, self.right], dtype=np.int32)

    @classmethod
    def from_array(cls, a: Sequence[int] | np.ndarray) -> Box:
        top, bottom, left, right = (int(v) for v in a)
        return cls(top, bottom, left, right)

    @classmethod
    def full(cls, size: int) -> Box:
        """The whole (size x size) canvas."""
        return cls(0, size - 1, 0, size - 1)


def box_from_map(fused: np.ndarray, factor: float = BOX_FACTOR) -> Box | None:
    """Bounding box of the pixels where ``fused`` > ``factor`` x its mean; None if no pixel passes."""
    fused = np.asarray(fused, dtype=np.float32)
    rows, cols = np.nonzero(fused > factor * float(fused.mean()))
    if rows.size == 0:
        return None
    return Box(int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The box of an (H, W) or (H, W, C) array (a view)."""
    if box.bottom >= image.shape[0] or box.right >= image.shape[1]:
        raise ValueError(f"box {box} outside an image of shape {image.shape[:2]}")
    return image[box.top : box.bottom + 1, box.left : box.right + 1]


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) or (H, W, C) array to ``size`` = (h, w), half-pixel centres (as
    cv2 / PIL / ``F.interpolate(align_corners=False)``), edges clamped. Returns float32."""
    image = np.asarray(image, dtype=np.float32)
    h_in, w_in = image.shape[:2]
    h, w = size
    if (h_in, w_in) == (h, w):
        return image.copy()
    ys = np.clip((np.arange(h, dtype=np.float64) + 0.5) * h_in / h - 0.5, 0, h_in - 1)
    xs = np.clip((np.arange(w, dtype=np.float64) + 0.5) * w_in / w - 0.5, 0, w_in - 1)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    if image.ndim == 2:
        return ndimage.map_coordinates(image, [yy, xx], order=1, mode="nearest").astype(np.float32)
    channels = [
        ndimage.map_coordinates(image[..., c], [yy, xx], order=1, mode="nearest")
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def recover(cam: np.ndarray, box: Box, canvas: int) -> np.ndarray:
    """Paste a fine CAM (h, w) (any size: it is resized to the box) into a zero (canvas, canvas) map."""
    if box.bottom >= canvas or box.right >= canvas:
        raise ValueError(f"box {box} outside a {canvas} x {canvas} canvas")
    out = np.zeros((canvas, canvas), dtype=np.float32)
    out[box.top : box.bottom + 1, box.left : box.right + 1] = resize_bilinear(cam, (box.height, box.width))
    return out


def threshold_map(m: np.ndarray, factor: float = SMOOTH_FACTOR) -> np.ndarray:
    """Zero every pixel below ``factor`` x the map's mean (no renormalisation, as ``CAMsmooth.m``)."""
    m = np.asarray(m, dtype=np.float32)
    return np.where(m < factor * float(m.mean()), np.float32(0.0), m)


def temporal_smooth(
    maps: Sequence[np.ndarray | None],
    radius: int = SMOOTH_RADIUS,
    factor: float = SMOOTH_FACTOR,
    require_centre: bool = True,
) -> list[np.ndarray | None]:
    """Centred temporal smoothing of one video's per-frame maps (T entries of (H, W) or None).

    S_t = N(mean of N(M_k) over the k in t-radius .. t+radius that exist), then pixels below
    ``factor`` x mean(S_t) are zeroed. Edge frames use the neighbours that exist. With
    ``require_centre`` a frame whose own map is missing (the branch misclassified it) stays None,
    keeping the original's "CAMs only for correctly classified frames" selection.

    Deliberate fix: ``CAMsmooth.m`` computed N((S_{t-4} + S_{t-3} + S_{t-2} + S_{t-1} + f_{t+2}) / 5),
    a recursive filter with look-ahead (spec 5.5); the intended centred average is used here.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    normed = [None if m is None else normalize(m) for m in maps]
    out: list[np.ndarray | None] = []
    for t in range(len(normed)):
        if require_centre and normed[t] is None:
            out.append(None)
            continue
        window = [normed[k] for k in range(max(0, t - radius), min(len(normed), t + radius + 1))]
        present = [m for m in window if m is not None]
        if not present:
            out.append(None)
            continue
        out.append(threshold_map(normalize(np.mean(present, axis=0)), factor))
    return out


@dataclass
class BranchMaps:
    """One branch's maps of one video: ``maps`` (T, H, W) float32 (rows with ``valid`` False are
    unused), ``probs`` (T,) class probability of the tagged class, ``valid`` (T,) bool."""

    maps: np.ndarray
    probs: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        t = len(self.valid)
        if len(self.maps) != t or len(self.probs) != t:
            raise ValueError(f"branch arrays of different lengths {len(self.maps)}, {len(self.probs)}, {t}")

    def get(self, t: int) -> np.ndarray | None:
        return self.maps[t] if bool(self.valid[t]) else None

    def as_list(self) -> list[np.ndarray | None]:
        return [self.get(t) for t in range(len(self.valid))]

    def smoothed(self, radius: int = SMOOTH_RADIUS, factor: float = SMOOTH_FACTOR) -> BranchMaps:
        """This branch after :func:`temporal_smooth` (same probabilities and validity)."""
        sm = temporal_smooth(self.as_list(), radius, factor)
        maps = np.stack([m if m is not None else np.zeros(self.maps.shape[1:], np.float32) for m in sm])
        return BranchMaps(maps, self.probs, self.valid.copy())


def fuse_video(
    branches: Mapping[str, BranchMaps], min_maps: int = 1
) -> tuple[list[np.ndarray | None], list[dict[str, float]]]:
    """Final confidence-weighted fusion of every frame of one video (``CAMFuse.m`` with the fixed
    denominator). Returns per frame the pseudo-GT (H, W) in [0, 1] (None when fewer than ``min_maps``
    branches have a map for it) and the {branch: probability} it used."""
    if not branches:
        raise ValueError("no branches to fuse")
    lengths = {len(b.valid) for b in branches.values()}
    if len(lengths) != 1:
        raise ValueError(f"branches cover different frame counts: {sorted(lengths)}")
    (n_frames,) = lengths
    maps_out: list[np.ndarray | None] = []
    used_out: list[dict[str, float]] = []
    for t in range(n_frames):
        present = {name: b for name, b in branches.items() if bool(b.valid[t])}
        used = {name: float(b.probs[t]) for name, b in present.items()}
        if len(present) < max(1, min_maps):
            maps_out.append(None)
            used_out.append({})
            continue
        maps_out.append(confidence_fusion([b.maps[t] for b in present.values()], list(used.values())))
        used_out.append(used)
    return maps_out, used_out


class ProbabilityTable:
    """The CSV of the class probabilities every pseudo-GT map used: one row per written frame,
    columns ``video_id, frame, n_maps, p_<branch>...`` (empty where the branch had no map)."""

    def __init__(self, branches: Sequence[str]) -> None:
        self.branches = list(branches)
        self.rows: list[list[str]] = []

    def add(self, video_id: str, frame: int, used: Mapping[str, float]) -> None:
        unknown = set(used) - set(self.branches)
        if unknown:
            raise ValueError(f"unknown branches {sorted(unknown)}")
        probs = [f"{used[b]:.6f}" if b in used else "" for b in self.branches]
        self.rows.append([video_id, str(frame), str(len(used)), *probs])

    def write(self, path: str | Path) -> Path:
        """Write the table atomically (rows sorted by video and frame)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["video_id", "frame", "n_maps", *(f"p_{b}" for b in self.branches)])
        writer.writerows(sorted(self.rows, key=lambda r: (r[0], int(r[1]))))
        return write_text(path, buf.getvalue())


def read_probability_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a :class:`ProbabilityTable` CSV as dicts (strings, as written)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_video_pseudo_gt(
    root: str | Path,
    video_id: str,
    branches: Mapping[str, BranchMaps],
    table: ProbabilityTable,
    min_maps: int = 1,
    refine: Callable[[list[np.ndarray | None]], list[np.ndarray | None]] | None = None,
) -> int:
    """Fuse one video's branches, write every frame's pseudo-GT as an 8-bit PNG under ``root`` and add
    its row to ``table``. ``refine`` maps the fused per-frame maps to the ones written (same length,
    e.g. ``training.av_sync.apply_sync``). Returns the number of frames written."""
    maps, used = fuse_video(branches, min_maps)
    if refine is not None:
        maps = refine(maps)
        if len(maps) != len(used):
            raise ValueError(f"refine returned {len(maps)} maps for {len(used)} frames")
    written = 0
    for t, (m, u) in enumerate(zip(maps, used, strict=True)):
        if m is None:
            continue
        write_pseudo_gt(root, video_id, t, m)
        table.add(video_id, t, u)
        written += 1
    return written
