"""``stanet-rt run`` (saliency for a file or a live camera + microphone) and ``stanet-rt demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from stanet_rt.cli import app


@app.command()
def run(
    source: str = typer.Argument(None, help="A video file (any format FFmpeg reads). Omit with --camera."),
    camera: str = typer.Option(None, "--camera", help="Camera: 0, /dev/video0, or lavfi:testsrc2=size=640x360"),
    mic: str = typer.Option(None, "--mic", help="Microphone: default, hw:0, or lavfi:sine=frequency=440"),
    model: list[str] = typer.Option(None, "--model", "-m", help="Student checkpoint / export (repeat to fuse)."),
    backend: str = typer.Option("auto", "--backend", help="auto, torch, onnxruntime or tensorrt."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    output: Path = typer.Option(None, "-o", "--output", help="Overlay video to write (e.g. overlay.mp4)."),
    maps: Path = typer.Option(None, "--maps", help="Saliency maps file (.h5) to write."),
    preview: bool = typer.Option(False, "--preview", help="Show a live window (needs the [preview] extra)."),
    stats: Path = typer.Option(None, "--stats", help="Write run statistics as JSON."),
    batch: int = typer.Option(4, "--batch", min=1, help="Frames per encoder call (files)."),
    max_frames: int = typer.Option(None, "--max-frames", help="Stop after N frames."),
) -> None:
    """Compute audio-visual saliency for a file or a live camera + microphone."""
    from stanet_rt.pipeline.api import RunOptions
    from stanet_rt.pipeline.api import run as run_pipeline

    if source is None and camera is None:
        raise typer.BadParameter("give a SOURCE file or --camera")
    opts = RunOptions(overlay=output, maps=maps, stats=stats, preview=preview, batch=batch,
                      max_frames=max_frames, backend=backend, device=device)
    result = run_pipeline(source, list(model or []), opts, camera=camera, mic=mic,
                          log=lambda m: typer.echo(m, err=True))
    s = result.stats
    typer.echo(f"{s['frames_out']} frames in {s['seconds']} s ({s['fps']} fps), dropped {s['dropped']}; "
               + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in s["stages"].items()))
    raise typer.Exit(result.exit_code)


@app.command()
def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", help="Where the demo writes its files."),
) -> None:
    """The main job on its defaults: make a synthetic clip, run the default model, write overlay + maps."""
    from stanet_rt.pipeline.demo import run_demo

    paths = run_demo(out, log=typer.echo)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
