"""The pseudo-GT's visual prior (training.visual_prior) and the training-free maps it uses."""

from __future__ import annotations

import numpy as np
import pytest
from stanet_rt.training.visual_prior import VisualPrior, apply_visual_prior, audio_presence

from stanet_rt.eval.baselines import motion_map, saturation_map


def test_audio_presence_finds_the_quiet_stretches_and_bridges_syllable_gaps() -> None:
    fps = 10.0
    loud = np.full(60, 0.01, np.float32)  # background noise
    loud[20:40] = 0.8  # the source sounds for 2 s ...
    loud[29] = 0.01  # ... with a gap of one frame between two syllables
    a = audio_presence(loud, fps)
    assert a.shape == (60,) and a.dtype == np.float32
    assert (a[20:40] == 1.0).all()  # the gap counts as sounding
    assert (a[:15] < 0.05).all() and (a[45:] < 0.05).all()
    # the window reaches window_s / 2 (2 frames) either side: frames just outside the event count as sounding
    assert a[18] == 1.0 and a[41] == 1.0 and a[17] < 0.05 and a[42] < 0.05
    short = audio_presence(loud, fps, VisualPrior(window_s=0.1))  # one frame either side at least
    assert short[19] == 1.0 and short[18] < 0.05 and short[41] < 0.05


def test_audio_presence_of_a_clip_that_never_goes_quiet_or_never_sounds() -> None:
    rng = np.random.default_rng(0)
    music = rng.uniform(0.5, 0.8, 50).astype(np.float32)  # loud throughout: no quiet stretch to find
    np.testing.assert_array_equal(audio_presence(music, 25.0), np.ones(50, np.float32))
    np.testing.assert_array_equal(audio_presence(np.zeros(50), 25.0), np.zeros(50, np.float32))
    assert audio_presence(np.zeros(0), 25.0).shape == (0,)
    with pytest.raises(ValueError, match="fps"):
        audio_presence(music, 0.0)
    with pytest.raises(ValueError, match="invalid visual prior"):
        VisualPrior(low=90, high=10)


def _scene(n: int = 6, size: int = 64) -> tuple[np.ndarray, tuple, tuple]:
    """Frames with a still grey square (the tagged object the teachers mark) and a red square moving right
    (a salient silent object no teacher marks)."""
    frames = np.full((n, size, size, 3), 40, np.uint8)
    tagged, moving = (10, 26, 8, 24), (40, 56, 10, 26)  # top, bottom, left, right
    frames[:, tagged[0] : tagged[1], tagged[2] : tagged[3]] = 160
    for t in range(n):
        x = moving[2] + 3 * t
        frames[t, moving[0] : moving[1], x : x + 16] = (220, 30, 30)
    return frames, tagged, moving


def _mean(m: np.ndarray, box: tuple, shift: int = 0) -> float:
    return float(m[box[0] : box[1], box[2] + shift : box[3] + shift].mean())


def test_training_free_maps_mark_what_moves_and_what_is_colourful() -> None:
    frames, tagged, moving = _scene()
    mot, sat = motion_map(frames), saturation_map(frames)
    assert mot.shape == sat.shape == frames.shape[:3] and mot.dtype == sat.dtype == np.float32
    assert np.allclose(mot.max(axis=(1, 2)), 1.0) and np.allclose(sat.max(axis=(1, 2)), 1.0)
    t = 3
    assert _mean(mot[t], moving, 3 * t) > 5 * _mean(mot[t], tagged)  # the grey square does not move
    assert _mean(sat[t], moving, 3 * t) > 5 * _mean(sat[t], tagged)  # nor is it colourful
    assert not motion_map(frames[:1]).any()


def test_visual_prior_spreads_silent_frames_and_keeps_sounding_ones_on_the_teachers_map() -> None:
    frames, tagged, moving = _scene()
    n, size = frames.shape[:2]
    pgt: list[np.ndarray | None] = []
    for _ in range(n):
        p = np.zeros((size, size), np.float32)
        p[tagged[0] : tagged[1], tagged[2] : tagged[3]] = 1.0
        pgt.append(p)
    pgt[0] = None  # a frame the teachers gave no map stays without one
    presence = np.array([0, 0, 0, 1, 1, 1], np.float32)
    out = apply_visual_prior(pgt, motion_map(frames), saturation_map(frames), presence)
    assert out[0] is None and all(m is not None and m.shape == (size, size) for m in out[1:])
    silent, sounding = out[2], out[4]
    assert silent is not None and sounding is not None
    # silent: the moving, colourful object the teachers missed gets a weight like the tagged one's
    assert _mean(silent, moving, 6) > 0.5 * _mean(silent, tagged)
    # sounding: the teachers' map (only the tagged object), nothing added where they saw nothing
    assert _mean(sounding, moving, 12) < 1e-6 and sounding.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        apply_visual_prior([np.zeros((8, 8), np.float32)], np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), np.ones(1))
    with pytest.raises(ValueError, match="presence"):
        apply_visual_prior(pgt, motion_map(frames), saturation_map(frames), presence[:2])


def test_sounding_frames_favour_the_moving_part_of_the_teachers_map() -> None:
    # both squares tagged; only one moves: while the clip sounds, the moving one keeps more weight
    frames, tagged, moving = _scene()
    n, size = frames.shape[:2]
    p = np.zeros((size, size), np.float32)
    p[tagged[0] : tagged[1], tagged[2] : tagged[3]] = 1.0
    t = 3
    p[moving[0] : moving[1], moving[2] + 3 * t : moving[3] + 3 * t] = 1.0
    out = apply_visual_prior([p] * n, motion_map(frames), saturation_map(frames), np.ones(n, np.float32))[t]
    assert out is not None and _mean(out, moving, 3 * t) > 2 * _mean(out, tagged)


def test_sync_factor_favours_the_look_alike_in_step_with_the_sound_only_while_it_sounds() -> None:
    frames, tagged, moving = _scene()
    n, size = frames.shape[:2]
    t = 3
    p = np.zeros((size, size), np.float32)
    p[tagged[0] : tagged[1], tagged[2] : tagged[3]] = 1.0
    p[moving[0] : moving[1], moving[2] + 3 * t : moving[3] + 3 * t] = 1.0
    sync = np.zeros((n, size, size), np.float32)
    sync[:, tagged[0] : tagged[1], tagged[2] : tagged[3]] = 1.0  # the still grey square is the one in step
    mot, sat = motion_map(frames), saturation_map(frames)
    sounding = np.ones(n, np.float32)
    without = apply_visual_prior([p] * n, mot, sat, sounding)[t]
    with_sync = apply_visual_prior([p] * n, mot, sat, sounding, sync=sync)[t]
    assert without is not None and with_sync is not None
    ratio = _mean(with_sync, tagged) / _mean(with_sync, moving, 3 * t)
    assert ratio > 1.5 * _mean(without, tagged) / _mean(without, moving, 3 * t)
    silent = np.zeros(n, np.float32)  # no sound: the synchrony map does not count
    np.testing.assert_allclose(
        apply_visual_prior([p] * n, mot, sat, silent, sync=sync)[t], apply_visual_prior([p] * n, mot, sat, silent)[t]
    )
    with pytest.raises(ValueError, match="sync maps"):
        apply_visual_prior([p] * n, mot, sat, sounding, sync=sync[:2])
