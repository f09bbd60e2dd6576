"""The GPU check (``make gpu-check``): on a CUDA machine, the ``gpu``-marked tests and the torch CUDA
benchmarks of the students, written to ``benchmarks/results/gpu_check.<machine>.{json,md}``.

Benchmarks: per output frame with feature caching (audio front end + encoder of one frame + head over the
window; STANet+ fused = both students plus the normalised-max fusion), batch 1, for STA @356, STA+ @256
(with its AudioSwitch), the fused STANet+ and the default model; FP32 and FP16 (FP16 with the FP32
islands of ``engines.torch_backend``); eager and CUDA graphs (the whole per-frame step captured once with
static inputs and replayed). Latency from CUDA events after warm-up. Random weights: speed does not
depend on them. Meant to finish in well under 8 minutes on one H100 / H200.

Run: ``make gpu-check`` (``bash benchmarks/gpu_check.sh``: also works without installing the package), or
``python -m stanet_rt.benchmarks.gpu_check [--skip-tests] [--seconds 2] [--out benchmarks/results]``.
Without a CUDA GPU it stops at once with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stanet_rt.benchmarks.common import RESULTS_DIR, BenchmarkResult, time_callable

from stanet_rt.devices import cuda_available

MODELS = ("sta", "sta_plus", "stanet_plus", "default")
PRECISIONS = ("fp32", "fp16")
MODES = ("eager", "cuda-graph")
COLUMNS = ["model", "precision", "mode", "p50_ms", "p95_ms", "p99_ms", "throughput_fps", "skipped"]
FUSED = "stanet_plus"


@dataclass
class FrameStep:
    """One output frame of one or more students as a closure over static input tensors: ``run()`` returns
    the (fused) saliency map (B, 1, H, W) in [0, 1]. The inputs never change address, so the step can be
    captured in a CUDA graph."""

    run: Callable[[], torch.Tensor]
    inputs: dict[str, torch.Tensor]


def _student(name: str) -> Any:
    """A registered config with random weights (seeded) or ``default`` (the packaged default checkpoint)."""
    if name == "default":
        from stanet_rt.checkpoint import load_checkpoint
        from stanet_rt.models.default import default_model_paths

        return load_checkpoint(default_model_paths()[0])[0].eval()
    from stanet_rt.config import get_config
    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    return build_model(get_config(name)).eval()


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of (B, 1, H, W)."""
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-8)


def student_step(model: Any, device: str, precision: str, prefix: str = "") -> FrameStep:
    """The cached per-frame work of one student: audio front end and encoder on the newest frame, the head on
    a window of features (random, of the right shapes), sigmoid + min-max normalisation."""
    from stanet_rt.engines.torch_backend import torch_engines

    parts = torch_engines(model, device, precision)
    gen = torch.Generator().manual_seed(0)
    inputs: dict[str, torch.Tensor] = {}
    for part, eng in parts.items():
        for spec in eng.inputs:
            shape = (1, *spec.shape[1:])
            dtype = eng.input_dtype  # what the part's ``run_torch`` would cast to (the waveform stays FP32)
            value = torch.ones(shape) if spec.name == "audio_on" else torch.randn(shape, generator=gen)
            inputs[f"{prefix}{part}.{spec.name}"] = value.to(device, dtype)

    def feed(part: str) -> list[torch.Tensor]:
        return [inputs[f"{prefix}{part}.{n}"] for n in parts[part].input_names]

    def run() -> torch.Tensor:
        if "audio" in parts:
            emb = parts["audio"].module(*feed("audio"))
            inputs[f"{prefix}encoder.audio_embedding"].copy_(emb)
        parts["encoder"].module(*feed("encoder"))  # the newest frame's features (the window stays static)
        logits = parts["head"].module(*feed("head"))
        return _normalise(torch.sigmoid(logits.float()))

    return FrameStep(run, inputs)


