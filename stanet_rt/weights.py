"""Loading published weight files from local paths (nothing is downloaded).

Supported files:
- torchvision ResNet-18/50 and the WSL ResNeXt-101 32x8d (``torch.hub`` facebookresearch/WSL-Images
  saves a torchvision-layout state dict): every backbone key must be present with the same shape;
  the classifier ``fc.*`` (and ``layer4.*`` for a trunk truncated after layer3) are ignored on purpose.
- torchvision VGG16 (``vgg16-397923af.pth``): the ``features.N`` keys load into VGG16-D1 (same
  indices; the replaced pool and the dilation carry no weights); ``classifier.*`` is ignored.
- VGGSound ``vggsound_netvlad.pth.tar`` (a dict with ``model_state_dict``, keys as in hche11/VGGSound
  ``models/resnet.py`` @1e75f4d: ``conv1``, ``layer1..4``, ``avgpool.{conv,centroids}``): the 309-way
  ``fc_`` is ignored. Audio weights nested under a prefix (``audnet.``: the audio net inside the
  original STANet models; ``audio_net.``: inside a stanet-rt checkpoint) load from that sub-dict.
- stanet-rt checkpoints and plain state dicts saved from ``DataParallel`` (``module.`` prefixes are
  stripped).
Anything else that does not match is an error naming the file and the first offending keys.

Imports torch and ``stanet_rt.{config,errors}``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from stanet_rt.config import BackboneConfig, ModelConfig
from stanet_rt.errors import WeightsError

_NESTED_KEYS = ("model_state_dict", "state_dict", "model")
_IGNORED_PREFIXES = {
    "resnet": ("fc.",),
    "vgg": ("classifier.",),
    "audio": ("fc_.", "fc."),
}
# Prefixes under which a file may nest the weights of a family (the rest of the file is not used).
_NESTED_PREFIXES = {
    "resnet": (),
    "vgg": (),
    "audio": ("audnet.", "audio_net."),
}


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a weight file (``.pth``, ``.pth.tar``, ``.pt``) into a flat state dict without ``module.``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable PyTorch weight file ({type(exc).__name__})") from None
    for key in _NESTED_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise WeightsError(f"{path}: does not contain a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def _family(cfg: BackboneConfig) -> str:
    if cfg.name in ("vgg16_d1", "vgg16_bn_d1"):
        return "vgg"
    if cfg.name == "audio_resnet18":
        return "audio"
    return "resnet"


def select_nested(state: dict[str, Tensor], own: set[str], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """``state`` itself when it has keys of the module (``own``); otherwise the keys under the first of
    ``prefixes`` that the file uses, with the prefix stripped; otherwise ``state`` unchanged."""
    if any(k in own for k in state):
        return state
    for prefix in prefixes:
        sub = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            return sub
    return state


def load_into(module: nn.Module, state: dict[str, Tensor], source: str, ignored: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module`` strictly: every module key present with its shape; file keys the
    module lacks must start with one of ``ignored``. Raises :class:`WeightsError` naming ``source``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    bad_shape = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
                 if k in state and state[k].shape != v.shape]
    unexpected = [k for k in state if k not in own and not k.startswith(ignored)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if bad_shape:
        problems.append(f"{len(bad_shape)} shape mismatches (e.g. {bad_shape[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if problems:
        raise WeightsError(f"{source}: does not match {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict({k: state[k] for k in own}, strict=True)


def load_backbone_weights(module: nn.Module, cfg: BackboneConfig, path: str | Path | None = None) -> None:
    """Load the published weights at ``path`` (default ``cfg.weights``) into a backbone / audio net."""
    path = path or cfg.weights
    if path is None:
        raise WeightsError(f"no weight file given for backbone {cfg.name}")
    ignored = _IGNORED_PREFIXES[_family(cfg)]
    if _family(cfg) == "resnet" and getattr(module, "num_stages", 4) < 4:
        ignored = (*ignored, *(f"layer{i}." for i in range(module.num_stages + 1, 5)))
    state = select_nested(read_state_dict(path), set(module.state_dict()), _NESTED_PREFIXES[_family(cfg)])
    load_into(module, state, str(path), ignored)


def load_pretrained(model: nn.Module, config: ModelConfig) -> list[str]:
    """Apply ``config.backbone.weights`` / ``config.audio_backbone.weights`` to ``model.backbone`` /
    ``model.audio_net`` (when set). Returns what was loaded."""
    loaded = []
    for attr, cfg in (("backbone", config.backbone), ("audio_net", config.audio_backbone)):
        if cfg is not None and cfg.weights and getattr(model, attr, None) is not None:
            load_backbone_weights(getattr(model, attr), cfg)
            loaded.append(f"{attr} <- {cfg.weights}")
    return loaded
