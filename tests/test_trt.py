"""TensorRT side of export / engines. Unmarked (CPU): engine sidecars (write / read, what they record),
the matching rule that decides whether an engine may run here, engine file naming and the ONNX beside
an engine, the precision check over an abstract list of tensor dtypes, the "no TensorRT / no GPU"
path (clear message, ONNX files kept), and the whole build flow of ``export.tensorrt_build`` against a
stand-in ``tensorrt`` module that follows the documented TensorRT 10/11 Python API (strongly typed
network, batch profile, workspace limit, timing cache, engine inspector) - so the wiring is exercised
without a GPU; the runtime (``TensorRTEngine``: binding, profile errors, CUDA-graph capture once per shape
and replay, the fallback when capture fails) against stand-ins for ``tensorrt`` and ``torch.cuda`` that
execute on host memory. Marked ``trt``: real builds, runs, parity and CUDA-graph replay on a GPU."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import types

import numpy as np
import onnx
import pytest
import stanet_rt.engines.auto as auto
import stanet_rt.engines.trt_backend as trt_backend
import torch
from _export_helpers import cc, exported, torch_outputs
from stanet_rt.engines.base import EngineInfo
from stanet_rt.export import tensorrt_build
from stanet_rt.export.api import build_engines
from stanet_rt.export.tensorrt_build import PrecisionMismatch, TensorRTUnavailable, build_engine, verify_precision

from stanet_rt import engines
from stanet_rt.artifacts import Sidecar, engine_path, mismatch_reason, sha256_of, sidecar_path, slug
from stanet_rt.errors import StanetError
from stanet_rt.models.parts import part_specs

GPU, CC, TRT = "NVIDIA H100 80GB HBM3", "9.0", "11.4.0"


# -- sidecars, naming, matching ------------------------------------------------------------------------
def test_sidecar_round_trip_records_what_an_engine_is_tied_to(tmp_path) -> None:
    engine = tmp_path / "m.head.fp16.x.engine"
    shapes = {"x": {"min": [1, 8, 2, 2], "opt": [4, 8, 2, 2], "max": [8, 8, 2, 2]}}
    side = Sidecar("ab" * 32, "m.head.fp16.onnx", TRT, GPU, CC, "fp16", "head", shapes)
    path = side.write(engine)
    assert path == sidecar_path(engine) == tmp_path / "m.head.fp16.x.engine.json"
    data = json.loads(path.read_text())
    assert data == {"onnx_sha256": "ab" * 32, "onnx_file": "m.head.fp16.onnx", "tensorrt_version": TRT,
                    "gpu_name": GPU, "compute_capability": CC, "precision": "fp16", "part": "head",
                    "shapes": shapes}
    assert Sidecar.read(engine) == side
    with pytest.raises(FileNotFoundError, match="sidecar not found"):
        Sidecar.read(tmp_path / "other.engine")


def test_sha256_of_a_file(tmp_path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000  # > one 1 MiB read chunk
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


def test_engine_names_carry_part_precision_gpu_and_tensorrt_version(tmp_path) -> None:
    path = engine_path(tmp_path, "tiny_sta", "encoder", GPU, "10.13.0.35", "fp16")
    assert path.parent == tmp_path and path.suffix == ".engine"
    assert path.name == "tiny_sta.encoder.fp16.nvidia-h100-80gb-hbm3.trt10.13.0.35.engine"
    assert slug("Tesla T4 / PCIe (16 GB)") == "tesla-t4-pcie-16-gb"
    assert auto.onnx_beside(path) == tmp_path / "tiny_sta.encoder.fp16.onnx"
    fp32 = engine_path(tmp_path, "tiny_sta", "head", GPU, TRT, "fp32")
    assert auto.onnx_beside(fp32) == tmp_path / "tiny_sta.head.onnx"
    assert engine_path(tmp_path, "m", "head", "NVIDIA A100", TRT, "fp32") != fp32  # one file per GPU


def test_matching_rule_names_the_first_reason_an_engine_cannot_run_here() -> None:
    side = Sidecar("abc", "m.head.onnx", TRT, GPU, CC, "fp16", "head", {})
    assert mismatch_reason(side, GPU, CC, TRT, "abc") is None
    assert mismatch_reason(side, GPU, CC, TRT) is None  # no ONNX beside: nothing to compare
    assert mismatch_reason(side, GPU, CC, None) == "TensorRT is not installed"
    assert mismatch_reason(side, None, None, TRT) == "no CUDA GPU is present"
    assert mismatch_reason(side, GPU, CC, "10.13") == f"built with TensorRT {TRT}, this machine has 10.13"
    reason = mismatch_reason(side, "NVIDIA A100-SXM4-80GB", "8.0", TRT)
    assert reason == f"built for {GPU} (compute 9.0), this GPU is NVIDIA A100-SXM4-80GB (compute 8.0)"
    assert "changed" in mismatch_reason(side, GPU, CC, TRT, "zzz")
    assert mismatch_reason(side, "NVIDIA H100 PCIe", CC, TRT, "abc") is None  # same compute capability


# -- precision check over (tensor name, dtype) ---------------------------------------------------------
def test_precision_check_accepts_matching_engines() -> None:
    io = [("frames", "FLOAT", True), ("logits", "FLOAT", False)]
    verify_precision(io, "fp16", internal_half_layers=7)
    verify_precision(io, "fp32", internal_half_layers=0)
    verify_precision([("x", "float32", True)], "fp32", internal_half_layers=0)


@pytest.mark.parametrize("io,precision,half,message", [
    ([("logits", "FLOAT", False)], "fp16", 0, "asked for fp16 but the engine has no FP16 layers"),
    ([("logits", "FLOAT", False)], "fp32", 3, "asked for fp32 but the engine has 3 FP16 layers"),
    ([("frames", "FLOAT", True), ("logits", "HALF", False)], "fp16", 5, "engine tensor logits is HALF"),
    ([("frames", "INT8", True)], "fp32", 0, "engine tensor frames is INT8, expected FP32 I/O"),
])
def test_precision_check_fails_loudly(io, precision: str, half: int, message: str) -> None:
    with pytest.raises(PrecisionMismatch, match=message):
        verify_precision(io, precision, internal_half_layers=half)


# -- without TensorRT or a GPU -------------------------------------------------------------------------
_HAS_TRT_AND_GPU = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.mark.skipif(_HAS_TRT_AND_GPU, reason="TensorRT and a GPU are present here")
def test_without_tensorrt_or_gpu_engines_are_skipped_with_a_clear_message(tmp_path) -> None:
    with pytest.raises(TensorRTUnavailable, match="TensorRT is not installed|no CUDA GPU"):
        tensorrt_build.trt_environment()
    exp = exported("tiny_sta")
    files = [exp.path(p) for p in ("audio", "encoder", "head")]
    built, message = build_engines(files, tmp_path, "tiny_sta", part_specs(exp.model))
    assert built == [] and message.startswith("TensorRT engines skipped: ")
    assert "the ONNX files were written" in message and all(f.is_file() for f in files)
    assert not list(tmp_path.iterdir())


# -- the build flow against a stand-in tensorrt module -------------------------------------------------
class _Enum:
    def __init__(self, name: str) -> None:
        self.name = name


def fake_tensorrt(version: str, calls: dict) -> types.ModuleType:
    """A stand-in for the ``tensorrt`` module with the calls ``build_engine`` makes (TensorRT 10/11 Python
    API). Its "engine" has the ONNX graph's I/O with the ONNX element types, and its inspector reports
    what TensorRT reports for dynamic-shape engines: tensor formats "N/A due to dynamic shapes" and the
    weights' type ("Half" when the ONNX has FP16 weights, as a strongly typed network keeps them)."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    dtype = {onnx.TensorProto.FLOAT: "FLOAT", onnx.TensorProto.FLOAT16: "HALF"}

    class Logger:
        WARNING = "warning"

        def __init__(self, level) -> None:
            self.level = level

    class Network:
        def __init__(self, flags: int) -> None:
            calls["network_flags"] = flags
            self.io: list[tuple[str, str, bool]] = []
            self.half = False

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.network, self.errors = network, []

        def parse_from_file(self, path: str) -> bool:
            try:
                graph = onnx.load(path).graph
            except Exception as exc:
                self.errors.append(f"ModelImporter: failed to parse {path}: {type(exc).__name__}")
                return False
            self.network.io = [(v.name, dtype[v.type.tensor_type.elem_type], True) for v in graph.input]
            self.network.io += [(v.name, dtype[v.type.tensor_type.elem_type], False) for v in graph.output]
            self.network.half = any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            calls.setdefault("timing_cache_in", []).append(bytes(data))
            self.data = bytes(data)

        def serialize(self) -> bytes:
            return self.data + b"|tuned"

    class Profile:
        def __init__(self) -> None:
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi) -> None:
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class Config:
        profiling_verbosity = None

        def set_memory_pool_limit(self, pool, size: int) -> None:
            calls["memory_pool_limit"] = (pool, size)

        def create_timing_cache(self, data: bytes) -> TimingCache:
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch: bool) -> None:
            calls["ignore_mismatch"] = ignore_mismatch

        def add_optimization_profile(self, profile) -> None:
            calls.setdefault("profiles", []).append(profile.shapes)

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network, config) -> bytes:
            calls["profiling_verbosity"] = config.profiling_verbosity
            return json.dumps({"io": network.io, "half": network.half}).encode()

    class Inspector:
        def __init__(self, engine) -> None:
            self.engine = engine

        def get_engine_information(self, fmt) -> str:
            na = {"Format/Datatype": "N/A due to dynamic shapes"}
            layers = [{"Name": "node_Conv_0 + node_relu", "LayerType": "CaskConvolution",
                       "Inputs": [{"Name": self.engine.io[0][0], **na}], "Outputs": [{"Name": "t0", **na}],
                       "Weights": {"Type": "Half" if self.engine.half else "Float", "Count": 64}}]
            return json.dumps({"Layers": layers, "Bindings": [n for n, _, _ in self.engine.io]})

    class Engine:
        def __init__(self, plan: bytes) -> None:
            data = json.loads(plan)
            self.io, self.half = [tuple(x) for x in data["io"]], data["half"]
            self.num_io_tensors = len(self.io)

        def get_tensor_name(self, i: int) -> str:
            return self.io[i][0]

        def get_tensor_dtype(self, name: str) -> _Enum:
            return _Enum(next(d for n, d, _ in self.io if n == name))

        def get_tensor_mode(self, name: str) -> str:
            return "input" if next(i for n, _, i in self.io if n == name) else "output"

        def create_engine_inspector(self) -> Inspector:
            return Inspector(self)

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, plan: bytes) -> Engine:
            return Engine(plan)

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.ProfilingVerbosity = types.SimpleNamespace(DETAILED="detailed", LAYER_NAMES_ONLY="names")
    trt.LayerInformationFormat = types.SimpleNamespace(JSON="json", ONELINE="oneline")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="input", OUTPUT="output")
    return trt


