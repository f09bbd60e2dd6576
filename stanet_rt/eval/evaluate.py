"""The evaluation driver: per frame -> per video mean -> unweighted mean over (split, video) entries
(metrics-and-peers.md 1.1 and 1.6), with the protocol's NaN handling and a warning count.

- :func:`score_frame`: all metrics of one prediction against one frame's ground truth.
- :func:`evaluate_maps`: score arrays directly (the synthetic set, trainers' reports).
- :func:`evaluate`: the STAViS on-disk layout, one or more splits, optional centre baseline;
  :class:`Report` renders markdown and writes CSV / JSON.

Imports numpy, ``stanet_rt.eval`` and (lazily) rich for the progress bar.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stanet_rt.errors import InputError
from stanet_rt.eval import metrics as M
from stanet_rt.eval.baselines import centre_bias
from stanet_rt.eval.datasets import VideoGroundTruth, fold_list_path, read_fold_list
from stanet_rt.eval.postprocess import imresize, postprocess_map
from stanet_rt.eval.predictions import video_predictions
from stanet_rt.progress import track

REPORTED = ("CC", "NSS", "AUC_J", "sAUC", "SIM", "KLD")


def score_frame(pred: np.ndarray, density: np.ndarray | None, fixations: np.ndarray | None,
                other: np.ndarray | None, rng: np.random.Generator, postprocess: bool = True,
                metrics: Iterable[str] = REPORTED) -> dict[str, float]:
    """Score one frame. ``pred`` in [0, 1] at any size; it is post-processed at its own size and
    resized (MATLAB bicubic) to the ground truth. Missing inputs give NaN for the metrics needing them."""
    wanted = set(metrics)
    target = density.shape if density is not None else fixations.shape
    sal = postprocess_map(pred) if postprocess else np.asarray(pred, dtype=np.float64)
    if sal.shape != target:
        sal = imresize(sal, target)
    out: dict[str, float] = {}
    nan = float("nan")
    if "CC" in wanted:
        out["CC"] = M.cc(sal, density) if density is not None else nan
    if "SIM" in wanted:
        out["SIM"] = M.similarity(sal, density) if density is not None else nan
    if "KLD" in wanted:
        out["KLD"] = M.kld(sal, density) if density is not None else nan
    fix_ok = fixations is not None
    sal_fix = sal
    if fix_ok and fixations.shape != sal.shape and wanted & {"NSS", "AUC_J", "sAUC"}:
        # NSS.m / AUC_Judd.m / AUC_shuffled.m resize S (already at the density map's size) again,
        # bicubic, to the fixation map's size when the two ground-truth files differ in size
        sal_fix = imresize(sal, fixations.shape)
    if "NSS" in wanted:
        out["NSS"] = M.nss(sal_fix, fixations) if fix_ok else nan
    if "AUC_J" in wanted:
        out["AUC_J"] = M.auc_judd(sal_fix, fixations, rng) if fix_ok else nan
    if "sAUC" in wanted:
        ok = fix_ok and other is not None and other.shape == fixations.shape
        out["sAUC"] = M.auc_shuffled(sal_fix, fixations, other, rng) if ok else nan
    return out


def nanmean_dict(rows: list[dict[str, float]], keys: Iterable[str]) -> dict[str, float]:
    """Per-metric mean with NaN values dropped (NaN if none remain), as the protocol deletes NaN only:
    an Inf stays and makes the mean Inf (it is reported as Inf, not hidden as a missing value)."""
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in rows if k in r], dtype=np.float64)
        vals = vals[~np.isnan(vals)]
        with np.errstate(invalid="ignore"):  # +Inf and -Inf together: NaN
            out[k] = float(vals.mean()) if vals.size else float("nan")
    return out


def format_score(value: float) -> str:
    """A metric for the markdown table: 4 decimals, "-" for no value (NaN), "Inf" / "-Inf"."""
    if np.isnan(value):
        return "-"
    if np.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return f"{value:.4f}"


def evaluate_maps(pred_maps: np.ndarray, gt_density: np.ndarray, fixations: np.ndarray, seed: int = 0,
                  postprocess: bool = True, metrics: Iterable[str] = REPORTED) -> dict[str, float]:
    """Mean metrics of one video given arrays: pred (T, h, w) in [0, 1], density (T, H, W),
    fixations (T, H, W) binary. The sAUC "other" map is the union of the video's other frames."""
    rng = np.random.default_rng(seed)
    union = (np.asarray(fixations) > 0).any(axis=0)
    rows = []
    for t in range(len(pred_maps)):
        other = union & ~(np.asarray(fixations[t]) > 0)
        rows.append(score_frame(pred_maps[t], gt_density[t], fixations[t], other, rng, postprocess, metrics))
    return nanmean_dict(rows, list(metrics))


