"""The one GPU probe and the ``--device`` option, checked before any model is loaded.

:func:`resolve_device` turns ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` into the device the engines
get: ``cuda`` without a usable CUDA GPU is one :class:`~stanet_rt.errors.InputError` line (instead of
ONNX Runtime's silent CPU run or PyTorch's "not compiled with CUDA" traceback); ``auto`` without a
GPU is the CPU, said once through ``log``.

The GPU count comes from the CUDA driver (``libcuda``, through ctypes) so that a torch-free run does
not import torch just to ask. :func:`cuda_available` / :func:`gpus` are torch's view (name, compute
capability, memory) for the torch code paths (benchmarks, training, TensorRT builds, test skips): without
torch they say "no GPU" instead of raising; :func:`driver_version` asks ``nvidia-smi``.
Imports only the standard library and ``stanet_rt.errors`` (torch lazily, when installed).
"""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from stanet_rt.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")


@lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """Number of CUDA GPUs the driver sees (0 without a driver, a GPU, or with CUDA_VISIBLE_DEVICES="")."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so", "libcuda.dylib")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    return 0


def resolve_device(device: str | None, log: Callable[[str], None] | None = None) -> str:
    """The device to run on for the option value ``device``; raise :class:`InputError` when it cannot be.

    ``auto`` (or None) stays ``auto`` when a GPU exists (the engines pick the best provider) and becomes
    ``cpu`` otherwise, said once via ``log``; ``cuda`` / ``cuda:N`` need that GPU."""
    device = "auto" if device is None else device.strip().lower()
    if device == "cpu":
        return device
    if device == "auto":
        if cuda_device_count() == 0:
            if log is not None:
                log("device auto: no CUDA GPU found, ran on the CPU")
            return "cpu"
        return device
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise InputError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    count = cuda_device_count()
    if count == 0:
        raise InputError(f"--device {device}: no CUDA GPU found on this machine (use --device cpu or auto)")
    if index and int(index) >= count:
        raise InputError(f"--device {device}: this machine has {count} CUDA GPU(s) (cuda:0 .. cuda:{count - 1})")
    return device


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device as torch sees it."""

    index: int
    name: str
    compute_capability: str  # "major.minor", e.g. "9.0"
    memory_gib: float


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA GPU (False without torch: no import error)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install counts as no GPU
        return False


def gpus() -> list[GpuInfo]:
    """Every CUDA device torch sees, in index order; [] without torch or GPU."""
    if not cuda_available():
        return []
    import torch

    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append(GpuInfo(i, props.name, f"{props.major}.{props.minor}", round(props.total_memory / 2**30, 1)))
    return out


def driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi``, or None (no tool, no GPU, or it failed)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None
