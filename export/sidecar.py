"""TensorRT engine sidecars: the JSON written beside every engine, and the matching rule that decides
whether an engine may be used on this machine (engines are tied to the TensorRT version and the GPU's
compute capability, deployment-notes 2.3). Pure Python: tested on CPU.

Engine file name: ``<name>.<part>.<gpu>.<trt-version>.engine``; sidecar: same path + ``.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sidecar:
    onnx_sha256: str
    onnx_file: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    part: str
    shapes: dict[str, dict[str, list[int]]]  # input name -> {"min", "opt", "max"}

    def write(self, engine_path: Path) -> Path:
        path = sidecar_path(engine_path)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, engine_path: Path) -> Sidecar:
        path = sidecar_path(engine_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: engine sidecar not found")
        return cls(**json.loads(path.read_text()))


def sidecar_path(engine_path: Path) -> Path:
    return Path(str(engine_path) + ".json")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def engine_path(out_dir: Path, name: str, part: str, gpu_name: str, trt_version: str, precision: str) -> Path:
    return Path(out_dir) / f"{name}.{part}.{precision}.{slug(gpu_name)}.trt{slug(trt_version)}.engine"


def mismatch_reason(sidecar: Sidecar, gpu_name: str | None, compute_capability: str | None,
                    trt_version: str | None, onnx_sha256: str | None = None) -> str | None:
    """Why this engine cannot be used here (None if it can)."""
    if trt_version is None:
        return "TensorRT is not installed"
    if gpu_name is None:
        return "no CUDA GPU is present"
    if sidecar.tensorrt_version != trt_version:
        return f"built with TensorRT {sidecar.tensorrt_version}, this machine has {trt_version}"
    if sidecar.compute_capability != compute_capability:
        return (f"built for {sidecar.gpu_name} (compute {sidecar.compute_capability}), "
                f"this GPU is {gpu_name} (compute {compute_capability})")
    if onnx_sha256 is not None and sidecar.onnx_sha256 != onnx_sha256:
        return "the ONNX beside it changed since the engine was built"
    return None
