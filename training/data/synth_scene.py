"""Scene of one synthetic clip: the objects' tracks (where, how big, how they pulse) and the
evaluation-only ground truth derived from them.

Objects (each a :class:`ObjectTrack`):
* the **source**: an object of the clip's class, the only one whose sound is in the audio; its visual
  pulse (scale +``pulse_depth``, brightness) is the audio's syllable envelope sampled at the frame
  times, so it pulses exactly when it sounds;
* a **same-class distractor** (with probability ``distractor_prob``): same shape and colour, silent;
  it either pulses on its own, independent envelope (out of sync with the audio; probability
  ``async_prob``) or not at all, so only the audio tells which of the two is the source;
* an **other-class distractor** (probability ``other_prob``): an object of another class, silent,
  pulsing on its own envelope with probability ``async_prob``;
* ``salient`` distractors (0 to ``salient`` of them, :func:`add_salient`): objects of no class in a
  bright, fully saturated colour, fast and always pulsing on their own rhythm, silent: a map that
  marks what is colourful or what moves points at them.
Each object drifts at a random constant velocity, bouncing off the frame borders; start positions
are uniform in the frame (the source is not central on average) and do not overlap.

Ground truth (:func:`density_maps`, documented model): on event frames (the source sounds) one
isotropic Gaussian at the source centre with sigma = ``sigma_scale`` x its current side; on silent
frames an equal-mass mixture of such Gaussians over all visible objects (no centre prior). Each map
is scaled to max 1. :func:`sample_fixations` draws fixations from the normalised density.

Imports numpy and ``training.data.synth_audio`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from stanet_rt.training.data.synth_audio import syllable_envelope

ROLES = ("source", "same_class", "other", "salient")


@dataclass(frozen=True, eq=False)
class ObjectTrack:
    """One object over the clip: ``centres`` (T, 2) float (x, y) pixels, ``sides`` (T,) float current
    side in pixels (pulsing included), ``pulse`` (T,) float in [0, 1] (0 = at rest)."""

    class_index: int
    role: str
    centres: np.ndarray
    sides: np.ndarray
    pulse: np.ndarray
    # a look of its own (``salient`` distractors: no class): shape name, RGB 0-255; None = the class's
    shape: str | None = None
    colour: tuple[int, int, int] | None = None

    @property
    def pulsing(self) -> bool:
        return bool(np.any(self.pulse > 0))

    def boxes(self) -> np.ndarray:
        """(T, 4) float (x0, y0, x1, y1) pixel boxes of side ``sides`` around ``centres``."""
        half = self.sides[:, None] / 2
        return np.concatenate([self.centres - half, self.centres + half], axis=1)


@dataclass(frozen=True)
class SceneParams:
    """Scene sampling parameters (fractions are of the frame side; speeds in frame sides per second)."""

    distractor_prob: float = 0.5
    other_prob: float = 0.5
    async_prob: float = 0.75
    object_scale: tuple[float, float] = (0.16, 0.26)
    pulse_depth: float = 0.35
    max_speed: float = 0.08
    salient: int = 0  # at most this many salient silent distractors per clip (uniform 0..salient)
    salient_speed: float = 0.3  # their top speed (frame sides per second)


def frame_samples(n_frames: int, fps: float, rate: int) -> np.ndarray:
    """Sample index of each frame's display time i / fps: (T,) int64."""
    return np.round(np.arange(n_frames) / fps * rate).astype(np.int64)


def envelope_at_frames(envelope: np.ndarray, n_frames: int, fps: float, rate: int) -> np.ndarray:
    """A sample-rate envelope (n,) read at the frame times: (T,) float32."""
    idx = np.clip(frame_samples(n_frames, fps, rate), 0, len(envelope) - 1)
    return envelope[idx].astype(np.float32)


def sample_tracks(
    rng: np.random.Generator,
    params: SceneParams,
    size: int,
    n_frames: int,
    fps: float,
    source_class: int,
    n_classes: int,
    source_pulse: np.ndarray,
    rate: int,
) -> list[ObjectTrack]:
    """Tracks of the source (pulse = ``source_pulse`` (T,)) and the distractors; the source first."""
    roles = [("source", source_class)]
    if rng.random() < params.distractor_prob:
        roles.append(("same_class", source_class))
    if n_classes > 1 and rng.random() < params.other_prob:
        other = int(rng.integers(n_classes - 1))
        roles.append(("other", other + (other >= source_class)))
    bases = rng.uniform(*params.object_scale, size=len(roles)) * size
    starts = _place(rng, bases * (1 + params.pulse_depth), size)
    seconds = n_frames / fps
    tracks = []
    for (role, klass), base, start in zip(roles, bases, starts, strict=True):
        if role == "source":
            pulse = np.asarray(source_pulse, dtype=np.float32)
        elif rng.random() < params.async_prob:  # its own rhythm, not the audio's
            n = int(round(seconds * rate))
            own = syllable_envelope(rng, n, [(0.0, seconds)], rate)
            pulse = envelope_at_frames(own, n_frames, fps, rate)
        else:
            pulse = np.zeros(n_frames, dtype=np.float32)
        margin = base * (1 + params.pulse_depth) / 2 + 1
        centres = _trajectory(rng, start, params.max_speed * size, n_frames, fps, margin, size - margin)
        sides = (base * (1 + params.pulse_depth * pulse)).astype(np.float32)
        tracks.append(ObjectTrack(klass, role, centres, sides, pulse))
    return tracks


