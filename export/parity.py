"""Parity of exported graphs: ONNX Runtime (CPU) against PyTorch on random and real inputs.

"Real" inputs are frames decoded from a short clip this module generates with PyAV (a bright disc
moving over a textured background) and a real tone for the audio front end. For each output: max
absolute error and the correlation coefficient (CC) of the flattened outputs. A graph passes when
every output's CC >= the threshold (0.9999 FP32, 0.999 FP16); an output that is numerically constant
in PyTorch (CC undefined) passes on max abs error instead, and the report says so.

FP16 also passes an output whose max abs error is within :data:`FP16_STEPS` FP16 steps (ulps) at the
output's largest magnitude: an FP16 graph cannot write its output more finely than that, so on a map
whose whole spread is a few dozen such steps the rounding alone pulls CC below 0.999 (rms error
step/sqrt(12) against the map's std: a tiny random STA+ head map at 0.27..0.28, std 1.5e-3, step 2.4e-4,
has CC 0.9989 with an error of 0.8 step). The report names the criterion used.

Imports numpy, torch, onnxruntime, av.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from stanet_rt.models.parts import PartSpec
from stanet_rt.preprocess import preprocess

THRESHOLDS = {"fp32": 0.9999, "fp16": 0.999}
CONSTANT_ATOL = {"fp32": 1e-4, "fp16": 1e-2}
FP16_STEPS = 4


@dataclass
class ParityResult:
    part: str
    precision: str
    inputs: str
    output: str
    max_abs_err: float
    cc: float | None
    passed: bool
    note: str = ""


def generated_clip_frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames (n, size, size, 3) uint8 of a moving disc, encoded to H.264/MPEG-4 and decoded
    back with PyAV (so they carry real codec artefacts)."""
    import av

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    background = (rng.random((size, size, 3)) * 80 + 40).astype(np.uint8)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = out.add_stream(codec, rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            img = background.copy()
            cx, cy = size * (0.25 + 0.5 * i / max(1, n - 1)), size * 0.5
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < (size / 6) ** 2] = (250, 220, 40)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf) as inp:
        frames = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    return np.stack(frames[:n])


def real_inputs(spec: PartSpec, model: torch.nn.Module, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs for ``spec`` derived from generated frames / a real tone instead of random numbers."""
    cfg = model.config
    s = cfg.input_size
    frames = torch.from_numpy(preprocess(generated_clip_frames(batch, s), cfg))  # the runtime's preprocessing
    if spec.part == "audio":
        t = torch.arange(cfg.audio.window_samples) / cfg.audio.sample_rate
        tone = 0.5 * torch.sin(2 * torch.pi * 440.0 * t) * torch.linspace(0.2, 1.0, t.numel())
        return (tone.repeat(batch, 1),)
    with torch.no_grad():
        emb = None
        if model.uses_audio:
            t = torch.arange(cfg.audio.window_samples) / cfg.audio.sample_rate
            wave = (0.5 * torch.sin(2 * torch.pi * 440.0 * t)).repeat(batch, 1)
            from stanet_rt.audio.spectrogram import LogSpectrogram

            emb = model.encode_audio(LogSpectrogram(cfg.audio)(wave))
        if spec.part == "encoder":
            return (frames, emb, torch.ones(batch, 1)) if model.uses_audio else (frames,)
        feats = model.encode(frames, emb)
        t_len = len(cfg.window_offsets)
        return tuple(v.unsqueeze(1).expand(-1, t_len, *v.shape[1:]).contiguous() for v in feats.values())


def _cc(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if b.std() < 1e-7 * (1 + np.abs(b).mean()):
        return None
    return float(np.corrcoef(a, b)[0, 1])


def fp16_step(values: np.ndarray) -> float:
    """The spacing of FP16 numbers at the largest magnitude of ``values`` (0 for an all-zero array)."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    return float(np.spacing(np.float16(min(peak, 65504.0)))) if peak > 0 else 0.0


def judge(got: np.ndarray, ref: np.ndarray, precision: str) -> tuple[float, float | None, bool, str]:
    """Compare one output of an exported graph (``got``) with PyTorch's (``ref``), same shape:
    (max abs error, CC or None when ``ref`` is constant, passed, note on the criterion when not CC)."""
    err = float(np.abs(got - ref).max())
    cc = _cc(got, ref)
    if cc is None:
        return err, cc, err <= CONSTANT_ATOL[precision], "output constant in PyTorch: judged on max abs error"
    if cc >= THRESHOLDS[precision]:
        return err, cc, True, ""
    if precision == "fp16" and err <= FP16_STEPS * fp16_step(ref):
        return err, cc, True, (f"CC below {THRESHOLDS[precision]} on a map only {np.ptp(ref) / fp16_step(ref):.0f} "
                               f"FP16 steps wide: judged on max abs error <= {FP16_STEPS} FP16 steps")
    return err, cc, False, ""


def check_part(spec: PartSpec, onnx_path: str, precision: str, inputs: tuple[torch.Tensor, ...],
               label: str) -> list[ParityResult]:
    """Run ``onnx_path`` in ONNX Runtime (CPU EP) and ``spec.module`` in PyTorch on ``inputs``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    feed = {name: x.detach().numpy().astype(np.float32) for name, x in zip(spec.input_names, inputs, strict=True)}
    got = sess.run(spec.output_names, feed)
    with torch.no_grad():
        ref = spec.module.eval()(*inputs)
    refs = ref if isinstance(ref, tuple) else (ref,)
    results = []
    for name, g, r in zip(spec.output_names, got, refs, strict=True):
        err, cc, passed, note = judge(g, r.detach().numpy(), precision)
        results.append(ParityResult(spec.part, precision, label, name, err, cc, passed, note))
    return results
