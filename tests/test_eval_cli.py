"""The evaluation driver and ``stanet-rt evaluate`` (``stanet_rt.eval.evaluate``, ``stanet_rt.cli.evaluate``)
on a generated STAViS miniature: per-frame -> per-video mean -> unweighted mean over (split, video)
entries (a video in two test lists counts twice; DIEM's one list serves every split), STAViS
``split<k>_results`` folders, frames beyond the fold list, the centre baseline, the seed, the report
(markdown, CSV, JSON), bad input that must give the protocol's behaviour plus a warning count instead of
a crash, and the CLI's output and one-line errors."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from _eval_layout import (
    GT_SIZE,
    PRED_SIZE,
    make_video,
    predicted_blobs,
    write_fold_list,
    write_prediction_h5,
    write_prediction_images,
)
from PIL import Image
from typer.testing import CliRunner

from stanet_rt.cli import app
from stanet_rt.eval import metrics as M
from stanet_rt.eval.datasets import read_gray, read_mat_variable
from stanet_rt.eval.evaluate import evaluate
from stanet_rt.eval.postprocess import imresize, postprocess_map

VIDEOS = {"v1": 3, "v2": 5, "v3": 2}  # frames per video
FOLDS = {1: ["v1", "v2"], 2: ["v2", "v3"]}  # v2 is in both test lists, as three AVAD videos are


def _dataset(root: Path, dataset: str = "AVAD") -> Path:
    for split, videos in FOLDS.items():
        write_fold_list(root, dataset, split, [(v, VIDEOS[v]) for v in videos])
    for seed, (video, n) in enumerate(VIDEOS.items()):
        make_video(root, dataset, video, n, seed=seed)
    return root


def _predictions(root: Path, dataset: str = "AVAD", offset: float = 0.0, videos=VIDEOS) -> Path:
    for video in videos:
        write_prediction_images(root / dataset / video, predicted_blobs(VIDEOS[video], offset=offset))
    return root


def _frame_scores(pred_file: Path, gt_dir: Path, frame: int) -> dict[str, float]:
    """CC / NSS / SIM / KLD of one frame, computed here from the protocol's steps."""
    sal = imresize(postprocess_map(read_gray(pred_file)), GT_SIZE)
    dens = read_gray(gt_dir / "maps" / f"eyeMap_{frame:05d}.jpg")
    fix = read_mat_variable(gt_dir / f"fixMap_{frame:05d}.mat")
    return {"CC": M.cc(sal, dens), "NSS": M.nss(sal, fix), "SIM": M.similarity(sal, dens),
            "KLD": M.kld(sal, dens)}


