"""``stanet-rt import SRC --arch ...``: the authors' published weights -> a stanet-rt checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from stanet_rt.cli import app


@app.command("import")
def import_cmd(
    src: Path = typer.Argument(..., help="The authors' file: STANet.pth, STAGCN.pth, 27001.pt or "
                                         "vggsound_netvlad.pth.tar (also gzipped)."),
    arch: str = typer.Option(..., "--arch", help="sta, sta_plus, audio_switch or audio_net."),
    out: Path = typer.Option(..., "--out", help="The stanet-rt checkpoint to write (.pt)."),
    switch: Path = typer.Option(None, "--switch", help="STA+ only: the AudioSwitch file (27001.pt)."),
    audio: Path = typer.Option(None, "--audio", help="vggsound_netvlad.pth.tar, when SRC lacks the audio net."),
) -> None:
    """Import the authors' checkpoint (their key layout, DataParallel prefixes, the pickled AudioSwitch)
    into an ordinary checkpoint in compatibility mode (config.original) that run / export / bench take."""
    from stanet_rt.original.importer import import_checkpoint

    report = import_checkpoint(src, arch, out, switch=switch, audio=audio)
    for line in report.lines():
        typer.echo(line)
