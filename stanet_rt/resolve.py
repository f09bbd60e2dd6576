"""One way to name a model (in the spirit of timm's ``create_model``): every command and the library
resolve a model argument here.

Accepted, tried in this order:

- nothing / ``None`` / ``""`` / ``"default"``: the default model (the user's installed default, else
  the shipped one, ``stanet_rt.models.default``);
- a registered config name (``sta``, ``stanet_lite``, ...): that architecture with random weights;
- a checkpoint (``.pt`` / ``.pth``);
- an export: its folder, its ``<dir>/<name>`` prefix, or any one of its files (a single ``.onnx`` of
  any part, an ``.engine``).

:func:`resolve_model` only looks at names and files (torch-free); :func:`open_model` opens engines,
:func:`load_config` reads a config (torch only for a checkpoint), :func:`load_torch_model` builds the
torch module (export, info).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stanet_rt.errors import InputError

KINDS = ("config", "checkpoint", "export")
DEFAULT = "default"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: ``kind`` (config | checkpoint | export), ``target`` (config name, checkpoint path or
    export prefix ``<dir>/<name>``), what the user gave (``given``) and whether it is the default model."""

    kind: str
    target: str | Path
    given: str
    default: bool = False

    def describe(self) -> str:
        what = {"config": "config {} (random weights)", "checkpoint": "checkpoint {}", "export": "export {}"}
        return ("default model, " if self.default else "") + what[self.kind].format(self.target)


def _is_export_prefix(path: Path) -> bool:
    from stanet_rt.artifacts import prefix_file

    return prefix_file(path, "head").is_file() or any(path.parent.glob(f"{path.name}.head.*.engine"))


def resolve_model(model: str | Path | None = None) -> ModelRef:
    """Resolve one model argument (see the module docstring); InputError naming it otherwise."""
    from stanet_rt.config import list_configs

    given = "" if model is None else str(model)
    if given in ("", DEFAULT):
        from stanet_rt.models.default import default_model_paths

        return ModelRef("checkpoint", default_model_paths()[0], given or DEFAULT, default=True)
    if not isinstance(model, Path) and given in list_configs():
        return ModelRef("config", given, given)
    path = Path(given)
    if path.suffix in (".pt", ".pth"):
        if not path.is_file():
            raise InputError(f"{path}: checkpoint not found")
        return ModelRef("checkpoint", path, given)
    if path.suffix in (".onnx", ".engine") or path.is_dir():
        if not path.exists():
            raise InputError(f"{path}: file not found")
        from stanet_rt.artifacts import student_prefix

        return ModelRef("export", student_prefix(path), given)
    if _is_export_prefix(path):
        return ModelRef("export", path, given)
    raise InputError(f"{given}: not a model: expected 'default', a registered config ({', '.join(list_configs())}), "
                     "a checkpoint (.pt), an export folder / prefix, an .onnx or an .engine")


def resolve_models(models: list[str | Path] | None) -> list[ModelRef]:
    """Several models (fused); none = every default model (STA-class first, then the STA+-class one)."""
    if not models:
        from stanet_rt.models.default import default_model_paths

        return [ModelRef("checkpoint", p, DEFAULT, default=True) for p in default_model_paths()]
    return [resolve_model(m) for m in models]


def open_model(model: str | Path | ModelRef | None = None, backend: str = "auto", device: str | None = "auto",
               precision: str = "auto") -> Any:
    """The model's engines (``engines.StudentEngines``). A checkpoint runs with torch, or with the graphs
    exported beside it (``auto`` / ``onnxruntime`` / ``tensorrt``); a config runs its random weights with
    torch; an export runs with ONNX Runtime or TensorRT."""
    from stanet_rt import engines

    ref = model if isinstance(model, ModelRef) else resolve_model(model)
    if ref.kind == "config":
        if backend not in ("auto", "torch"):
            raise InputError(f"{ref.given}: a config (random weights) runs with the torch backend, not {backend}")
        from stanet_rt.engines.auto import student_engines_of_module

        net, _ = load_torch_model(ref)
        return student_engines_of_module(net, device, precision)
    return engines.open_student(ref.target, backend=backend, device=device, precision=precision)


def load_config(model: str | Path | ModelRef | None = None) -> tuple[Any, ModelRef]:
    """(ModelConfig, ref) without building the network: an export's metadata, a checkpoint's payload."""
    from stanet_rt.config import ModelConfig, get_config

    ref = model if isinstance(model, ModelRef) else resolve_model(model)
    if ref.kind == "config":
        return get_config(str(ref.target)), ref
    if ref.kind == "checkpoint":
        from stanet_rt.checkpoint import read_checkpoint

        return ModelConfig.from_dict(read_checkpoint(ref.target, map_location="meta")["config"]), ref
    from stanet_rt.artifacts import META_CONFIG, prefix_file, read_metadata

    head = prefix_file(ref.target, "head")
    try:
        meta = read_metadata(head)
    except Exception as exc:  # noqa: BLE001 - an unreadable graph is bad input
        raise InputError(f"{head}: not a loadable ONNX model ({type(exc).__name__})") from None
    if META_CONFIG not in meta:
        raise InputError(f"{head}: not a stanet-rt export (no {META_CONFIG} in its metadata)")
    return ModelConfig.from_json(meta[META_CONFIG]), ref


def load_torch_model(model: str | Path | ModelRef | None = None) -> tuple[Any, ModelRef]:
    """(torch module in eval mode, ref) for a config (random weights) or a checkpoint; an export has no
    torch weights (InputError). Imports torch."""
    ref = model if isinstance(model, ModelRef) else resolve_model(model)
    if ref.kind == "config":
        from stanet_rt.config import get_config
        from stanet_rt.models.factory import build_model

        return build_model(get_config(str(ref.target))).eval(), ref
    if ref.kind == "checkpoint":
        from stanet_rt.checkpoint import load_checkpoint

        return load_checkpoint(ref.target)[0], ref
    raise InputError(f"{ref.given}: an export holds graphs, not torch weights; give its checkpoint (.pt) "
                     "or a config name")