def add_salient(
    rng: np.random.Generator,
    params: SceneParams,
    tracks: list[ObjectTrack],
    size: int,
    n_frames: int,
    fps: float,
    rate: int,
    shapes: tuple[str, ...],
) -> list[ObjectTrack]:
    """``tracks`` plus 0..``params.salient`` salient silent distractors (module docstring): a random
    shape of ``shapes``, a random hue at full saturation and value, speed up to ``salient_speed``."""
    import colorsys

    n = int(rng.integers(0, params.salient + 1)) if params.salient > 0 else 0
    out = list(tracks)
    seconds = n_frames / fps
    for _ in range(n):
        base = float(rng.uniform(*params.object_scale)) * size
        margin = base * (1 + params.pulse_depth) / 2 + 1
        start = rng.uniform(margin, size - margin, size=2)
        own = syllable_envelope(rng, int(round(seconds * rate)), [(0.0, seconds)], rate)
        pulse = envelope_at_frames(own, n_frames, fps, rate)
        centres = _trajectory(rng, start, params.salient_speed * size, n_frames, fps, margin, size - margin)
        sides = (base * (1 + params.pulse_depth * pulse)).astype(np.float32)
        rgb = tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(float(rng.random()), 1.0, 1.0))
        shape = str(shapes[int(rng.integers(len(shapes)))])
        out.append(ObjectTrack(-1, "salient", centres, sides, pulse, shape, rgb))  # type: ignore[arg-type]
    return out


def _place(rng: np.random.Generator, extents: np.ndarray, size: int, tries: int = 200) -> np.ndarray:
    """Non-overlapping start centres (N, 2) for objects of maximal sides ``extents`` (N,)."""
    out: list[np.ndarray] = []
    for ext in extents:
        lo, hi = ext / 2 + 1, size - ext / 2 - 1
        best, best_gap = None, -np.inf
        for _ in range(tries):
            c = rng.uniform(lo, hi, size=2)
            # gap to the nearest placed object, in units of their summed half-extents
            gap = min(
                (np.linalg.norm(c - o) / ((ext + e) / 2) for o, e in zip(out, extents, strict=False)),
                default=np.inf,
            )
            if gap > best_gap:
                best, best_gap = c, gap
            if gap >= 1.15:
                break
        out.append(best)
    return np.stack(out)


def _trajectory(
    rng: np.random.Generator,
    start: np.ndarray,
    max_speed: float,
    n_frames: int,
    fps: float,
    lo: float,
    hi: float,
) -> np.ndarray:
    """(T, 2) centres moving at a random constant velocity, reflected into [lo, hi]."""
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0, max_speed)
    t = np.arange(n_frames) / fps
    raw = start[None, :] + speed * t[:, None] * np.array([np.cos(angle), np.sin(angle)])[None, :]
    span = max(hi - lo, 1e-6)
    phase = np.mod(raw - lo, 2 * span)
    return (lo + np.where(phase > span, 2 * span - phase, phase)).astype(np.float32)


def gaussian(size: int, centre: np.ndarray, sigma: float) -> np.ndarray:
    """(size, size) float64 isotropic Gaussian at ``centre`` (x, y) pixels, unit mass."""
    ax = np.arange(size, dtype=np.float64)
    gx = np.exp(-0.5 * ((ax - centre[0]) / sigma) ** 2)
    gy = np.exp(-0.5 * ((ax - centre[1]) / sigma) ** 2)
    g = gy[:, None] * gx[None, :]
    return g / max(g.sum(), 1e-300)


def density_maps(
    tracks: list[ObjectTrack], events: np.ndarray, size: int, sigma_scale: float = 0.5
) -> np.ndarray:
    """Ground-truth density (T, size, size) float32, each frame scaled to max 1 (module docstring)."""
    source = next(t for t in tracks if t.role == "source")
    out = np.empty((len(events), size, size), dtype=np.float32)
    for i, on in enumerate(events):
        members = [source] if on else tracks
        d = sum(gaussian(size, t.centres[i], sigma_scale * float(t.sides[i])) for t in members)
        out[i] = d / d.max()
    return out


def sample_fixations(rng: np.random.Generator, density: np.ndarray, per_frame: int) -> np.ndarray:
    """Binary fixation maps (T, H, W) uint8: ``per_frame`` pixels per frame drawn from the density
    normalised to sum 1 (draws that hit the same pixel count once)."""
    t, h, w = density.shape
    out = np.zeros((t, h * w), dtype=np.uint8)
    for i in range(t):
        p = density[i].astype(np.float64).ravel()
        out[i, rng.choice(h * w, size=per_frame, p=p / p.sum())] = 1
    return out.reshape(t, h, w)
