"""Metrics of the STAViS / MIT protocol (``stanet_rt.eval.metrics``, metrics-and-peers.md 1.3-1.4):
hand-computed cases for CC, NSS, SIM, KLD, AUC-Judd (MATLAB tie rule, jitter) and shuffled AUC (100
seeded splits, 0:0.1:max thresholds with the endpoint), literal loop references of the MATLAB code,
the "other" map of createShuffmap1.m through ``evaluate_maps``, NaN behaviour, and the metric benchmark
on a tiny size."""

from __future__ import annotations

import numpy as np
import pytest

from stanet_rt.eval import metrics as M
from stanet_rt.eval.evaluate import evaluate_maps, score_frame
from stanet_rt.eval.postprocess import imresize, postprocess_map

MATLAB_EPS = float(np.finfo(np.float64).eps)


# -- literal references: the MATLAB loops, written independently of the implementation ---------------
def matlab_auc_judd(sal: np.ndarray, fix: np.ndarray) -> float:
    """AUC_Judd.m without jitter, one threshold at a time."""
    s = sal.astype(np.float64).ravel()
    s = (s - s.min()) / (s.max() - s.min())
    f = fix.ravel()
    sth = sorted(s[f > 0], reverse=True)
    n_fix, n_pix = len(sth), s.size
    tp, fp = [0.0], [0.0]
    for i, thresh in enumerate(sth, start=1):
        above = int(np.sum(s >= thresh))
        tp.append(i / n_fix)
        fp.append((above - i) / (n_pix - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return float(sum((fp[k + 1] - fp[k]) * (tp[k + 1] + tp[k]) / 2 for k in range(len(tp) - 1)))


def matlab_sauc_fixed_negatives(sal: np.ndarray, fix: np.ndarray, negatives: np.ndarray,
                                step: float = 0.1) -> float:
    """One split of AUC_shuffled.m with the negative pixels given (flat indices), loop form."""
    s = sal.astype(np.float64).ravel()
    s = (s - s.min()) / (s.max() - s.min())
    sth = s[fix.ravel() > 0]
    cur = s[negatives]
    top = max(sth.max(), cur.max())
    levels = [k * step for k in range(int(np.floor(top / step + 1e-9)) + 1)][::-1]
    tp, fp = [0.0], [0.0]
    for t in levels:
        tp.append(np.sum(sth >= t) / sth.size)
        fp.append(np.sum(cur >= t) / cur.size)
    tp.append(1.0)
    fp.append(1.0)
    return float(sum((fp[k + 1] - fp[k]) * (tp[k + 1] + tp[k]) / 2 for k in range(len(tp) - 1)))


def _random_case(seed: int, shape=(24, 32), n_fix: int = 25):
    rng = np.random.default_rng(seed)
    sal = rng.random(shape)
    fix = np.zeros(shape, dtype=np.uint8)
    fix.flat[rng.choice(sal.size, n_fix, replace=False)] = 1
    return rng, sal, fix


# -- CC ------------------------------------------------------------------------------------------------
def test_cc_hand_cases() -> None:
    # centred S = (-1, 0, 1), G = (-1, 1, 0): r = 1 / (sqrt 2 sqrt 2) = 0.5
    assert M.cc(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 3.0, 2.0]])) == pytest.approx(0.5, abs=1e-15)
    assert M.cc(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.0, 4.0], [6.0, 8.0]])) == pytest.approx(1.0)
    assert M.cc(np.array([[1.0, 2.0]]), np.array([[2.0, 1.0]])) == pytest.approx(-1.0)
    s, g = np.random.default_rng(0).random((2, 6, 7))
    assert M.cc(3 * s + 5, g) == pytest.approx(M.cc(s, g), abs=1e-12)  # z-scoring makes it affine-invariant


def test_cc_nan_for_constant_or_nan_maps() -> None:
    assert np.isnan(M.cc(np.ones((3, 3)), np.eye(3)))
    assert np.isnan(M.cc(np.eye(3), np.full((3, 3), 0.2)))
    nan_map = np.eye(3)
    nan_map[0, 0] = np.nan
    assert np.isnan(M.cc(nan_map, np.eye(3)))


# -- NSS -----------------------------------------------------------------------------------------------
def test_nss_hand_case_uses_n_minus_1_std() -> None:
    s = np.array([[0.0, 1.0], [2.0, 3.0]])
    # mean 1.5, std with N - 1 = sqrt(5 / 3); fixation on the 3 -> 1.5 / sqrt(5 / 3) = 1.161895...
    assert M.nss(s, np.array([[0, 0], [0, 1]])) == pytest.approx(1.5 / np.sqrt(5 / 3), abs=1e-12)
    assert M.nss(s, np.array([[0, 0], [0, 1]])) != pytest.approx(1.5 / np.std([0, 1, 2, 3]), abs=1e-3)


