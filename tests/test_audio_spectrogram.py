"""The torch log-spectrogram against scipy (the original's audiostft.py), and its ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stanet_rt.audio.spectrogram import (
    AUDIO,
    LogSpectrogram,
    dft_kernels,
    log_spectrogram,
    reference_log_spectrogram,
)

SR = 16000
N = 8000
TOL = 1e-4


def _t() -> np.ndarray:
    return np.arange(N) / SR


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = _t()
    return {
        "tone_440": 0.5 * np.sin(2 * np.pi * 440 * t),
        "tone_7999": 0.8 * np.sin(2 * np.pi * 7999 * t),
        "two_tones_dc": 0.3 * np.sin(2 * np.pi * 100 * t) + 0.2 * np.cos(2 * np.pi * 3000 * t) + 0.25,
        "chirp": 0.7 * np.sin(2 * np.pi * (50 * t + 0.5 * 15000 * t**2)),
        "white_noise": 0.3 * rng.standard_normal(N),
        "quiet_noise": 1e-6 * rng.standard_normal(N),
        "silence": np.zeros(N),
        "clipped": 3.0 * np.sin(2 * np.pi * 250 * t),
        "square_over_1": np.sign(np.sin(2 * np.pi * 60 * t)) * 1.5,
        "impulse": np.eye(1, N, 4000)[0],
    }


def _torch(x: np.ndarray, device: str = "cpu") -> np.ndarray:
    windows = torch.from_numpy(np.asarray(x, dtype=np.float32)).to(device)
    return log_spectrogram(windows).cpu().double().numpy()


@pytest.mark.parametrize("name", list(_signals()))
def test_matches_scipy_reference(name: str) -> None:
    x = _signals()[name][None]
    ref = reference_log_spectrogram(x)
    out = _torch(x)
    assert out.shape == (1, 1, 257, 48)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, atol=TOL, rtol=0)


def test_batch_shape_dtype_and_independence() -> None:
    sig = _signals()
    batch = np.stack([sig["chirp"], sig["silence"], sig["white_noise"]]).astype(np.float32)
    out = log_spectrogram(torch.from_numpy(batch))
    assert out.shape == (3, 1, AUDIO.n_freq, AUDIO.n_time) == (3, 1, 257, 48)
    assert out.dtype == torch.float32
    # each window is normalised on its own: batching changes nothing
    for i in range(3):
        single = log_spectrogram(torch.from_numpy(batch[i : i + 1]))
        torch.testing.assert_close(out[i : i + 1], single, atol=1e-5, rtol=0)
    # z-normalised per window over the whole matrix
    noise = out[2, 0].double()
    assert abs(noise.mean().item()) < 1e-5 and abs(noise.std(correction=0).item() - 1) < 1e-4


def test_silence_is_exactly_zero_and_finite() -> None:
    out = log_spectrogram(torch.zeros(2, N))
    assert torch.equal(out, torch.zeros_like(out))
    ref = reference_log_spectrogram(np.zeros((1, N)))
    assert np.isfinite(ref).all() and np.abs(ref).max() < TOL  # scipy's value is 0 up to rounding


def test_clipping_happens_before_the_transform() -> None:
    loud = _signals()["clipped"][None]
    clipped = np.clip(loud, -1, 1)
    np.testing.assert_allclose(_torch(loud), _torch(clipped), atol=1e-6)
    assert np.abs(_torch(loud) - _torch(loud / 3)).max() > 0.1  # clipping changed the spectrum


def test_dft_kernel_folds_window_and_detrend() -> None:
    kernel, scale = dft_kernels()
    assert kernel.shape == (2 * 257, 1, 512) and scale.shape == (257,)
    # detrend 'constant' folded in: a DC segment gives exactly no energy
    assert np.abs(kernel[:, 0].sum(axis=1)).max() < 1e-9
    # one-sided density scaling: DC and Nyquist are not doubled
    assert scale[0] == pytest.approx(scale[1] / 2) and scale[-1] == pytest.approx(scale[1] / 2)


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        log_spectrogram(torch.zeros(N))
    with pytest.raises(ValueError, match="N >= 512"):
        log_spectrogram(torch.zeros(1, 100))


INPUT_NAME = "waveforms"


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory):
    """The log-spectrogram alone through the project's one exporter (``export.onnx_export.export_part``)."""
    import dataclasses
    import json

    from stanet_rt.export.onnx_export import export_part

    from stanet_rt.config import AUDIO
    from stanet_rt.models.parts import PartSpec

    spec = PartSpec("audio", LogSpectrogram(AUDIO), [INPUT_NAME], ["log_spectrogram"],
                    (torch.zeros(2, AUDIO.window_samples),))
    config_json = json.dumps(dataclasses.asdict(AUDIO), sort_keys=True)
    return export_part(spec, tmp_path_factory.mktemp("onnx") / "logspec.onnx", config_json)


@pytest.mark.slow
def test_onnx_export_matches_reference_on_onnxruntime(onnx_path) -> None:
    import json

    import onnx
    import onnxruntime as ort

    model = onnx.load(onnx_path)
    ops = {n.op_type for n in model.graph.node}
    assert "Conv" in ops and not ops & {"STFT", "DFT"}
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["stanet_rt.config"])["nperseg"] == 512
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    sig = _signals()
    batch = np.stack(list(sig.values())).astype(np.float32)
    out = session.run(None, {INPUT_NAME: batch})[0]
    assert out.shape == (len(sig), 1, 257, 48)
    # silence and very quiet windows included: they break if the 1e-9 guard is optimised away
    np.testing.assert_allclose(out, reference_log_spectrogram(batch), atol=TOL, rtol=0)
    single = session.run(None, {INPUT_NAME: batch[:1]})[0]  # dynamic batch
    np.testing.assert_allclose(single, out[:1], atol=1e-5)


def test_module_is_one_definition() -> None:
    module = LogSpectrogram()
    x = torch.from_numpy(_signals()["chirp"][None].astype(np.float32))
    torch.testing.assert_close(module(x), log_spectrogram(x))


@pytest.mark.gpu
def test_cuda_matches_reference_even_with_tf32_enabled() -> None:
    sig = _signals()
    batch = np.stack(list(sig.values()))
    conv = torch.backends.cudnn.conv
    old = conv.fp32_precision
    conv.fp32_precision = "tf32"  # what a training script may set globally
    try:
        out = _torch(batch, "cuda")
    finally:
        conv.fp32_precision = old
    assert conv.fp32_precision == old
    np.testing.assert_allclose(out, reference_log_spectrogram(batch), atol=TOL, rtol=0)
