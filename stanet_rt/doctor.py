"""What this machine can run: versions of the stack, GPUs, and which ONNX Runtime providers really work.

``collect()`` returns a JSON-serialisable dict; ``stanet-rt doctor`` prints it. Each section is gathered
on its own, so a missing or broken package shows up as an ``error`` entry instead of stopping the
report. ONNX Runtime lists providers it was built with, and silently falls back to CPU when one cannot
start (missing CUDA/cuDNN/TensorRT libraries), so each provider is checked by running a tiny model.

Imports only the standard library at module level (torch, onnx, onnxruntime, av, tensorrt are imported
inside the functions); must not import models, pipeline or cli.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import warnings
from collections.abc import Callable
from typing import Any

PACKAGES = ("numpy", "scipy", "h5py", "onnxscript", "typer", "rich", "pillow")  # distribution names


def collect() -> dict[str, Any]:
    """The full report: sections ``stanet_rt``, ``python``, ``packages``, ``torch``, ``gpus``, ``onnx``,
    ``onnxruntime``, ``tensorrt``, ``av``. A section that failed is ``{"error": "..."}``."""
    from stanet_rt import __version__

    sections: dict[str, Callable[[], Any]] = {
        "python": _python,
        "packages": _packages,
        "torch": _torch,
        "gpus": _gpus,
        "onnx": _onnx,
        "onnxruntime": _onnxruntime,
        "tensorrt": _tensorrt,
        "av": _av,
    }
    report: dict[str, Any] = {"stanet_rt": __version__}
    for name, fn in sections.items():
        try:
            report[name] = fn()
        except Exception as exc:  # a broken install is reported, not raised
            report[name] = {"error": _one_line(exc)}
    return report


def _python() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def _packages() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _torch() -> dict[str, Any]:
    import torch

    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,  # None for a CPU-only build
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
    }


def _gpus() -> list[dict[str, Any]]:
    from dataclasses import asdict

    from stanet_rt.devices import gpus

    return [asdict(g) for g in gpus()]


def _onnx() -> dict[str, Any]:
    import onnx

    return {"version": onnx.__version__, "max_opset": onnx.defs.onnx_opset_version()}


def tiny_onnx_model() -> bytes:
    """A serialized ONNX model y = x + x on a (1, 4) float32 input, built in memory with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "doctor_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return model.SerializeToString()


def check_provider(provider: str, model: bytes | None = None) -> dict[str, Any]:
    """Whether ONNX Runtime really runs ``model`` (default: ``tiny_onnx_model()``) on ``provider``.

    Returns ``{"works": bool, "detail": str}``. A provider counts as working only if the session keeps
    it (``sess.get_providers()``; ORT drops a provider that fails to initialise and falls back to
    CPU) and the run gives the right answer.
    """
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: failures are reported in "detail"
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    try:
        with warnings.catch_warnings():  # "provider not in available providers": reported in "detail"
            warnings.simplefilter("ignore")
            session = ort.InferenceSession(model or tiny_onnx_model(), options, providers=providers)
    except Exception as exc:
        return {"works": False, "detail": f"session failed: {_one_line(exc)}"}
    kept = session.get_providers()
    if provider not in kept:
        return {"works": False, "detail": f"not loaded; ORT fell back to {', '.join(kept)}"}
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    try:
        (y,) = session.run(None, {"x": x})
    except Exception as exc:
        return {"works": False, "detail": f"run failed: {_one_line(exc)}"}
    if not np.array_equal(y, x + x):
        return {"works": False, "detail": "wrong result"}
    return {"works": True, "detail": "ok"}


def _onnxruntime() -> dict[str, Any]:
    import onnxruntime as ort

    available = list(ort.get_available_providers())
    model = tiny_onnx_model()
    return {
        "version": ort.__version__,
        "device": ort.get_device(),  # "GPU" for the onnxruntime-gpu build
        "available_providers": available,
        "providers": {p: check_provider(p, model) for p in available},
    }


def _tensorrt() -> dict[str, Any]:
    if importlib.util.find_spec("tensorrt") is None:
        return {"version": None, "detail": "not installed"}
    try:
        import tensorrt
    except Exception as exc:  # installed but its libraries do not load
        return {"version": None, "detail": f"import failed: {_one_line(exc)}"}
    return {"version": tensorrt.__version__, "detail": "ok"}


def _av() -> dict[str, Any]:
    import av

    libraries = {name: ".".join(map(str, v)) for name, v in av.library_versions.items()}
    wanted = ("libx264", "h264_nvenc", "hevc_nvenc", "aac")
    return {
        "version": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", None),
        "libraries": libraries,
        # compiled into this FFmpeg; the nvenc ones also need an NVIDIA GPU and driver at run time
        "encoders_compiled": {name: name in av.codecs_available for name in wanted},
    }


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
