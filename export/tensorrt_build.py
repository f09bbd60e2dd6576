"""Native TensorRT engine build from an exported ONNX graph (TensorRT 10 and 11 Python API).

Thin on purpose: ``tensorrt`` is imported lazily and needs a CUDA GPU, neither of which the CI
machines have. TensorRT 11 removed weak typing and ``BuilderFlag.FP16`` (deployment-notes 2.1/2.2):
the network is created strongly typed and FP16 comes from the FP16 ONNX (``export.fp16``); on
TensorRT 10 the same strongly typed path is used, so both versions build identically. After the
build the engine's I/O tensor types are checked against the precision asked for
(:func:`verify_precision`), and a mismatch fails loudly instead of silently building FP32.

API (docs.nvidia.com TensorRT Python API): Builder, create_network(flags),
NetworkDefinitionCreationFlag.STRONGLY_TYPED, OnnxParser.parse_from_file, create_builder_config,
set_memory_pool_limit(MemoryPoolType.WORKSPACE, n), create_optimization_profile/set_shape,
create_timing_cache/set_timing_cache, build_serialized_network, Runtime.deserialize_cuda_engine,
engine.num_io_tensors/get_tensor_name/get_tensor_dtype/get_tensor_mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stanet_rt.artifacts import Sidecar, engine_path, sha256_of
from stanet_rt.errors import StanetError


class TensorRTUnavailable(StanetError):
    """TensorRT or a CUDA GPU is missing: engines cannot be built here (the ONNX files still are)."""


class PrecisionMismatch(StanetError):
    """The built engine's tensor types do not match the precision asked for."""


def trt_environment() -> tuple[str, str, str]:
    """(TensorRT version, GPU name, compute capability) or raise :class:`TensorRTUnavailable`."""
    try:
        import tensorrt as trt
    except ImportError:
        raise TensorRTUnavailable("TensorRT is not installed (pip install 'stanet-rt[trt]' on a GPU machine)") from None
    from stanet_rt.devices import gpus

    found = gpus()
    if not found:
        raise TensorRTUnavailable("no CUDA GPU is present")
    return trt.__version__, found[0].name, found[0].compute_capability


def verify_precision(io_dtypes: Iterable[tuple[str, str, bool]], precision: str, internal_half_layers: int) -> None:
    """Check an engine: I/O tensors stay FP32 (the graphs keep FP32 I/O), and for ``fp16`` at least one
    layer runs in half precision. ``io_dtypes``: (name, dtype name, is_input). Raises PrecisionMismatch."""
    for name, dtype, _ in io_dtypes:
        if dtype.upper() not in ("FLOAT", "FLOAT32"):
            raise PrecisionMismatch(f"engine tensor {name} is {dtype}, expected FP32 I/O")
    if precision == "fp16" and internal_half_layers == 0:
        raise PrecisionMismatch("asked for fp16 but the engine has no FP16 layers (it was built FP32)")
    if precision == "fp32" and internal_half_layers > 0:
        raise PrecisionMismatch(f"asked for fp32 but the engine has {internal_half_layers} FP16 layers")


@dataclass
class BuildResult:
    engine: Path
    sidecar: Path
    seconds: float


def build_engine(onnx_path: Path, out_dir: Path, name: str, part: str, precision: str,
                 input_shapes: dict[str, tuple[int, ...]], max_batch: int = 8,
                 workspace_bytes: int = 2 << 30, timing_cache: Path | None = None) -> BuildResult:
    """Build ``onnx_path`` into an engine with a batch-axis optimisation profile (1 / max_batch/2 /
    max_batch), a timing cache and a workspace limit; write the engine and its sidecar."""
    trt_version, gpu, cc = trt_environment()
    import tensorrt as trt

    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise StanetError(f"{onnx_path}: TensorRT could not parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer precisions for verify_precision
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    shapes = {}
    for inp, shape in input_shapes.items():
        rest = tuple(shape[1:])
        lo, opt, hi = (1, *rest), (max(1, max_batch // 2), *rest), (max_batch, *rest)
        profile.set_shape(inp, lo, opt, hi)
        shapes[inp] = {"min": list(lo), "opt": list(opt), "max": list(hi)}
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise StanetError(f"{onnx_path}: TensorRT build failed (see the TensorRT log above)")
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    io = []
    for i in range(engine.num_io_tensors):
        t = engine.get_tensor_name(i)
        io.append((t, engine.get_tensor_dtype(t).name, engine.get_tensor_mode(t) == trt.TensorIOMode.INPUT))
    inspector = engine.create_engine_inspector()
    info = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    verify_precision(io, precision, info.count("Half") + info.count("FP16"))
    path = engine_path(out_dir, name, part, gpu, trt_version, precision)
    path.write_bytes(bytes(plan))
    if timing_cache is not None:
        timing_cache.write_bytes(bytes(cache.serialize()))
    side = Sidecar(sha256_of(onnx_path), Path(onnx_path).name, trt_version, gpu, cc, precision, part, shapes)
    return BuildResult(path, side.write(path), time.perf_counter() - t0)
