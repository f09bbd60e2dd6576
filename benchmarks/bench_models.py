"""Model benchmarks: model x backend x precision x batch, per part (audio front end, per-frame encoder,
windowed head) and per output frame with and without feature caching.

Backends: ``torch`` (eager), ``torch-compile`` (``torch.compile``, where it works), ``ort-cpu``,
``ort-cuda``, ``ort-trt`` (ONNX Runtime execution providers), ``tensorrt`` (native). Precision ``fp16``
runs where the backend has it (torch on CUDA, ONNX Runtime CUDA / TensorRT EP on the FP16 export,
native TensorRT); elsewhere, and for every GPU backend where no GPU / TensorRT is present, the case is
listed as skipped with the reason. Latency p50/p95/p99 after warm-up (CUDA events on a GPU),
throughput in frames/s.

Models: registered config names (random weights: speed does not depend on them), checkpoint paths,
``default`` (the packaged default model) and ``stanet_plus`` (STA + STA+ fused: both students per
output frame plus the fusion).

Run: ``python -m stanet_rt.benchmarks.bench_models --models stanet_lite,sta --batches 1,8``
or ``stanet-rt bench models``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stanet_rt.benchmarks.common import BenchmarkResult, Timing, bar_plot, time_callable

from stanet_rt.progress import step_line

BACKENDS = ("torch", "torch-compile", "ort-cpu", "ort-cuda", "ort-trt", "tensorrt")
PRECISIONS = ("fp32", "fp16")
FUSED = "stanet_plus"
COLUMNS = ["model", "backend", "precision", "batch", "part", "p50_ms", "p95_ms", "p99_ms", "throughput_fps",
           "skipped"]


def load_model(name: str) -> Any:
    """Any torch model argument of the resolver (``stanet_rt.resolve``: ``default``, a registered config
    (random weights, seed 0), a checkpoint) -> an eval-mode student."""
    from stanet_rt.resolve import load_torch_model

    torch.manual_seed(0)
    return load_torch_model(name)[0].eval()


def _inputs(model: Any, batch: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Random feeds of the three parts: waveform (B, 8000); frames (B, 3, S, S) [+ embedding, audio_on];
    the head's window of features (B, T, *shape)."""
    cfg = model.config
    s = cfg.input_size
    rng = np.random.default_rng(0)
    audio = {"waveform": (0.3 * rng.standard_normal((batch, cfg.audio.window_samples))).astype(np.float32)} \
        if cfg.audio else {}
    enc = {"frames": rng.standard_normal((batch, 3, s, s)).astype(np.float32)}
    if cfg.audio:
        with torch.no_grad():
            from stanet_rt.audio.spectrogram import LogSpectrogram

            emb = model.encode_audio(LogSpectrogram(cfg.audio)(torch.from_numpy(audio["waveform"])))
        enc["audio_embedding"] = emb.numpy()
        enc["audio_on"] = np.ones((batch, 1), np.float32)
    t = len(cfg.window_offsets)
    shapes = model.feature_shapes(s, s)
    head = {k: rng.standard_normal((batch, t, *shape)).astype(np.float32) for k, shape in shapes.items()}
    return audio, enc, head


def why_skipped(backend: str, precision: str) -> str | None:
    """The reason a (backend, precision) case cannot run on this machine, or None."""
    cuda = torch.cuda.is_available()
    if backend in ("ort-cuda", "ort-trt", "tensorrt") and not cuda:
        return "no CUDA GPU"
    if backend == "tensorrt":
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return "TensorRT not installed"
    if backend in ("ort-cuda", "ort-trt"):
        import onnxruntime as ort

        wanted = "CUDAExecutionProvider" if backend == "ort-cuda" else "TensorrtExecutionProvider"
        if wanted not in ort.get_available_providers():
            return f"ONNX Runtime has no {wanted} (install the [gpu] extra)"
    if precision == "fp16" and backend in ("torch", "torch-compile", "ort-cpu") and not (cuda and backend != "ort-cpu"):
        return "fp16 runs on GPU backends only"
    return None


