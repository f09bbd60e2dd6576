"""Test helpers for the model tests: make random-init tiny models "lively" enough that behaviour tests
see their inputs (not a test module: no test functions here)."""

from __future__ import annotations

import torch
from torch import nn


def lively(model: nn.Module) -> nn.Module:
    """Redraw conv weights so signals survive random init, in place: the ``extra`` heads from N(0, 0.3)
    (the spec's N(0, 0.01) leaves every gate at ~sigmoid(0) = 0.5), the trunks with torchvision's He
    init (PyTorch's default shrinks a BN-free VGG's signal ~3x per layer). Returns ``model``."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            if "extra" in name:
                nn.init.normal_(m.weight, 0.0, 0.3)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


class LoudAudio(nn.Module):
    """Stand-in audio net: the first ``dim`` spectrogram values x 10. A random-init NetVLAD maps every
    noise spectrogram to nearly the same unit vector, which would hide the audio path's wiring."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return spec.flatten(1)[:, : self.out_dim] * 10


def audio_sensitive(model: nn.Module) -> nn.Module:
    """``lively`` plus a :class:`LoudAudio` audio net and N(0, 1) audio-visual linears, in place."""
    lively(model)
    model.audio_net = LoudAudio(model.audio_net.out_dim)
    for m in model.extra_av.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0)
    return model
