"""Frame <-> audio window placement (start- and end-aligned) and the streaming ring buffer."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from stanet_rt.audio.alignment import (
    end_aligned_window,
    end_aligned_windows,
    slice_windows,
    start_aligned_windows,
)
from stanet_rt.audio.ring import AudioRing


def _original_step(n_samples: int, n_frames: int) -> int:
    """The original audiostft.py's formula."""
    return 8000 - math.ceil(8000 - (n_samples - 8000) / (n_frames - 1))


@pytest.mark.parametrize(("n_samples", "n_frames"), [(160000, 300), (160000, 250), (80123, 37), (8001, 2)])
def test_start_aligned_matches_the_original(n_samples: int, n_frames: int) -> None:
    ranges = start_aligned_windows(n_samples, n_frames)
    step = _original_step(n_samples, n_frames)
    assert ranges.shape == (n_frames, 2) and ranges.dtype == np.int64
    np.testing.assert_array_equal(ranges[:, 0], np.arange(n_frames) * step)
    np.testing.assert_array_equal(ranges[:, 1] - ranges[:, 0], 8000)
    assert ranges[0, 0] == 0 and ranges[-1, 1] <= n_samples
    assert n_samples - ranges[-1, 1] < n_frames  # spread to the end, up to the floor's rounding


def test_ave_clip_step() -> None:
    assert start_aligned_windows(160000, 300)[1, 0] == 508  # spec: "about 508 samples"


def test_single_frame_and_short_audio_do_not_crash() -> None:
    np.testing.assert_array_equal(start_aligned_windows(50000, 1), [[0, 8000]])
    short = start_aligned_windows(3000, 4)
    np.testing.assert_array_equal(short, [[0, 8000]] * 4)
    windows = slice_windows(np.ones(3000, np.float32), short)
    assert windows.shape == (4, 8000)
    assert windows[:, :3000].min() == 1 and not windows[:, 3000:].any()  # zero-padded past the end
    with pytest.raises(ValueError):
        start_aligned_windows(1000, 0)


def test_end_aligned_window_ends_at_the_frame() -> None:
    assert end_aligned_window(1.0) == (8000, 16000)
    assert end_aligned_window(0.0) == (-8000, 0)
    assert end_aligned_window(0.04) == (640 - 8000, 640)
    assert end_aligned_window(1 / 30) == (533 - 8000, 533)  # 533.33 rounds to the nearest sample
    ts = np.arange(5) / 25.0
    np.testing.assert_array_equal(end_aligned_windows(ts), [end_aligned_window(t) for t in ts])


def test_slice_windows_pads_both_sides_and_copies_content() -> None:
    wave = np.arange(1, 11, dtype=np.float32)
    out = slice_windows(wave, np.array([[-3, 2], [8, 13], [2, 7], [20, 25]]))
    np.testing.assert_array_equal(out[0], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(out[1], [9, 10, 0, 0, 0])
    np.testing.assert_array_equal(out[2], [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(out[3], 0)
    with pytest.raises(ValueError, match="same positive width"):
        slice_windows(wave, np.array([[0, 3], [0, 4]]))


def test_ring_matches_offline_end_aligned_windows() -> None:
    rng = np.random.default_rng(1)
    stream = rng.standard_normal(40000).astype(np.float32)
    ring = AudioRing(capacity=20000, start_time=2.0)
    times = [2.0, 2.3, 2.9, 3.5, 4.5]
    got = {}
    for chunk in np.array_split(stream, 37):  # odd chunk sizes, wrapping several times
        ring.push(chunk)
        for t in times:
            if t not in got and ring.end_time >= t:
                got[t] = ring.window_ending_at(t)
    expected = slice_windows(stream, end_aligned_windows(np.array(times) - 2.0))
    for t, exp in zip(times, expected, strict=True):
        np.testing.assert_array_equal(got[t], exp)
    assert not got[2.0].any()  # the frame at the stream start: all zeros before it


def test_ring_future_and_overwritten_windows() -> None:
    ring = AudioRing(capacity=10000)
    ring.push(np.ones(12000, np.float32))  # longer than the capacity: keeps the newest 10000
    assert ring.total_samples == 12000
    with pytest.raises(ValueError, match="pushed so far"):
        ring.window_ending_at(1.0)
    padded = ring.window_ending_at(0.8, pad_future=True)  # 12800 > 12000 pushed
    assert padded[:7200].min() == 1 and not padded[7200:].any()
    with pytest.raises(ValueError, match="overwritten"):
        ring.window_ending_at(0.6)  # needs samples from 1600, ring holds 2000..12000
    np.testing.assert_array_equal(ring.window_ending_at(0.75), np.ones(8000))
    with pytest.raises(ValueError):
        AudioRing(capacity=100)


def test_ring_is_safe_across_threads() -> None:
    """A producer pushes a ramp (sample value = its index) while a reader takes windows: every window
    must be a contiguous ramp, never a torn mix of old and new samples."""
    ring = AudioRing(capacity=100000)  # wraps once; the slack keeps a slow reader's window from expiring
    total = 200 * 1000
    done = threading.Event()

    def produce() -> None:
        for start in range(0, total, 1000):
            ring.push(np.arange(start, start + 1000, dtype=np.float32))
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    checked = 0
    while not done.is_set() or checked == 0:
        end = ring.total_samples
        if end >= 8000:
            w = ring.window_ending_at(end / 16000)
            np.testing.assert_array_equal(w, np.arange(end - 8000, end, dtype=np.float32))
            checked += 1
    thread.join()
    assert checked > 0
