"""Students to ONNX: the three graphs of ``stanet_rt.models.parts`` (audio front end, encoder, head),
written with the names and metadata of the artifact contract (``stanet_rt.artifacts``).

Batch is dynamic (exported from batch 2: torch.export specialises 0/1-sized example dims). Opset 18 by
default (deployment-notes 1.2). Every file carries the contract's metadata (config JSON, part, precision,
version, schema, weights hash), is checked with ``onnx.checker`` (full check) and written atomically.

Imports torch, onnx and ``stanet_rt``; not ``engines`` or the pipeline.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
import torch

from stanet_rt import __version__
from stanet_rt.artifacts import META_WEIGHTS_SHA256, metadata_dict, onnx_weights_sha256
from stanet_rt.fileio import atomic_path
from stanet_rt.models.parts import PartSpec

DEFAULT_OPSET = 18


def set_metadata(model: onnx.ModelProto, config_json: str, part: str, precision: str,
                 extra: dict[str, str] | None = None) -> None:
    """Replace the graph's ``metadata_props`` with the contract's entries (``stanet_rt.artifacts``): config
    JSON, part, precision, version, schema, the hash of the graph's weights (+ ``extra``, e.g. the sha256
    of the checkpoint it was exported from)."""
    del model.metadata_props[:]
    extra = {**(extra or {}), META_WEIGHTS_SHA256: onnx_weights_sha256(model)}
    for key, value in metadata_dict(config_json, part, precision, __version__, extra).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def save_atomic(model: onnx.ModelProto, path: Path) -> Path:
    """Check (full) and write ``model`` to ``path`` via a temporary file in the same folder."""
    onnx.checker.check_model(model, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def export_part(spec: PartSpec, path: Path, config_json: str, opset: int = DEFAULT_OPSET,
                extra: dict[str, str] | None = None) -> Path:
    """Export one graph with the dynamo exporter (dynamic batch) and write it with metadata."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    dims = tuple({0: batch} for _ in spec.example)
    dynamic = (dims,) if spec.part == "head" else dims  # the head takes *features (one varargs entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            spec.module.eval(), spec.example, dynamo=True, opset_version=opset,
            input_names=spec.input_names, output_names=spec.output_names,
            dynamic_shapes=dynamic, external_data=False, verbose=False,
        )
    model = program.model_proto
    set_metadata(model, config_json, spec.part, "fp32", extra)
    return save_atomic(model, path)
