"""PyTorch backend: a student checkpoint's parts with exactly the I/O names of the ONNX graphs.

Imports torch and ``stanet_rt.models.parts`` (the graph wrappers that the exporter traces too, so both
backends share one definition of each part's inputs and outputs).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from stanet_rt.engines.base import Engine, EngineInfo, TensorSpec

from stanet_rt.audio.spectrogram import LogSpectrogram
from stanet_rt.models.backbones import NetVLAD
from stanet_rt.models.parts import PartSpec, part_specs
from stanet_rt.models.student_base import StudentModel

FP32_MODULES: tuple[type[torch.nn.Module], ...] = (LogSpectrogram, NetVLAD)
"""Submodules kept FP32 when a part runs in half precision: the STFT / log-spectrogram (its PSD and log
need FP32 range) and NetVLAD (soft assignment and L2 normalisations: a cluster with no mass is 0 / eps,
and eps = 1e-12 is 0 in FP16). The same islands the FP16 ONNX graphs keep (``export.fp16``)."""


def _to_fp32(module: torch.nn.Module, args: tuple) -> tuple:
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def _back_to_input_dtype(module: torch.nn.Module, args: tuple, output: Any) -> Any:
    dtype = module._stanet_input_dtype
    if dtype is None or dtype == torch.float32 or not isinstance(output, torch.Tensor):
        return output
    return output.to(dtype)


def _remember_input_dtype(module: torch.nn.Module, args: tuple) -> tuple:
    module._stanet_input_dtype = next((a.dtype for a in args if isinstance(a, torch.Tensor)
                                       and a.is_floating_point()), None)
    return _to_fp32(module, args)


def half_with_fp32_islands(module: torch.nn.Module) -> torch.nn.Module:
    """Like ``module.half()``, but :data:`FP32_MODULES` submodules stay FP32 (in place): their parameters
    and buffers keep their FP32 values (the DFT kernels are never rounded through FP16), their floating
    inputs are cast to FP32 and their output back to the caller's dtype (forward hooks, registered once)."""
    islands = [m for m in module.modules() if isinstance(m, FP32_MODULES)]
    keep = {id(s) for m in islands for s in m.modules()}
    for sub in module.modules():
        if id(sub) not in keep:
            sub._apply(lambda t: t.half() if t.is_floating_point() else t, recurse=False)
    for island in islands:
        if not hasattr(island, "_stanet_input_dtype"):
            island._stanet_input_dtype = None
            island.register_forward_pre_hook(_remember_input_dtype)
            island.register_forward_hook(_back_to_input_dtype)
    return module


class TorchEngine(Engine):
    """One part (audio / encoder / head) of a student module on ``device``, FP32 or FP16 (CUDA only)."""

    def __init__(self, spec: PartSpec, device: str = "cpu", precision: str = "fp32") -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.module = spec.module.to(self.device).eval()
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        if precision == "fp16":
            if self.device.type != "cuda":
                raise ValueError("fp16 with the torch backend needs a CUDA device")
            half_with_fp32_islands(self.module)
        # the audio part takes the waveform in FP32: it feeds the FP32 log-spectrogram island
        self.input_dtype = torch.float32 if spec.part == "audio" else self.dtype
        self.info = EngineInfo("torch", precision, str(self.device), spec.part)
        self.inputs = [TensorSpec(n, ("batch", *x.shape[1:])) for n, x in zip(spec.input_names, spec.example,
                                                                             strict=True)]
        self.outputs = [TensorSpec(n, ("batch", "...")) for n in spec.output_names]

    @torch.inference_mode()
    def run_torch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        args = [inputs[n].to(self.device, self.input_dtype) for n in self.input_names]
        out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {n: o.float() for n, o in zip(self.output_names, out, strict=True)}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.run_torch({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in inputs.items()})
        return {k: v.cpu().numpy() for k, v in out.items()}


def torch_engines(model: StudentModel, device: str = "cpu", precision: str = "fp32") -> dict[str, TorchEngine]:
    """The parts of ``model`` as engines on ``device`` in ``precision``. They run a copy of ``model``: the
    caller's module keeps its device and dtype (moving / halving it in place broke a second call)."""
    work = copy.deepcopy(model).to(torch.device(device)).eval()
    return {spec.part: TorchEngine(spec, device, precision) for spec in part_specs(work, batch=1)}
