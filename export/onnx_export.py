"""Students to ONNX: three graphs per student, the I/O contract the engines and the pipeline rely on.

- ``<name>.audio.onnx``: ``waveform`` (B, 8000) -> ``audio_embedding`` (B, A): log-spectrogram (DFT as
  a conv, FP32) + the student's audio net (only for configs with audio).
- ``<name>.encoder.onnx``: ``frames`` (B, 3, H, W) [+ ``audio_embedding`` (B, A), ``audio_on`` (B, 1)]
  -> one output per ``feature_shapes`` key (B, *shape).
- ``<name>.head.onnx``: one input per feature key (B, T, *shape) -> ``logits`` (B, 1, H, W).

Batch is dynamic (exported from batch 2: torch.export specialises 0/1-sized example dims). Opset 18 by
default (deployment-notes 1.2). ``metadata_props``: ``stanet_rt.config`` (ModelConfig JSON),
``stanet_rt.part``, ``stanet_rt.precision``, ``stanet_rt.version``. Every file is checked with
``onnx.checker`` (full check) and written atomically.

Imports torch, onnx and ``stanet_rt``; not ``engines`` or the pipeline.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from stanet_rt import __version__
from stanet_rt.audio.spectrogram import LogSpectrogram
from stanet_rt.fileio import atomic_path
from stanet_rt.models.student_base import StudentModel

PARTS = ("audio", "encoder", "head")
DEFAULT_OPSET = 18
EXAMPLE_BATCH = 2


class AudioFrontEnd(nn.Module):
    """waveform (B, 8000) -> log-spectrogram -> audio embedding (B, A).

    The log-spectrogram always computes in FP32 (an FP32 island); its output is cast to the audio net's
    dtype, so the module also runs with the net in half precision (``module.half()`` followed by
    ``module.spectrogram.float()``, see ``engines.torch_backend``). In FP32 no cast is traced."""

    def __init__(self, model: StudentModel) -> None:
        super().__init__()
        self.spectrogram = LogSpectrogram(model.config.audio)
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
    """What one exported graph takes and returns, with example inputs for export and parity."""

    part: str
    module: nn.Module
    input_names: list[str]
    output_names: list[str]
    example: tuple[Tensor, ...]


def part_specs(model: StudentModel, batch: int = EXAMPLE_BATCH, seed: int = 0) -> list[PartSpec]:
    """The graphs of ``model`` (audio only for audio configs), with random example inputs."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    s = cfg.input_size
    keys = list(model.feature_shapes(s, s))
    frames = torch.randn(batch, 3, s, s, generator=gen)
    specs = []
    enc_inputs: tuple[Tensor, ...] = (frames,)
    enc_names = ["frames"]
    if model.uses_audio:
        wave = 0.3 * torch.randn(batch, cfg.audio.window_samples, generator=gen)
        specs.append(PartSpec("audio", AudioFrontEnd(model), ["waveform"], ["audio_embedding"], (wave,)))
        with torch.no_grad():
            emb = AudioFrontEnd(model)(wave)
        enc_inputs = (frames, emb, torch.ones(batch, 1))
        enc_names = ["frames", "audio_embedding", "audio_on"]
    specs.append(PartSpec("encoder", EncoderGraph(model), enc_names, keys, enc_inputs))
    t = len(cfg.window_offsets)
    with torch.no_grad():
        feats = [model.encode(*enc_inputs) for _ in range(1)][0]
    window = tuple(
        (v.unsqueeze(1).expand(-1, t, *v.shape[1:]) + 0.1 * torch.randn(batch, t, *v.shape[1:], generator=gen))
        .contiguous() for v in feats.values()
    )
    specs.append(PartSpec("head", HeadGraph(model, keys), keys, ["logits"], window))
    return specs


def part_path(out_dir: Path, name: str, part: str, precision: str = "fp32") -> Path:
    suffix = "" if precision == "fp32" else f".{precision}"
    return Path(out_dir) / f"{name}.{part}{suffix}.onnx"


def set_metadata(model: onnx.ModelProto, config_json: str, part: str, precision: str,
                 extra: dict[str, str] | None = None) -> None:
    """Replace the graph's ``metadata_props``: config JSON, part, precision, version (+ ``extra``, e.g.
    ``stanet_rt.source_sha256``: the checkpoint it was exported from)."""
    del model.metadata_props[:]
    for key, value in (("stanet_rt.config", config_json), ("stanet_rt.part", part),
                       ("stanet_rt.precision", precision), ("stanet_rt.version", __version__),
                       *sorted((extra or {}).items())):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def save_atomic(model: onnx.ModelProto, path: Path) -> Path:
    """Check (full) and write ``model`` to ``path`` via a temporary file in the same folder."""
    onnx.checker.check_model(model, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def export_part(spec: PartSpec, path: Path, config_json: str, opset: int = DEFAULT_OPSET,
                extra: dict[str, str] | None = None) -> Path:
    """Export one graph with the dynamo exporter (dynamic batch) and write it with metadata."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    dims = tuple({0: batch} for _ in spec.example)
    dynamic = (dims,) if spec.part == "head" else dims  # the head takes *features (one varargs entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            spec.module.eval(), spec.example, dynamo=True, opset_version=opset,
            input_names=spec.input_names, output_names=spec.output_names,
            dynamic_shapes=dynamic, external_data=False, verbose=False,
        )
    model = program.model_proto
    set_metadata(model, config_json, spec.part, "fp32", extra)
    return save_atomic(model, path)


def read_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file as a dict (raises on an unreadable file)."""
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