def test_nss_counts_each_fixated_pixel_once() -> None:
    s = np.array([[0.0, 1.0], [2.0, 3.0]])
    binary = M.nss(s, np.array([[0, 0], [1, 1]]))
    assert binary == pytest.approx(((2 - 1.5) + (3 - 1.5)) / 2 / np.sqrt(5 / 3), abs=1e-12)
    assert M.nss(s, np.array([[0, 0], [5, 1]])) == pytest.approx(binary, abs=1e-15)  # a count map: logical(F)


def test_nss_nan_without_fixations_or_for_constant_map() -> None:
    assert np.isnan(M.nss(np.eye(3), np.zeros((3, 3))))
    assert np.isnan(M.nss(np.full((3, 3), 0.4), np.eye(3)))


# -- SIM -----------------------------------------------------------------------------------------------
def test_similarity_hand_cases_min_max_then_sum() -> None:
    # (1, 2, 3) -> (0, .5, 1) -> (0, 1/3, 2/3); (3, 2, 1) -> (2/3, 1/3, 0): sum of minima 1/3
    assert M.similarity(np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 2.0, 1.0]])) == pytest.approx(1 / 3)
    # a positive floor is removed by the min-max step (pysaliency's SIM would give 2/3 here)
    assert M.similarity(np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0)
    g = np.random.default_rng(1).random((5, 6))
    assert M.similarity(g, g) == pytest.approx(1.0)


def test_similarity_all_zero_map_scores_zero_not_nan() -> None:
    assert M.similarity(np.array([[1.0, 2.0, 3.0]]), np.zeros((1, 3))) == 0.0
    assert M.similarity(np.zeros((1, 3)), np.array([[1.0, 2.0, 3.0]])) == 0.0


def test_similarity_nan_for_constant_nonzero_or_nan_map() -> None:
    g = np.array([[0.0, 1.0, 0.5]])
    assert np.isnan(M.similarity(np.full((1, 3), 0.5), g))
    assert np.isnan(M.similarity(np.array([[np.nan, 1.0, 0.0]]), g))


# -- KLD -----------------------------------------------------------------------------------------------
def test_kld_hand_cases() -> None:
    expected = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)  # KL(G || S), G = (3, 1)/4, S = (1, 1)/2
    assert M.kld(np.array([[1.0, 1.0]]), np.array([[3.0, 1.0]])) == pytest.approx(expected, rel=1e-9)
    g = np.random.default_rng(2).random((4, 5))
    assert M.kld(g, g) == pytest.approx(0.0, abs=1e-12)
    assert M.kld(2 * g, g) == pytest.approx(0.0, abs=1e-12)  # both maps are sum-normalised, no min-max
    # S = 0 where G > 0: the eps regularisers keep it finite, log(eps + 0.5 / eps) per KLdiv.m
    kl = M.kld(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]))
    ref = 0.5 * np.log(MATLAB_EPS + 0.5 / (1 + MATLAB_EPS)) + 0.5 * np.log(MATLAB_EPS + 0.5 / MATLAB_EPS)
    assert np.isfinite(kl) and kl == pytest.approx(ref, rel=1e-5)


# -- AUC-Judd ------------------------------------------------------------------------------------------
def test_auc_judd_hand_cases() -> None:
    # positives (.8, .4) above both negatives (.1, .35): AUC 1
    assert M.auc_judd(np.array([[0.1, 0.4, 0.35, 0.8]]), np.array([[0, 1, 0, 1]]), jitter=False) == 1.0
    # min-max -> (1, .125, .5, 0), positives (.125, 0): points (1, .5), (1, 1) -> area .25
    s = np.array([[0.9, 0.2, 0.5, 0.1]])
    assert M.auc_judd(s, np.array([[0, 1, 0, 1]]), jitter=False) == pytest.approx(0.25, abs=1e-15)


def test_auc_judd_matlab_tie_rule() -> None:
    # positives (1, 1, 0), negative (0). tp follows the rank i, so the curve visits (1, 1/3), (0, 2/3),
    # (1, 1): trapz = 1/6 - 1/2 + 5/6 = 1/2, where a tie-aware AUC would be 5/6
    tie = np.array([[1.0, 1.0, 0.0, 0.0]])
    assert M.auc_judd(tie, np.array([[1, 1, 1, 0]]), jitter=False) == pytest.approx(0.5, abs=1e-15)


