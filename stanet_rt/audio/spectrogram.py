"""Log-spectrogram of 0.5 s audio windows: the STANet audio input (spec section 1), in torch.

One definition of the maths, :class:`LogSpectrogram`: the scipy ``spectrogram`` PSD of each window
(Tukey(0.25) periodic window, constant detrend, one-sided, density scaling), then log(S + 1e-7) and a
z-normalisation over the whole (257 x 48) matrix. The DFT is a ``conv1d`` with fixed cos/sin kernels
that have the window and the detrend folded in, so the same module runs batched on CPU and CUDA and
exports to ONNX as plain Conv/Mul/Add/Log ops (inside the students' audio graph, ``export.onnx_export``).
``log_spectrogram`` is the functional entry point; ``reference_log_spectrogram`` is the numpy/scipy
reference used by the tests and by ``stanet-rt audio-features --check``.

Imports torch, numpy, scipy and ``stanet_rt.config`` only; must not import models, pipeline or cli.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from stanet_rt.config import AUDIO, AudioConfig

LOG_EPS = 1e-7  # log(S + LOG_EPS), as the original audiostft.py
STD_EPS = 1e-9  # (X - mean) / (std + STD_EPS)


def analysis_window(config: AudioConfig = AUDIO) -> np.ndarray:
    """The periodic Tukey window scipy's ``spectrogram`` uses by default: (nperseg,) float64."""
    from scipy.signal import get_window

    return get_window(("tukey", config.tukey_alpha), config.nperseg, fftbins=True).astype(np.float64)


def dft_kernels(config: AudioConfig = AUDIO) -> tuple[np.ndarray, np.ndarray]:
    """Conv1d weights of the windowed, detrended one-sided DFT, and the per-bin PSD scale.

    Returns ``kernel`` (2 * n_freq, 1, nperseg) float64, rows [0, n_freq) the real parts and
    [n_freq, 2 n_freq) the imaginary parts, and ``scale`` (n_freq,) float64 such that
    ``S[k] = scale[k] * (re[k]^2 + im[k]^2)`` is scipy's one-sided density PSD (1/Hz).

    Detrend 'constant' subtracts the segment mean m = sum(x)/N before windowing, so
    X[k] = sum_n x[n] (w[n] e_k[n] - c_k / N) with c_k = sum_n w[n] e_k[n]: the detrend is linear and
    folds into the kernel; one conv computes detrend + window + DFT.
    """
    n = config.nperseg
    w = analysis_window(config)
    k = np.arange(config.n_freq)[:, None]
    phase = 2.0 * np.pi * k * np.arange(n)[None, :] / n
    re = w * np.cos(phase)
    im = -w * np.sin(phase)
    re -= re.sum(axis=1, keepdims=True) / n
    im -= im.sum(axis=1, keepdims=True) / n
    kernel = np.concatenate([re, im], axis=0)[:, None, :]
    scale = np.full(config.n_freq, 2.0 / (config.sample_rate * np.sum(w**2)))
    scale[0] /= 2.0  # DC is not doubled in the one-sided spectrum
    if n % 2 == 0:
        scale[-1] /= 2.0  # nor is the Nyquist bin (even nperseg)
    return kernel, scale


def _log1p(x: Tensor) -> Tensor:
    """log(1 + x) for x >= 0, accurate for tiny x, built from ops every ONNX runtime has.

    Kahan's trick: u = 1 + x; log(u) * x / (u - 1), or x itself where u rounds to 1. (ONNX has no
    Log1p op and the exporter lowers ``torch.log1p`` to log(1 + x), which loses the small values.)
    """
    u = 1.0 + x
    d = u - 1.0
    exact = d == 0
    return torch.where(exact, x, torch.log(u) * x / torch.where(exact, torch.ones_like(d), d))


