"""Evaluation toolbox: metrics on hand cases, MATLAB-compatible post-processing, readers of the
STAViS layout (generated miniature), the driver's aggregation and bad-input handling, the CLI,
and an independent cross-check against pysaliency."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image
from typer.testing import CliRunner

from stanet_rt.cli import app
from stanet_rt.eval import metrics as M
from stanet_rt.eval.baselines import centre_bias
from stanet_rt.eval.evaluate import evaluate, evaluate_maps, nanmean_dict, score_frame
from stanet_rt.eval.postprocess import gaussian_kernel, imresize, postprocess_map


# -- metrics on hand-computed cases ----------------------------------------------------------------
def test_cc_hand_case_and_constant_map() -> None:
    assert M.cc(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.0, 4.0], [6.0, 8.0]])) == pytest.approx(1.0)
    assert M.cc(np.array([[1.0, 2.0]]), np.array([[2.0, 1.0]])) == pytest.approx(-1.0)
    assert np.isnan(M.cc(np.ones((2, 2)), np.eye(2)))


def test_nss_uses_n_minus_1_std() -> None:
    s = np.array([[0.0, 1.0], [2.0, 3.0]])
    fix = np.array([[0, 0], [0, 1]])
    expected = (3.0 - 1.5) / np.std([0, 1, 2, 3], ddof=1)
    assert M.nss(s, fix) == pytest.approx(expected)
    assert np.isnan(M.nss(s, np.zeros((2, 2))))


def test_similarity_min_max_then_sum() -> None:
    a = np.array([[1.0, 3.0]])  # -> [0, 1] -> [0, 1]
    b = np.array([[2.0, 2.5]])  # -> [0, 1]
    assert M.similarity(a, b) == pytest.approx(1.0)
    c = np.array([[1.0, 2.0, 3.0]])  # -> [0, .5, 1] -> [0, 1/3, 2/3]
    d = np.array([[3.0, 2.0, 1.0]])  # -> [2/3, 1/3, 0]
    assert M.similarity(c, d) == pytest.approx(1 / 3)
    assert M.similarity(c, np.zeros((1, 3))) == 0.0  # all-zero GT: 0, not NaN


def test_kld_hand_case() -> None:
    s = np.array([[1.0, 1.0]])
    g = np.array([[3.0, 1.0]])
    expected = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)
    assert M.kld(s, g) == pytest.approx(expected, rel=1e-9)


def test_auc_judd_hand_case_and_tie_rule() -> None:
    s = np.array([[0.1, 0.4, 0.35, 0.8]])
    fix = np.array([[0, 1, 0, 1]])
    # thresholds .8 (tp .5, fp 0) and .4 (tp 1, fp 1/2 -> 0.4>=.4 counts the .35? no: above=2, fp=0)
    # positives {.8, .4} beat both negatives {.1, .35}: AUC 1
    assert M.auc_judd(s, fix, jitter=False) == pytest.approx(1.0)
    s2 = np.array([[0.9, 0.2, 0.5, 0.1]])
    fix2 = np.array([[0, 1, 0, 1]])  # both positives below one negative, one positive above another
    # thresholds .2 then .1 (after min-max: .125, 0): tp .5 fp (#>=.125 = 3 - 1)/2 = 1; tp 1 fp 1
    assert M.auc_judd(s2, fix2, jitter=False) == pytest.approx(0.25)
    # MATLAB tie rule: tp uses the rank i. Positives {1, 1, 0}, negative {0}: the curve visits
    # (1, 1/3), (0, 2/3), (1, 1) -> trapz = 1/6 - 1/2 + 5/6 = 0.5 (an exact tie-aware AUC would be 5/6)
    tie = np.array([[1.0, 1.0, 0.0, 0.0]])
    assert M.auc_judd(tie, np.array([[1, 1, 1, 0]]), jitter=False) == pytest.approx(0.5)
    assert np.isnan(M.auc_judd(s, np.zeros((1, 4))))


def test_shuffled_auc_thresholds_include_endpoint_and_seed() -> None:
    s = np.array([[1.0, 0.0, 0.55, 0.2]])
    fix = np.array([[1, 0, 0, 0]])
    other = np.array([[0, 1, 1, 0]])
    # one positive at 1.0 (normalised), one negative drawn from {0, .55}; endpoint 1.0 is a threshold
    vals = {M.auc_shuffled(s, fix, other, np.random.default_rng(seed), n_splits=1) for seed in range(20)}
    assert vals == {1.0}
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    r = np.random.default_rng(0)
    big_s, big_f, big_o = r.random((20, 20)), r.random((20, 20)) > 0.9, r.random((20, 20)) > 0.5
    assert M.auc_shuffled(big_s, big_f, big_o, rng_a) == M.auc_shuffled(big_s, big_f, big_o, rng_b)
    assert np.isnan(M.auc_shuffled(s, fix, np.zeros_like(other)))


# -- post-processing -------------------------------------------------------------------------------
def test_imresize_constant_linear_interior_and_shrink() -> None:
    assert np.allclose(imresize(np.full((5, 7), 3.0), (11, 13)), 3.0)
    ramp = np.tile(np.arange(1, 11, dtype=float), (4, 1))  # f(j) = j along columns
    up = imresize(ramp, (4, 20))
    u = np.arange(1, 21) / 2 + 0.25  # MATLAB's input coordinate of each output column
    interior = slice(4, 16)  # away from the symmetric-padding edges, cubic reproduces a line
    np.testing.assert_allclose(up[0, interior], u[interior], atol=1e-12)
    long_ramp = np.tile(np.arange(1, 41, dtype=float), (2, 1))
    down = imresize(long_ramp, (2, 20))  # antialiased 2x shrink (kernel 8 wide) keeps a line a line
    np.testing.assert_allclose(down[0, 3:16], (np.arange(1, 21) * 2 - 0.5)[3:16], atol=1e-9)


def test_postprocess_protocol() -> None:
    k = gaussian_kernel(2.0)
    assert k.shape == (13, 13) and k.sum() == pytest.approx(1.0)
    out = postprocess_map(np.full((8, 8), 0.3))
    assert np.allclose(out, 0.5)  # constant map -> 0.5 after min-max
    assert np.isnan(postprocess_map(np.zeros((4, 4)))).all()  # max 0 -> NaN, dropped later
    rgb = np.zeros((9, 9, 3))
    rgb[4, 4, 0] = 1.0
    rgb[0, 0, 1] = 1.0  # channel 2 is ignored
    p = postprocess_map(rgb)
    assert np.unravel_index(np.argmax(p), p.shape) == (4, 4)


def test_score_frame_resizes_to_gt_and_centre_bias_beats_noise() -> None:
    rng = np.random.default_rng(0)
    gt = centre_bias((36, 64), 0.15)
    fix = np.zeros((36, 64))
    fix[16:20, 29:35] = 1
    other = np.zeros_like(fix)
    other[2:6, 2:10] = 1
    good = score_frame(centre_bias((9, 16), 0.15), gt, fix, other, rng)
    bad = score_frame(rng.random((9, 16)), gt, fix, other, rng)
    assert good["CC"] > 0.85 and good["CC"] > bad["CC"] + 0.5  # (the protocol's blur costs a little CC)
    assert good["NSS"] > bad["NSS"] and good["AUC_J"] > bad["AUC_J"] and good["sAUC"] > 0.9
    assert set(good) == {"CC", "NSS", "AUC_J", "sAUC", "SIM", "KLD"}


def test_evaluate_maps_and_nan_dropping() -> None:
    t, h, w = 3, 16, 16
    dens = np.stack([centre_bias((h, w), 0.1)] * t)
    fix = np.zeros((t, h, w))
    fix[:, 7:9, 7:9] = 1
    fix[2] = 0  # no fixations in the last frame: NSS/AUC NaN there, dropped
    res = evaluate_maps(dens, dens, fix, seed=1)
    assert res["CC"] > 0.85 and np.isfinite(res["NSS"])
    exact = evaluate_maps(dens, dens, fix, seed=1, postprocess=False)
    assert exact["CC"] == pytest.approx(1.0) and exact["SIM"] == pytest.approx(1.0)
    assert nanmean_dict([{"a": 1.0}, {"a": float("nan")}], ["a"]) == {"a": 1.0}


# -- the STAViS layout, generated here ------------------------------------------------------------
def _make_layout(root, dataset="AVAD", videos=("v1", "v2"), n=4, size=(18, 32)):
    rng = np.random.default_rng(0)
    (root / "fold_lists").mkdir(parents=True)
    for split in (1, 2):
        (root / "fold_lists" / f"{dataset}_list_test_{split}_fps.txt").write_text(
            "".join(f"{v} {n} 25\n" for v in videos[split - 1 :: 2] or videos))
    for v in videos:
        d = root / "annotations" / dataset / v
        (d / "maps").mkdir(parents=True)
        for i in range(1, n + 1):
            fix = np.zeros(size, dtype=np.uint8)
            fix[rng.integers(0, size[0], 5), rng.integers(0, size[1], 5)] = 1
            scipy.io.savemat(d / f"fixMap_{i:05d}.mat", {"eyeMap": fix})
            dens = (255 * centre_bias(size, 0.2)).astype(np.uint8)
            Image.fromarray(dens).save(d / "maps" / f"eyeMap_{i:05d}.jpg")
    return root


def _make_predictions(root, dataset, videos, n, size=(9, 16)):
    for v in videos:
        d = root / dataset / v
        d.mkdir(parents=True)
        for i in range(1, n + 1):
            Image.fromarray((255 * centre_bias(size, 0.2)).astype(np.uint8)).save(d / f"pred_sal_{i:06d}.jpg")


def test_evaluate_layout_aggregation_and_warnings(tmp_path) -> None:
    data = _make_layout(tmp_path / "data")
    preds = tmp_path / "pred"
    _make_predictions(preds, "AVAD", ["v1"], 3)  # v1 misses frame 4; v2 has no predictions at all
    (preds / "AVAD" / "v1" / "pred_sal_000099.jpg").write_bytes(
        (preds / "AVAD" / "v1" / "pred_sal_000001.jpg").read_bytes())  # beyond n_frames: skipped
    report = evaluate(preds, data, "AVAD", [1, 2], baseline="centre", progress=False)
    summary = {r["method"]: r for r in report.summary()}
    assert summary["prediction"]["entries"] == 1 and summary["centre"]["entries"] == 2
    assert summary["prediction"]["CC"] > 0.9
    assert report.warnings["video without predictions"] == 1
    v1 = [r for r in report.per_video if r["method"] == "prediction"][0]
    assert v1["frames"] == 3
    paths = report.write(tmp_path / "out")
    data_json = json.loads(paths["json"].read_text())
    assert data_json["summary"][0]["dataset"] == "AVAD"
    assert "| centre | 2 |" in report.markdown()


def test_evaluate_bad_inputs_do_not_crash(tmp_path) -> None:
    data = _make_layout(tmp_path / "data", videos=("v1",), n=3)
    d = data / "annotations" / "AVAD" / "v1"
    scipy.io.savemat(d / "fixMap_00002.mat", {"eyeMap": np.zeros((18, 32), dtype=np.uint8)})  # empty
    (d / "maps" / "eyeMap_00003.jpg").unlink()
    (d / "fixMap_00003.mat").unlink()  # frame 3: no ground truth at all
    preds = tmp_path / "pred"
    _make_predictions(preds, "AVAD", ["v1"], 3)
    nan_map = preds / "v1.h5"
    import h5py

    with h5py.File(nan_map, "w") as fh:
        fh["maps"] = np.full((3, 9, 16), np.nan, dtype=np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = evaluate(preds, data, "AVAD", [1], progress=False)
    assert report.warnings["empty fixation map"] == 1
    assert report.warnings["missing ground-truth frame"] == 1
    row = report.per_video[0]
    assert row["frames"] == 2 and np.isfinite(row["CC"])
    h5_report = evaluate(tmp_path / "nope", data, "AVAD", [1], progress=False)
    assert h5_report.warnings["video without predictions"] == 1


def test_cli_evaluate(tmp_path) -> None:
    data = _make_layout(tmp_path / "data")
    preds = tmp_path / "pred"
    _make_predictions(preds, "AVAD", ["v1", "v2"], 4)
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(preds), "--data", str(data), "--dataset", "AVAD",
                                      "--split", "1,2", "--baseline", "centre", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "| prediction | 2 |" in result.output and (tmp_path / "o" / "AVAD_results.csv").exists()
    bad = CliRunner().invoke(app, ["evaluate", "--pred", str(preds), "--data", str(tmp_path), "--dataset", "AVAD"])
    assert bad.exit_code != 0


# -- independent cross-check ------------------------------------------------------------------------
def test_cross_check_against_pysaliency() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pysaliency = pytest.importorskip("pysaliency")
    if not hasattr(np, "trapz"):  # pysaliency 0.2.22 calls np.trapz, removed in NumPy 2.4
        pytest.MonkeyPatch().setattr(np, "trapz", np.trapezoid, raising=False)
    rng = np.random.default_rng(7)
    for _ in range(3):
        s = rng.random((24, 32)) + 0.01
        g = rng.random((24, 32))
        flat = rng.choice(24 * 32, 30, replace=False)  # unique fixated pixels
        ys, xs = np.unravel_index(flat, (24, 32))
        fix = np.zeros((24, 32))
        fix[ys, xs] = 1
        assert M.cc(s, g) == pytest.approx(pysaliency.metrics.CC(s, g), abs=1e-9)
        # pysaliency's NSS uses ddof=0: scale by sqrt((N-1)/N) to compare the same quantity
        n = s.size
        assert M.nss(s, fix) * np.sqrt(n / (n - 1)) == pytest.approx(pysaliency.metrics.NSS(s, xs, ys).mean(),
                                                                      abs=1e-9)
        assert M.kld(s, g) == pytest.approx(pysaliency.metrics.MIT_KLDiv(s, g), rel=1e-9)

        class Fixed(pysaliency.SaliencyMapModel):
            def __init__(self, smap: np.ndarray) -> None:
                super().__init__()
                self.smap = smap

            def _saliency_map(self, stimulus):  # noqa: ANN001, ANN202
                return self.smap

        stimuli = pysaliency.Stimuli([np.zeros((24, 32, 3))])
        fixations = pysaliency.Fixations.create_without_history(xs.astype(float), ys.astype(float),
                                                                np.zeros(len(xs), dtype=int))
        ref = Fixed(s).AUC_Judd(stimuli, fixations, jitter=False)
        assert M.auc_judd(s, fix, jitter=False) == pytest.approx(ref, abs=1e-9)
