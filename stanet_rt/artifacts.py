"""The artifact contract: how exported students are named on disk and what their metadata says.

Both ``stanet_rt.export`` (which writes artifacts) and ``stanet_rt.engines`` (which reads them) import
this module; nothing else defines a file name, a metadata key or the engine sidecar. Pure Python (numpy-
free, torch-free; ``onnx`` is imported lazily by :func:`read_metadata`).

Files of one export, ``<name>`` being any string (dots allowed, e.g. ``lite.v2``):

- ``<name>.<part>.onnx`` (FP32) and ``<name>.<part>.fp16.onnx`` (FP16 inside, FP32 I/O), ``<part>`` in
  :data:`PARTS`; a student without audio has no ``audio`` graph.
- ``<name>.<part>.<precision>.<gpu>.trt<version>.engine``: a TensorRT engine, with the sidecar
  ``<engine>.json`` (:class:`Sidecar`) tying it to a TensorRT version, a GPU and its ONNX (sha256).

Graph I/O names (the same in the torch backend, ONNX Runtime and TensorRT): audio ``waveform`` (B, S)
-> ``audio_embedding`` (B, A); encoder ``frames`` (B, 3, H, W) [+ ``audio_embedding``, ``audio_on``
(B, 1)] -> one output per feature key; head one input per feature key (B, T, ...) -> ``logits``
(B, 1, H, W).

Metadata (ONNX ``metadata_props``), keys :data:`META_*`: the model config JSON, the part, the precision,
the package version, the schema version (:data:`SCHEMA_VERSION`; absent = schema 1), the sha256 of the
checkpoint it was exported from (optional) and the weights hash of the graph's own initializers
(optional, :func:`onnx_weights_sha256`; verified at load when present).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA_VERSION = 2
PARTS = ("audio", "encoder", "head")
PRECISIONS = ("fp32", "fp16")

META_CONFIG = "stanet_rt.config"
META_PART = "stanet_rt.part"
META_PRECISION = "stanet_rt.precision"
META_VERSION = "stanet_rt.version"
META_SCHEMA = "stanet_rt.schema"
META_SOURCE_SHA256 = "stanet_rt.source_sha256"
META_WEIGHTS_SHA256 = "stanet_rt.weights_sha256"

# graph I/O names shared by every backend
WAVEFORM, AUDIO_EMBEDDING, FRAMES, AUDIO_ON, LOGITS = "waveform", "audio_embedding", "frames", "audio_on", "logits"

_ONNX_RE = re.compile(r"^(?P<name>.+)\.(?P<part>audio|encoder|head)(?:\.(?P<precision>fp16))?\.onnx$")
_ENGINE_RE = re.compile(r"^(?P<name>.+?)\.(?P<part>audio|encoder|head)\.(?P<precision>fp32|fp16)\..+\.engine$")


@dataclass(frozen=True)
class ArtifactName:
    """The parsed name of one artifact file: export ``name``, ``part`` and ``precision``."""

    name: str
    part: str
    precision: str


def part_path(out_dir: str | Path, name: str, part: str, precision: str = "fp32") -> Path:
    """``<out_dir>/<name>.<part>[.fp16].onnx``."""
    if part not in PARTS or precision not in PRECISIONS:
        raise ValueError(f"part {part!r} / precision {precision!r}: expected one of {PARTS} / {PRECISIONS}")
    suffix = "" if precision == "fp32" else f".{precision}"
    return Path(out_dir) / f"{name}.{part}{suffix}.onnx"


def parse_onnx_name(path: str | Path) -> ArtifactName | None:
    """``lite.v2.head.fp16.onnx`` -> (``lite.v2``, ``head``, ``fp16``); None for other names."""
    m = _ONNX_RE.match(Path(path).name)
    return ArtifactName(m["name"], m["part"], m["precision"] or "fp32") if m else None


def parse_engine_name(path: str | Path) -> ArtifactName | None:
    """``<name>.<part>.<precision>.<gpu>.trt<version>.engine`` -> its name, part and precision."""
    m = _ENGINE_RE.match(Path(path).name)
    return ArtifactName(m["name"], m["part"], m["precision"]) if m else None


def export_prefix(path: str | Path) -> Path:
    """The ``<dir>/<name>`` prefix of an artifact file (an ONNX graph or an engine of any part)."""
    path = Path(path)
    parsed = parse_onnx_name(path) or parse_engine_name(path)
    if parsed is None:
        raise ValueError(f"{path}: not a stanet-rt artifact name (<name>.<part>[.fp16].onnx or .engine)")
    return path.parent / parsed.name


def student_prefix(path: str | Path) -> Path:
    """The ``<dir>/<name>`` prefix of an export given as a folder (exactly one ``*.head.onnx`` in it), as
    a prefix, or as any one of its graph / engine files. InputError naming the path otherwise."""
    from stanet_rt.errors import InputError

    path = Path(path)
    if path.is_dir():
        heads = sorted(path.glob("*.head.onnx"))
        if len(heads) != 1:
            raise InputError(f"{path}: expected exactly one <name>.head.onnx in the folder, found {len(heads)}")
        return export_prefix(heads[0])
    if path.suffix in (".onnx", ".engine"):
        try:
            return export_prefix(path)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return path


def prefix_file(prefix: str | Path, part: str, precision: str = "fp32") -> Path:
    """The ONNX graph ``part`` of the export at ``prefix`` (``<dir>/<name>``)."""
    prefix = Path(prefix)
    return part_path(prefix.parent, prefix.name, part, precision)


def engines_of(prefix: str | Path, part: str, precision: str | None = None) -> list[Path]:
    """TensorRT engines of ``part`` at ``prefix`` (any GPU / version; ``precision`` None = any), sorted."""
    prefix = Path(prefix)
    if not prefix.parent.is_dir():
        return []
    found = []
    for path in sorted(prefix.parent.glob("*.engine")):
        parsed = parse_engine_name(path)
        if parsed and parsed.name == prefix.name and parsed.part == part and precision in (None, parsed.precision):
            found.append(path)
    return found


def onnx_beside(engine_path: str | Path) -> Path:
    """The ONNX graph an engine was built from: ``<name>.<part>.<precision>...engine`` ->
    ``<name>.<part>[.fp16].onnx``."""
    engine_path = Path(engine_path)
    parsed = parse_engine_name(engine_path)
    if parsed is None:
        raise ValueError(f"{engine_path}: not a stanet-rt engine name (<name>.<part>.<precision>.<gpu>.trt<v>.engine)")
    return part_path(engine_path.parent, parsed.name, parsed.part, parsed.precision)


def slug(text: str) -> str:
    """A file-name-safe lower-case form of a GPU name or version (letters, digits, dots, dashes)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def engine_path(out_dir: str | Path, name: str, part: str, gpu_name: str, trt_version: str, precision: str) -> Path:
    """Where the engine of ``part`` built on ``gpu_name`` with TensorRT ``trt_version`` lives."""
    return Path(out_dir) / f"{name}.{part}.{precision}.{slug(gpu_name)}.trt{slug(trt_version)}.engine"


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Sidecar:
    """The JSON beside a TensorRT engine: the ONNX it came from, TensorRT version, GPU, precision, part and
    the optimisation profile's shapes (input name -> {"min", "opt", "max"})."""

    onnx_sha256: str
    onnx_file: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    part: str
    shapes: dict[str, dict[str, list[int]]]

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