@pytest.fixture(scope="module")
def avad(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval_cli")
    return _dataset(root / "data"), _predictions(root / "pred")


# -- aggregation -------------------------------------------------------------------------------------------
def test_per_frame_to_per_video_to_unweighted_entry_mean(avad) -> None:
    data, pred = avad
    report = evaluate(pred, data, "AVAD", [1, 2], progress=False)
    rows = {(r["split"], r["video"]): r for r in report.per_video if r["method"] != "centre"}
    assert sorted(rows) == [(1, "v1"), (1, "v2"), (2, "v2"), (2, "v3")]
    per_video = {}
    for video, n in VIDEOS.items():
        frames = [_frame_scores(pred / "AVAD" / video / f"pred_sal_{i:06d}.jpg",
                                data / "annotations" / "AVAD" / video, i) for i in range(1, n + 1)]
        per_video[video] = {k: np.mean([f[k] for f in frames]) for k in ("CC", "NSS", "SIM", "KLD")}
    for (_, video), row in rows.items():
        assert row["frames"] == VIDEOS[video]
        for k in ("CC", "NSS", "SIM", "KLD"):
            assert row[k] == pytest.approx(per_video[video][k], abs=1e-9), (video, k)
    (summary,) = report.summary()
    entries = ["v1", "v2", "v2", "v3"]
    for k in ("CC", "NSS", "SIM", "KLD"):
        expected = np.mean([per_video[v][k] for v in entries])
        assert summary[k] == pytest.approx(expected, abs=1e-9)
    weighted = sum(per_video[v]["CC"] * VIDEOS[v] for v in entries) / sum(VIDEOS[v] for v in entries)
    assert abs(summary["CC"] - weighted) > 1e-4  # the test would notice frame weighting
    assert summary["entries"] == 4 and summary["dataset"] == "AVAD"
    for k in ("AUC_J", "sAUC"):
        assert 0.5 < summary[k] <= 1.0


def test_split_results_folders_and_diems_single_list(tmp_path) -> None:
    data = _dataset(tmp_path / "data", "DIEM")
    for split in (1, 2, 3):
        (data / "fold_lists" / f"DIEM_list_test_{split}_fps.txt").unlink(missing_ok=True)
    write_fold_list(data, "DIEM", None, [("v1", 3), ("v2", 5)])  # one list for all three splits
    pred = tmp_path / "exp"
    _predictions(pred / "split1_results", "DIEM", videos=["v1", "v2"])
    _predictions(pred / "split2_results", "DIEM", offset=0.45, videos=["v1", "v2"])  # a worse model
    _predictions(pred / "split3_results", "DIEM", videos=["v1", "v2"])
    report = evaluate(pred, data, "DIEM", [1, 2, 3], progress=False)
    rows = {(r["split"], r["video"]): r for r in report.per_video}
    assert len(rows) == 6
    for video in ("v1", "v2"):
        assert rows[(1, video)]["CC"] == rows[(3, video)]["CC"]  # same maps, same seed: same numbers
        assert rows[(1, video)]["sAUC"] == rows[(3, video)]["sAUC"]
        assert rows[(2, video)]["CC"] < rows[(1, video)]["CC"] - 0.2
    split_means = [np.mean([rows[(s, v)]["NSS"] for v in ("v1", "v2")]) for s in (1, 2, 3)]
    assert report.summary()[0]["NSS"] == pytest.approx(np.mean(split_means), abs=1e-12)


def test_frames_beyond_the_fold_list_and_stavis_numbering(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "SumMe", 1, [("clip", 12)])
    make_video(data, "SumMe", "clip", 12, seed=3)
    pred = tmp_path / "pred" / "SumMe" / "clip"
    maps = predicted_blobs(14)  # STAViS writes pred_sal_%06d from 9 on: frames 1-8 are never scored
    write_prediction_images(pred, maps[8:], start=9)
    report = evaluate(tmp_path / "pred", data, "SumMe", [1], progress=False)
    assert report.per_video[0]["frames"] == 4  # 9..12; 13 and 14 exceed the list's 12 frames


# -- baseline and seed --------------------------------------------------------------------------------------
def test_centre_baseline_on_demand(avad) -> None:
    data, pred = avad
    without = evaluate(pred, data, "AVAD", [1], progress=False)
    assert {r["method"] for r in without.summary()} == {"prediction"}
    report = evaluate(pred, data, "AVAD", [1], baseline="centre", progress=False)
    rows = {r["method"]: r for r in report.summary()}
    assert set(rows) == {"prediction", "centre"} and rows["centre"]["entries"] == 2
    assert all(np.isfinite(rows["centre"][k]) for k in M.METRICS)
    # the miniature's attention moves off-centre: the moving prediction beats the fixed centre
    assert rows["prediction"]["CC"] > rows["centre"]["CC"]
    assert rows["prediction"]["NSS"] > rows["centre"]["NSS"]
    alone = evaluate(None, data, "AVAD", [1], baseline="centre", progress=False).summary()
    assert [r["method"] for r in alone] == ["centre"]


def test_seed_is_settable(avad) -> None:
    data, pred = avad
    a = evaluate(pred, data, "AVAD", [1, 2], seed=0, progress=False).summary()[0]
    assert a == evaluate(pred, data, "AVAD", [1, 2], seed=0, progress=False).summary()[0]
    b = evaluate(pred, data, "AVAD", [1, 2], seed=5, progress=False).summary()[0]
    assert a["sAUC"] != b["sAUC"] and a["CC"] == b["CC"]


def test_progress_bar_does_not_change_results(avad) -> None:
    data, pred = avad
    quiet = evaluate(pred, data, "AVAD", [1], progress=False).summary()
    assert evaluate(pred, data, "AVAD", [1], progress=True).summary() == quiet


# -- report files --------------------------------------------------------------------------------------------
def test_report_markdown_csv_json(avad, tmp_path) -> None:
    data, pred = avad
    report = evaluate(pred, data, "AVAD", [1, 2], baseline="centre", progress=False)
    md = report.markdown()
    assert "| method | entries | CC | NSS | AUC_J | sAUC | SIM | KLD |" in md
    assert "| centre | 4 |" in md and "| prediction | 4 |" in md
    paths = report.write(tmp_path / "out")
    with open(paths["csv"], newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert {r["method"] for r in summary} == {"prediction", "centre"}
    pred_row = next(r for r in summary if r["method"] == "prediction")
    assert float(pred_row["CC"]) == pytest.approx(next(r for r in report.summary()
                                                       if r["method"] == "prediction")["CC"])
    with open(paths["per_video"], newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 8
    doc = json.loads(paths["json"].read_text())
    assert doc["dataset"] == "AVAD" and doc["splits"] == [1, 2] and len(doc["per_video"]) == 8
    assert {r["method"] for r in doc["summary"]} == {"prediction", "centre"}


def test_report_json_is_standard_json(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 2)])
    make_video(data, "AVAD", "v1", 2, seed=0)
    for i in (1, 2):
        scipy.io.savemat(data / "annotations" / "AVAD" / "v1" / f"fixMap_{i:05d}.mat",
                         {"eyeMap": np.zeros(GT_SIZE, dtype=np.uint8)})
    write_prediction_images(tmp_path / "pred" / "AVAD" / "v1", predicted_blobs(2))
    paths = evaluate(tmp_path / "pred", data, "AVAD", [1], progress=False).write(tmp_path / "out")

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    doc = json.loads(paths["json"].read_text(), parse_constant=refuse)
    assert doc["per_video"][0]["NSS"] is None and doc["summary"][0]["NSS"] is None
    assert isinstance(doc["per_video"][0]["CC"], float)


# -- bad input: the protocol's behaviour, a warning count, no crash ------------------------------------------
def test_bad_ground_truth_is_counted_not_fatal(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 3), ("ghost", 3)])  # "ghost" has no annotation folder
    make_video(data, "AVAD", "v1", 3, seed=0)
    gt = data / "annotations" / "AVAD" / "v1"
    scipy.io.savemat(gt / "fixMap_00002.mat", {"eyeMap": np.zeros(GT_SIZE, dtype=np.uint8)})  # empty
    (gt / "fixMap_00003.mat").unlink()
    (gt / "maps" / "eyeMap_00003.jpg").unlink()  # frame 3: no ground truth at all
    pred = tmp_path / "pred"
    write_prediction_images(pred / "AVAD" / "v1", predicted_blobs(3))
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.warnings["missing annotation folder"] == 1
    assert report.warnings["empty fixation map"] == 1
    assert report.warnings["missing ground-truth frame"] == 1
    (row,) = report.per_video
    assert row["frames"] == 2
    f1, f2 = (_frame_scores(pred / "AVAD" / "v1" / f"pred_sal_{i:06d}.jpg", gt, i) for i in (1, 2))
    assert np.isnan(f2["NSS"])
    assert row["NSS"] == pytest.approx(f1["NSS"], abs=1e-9)  # NSS / AUC drop frame 2 (no fixations) ...
    assert np.isfinite(row["AUC_J"])
    assert np.isnan(row["sAUC"])  # frame 1's fixations are the video's only ones: no negatives left
    for k in ("CC", "SIM", "KLD"):  # ... CC / SIM / KLD keep it
        assert row[k] == pytest.approx((f1[k] + f2[k]) / 2, abs=1e-9), k
    assert "warnings:" in report.markdown() and "empty fixation map: 1" in report.markdown()


