"""The contract every student (STA, STA+, stanet_lite) implements: audio front end, per-frame
``encode``, windowed ``head``.

This is what ``export/`` turns into ONNX graphs and what ``stanet_rt.pipeline`` streams with a
feature ring buffer (ARCHITECTURE.md, "The model as two halves"). Three parts:

- ``encode_audio(spectrogram) -> audio_embedding``: (B, 1, 257, 48) float32 log-spectrogram windows
  (``stanet_rt.audio``) -> (B, A) float32, A = :attr:`StudentModel.audio_embedding_dim` (the audio
  net(s), e.g. VGGSound ResNet-18 + NetVLAD -> 8192). Exported together with the log-spectrogram as
  ``<name>.audio.onnx`` (waveform in). Only for configs with audio.
- ``encode(frames, audio_embedding, audio_on) -> FrameFeatures``: ``frames`` (B, 3, H, W) float32,
  ImageNet-normalised; ``audio_embedding`` (B, A) or ``None``; ``audio_on`` (B, 1) float in {0, 1}
  multiplies the audio-visual gate (0 = the audio-free path: no audio track / silent microphone).
  ``audio_embedding=None`` means zeros and ``audio_on`` = 0; ``audio_on=None`` with an embedding
  means 1. Exported encoders of audio configs always take all three inputs, so one graph serves
  both paths. Returns an ordered ``dict[str, Tensor]`` whose keys and per-sample shapes are given by
  :meth:`StudentModel.feature_shapes`. Runs once per frame.
- ``head(window) -> logits``: ``window`` maps the same keys to tensors (B, T, *shape) stacked over
  the config's ``window_offsets`` in order (T = len(window_offsets)). Returns saliency logits
  (B, 1, H, W) of the frame at offset 0, at the input resolution (``output_size``, by default the
  config's square ``input_size``; sizes need not be divisible by the stride: STA runs at 356).

``forward(frames, spectrograms)`` with frames (B, T, 3, H, W) and spectrograms (B, T, 1, 257, 48)
is exactly ``head(stack_t(encode(frames[:, t], encode_audio(spectrograms[:, t]))))`` (a test pins
this). Trainers may use a model's richer training forward for auxiliary outputs.

Imports only torch and ``stanet_rt.config``.
"""

from __future__ import annotations

import abc
from collections import OrderedDict

import torch
from torch import Tensor, nn

from stanet_rt.config import ModelConfig


class StudentModel(nn.Module, metaclass=abc.ABCMeta):
    """Base class of the students. Subclasses implement the abstract methods below."""

    config: ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.is_student:
            raise ValueError(f"{config.arch!r} is not a student arch")
        self.config = config

    # -- the contract ---------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def audio_embedding_dim(self) -> int:
        """Width A of :meth:`encode_audio`'s output (0 when the config has no audio)."""

    @abc.abstractmethod
    def encode_audio(self, spectrogram: Tensor) -> Tensor:
        """(B, 1, 257, 48) log-spectrograms -> (B, A) audio embedding."""

    @abc.abstractmethod
    def encode(
        self, frames: Tensor, audio_embedding: Tensor | None = None, audio_on: Tensor | None = None
    ) -> OrderedDict[str, Tensor]:
        """(B, 3, H, W) frames, (B, A) audio embedding or None, (B, 1) gate -> ordered features."""

    def audio_inputs(
        self, batch: int, audio_embedding: Tensor | None, audio_on: Tensor | None, like: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Resolve the optional audio arguments of :meth:`encode` to tensors (B, A) and (B, 1)."""
        if audio_embedding is None:
            emb = like.new_zeros(batch, self.audio_embedding_dim)
            on = like.new_zeros(batch, 1)
        else:
            emb = audio_embedding
            on = like.new_ones(batch, 1) if audio_on is None else audio_on.reshape(batch, 1).to(like)
        return emb, on

    @abc.abstractmethod
    def head(self, window: dict[str, Tensor], output_size: tuple[int, int] | None = None) -> Tensor:
        """Features stacked over the window, each (B, T, *shape) -> (B, 1, H, W) logits.

        ``output_size`` (H, W) defaults to the config's square ``input_size`` (what exported heads
        bake in); :meth:`forward` passes the frames' own size.
        """

    @abc.abstractmethod
    def feature_shapes(self, height: int, width: int) -> OrderedDict[str, tuple[int, ...]]:
        """Per-sample shape of every FrameFeatures entry for an (height, width) input, in key order."""

    # -- composition (shared by all students) ---------------------------------------------------
    @property
    def window_offsets(self) -> tuple[int, ...]:
        return self.config.window_offsets

    @property
    def uses_audio(self) -> bool:
        return self.config.audio is not None

    def encode_window(
        self, frames: Tensor, spectrograms: Tensor | None, audio_on: Tensor | None = None
    ) -> OrderedDict[str, Tensor]:
        """Encode a (B, T, 3, H, W) clip frame by frame (as one B*T batch) and stack to (B, T, ...).
        ``audio_on`` (B,) or (B, 1) in {0, 1}: per clip, open (1, the default) or close the audio gate."""
        b, t = frames.shape[:2]
        embedding = None
        if spectrograms is not None and self.uses_audio:
            embedding = self.encode_audio(spectrograms.flatten(0, 1))
        on = None
        if audio_on is not None and embedding is not None:
            on = audio_on.reshape(b, 1).to(frames).repeat_interleave(t, dim=0)
        feats = self.encode(frames.flatten(0, 1), embedding, on)
        return OrderedDict((k, v.unflatten(0, (b, t))) for k, v in feats.items())

    def forward(self, frames: Tensor, spectrograms: Tensor | None = None) -> Tensor:
        """(B, T, 3, H, W) frames, (B, T, 1, 257, 48) spectrograms -> (B, 1, H, W) logits of offset 0."""
        if frames.dim() != 5 or frames.shape[1] != len(self.window_offsets):
            raise ValueError(
                f"expected frames (B, {len(self.window_offsets)}, 3, H, W), got {tuple(frames.shape)}"
            )
        return self.head(self.encode_window(frames, spectrograms), tuple(frames.shape[-2:]))

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Random encoder inputs: frames (B, 3, S, S) and spectrograms (B, 1, 257, 48) or None."""
        s = size or self.config.input_size
        frames = torch.randn(batch, 3, s, s)
        spec = None
        if self.config.audio is not None:
            a = self.config.audio
            spec = torch.randn(batch, 1, a.n_freq, a.n_time)
        return frames, spec
