"""Self-describing checkpoints: ``torch.save({"format", "config", "state_dict", "meta"})``.

A checkpoint carries its :class:`~stanet_rt.config.ModelConfig` as JSON, so ``load_checkpoint``
rebuilds the network without any other information. Unlike the original code (which pickled whole
modules and ``DataParallel`` wrappers), only tensors and plain Python data are stored, the
``module.`` prefix of DDP/DataParallel is stripped on save, and loading uses ``weights_only=True``.
The payload also records ``weights_sha256`` (:func:`state_dict_sha256`), checked at load: a flipped
byte in any tensor is an error naming the file (older checkpoints without it still load).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stanet_rt.config import ModelConfig
from stanet_rt.errors import InputError, WeightsError
from stanet_rt.fileio import atomic_path

FORMAT = "stanet-rt/checkpoint/v1"


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state.items()}


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's tensors in key order: key, dtype, shape and the raw bytes."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_config_of(model: nn.Module) -> ModelConfig:
    """The config of a model (unwrapping DDP / DataParallel)."""
    inner = getattr(model, "module", model)
    config = getattr(inner, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"{type(inner).__name__} has no ModelConfig in .config")
    return config


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (its config and state dict) and ``meta`` (epoch, optimiser state, ...) atomically.

    The file is written to a temporary name in the same folder and renamed into place, so an
    interrupted save never leaves a truncated checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inner = getattr(model, "module", model)
    state = _strip_module_prefix(inner.state_dict())
    payload = {
        "format": FORMAT,
        "config": model_config_of(model).to_dict(),
        "state_dict": state,
        "weights_sha256": state_dict_sha256(state),
        "meta": meta or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint's raw payload (config dict, state dict, meta), validating its format."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt / not a torch file
        # Only the exception's type: torch's messages run over several lines (and its weights-only
        # UnpicklingError advises weights_only=False, wrong for a corrupt or foreign file).
        raise InputError(f"{path}: not a readable stanet-rt checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a stanet-rt checkpoint (missing format tag {FORMAT!r})")
    expected = payload.get("weights_sha256")
    if expected and str(map_location) != "meta" and state_dict_sha256(payload["state_dict"]) != expected:
        raise WeightsError(f"{path}: the weights do not match the hash recorded at save (corrupted or edited "
                           "file)")
    return payload


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Rebuild the model stored in ``path``; returns (model in eval mode, config, meta)."""
    from stanet_rt.models.factory import build_model  # lazy: models import torch-heavy code

    payload = read_checkpoint(path, map_location)
    config = ModelConfig.from_dict(payload["config"])
    model = build_model(config)
    missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    if missing or unexpected:
        raise WeightsError(
            f"{path}: state dict does not match config {config.name!r} "
            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    model.eval()
    return model, config, payload.get("meta", {})
