"""Rasterising the synthetic clips: a cluttered background, then the class objects frame by frame.

Shapes are drawn from signed distance functions with a one-pixel anti-aliased edge, each scaled so
that every shape has about the area of a disc of radius side / 2 (no class is "bigger"). The
background is a muted colour gradient with static clutter (grey-ish ellipses and bars that belong to
no class); every frame gets mild sensor noise. An object's brightness rises with its pulse.

Imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from stanet_rt.training.data.synth_classes import SynthClass
from stanet_rt.training.data.synth_scene import ObjectTrack

_SQRT_PI = float(np.sqrt(np.pi))


def signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, half: float) -> np.ndarray:
    """Approximate signed distance (pixels, < 0 inside) of the points (dx, dy) relative to the centre
    of a ``shape`` whose nominal side is 2 * ``half``."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return np.hypot(dx, dy) - half
    if shape == "square":
        return np.maximum(ax, ay) - half * _SQRT_PI / 2
    if shape == "diamond":
        return (ax + ay - half * np.sqrt(np.pi / 2)) / np.sqrt(2)
    if shape == "triangle":  # equilateral, pointing up (image y grows downwards)
        inradius = half * np.sqrt(np.pi / (3 * np.sqrt(3)))
        return np.maximum.reduce([dy, 0.866 * dx - 0.5 * dy, -0.866 * dx - 0.5 * dy]) - inradius
    if shape == "ring":
        return np.abs(np.hypot(dx, dy) - 0.8 * half) - 0.32 * half
    if shape == "cross":
        arm, width = 1.05 * half, 0.38 * half
        return np.minimum(np.maximum(ax - arm, ay - width), np.maximum(ax - width, ay - arm))
    if shape == "halfdisc":  # dome up, flat edge below the centre
        r = 1.3 * half
        base = dy - 0.4 * r
        return np.maximum(np.hypot(dx, base) - r, base)
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class Texture:
    """A pattern on an object, in its own coordinates (it moves and scales with it): ``kind`` "stripes"
    or "checker", ``period`` as a fraction of the object's side, ``angle`` radians, ``depth``: how much
    darker the dark parts are (0-1)."""

    kind: str
    period: float
    angle: float
    depth: float = 0.45

    def shade(self, dx: np.ndarray, dy: np.ndarray, half: float) -> np.ndarray:
        """Brightness factor (same shape as dx) in [1 - depth, 1] at the object-relative points."""
        period = max(self.period * 2 * half, 2.0)
        u = dx * np.cos(self.angle) + dy * np.sin(self.angle)
        dark = np.sin(2 * np.pi * u / period) > 0
        if self.kind == "checker":
            v = -dx * np.sin(self.angle) + dy * np.cos(self.angle)
            dark = dark ^ (np.sin(2 * np.pi * v / period) > 0)
        elif self.kind != "stripes":
            raise ValueError(f"unknown texture {self.kind!r}")
        return 1.0 - self.depth * dark.astype(np.float32)


def paint(
    canvas: np.ndarray,
    shape: str,
    cx: float,
    cy: float,
    half: float,
    rgb: np.ndarray,
    alpha: float = 1.0,
    texture: Texture | None = None,
) -> None:
    """Blend a ``shape`` of colour ``rgb`` (3,) float 0-255 (patterned by ``texture``) into ``canvas``
    (H, W, 3) float32 in place."""
    h, w = canvas.shape[:2]
    reach = 1.45 * half + 2
    x0, x1 = max(0, int(cx - reach)), min(w, int(np.ceil(cx + reach)) + 1)
    y0, y1 = max(0, int(cy - reach)), min(h, int(np.ceil(cy + reach)) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    dx, dy = np.broadcast_arrays(dx, dy)
    cover = alpha * np.clip(0.5 - signed_distance(shape, dx, dy, half), 0.0, 1.0)[..., None]
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - cover
    region += cover * (rgb if texture is None else texture.shade(dx, dy, half)[..., None] * rgb)


def background(rng: np.random.Generator, size: int, clutter: int) -> np.ndarray:
    """(size, size, 3) float32 0-255: a muted two-colour gradient plus ``clutter`` static distractor
    shapes (rotated ellipses and bars in low-saturation colours)."""
    a, b = rng.uniform(50, 170, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    ramp = np.clip(0.5 + (xs - 0.5) * np.cos(angle) + (ys - 0.5) * np.sin(angle), 0, 1)[..., None]
    canvas = (a * (1 - ramp) + b * ramp).astype(np.float32)
    for _ in range(clutter):
        grey = rng.uniform(60, 190) + rng.uniform(-18, 18, size=3)
        cx, cy = rng.uniform(0, size, size=2)
        theta = rng.uniform(0, np.pi)
        bar = bool(rng.random() < 0.5)
        if bar:  # half length, half width
            ra, rb = rng.uniform(0.1, 0.3) * size, rng.uniform(0.006, 0.02) * size + 0.6
        else:  # semi-axes
            ra, rb = rng.uniform(0.03, 0.15, size=2) * size
        _paint_ellipse_or_bar(canvas, cx, cy, ra, rb, theta, grey, rng.uniform(0.5, 0.9), bar)
    return canvas


def _paint_ellipse_or_bar(
    canvas: np.ndarray,
    cx: float,
    cy: float,
    ra: float,
    rb: float,
    theta: float,
    rgb: np.ndarray,
    alpha: float,
    bar: bool,
) -> None:
    size = canvas.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    u = (xs - cx) * np.cos(theta) + (ys - cy) * np.sin(theta)
    v = -(xs - cx) * np.sin(theta) + (ys - cy) * np.cos(theta)
    # a bar is a rotated rectangle; the ellipse's distance is approximated by its normalised radius
    # scaled by the minor semi-axis
    d = np.maximum(np.abs(u) - ra, np.abs(v) - rb) if bar else (np.hypot(u / ra, v / rb) - 1) * min(ra, rb)
    cover = alpha * np.clip(0.5 - d, 0, 1)[..., None]
    canvas *= 1 - cover
    canvas += cover * rgb


def render_frames(
    rng: np.random.Generator,
    back: np.ndarray,
    tracks: Sequence[ObjectTrack],
    classes: Sequence[SynthClass],
    noise: float = 3.0,
    colours: Mapping[int, np.ndarray] | None = None,
    textures: Mapping[int, Texture] | None = None,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8: ``back`` plus the objects (drawn in a random but fixed order),
    brightness x (0.8 + 0.2 pulse), plus Gaussian noise of std ``noise`` (0-255 units). ``colours`` /
    ``textures``: this clip's look of a class index (every object of the class alike); a track with a
    look of its own (``shape``, ``colour``) uses it."""
    n_frames = len(tracks[0].sides)
    order = rng.permutation(len(tracks))
    out = np.empty((n_frames, *back.shape), dtype=np.uint8)
    for i in range(n_frames):
        canvas = back.copy()
        for k in order:
            t = tracks[k]
            own = t.colour is not None
            base = t.colour if own else (colours or {}).get(t.class_index, classes[t.class_index].colour)
            rgb = np.asarray(base, dtype=np.float32) * (0.8 + 0.2 * float(t.pulse[i]))
            paint(
                canvas,
                t.shape if t.shape is not None else classes[t.class_index].shape,
                float(t.centres[i, 0]),
                float(t.centres[i, 1]),
                float(t.sides[i]) / 2,
                np.minimum(rgb, 255.0),
                texture=None if own else (textures or {}).get(t.class_index),
            )
        if noise > 0:
            canvas += rng.normal(0.0, noise, size=canvas.shape).astype(np.float32)
        out[i] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return out