def test_auc_judd_matches_the_literal_matlab_loop() -> None:
    for seed in range(3):
        _, sal, fix = _random_case(seed)
        assert M.auc_judd(sal, fix, jitter=False) == pytest.approx(matlab_auc_judd(sal, fix), abs=1e-12)
        quantised = np.round(sal * 8) / 8  # many ties: the rank rule matters
        ref = matlab_auc_judd(quantised, fix)
        assert M.auc_judd(quantised, fix, jitter=False) == pytest.approx(ref, abs=1e-12)


def test_auc_judd_jitter_is_seeded_and_only_breaks_ties() -> None:
    _, sal, fix = _random_case(5)
    a = M.auc_judd(sal, fix, np.random.default_rng(11))
    assert a == M.auc_judd(sal, fix, np.random.default_rng(11))
    assert a == pytest.approx(M.auc_judd(sal, fix, jitter=False), abs=1e-12)  # no ties: ranks unchanged
    # a map full of zeros (a typical sparse prediction): jitter orders the ties randomly, around 0.5
    flat = np.zeros((30, 30))
    flat[0, 0] = 1.0
    fix = np.zeros((30, 30))
    fix[10:20, 10:20] = 1
    values = [M.auc_judd(flat, fix, np.random.default_rng(k)) for k in range(5)]
    assert len(set(values)) > 1 and all(0.4 < v < 0.6 for v in values)


def test_auc_judd_nan_cases() -> None:
    s = np.array([[0.1, 0.4, 0.35, 0.8]])
    assert np.isnan(M.auc_judd(s, np.zeros((1, 4))))
    assert np.isnan(M.auc_judd(s, np.ones((1, 4)), jitter=False))  # no negatives: fp = 0/0


def test_auc_judd_constant_map_without_jitter_is_nan() -> None:
    assert np.isnan(M.auc_judd(np.full((4, 4), 0.3), np.eye(4), jitter=False))


# -- shuffled AUC --------------------------------------------------------------------------------------
def test_sauc_threshold_grid_includes_the_endpoint() -> None:
    # positives (1.0, .05), one candidate negative (.95). With the threshold 1.0 (0:0.1:1 includes it) the
    # curve is (0, .5), (1, .5), (1, 1): area .5. Dropping the endpoint (np.arange) would give .25.
    s = np.array([[1.0, 0.05, 0.95, 0.0]])
    fix = np.array([[1, 1, 0, 0]])
    other = np.array([[0, 0, 1, 0]])
    assert M.auc_shuffled(s, fix, other, np.random.default_rng(0)) == pytest.approx(0.5, abs=1e-15)


def test_sauc_is_quantised_to_the_0_1_grid() -> None:
    # positive .55 vs negative .51 share the bin [.5, .6): no threshold separates them -> .5 (exact AUC: 1)
    s = np.array([[0.0, 0.55, 0.51, 1.0]])
    assert M.auc_shuffled(s, np.array([[0, 1, 0, 0]]), np.array([[0, 0, 1, 0]])) == pytest.approx(0.5)
    # a coarser step merges more: with step .5 the positive .35 and negative .2 (both < .5) tie as well
    s2 = np.array([[0.0, 1.0, 0.35, 0.2, 0.62]])
    fix2, other2 = np.array([[0, 1, 1, 0, 0]]), np.array([[0, 0, 0, 1, 1]])
    assert M.auc_shuffled(s2, fix2, other2, step=0.1) == pytest.approx(0.75)
    assert M.auc_shuffled(s2, fix2, other2, step=0.5) == pytest.approx(0.625)


def test_sauc_takes_every_candidate_when_there_are_no_more_than_fixations() -> None:
    # N_oth = min(Nf, #candidates) drawn WITHOUT replacement: with #candidates <= Nf every split holds all
    # candidates, so the score is deterministic and equals one split of the literal MATLAB loop
    for seed in range(3):
        rng, sal, fix = _random_case(seed, n_fix=40)
        free = np.flatnonzero(fix.ravel() == 0)
        cand = rng.choice(free, 30, replace=False)
        other = np.zeros_like(fix)
        other.flat[cand] = 1
        ref = matlab_sauc_fixed_negatives(sal, fix, cand)
        for k in range(3):
            assert M.auc_shuffled(sal, fix, other, np.random.default_rng(k)) == pytest.approx(ref, abs=1e-12)