def test_fixation_density_size_mismatch_is_counted_not_fatal(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 3)])
    make_video(data, "AVAD", "v1", 3, seed=0)
    gt = data / "annotations" / "AVAD" / "v1"
    scipy.io.savemat(gt / "fixMap_00002.mat", {"eyeMap": np.eye(36, 64, dtype=np.uint8)})  # twice the size
    pred = tmp_path / "pred"
    write_prediction_images(pred / "AVAD" / "v1", predicted_blobs(3))
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.warnings["fixation/density size mismatch"] == 1
    (row,) = report.per_video
    assert row["frames"] == 3
    cc = [M.cc(imresize(postprocess_map(read_gray(pred / "AVAD" / "v1" / f"pred_sal_{i:06d}.jpg")), GT_SIZE),
               read_gray(gt / "maps" / f"eyeMap_{i:05d}.jpg")) for i in (1, 2, 3)]
    assert row["CC"] == pytest.approx(np.mean(cc), abs=1e-9)  # CC is scored against the density map


def test_nan_maps_are_counted_and_dropped_from_cc_nss_auc(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 3), ("v2", 3)])
    make_video(data, "AVAD", "v1", 3, seed=0)
    make_video(data, "AVAD", "v2", 3, seed=1)
    pred = tmp_path / "pred"
    write_prediction_h5(pred / "v1.h5", np.full((3, *PRED_SIZE), np.nan))
    half = np.stack(predicted_blobs(3))
    half[1, :, :4] = np.nan  # one map with a NaN stripe
    write_prediction_h5(pred / "v2.h5", half)
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.warnings["NaN in prediction"] == 4
    rows = {r["video"]: r for r in report.per_video}
    for k in ("CC", "NSS", "AUC_J", "sAUC", "KLD"):
        assert np.isnan(rows["v1"][k]) and np.isfinite(rows["v2"][k])
    assert report.summary()[0]["CC"] == pytest.approx(rows["v2"]["CC"])  # v1 has no CC: dropped


