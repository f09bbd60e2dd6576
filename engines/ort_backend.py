"""ONNX Runtime backend: TensorRT > CUDA > CPU execution providers, chosen at runtime and then checked.

ONNX Runtime falls back to the CPU silently when a GPU provider cannot load (deployment-notes 3):
after the session is created, ``get_providers()`` says what is really attached, and a fallback is
reported in ``info.notes`` and as a warning. On CUDA, ``run_torch`` binds torch tensors with IOBinding
(no host copies). Imports numpy and onnxruntime (torch lazily).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from stanet_rt.engines.base import Engine, EngineInfo, TensorSpec

from stanet_rt.artifacts import verify_onnx_weights
from stanet_rt.errors import InputError

log = logging.getLogger("stanet_rt.engines")

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def requested_providers(device: str | None, available: list[str], trt_ep: bool = True) -> list[str]:
    """Providers to ask for, best first, for ``device`` ("cpu", "cuda", "cuda:N" or "auto"/None)."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = [p for p in PROVIDER_ORDER if p in available]
    if not trt_ep:
        wanted = [p for p in wanted if p != "TensorrtExecutionProvider"]
    return wanted or ["CPUExecutionProvider"]


def fallback_note(requested: list[str], attached: list[str]) -> str | None:
    """A one-line description of a silent fallback (None when the best requested provider is attached)."""
    if attached and requested and attached[0] != requested[0]:
        return f"ONNX Runtime fell back from {requested[0]} to {attached[0]} (the requested provider could not load)"
    return None


def missing_gpu_note(device: str | None, requested: list[str]) -> str | None:
    """A one-line description of a CUDA device asked for where this onnxruntime has no GPU provider
    (the CPU wheel, or onnxruntime-gpu without its CUDA libraries): ONNX Runtime itself would just
    run on the CPU without a word. None when ``device`` is not CUDA or a GPU provider is requested."""
    if device is None or not device.startswith("cuda") or any(p in GPU_PROVIDERS for p in requested):
        return None
    return (f"device {device!r} asked for, but this onnxruntime has no CUDA or TensorRT execution provider "
            "(install onnxruntime-gpu): running on the CPU")


class OrtEngine(Engine):
    def __init__(self, path: str | Path, device: str | None = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: ONNX file not found")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # No busy-waiting of idle intra-op threads: in the pipeline the decode, preprocessing and sink
        # threads need those cores (with spinning on, ORT ran the 640x360 pipeline at half torch's fps)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        requested = requested_providers(device, ort.get_available_providers())
        index = device.partition(":")[2] if device and device.startswith("cuda:") else ""
        self.device_id = int(index) if index.isdigit() else 0
        providers = [(p, {"device_id": int(index)}) if index.isdigit() and p in GPU_PROVIDERS else p for p in requested]
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # corrupt / not an ONNX file
            raise InputError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None
        attached = self.session.get_providers()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        verify_onnx_weights(path, self.metadata)
        notes = []
        note = missing_gpu_note(device, requested) or (fallback_note(requested, attached) if device != "cpu" else None)
        if note:
            notes.append(note)
            log.warning("%s: %s", path.name, note)
        on_cuda = attached[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.info = EngineInfo("onnxruntime", meta.get("stanet_rt.precision", "fp32"), "cuda" if on_cuda else "cpu",
                               meta.get("stanet_rt.part", "?"), list(attached), notes)
        self.inputs = [TensorSpec(i.name, tuple(i.shape), "float32") for i in self.session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(o.shape), "float32") for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {k: np.ascontiguousarray(inputs[k], dtype=np.float32) for k in self.input_names}
        return dict(zip(self.output_names, self.session.run(self.output_names, feed), strict=True))

    def run_torch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if self.info.device != "cuda":
            return super().run_torch(inputs)
        import torch

        binding = self.session.io_binding()
        # The bound tensors must outlive run_with_iobinding: ORT keeps only their addresses
        # (a temporary from .contiguous().float() would be freed, and its memory reused, before the run).
        device_id = self.device_id
        target = torch.device("cuda", device_id)  # the session's GPU
        bound = {name: inputs[name].to(target, torch.float32).contiguous() for name in self.input_names}
        for name, t in bound.items():
            binding.bind_input(name, "cuda", device_id, np.float32, tuple(t.shape), t.data_ptr())
        for name in self.output_names:
            binding.bind_output(name, "cuda", device_id)
        torch.cuda.current_stream(target).synchronize()  # ORT reads buffers torch produced
        self.session.run_with_iobinding(binding)
        outs = binding.get_outputs()
        del bound  # only now may the inputs go
        return {n: torch.from_dlpack(o.to_dlpack()) if hasattr(o, "to_dlpack") else torch.from_numpy(o.numpy())
                for n, o in zip(self.output_names, outs, strict=True)}
