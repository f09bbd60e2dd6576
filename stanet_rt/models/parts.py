"""A student cut into the graphs every backend runs: audio front end, per-frame encoder, window head.

The torch modules here are what ``stanet_rt.export`` traces to ONNX and what the torch backend
(``stanet_rt.engines.torch_backend``) runs, so both share one definition of each part's inputs and
outputs (names from :mod:`stanet_rt.artifacts`). Imports torch.

- audio: ``waveform`` (B, S) -> ``audio_embedding`` (B, A): log-spectrogram (FP32) + the audio net;
- encoder: ``frames`` (B, 3, H, W) [+ ``audio_embedding`` (B, A), ``audio_on`` (B, 1)] -> one output per
  ``feature_shapes`` key (B, *shape);
- head: one input per feature key (B, T, *shape) -> ``logits`` (B, 1, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from stanet_rt.artifacts import AUDIO_EMBEDDING, AUDIO_ON, FRAMES, LOGITS, WAVEFORM
from stanet_rt.audio.spectrogram import LogSpectrogram
from stanet_rt.models.student_base import StudentModel

EXAMPLE_BATCH = 2


class AudioFrontEnd(nn.Module):
    """waveform (B, S) -> log-spectrogram -> audio embedding (B, A).

    The log-spectrogram always computes in FP32 (an FP32 island); its output is cast to the audio net's
    dtype, so the module also runs with the net in half precision (``module.half()`` followed by
    ``module.spectrogram.float()``, see ``engines.torch_backend``). In FP32 no cast is traced."""

    def __init__(self, model: StudentModel) -> None:
        super().__init__()
        param = next(model.parameters(), None)
        self.spectrogram = LogSpectrogram(model.config.audio)
        if param is not None:
            self.spectrogram.to(param.device)
        self.model = model

    def forward(self, waveform: Tensor) -> Tensor:
        spec = self.spectrogram(waveform)
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), spec.dtype)
        return self.model.encode_audio(spec if spec.dtype == dtype else spec.to(dtype))


class EncoderGraph(nn.Module):
    """(frames[, audio_embedding, audio_on]) -> tuple of per-frame features in ``feature_shapes`` order."""

    def __init__(self, model: StudentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor, audio_embedding: Tensor | None = None,
                audio_on: Tensor | None = None) -> tuple[Tensor, ...]:
        return tuple(self.model.encode(frames, audio_embedding, audio_on).values())


class HeadGraph(nn.Module):
    """Window features (a tuple in ``feature_shapes`` order, each (B, T, *shape)) -> logits (B, 1, H, W)."""

    def __init__(self, model: StudentModel, keys: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = list(keys)

    def forward(self, *features: Tensor) -> Tensor:
        return self.model.head(dict(zip(self.keys, features, strict=True)))


@dataclass(frozen=True)
class PartSpec:
    """What one graph takes and returns, with example inputs (on the model's device, in its dtype; the
    waveform stays FP32) for export, parity and the torch backend's shapes."""

    part: str
    module: nn.Module
    input_names: list[str]
    output_names: list[str]
    example: tuple[Tensor, ...]


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)


def part_specs(model: StudentModel, batch: int = EXAMPLE_BATCH, seed: int = 0) -> list[PartSpec]:
    """The graphs of ``model`` (audio only for audio configs), with random example inputs drawn on the
    CPU (the same numbers whatever the device) and moved to the model's device and dtype."""
    cfg = model.config
    device, dtype = _device_dtype(model)
    gen = torch.Generator().manual_seed(seed)
    s = cfg.input_size
    keys = list(model.feature_shapes(s, s))
    frames = torch.randn(batch, 3, s, s, generator=gen).to(device, dtype)
    specs = []
    enc_inputs: tuple[Tensor, ...] = (frames,)
    enc_names = [FRAMES]
    if model.uses_audio:
        wave = (0.3 * torch.randn(batch, cfg.audio.window_samples, generator=gen)).to(device)
        front = AudioFrontEnd(model)
        specs.append(PartSpec("audio", front, [WAVEFORM], [AUDIO_EMBEDDING], (wave,)))
        with torch.no_grad():
            emb = front(wave)
        enc_inputs = (frames, emb, torch.ones(batch, 1, device=device, dtype=dtype))
        enc_names = [FRAMES, AUDIO_EMBEDDING, AUDIO_ON]
    specs.append(PartSpec("encoder", EncoderGraph(model), enc_names, keys, enc_inputs))
    t = len(cfg.window_offsets)
    with torch.no_grad():
        feats = model.encode(*enc_inputs)
    window = tuple(
        (v.unsqueeze(1).expand(-1, t, *v.shape[1:])
         + 0.1 * torch.randn(batch, t, *v.shape[1:], generator=gen).to(device, v.dtype)).contiguous()
        for v in feats.values()
    )
    specs.append(PartSpec("head", HeadGraph(model, keys), keys, [LOGITS], window))
    return specs