def test_nan_maps_are_dropped_from_sim(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 3)])
    make_video(data, "AVAD", "v1", 3, seed=0)
    write_prediction_h5(tmp_path / "pred" / "v1.h5", np.full((3, *PRED_SIZE), np.nan))
    assert np.isnan(evaluate(tmp_path / "pred", data, "AVAD", [1], progress=False).per_video[0]["SIM"])


def test_videos_without_predictions_are_counted(avad) -> None:
    data, pred = avad
    partial = pred.parent / "partial"
    _predictions(partial, videos=["v1"])
    report = evaluate(partial, data, "AVAD", [1, 2], progress=False)
    assert report.warnings["video without predictions"] == 3  # v2 twice, v3
    assert [r["video"] for r in report.per_video] == ["v1"]


def test_missing_prediction_frames_are_counted(tmp_path) -> None:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 4)])
    make_video(data, "AVAD", "v1", 4, seed=0)
    write_prediction_images(tmp_path / "pred" / "AVAD" / "v1", predicted_blobs(4)[:2])  # frames 3, 4 missing
    report = evaluate(tmp_path / "pred", data, "AVAD", [1], progress=False)
    assert report.per_video[0]["frames"] == 2
    assert sum(report.warnings.values()) >= 1
    assert report.warnings["frame with ground truth but no prediction"] == 2
    assert "frame with ground truth but no prediction: 2" in report.markdown()