def test_sauc_random_splits_are_seeded_and_average_to_the_full_candidate_score() -> None:
    rng, sal, fix = _random_case(3, n_fix=20)
    sal.flat[np.flatnonzero(fix.ravel())[0]] = 2.0  # global maximum on a positive: the grid is 0:0.1:1 always
    free = np.flatnonzero(fix.ravel() == 0)
    cand = rng.choice(free, 200, replace=False)
    other = np.zeros_like(fix)
    other.flat[cand] = 1
    a = M.auc_shuffled(sal, fix, other, np.random.default_rng(4))
    assert a == M.auc_shuffled(sal, fix, other, np.random.default_rng(4))
    others = {M.auc_shuffled(sal, fix, other, np.random.default_rng(k)) for k in range(5, 10)}
    assert len(others | {a}) > 1
    # the area is linear in fp, and a uniform subset's fp fractions average to the candidates' fractions:
    # the mean over 100 splits sits within a few standard errors of the all-candidate score
    full = matlab_sauc_fixed_negatives(sal, fix, cand)
    singles = [M.auc_shuffled(sal, fix, other, np.random.default_rng(100 + k), n_splits=1) for k in range(60)]
    spread = np.std(singles) / np.sqrt(100)
    assert spread > 0 and abs(a - full) < 5 * spread + 1e-9


def test_sauc_nan_cases() -> None:
    s = np.array([[0.1, 0.4, 0.35, 0.8]])
    other = np.array([[1, 0, 0, 0]])
    assert np.isnan(M.auc_shuffled(s, np.zeros((1, 4)), other))
    assert np.isnan(M.auc_shuffled(s, np.array([[0, 1, 0, 0]]), np.zeros((1, 4))))  # no negatives


def test_sauc_constant_map_is_nan() -> None:
    other = np.zeros((4, 4))
    other[0, 3] = other[3, 0] = 1
    assert np.isnan(M.auc_shuffled(np.full((4, 4), 0.3), np.eye(4), other))


# -- the driver's per-frame scoring and evaluate_maps ----------------------------------------------------
def _moving_blob_video(n: int, shape=(12, 16)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    dens, fixes = [], []
    for t in range(n):
        cy, cx = shape[0] / 2, 3 + 3 * t
        dens.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0))
        fix = np.zeros(shape)
        fix[int(cy) - 1 : int(cy) + 1, cx - 1 : cx + 1] = 1  # 4 pixels, disjoint between frames
        fixes.append(fix)
    return np.stack(dens), np.stack(fixes)


def test_evaluate_maps_other_map_is_the_union_of_the_other_frames() -> None:
    dens, fixes = _moving_blob_video(2)
    pred = dens[::-1].copy()  # frame 0 is predicted where frame 1 looks, and vice versa
    res = evaluate_maps(pred, dens, fixes, seed=0, postprocess=False)
    # 4 fixations per frame and 4 candidate negatives (the other frame's fixations): every split uses them all
    expected = np.mean([matlab_sauc_fixed_negatives(pred[t], fixes[t], np.flatnonzero(fixes[1 - t].ravel()))
                        for t in range(2)])
    assert res["sAUC"] == pytest.approx(expected, abs=1e-12)
    assert res["sAUC"] < 0.2  # the prediction points at the other frame's fixations


def test_evaluate_maps_means_drop_nan_per_metric() -> None:
    dens, fixes = _moving_blob_video(3)
    fixes[2] = 0  # frame 3 has no fixations: NSS / AUC drop it, CC / SIM keep it
    pred = np.roll(dens, 1, axis=2)
    res = evaluate_maps(pred, dens, fixes, seed=0, postprocess=False)
    assert res["CC"] == pytest.approx(np.mean([M.cc(pred[t], dens[t]) for t in range(3)]), abs=1e-12)
    assert res["NSS"] == pytest.approx(np.mean([M.nss(pred[t], fixes[t]) for t in range(2)]), abs=1e-12)
    assert res["SIM"] == pytest.approx(np.mean([M.similarity(pred[t], dens[t]) for t in range(3)]), abs=1e-12)
    assert res["KLD"] == pytest.approx(np.mean([M.kld(pred[t], dens[t]) for t in range(3)]), abs=1e-12)
    assert set(res) >= set(M.METRICS)


