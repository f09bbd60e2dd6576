"""Shared exports for the export / engine tests (not a test module: no test functions here).

A dynamo export costs several seconds per graph on the 2-core CI box, so each tiny student is exported
once per test process, lazily, into a temporary folder removed at exit; ``tiny_sta`` also gets its FP16
graphs. Tests must not write into these folders: the ones that add or break files work on a copy
(:func:`copy_export`). Models are made "lively" (``_model_helpers.lively``) so that their outputs have
real variance and the parity CC is defined.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _model_helpers import lively
from stanet_rt.export.api import ExportReport, export_model

from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model
from stanet_rt.models.student_base import StudentModel

STUDENTS = ("tiny_sta", "tiny_sta_plus", "tiny_lite")
WITH_FP16 = ("tiny_sta", "tiny_sta_plus")
PARTS = ("audio", "encoder", "head")

_ROOT = Path(tempfile.mkdtemp(prefix="stanet-export-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)


def lively_student(name: str, seed: int = 0, audio: bool = True) -> StudentModel:
    """A tiny student of config ``name`` (audio-free when ``audio`` is False), seeded, lively, eval mode."""
    torch.manual_seed(seed)
    config = get_config(name)
    if not audio:
        config = config.replace(audio=None)
    return lively(build_model(config)).eval()


@dataclass(frozen=True)
class Exported:
    """One cached export: its folder, the model it came from, the report and a checkpoint of the model."""

    folder: Path
    model: StudentModel
    report: ExportReport
    checkpoint: Path

    @property
    def name(self) -> str:
        return self.model.config.name

    def path(self, part: str, precision: str = "fp32") -> Path:
        suffix = "" if precision == "fp32" else f".{precision}"
        return self.folder / f"{self.name}.{part}{suffix}.onnx"


@functools.cache
def exported(name: str) -> Exported:
    """The cached export of student ``name`` (FP16 graphs too for :data:`WITH_FP16`), without TensorRT."""
    folder = _ROOT / name
    model = lively_student(name)
    checkpoint = save_checkpoint(_ROOT / f"{name}.pt", model)
    # from the checkpoint: the graphs carry its hash, so a copy of both serves the "exported beside" tests
    report = export_model(checkpoint, folder, fp16=name in WITH_FP16, tensorrt=False, progress=False)
    return Exported(folder, model, report, checkpoint)


def copy_export(src: Exported, dst: Path, stem: str | None = None) -> Path:
    """Copy the ONNX graphs of ``src`` into ``dst`` (created), renamed to ``<stem>.<part>...onnx`` when
    ``stem`` is given (what ``export_model(..., name=stem)`` writes); returns ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.folder.glob("*.onnx"):
        name = path.name if stem is None else stem + path.name[len(src.name):]
        shutil.copy2(path, dst / name)
    return dst


def torch_outputs(module: torch.nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Eager outputs of a graph wrapper for float32 host inputs (a tuple output or a single tensor)."""
    with torch.no_grad():
        out = module.eval()(*[torch.from_numpy(x) for x in inputs])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def cc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two flattened arrays (float64)."""
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])