@pytest.fixture(params=["10.13.0.35", "11.4.0"])
def fake_trt(request, monkeypatch):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(request.param, calls))
    monkeypatch.setattr(tensorrt_build, "trt_environment", lambda: (request.param, GPU, CC))
    return request.param, calls


def _input_shapes(spec) -> dict[str, tuple[int, ...]]:
    return {n: tuple(x.shape) for n, x in zip(spec.input_names, spec.example, strict=True)}


def _per_sample(spec) -> dict[str, tuple[int, ...]]:
    return {n: tuple(x.shape[1:]) for n, x in zip(spec.input_names, spec.example, strict=True)}


def test_build_writes_engine_sidecar_and_timing_cache(tmp_path, fake_trt) -> None:
    version, calls = fake_trt
    exp = exported("tiny_sta")
    spec = part_specs(exp.model)[-1]
    onnx_path = shutil.copy(exp.path("head"), tmp_path / "tiny_sta.head.onnx")
    cache = tmp_path / "timing.cache"
    result = build_engine(onnx_path, tmp_path, "tiny_sta", "head", "fp32", _input_shapes(spec), max_batch=8,
                          workspace_bytes=1 << 30, timing_cache=cache)
    assert result.engine == engine_path(tmp_path, "tiny_sta", "head", GPU, version, "fp32")
    assert result.seconds >= 0
    assert result.engine.is_file() and result.sidecar == sidecar_path(result.engine)
    assert calls["network_flags"] == 1 << 1  # strongly typed: precision comes from the ONNX (TRT 10 and 11)
    assert calls["memory_pool_limit"] == ("workspace", 1 << 30) and calls["ignore_mismatch"] is False
    assert calls["profiling_verbosity"] == "detailed"  # layer information for the precision check
    side = Sidecar.read(result.engine)
    assert (side.onnx_sha256, side.onnx_file) == (sha256_of(onnx_path), "tiny_sta.head.onnx")
    assert (side.tensorrt_version, side.gpu_name, side.compute_capability) == (version, GPU, CC)
    assert (side.precision, side.part) == ("fp32", "head")
    for name, shape in _per_sample(spec).items():
        expected = {"min": [1, *shape], "opt": [4, *shape], "max": [8, *shape]}
        assert side.shapes[name] == expected
        assert calls["profiles"][0][name] == tuple(tuple(v) for v in expected.values())
    assert cache.read_bytes() == b"|tuned"  # the timing cache is saved ...
    build_engine(onnx_path, tmp_path, "tiny_sta", "head", "fp32", _input_shapes(spec), timing_cache=cache)
    assert calls["timing_cache_in"] == [b"", b"|tuned"]  # ... and reused by the next build


