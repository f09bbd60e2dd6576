"""Sounds of the synthetic set (16 kHz mono float32): class carriers, the syllable envelope that both
modulates the source's sound and drives its visual pulsing, and the background.

* :func:`syllable_envelope`: a random train of "syllables" (raised-cosine attack/release, 0.2-0.45 s
  long, 0.05-0.3 s gaps, random peak level) inside the event segments, zero elsewhere.
* :func:`class_carrier`: the class's sound at unit RMS: ``tone`` (harmonics 1-3 of 330 Hz x pitch),
  ``noise`` (band-pass noise around 2 kHz x pitch), ``chirp`` (0.25 s up-sweeps 500 -> 2000 Hz x pitch),
  ``buzz`` (band-limited square wave at 110 Hz x pitch).
* :func:`background`: quiet low-passed noise, present in every clip (the audio of a silent frame is
  never digital zero).

Imports numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000


def syllable_envelope(
    rng: np.random.Generator,
    n_samples: int,
    segments: Sequence[tuple[float, float]],
    rate: int = SAMPLE_RATE,
    length: tuple[float, float] = (0.2, 0.45),
    gap: tuple[float, float] = (0.05, 0.3),
    ramp: float = 0.04,
) -> np.ndarray:
    """(n_samples,) float32 in [0, 1]: syllables inside ``segments`` ([start, end) seconds), 0 outside.

    The first syllable starts at the segment start, so an event frame is never silent for long.
    """
    env = np.zeros(n_samples, dtype=np.float64)
    for start, end in segments:
        t = float(start)
        while t < end:
            dur = min(float(rng.uniform(*length)), end - t)
            level = float(rng.uniform(0.6, 1.0))
            a, b = int(round(t * rate)), min(n_samples, int(round((t + dur) * rate)))
            if b > a:
                env[a:b] = np.maximum(env[a:b], level * _raised_cosine(b - a, int(ramp * rate)))
            t += dur + float(rng.uniform(*gap))
    return env.astype(np.float32)


def _raised_cosine(n: int, ramp: int) -> np.ndarray:
    """(n,) window: cosine ramps of ``ramp`` samples at both ends, 1 in between."""
    w = np.ones(n)
    r = max(1, min(ramp, n // 2))
    up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
    w[:r] = up
    w[n - r :] = up[::-1]
    return w


def class_carrier(
    sound: str,
    pitch: float,
    n_samples: int,
    rng: np.random.Generator,
    rate: int = SAMPLE_RATE,
    timbre: float = 0.0,
) -> np.ndarray:
    """(n_samples,) float32 carrier of a class sound with unit RMS (see the module docstring).
    ``timbre`` > 0 varies the sound's colour per clip (0 = the fixed class sound): random harmonic
    weights of the tone (up to 5 harmonics), a vibrato of up to ``timbre`` x 3 % of the pitch, and a
    random spectral tilt (mix with its first difference)."""
    t = np.arange(n_samples) / rate
    if timbre > 0:
        vibrato = timbre * 0.03 * np.sin(2 * np.pi * rng.uniform(3, 7) * t + rng.uniform(0, 2 * np.pi))
        t = t + np.cumsum(vibrato) / rate  # a phase warp: instantaneous frequency x (1 + vibrato)
    if sound == "tone":
        f0 = 330.0 * pitch
        weights = ((1, 1.0), (2, 0.5), (3, 0.25))
        if timbre > 0:
            weights = tuple((h, float(rng.uniform(0.1, 1.0)) if h > 1 else 1.0) for h in range(1, 6))
        x = sum(a * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) for h, a in weights)
    elif sound == "noise":
        from scipy.signal import butter, sosfilt

        centre = min(2000.0 * pitch, 0.4 * rate)
        sos = butter(
            4, [centre / 1.5, min(centre * 1.5, 0.49 * rate)], btype="bandpass", fs=rate, output="sos"
        )
        x = sosfilt(sos, rng.standard_normal(n_samples))
    elif sound == "chirp":
        period, f_lo, f_hi = 0.25, 500.0 * pitch, min(2000.0 * pitch, 0.45 * rate)
        phase_t = np.mod(t, period)
        # instantaneous frequency f_lo -> f_hi linearly within each period; phase = integral of it
        phase = 2 * np.pi * (f_lo * phase_t + 0.5 * (f_hi - f_lo) / period * phase_t**2)
        x = np.sin(phase)
    elif sound == "buzz":
        f0 = 110.0 * pitch
        harmonics = np.arange(1, int(0.45 * rate / f0) + 1, 2)  # odd harmonics below 0.45 fs
        x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in harmonics)
    else:
        raise ValueError(f"unknown sound {sound!r}")
    x = np.asarray(x, dtype=np.float64)
    if timbre > 0:  # brighter (+) or duller (-): mix with the first difference, scaled to the same RMS
        diff = np.diff(x, prepend=x[:1])
        diff *= np.sqrt(np.mean(x**2)) / max(float(np.sqrt(np.mean(diff**2))), 1e-12)
        x = x + float(rng.uniform(-0.5, 0.5)) * timbre * diff
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    return (x / rms).astype(np.float32)


def background(
    rng: np.random.Generator, n_samples: int, level: float = 0.02, rate: int = SAMPLE_RATE
) -> np.ndarray:
    """(n_samples,) float32 low-passed (1.5 kHz) noise at RMS ``level``."""
    from scipy.signal import butter, sosfilt

    sos = butter(2, 1500.0, btype="lowpass", fs=rate, output="sos")
    x = sosfilt(sos, rng.standard_normal(n_samples))
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    return (level * x / rms).astype(np.float32)
