"""``stanet-rt evaluate``: the STAViS / MIT protocol on a dataset in the STAViS layout."""

from __future__ import annotations

from pathlib import Path

import typer

from stanet_rt.cli import app, fail


@app.command()
def evaluate(
    data: Path = typer.Option(..., "--data", help="STAViS-layout root (annotations/, fold_lists/)."),
    dataset: str = typer.Option(..., "--dataset", help="AVAD, DIEM, SumMe, ETMD_av, Coutrot_db1, Coutrot_db2, ..."),
    pred: Path = typer.Option(None, "--pred", help="Predictions: image folders or .h5 map files per video."),
    split: str = typer.Option("1,2,3", "--split", help="Comma-separated test splits."),
    baseline: str = typer.Option(None, "--baseline", help="Add a baseline: centre."),
    out: Path = typer.Option(Path("outputs/eval"), "--out", help="Where CSV / JSON are written."),
    seed: int = typer.Option(0, "--seed", help="Seed of AUC-Judd jitter and the sAUC splits."),
) -> None:
    """Score saliency predictions with CC, NSS, AUC-Judd, shuffled AUC, SIM and KLD."""
    from stanet_rt.errors import InputError
    from stanet_rt.eval.evaluate import evaluate as run_evaluation
    from stanet_rt.outputs import check_outputs

    check_outputs([], folders={"--out": out})
    if pred is not None and not pred.exists():
        # a mistyped --pred is bad input (the library alone would count every video as unpredicted)
        raise InputError(f"{pred}: prediction path not found")
    try:
        splits = [int(s) for s in split.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--split must be comma-separated integers, got {split!r}") from None
    report = run_evaluation(pred, data, dataset, splits, baseline=baseline, seed=seed)
    typer.echo(report.markdown())
    paths = report.write(out)
    typer.echo(f"wrote {paths['csv']}, {paths['json']}")
    reason = report.unscored()
    if reason:  # an empty table must not pass for a result
        fail(reason)