def test_evaluate_maps_postprocess_and_resize_follow_the_protocol() -> None:
    dens, fixes = _moving_blob_video(2)
    small = dens[:, ::2, ::2]  # predictions at half the ground-truth size
    res = evaluate_maps(small, dens, fixes, seed=0)
    sal = [imresize(postprocess_map(small[t]), dens.shape[1:]) for t in range(2)]
    assert res["CC"] == pytest.approx(np.mean([M.cc(sal[t], dens[t]) for t in range(2)]), abs=1e-12)
    swapped = evaluate_maps(small[::-1], dens, fixes, seed=0)  # each frame predicted at the other's place
    assert res["CC"] > 0.5 > swapped["CC"] and res["NSS"] > swapped["NSS"]


def test_evaluate_maps_seed_is_settable() -> None:
    rng = np.random.default_rng(0)
    dens = rng.random((3, 16, 16))
    fixes = (rng.random((3, 16, 16)) > 0.8).astype(float)  # many candidates: sAUC draws random subsets
    pred = rng.random((3, 16, 16))
    a = evaluate_maps(pred, dens, fixes, seed=1)
    assert a == evaluate_maps(pred, dens, fixes, seed=1)
    assert a["sAUC"] != evaluate_maps(pred, dens, fixes, seed=2)["sAUC"]


def test_score_frame_resizes_the_prediction_to_the_ground_truth() -> None:
    dens, fixes = _moving_blob_video(1)
    other = np.zeros_like(fixes[0])
    other[0:2, 0:2] = 1
    out = score_frame(dens[0][::2, ::2], dens[0], fixes[0], other, np.random.default_rng(0))
    assert set(out) == set(M.METRICS)
    assert out["CC"] > 0.5 and out["sAUC"] > 0.9 and out["NSS"] > 1.0  # the sigma-2 blur at half size
    # costs CC; the same map scored without post-processing is the exact resize of the ground truth
    exact = score_frame(dens[0], dens[0], fixes[0], other, np.random.default_rng(0), postprocess=False)
    assert exact["CC"] == pytest.approx(1.0) and exact["SIM"] == pytest.approx(1.0)


def test_score_frame_resizes_again_to_a_differently_sized_fixation_map() -> None:
    dens, _ = _moving_blob_video(1)
    fix = np.zeros((24, 32))
    fix[11:13, 5:7] = 1
    out = score_frame(dens[0], dens[0], fix, None, np.random.default_rng(0), postprocess=False)
    assert out["NSS"] == pytest.approx(M.nss(imresize(dens[0], (24, 32)), fix), abs=1e-9)


# -- the metric benchmark on a tiny size (speed is not asserted) -----------------------------------------
def test_metric_benchmark_tiny(tmp_path) -> None:
    from stanet_rt.benchmarks.bench_metrics import run
    from stanet_rt.benchmarks.common import machine_tag

    result = run(48, 27, pred_size=20, iterations=2)
    stages = {r["stage"] for r in result.rows}
    assert {"CC", "NSS", "AUC_J", "SIM", "KLD", "all metrics, one frame"} <= stages
    assert any(s.startswith("sAUC") for s in stages)
    assert all(r["resolution"] == "48x27" and r["throughput_fps"] > 0 for r in result.rows)
    paths = result.write(tmp_path)
    assert paths["json"].name == f"metrics.{machine_tag(result.machine)}.json"
    assert "all metrics, one frame" in paths["md"].read_text()


def test_score_frame_second_resize_serves_auc_and_sauc_too() -> None:
    dens, _ = _moving_blob_video(1)
    fix = np.zeros((24, 32))
    fix[11:13, 5:7] = 1
    other = np.zeros((24, 32))
    other[0:3, 20:24] = 1
    out = score_frame(dens[0], dens[0], fix, other, np.random.default_rng(0), postprocess=False)
    big = imresize(dens[0], (24, 32))
    assert out["AUC_J"] == pytest.approx(M.auc_judd(big, fix, np.random.default_rng(0)), abs=1e-12)
    assert out["sAUC"] == pytest.approx(M.auc_shuffled(big, fix, other, np.random.default_rng(1)), abs=1e-12)
    assert out["CC"] == pytest.approx(1.0)  # CC / SIM stay at the density map's size


def test_constant_prediction_is_dropped_from_every_map_metric() -> None:
    dens, fixes = _moving_blob_video(1)
    other = np.zeros_like(fixes[0])
    other[0:2, 0:2] = 1
    out = score_frame(np.full(dens[0].shape, 0.5), dens[0], fixes[0], other, np.random.default_rng(0),
                      postprocess=False)
    for k in ("CC", "NSS", "SIM", "sAUC"):  # AUC-J's jitter breaks the tie, as in MATLAB
        assert np.isnan(out[k]), k
