"""Saliency metrics exactly as the STAViS / MIT benchmark MATLAB code computes them
(cvzoya/saliency ``code_forMetrics`` @5951cdc; metrics-and-peers.md section 1.3).

All functions take 2-D float arrays of one size: ``sal`` the prediction (already resized to the
ground truth), ``gt`` a density map, ``fix`` a binary fixation map, ``other`` the shuffled-AUC
"other" map. They return a float, NaN where the MATLAB code yields NaN (constant maps, no fixations),
so the caller can drop NaN per metric as the protocol does. Randomness (AUC-Judd jitter, sAUC
splits) comes from a ``numpy.random.Generator`` the caller seeds.

Imports only numpy.
"""

from __future__ import annotations

import numpy as np

EPS = 2.2204e-16  # MATLAB eps, as in KLdiv.m


def _as_float(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def cc(sal: np.ndarray, gt: np.ndarray) -> float:
    """Pearson correlation (corr2); NaN if either map is constant."""
    s, g = _as_float(sal).ravel(), _as_float(gt).ravel()
    s, g = s - s.mean(), g - g.mean()
    denom = np.sqrt((s * s).sum() * (g * g).sum())
    return float((s * g).sum() / denom) if denom > 0 else float("nan")


def nss(sal: np.ndarray, fix: np.ndarray) -> float:
    """Mean of the z-scored map (std with the N-1 normaliser) at fixated pixels; NaN without fixations."""
    s = _as_float(sal)
    mask = np.asarray(fix) != 0
    std = s.std(ddof=1)
    if not mask.any() or std == 0 or not np.isfinite(std):
        return float("nan")
    return float(((s - s.mean()) / std)[mask].mean())


def similarity(sal: np.ndarray, gt: np.ndarray) -> float:
    """SIM: each map min-max normalised (unless all zero) then divided by its sum; sum of minima.
    NaN if either map is constant and non-zero or holds NaN (the frame is then dropped from SIM)."""

    def norm(a: np.ndarray) -> np.ndarray | None:
        a = _as_float(a)
        if np.isnan(a).any():
            return None  # a NaN map scores NaN and is dropped, as from every other metric
        if not a.any():
            return a  # similarity.m leaves an all-zero map as it is: SIM 0, not NaN
        rng = a.max() - a.min()
        if not rng > 0:
            return None  # similarity.m min-max-normalises any non-zero map: constant -> 0/0 = NaN
        a = (a - a.min()) / rng
        return a / a.sum()

    s, g = norm(sal), norm(gt)
    if s is None or g is None:
        return float("nan")
    return float(np.minimum(s, g).sum())


def kld(sal: np.ndarray, gt: np.ndarray) -> float:
    """KL(gt || sal) with both maps divided by their sums: sum g log(eps + g / (s + eps))."""
    s, g = _as_float(sal), _as_float(gt)
    s = s / s.sum() if s.sum() > 0 else s
    g = g / g.sum() if g.sum() > 0 else g
    return float((g * np.log(EPS + g / (s + EPS))).sum())


def auc_judd(sal: np.ndarray, fix: np.ndarray, rng: np.random.Generator | None = None, jitter: bool = True) -> float:
    """AUC-Judd (AUC_Judd.m): thresholds at the fixated values; tp = i / Nf (the MATLAB rank rule),
    fp = (#{S >= thr_i} - i) / (Np - Nf); trapezoidal area with (0,0) and (1,1) appended.

    With ``jitter`` a U(0,1) * 1e-7 noise is added before min-max normalisation to break ties."""
    s = _as_float(sal).ravel()
    f = np.asarray(fix).ravel() > 0
    if not f.any():
        return float("nan")
    if jitter:
        rng = rng if rng is not None else np.random.default_rng(0)
        s = s + rng.random(s.shape) / 1e7
    span = s.max() - s.min()
    if not span > 0:  # AUC_Judd.m min-max-normalises: a constant (or NaN) map is 0/0 = NaN, dropped
        return float("nan")
    s = (s - s.min()) / span
    if np.isnan(s).any():
        return float("nan")
    thresholds = np.sort(s[f])[::-1]
    n_fix, n_pix = thresholds.size, s.size
    if n_fix == n_pix:
        return float("nan")
    sorted_all = np.sort(s)
    above = n_pix - np.searchsorted(sorted_all, thresholds, side="left")  # #{S >= thr}
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], i / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


def auc_shuffled(sal: np.ndarray, fix: np.ndarray, other: np.ndarray, rng: np.random.Generator | None = None,
                 n_splits: int = 100, step: float = 0.1) -> float:
    """Shuffled AUC (AUC_shuffled.m): negatives = ``min(Nf, #other)`` pixels drawn without replacement
    from the "other" map, ``n_splits`` times; thresholds 0:step:max in descending order (endpoint
    included, as MATLAB's colon operator); mean AUC over splits."""
    s = _as_float(sal).ravel()
    f = np.asarray(fix).ravel() > 0
    o = np.flatnonzero(np.asarray(other).ravel() > 0)
    if not f.any() or o.size == 0:
        return float("nan")
    span = s.max() - s.min()
    if not span > 0:  # AUC_shuffled.m min-max-normalises first: a constant map is 0/0 = NaN, dropped
        return float("nan")
    s = (s - s.min()) / span
    if np.isnan(s).any():
        return float("nan")
    rng = rng if rng is not None else np.random.default_rng(0)
    pos = s[f]
    n_oth = min(pos.size, o.size)
    picks = np.stack([rng.choice(o, n_oth, replace=False) for _ in range(n_splits)])  # (splits, n_oth)
    neg = s[picks]
    top = np.maximum(pos.max(), neg.max(axis=1))  # per split
    aucs = np.empty(n_splits)
    for k in range(n_splits):
        # MATLAB 0:step:top includes the endpoint when top is a multiple of step (up to rounding)
        n_steps = int(np.floor(top[k] / step + 1e-10))
        thr = (np.arange(n_steps + 1) * step)[::-1]
        tp = (pos[None, :] >= thr[:, None]).mean(axis=1)
        fp = (neg[k][None, :] >= thr[:, None]).mean(axis=1)
        aucs[k] = np.trapezoid(np.concatenate([[0.0], tp, [1.0]]), np.concatenate([[0.0], fp, [1.0]]))
    return float(aucs.mean())


METRICS = ("CC", "NSS", "AUC_J", "sAUC", "SIM", "KLD")
