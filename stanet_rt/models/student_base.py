"""The contract every student (STA, STA+, stanet_lite) implements: per-frame ``encode``, windowed ``head``.

This is what ``export/`` turns into two ONNX graphs and what ``stanet_rt.pipeline`` streams with a
feature ring buffer (ARCHITECTURE.md, "The model as two halves").

- ``encode(frames, audio) -> FrameFeatures``: ``frames`` (B, 3, H, W) float32, ImageNet-normalised;
  ``audio`` (B, 1, 257, 48) float32 log-spectrogram windows (ignored, may be ``None``, when the
  config has no audio). Returns an ordered ``dict[str, Tensor]`` whose keys and per-sample shapes
  are given by :meth:`StudentModel.feature_shapes`.
- ``head(window) -> logits``: ``window`` maps the same keys to tensors (B, T, *shape) stacked over
  the config's ``window_offsets`` in order (T = len(window_offsets)). Returns saliency logits
  (B, 1, H, W) of the frame at offset 0, at the input resolution.
- ``forward(frames, audio)`` with frames (B, T, 3, H, W) and audio (B, T, 1, 257, 48) is exactly
  ``head(stack_t(encode(frames[:, t], audio[:, t])))`` (a test pins this). Training may use
  :meth:`StudentModel.forward_train`, which returns every auxiliary map the loss needs.

Imports only torch and ``stanet_rt.config``.
"""

from __future__ import annotations

import abc
from collections import OrderedDict

import torch
from torch import Tensor, nn

from stanet_rt.config import ModelConfig

class StudentModel(nn.Module, metaclass=abc.ABCMeta):
    """Base class of the students. Subclasses implement ``encode``, ``head`` and ``feature_shapes``."""

    config: ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.is_student:
            raise ValueError(f"{config.arch!r} is not a student arch")
        self.config = config

    # -- the contract ---------------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, frames: Tensor, audio: Tensor | None = None) -> OrderedDict[str, Tensor]:
        """(B, 3, H, W) frames, (B, 1, 257, 48) audio or None -> ordered per-frame features."""

    @abc.abstractmethod
    def head(self, window: dict[str, Tensor]) -> Tensor:
        """Features stacked over the window, each (B, T, *shape) -> (B, 1, H, W) logits."""

    @abc.abstractmethod
    def feature_shapes(self, height: int, width: int) -> OrderedDict[str, tuple[int, ...]]:
        """Per-sample shape of every FrameFeatures entry for an (height, width) input, in key order."""

    # -- composition (shared by all students) ---------------------------------------------------
    @property
    def window_offsets(self) -> tuple[int, ...]:
        return self.config.window_offsets

    def encode_window(self, frames: Tensor, audio: Tensor | None) -> OrderedDict[str, Tensor]:
        """Encode a (B, T, 3, H, W) clip frame by frame (as one B*T batch) and stack to (B, T, ...)."""
        b, t = frames.shape[:2]
        flat_audio = None if audio is None else audio.flatten(0, 1)
        feats = self.encode(frames.flatten(0, 1), flat_audio)
        return OrderedDict((k, v.unflatten(0, (b, t))) for k, v in feats.items())

    def forward(self, frames: Tensor, audio: Tensor | None = None) -> Tensor:
        """(B, T, 3, H, W) frames, (B, T, 1, 257, 48) audio -> (B, 1, H, W) logits of offset 0."""
        if frames.dim() != 5 or frames.shape[1] != len(self.window_offsets):
            raise ValueError(
                f"expected frames (B, {len(self.window_offsets)}, 3, H, W), got {tuple(frames.shape)}"
            )
        return self.head(self.encode_window(frames, audio))

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Random (frames, audio) for one encoder call: (B, 3, S, S) and (B, 1, 257, 48) or None."""
        s = size or self.config.input_size
        frames = torch.randn(batch, 3, s, s)
        audio = None
        if self.config.audio is not None:
            a = self.config.audio
            audio = torch.randn(batch, 1, a.n_freq, a.n_time)
        return frames, audio