def sidecar_path(engine_path: str | Path) -> Path:
    return Path(str(engine_path) + ".json")


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


def metadata_dict(config_json: str, part: str, precision: str, version: str,
                  extra: dict[str, str] | None = None) -> dict[str, str]:
    """The metadata entries of one graph, in the order they are written (``extra`` sorted last)."""
    if part not in PARTS or precision not in PRECISIONS:
        raise ValueError(f"part {part!r} / precision {precision!r}: expected one of {PARTS} / {PRECISIONS}")
    return {META_CONFIG: config_json, META_PART: part, META_PRECISION: precision, META_VERSION: version,
            META_SCHEMA: str(SCHEMA_VERSION), **dict(sorted((extra or {}).items()))}


def read_metadata(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file as a dict (raises on an unreadable file; imports ``onnx``)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def onnx_weights_sha256(model: object) -> str:
    """sha256 over an ONNX model's initializers (name, data type, dims, raw bytes), in name order.

    ``model`` is an ``onnx.ModelProto``. Independent of the metadata, so it is stored in it; a flipped byte
    in any weight changes it. Initializers stored as typed fields (not ``raw_data``) hash their serialised
    form."""
    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda i: i.name):  # type: ignore[attr-defined]
        h.update(init.name.encode())
        h.update(f"|{init.data_type}|{','.join(map(str, init.dims))}|".encode())
        h.update(init.raw_data if init.raw_data else init.SerializeToString())
    return h.hexdigest()


def verify_onnx_weights(path: str | Path, metadata: dict[str, str]) -> None:
    """Check an ONNX graph's weights against the hash its metadata records (:data:`META_WEIGHTS_SHA256`);
    graphs written before the hash existed (no entry) pass. Raises ``WeightsError`` naming the file."""
    expected = metadata.get(META_WEIGHTS_SHA256)
    if not expected:
        return
    import onnx

    from stanet_rt.errors import WeightsError

    if onnx_weights_sha256(onnx.load(str(path), load_external_data=True)) != expected:
        raise WeightsError(f"{path}: the weights do not match the hash recorded at export (corrupted or edited "
                           "file; re-export it)")
