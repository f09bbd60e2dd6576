"""Reading the authors' weight files without their code and without running pickled code.

The AudioSwitch ``27001.pt`` is a whole pickled module (``torch.save(model)``): ``torch.load`` would
import the original ``models.py`` and could run anything the pickle names. :func:`read_weight_file`
instead parses torch's zip archive itself with a restricted unpickler:

- only the globals that this file format needs are resolved (:data:`ALLOWED_GLOBALS`, the inventory of
  the AudioSwitch pickle: the original classes, ``torch.nn`` module classes, the tensor rebuild
  functions, two storage types, ``OrderedDict`` and ``set``); any other global is refused with one
  line naming it (``os.system``, ``builtins.eval``, ...);
- module classes become :class:`ModuleStandIn` objects that only keep ``_parameters``, ``_buffers``
  and ``_modules``; tensors are rebuilt from the archive's raw storages with numpy (little-endian
  float32 / int64), never by torch's unpickler;
- the result is a flat state dict (dotted keys, as ``module.state_dict()`` would give).

Plain state dicts in the same zip format (the STA / STA+ checkpoints, torch >= 1.6) go through the same
reader. Files in torch's legacy (pre-1.6, non-zip) format are read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers. A gzip-compressed file of either kind is
decompressed first.

Imports numpy, torch and ``stanet_rt.errors``.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stanet_rt.errors import WeightsError

# Module classes of the AudioSwitch pickle (``audioswitch_pickle_info.json``): stand-ins, never imported.
MODULE_CLASSES = frozenset({
    "models.att_Model",
    "ResNet.resnet.BasicBlock",
    "ResNet.resnet.NetVLAD",
    "torchvision.models.resnet.Bottleneck",
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.activation.ReLU",
    "torch.nn.modules.pooling.MaxPool2d",
    "torch.nn.modules.pooling.AdaptiveAvgPool2d",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.linear.Linear",
    "torch.nn.modules.linear.Bilinear",
})
# Storage types: numpy dtypes of the raw little-endian bytes in ``data/<key>``.
STORAGE_DTYPES = {"torch.FloatStorage": np.dtype("<f4"), "torch.LongStorage": np.dtype("<i8")}
OTHER_GLOBALS = frozenset({
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "collections.OrderedDict",
    "__builtin__.set",  # protocol 2 (torch's) names builtins this way
    "builtins.set",  # protocols >= 3
})
ALLOWED_GLOBALS = MODULE_CLASSES | frozenset(STORAGE_DTYPES) | OTHER_GLOBALS


class PickleRefused(WeightsError):
    """A pickle names a global outside :data:`ALLOWED_GLOBALS` (or is otherwise not a weight file)."""


class ModuleStandIn:
    """What a pickled ``nn.Module`` becomes: its class name and the tensors it holds, nothing else."""

    original_class = "?"

    def __setstate__(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise PickleRefused(f"{self.original_class}: unexpected module state {type(state).__name__}")
        self._parameters = state.get("_parameters") or {}
        self._buffers = state.get("_buffers") or {}
        self._modules = state.get("_modules") or {}
        self._non_persistent = set(state.get("_non_persistent_buffers_set") or ())

    def state_dict(self, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
        """Flat ``{dotted key: tensor}`` in ``nn.Module.state_dict`` order."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, t in self._parameters.items():
            if t is not None:
                out[prefix + name] = t
        for name, t in self._buffers.items():
            if t is not None and name not in self._non_persistent:
                out[prefix + name] = t
        for name, child in self._modules.items():
            if child is not None:
                out.update(child.state_dict(f"{prefix}{name}."))
        return out


_STAND_INS = {name: type(name.rsplit(".", 1)[1], (ModuleStandIn,), {"original_class": name})
              for name in MODULE_CLASSES}


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass
class WeightFile:
    """A weight file's content: its flat state dict and what it was."""

    state_dict: OrderedDict[str, torch.Tensor]
    kind: str  # "module pickle (<class>)", "state dict (zip)", "state dict (legacy)"
    storage_of: dict[str, str] = field(default_factory=dict)  # key -> archive storage record (zip only)


