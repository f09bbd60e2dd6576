"""AudioSwitch (spec 7): is the sound relevant to what is seen in this frame?

Frame (B, 3, S, S) + audio embedding (B, A) -> 2-way logits (B, 2). The original pickled the whole
module and thresholded the raw "on" logit at 0; here it is a normal module with a state dict, the
bilinear layer is an einsum (export-friendly) and :meth:`AudioSwitch.decision` keeps the original
hard rule (logit of class 1 > 0). Its audio net is its own (as in the original, where the switch
was a separate network), also inside STA+, so a trained ``audio_switch`` state dict loads into
STA+'s switch unchanged; STA+ computes the switch's embedding in its ``encode_audio`` and passes it
in. :meth:`AudioSwitch.freeze` makes it a fixed decision inside a student (spec 7: the original
ran it under ``no_grad`` in eval mode).

Imports torch and ``stanet_rt.{config,models.backbones}``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stanet_rt.config import ModelConfig
from stanet_rt.models.backbones import audio_dim_of, audio_net_of, build_backbone


class AudioSwitch(nn.Module):
    """ResNeXt trunk to the average pool -> 128, audio embedding -> 128, bilinear -> 128 -> 2 logits."""

    def __init__(self, config: ModelConfig, own_audio_net: bool = False) -> None:
        super().__init__()
        dim = config.av_dim  # 128 in the paper
        self.config = config
        self.backbone = build_backbone(config.backbone)
        if config.audio_backbone is None:
            raise ValueError("AudioSwitch needs an audio backbone")
        self.audio_net = audio_net_of(config) if own_audio_net else None
        audio_dim = audio_dim_of(config)
        self.extra_visual = nn.Linear(self.backbone.channels[-1], dim)
        self.extra_audio = nn.Linear(audio_dim, dim)
        self.extra_bilinear = nn.Parameter(torch.empty(dim, dim, dim))
        self.extra_bilinear_bias = nn.Parameter(torch.zeros(dim))
        nn.init.uniform_(self.extra_bilinear, -1 / dim**0.5, 1 / dim**0.5)
        self.extra_fc = nn.Linear(dim, 2)
        self.frozen = False

    def freeze(self) -> AudioSwitch:
        """No gradients and eval mode for good: ``train()`` leaves a frozen switch in eval mode (BN
        statistics fixed, batch-independent decisions) and DDP sees no parameter that wants a grad."""
        self.frozen = True
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> AudioSwitch:
        return super().train(mode and not self.frozen)

    def forward(self, frames: Tensor, audio: Tensor) -> Tensor:
        """frames (B, 3, S, S); audio: (B, A) embedding, or (B, 1, 257, 48) spectrogram with an own net."""
        if self.audio_net is not None and audio.dim() == 4:
            audio = self.audio_net(audio)
        v = self.extra_visual(self.backbone.forward_pooled(frames))
        a = self.extra_audio(audio)
        joint = torch.einsum("bi,oij,bj->bo", a, self.extra_bilinear, v) + self.extra_bilinear_bias
        return self.extra_fc(joint)

    @staticmethod
    def decision(logits: Tensor) -> Tensor:
        """(B, 2) logits -> (B, 1) float in {0, 1}: the original's hard rule, logit of class 1 > 0."""
        on = logits[:, 1:2]
        # a Where, not a bool -> float Cast: the FP16 graph converter leaves a Cast's target type at float32
        # while retyping its output, which made `stanet-rt export --fp16` of STA+ fail ONNX's checker
        return torch.where(on > 0, torch.ones_like(on), torch.zeros_like(on))
