"""``stanet-rt audio-features``: per-frame audio log-spectrograms of a file or a folder of files.

Parses arguments and prints; the work is ``stanet_rt.audio.features.extract_file`` /
``extract_folder``. Imports only typer and the standard library at module level.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from stanet_rt.cli import app, fail


class _Alignment(str, Enum):
    start = "start"
    end = "end"


class _Layout(str, Enum):
    h5 = "h5"
    stanet = "stanet"


@app.command("audio-features")
def audio_features(
    input: Path = typer.Argument(..., help="A media file (video or audio) or a folder of them."),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="h5 layout: an .h5 file, or a folder receiving <name>.h5 per input. "
        "stanet layout: the per-frame folder (file input) or a folder of per-video folders.",
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Video frame rate: required for audio-only files; overrides a video's rate."
    ),
    alignment: _Alignment = typer.Option(
        _Alignment.start,
        "--alignment",
        help="start: the original's evenly spread windows; end: the 0.5 s ending at each frame (streaming).",
    ),
    layout: _Layout = typer.Option(
        _Layout.h5, "--layout", help="h5: one file per video; stanet: the original's NNNN_asp.h5 per frame."
    ),
    frames: int | None = typer.Option(
        None, "--frames", min=1, help="Number of frames (e.g. the count of extracted jpgs)."
    ),
    device: str = typer.Option("cpu", "--device", help="torch device for the spectrograms (cpu, cuda)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Windows per spectrogram batch."),
    check: bool = typer.Option(
        False, "--check", help="Also compute the scipy reference and fail if it differs by more than 1e-4."
    ),
) -> None:
    """Compute the 257 x 48 log-spectrogram of every video frame's 0.5 s audio window."""
    from stanet_rt.audio.features import CHECK_TOLERANCE, extract_file, extract_folder, find_media
    from stanet_rt.errors import StanetError
    from stanet_rt.outputs import check_outputs

    # a file input with the h5 layout writes `-o` itself when it ends in .h5, else <name>.h5 inside it
    if device != "cpu":
        from stanet_rt.devices import resolve_device

        device = resolve_device(device)  # cuda without a GPU: one line, before any file is read
    writes_folder = input.is_dir() or layout == _Layout.stanet or output.suffix.lower() != ".h5"
    check_outputs([input], **{"folders" if writes_folder else "files": {"-o": output}})
    options = dict(
        fps=fps,
        alignment=alignment.value,
        n_frames=frames,
        device=device,
        batch_size=batch_size,
        check=check,
    )
    try:
        if input.is_dir():
            from stanet_rt.progress import ProgressBar

            with ProgressBar(len(find_media(input)), "audio features") as bar:

                def done(path: Path, outcome: object) -> None:
                    bar.advance()
                    if isinstance(outcome, StanetError):
                        bar.note(f"error: {outcome}")

                results, failures = extract_folder(input, output, layout.value, on_done=done, **options)
        else:
            results, failures = [extract_file(input, output, layout.value, **options)], []
    except StanetError as exc:
        fail(str(exc))
        return
    worst = max((r.max_abs_error for r in results if r.max_abs_error is not None), default=None)
    frames_total = sum(r.n_frames for r in results)
    where = output if input.is_dir() else results[0].output
    typer.echo(f"wrote {len(results)} file(s), {frames_total} frames -> {where}")
    if worst is not None:
        typer.echo(f"check: max |torch - scipy reference| = {worst:.2e} (tolerance {CHECK_TOLERANCE:.0e})")
    if failures:
        fail(f"{len(failures)} of {len(failures) + len(results)} file(s) failed (see the errors above)")
    if worst is not None and worst > CHECK_TOLERANCE:
        fail(f"the features differ from the scipy reference by {worst:.2e} > {CHECK_TOLERANCE:.0e}", 1)