@dataclass
class Report:
    """Per-video rows and the aggregate per method (prediction set or baseline) and dataset."""

    dataset: str
    splits: list[int]
    per_video: list[dict[str, Any]] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    methods: list[str] = field(default_factory=list)  # what was asked for: "prediction", "centre"
    entries: int = 0  # (split, video) entries in the fold lists
    pred: str | None = None  # the prediction root, for the messages

    def unscored(self) -> str | None:
        """Why a requested method got no score at all, as one line; None when each one scored something."""
        for method in self.methods:
            rows = [r for r in self.per_video if r["method"] == method]
            if any(not np.isnan(r[k]) for r in rows for k in REPORTED):
                continue
            no_gt = self.warnings["missing annotation folder"]
            no_pred = self.warnings["video without predictions"]
            if self.entries == 0:
                reason = "the fold lists name no video"
            elif no_gt >= self.entries:
                reason = f"no ground truth found for any of the {self.entries} (split, video) entries"
            elif not rows and method == "prediction" and no_pred + no_gt >= self.entries:
                reason = (f"no predictions found under {self.pred} for any of the {self.entries} (split, video) "
                          f"entries (looked for split<k>_results/<db>/<video>/*.jpg, <DB>/<video>/, <video>/ "
                          "and <video>.h5)")
            elif not rows:
                reason = "no frame had both a readable prediction and ground truth (see the warnings)"
            else:
                reason = "every score is NaN (all-NaN or constant maps)"
            what = "the predictions" if method == "prediction" else f"the {method} baseline"
            return f"{self.dataset}: nothing was scored for {what}: {reason}"
        return None

    def summary(self) -> list[dict[str, Any]]:
        methods = sorted({r["method"] for r in self.per_video})
        rows = []
        for method in methods:
            entries = [r for r in self.per_video if r["method"] == method]
            agg = nanmean_dict(entries, REPORTED)  # unweighted over (split, video) entries
            rows.append({"method": method, "dataset": self.dataset, "entries": len(entries), **agg})
        return rows

    def markdown(self) -> str:
        lines = [f"### {self.dataset} (splits {','.join(map(str, self.splits))})", "",
                 "| method | entries | " + " | ".join(REPORTED) + " |",
                 "|---|---|" + "---|" * len(REPORTED)]
        for row in self.summary():
            vals = " | ".join(format_score(row[k]) for k in REPORTED)
            lines.append(f"| {row['method']} | {row['entries']} | {vals} |")
        if self.warnings:
            lines += ["", "warnings: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.warnings.items()))]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> dict[str, Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out_dir / f"{self.dataset}_results.csv", "json": out_dir / f"{self.dataset}_results.json",
                 "per_video": out_dir / f"{self.dataset}_per_video.csv"}
        for path, rows in ((paths["csv"], self.summary()), (paths["per_video"], self.per_video)):
            with open(path, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["method"])
                writer.writeheader()
                writer.writerows(rows)
        doc = {"dataset": self.dataset, "splits": self.splits, "summary": self.summary(),
               "warnings": dict(self.warnings), "per_video": self.per_video}
        # NaN / inf are not JSON (RFC 8259): a metric without a value is written as null, Inf as "Infinity"
        paths["json"].write_text(json.dumps(_json_safe(doc), indent=2, allow_nan=False))
        return paths


