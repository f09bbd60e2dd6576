"""Native TensorRT backend (TensorRT >= 10 name-based tensor API, deployment-notes 2.4).

Torch CUDA tensors hold every I/O buffer; they are bound with ``set_tensor_address`` and the engine
runs with ``execute_async_v3`` on torch's current stream. ``tensorrt`` is imported lazily: this module
imports on machines without it.

``cuda_graph=True``: the engine's work is captured once per set of input shapes into a
``torch.cuda.CUDAGraph`` and replayed (TensorRT's documented pattern for ``enqueueV3`` / CUDA graphs):
static input and output buffers are bound, ``execute_async_v3`` runs once on the capture stream first
(TensorRT allocates and applies shape changes on the first execution after a shape change, which must
not happen inside a capture), then the same call is captured on that stream. Each later run copies the
inputs into the static buffers and replays the graph on the current stream; new input shapes re-capture.
The returned outputs are copies, so they stay valid after the next run. An engine TensorRT cannot
capture (e.g. one with loops or data-dependent shapes) runs without a graph, with a note in ``info.notes``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from stanet_rt.engines.base import Engine, EngineInfo, TensorSpec

from stanet_rt.artifacts import Sidecar, parse_engine_name, sidecar_path
from stanet_rt.errors import InputError

log = logging.getLogger("stanet_rt.engines")


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
        parsed = parse_engine_name(path)
        precision = Sidecar.read(path).precision if sidecar_path(path).exists() else "unknown"
        self.info = EngineInfo("tensorrt", precision, "cuda", parsed.part if parsed else "?")
        self.cuda_graph = cuda_graph
        self.device = torch.device("cuda")
        self._graph: Any = None  # torch.cuda.CUDAGraph while one is captured
        self._graph_shapes: tuple | None = None
        self._static: dict[str, Any] = {}  # static input buffers of the captured graph
        self._static_out: dict[str, Any] = {}

    def _bind(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Set input shapes and addresses, allocate and bind the outputs; returns the outputs."""
        torch = self._torch
        for spec in self.inputs:
            t = inputs[spec.name]
            if not self.context.set_input_shape(spec.name, tuple(t.shape)):
                raise InputError(f"input {spec.name} shape {tuple(t.shape)} is outside the engine's profile")
            self.context.set_tensor_address(spec.name, t.data_ptr())
        outs = {}
        for spec in self.outputs:
            out = torch.empty(tuple(self.context.get_tensor_shape(spec.name)), device=self.device,
                              dtype=torch.float32)
            self.context.set_tensor_address(spec.name, out.data_ptr())
            outs[spec.name] = out
        return outs

    def _execute(self, stream_handle: int) -> None:
        if not self.context.execute_async_v3(stream_handle):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def _capture(self, tensors: dict[str, Any], shapes: tuple) -> None:
        """Bind static buffers for ``shapes``, run once, capture ``execute_async_v3`` into a CUDA graph."""
        torch = self._torch
        self._graph, self._graph_shapes = None, None
        self._static = {name: t.clone() for name, t in tensors.items()}
        self._static_out = self._bind(self._static)
        stream = torch.cuda.Stream(device=self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))  # the inputs were written there
        with torch.cuda.stream(stream):
            self._execute(stream.cuda_stream)  # warm-up: TensorRT's deferred work happens outside the capture
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads (decoding, sinks) may use CUDA while this one captures
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            self._execute(stream.cuda_stream)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self._graph, self._graph_shapes = graph, shapes

    def _run_graph(self, tensors: dict[str, Any]) -> dict[str, Any]:
        shapes = tuple(tuple(t.shape) for t in tensors.values())
        if self._graph is None or shapes != self._graph_shapes:
            try:
                self._capture(tensors, shapes)
            except InputError:
                raise
            except Exception as exc:  # not capturable: run this engine without a graph from now on
                self.cuda_graph, self._graph = False, None
                note = f"CUDA graph capture failed ({type(exc).__name__}: {str(exc)[:120]}); running without"
                self.info.notes.append(note)
                log.warning("%s: %s", self.info.part, note)
                return self.run_torch(tensors)
        else:
            for name, t in tensors.items():
                self._static[name].copy_(t)
        self._graph.replay()
        return {name: out.clone() for name, out in self._static_out.items()}

    def run_torch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        torch = self._torch
        tensors = {spec.name: inputs[spec.name].to(self.device, torch.float32).contiguous() for spec in self.inputs}
        if self.cuda_graph:
            return self._run_graph(tensors)
        outs = self._bind(tensors)
        self._static = tensors  # keep the bound inputs alive until the engine has read them
        self._execute(torch.cuda.current_stream(self.device).cuda_stream)
        return outs

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        out = self.run_torch({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in inputs.items()})
        torch.cuda.current_stream(self.device).synchronize()
        return {k: v.cpu().numpy() for k, v in out.items()}
