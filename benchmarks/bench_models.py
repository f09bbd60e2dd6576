"""Model benchmarks: per model x backend x precision x batch, the per-frame encoder (with the audio
front end), the windowed head, and the per-output-frame total with and without feature caching.

Backends: ``torch`` (eager), ``torch-compile`` (``torch.compile``, where it works), ``ort-cpu``,
``ort-cuda``, ``ort-trt`` (ONNX Runtime execution providers), ``tensorrt`` (native). GPU backends are
listed as skipped, with the reason, where no GPU / TensorRT is present. Latency p50/p95/p99 after
warm-up (CUDA events on GPU), throughput in frames/s.

Run: ``python -m benchmarks.bench_models --models demo_lite,sta --batches 1,8`` or ``stanet-rt bench models``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import BenchmarkResult, Timing, bar_plot, time_callable

BACKENDS = ("torch", "torch-compile", "ort-cpu", "ort-cuda", "ort-trt", "tensorrt")


def _model(name: str):  # noqa: ANN202
    """A registered config (random weights: speed does not depend on them) or a checkpoint path."""
    from stanet_rt.config import list_configs

    if name in list_configs():
        from stanet_rt.config import get_config
        from stanet_rt.models.factory import build_model

        return build_model(get_config(name)).eval()
    from stanet_rt.checkpoint import load_checkpoint

    return load_checkpoint(name)[0].eval()


def _inputs(model: Any, batch: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
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


def _engines_for(model: Any, backend: str, workdir: Path) -> dict[str, Any] | str:
    """The three part engines of ``model`` on ``backend``, or a string saying why it is skipped."""
    import engines
    from engines.torch_backend import torch_engines

    cuda = torch.cuda.is_available()
    if backend in ("torch", "torch-compile"):
        parts = torch_engines(model, "cuda" if cuda else "cpu")
        if backend == "torch-compile":
            try:
                for eng in parts.values():
                    eng.module = torch.compile(eng.module)
            except Exception as exc:  # pragma: no cover - depends on the toolchain
                return f"torch.compile unavailable: {type(exc).__name__}"
        return parts
    if backend in ("ort-cuda", "ort-trt") and not cuda:
        return "no CUDA GPU"
    if backend == "tensorrt":
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return "TensorRT not installed"
        if not cuda:
            return "no CUDA GPU"
    prefix = workdir / model.config.name
    if not (workdir / f"{model.config.name}.head.onnx").exists():
        from export.api import export_model

        export_model(model, workdir, tensorrt=backend == "tensorrt", progress=False)
    bundle = engines.open_student(prefix, backend="onnxruntime" if backend.startswith("ort") else "auto",
                                  device="cpu" if backend == "ort-cpu" else "cuda")
    if backend == "ort-cuda" and bundle.encoder.info.providers[0] == "CPUExecutionProvider":
        return "ONNX Runtime fell back to CPU (onnxruntime-gpu not usable)"
    return {"audio": bundle.audio, "encoder": bundle.encoder, "head": bundle.head}


def bench_model(name: str, backends: list[str], batches: list[int], iterations: int, result: BenchmarkResult,
                workdir: Path) -> None:
    model = _model(name)
    cfg = model.config
    window = len(cfg.window_offsets)
    for backend in backends:
        eng = _engines_for(model, backend, workdir)
        if isinstance(eng, str):
            result.add(model=cfg.name, backend=backend, precision="fp32", batch="-", part="all", skipped=eng)
            continue
        for batch in batches:
            audio, enc, head = _inputs(model, batch)
            parts: dict[str, Timing] = {}
            sync = torch.cuda.is_available() and backend != "ort-cpu"
            feeds = {"audio": audio, "encoder": enc, "head": head}
            for part, feed in feeds.items():
                if eng.get(part) is None:
                    continue
                parts[part] = time_callable(lambda e=eng[part], f=feed: e.run(f), warmup=2, iterations=iterations,
                                            items_per_call=batch, cuda_sync=sync)
            for part, timing in parts.items():
                result.add(model=cfg.name, backend=backend, precision="fp32", batch=batch, part=part,
                           **timing.summary())
            per_frame = sum(t.p50 for t in parts.values()) / batch
            uncached = (window * (parts["encoder"].p50 + (parts["audio"].p50 if "audio" in parts else 0.0))
                        + parts["head"].p50) / batch
            result.add(model=cfg.name, backend=backend, precision="fp32", batch=batch, part="frame (cached)",
                       p50_ms=round(per_frame, 3), throughput_fps=round(1000 / per_frame, 2))
            result.add(model=cfg.name, backend=backend, precision="fp32", batch=batch, part="frame (uncached)",
                       p50_ms=round(uncached, 3), throughput_fps=round(1000 / uncached, 2))


def run(models: list[str], backends: list[str], batches: list[int], iterations: int = 10) -> BenchmarkResult:
    result = BenchmarkResult("models")
    result.notes.append("random weights for registered configs (speed does not depend on them); "
                        "'frame (cached)' = audio + encoder + head per output frame, 'uncached' re-encodes the window")
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            bench_model(name, backends, batches, iterations, result, Path(tmp))
    return result


def main(argv: list[str] | None = None) -> BenchmarkResult:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="demo_lite,stanet_lite")
    parser.add_argument("--backends", default="torch,ort-cpu,ort-cuda,ort-trt,tensorrt")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    result = run(args.models.split(","), args.backends.split(","), [int(b) for b in args.batches.split(",")],
                 args.iterations)
    paths = result.write(args.out) if args.out else result.write()
    rows = [r for r in result.rows if r.get("part") == "frame (cached)"]
    if rows:
        bar_plot(rows, ["model", "backend", "batch"], "throughput_fps", paths["md"].with_suffix(".png"),
                 "frames/s per output frame (feature caching)", "frames / s")
    print(result.markdown(["model", "backend", "batch", "part", "p50_ms", "p95_ms", "throughput_fps", "skipped"]))
    return result


if __name__ == "__main__":
    main()