def fused_step(steps: Sequence[FrameStep]) -> FrameStep:
    """STANet+ fusion of several students' steps: normalised pixel-wise maximum at the largest map size."""

    def run() -> torch.Tensor:
        maps = [s.run() for s in steps]
        size = max((m.shape[-2:] for m in maps), key=lambda hw: hw[0] * hw[1])
        maps = [m if m.shape[-2:] == size else torch.nn.functional.interpolate(m, size=size, mode="bilinear")
                for m in maps]
        return _normalise(torch.stack(maps).amax(dim=0))

    return FrameStep(run, {k: v for s in steps for k, v in s.inputs.items()})


def captured(step: FrameStep) -> Callable[[], torch.Tensor]:
    """``step.run`` captured in a CUDA graph (warm-up on a side stream first, as CUDA graphs need)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(3):
            step.run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        out = step.run()

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    return replay


def make_step(name: str, device: str, precision: str) -> FrameStep:
    """The per-output-frame step of model ``name`` (``stanet_plus``: STA and STA+ fused)."""
    if name == FUSED:
        return fused_step([student_step(_student("sta"), device, precision, "sta."),
                           student_step(_student("sta_plus"), device, precision, "sta_plus.")])
    return student_step(_student(name), device, precision)


def bench(models: Sequence[str], precisions: Sequence[str], modes: Sequence[str], seconds: float,
          device: str = "cuda", log: Callable[[str], None] = print) -> BenchmarkResult:
    """Time every (model, precision, mode) case; a case that cannot run is a row with its reason."""
    result = BenchmarkResult("gpu_check")
    for name in models:
        for precision in precisions:
            try:
                step = make_step(name, device, precision)
            except Exception as exc:  # a model that cannot be built at this precision: say why, go on
                for mode in modes:
                    result.add(model=name, precision=precision, mode=mode, skipped=f"{type(exc).__name__}: {exc}")
                continue
            for mode in modes:
                row: dict[str, Any] = {"model": name, "precision": precision, "mode": mode}
                try:
                    fn = captured(step) if mode == "cuda-graph" else step.run
                    with torch.no_grad():
                        timing = time_callable(fn, warmup=5, iterations=20, min_seconds=seconds,
                                               cuda_sync=device.startswith("cuda"))
                    row.update(timing.summary())
                except Exception as exc:
                    row["skipped"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                result.add(**row)
                log(f"{name} {precision} {mode}: " + (f"{row['p50_ms']} ms p50, {row['throughput_fps']} fps"
                                                      if "p50_ms" in row else f"skipped ({row['skipped']})"))
            del step
            torch.cuda.empty_cache() if device.startswith("cuda") else None
    return result


def run_gpu_tests(root: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``pytest -m "gpu or trt"`` in a subprocess; returns its exit code, closing line and duration."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu or trt", "-p", "no:cacheprovider",
                           "-rfEs", str(root / "tests")], cwd=root, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    summary = [ln for ln in lines if ln.startswith(("FAILED", "ERROR", "SKIPPED"))]
    log("\n".join(lines[-len(summary) - 1:]) if lines else proc.stderr[-2000:])
    return {"exit_code": proc.returncode, "closing_line": lines[-1] if lines else "", "details": summary,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seconds", type=float, default=2.0, help="timing per case, after warm-up")
    ap.add_argument("--skip-tests", action="store_true", help="benchmarks only")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    if not cuda_available():
        print("error: gpu-check needs a CUDA GPU; torch sees none on this machine", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    root = Path(__file__).resolve().parents[1]
    tests = None if args.skip_tests else run_gpu_tests(root)
    result = bench(args.models.split(","), args.precisions.split(","), args.modes.split(","), args.seconds)
    if tests is not None:
        result.notes.append(f"pytest -m 'gpu or trt': {tests['closing_line']} (exit {tests['exit_code']}, "
                            f"{tests['seconds']} s)")
        result.notes.extend(tests["details"])
    paths = result.write(args.out, COLUMNS)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0 if tests is None or tests["exit_code"] in (0, 5) else 1


if __name__ == "__main__":
    raise SystemExit(main())
