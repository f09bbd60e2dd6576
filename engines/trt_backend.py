"""Native TensorRT backend (TensorRT >= 10 name-based tensor API, deployment-notes 2.4).

Torch CUDA tensors hold every I/O buffer; they are bound with ``set_tensor_address`` and the engine
runs with ``execute_async_v3`` on torch's current stream; optional CUDA-graph replay for a fixed
batch (captured after one warm-up run, since TensorRT allocates on its first execution). ``tensorrt``
is imported lazily: this module imports on machines without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engines.base import Engine, EngineInfo, TensorSpec
from stanet_rt.errors import InputError


class TensorRTEngine(Engine):
    def __init__(self, path: str | Path, cuda_graph: bool = False) -> None:
        import tensorrt as trt
        import torch

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: engine file not found")
        self._trt, self._torch = trt, torch
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise InputError(f"{path}: TensorRT could not deserialize the engine (corrupt, or another version/GPU)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [TensorSpec(n, tuple(self.engine.get_tensor_shape(n))) for n in names if is_input[n]]
        self.outputs = [TensorSpec(n, tuple(self.engine.get_tensor_shape(n))) for n in names if not is_input[n]]
        from export.sidecar import Sidecar

        precision = Sidecar.read(path).precision if Path(str(path) + ".json").exists() else "unknown"
        self.info = EngineInfo("tensorrt", precision, "cuda", path.name.split(".")[1])
        self.cuda_graph = cuda_graph
        self._graph = None
        self._static: dict[str, Any] = {}

    def run_torch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        torch = self._torch
        stream = torch.cuda.current_stream()
        for spec in self.inputs:
            t = inputs[spec.name].contiguous().float().cuda()
            if not self.context.set_input_shape(spec.name, tuple(t.shape)):
                raise InputError(f"input {spec.name} shape {tuple(t.shape)} is outside the engine's profile")
            self._static[spec.name] = t
            self.context.set_tensor_address(spec.name, t.data_ptr())
        outs = {}
        for spec in self.outputs:
            out = torch.empty(tuple(self.context.get_tensor_shape(spec.name)), device="cuda", dtype=torch.float32)
            self.context.set_tensor_address(spec.name, out.data_ptr())
            outs[spec.name] = out
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return outs

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        out = self.run_torch({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in inputs.items()})
        torch.cuda.current_stream().synchronize()
        return {k: v.cpu().numpy() for k, v in out.items()}
