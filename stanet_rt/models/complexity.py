"""Parameter and MAC counts, measured by running the model on the ``meta`` device under
``torch.utils.flop_counter.FlopCounterMode`` (no memory allocated; MACs = FLOPs / 2; counts conv,
linear, matmul/bmm/einsum; ignores BN, activations, softmax, resizing, as the spec's section 10).

For students the cost per output frame is given two ways:
- without caching: every window frame is encoded again: T x (audio + encode) + head;
- with feature caching (the streaming runtime): audio + encode once per new frame + head.

Imports torch and ``stanet_rt.{config,models}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stanet_rt.config import ModelConfig


def count_macs(fn: Callable[[], Any]) -> float:
    """MACs (multiply-accumulates) of one call of ``fn``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2.0


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class FrameCost:
    """GMACs per output frame: parts and the totals with and without feature caching."""

    audio_gmac: float
    encode_gmac: float
    head_gmac: float
    window: int

    @property
    def cached_gmac(self) -> float:
        return self.audio_gmac + self.encode_gmac + self.head_gmac

    @property
    def uncached_gmac(self) -> float:
        return self.window * (self.audio_gmac + self.encode_gmac) + self.head_gmac


def frame_cost(model: nn.Module, config: ModelConfig, size: int | None = None) -> FrameCost:
    """Per-frame cost of ``model`` (built on any device; counted on ``meta`` inputs).

    Students: audio / encode / head split. Teachers and AudioSwitch: one forward over their window,
    reported as ``encode`` with window 1 (their cost per input window).
    """
    s = size or config.input_size
    a = config.audio
    with torch.device("meta"):
        frames = torch.randn(1, 3, s, s)
        spec = torch.randn(1, 1, a.n_freq, a.n_time) if a is not None else None
        if config.is_student:
            audio_gmac = count_macs(lambda: model.encode_audio(spec)) / 1e9 if spec is not None else 0.0
            emb = model.encode_audio(spec) if spec is not None else None
            encode_gmac = count_macs(lambda: model.encode(frames, emb)) / 1e9
            feats = model.encode(frames, emb)
            t = len(config.window_offsets)
            window = {k: v.unsqueeze(1).expand(-1, t, *v.shape[1:]) for k, v in feats.items()}
            head_gmac = count_macs(lambda: model.head(window, (s, s))) / 1e9
            return FrameCost(audio_gmac, encode_gmac, head_gmac, t)
        if config.arch == "audio_net":
            return FrameCost(count_macs(lambda: model(spec)) / 1e9, 0.0, 0.0, 1)
        if config.arch == "audio_switch":
            return FrameCost(0.0, count_macs(lambda: model(frames, spec)) / 1e9, 0.0, 1)
        t = len(config.window_offsets)
        clip = frames.unsqueeze(1).expand(-1, t, -1, -1, -1)
        clip_spec = spec.unsqueeze(1).expand(-1, t, -1, -1, -1) if spec is not None else None
        return FrameCost(0.0, count_macs(lambda: model(clip, clip_spec)) / 1e9, 0.0, 1)
