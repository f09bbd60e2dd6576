"""``open()`` picks a backend by file suffix; ``open_student()`` bundles a student's parts.

``auto``: ``.engine`` -> native TensorRT if its sidecar matches this GPU and TensorRT version, else
the ONNX beside it through ONNX Runtime, with a one-line warning saying why; ``.onnx`` -> ONNX Runtime;
``.pt`` (a checkpoint) -> PyTorch. Imports ``engines`` backends lazily.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from stanet_rt.engines.base import Engine

from stanet_rt.artifacts import (
    META_CONFIG,
    META_PART,
    META_SOURCE_SHA256,
    Sidecar,
    engines_of,
    mismatch_reason,
    onnx_beside,
    prefix_file,
    read_metadata,
    sha256_of,
    student_prefix,
)
from stanet_rt.config import ModelConfig
from stanet_rt.errors import InputError

log = logging.getLogger("stanet_rt.engines")
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16")


def _gpu_and_trt() -> tuple[str | None, str | None, str | None]:
    """(GPU name, compute capability, TensorRT version), None where absent."""
    from stanet_rt.devices import gpus

    found = gpus()
    gpu, cc = (found[0].name, found[0].compute_capability) if found else (None, None)
    trt_version = None
    try:
        import tensorrt

        trt_version = tensorrt.__version__
    except ImportError:
        pass
    return gpu, cc, trt_version


def _device(device: str | None) -> str:
    """``None`` means ``"auto"``."""
    return "auto" if device is None else device


def open(path: str | Path, backend: str = "auto", device: str | None = "auto") -> Engine:  # noqa: A001
    """Open one graph: an ``.engine`` or an ``.onnx`` (use :func:`open_student` for checkpoints).
    ``device``: "auto" (or None), "cpu", "cuda" or "cuda:N"."""
    path = Path(path)
    device = _device(device)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".engine":
        if backend in ("auto", "tensorrt"):
            try:
                side = Sidecar.read(path)
            except (FileNotFoundError, TypeError, ValueError) as exc:
                reason = f"sidecar unreadable ({exc})"
            else:
                onnx = onnx_beside(path)
                gpu, cc, trt_version = _gpu_and_trt()
                reason = mismatch_reason(side, gpu, cc, trt_version, sha256_of(onnx) if onnx.exists() else None)
            if reason is None:
                from stanet_rt.engines.trt_backend import TensorRTEngine

                return TensorRTEngine(path)
            if backend == "tensorrt":
                raise InputError(f"{path}: cannot run this engine here: {reason}")
            fallback = onnx_beside(path)
            if not fallback.exists():
                raise InputError(f"{path}: cannot run this engine here ({reason}) and {fallback.name} is missing")
            log.warning("%s: %s; using %s through ONNX Runtime", path.name, reason, fallback.name)
            engine = open(fallback, "onnxruntime", device)
            engine.info.notes.append(f"fallback from {path.name}: {reason}")
            return engine
        raise InputError(f"{path}: an engine file needs the tensorrt or auto backend, not {backend}")
    if path.suffix == ".onnx":
        if backend not in ("auto", "onnxruntime"):
            raise InputError(f"{path}: an ONNX file runs with onnxruntime (or auto), not {backend}")
        from stanet_rt.engines.ort_backend import OrtEngine

        return OrtEngine(path, device)
    raise InputError(f"{path}: unknown model file type {path.suffix!r} (expected .onnx or .engine; "
                     "checkpoints open with open_student)")


@dataclass
class StudentEngines:
    """A student's parts behind engines: ``audio`` (None without audio), ``encoder``, ``head``."""

    config: ModelConfig
    encoder: Engine
    head: Engine
    audio: Engine | None = None

    @property
    def backend(self) -> str:
        return self.encoder.info.backend


def _config_from_metadata(meta: dict[str, str], path: Path) -> ModelConfig:
    if META_CONFIG not in meta:
        raise InputError(f"{path}: not a stanet-rt export (no {META_CONFIG} in its metadata)")
    return ModelConfig.from_json(meta[META_CONFIG])


def _metadata(engine: Engine, onnx_path: Path | None) -> dict[str, str] | None:
    """The stanet-rt metadata of an opened graph: ONNX Runtime's, else the ONNX file's (an engine's
    ONNX beside it), else None (a TensorRT engine without its ONNX: only its sidecar's part is known)."""
    meta = getattr(engine, "metadata", None)
    if isinstance(meta, dict):
        return meta
    if onnx_path is not None and onnx_path.is_file():
        try:
            return read_metadata(onnx_path)
        except Exception as exc:  # unreadable ONNX beside an engine
            raise InputError(f"{onnx_path}: not a loadable ONNX model ({type(exc).__name__})") from None
    return None


def _check_part(engine: Engine, file: Path, onnx_path: Path | None, part: str,
                config: ModelConfig | None) -> ModelConfig:
    """The config ``file`` was exported from, after checking it is ``part`` of the same model as
    ``config`` (when given). Raises InputError naming the file."""
    meta = _metadata(engine, onnx_path)
    if meta is None:  # an engine alone: its sidecar says the part, the config comes from the others
        found = engine.info.part
        if found != part:
            raise InputError(f"{file}: this is the {found} graph of a model, not its {part}")
        if config is None:
            raise InputError(f"{file}: cannot tell which model this engine belongs to (its ONNX is missing)")
        return config
    own = _config_from_metadata(meta, file)
    found = meta.get(META_PART)
    if found is not None and found != part:
        raise InputError(f"{file}: this is the {found} graph of {own.name}, not its {part} "
                         f"({META_PART} is {found!r})")
    if config is not None and own != config:
        raise InputError(f"{file}: this {part} graph belongs to another model ({own.name}, {own.arch}) "
                         f"than the head ({config.name}, {config.arch})")
    return own