def test_fp16_engine_needs_fp16_in_the_graph_or_fails_loudly(tmp_path, fake_trt) -> None:
    exp = exported("tiny_sta")
    spec = part_specs(exp.model)[1]
    half = shutil.copy(exp.path("encoder", "fp16"), tmp_path / "tiny_sta.encoder.fp16.onnx")
    result = build_engine(half, tmp_path, "tiny_sta", "encoder", "fp16", _input_shapes(spec))
    assert Sidecar.read(result.engine).precision == "fp16"
    full = shutil.copy(exp.path("encoder"), tmp_path / "tiny_sta.encoder.onnx")
    with pytest.raises(PrecisionMismatch, match="no FP16 layers"):  # an FP32 graph asked for as fp16
        build_engine(full, tmp_path / "out", "tiny_sta", "encoder", "fp16", _input_shapes(spec))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.engine"))


def test_unparsable_onnx_is_an_error_naming_the_file(tmp_path, fake_trt) -> None:
    bad = tmp_path / "m.head.onnx"
    bad.write_bytes(b"\x00 not onnx")
    with pytest.raises(StanetError, match="m.head.onnx: TensorRT could not parse the ONNX graph: ModelImp"):
        build_engine(bad, tmp_path, "m", "head", "fp32", {"x": (2, 4)})