class LogSpectrogram(nn.Module):
    """(B, N) float waveforms in [-1, 1] at 16 kHz -> (B, 1, n_freq, n_time) z-normalised log-PSD.

    For the default config N = 8000 (0.5 s) gives (B, 1, 257, 48). Samples are clipped to [-1, 1]
    first, as the original does. Runs in FP32 on the input's device; keep it FP32 in exported graphs
    (FP16 loses the small PSD values).

    Numerics: log(S + 1e-7) = log(1e-7) + log1p(S / 1e-7), and the constant cancels in the
    z-normalisation, so we normalise log1p(S * 1e7). Same result as the original in exact arithmetic,
    but in float32 a silent or very quiet window stays exact (silence gives exactly 0, where
    float32 mean/std of a constant -16.1 matrix would amplify rounding noise by 1e9).
    """

    def __init__(self, config: AudioConfig = AUDIO) -> None:
        super().__init__()
        self.config = config
        kernel, scale = dft_kernels(config)
        self.register_buffer("kernel", torch.from_numpy(kernel).float(), persistent=False)
        self.register_buffer(
            "scale", (torch.from_numpy(scale) / LOG_EPS).float().view(1, -1, 1), persistent=False
        )

    def forward(self, windows: Tensor) -> Tensor:
        if windows.dim() != 2 or windows.shape[1] < self.config.nperseg:
            n = self.config.nperseg
            raise ValueError(f"expected waveforms of shape (B, N) with N >= {n}, got {tuple(windows.shape)}")
        x = windows.float().clamp(-1.0, 1.0).unsqueeze(1)  # (B, 1, N)
        with _no_tf32(x):
            spec = nn.functional.conv1d(x, self.kernel, stride=self.config.hop)  # (B, 2F, T)
        n_freq = self.config.n_freq
        re, im = spec[:, :n_freq], spec[:, n_freq:]
        logp = _log1p((re * re + im * im) * self.scale)  # log(S + 1e-7) - log(1e-7), (B, F, T)
        mean = logp.mean(dim=(1, 2), keepdim=True)
        centred = logp - mean
        std = torch.sqrt((centred * centred).mean(dim=(1, 2), keepdim=True))  # population std, as np.std
        # (X - mean) / (std + eps) written as (X - mean) / eps / (std / eps + 1): the same value, but with no
        # Add of a tiny constant. The onnxscript optimizer (0.7) deletes Add(x, c) for |c| <= 1e-8 as an
        # "add zero" no-op, which made exported graphs return 0/0 = NaN on silence and wrong values on
        # very quiet windows (std < 1e-8).
        inv_eps = 1.0 / STD_EPS
        return (centred * inv_eps / (std * inv_eps + 1.0)).unsqueeze(1)


_PRECISION_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_tf32(x: Tensor) -> Iterator[None]:
    """Full-FP32 cuDNN convolutions for the duration of the DFT.

    cuDNN convolutions default to TF32 on Ampere+ (10-bit mantissa, ~1e-3 relative error), which breaks
    the 1e-4 parity. torch >= 2.9 has a per-op switch (``cudnn.conv.fp32_precision``); setting the legacy
    ``cudnn.allow_tf32`` there would put torch in its "mixed legacy and new API" state, so the legacy
    flag is only used on older torch. A lock keeps concurrent callers from restoring out of order.
    """
    if not x.is_cuda:
        yield
        return
    cudnn = torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    with _PRECISION_LOCK:
        if conv is not None and hasattr(conv, "fp32_precision"):
            old = conv.fp32_precision
            conv.fp32_precision = "ieee"
            try:
                yield
            finally:
                conv.fp32_precision = old
        else:
            old_flag = cudnn.allow_tf32
            cudnn.allow_tf32 = False
            try:
                yield
            finally:
                cudnn.allow_tf32 = old_flag


@functools.lru_cache(maxsize=8)
def _module(config: AudioConfig, device: torch.device) -> LogSpectrogram:
    return LogSpectrogram(config).to(device).eval()


def log_spectrogram(windows: Tensor, config: AudioConfig = AUDIO) -> Tensor:
    """Batched log-spectrogram on the input's device.

    ``windows``: (B, N) float waveforms, 16 kHz mono (N = 8000 for 0.5 s). Values beyond +-1 are
    clipped. Returns (B, 1, 257, 48) float32 (for N = 8000), each window z-normalised.
    """
    with torch.no_grad():
        return _module(config, windows.device)(windows)


def reference_log_spectrogram(windows: np.ndarray, config: AudioConfig = AUDIO) -> np.ndarray:
    """The original's numpy/scipy computation (float64), for tests and ``--check``.

    ``windows``: (B, N) waveforms. Returns (B, 1, n_freq, n_time) float64, i.e. (B, 1, 257, 48).
    """
    from scipy.signal import spectrogram

    x = np.clip(np.asarray(windows, dtype=np.float64), -1.0, 1.0)
    if x.ndim != 2:
        raise ValueError(f"expected waveforms of shape (B, N), got {x.shape}")
    _, _, s = spectrogram(x, fs=config.sample_rate, nperseg=config.nperseg, noverlap=config.noverlap, axis=-1)
    logs = np.log(s + LOG_EPS)
    mean = logs.mean(axis=(1, 2), keepdims=True)
    std = logs.std(axis=(1, 2), keepdims=True)
    return ((logs - mean) / (std + STD_EPS))[:, None]