def engines_for(model: Any, backend: str, precision: str, workdir: Path) -> dict[str, Any]:
    """The part engines (audio, encoder, head) of ``model`` on ``backend`` at ``precision``."""
    from stanet_rt import engines
    from stanet_rt.artifacts import part_path

    cuda = torch.cuda.is_available()
    if backend in ("torch", "torch-compile"):
        from stanet_rt.engines.torch_backend import torch_engines

        parts = torch_engines(model, "cuda" if cuda else "cpu", precision)
        if backend == "torch-compile":
            for eng in parts.values():
                eng.module = torch.compile(eng.module)
        return parts
    name = model.config.name
    if not part_path(workdir, name, "head", precision).exists():
        from stanet_rt.export.api import export_model

        export_model(model, workdir, fp16=precision == "fp16", tensorrt=backend == "tensorrt", progress=False)
    parts = {}
    for part in ("audio", "encoder", "head"):
        path = part_path(workdir, name, part, precision)
        if part == "audio" and not path.exists():
            continue
        if backend == "tensorrt":
            engine_files = sorted(workdir.glob(f"{name}.{part}*.engine"))
            parts[part] = engines.open(engine_files[0] if engine_files else path, "tensorrt", "cuda")
        else:
            parts[part] = engines.open(path, "onnxruntime", "cpu" if backend == "ort-cpu" else "cuda")
    providers = getattr(getattr(parts["encoder"], "info", None), "providers", None) or []
    if backend in ("ort-cuda", "ort-trt") and providers and providers[0] == "CPUExecutionProvider":
        raise RuntimeError("ONNX Runtime fell back to CPU")
    return parts


def bench_model(model: Any, backends: list[str], precisions: list[str], batches: list[int], iterations: int,
                result: BenchmarkResult, workdir: Path, label: str | None = None) -> dict[tuple, float]:
    """Add rows for one model; returns {(backend, precision, batch): cached ms per output frame}."""
    cfg = model.config
    label = label or cfg.name
    window = len(cfg.window_offsets)
    per_frame: dict[tuple, float] = {}
    for backend in backends:
        for precision in precisions:
            step_line("bench models", f"{label} {backend} {precision}")
            reason = why_skipped(backend, precision)
            eng = None
            if reason is None:
                try:
                    eng = engines_for(model, backend, precision, workdir)
                except Exception as exc:  # noqa: BLE001 - a backend that fails is reported, not fatal
                    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            if eng is None:
                result.add(model=label, backend=backend, precision=precision, batch="-", part="all", skipped=reason)
                continue
            for batch in batches:
                audio, enc, head = _inputs(model, batch)
                parts: dict[str, Timing] = {}
                sync = torch.cuda.is_available() and backend != "ort-cpu"
                for part, feed in (("audio", audio), ("encoder", enc), ("head", head)):
                    if eng.get(part) is None:
                        continue
                    parts[part] = time_callable(lambda e=eng[part], f=feed: e.run(f), warmup=2,
                                                iterations=iterations, items_per_call=batch, cuda_sync=sync)
                for part, timing in parts.items():
                    result.add(model=label, backend=backend, precision=precision, batch=batch, part=part,
                               **timing.summary())
                cached = sum(t.p50 for t in parts.values()) / batch
                encode = parts["encoder"].p50 + (parts["audio"].p50 if "audio" in parts else 0.0)
                uncached = (window * encode + parts["head"].p50) / batch
                per_frame[(backend, precision, batch)] = cached
                result.add(model=label, backend=backend, precision=precision, batch=batch, part="frame (cached)",
                           p50_ms=round(cached, 3), throughput_fps=round(1000 / cached, 2))
                result.add(model=label, backend=backend, precision=precision, batch=batch,
                           part="frame (uncached)", p50_ms=round(uncached, 3), throughput_fps=round(1000 / uncached, 2))
    return per_frame


def fusion_ms(size: int = 356) -> float:
    """STANet+ fusion of two students' logits into one map (resize, sigmoid, normalised max), per frame."""
    from stanet_rt.pipeline.model_runner import Fuser

    fuser = Fuser(2, (size, size))
    logits = torch.randn(1, 1, size, size)
    counter = iter(range(10**9))

    def fuse() -> None:
        i = next(counter)
        fuser.add(i, logits)
        fuser.add(i, logits)

    return time_callable(fuse, warmup=2, iterations=50).p50