class _StubTensorRT:
    def __init__(self, path, cuda_graph: bool = False) -> None:
        side = Sidecar.read(path)
        self.path, self.info = path, EngineInfo("tensorrt", side.precision, "cuda", side.part)


def test_built_engines_are_what_auto_picks_on_the_same_machine(tmp_path, fake_trt, monkeypatch) -> None:
    version, _ = fake_trt
    exp = exported("tiny_sta")
    files = [shutil.copy(exp.path(p), tmp_path / exp.path(p).name) for p in ("audio", "encoder", "head")]
    built, message = build_engines(files, tmp_path, "tiny_sta", part_specs(exp.model))
    assert message == "built 3 TensorRT engines" and len(built) == 3
    assert (tmp_path / "timing.cache").is_file()
    monkeypatch.setattr(auto, "_gpu_and_trt", lambda: (GPU, CC, version))
    monkeypatch.setattr(trt_backend, "TensorRTEngine", _StubTensorRT)
    bundle = engines.open_student(tmp_path / "tiny_sta")
    assert bundle.backend == "tensorrt"
    assert sorted(e.path for e in (bundle.audio, bundle.encoder, bundle.head)) == sorted(built)
    monkeypatch.setattr(auto, "_gpu_and_trt", lambda: ("NVIDIA L4", "8.9", version))  # another GPU
    assert engines.open_student(tmp_path / "tiny_sta", device="cpu").backend == "onnxruntime"


# -- the runtime (TensorRTEngine) against stand-ins for tensorrt and torch.cuda -----------------------
class _Capture:
    """Stands in for torch.cuda's CUDA graphs: while ``graph`` is set, "launches" are recorded into it
    instead of running, and ``replay`` runs them again with the addresses they were recorded with."""

    graph = None


