"""``stanet-rt train <stage>``: the weakly supervised training of STANet / STANet+ (SCAM -> SCAM+ ->
pseudo-GT -> AudioSwitch -> STA / STA+), one stage or ``all``, and ``report``.

Parses arguments and prints; the work is ``training.run_all``. Imports only typer and the standard
library at module level. Runs under ``torchrun --nproc_per_node=N -m stanet_rt.cli train ...`` too
(DDP: gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

from pathlib import Path

import typer

from stanet_rt.cli import app, fail

_STAGES = "scam-coarse, scam-fine, scam-plus, pseudo-gt, switch, students, distill, all, report"


@app.command()
def train(
    stage: str = typer.Argument(..., help=f"Stage: {_STAGES}."),
    preset: str = typer.Option("synth-lite", "--preset", help="paper, synth-lite or synth-tiny."),
    data: Path = typer.Option(
        None,
        "--data",
        help="AVE-layout data folder (AVE or `stanet-rt synth` output). Default for synth "
        "presets: generate the preset's synthetic set into OUT/synth.",
    ),
    out: Path = typer.Option(None, "--out", help="Run folder (default runs/<preset>)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the last checkpoints; skip finished work."
    ),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Override the epochs of every trainer."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    results: Path = typer.Option(
        None, "--results", help="report: folder of the result files (default benchmarks/results)."
    ),
    install_default: bool = typer.Option(
        False,
        "--install-default",
        help="all / report: install the students as the runtime's default models (default.pt, "
        "default_plus.pt) into the user data folder ($STANET_RT_HOME or ~/.local/share/stanet-rt/models), "
        "or into --install-dir.",
    ),
    install_dir: Path = typer.Option(
        None, "--install-dir", help="With --install-default: install into this folder instead (e.g. stanet_rt/assets "
        "in a source checkout, to rebuild the shipped default)."
    ),
    threads: int = typer.Option(
        1, "--threads", min=0, help="torch threads per process (0: torch's default)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the teachers, pseudo-GT, AudioSwitch and students (each stage resumable), or report."""
    from stanet_rt.training.run_all import COMMANDS, make_context, run_all, run_report, run_stage

    if stage not in COMMANDS:
        fail(f"unknown stage {stage!r}; expected one of {_STAGES}")
        return
    if device is not None:  # `--device cuda` without a GPU: one line, exit 2 (not a traceback from torch)
        from stanet_rt.devices import resolve_device

        device = resolve_device(device)
        device = None if device == "auto" else device
    ctx = make_context(
        preset,
        out or Path("runs") / preset,
        data,
        resume=resume or stage == "report",
        epochs=epochs,
        progress=not quiet,
        device=device,
        threads=threads or None,
    )
    try:
        if stage == "all":
            times = run_all(ctx, results_dir=results)
            ctx.log(
                "stage times: "
                + ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
                + f"; total {sum(times.values()) / 60:.1f} min"
            )
        elif stage == "report":
            run_report(ctx, results_dir=results)
        else:
            run_stage(ctx, stage)
        if (install_default or install_dir is not None) and stage in ("all", "report") and ctx.info.is_main:
            from stanet_rt.cli.install import install_default_models

            install_default_models(ctx, install_dir)
    finally:
        from stanet_rt.training.ddp import shutdown

        shutdown()
