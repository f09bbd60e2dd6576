"""The pseudo-GT's audio-visual synchrony term (training.av_sync)."""

from __future__ import annotations

import numpy as np
import pytest
from stanet_rt.training.av_sync import SyncSettings, apply_sync, frame_loudness, sync_maps


def _two_lookalikes(n: int = 40, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Frames (n, size, size, 3) with two identical squares on a grey background: the left one's
    brightness follows the returned loudness, the right one's an independent rhythm."""
    rng = np.random.default_rng(seed)
    loud = (rng.random(n) < 0.5).astype(np.float32) * rng.uniform(0.6, 1.0, n).astype(np.float32)
    other = (rng.random(n) < 0.5).astype(np.float32) * rng.uniform(0.6, 1.0, n).astype(np.float32)
    frames = np.full((n, size, size, 3), 90.0, np.float32)
    src, twin = (20, 36, 6, 22), (20, 36, 40, 56)  # top, bottom, left, right
    for t in range(n):
        frames[t, src[0] : src[1], src[2] : src[3]] = 150 + 80 * loud[t]
        frames[t, twin[0] : twin[1], twin[2] : twin[3]] = 150 + 80 * other[t]
    frames += rng.normal(0, 3, frames.shape).astype(np.float32)
    return np.clip(frames, 0, 255).astype(np.uint8), loud, src, twin


def _box_mean(m: np.ndarray, box: tuple) -> float:
    return float(m[box[0] : box[1], box[2] : box[3]].mean())


def test_frame_loudness_is_centred_rms_with_silence_outside() -> None:
    half = 50
    wave = np.zeros(1000, np.float32)
    wave[400:600] = 0.5
    wave[500:600] *= -1  # the sign does not matter
    loud = frame_loudness(wave, np.array([100, 500, 400, 990, 2000]), half)
    np.testing.assert_allclose(loud, [0.0, 0.5, 0.5 / np.sqrt(2), 0.0, 0.0], atol=1e-6)
    assert loud.dtype == np.float32
    with pytest.raises(ValueError, match="half"):
        frame_loudness(wave, np.array([1]), 0)


def test_sync_map_finds_the_object_that_moves_with_the_sound() -> None:
    frames, loud, src, twin = _two_lookalikes()
    maps, activity = sync_maps(frames, loud, SyncSettings(radius=8, grid=16))
    assert maps.shape == (40, 64, 64) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    shares = [_box_mean(m, src) / (_box_mean(m, src) + _box_mean(m, twin)) for m in maps]
    assert np.mean(shares) > 0.85  # the source, not its silent twin
    assert activity.shape == (40,) and activity.max() == pytest.approx(1.0) and activity.min() > 0
    # swap which square follows the audio: the map follows
    maps2, _ = sync_maps(frames[:, :, ::-1], loud, SyncSettings(radius=8, grid=16))
    shares2 = [_box_mean(m, src) / (_box_mean(m, src) + _box_mean(m, twin)) for m in maps2]
    assert np.mean(shares2) < 0.15


def test_constant_audio_gives_no_sync_and_leaves_the_pseudo_gt_alone() -> None:
    frames, _, _, _ = _two_lookalikes(n=12)
    maps, activity = sync_maps(frames, np.full(12, 0.3, np.float32), SyncSettings(radius=3, grid=8))
    assert not maps.any() and not activity.any()
    rng = np.random.default_rng(1)
    pgt = [rng.random((64, 64)).astype(np.float32) for _ in range(12)]
    pgt = [(p - p.min()) / (p.max() - p.min()) for p in pgt]
    pgt[3] = None
    out = apply_sync(pgt, maps, activity)
    assert out[3] is None
    for a, b in zip(pgt, out, strict=True):
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_apply_sync_moves_mass_to_the_synchronous_object() -> None:
    frames, loud, src, twin = _two_lookalikes()
    maps, activity = sync_maps(frames, loud, SyncSettings(radius=8, grid=16))
    even = np.zeros((64, 64), np.float32)  # a pseudo-GT that cannot tell the two apart
    even[src[0] : src[1], src[2] : src[3]] = 1.0
    even[twin[0] : twin[1], twin[2] : twin[3]] = 1.0
    out = apply_sync([even] * 40, maps, activity)
    shares = [_box_mean(m, src) / (_box_mean(m, src) + _box_mean(m, twin)) for m in out]
    assert np.mean(shares) > 0.7
    assert all(m.max() == pytest.approx(1.0) and m.min() >= 0 for m in out)


def test_bad_inputs_are_rejected() -> None:
    frames, loud, _, _ = _two_lookalikes(n=10)
    with pytest.raises(ValueError, match="loudness"):
        sync_maps(frames, loud[:5])
    maps, activity = sync_maps(frames, loud, SyncSettings(radius=2, grid=8))
    with pytest.raises(ValueError, match="sync maps"):
        apply_sync([None] * 9, maps, activity)
    with pytest.raises(ValueError, match="shape"):
        apply_sync([np.zeros((8, 8), np.float32)] * 10, maps, activity)
    with pytest.raises(ValueError, match="invalid sync settings"):
        SyncSettings(radius=0)


def test_differenced_sync_maps_ignore_a_drift_that_fools_the_levels() -> None:
    frames, loud, src, twin = _two_lookalikes()
    n = len(loud)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    frames = frames.astype(np.float32)
    frames[:, twin[0] : twin[1], twin[2] : twin[3]] = 120 + 100 * ramp[:, None, None, None]  # twin drifts
    frames = frames.astype(np.uint8)
    audio = loud + 8.0 * ramp  # a crescendo under the syllables

    def share(settings: SyncSettings) -> float:
        maps, _ = sync_maps(frames, audio, settings)
        return float(np.mean([_box_mean(m, src) / (_box_mean(m, src) + _box_mean(m, twin) + 1e-9) for m in maps]))

    assert share(SyncSettings(radius=8, grid=16)) < 0.5  # by level the drifting twin wins
    assert share(SyncSettings(radius=8, grid=16, differences=True)) > 0.85
