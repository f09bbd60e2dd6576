"""Independent cross-check of ``stanet_rt.eval.metrics`` against pysaliency 0.2.22 (test-only dependency)
on random maps and fixations, comparing like with like (metrics-and-peers.md section 2): fixations as
unique pixel coordinates, NSS rescaled from pysaliency's ddof = 0 to MATLAB's N - 1, per-image AUC
values instead of pysaliency's fixation-weighted average, and SIM on min-max-normalised maps (pysaliency
only sum-normalises). Skips with the reason if pysaliency cannot be imported."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from stanet_rt.eval import metrics as M

SHAPE = (24, 32)
N_FRAMES = 4


@pytest.fixture(scope="module")
def pysaliency():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it imports pkg_resources (hence setuptools<81 beside it)
        return pytest.importorskip("pysaliency")


@pytest.fixture(autouse=True)
def _numpy_trapz(monkeypatch):
    if not hasattr(np, "trapz"):  # pysaliency 0.2.22 still calls np.trapz, gone since NumPy 2.4
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def _frames(seed: int, n_fix: int = 30):
    """Random maps (some exactly zero, so KL's regularisers matter), densities and unique fixations."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_FRAMES):
        sal = rng.random(SHAPE) ** 2
        sal[rng.random(SHAPE) < 0.1] = 0.0
        gt = rng.random(SHAPE) ** 3
        flat = rng.choice(sal.size, n_fix, replace=False)
        ys, xs = np.unravel_index(flat, SHAPE)
        fix = np.zeros(SHAPE)
        fix[ys, xs] = 1
        out.append((sal, gt, fix, xs, ys))
    return out


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")  # log(0) inside theirs
@pytest.mark.parametrize("seed", [0, 1])
def test_cc_kld_sim_against_pysaliency(pysaliency, seed) -> None:
    for sal, gt, _, _, _ in _frames(seed):
        assert M.cc(sal, gt) == pytest.approx(pysaliency.metrics.CC(sal, gt), abs=1e-12)
        assert M.kld(sal, gt) == pytest.approx(pysaliency.metrics.MIT_KLDiv(sal, gt), rel=1e-9)
        mm = [(m - m.min()) / (m.max() - m.min()) for m in (sal + 0.2, gt + 0.1)]
        assert M.similarity(sal + 0.2, gt + 0.1) == pytest.approx(pysaliency.metrics.SIM(*mm), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_nss_against_pysaliency(pysaliency, seed) -> None:
    n = SHAPE[0] * SHAPE[1]
    for sal, _, fix, xs, ys in _frames(seed):
        theirs = pysaliency.metrics.NSS(sal, xs.astype(float), ys.astype(float)).mean()  # ddof = 0
        assert M.nss(sal, fix) == pytest.approx(theirs * np.sqrt((n - 1) / n), abs=1e-12)


def _model(pysaliency, maps: list[np.ndarray]):
    """A pysaliency model that returns ``maps[i]`` for the stimulus carrying index i in pixel (0, 0)."""

    class Fixed(pysaliency.SaliencyMapModel):
        def _saliency_map(self, stimulus):  # noqa: ANN001, ANN202
            return maps[int(stimulus[0, 0, 0])]

    return Fixed()


def _stimulus(i: int) -> np.ndarray:
    s = np.zeros((*SHAPE, 3))
    s[0, 0, 0] = i
    return s


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_judd_against_pysaliency(pysaliency, seed) -> None:
    frames = _frames(seed)
    maps = [f[0] + 0.01 * np.random.default_rng(seed).random(SHAPE) for f in frames]  # no ties
    stimuli = pysaliency.Stimuli([_stimulus(i) for i in range(N_FRAMES)])
    xs = np.concatenate([f[3] for f in frames]).astype(float)
    ys = np.concatenate([f[4] for f in frames]).astype(float)
    ns = np.concatenate([np.full(len(f[3]), i) for i, f in enumerate(frames)])
    fixations = pysaliency.Fixations.create_without_history(xs, ys, ns)
    model = _model(pysaliency, maps)
    per_image = model.AUC_per_image(stimuli, fixations, nonfixations="unfixated", thresholds="fixations")
    ours = [M.auc_judd(m, f[2], jitter=False) for m, f in zip(maps, frames, strict=True)]
    np.testing.assert_allclose(ours, per_image, atol=1e-12)
    # both jitter by 1e-7 (pysaliency: N(0, 1) after, ours: U(0, 1) before min-max): on untied maps the
    # ranking and so the score stay the same; average='image' is the per-frame mean
    jittered = model.AUC_Judd(stimuli, fixations, jitter=True)
    rng = np.random.default_rng(seed)
    assert np.mean([M.auc_judd(m, f[2], rng) for m, f in zip(maps, frames, strict=True)]) == pytest.approx(
        jittered, abs=1e-12)
