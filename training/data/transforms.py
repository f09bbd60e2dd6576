"""Per-sample image transforms of the training datasets (torch): square resize, one shared random
crop and colour jitter for every frame (and map) of a sample, ImageNet normalisation.

Deliberate difference from the original: ST, S+ and SA+ drew an independent random crop for each
frame of a temporal group, so the frames were not aligned (spec 9.1 item 15). Here the parameters are
drawn once per sample (:func:`sample_augment`) and applied to all its frames and pseudo-GT maps.

Imports torch and numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Augment:
    """Training augmentation. ``crop_scale``: side of the random square crop as a fraction of the
    frame side (1, 1 = no crop; the original S: 256 out of 300 = 0.85); ``brightness``, ``contrast``,
    ``saturation``: jitter strengths (factors drawn from [1 - s, 1 + s], as torchvision's ColorJitter);
    ``hflip``: probability of a horizontal flip (the original never flipped)."""

    crop_scale: tuple[float, float] = (0.8, 1.0)
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hflip: float = 0.0


@dataclass(frozen=True)
class AugmentParams:
    """One draw of :class:`Augment`: crop box (top, left, side) as fractions of the frame side,
    jitter factors, flip. The identity is ``AugmentParams()``."""

    top: float = 0.0
    left: float = 0.0
    side: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    flip: bool = False


def sample_augment(rng: np.random.Generator, augment: Augment | None) -> AugmentParams:
    """Draw the parameters shared by every frame of one sample (identity when ``augment`` is None)."""
    if augment is None:
        return AugmentParams()
    side = float(rng.uniform(*augment.crop_scale))
    top, left = (float(v) for v in rng.uniform(0.0, 1.0 - side, size=2))

    def factor(strength: float) -> float:
        return float(rng.uniform(max(0.0, 1 - strength), 1 + strength)) if strength > 0 else 1.0

    return AugmentParams(
        top,
        left,
        side,
        factor(augment.brightness),
        factor(augment.contrast),
        factor(augment.saturation),
        bool(rng.random() < augment.hflip),
    )


def to_float(frames: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def geometry(x: Tensor, params: AugmentParams, size: int) -> Tensor:
    """Crop the box of ``params`` (fractions, so maps of any resolution get the same region), flip,
    and resize to ``size`` x ``size`` (bilinear, antialiased when shrinking). (N, C, H, W) -> (N, C, S, S)."""
    h, w = x.shape[-2:]
    top, left = round(params.top * h), round(params.left * w)
    ch, cw = max(1, round(params.side * h)), max(1, round(params.side * w))
    x = x[..., top : top + ch, left : left + cw]
    if params.flip:
        x = x.flip(-1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x,
            size=(size, size),
            mode="bilinear",
            align_corners=False,
            antialias=bool(x.shape[-1] > size or x.shape[-2] > size),
        )
    return x


def colour(x: Tensor, params: AugmentParams) -> Tensor:
    """Brightness, contrast, saturation jitter of (N, 3, H, W) in [0, 1] (torchvision's formulas:
    contrast blends with the mean grey of each image, saturation with its grey version)."""
    if params.brightness != 1.0:
        x = x * params.brightness
    grey_weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    if params.contrast != 1.0:
        mean = (x * grey_weights).sum(1, keepdim=True).mean((-2, -1), keepdim=True)
        x = mean + params.contrast * (x - mean)
    if params.saturation != 1.0:
        grey = (x * grey_weights).sum(1, keepdim=True)
        x = grey + params.saturation * (x - grey)
    return x.clamp_(0.0, 1.0)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """(N, 3, H, W) in [0, 1] -> (x - mean) / std per channel."""
    m = x.new_tensor(mean).view(1, 3, 1, 1)
    s = x.new_tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


def prepare_frames(
    frames: np.ndarray, params: AugmentParams, size: int, mean: Sequence[float], std: Sequence[float]
) -> Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) float32, cropped, jittered and normalised alike."""
    return normalize(colour(geometry(to_float(frames), params, size), params), mean, std)


def prepare_maps(maps: Sequence[np.ndarray], params: AugmentParams, size: int) -> Tensor:
    """Saliency maps, each (h, w) float in [0, 1] (any resolution) -> (N, 1, size, size) float32 with
    the same crop / flip as the frames (no colour jitter)."""
    out = [
        geometry(torch.from_numpy(np.asarray(m, dtype=np.float32))[None, None], params, size) for m in maps
    ]
    return torch.cat(out).clamp_(0.0, 1.0)
