"""PyTorch backend: a student checkpoint's parts with exactly the I/O names of the ONNX graphs.

Imports torch and ``export.onnx_export`` (the graph wrappers, so both backends share one definition of
each part's inputs and outputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engines.base import Engine, EngineInfo, TensorSpec
from export.onnx_export import PartSpec, part_specs
from stanet_rt.models.student_base import StudentModel


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
            self.module.half()
        self.info = EngineInfo("torch", precision, str(self.device), spec.part)
        self.inputs = [TensorSpec(n, ("batch", *x.shape[1:])) for n, x in zip(spec.input_names, spec.example,
                                                                             strict=True)]
        self.outputs = [TensorSpec(n, ("batch", "...")) for n in spec.output_names]

    @torch.inference_mode()
    def run_torch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        args = [inputs[n].to(self.device, self.dtype) for n in self.input_names]
        out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {n: o.float() for n, o in zip(self.output_names, out, strict=True)}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.run_torch({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in inputs.items()})
        return {k: v.cpu().numpy() for k, v in out.items()}


def torch_engines(model: StudentModel, device: str = "cpu", precision: str = "fp32") -> dict[str, TorchEngine]:
    return {spec.part: TorchEngine(spec, device, precision) for spec in part_specs(model, batch=1)}
