"""``stanet-rt run`` (saliency for a file or a live camera + microphone) and ``stanet-rt demo``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from stanet_rt.cli import app, fail


def one_blas_thread() -> None:
    """Let numpy's BLAS use one thread (unless the user set it), before numpy is loaded. The pipeline
    already runs decode, inference and sinks in parallel threads; OpenBLAS's own threads competed with
    them (spinning while waiting): 1080p with the overlay ran at 30-36 fps with two BLAS threads and
    37-48 fps with one on 2 cores."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@app.command()
def run(
    source: str = typer.Argument(None, help="A video file (any format FFmpeg reads). Omit with --camera."),
    camera: str = typer.Option(None, "--camera", help="Camera: 0, /dev/video0, or lavfi:testsrc2=size=640x360"),
    mic: str = typer.Option(None, "--mic", help="Microphone: default, hw:0, or lavfi:sine=frequency=440"),
    model: list[str] = typer.Option(None, "--model", "-m", help="default, a config name, a checkpoint (.pt), an "
                                    "export folder / prefix, an .onnx or .engine (repeat to fuse)."),
    backend: str = typer.Option("auto", "--backend", help="auto, torch, onnxruntime or tensorrt."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32 or fp16 (the FP16 graphs of "
                                  "`export --fp16`; torch: half on CUDA)."),
    output: Path = typer.Option(None, "-o", "--output", help="Overlay video to write (e.g. overlay.mp4)."),
    maps: Path = typer.Option(None, "--maps", help="Saliency maps file (.h5) to write."),
    preview: bool = typer.Option(False, "--preview", help="Show a live window (needs the [preview] extra)."),
    stats: Path = typer.Option(None, "--stats", help="Write run statistics as JSON."),
    batch: int = typer.Option(4, "--batch", min=1, help="Frames per encoder call (files)."),
    max_frames: int = typer.Option(None, "--max-frames", help="Stop after N frames."),
    fusion: str = typer.Option("max", "--fusion", help="How several -m maps are fused: max (the paper's "
                               "STANet+ FinalFusion) or mean (the light presets' reports)."),
) -> None:
    """Compute audio-visual saliency for a file or a live camera + microphone."""
    from stanet_rt.pipeline.model_runner import FUSIONS

    if fusion not in FUSIONS:
        fail(f"--fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
    if source is None and camera is None:
        fail("give a SOURCE file or --camera")
    if source is not None and camera is not None:
        fail(f"give a SOURCE file ({source}) or --camera ({camera}), not both")
    one_blas_thread()
    from stanet_rt.devices import resolve_device
    from stanet_rt.outputs import check_outputs

    # bad outputs and devices are refused before a model is loaded or a frame decoded
    check_outputs([source, *(model or [])], files={"-o": output, "--maps": maps, "--stats": stats})
    notes: list[str] = []  # said once, in the summary line (so a bad source is still a one-line error)
    device = resolve_device(device, log=notes.append)
    from stanet_rt.pipeline.api import RunOptions

    opts = RunOptions(overlay=output, maps=maps, preview=preview, batch=batch, max_frames=max_frames,
                      backend=backend, device=device, precision=precision, fusion=fusion)
    raise typer.Exit(run_and_report(source, list(model or []), opts, camera, mic, stats, notes))


def run_and_report(source: str | None, models: list[str], opts, camera: str | None, mic: str | None,  # noqa: ANN001
                   stats: Path | None, notes: list[str] | None = None) -> int:
    """Run the pipeline with SIGINT / SIGTERM stopping it cleanly; print the summary line, write
    ``stats`` (with the exit code the shell gets) and return that exit code: 0 done, 3 source lost /
    truncated / corrupt (outputs finalized), 130 SIGINT, 143 SIGTERM, 2 bad input, 1 an internal error.
    ``notes`` (e.g. the device fallback) end the summary line."""
    import signal
    import threading

    from stanet_rt.errors import StanetError
    from stanet_rt.pipeline.api import STATUS_DONE, STATUS_STOPPED, open_run
    from stanet_rt.pipeline.sinks import write_stats

    stop = threading.Event()
    caught: list[int] = []

    def handler(signum, _frame) -> None:  # noqa: ANN001
        caught.append(signum)
        stop.set()

    scheduler, src = open_run(source, models, opts, camera, mic, log=lambda m: typer.echo(m, err=True), stop=stop)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 1
    try:
        with src:
            result = scheduler.run()
        if result.status == STATUS_STOPPED and caught:
            code = 128 + caught[0]  # 130 SIGINT, 143 SIGTERM
        else:
            code = 0 if result.status in (STATUS_DONE, STATUS_STOPPED) else 3
    except StanetError:
        code = 2  # bad input found once running (main prints the one line and exits 2)
        raise
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
        s = scheduler.stats()
        s["exit_code"] = code
        if stats is not None:
            write_stats(stats, s)
    typer.echo(f"{s['frames_out']} frames in {s['seconds']} s ({s['fps']} fps), {s['frames_in']} in, "
               f"dropped {s['dropped']}; " + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in s["stages"].items())
               + "".join(f"; {note}" for note in notes or ()))
    return code


@app.command()
def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", help="Where the demo writes its files."),
) -> None:
    """The main job on its defaults: make a synthetic clip, run the default model, write overlay + maps."""
    from stanet_rt.outputs import check_outputs

    check_outputs([], folders={"--out": out})
    one_blas_thread()
    from stanet_rt.cli.demo_job import run_demo

    paths = run_demo(out, log=typer.echo)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
