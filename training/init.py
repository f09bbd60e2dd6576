"""How a trainer's network starts: published weights, a data-dependent init for BN-free trunks, or a
warm start from an earlier stage's checkpoint.

* :func:`start_weights`: the config's published weight files (``BackboneConfig.weights``, loaded by
  ``stanet_rt.weights.load_pretrained``, as the original started every trunk from WSL / ImageNet /
  VGGSound weights); a VGG16-D1 trunk without weights gets :func:`lsuv_init` on a batch of training
  frames. VGG16-D1 has no BatchNorm, and from its default random init the light presets' SCAM+
  teachers stayed at chance accuracy for their whole CPU budget (measured); LSUV (Mishkin & Matas,
  "All you need is a good init", 2016: orthogonal weights, then each conv rescaled in order to unit
  output variance) makes them learn within it.
* :func:`warm_start`: copy the parameters of a trained model (e.g. a teacher's trunk into a student,
  the coarse SCAM teacher into its fine stage) whose names and shapes match. A CPU-preset stand-in for
  the pretrained trunks of the paper; the presets say where it is used.

Imports torch and ``stanet_rt.{weights,checkpoint,config}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from stanet_rt.checkpoint import read_checkpoint
from stanet_rt.config import ModelConfig


@torch.no_grad()
def lsuv_init(trunk: nn.Module, frames: Tensor, tol: float = 0.05, max_iter: int = 5) -> int:
    """Layer-sequential unit-variance init of every Conv2d of ``trunk`` on ``frames`` (N, 3, H, W):
    orthogonal weights and zero biases, then, layer by layer in forward order, weights divided by the
    layer's output std until it is within ``tol`` of 1. Returns the number of convs initialised."""
    convs = [m for m in trunk.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        nn.init.orthogonal_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    for conv in convs:
        seen: dict[str, float] = {}

        def record(_m: nn.Module, _i: tuple, out: Tensor, box: dict[str, float] = seen) -> None:
            box["std"] = float(out.std())  # now: an in-place ReLU may overwrite ``out`` later

        hook = conv.register_forward_hook(record)
        try:
            for _ in range(max_iter):
                trunk(frames)
                std = seen["std"]
                if abs(std - 1.0) < tol or std == 0.0:
                    break
                conv.weight.div_(std)
        finally:
            hook.remove()
    return len(convs)


def start_weights(
    model: nn.Module, config: ModelConfig, frames: Callable[[], Tensor] | None = None
) -> list[str]:
    """Published weights of ``config`` if it names them; else LSUV for a VGG16-D1 trunk (``frames()``
    gives a batch (N, 3, H, W) of training frames). Returns what was done, for the log."""
    from stanet_rt.weights import load_pretrained

    done = load_pretrained(model, config)
    trunk = getattr(model, "backbone", None)
    if config.backbone.name == "vgg16_d1" and not config.backbone.weights and trunk is not None and frames:
        n = lsuv_init(trunk, frames())
        done.append(f"backbone: LSUV init of {n} convs (no pretrained VGG16 weights)")
    return done


def warm_start(
    model: nn.Module, checkpoint: str | Path, prefixes: Sequence[str] = ("backbone.",)
) -> list[str]:
    """Copy from ``checkpoint`` every parameter / buffer under ``prefixes`` whose name and shape match
    ``model``'s. Returns the names copied (empty when nothing matched)."""
    state = read_checkpoint(checkpoint)["state_dict"]
    own = model.state_dict()
    take = {
        k: v
        for k, v in state.items()
        if k.startswith(tuple(prefixes)) and k in own and own[k].shape == v.shape
    }
    model.load_state_dict(take, strict=False)
    return sorted(take)
