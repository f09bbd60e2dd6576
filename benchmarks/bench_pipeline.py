"""Pipeline benchmark: a generated clip with audio (1080p by default) through ``stanet-rt run``.

Per stage (decode, preprocess, audio = STFT + audio net, encoder, head, fusion, overlay = render +
H.264 encode, maps) the time per call and per output frame and its share of the wall time; end-to-end
fps; latency from frame arrival (decoded) to its map written (p50 / p95); the STFT alone; and the
pipeline's own overhead: the share of frame time that is not model inference (audio + encoder + head).
Stages run in three threads, so shares of wall time can add up to more than 100 %.

Run: ``python -m stanet_rt.benchmarks.bench_pipeline --models default --size 1920x1080 --seconds 3`` or
``stanet-rt bench pipeline``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
from stanet_rt.benchmarks.common import BenchmarkResult, bar_plot, time_callable

STAGES = ("decode", "preprocess", "audio", "encoder", "head", "fusion", "overlay", "maps")
INFERENCE = ("audio", "encoder", "head")
COLUMNS = ["models", "backend", "device", "input", "outputs", "stage", "calls", "p50_ms", "per_frame_ms", "share",
           "fps", "latency_p50_ms", "latency_p95_ms", "overhead_share"]


def _resolve_models(spec: str, workdir: Path, backend: str = "auto") -> tuple[str, list[str]]:
    """``default`` (the packaged model(s)), a registered config name (random weights, saved to a
    checkpoint), or checkpoint / export paths joined with ``+`` (fused). For the ``onnxruntime`` /
    ``tensorrt`` backends checkpoints are exported first (FP32 ONNX with its parity check)."""
    from stanet_rt.config import list_configs

    if spec == "default":
        from stanet_rt.models.default import default_model_paths

        parts = [str(p) for p in default_model_paths()]
    else:
        parts = spec.split("+")
    paths = []
    for part in parts:
        if part in list_configs():
            from stanet_rt.checkpoint import save_checkpoint
            from stanet_rt.config import get_config
            from stanet_rt.models.factory import build_model

            torch.manual_seed(0)
            part = str(save_checkpoint(workdir / f"{part}.pt", build_model(get_config(part)).eval()))
        if backend in ("onnxruntime", "tensorrt") and Path(part).suffix in (".pt", ".pth"):
            from stanet_rt.export.api import export_model

            folder = workdir / f"export_{Path(part).stem}"
            if not folder.is_dir():
                export_model(part, folder, tensorrt=backend == "tensorrt", progress=False)
            part = str(folder)
        paths.append(part)
    return spec, paths


def _stft_ms(device: str, batch: int) -> float:
    from stanet_rt.audio.spectrogram import LogSpectrogram
    from stanet_rt.config import AudioConfig

    spec = LogSpectrogram(AudioConfig()).to(device)
    wave = torch.randn(batch, AudioConfig().window_samples, device=device)
    with torch.no_grad():
        t = time_callable(lambda: spec(wave), warmup=2, iterations=20, cuda_sync=device == "cuda")
    return t.p50 / batch


def bench_pipeline(models: str, width: int, height: int, seconds: float, fps: int, backend: str, device: str,
                   batch: int, result: BenchmarkResult, workdir: Path, clip: Path | None = None,
                   overlay: bool = True) -> dict[str, Any]:
    """Run one configuration and add its rows to ``result``; returns the run's stats."""
    from stanet_rt.pipeline.api import RunOptions, run
    from stanet_rt.pipeline.clips import make_clip

    label, paths = _resolve_models(models, workdir, backend)
    if clip is None:
        clip = workdir / f"clip_{width}x{height}_{seconds:g}s.mp4"
        if not clip.exists():
            make_clip(clip, seconds=seconds, fps=fps, width=width, height=height)
    out = workdir / "out"
    opts = RunOptions(overlay=out / "overlay.mp4" if overlay else None, maps=out / "maps.h5", batch=batch,
                      backend=backend, device=device, progress=False)
    res = run(clip, paths, opts, log=lambda m: None)
    s = res.stats
    frames = max(1, s["frames_out"])
    wall_ms = s["seconds"] * 1000.0
    frame_ms = wall_ms / frames
    common = {"models": label, "backend": "+".join(s["backend"]), "device": s["device"],
              "input": f"{width}x{height}", "batch": batch, "outputs": "overlay+maps" if overlay else "maps"}
    for stage in STAGES:
        st = s["stages"].get(stage)
        if not st or not st["n"]:
            continue
        result.add(**common, stage=stage, calls=st["n"], p50_ms=st["p50_ms"], p95_ms=st["p95_ms"],
                   per_frame_ms=round(st["total_ms"] / frames, 3), share=round(st["total_ms"] / wall_ms, 3))
    inference_ms = sum(s["stages"].get(k, {}).get("total_ms", 0.0) for k in INFERENCE) / frames
    overhead = max(0.0, 1.0 - inference_ms / frame_ms)
    lat = s["stages"].get("latency", {})
    result.add(**common, stage="STFT alone (per frame)", per_frame_ms=round(_stft_ms(s["device"], batch), 3))
    result.add(**common, stage="end to end", calls=frames, per_frame_ms=round(frame_ms, 3),
               fps=s["fps"], latency_p50_ms=lat.get("p50_ms"), latency_p95_ms=lat.get("p95_ms"),
               overhead_share=round(overhead, 3))
    return s


def run(models: list[str], width: int = 1920, height: int = 1080, seconds: float = 3.0, fps: int = 30,
        backends: list[str] | None = None, device: str = "auto", batch: int = 4,
        clip: Path | None = None, outputs: tuple[bool, ...] = (True,)) -> BenchmarkResult:
    result = BenchmarkResult("pipeline")
    result.notes.append("per_frame_ms = stage total / output frames; share = stage total / wall time (threads "
                        "overlap); overhead_share = 1 - (audio + encoder + head) / frame time (target < 0.15); "
                        "latency = frame decoded -> its map written")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in models:
            for backend in backends or ["auto"]:
                for overlay in outputs:
                    bench_pipeline(spec, width, height, seconds, fps, backend, device, batch, result, Path(tmp),
                                   clip, overlay)
    return result


def main(argv: list[str] | None = None) -> BenchmarkResult:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="default", help="comma-separated: default, config names, paths; "
                        "'a+b' fuses two students")
    parser.add_argument("--backends", default="auto")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clip", type=Path, default=None, help="use this clip instead of a generated one")
    parser.add_argument("--out", default=None)
    parser.add_argument("--name", default="pipeline", help="result file stem")
    parser.add_argument("--outputs", default="overlay", help="comma-separated: overlay (overlay video + maps), "
                        "maps (maps only)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    names = [o.strip() for o in args.outputs.split(",") if o.strip()]
    if not names or not set(names) <= {"overlay", "maps"}:
        parser.error(f"--outputs {args.outputs!r}: expected overlay and/or maps")
    outputs = tuple(o == "overlay" for o in names)
    result = run(args.models.split(","), width, height, args.seconds, args.fps, args.backends.split(","),
                 args.device, args.batch, args.clip, outputs)
    result.name = args.name
    paths = result.write(args.out, COLUMNS) if args.out else result.write(columns=COLUMNS)
    rows = [r for r in result.rows if r["stage"] in STAGES]
    if rows:
        bar_plot(rows, ["models", "backend", "outputs", "stage"], "per_frame_ms", paths["md"].with_suffix(".png"),
                 f"time per output frame and stage, {args.size}", "ms / frame")
    print(result.markdown(COLUMNS))
    return result


if __name__ == "__main__":
    main()
