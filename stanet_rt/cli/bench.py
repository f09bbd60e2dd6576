"""``stanet-rt bench``: throughput and latency of models, backends, the pipeline and the metrics.

Thin wrappers over the typed report functions of ``benchmarks.bench_models``, ``benchmarks.bench_pipeline``
and ``benchmarks.bench_metrics`` (no second argument parser); each writes ``<name>.<machine>.{json,md,png}``
into ``--out`` (default ``./benchmarks_out``; ``--update-results`` writes the committed ``benchmarks/results/``
of the package instead) and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import typer

from stanet_rt.cli import app, fail

bench_app = typer.Typer(help="Benchmarks: models x backends x batch, pipeline stages, metrics.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

DEFAULT_OUT = Path("benchmarks_out")
_OUT = typer.Option(None, "--out", help=f"Folder of the result files (default ./{DEFAULT_OUT}).")
_UPDATE = typer.Option(False, "--update-results",
                       help="Write into the committed benchmarks/results/ of the source tree (to update them).")


def result_dir(out: Path | None, update_results: bool) -> Path:
    """The folder a benchmark writes: ``--out``, the committed results with ``--update-results``, else
    ``./benchmarks_out``; refused (one line, exit 2) when it cannot be written."""
    from stanet_rt.outputs import check_outputs

    if out is not None and update_results:
        fail("give --out or --update-results, not both")
    if update_results:
        from stanet_rt.benchmarks.common import RESULTS_DIR

        out = RESULTS_DIR
    out = DEFAULT_OUT if out is None else out
    check_outputs([], folders={"--out": out})
    return out


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@bench_app.command("models")
def bench_models(
    models: str = typer.Option("default,stanet_lite", "--models",
                               help="Comma-separated: config names (random weights), checkpoints, 'default', "
                                    "'stanet_plus' (sta + sta_plus fused)."),
    backends: str = typer.Option("torch,ort-cpu,ort-cuda,ort-trt,tensorrt", "--backends",
                                 help="torch, torch-compile, ort-cpu, ort-cuda, ort-trt, tensorrt."),
    precisions: str = typer.Option("fp32,fp16", "--precisions", help="fp32, fp16 (GPU backends only)."),
    batches: str = typer.Option("1,8", "--batches", help="Comma-separated batch sizes."),
    iterations: int = typer.Option(10, "--iterations", min=1, help="Timed calls per case (after warm-up)."),
    name: str = typer.Option("models", "--name", help="Result file stem."),
    out: Path = _OUT,
    update_results: bool = _UPDATE,
) -> None:
    """Latency p50/p95/p99 and throughput per model, backend, precision, batch and part."""
    from stanet_rt.benchmarks import bench_models as bm

    out = result_dir(out, update_results)
    try:
        batch_list = [int(b) for b in _split(batches)]
    except ValueError:
        fail(f"--batches {batches!r}: expected comma-separated integers")
    bad = [b for b in _split(backends) if b not in bm.BACKENDS]
    if bad:
        fail(f"--backends: unknown {', '.join(bad)} (choose from {', '.join(bm.BACKENDS)})")
    bm.bench_and_report(_split(models), _split(backends), _split(precisions), batch_list, iterations, out, name)


@bench_app.command("pipeline")
def bench_pipeline(
    models: str = typer.Option("default", "--models", help="Comma-separated: default, config names, paths; "
                               "'a+b' fuses two students."),
    backends: str = typer.Option("auto", "--backends", help="auto, torch, onnxruntime, tensorrt."),
    size: str = typer.Option("1920x1080", "--size", help="Generated clip size WxH."),
    seconds: float = typer.Option(3.0, "--seconds", min=0.5, help="Generated clip length."),
    batch: int = typer.Option(4, "--batch", min=1),
    device: str = typer.Option("auto", "--device"),
    clip: Path = typer.Option(None, "--clip", help="Benchmark this clip instead of a generated one."),
    outputs: str = typer.Option("overlay", "--outputs",
                                help="Comma-separated: overlay (overlay video + maps), maps (maps only)."),
    name: str = typer.Option("pipeline", "--name", help="Result file stem."),
    live: bool = typer.Option(False, "--live", help="A live lavfi camera + microphone for --seconds instead of a "
                              "file: counts, memory over time, capture -> map latency (--size may list sizes)."),
    fps: int = typer.Option(30, "--fps", min=1, help="Frame rate of the generated clip / live camera."),
    note: str = typer.Option(None, "--note", help="A note for the result file (e.g. the machine was shared)."),
    out: Path = _OUT,
    update_results: bool = _UPDATE,
) -> None:
    """Time per pipeline stage, end-to-end fps, latency and the pipeline's own overhead (or, with
    ``--live``, a live run's counts, memory and latency over time)."""
    from stanet_rt.cli.run import one_blas_thread
    from stanet_rt.devices import resolve_device

    out = result_dir(out, update_results)
    device = resolve_device(device, log=lambda m: typer.echo(m, err=True))
    one_blas_thread()  # as `stanet-rt run` runs
    from stanet_rt.benchmarks import bench_pipeline as bp

    if clip is not None and not clip.exists():
        fail(f"{clip}: no such file")
    if not set(_split(outputs)) <= {"overlay", "maps"}:
        fail(f"--outputs {outputs!r}: expected overlay and/or maps")
    from stanet_rt.errors import InputError

    try:
        sizes = bp.parse_sizes(size)
    except InputError as exc:
        fail(f"--{exc}")
    if live:
        bp.report_live(_split(models), sizes, fps, seconds, _split(backends), device, True, note, out,
                       name if name != "pipeline" else "pipeline_live")
    else:
        bp.report_file(_split(models), *sizes[0], seconds, fps, _split(backends), device, batch, clip,
                       _split(outputs), note, out, name)


@bench_app.command("metrics")
def bench_metrics(
    width: int = typer.Option(640, "--width", min=16),
    height: int = typer.Option(360, "--height", min=16),
    iterations: int = typer.Option(10, "--iterations", min=1),
    out: Path = _OUT,
    update_results: bool = _UPDATE,
) -> None:
    """Frames per second of every evaluation metric (post-processing and resize included)."""
    from stanet_rt.benchmarks import bench_metrics as bme

    out = result_dir(out, update_results)
    bme.report(width, height, iterations, out)
