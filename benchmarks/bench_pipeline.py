"""Pipeline benchmark: a generated clip with audio (1080p by default) through ``stanet-rt run``.

Per stage (decode, preprocess, audio = STFT + audio net, encoder, head, fusion, overlay = render +
H.264 encode, maps) the time per call and per output frame and its share of the wall time; end-to-end
fps; latency from frame arrival (decoded) to its map written (p50 / p95); the STFT alone; and the
pipeline's own overhead: the share of frame time that is not model inference (audio + encoder + head).
Stages run in three threads, so shares of wall time can add up to more than 100 %.

``--live``: the live path instead of a file: an FFmpeg lavfi camera (``testsrc2`` at ``--size`` and
``--fps``) and microphone (``sine``) for ``--seconds``, with the overlay video and the maps written, as
``stanet-rt run --camera ... --mic ... -o ... --maps ...`` runs it. Recorded: frames in / out / dropped
(in = out + dropped), the resident memory sampled every second (its growth after the first minute: the
peak over the last minute against the peak over the minute after the first; thirds of shorter runs),
latency from a frame's capture to its map written (p50 / p95 / p99, and p95 beyond the model's own
look-ahead) and a PNG of memory and latency over time.

Run: ``python -m stanet_rt.benchmarks.bench_pipeline --models default --size 1920x1080 --seconds 3`` or
``stanet-rt bench pipeline`` (``--live --size 640x360 --seconds 600`` for the live measurement).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from stanet_rt.benchmarks.common import BenchmarkResult, bar_plot, time_callable

from stanet_rt.errors import InputError
from stanet_rt.progress import step_line

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
        from stanet_rt.resolve import resolve_models

        parts = [str(ref.target) for ref in resolve_models([])]
    else:
        parts = spec.split("+")
    paths = []
    for part in parts:
        if part in list_configs():
            import torch

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
    import torch

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
    res = run(clip, paths, opts, log=None)
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
    result.add(**common, stage="STFT alone (per frame)", per_frame_ms=round(_stft_ms("cuda" if s["device"] == "cuda"
                                                                                   else "cpu", batch), 3))
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
                    step_line("bench pipeline", f"{spec} {backend} {width}x{height} "
                              + ("overlay+maps" if overlay else "maps"))
                    bench_pipeline(spec, width, height, seconds, fps, backend, device, batch, result, Path(tmp),
                                   clip, overlay)
    return result


LIVE_COLUMNS = ["models", "backend", "input", "seconds", "frames_in", "frames_out", "dropped", "dropped_pct",
                "counts_add_up", "fps_out", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                "lookahead_ms", "latency_p95_beyond_lookahead_ms", "rss_start_mb", "rss_after_warmup_mb",
                "rss_end_mb", "rss_max_mb", "rss_growth_after_warmup_mb", "warmup_s", "load_avg_1m"]


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_live(models: str, width: int, height: int, fps: int, seconds: float, workdir: Path,
               backend: str = "auto", device: str = "auto", mic: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """One live run (lavfi camera + microphone, overlay + maps) of ``seconds``; returns (row, series)
    where series holds the per-second samples (time, RSS MB, frames in / out / dropped) and per-frame
    latencies (ms) for the plot."""
    from stanet_rt.pipeline.api import RunOptions, open_run

    label, paths = _resolve_models(models, workdir, backend)
    out = workdir / "live"
    opts = RunOptions(overlay=out / "overlay.mp4", maps=out / "maps.h5", backend=backend, device=device,
                      max_frames=int(round(seconds * fps)), progress=False)
    camera = f"lavfi:testsrc2=size={width}x{height}:rate={fps}"
    scheduler, src = open_run(None, paths, opts, camera=camera, mic="lavfi:sine=frequency=440" if mic else None,
                              log=None)
    samples: list[tuple[float, float, int, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        t0 = time.perf_counter()
        while not done.wait(1.0 if samples else 0.0):
            samples.append((time.perf_counter() - t0, _rss_mb(), scheduler.frames_in, scheduler.frames_out,
                            scheduler.dropped_late))
        samples.append((time.perf_counter() - t0, _rss_mb(), scheduler.frames_in, scheduler.frames_out,
                        scheduler.dropped_late))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with src:
            res = scheduler.run()
    finally:
        done.set()
        sampler.join()
    s = res.stats
    lat = np.asarray(scheduler.timings["latency"], dtype=np.float64)
    warmup = 60.0 if seconds >= 90 else seconds / 3.0
    end = samples[-1][0]
    span = min(60.0, max(1.0, (end - warmup) / 2))
    # RSS moves by a few MB per second as the allocator reuses frame buffers: compare peaks over equal
    # windows, the first one after the warm-up against the last one, rather than two single samples
    early = [r for t, r, *_ in samples if warmup <= t < warmup + span] or [samples[-1][1]]
    late = [r for t, r, *_ in samples if t >= end - span] or [samples[-1][1]]
    rss_warm = max(early)
    lookahead_ms = 1000.0 * s["lookahead_frames"] / fps
    p95 = float(np.percentile(lat, 95)) if lat.size else None
    row = {"models": label, "backend": "+".join(s["backend"]), "input": f"{width}x{height}@{fps}"
           + (" + mic" if mic else ""), "seconds": round(s["seconds"], 1), "frames_in": res.frames_in,
           "frames_out": res.frames_out, "dropped": res.dropped,
           "dropped_pct": round(100.0 * res.dropped / max(1, res.frames_in), 2),
           "counts_add_up": res.frames_in == res.frames_out + res.dropped, "fps_out": s["fps"],
           "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
           "latency_p95_ms": round(p95, 1) if p95 is not None else None,
           "latency_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
           "lookahead_ms": round(lookahead_ms, 1),
           "latency_p95_beyond_lookahead_ms": round(p95 - lookahead_ms, 1) if p95 is not None else None,
           "rss_start_mb": round(samples[0][1], 1), "rss_after_warmup_mb": round(rss_warm, 1),
           "rss_end_mb": round(samples[-1][1], 1), "rss_max_mb": round(max(r for _, r, *_ in samples), 1),
           "rss_growth_after_warmup_mb": round(max(late) - rss_warm, 1), "warmup_s": round(warmup, 1),
           "load_avg_1m": round(os.getloadavg()[0], 2)}
    return row, {"samples": samples, "latency_ms": lat.tolist(), "fps": fps}


def live_plot(series: list[tuple[str, dict[str, Any]]], path: Path) -> Path:
    """Resident memory (top) and capture -> map latency (bottom) over time, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_lat) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for label, data in series:
        t = [x[0] for x in data["samples"]]
        ax_rss.plot(t, [x[1] for x in data["samples"]], label=label)
        lat = data["latency_ms"]
        ax_lat.plot(np.arange(len(lat)) / data["fps"], lat, ".", markersize=1, label=label)
    ax_rss.set_ylabel("RSS (MB)")
    ax_lat.set_ylabel("capture -> map written (ms)")
    ax_lat.set_xlabel("seconds")
    ax_lat.set_yscale("log")
    ax_rss.legend(fontsize=8)
    ax_rss.set_title("live run: memory and latency", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_live(models: list[str], sizes: list[tuple[int, int]], fps: int, seconds: float,
             backends: list[str] | None = None, device: str = "auto", mic: bool = True,
             note: str | None = None) -> tuple[BenchmarkResult, list[tuple[str, dict[str, Any]]]]:
    """Live runs for every model x backend x size; the result (rows) and the series for :func:`live_plot`."""
    rows, series = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in models:
            for backend in backends or ["auto"]:
                for width, height in sizes:
                    step_line("bench pipeline --live", f"{spec} {backend} {width}x{height}@{fps} for {seconds:g} s")
                    row, data = bench_live(spec, width, height, fps, seconds, Path(tmp), backend, device, mic)
                    rows.append(row)
                    series.append((f"{spec} {backend} {width}x{height}", data))
    result = BenchmarkResult("pipeline_live")  # created after the runs: its machine probe imports torch
    result.rows = rows
    result.notes.append("live lavfi camera (testsrc2) + microphone (sine, resampled), overlay video + maps written; "
                        "latency = frame captured -> its map written (overlay and maps done); RSS growth = peak RSS "
                        "over the last minute minus peak RSS over the minute after the warm-up (the first minute; "
                        "for runs under 90 s thirds of the run); targets (issue 13): RSS growth "
                        "< 20 MB, latency p95 <= 100 ms beyond the look-ahead, in = out + dropped, dropped < 5 %")
    if note:
        result.notes.append(note)
    return result, series


def report_live(models: list[str], sizes: list[tuple[int, int]], fps: int, seconds: float, backends: list[str],
                device: str = "auto", mic: bool = True, note: str | None = None, out: Path | None = None,
                name: str = "pipeline_live") -> BenchmarkResult:
    """:func:`run_live`, then ``<name>.<machine>.{json,md,png}`` into ``out`` and the table printed."""
    result, series = run_live(models, sizes, fps, seconds, backends, device, mic, note)
    result.name = name
    paths = result.write(out, LIVE_COLUMNS) if out else result.write(columns=LIVE_COLUMNS)
    live_plot(series, paths["md"].with_suffix(".png"))
    print(result.markdown(LIVE_COLUMNS))
    return result


def report_file(models: list[str], width: int, height: int, seconds: float = 3.0, fps: int = 30,
                backends: list[str] | None = None, device: str = "auto", batch: int = 4, clip: Path | None = None,
                outputs: list[str] | None = None, note: str | None = None, out: Path | None = None,
                name: str = "pipeline") -> BenchmarkResult:
    """:func:`run` over a generated (or given) clip, then the result files into ``out`` and the table
    printed. ``outputs``: "overlay" (overlay video + maps) and / or "maps"."""
    outputs = outputs or ["overlay"]
    if not set(outputs) <= {"overlay", "maps"}:
        raise InputError(f"outputs {outputs}: expected overlay and/or maps")
    result = run(models, width, height, seconds, fps, backends or ["auto"], device, batch, clip,
                 tuple(o == "overlay" for o in outputs))
    result.name = name
    if note:
        result.notes.append(note)
    paths = result.write(out, COLUMNS) if out else result.write(columns=COLUMNS)
    rows = [r for r in result.rows if r["stage"] in STAGES]
    if rows:
        bar_plot(rows, ["models", "backend", "outputs", "stage"], "per_frame_ms", paths["md"].with_suffix(".png"),
                 f"time per output frame and stage, {width}x{height}", "ms / frame")
    print(result.markdown(COLUMNS))
    return result


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x360,1280x720"`` -> [(640, 360), (1280, 720)]; InputError on anything else."""
    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise InputError(f"size {text!r}: expected WxH, e.g. 1920x1080 (comma-separated for several)")
    return sizes  # type: ignore[return-value]


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
    parser.add_argument("--live", action="store_true", help="a live lavfi camera + microphone for --seconds "
                        "(--size may list several sizes, comma-separated)")
    parser.add_argument("--no-mic", action="store_true", help="--live without the microphone")
    parser.add_argument("--note", default=None, help="a note for the result file (e.g. that the machine was shared)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else None
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    if not outputs or not set(outputs) <= {"overlay", "maps"}:
        parser.error(f"--outputs {args.outputs!r}: expected overlay and/or maps")
    try:
        sizes = parse_sizes(args.size)
    except InputError as exc:
        parser.error(f"--{exc}")
    if args.live:
        return report_live(args.models.split(","), sizes, args.fps, args.seconds, args.backends.split(","),
                           args.device, not args.no_mic, args.note, out,
                           args.name if args.name != "pipeline" else "pipeline_live")
    width, height = sizes[0]
    return report_file(args.models.split(","), width, height, args.seconds, args.fps, args.backends.split(","),
                       args.device, args.batch, args.clip, outputs, args.note, out, args.name)


if __name__ == "__main__":
    main()