def exported_beside(checkpoint: Path) -> Path | None:
    """The ``<dir>/<stem>`` prefix of graphs exported beside a checkpoint (``stanet-rt export x.pt --name
    x --out <dir>``): ``<stem>.head.onnx`` exists and its ``stanet_rt.source_sha256`` is the checkpoint's
    (file times are no guide after a git checkout). An export of another file (the checkpoint was
    retrained since) is ignored with a warning."""
    prefix = checkpoint.with_suffix("")
    head = prefix_file(prefix, "head")
    if not head.is_file():
        return None
    try:
        import onnx as onnx_lib

        meta = {p.key: p.value for p in onnx_lib.load(str(head), load_external_data=False).metadata_props}
    except Exception:  # noqa: BLE001 - an unreadable graph beside a checkpoint: use the checkpoint
        meta = {}
    if meta.get(META_SOURCE_SHA256) != sha256_of(checkpoint):
        log.warning("%s: not exported from this %s; using the checkpoint (re-export it)", head.name,
                    checkpoint.name)
        return None
    return prefix


def open_student(path: str | Path, backend: str = "auto", device: str | None = None,
                 precision: str = "auto") -> StudentEngines:
    """A checkpoint (``.pt``: torch backend), an export folder, a ``<dir>/<name>`` prefix of ONNX / engine
    files, or one of those files. ``auto`` prefers TensorRT engines, then ONNX, and uses torch for a
    checkpoint unless graphs exported from it lie beside it (:func:`exported_beside`; those are also
    what ``onnxruntime`` / ``tensorrt`` run for a checkpoint). ``device`` None (or "auto") picks CUDA when
    there is a GPU, else the CPU. ``precision``: ``fp32`` / ``fp16`` graphs (``<name>.<part>.fp16.onnx``,
    FP16 engines; torch: half on CUDA), or ``auto`` (FP32 graphs; any engine, FP16 first).

    Every graph's metadata must say it is that part (``stanet_rt.part``) of the same model
    (``stanet_rt.config``) as the head, and a config with audio needs its ``<name>.audio`` graph;
    otherwise an InputError names the file."""
    path = Path(path)
    device = _device(device)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if path.suffix in (".pt", ".pth") and backend != "torch" and exported_beside(path) is not None:
        path = exported_beside(path)  # ONNX Runtime is the default where an export exists
    elif path.suffix in (".pt", ".pth"):
        if backend not in ("auto", "torch"):
            raise InputError(f"{path}: a checkpoint runs with the torch backend; export it for {backend} "
                             "(stanet-rt export)")
        return _open_checkpoint(path, device, precision)
    if backend == "torch":
        raise InputError(f"{path}: the torch backend runs a checkpoint (.pt); exported graphs run with "
                         "onnxruntime, tensorrt or auto")
    prefix = student_prefix(path)
    graph_precision = "fp32" if precision == "auto" else precision

    def open_part(part: str) -> Engine | None:
        onnx = prefix_file(prefix, part, graph_precision)
        engine_precision = None if precision == "auto" else precision
        candidates = engines_of(prefix, part, engine_precision) if backend != "onnxruntime" else []
        if candidates:
            engine, file, beside = open(candidates[0], backend, device), candidates[0], onnx_beside(candidates[0])
        elif onnx.exists():
            engine, file, beside = open(onnx, "onnxruntime", device), onnx, onnx
        else:
            return None
        nonlocal config
        config = _check_part(engine, file, beside, part, config)
        return engine

    config: ModelConfig | None = None
    parts: dict[str, Engine] = {}
    for part in ("head", "encoder"):
        engine = open_part(part)
        if engine is None:
            flag = " --fp16" if graph_precision == "fp16" else ""
            raise InputError(f"{prefix_file(prefix, part, graph_precision)}: not found "
                             f"(export the model with `stanet-rt export{flag}`)")
        parts[part] = engine
    assert config is not None
    audio = None
    if config.audio is not None:
        audio = open_part("audio")
        if audio is None:
            raise InputError(f"{prefix_file(prefix, 'audio', graph_precision)}: not found, and {config.name} "
                             "uses audio (export the model with `stanet-rt export`)")
    return StudentEngines(config, parts["encoder"], parts["head"], audio)


def _open_checkpoint(path: Path, device: str, precision: str) -> StudentEngines:
    """A student checkpoint through the torch backend (``auto`` precision: FP32)."""
    from stanet_rt.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(path)
    return student_engines_of_module(model, device, precision, str(path))


def student_engines_of_module(model: object, device: str | None = "auto", precision: str = "auto",
                              source: str = "model") -> StudentEngines:
    """A student torch module's parts through the torch backend (on a copy of it); ``source`` names it in
    errors. ``device`` auto: CUDA when there is a GPU; ``precision`` auto: FP32, fp16 needs CUDA."""
    from stanet_rt.engines.torch_backend import torch_engines

    from stanet_rt.models.student_base import StudentModel

    if not isinstance(model, StudentModel):
        arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
        what = "checkpoint" if source.endswith((".pt", ".pth")) else "model"
        raise InputError(f"{source}: a {arch} {what} is not a student (STA / STA+ / stanet_lite)")
    device = _device(device)
    dev = device if device != "auto" else ("cuda" if _gpu_and_trt()[0] else "cpu")
    if precision == "fp16" and not dev.startswith("cuda"):
        raise InputError(f"{source}: fp16 with the torch backend needs a CUDA device (this run is on {dev})")
    parts = torch_engines(model, dev, "fp32" if precision == "auto" else precision)
    return StudentEngines(model.config, parts["encoder"], parts["head"], parts.get("audio"))
