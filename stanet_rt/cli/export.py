"""``stanet-rt export [MODEL]``: ONNX graphs (FP32, optionally FP16) with parity, then TensorRT engines.
MODEL is anything the resolver accepts with torch weights (``stanet_rt.resolve``); none = the default model."""

from __future__ import annotations

from pathlib import Path

import typer

from stanet_rt.cli import app


@app.command("export")
def export_cmd(
    model: str = typer.Argument(None, help="default (when omitted), a student checkpoint (.pt) or a registered "
                                "config name (random weights)."),
    out: Path = typer.Option(Path("exported"), "--out", help="Output folder."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write FP16 graphs (FP32 I/O) and check them."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (18 is what TensorRT parses reliably)."),
    check_only: bool = typer.Option(False, "--check-only", help="Re-run parity on existing files."),
    trt: bool = typer.Option(True, "--trt/--no-trt", help="Build TensorRT engines when TensorRT and a GPU exist."),
) -> None:
    """Export a student (audio front end, encoder, head) to ONNX, check parity, build engines."""
    from rich.console import Console
    from rich.table import Table

    from stanet_rt.export.api import export_model
    from stanet_rt.outputs import check_outputs

    check_outputs([model], folders={"--out": out})
    report = export_model(model, out, fp16=fp16, opset=opset, check_only=check_only, tensorrt=trt)
    console = Console()
    table = Table(title="parity: ONNX Runtime (CPU) vs PyTorch")
    for col in ("part", "precision", "inputs", "output", "max abs err", "CC", "ok"):
        table.add_column(col)
    for r in report.parity:
        cc = "-" if r.cc is None else f"{r.cc:.6f}"
        table.add_row(r.part, r.precision, r.inputs, r.output, f"{r.max_abs_err:.2e}", cc, "yes" if r.passed else "NO")
    console.print(table)
    for r in report.parity:
        if r.note:
            console.print(f"{r.part} {r.precision} {r.inputs} {r.output}: {r.note}", markup=False)
    for msg in report.messages:
        console.print(msg, markup=False)
    for f in report.files:
        console.print(f"  {f}")
    if not report.passed:
        typer.echo("error: parity check failed (see the table)", err=True)
        raise typer.Exit(1)
