"""``stanet-rt info [MODEL]``: parameters and GMACs per frame (with / without caching) of any model the
resolver accepts (``stanet_rt.resolve``; none = the default model)."""

from __future__ import annotations

import json

import typer

from stanet_rt.cli import app


@app.command()
def info(
    model: str = typer.Argument(None, help="default (when omitted), a config name (sta, sta_plus, ...), a "
                                "checkpoint, an export folder / prefix or one of its .onnx / .engine files."),
    size: int = typer.Option(None, "--size", help="Square input size in pixels (default: the config's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print a model's parameters and per-frame cost (GMACs) with and without feature caching."""
    from stanet_rt.models.info import model_info

    data = model_info(model, size)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{data['name']} ({data['arch']}, {data['source']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("input size", f"{data['input_size']} x {data['input_size']}")
    table.add_row("window offsets", str(data["window_offsets"]))
    table.add_row("look-ahead (frames)", str(data["lookahead_frames"]))
    table.add_row("parameters", f"{data['params'] / 1e6:.2f} M")
    for part, n in data["params_by_part"].items():
        table.add_row(f"  {part}", f"{n / 1e6:.3f} M")
    for key, label in [("audio", "audio GMAC"), ("encode", "encode GMAC"), ("head", "head GMAC"),
                       ("per_frame_cached", "GMAC / frame, cached"),
                       ("per_frame_uncached", "GMAC / frame, uncached")]:
        table.add_row(label, f"{data['gmac'][key]:.3f}")
    Console().print(table)
