"""``stanet-rt doctor``: print what this machine can run (``stanet_rt.doctor.collect``).

Parses arguments and prints (a rich table, or JSON with ``--json``). Imports only typer and the
standard library at module level.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from stanet_rt.cli import app


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Versions (python, torch, onnx, onnxruntime, TensorRT, PyAV/FFmpeg), GPUs, working ORT providers."""
    from stanet_rt.doctor import collect

    report = collect()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stanet-rt {report['stanet_rt']} doctor", show_lines=False)
    table.add_column("component", style="bold")
    table.add_column("status")
    for label, value in rows(report):
        table.add_row(label, value)
    Console().print(table)


def rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The report as (label, text) rows, in a fixed order."""

    def sec(name: str) -> dict[str, Any]:
        value = report.get(name)
        return value if isinstance(value, dict) else {}

    out: list[tuple[str, str]] = []
    for name in ("python", "torch", "onnx", "onnxruntime", "tensorrt", "av", "gpus", "packages"):
        if isinstance(report.get(name), dict) and "error" in report[name]:
            out.append((name, f"[red]error: {report[name]['error']}[/red]"))
    py, tc, ox, ort, trt, av = (sec(n) for n in ("python", "torch", "onnx", "onnxruntime", "tensorrt", "av"))
    if py:
        out.append(("python", f"{py['version']} ({py['executable']}), {py['cpu_count']} CPUs"))
    if tc:
        cuda = f"CUDA {tc['cuda_build']} build" if tc["cuda_build"] else "CPU-only build"
        cudnn = f", cuDNN {tc['cudnn']}" if tc["cudnn"] else ""
        avail = "CUDA available" if tc["cuda_available"] else "no CUDA device"
        out.append(("torch", f"{tc['version']} ({cuda}{cudnn}, {avail})"))
    for gpu in report.get("gpus") or []:
        if isinstance(gpu, dict) and "name" in gpu:
            label = f"GPU {gpu['index']}"
            out.append((label, f"{gpu['name']}, sm {gpu['compute_capability']}, {gpu['memory_gib']} GiB"))
    if isinstance(report.get("gpus"), list) and not report["gpus"]:
        out.append(("GPUs", "none visible to torch"))
    if ox:
        out.append(("onnx", f"{ox['version']} (opsets up to {ox['max_opset']})"))
    if ort:
        out.append(("onnxruntime", f"{ort['version']} ({ort['device']} build)"))
        for provider, res in ort["providers"].items():
            mark = "[green]works[/green]" if res["works"] else f"[red]does not work[/red]: {res['detail']}"
            out.append((f"  {provider}", mark))
    if trt:
        out.append(("tensorrt", trt["version"] or trt["detail"]))
    if av:
        encoders = ", ".join(name for name, ok in av["encoders_compiled"].items() if ok) or "none"
        out.append(("PyAV", f"{av['version']} (FFmpeg {av['ffmpeg']}; encoders: {encoders})"))
    packages = sec("packages")
    if packages:
        out.append(("packages", ", ".join(f"{k} {v or 'missing'}" for k, v in packages.items())))
    return out