def fake_tensorrt_runtime(calls: dict, capturable: bool = True) -> types.ModuleType:
    """A ``tensorrt`` module whose engine computes y = 2 x + 1 (batch 1..8) with the documented runtime API:
    set_input_shape / set_tensor_address / get_tensor_shape / execute_async_v3(stream handle). Like a GPU
    kernel, execution reads and writes the raw addresses bound at launch (here host memory via ctypes)."""
    import ctypes

    trt = types.ModuleType("tensorrt")
    trt.__version__ = TRT
    trt.TensorIOMode = types.SimpleNamespace(INPUT="input", OUTPUT="output")

    class Logger:
        WARNING = "warning"

        def __init__(self, level) -> None:
            pass

    class Context:
        def __init__(self) -> None:
            self.shape, self.address = None, {}

        def set_input_shape(self, name: str, shape) -> bool:
            if not 1 <= shape[0] <= 8:
                return False
            self.shape = tuple(shape)
            return True

        def set_tensor_address(self, name: str, address: int) -> None:
            self.address[name] = address

        def get_tensor_shape(self, name: str):
            return self.shape

        def execute_async_v3(self, stream_handle: int) -> bool:
            n, src, dst = int(np.prod(self.shape)), self.address["x"], self.address["y"]

            def kernel() -> None:
                x = np.ctypeslib.as_array((ctypes.c_float * n).from_address(src))
                np.ctypeslib.as_array((ctypes.c_float * n).from_address(dst))[:] = 2 * x + 1

            calls["streams"].append(stream_handle)
            if _Capture.graph is not None:
                if not capturable:
                    raise RuntimeError("operation not permitted when stream is capturing")
                _Capture.graph.kernels.append(kernel)
                calls["captured"] += 1
            else:
                kernel()
                calls["executed"] += 1
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i: int) -> str:
            return "xy"[i]

        def get_tensor_mode(self, name: str) -> str:
            return "input" if name == "x" else "output"

        def get_tensor_shape(self, name: str):
            return (-1, 4)

        def create_execution_context(self) -> Context:
            return Context()

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, plan: bytes) -> Engine:
            return Engine()

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


@pytest.fixture
def fake_cuda_runtime(monkeypatch):
    """tensorrt and the torch.cuda calls TensorRTEngine makes, replaced by host stand-ins."""
    import contextlib

    calls = {"streams": [], "captured": 0, "executed": 0, "replays": 0}

    class Stream:
        def __init__(self, device=None) -> None:
            self.cuda_stream = 1000 + len(calls["streams"])

        def wait_stream(self, other) -> None:
            pass

        def synchronize(self) -> None:
            pass

    class CUDAGraph:
        def __init__(self) -> None:
            self.kernels = []

        def replay(self) -> None:
            calls["replays"] += 1
            for kernel in self.kernels:
                kernel()

    @contextlib.contextmanager
    def graph(cuda_graph, pool=None, stream=None, capture_error_mode="global"):
        calls["capture_mode"] = capture_error_mode
        _Capture.graph = cuda_graph
        try:
            yield
        finally:
            _Capture.graph = None

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", CUDAGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)

    def make(tmp_path, cuda_graph: bool, capturable: bool = True):
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt_runtime(calls, capturable))
        path = tmp_path / "m.head.fp32.gpu.trt11.engine"
        path.write_bytes(b"plan")
        eng = trt_backend.TensorRTEngine(path, cuda_graph=cuda_graph)
        eng.device = torch.device("cpu")  # host memory stands in for the GPU's
        return eng

    return make, calls


def test_tensorrt_engine_without_cuda_graph_executes_every_run(tmp_path, fake_cuda_runtime) -> None:
    make, calls = fake_cuda_runtime
    eng = make(tmp_path, cuda_graph=False)
    assert (eng.input_names, eng.output_names, eng.info.part) == (["x"], ["y"], "head")
    x = torch.arange(8, dtype=torch.float32).view(2, 4)
    for _ in range(2):
        torch.testing.assert_close(eng.run_torch({"x": x})["y"], 2 * x + 1)
    assert calls["executed"] == 2 and calls["captured"] == 0 and eng._graph is None
    np.testing.assert_allclose(eng.run({"x": x.numpy()})["y"], 2 * x.numpy() + 1)