def summarise(result: BenchmarkResult) -> None:
    """Target lines: ONNX Runtime CPU vs torch eager (>= 1.3x); on a GPU, TensorRT FP16 vs torch FP32 (>= 3x)."""
    frames = {(r["model"], r["backend"], r["precision"], r["batch"]): r["throughput_fps"]
              for r in result.rows if r.get("part") == "frame (cached)"}
    torch_on_cpu = not torch.cuda.is_available()  # the torch backend runs on the GPU when there is one
    for (model, backend, precision, batch), fps in sorted(frames.items(), key=str):
        if backend == "ort-cpu" and precision == "fp32" and torch_on_cpu:
            base = frames.get((model, "torch", "fp32", batch))
            if base:
                ratio = fps / base
                result.notes.append(f"target ORT CPU >= 1.3x torch eager: {model} batch {batch}: "
                                    f"{ratio:.2f}x ({'met' if ratio >= 1.3 else 'NOT met'})")
        if backend in ("tensorrt", "ort-trt") and precision == "fp16" and batch == 1:
            base = frames.get((model, "torch", "fp32", 1))
            if base:
                ratio = fps / base
                result.notes.append(f"target TensorRT FP16 >= 3x torch FP32 at batch 1: {model} ({backend}): "
                                    f"{ratio:.2f}x ({'met' if ratio >= 3 else 'NOT met'})")


def run(models: list[str], backends: list[str], batches: list[int], iterations: int = 10,
        precisions: list[str] | None = None) -> BenchmarkResult:
    precisions = precisions or ["fp32"]
    result = BenchmarkResult("models")
    result.notes.append("random weights for registered configs (speed does not depend on them); 'frame (cached)' = "
                        "audio + encoder + head per output frame, 'frame (uncached)' re-encodes the whole window")
    with tempfile.TemporaryDirectory() as tmp:
        done: dict[str, dict[tuple, float]] = {}
        for name in models:
            names = ["sta", "sta_plus"] if name == FUSED else [name]
            for n in names:
                if n not in done:
                    done[n] = bench_model(load_model(n), backends, precisions, batches, iterations, result,
                                          Path(tmp), label=n)
            if name == FUSED:
                fuse = fusion_ms()
                for key in done["sta"].keys() & done["sta_plus"].keys():
                    ms = done["sta"][key] + done["sta_plus"][key] + fuse
                    backend, precision, batch = key
                    result.add(model="stanet_plus (sta + sta_plus)", backend=backend, precision=precision,
                               batch=batch, part="frame (cached)", p50_ms=round(ms, 3),
                               throughput_fps=round(1000 / ms, 2))
    summarise(result)
    return result


def bench_and_report(models: list[str], backends: list[str], precisions: list[str], batches: list[int],
                     iterations: int = 10, out: Path | None = None, name: str = "models") -> BenchmarkResult:
    """Run :func:`run`, write ``<name>.<machine>.{json,md,png}`` into ``out`` (default: the results folder)
    and print the table; what ``stanet-rt bench models`` calls."""
    result = run(models, backends, batches, iterations, precisions)
    result.name = name
    paths = result.write(out, COLUMNS) if out else result.write(columns=COLUMNS)
    rows = [r for r in result.rows if r.get("part") == "frame (cached)"]
    if rows:
        bar_plot(rows, ["model", "backend", "precision", "batch"], "throughput_fps", paths["md"].with_suffix(".png"),
                 "frames/s per output frame (feature caching)", "frames / s")
    print(result.markdown(COLUMNS))
    for note in result.notes:
        print(f"- {note}")
    return result


def main(argv: list[str] | None = None) -> BenchmarkResult:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="default,stanet_lite")
    parser.add_argument("--backends", default="torch,ort-cpu,ort-cuda,ort-trt,tensorrt")
    parser.add_argument("--precisions", default="fp32,fp16")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", default=None)
    parser.add_argument("--name", default="models", help="result file stem")
    args = parser.parse_args(argv)
    return bench_and_report(args.models.split(","), args.backends.split(","), args.precisions.split(","),
                            [int(b) for b in args.batches.split(",")], args.iterations,
                            Path(args.out) if args.out else None, args.name)


if __name__ == "__main__":
    main()