def _storage_marker(name: str) -> np.dtype:
    return STORAGE_DTYPES[name]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.root, self.source = archive, root, source
        self.storages: dict[str, torch.Tensor] = {}
        self.storage_of_tensor: dict[int, str] = {}

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full not in ALLOWED_GLOBALS:
            raise PickleRefused(f"{self.source}: refused to load: the pickle names global {full!r}, "
                                "which a weight file does not need")
        if full in _STAND_INS:
            return _STAND_INS[full]
        if full in STORAGE_DTYPES:
            return _storage_marker(full)
        return {
            "torch._utils._rebuild_tensor_v2": self._rebuild_tensor,
            "torch._utils._rebuild_parameter": _rebuild_parameter,
            "collections.OrderedDict": OrderedDict,
            "builtins.set": set,
            "__builtin__.set": set,
        }[full]

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], np.dtype)):
            raise PickleRefused(f"{self.source}: unexpected persistent id {pid!r:.80}")
        return _StorageRef(str(pid[2]), pid[1], int(pid[4]))

    def _storage(self, ref: _StorageRef) -> torch.Tensor:
        if ref.key not in self.storages:
            member = f"{self.root}data/{ref.key}"
            try:
                raw = bytearray(self.archive.read(member))
            except KeyError:
                raise WeightsError(f"{self.source}: archive lacks storage record {member}") from None
            arr = np.frombuffer(raw, dtype=ref.dtype)
            if arr.size < ref.numel:
                raise WeightsError(f"{self.source}: storage {member} holds {arr.size} values, needs {ref.numel}")
            self.storages[ref.key] = torch.from_numpy(arr.astype(ref.dtype.newbyteorder("="), copy=False))
        return self.storages[ref.key]

    def _rebuild_tensor(self, storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                        requires_grad: bool = False, hooks: Any = None, metadata: Any = None) -> torch.Tensor:
        if not isinstance(storage, _StorageRef):
            raise PickleRefused(f"{self.source}: tensor without a storage record")
        base = self._storage(storage)
        tensor = base.as_strided(tuple(size), tuple(stride), int(offset))
        self.storage_of_tensor[id(tensor)] = storage.key
        return tensor


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, hooks: Any = None) -> torch.Tensor:
    return data


def _open_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise WeightsError(f"{path}: corrupt gzip ({exc})") from None
    return raw


def _flatten(obj: Any, source: str) -> tuple[OrderedDict[str, torch.Tensor], str]:
    if isinstance(obj, ModuleStandIn):
        return obj.state_dict(), f"module pickle ({obj.original_class})"
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                return _flatten(obj[key], source)
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return OrderedDict(obj), "state dict"
    raise WeightsError(f"{source}: holds neither a state dict (plain, 'state_dict' or 'model_state_dict') "
                       f"nor a pickled module, but {type(obj).__name__}")


def read_weight_file(path: str | Path) -> WeightFile:
    """Read a state dict / wrapped state dict / whole pickled module (optionally gzipped) safely.

    Returns the flat state dict with the file's own key names (``module.`` prefixes kept; the caller
    maps names). Raises :class:`~stanet_rt.errors.WeightsError` (one line naming the file) on anything
    else, :class:`PickleRefused` on a global outside :data:`ALLOWED_GLOBALS`.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    raw = _open_bytes(path)
    if raw[:4] != b"PK\x03\x04":
        return _read_legacy(raw, path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{path}: corrupt torch archive ({exc})") from None
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise WeightsError(f"{path}: not a torch archive (no single <root>/data.pkl)")
    root = pickles[0][: -len("data.pkl")]
    unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, root, str(path))
    try:
        obj = unpickler.load()
    except PickleRefused:
        raise
    except Exception as exc:  # malformed pickle data
        raise WeightsError(f"{path}: unreadable pickle ({type(exc).__name__}: {exc})") from None
    state, kind = _flatten(obj, str(path))
    storage_of = {k: unpickler.storage_of_tensor.get(id(t), "") for k, t in state.items()}
    return WeightFile(OrderedDict((k, t.contiguous()) for k, t in state.items()), f"{kind}, zip", storage_of)


def _read_legacy(raw: bytes, path: Path) -> WeightFile:
    """Pre-1.6 torch files: ``torch.load(weights_only=True)`` (tensors and plain containers only)."""
    try:
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable torch weight file, or a legacy-format pickle of more than "
                           f"tensors ({type(exc).__name__})") from None
    state, kind = _flatten(obj, str(path))
    return WeightFile(state, f"{kind}, legacy")