def _json_safe(value: Any) -> Any:
    """``value`` with NaN floats replaced by None, +-inf by the strings "Infinity" / "-Infinity" (what
    ``float()`` reads back) and numpy scalars by Python numbers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, float) and np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def evaluate(pred: Path | None, data_root: Path, dataset: str, splits: Iterable[int] = (1, 2, 3),
             baseline: str | None = None, seed: int = 0, progress: bool = True,
             split_pred_dirs: bool = True) -> Report:
    """Evaluate predictions under ``pred`` (``<pred>/split<k>_results/`` if it exists, else ``<pred>``)
    on the STAViS layout at ``data_root``; ``baseline="centre"`` adds the centre bias."""
    if pred is None and baseline is None:
        raise InputError("nothing to evaluate: give --pred and/or --baseline")
    if baseline not in (None, "centre"):
        raise InputError(f"unknown baseline {baseline!r} (known: centre)")
    splits = list(splits)
    methods = (["prediction"] if pred is not None else []) + ([baseline] if baseline else [])
    report = Report(dataset, splits, methods=methods, pred=None if pred is None else str(pred))
    jobs = []
    for split in splits:
        for entry in read_fold_list(fold_list_path(Path(data_root), dataset, split)):
            jobs.append((split, entry))
    report.entries = len(jobs)
    for split, entry in track(jobs, f"evaluating {dataset}", enabled=progress):
        _evaluate_video(report, pred, Path(data_root), dataset, split, entry, baseline, seed, split_pred_dirs)
    return report


def _evaluate_video(report: Report, pred: Path | None, root: Path, dataset: str, split: int, entry: Any,
                    baseline: str | None, seed: int, split_pred_dirs: bool) -> None:
    try:
        gt = VideoGroundTruth(root, dataset, entry)
    except InputError:
        report.warnings["missing annotation folder"] += 1
        return
    unreadable: list[Path] = []
    union = gt.shuffle_union(unreadable)  # an unreadable fixMap is left out of the union and counted below
    bad_gt = set(unreadable)
    methods: dict[str, dict] = {}
    if pred is not None:
        base = Path(pred) / f"split{split}_results"
        base = base if (split_pred_dirs and base.is_dir()) else Path(pred)
        frames = video_predictions(base, dataset, entry.name)
        if not frames:
            report.warnings["video without predictions"] += 1
        else:
            missing = sum(1 for n in range(1, entry.n_frames + 1) if n not in frames
                          and (gt.density_path(n).exists() or gt.fixation_path(n).exists()))
            if missing:
                report.warnings["frame with ground truth but no prediction"] += missing
        methods["prediction"] = frames
    if baseline == "centre":
        methods["centre"] = {}
    for method, frames in methods.items():
        rng = np.random.default_rng(seed)  # each video starts from the same stream, as MATLAB did
        rows = []
        numbers = range(1, entry.n_frames + 1) if method == "centre" else sorted(frames)
        for n in numbers:
            if n > entry.n_frames:
                continue
            density = fix = None
            try:
                if gt.density_path(n).exists():
                    density = gt.density(n)
            except InputError:
                bad_gt.add(gt.density_path(n))
                continue
            try:
                if gt.fixation_path(n).exists():
                    fix = gt.fixations(n)
            except InputError:
                bad_gt.add(gt.fixation_path(n))
                continue
            if density is None and fix is None:
                report.warnings["missing ground-truth frame"] += 1
                continue
            if fix is not None and density is not None and fix.shape != density.shape:
                report.warnings["fixation/density size mismatch"] += 1
            if fix is not None and not (fix > 0).any():
                report.warnings["empty fixation map"] += 1
            target = density.shape if density is not None else fix.shape
            if method == "centre":
                p = centre_bias(target)
            else:
                try:
                    p = frames[n]()
                except InputError:
                    report.warnings["unreadable prediction"] += 1
                    continue
            if not np.isfinite(p).all():
                report.warnings["NaN in prediction"] += 1
            other = None
            if union is not None and fix is not None and union.shape == fix.shape:
                other = union & ~(fix == 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rows.append(score_frame(p, density, fix, other, rng, postprocess=method != "centre"))
        if rows:
            report.per_video.append({"method": method, "split": split, "video": entry.name, "frames": len(rows),
                                     **nanmean_dict(rows, REPORTED)})
    if bad_gt:
        report.warnings["unreadable ground truth"] += len(bad_gt)  # each bad file once per video entry