def _one_video(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    write_fold_list(data, "AVAD", 1, [("v1", 3)])
    make_video(data, "AVAD", "v1", 3, seed=0)
    pred = tmp_path / "pred"
    write_prediction_images(pred / "AVAD" / "v1", predicted_blobs(3))
    return data, pred


def test_corrupt_density_jpeg_does_not_crash(tmp_path) -> None:
    data, pred = _one_video(tmp_path)
    (data / "annotations" / "AVAD" / "v1" / "maps" / "eyeMap_00002.jpg").write_bytes(b"garbage")
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.per_video[0]["frames"] == 2 and sum(report.warnings.values()) == 1


def test_corrupt_prediction_image_does_not_crash(tmp_path) -> None:
    data, pred = _one_video(tmp_path)
    (pred / "AVAD" / "v1" / "pred_sal_000002.jpg").write_bytes(b"garbage")
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.per_video[0]["frames"] == 2 and sum(report.warnings.values()) == 1


def test_truncated_fixation_mat_does_not_crash(tmp_path) -> None:
    data, pred = _one_video(tmp_path)
    (data / "annotations" / "AVAD" / "v1" / "fixMap_00002.mat").write_bytes(b"")
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.per_video[0]["frames"] >= 2 and sum(report.warnings.values()) >= 1


# -- the command line ---------------------------------------------------------------------------------------
def test_cli_evaluate_prints_the_table_and_writes_csv_json(avad, tmp_path) -> None:
    data, pred = avad
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--data", str(data), "--dataset",
                                      "AVAD", "--split", "1,2", "--baseline", "centre", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| prediction | 4 |" in result.output and "| centre | 4 |" in result.output
    doc = json.loads((out / "AVAD_results.json").read_text())
    library = evaluate(pred, data, "AVAD", [1, 2], baseline="centre", progress=False).summary()
    assert doc["summary"] == json.loads(json.dumps(library))  # the command only wraps the library
    assert (out / "AVAD_results.csv").is_file() and (out / "AVAD_per_video.csv").is_file()


def test_cli_seed_option(avad, tmp_path) -> None:
    data, pred = avad
    runs = {}
    for seed in ("0", "3"):
        out = tmp_path / seed
        result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--data", str(data), "--dataset",
                                          "AVAD", "--split", "1", "--seed", seed, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs[seed] = json.loads((out / "AVAD_results.json").read_text())["summary"][0]
    assert runs["0"]["sAUC"] != runs["3"]["sAUC"] and runs["0"]["CC"] == runs["3"]["CC"]


def test_cli_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0
    for option in ("--pred", "--data", "--dataset", "--split", "--baseline", "--out", "--seed"):
        assert option in result.output


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    from stanet_rt.cli import main

    monkeypatch.setattr(sys, "argv", ["stanet-rt", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def test_cli_bad_input_is_one_line_and_exit_2(avad, tmp_path, monkeypatch, capsys) -> None:
    data, pred = avad
    code, err = _main(monkeypatch, capsys, "evaluate", "--pred", str(pred), "--data", str(tmp_path),
                      "--dataset", "AVAD", "--split", "1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "AVAD_list_test_1_fps.txt" in lines[0]
    code, err = _main(monkeypatch, capsys, "evaluate", "--pred", str(pred), "--data", str(data),
                      "--dataset", "AVAD", "--baseline", "median")
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "median" in err
    code, _ = _main(monkeypatch, capsys, "evaluate", "--data", str(data), "--dataset", "AVAD",
                    "--split", "one")
    assert code == 2


def test_cli_missing_prediction_path_is_an_error(avad, tmp_path, monkeypatch, capsys) -> None:
    data, _ = avad
    code, err = _main(monkeypatch, capsys, "evaluate", "--pred", str(tmp_path / "nope"), "--data", str(data),
                      "--dataset", "AVAD", "--split", "1", "--out", str(tmp_path / "o"))
    assert code == 2 and "nope" in err


def test_written_images_round_trip(tmp_path) -> None:
    # guards the miniature itself: a prediction image read back is the map that was written (8-bit)
    maps = predicted_blobs(1)
    write_prediction_images(tmp_path, maps)
    back = np.asarray(Image.open(tmp_path / "pred_sal_000001.jpg"), dtype=float) / 255
    assert np.abs(back - maps[0]).max() < 0.05


# -- issue 13: STAViS's own layout, loud failures, Inf ------------------------------------------------------
def test_stavis_layout_split_results_with_lowercase_dataset_folders(avad, tmp_path, monkeypatch, capsys) -> None:
    data, _ = avad
    pred = tmp_path / "stavis_exp"
    for split, videos in FOLDS.items():  # as STAViS writes them: split<k>_results/<db lowercase>/<video>/*.jpg
        for video in videos:
            maps = predicted_blobs(VIDEOS[video])
            write_prediction_images(pred / f"split{split}_results" / "avad" / video, maps)
    report = evaluate(pred, data, "AVAD", [1, 2], progress=False)
    assert not report.warnings["video without predictions"] and report.unscored() is None
    assert sorted((r["split"], r["video"]) for r in report.per_video) == [(1, "v1"), (1, "v2"), (2, "v2"), (2, "v3")]
    reference = evaluate(avad[1], data, "AVAD", [1, 2], progress=False).summary()[0]  # the same maps, <DB>/<video>
    assert report.summary()[0]["CC"] == pytest.approx(reference["CC"])
    code, err = _main(monkeypatch, capsys, "evaluate", "--pred", str(pred), "--data", str(data), "--dataset",
                      "AVAD", "--split", "1,2", "--out", str(tmp_path / "out"))
    assert code == 0, err


def test_nothing_scored_exits_non_zero_and_says_why(avad, tmp_path, monkeypatch, capsys) -> None:
    data, _ = avad
    empty = tmp_path / "empty_exp"
    (empty / "split1_results" / "dataset_typo" / "v1").mkdir(parents=True)
    code, err = _main(monkeypatch, capsys, "evaluate", "--pred", str(empty), "--data", str(data), "--dataset",
                      "AVAD", "--split", "1,2", "--out", str(tmp_path / "o1"))
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("error: AVAD: nothing was scored for the predictions: no predictions "
                                              "found under") and "4 (split, video) entries" in lines[-1], err
    nan = tmp_path / "nan_exp"
    for video in VIDEOS:
        write_prediction_h5(nan / f"{video}.h5", np.full((VIDEOS[video], *PRED_SIZE), np.nan))
    code, err = _main(monkeypatch, capsys, "evaluate", "--pred", str(nan), "--data", str(data), "--dataset",
                      "AVAD", "--split", "1", "--out", str(tmp_path / "o2"))
    assert code == 2 and "every score is NaN" in err.strip().splitlines()[-1], err
    # the centre baseline alone scores: exit 0
    code, err = _main(monkeypatch, capsys, "evaluate", "--data", str(data), "--dataset", "AVAD", "--split", "1",
                      "--baseline", "centre", "--out", str(tmp_path / "o3"))
    assert code == 0, err


def test_inf_is_reported_as_inf_not_nan(avad, tmp_path, monkeypatch) -> None:
    from stanet_rt.eval.evaluate import nanmean_dict

    assert nanmean_dict([{"a": float("inf")}, {"a": 1.0}, {"a": float("nan")}], ["a"]) == {"a": float("inf")}
    data, pred = avad
    monkeypatch.setattr(M, "kld", lambda s, g: float("inf"))  # e.g. a map that is zero where the density is not
    report = evaluate(pred, data, "AVAD", [1], progress=False)
    assert report.summary()[0]["KLD"] == float("inf") and np.isfinite(report.summary()[0]["CC"])
    assert "| Inf |" in report.markdown()
    doc = json.loads(report.write(tmp_path / "out")["json"].read_text())
    assert doc["summary"][0]["KLD"] == "Infinity" and float(doc["summary"][0]["KLD"]) == float("inf")