def test_tensorrt_cuda_graph_captures_once_per_shape_and_replays(tmp_path, fake_cuda_runtime) -> None:
    make, calls = fake_cuda_runtime
    eng = make(tmp_path, cuda_graph=True)
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    first = eng.run_torch({"x": a})["y"]
    torch.testing.assert_close(first, 2 * a + 1)
    # one warm-up execution (TensorRT's deferred work), then one captured launch on the same side stream
    assert (calls["executed"], calls["captured"], calls["replays"]) == (1, 1, 1)
    assert calls["streams"][0] == calls["streams"][1] and calls["capture_mode"] == "thread_local"
    graph = eng._graph
    assert graph is not None
    second = eng.run_torch({"x": b})["y"]  # same shape: new data copied into the static input, replayed
    torch.testing.assert_close(second, 2 * b + 1)
    torch.testing.assert_close(first, 2 * a + 1)  # outputs are copies: still valid after the next run
    assert (calls["executed"], calls["captured"], calls["replays"]) == (1, 1, 2) and eng._graph is graph
    c = torch.randn(3, 4)
    torch.testing.assert_close(eng.run_torch({"x": c})["y"], 2 * c + 1)  # new shape: captured again
    assert (calls["executed"], calls["captured"], calls["replays"]) == (2, 2, 3) and eng._graph is not graph
    from stanet_rt.errors import InputError

    with pytest.raises(InputError, match="outside the engine's profile"):
        eng.run_torch({"x": torch.zeros(9, 4)})


def test_tensorrt_engine_that_cannot_be_captured_runs_without_a_graph(tmp_path, fake_cuda_runtime, caplog) -> None:
    make, calls = fake_cuda_runtime
    eng = make(tmp_path, cuda_graph=True, capturable=False)
    x = torch.randn(2, 4)
    torch.testing.assert_close(eng.run_torch({"x": x})["y"], 2 * x + 1)
    assert eng._graph is None and not eng.cuda_graph
    assert len(eng.info.notes) == 1 and "CUDA graph capture failed" in eng.info.notes[0]
    torch.testing.assert_close(eng.run_torch({"x": x})["y"], 2 * x + 1)
    assert calls["replays"] == 0


# -- real TensorRT on a GPU (marked) -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trt_engines(tmp_path_factory):
    exp = exported("tiny_sta")
    folder = tmp_path_factory.mktemp("trt")
    files = [shutil.copy(p, folder / p.name) for p in exp.report.files]
    built, message = build_engines(files, folder, "tiny_sta", part_specs(exp.model))
    return exp, folder, built, message


@pytest.mark.trt
def test_tensorrt_engines_build_match_precision_and_keep_parity(trt_engines) -> None:
    exp, folder, built, message = trt_engines
    assert len(built) == 6, message
    specs = {s.part: s for s in part_specs(exp.model)}
    for path in built:
        side = Sidecar.read(path)
        eng = engines.open(path)
        assert eng.info.backend == "tensorrt" and eng.info.precision == side.precision
        spec = specs[side.part]
        for batch in (1, 3):
            feed = [x[:1].repeat(batch, *[1] * (x.dim() - 1)).numpy() for x in spec.example]
            got = eng.run(dict(zip(spec.input_names, feed, strict=True)))
            for name, ref in zip(spec.output_names, torch_outputs(spec.module, feed), strict=True):
                assert got[name].shape == ref.shape
                threshold = 0.999 if side.precision == "fp16" else 0.9999
                if ref.std() > 1e-6:
                    assert cc(got[name], ref) >= threshold, (path.name, name)


@pytest.mark.trt
def test_tensorrt_batch_outside_the_profile_is_a_clear_error(trt_engines) -> None:
    from stanet_rt.errors import InputError

    _, folder, built, _ = trt_engines
    eng = engines.open(next(p for p in built if ".head.fp32." in p.name))
    feed = {s.name: np.zeros((9, *s.shape[1:]), np.float32) for s in eng.inputs}
    with pytest.raises(InputError, match="outside the engine's profile"):
        eng.run(feed)


@pytest.mark.trt
def test_tensorrt_cuda_graph_replay(trt_engines) -> None:
    from stanet_rt.engines.trt_backend import TensorRTEngine

    _, _, built, _ = trt_engines
    path = next(p for p in built if ".head.fp32." in p.name)
    eng = TensorRTEngine(path, cuda_graph=True)
    feed = {s.name: torch.randn(2, *s.shape[1:], device="cuda") for s in eng.inputs}
    first = eng.run_torch(feed)["logits"].clone()
    again = eng.run_torch(feed)["logits"]
    torch.testing.assert_close(first, again)
    assert eng._graph is not None
