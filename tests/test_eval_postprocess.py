"""Prediction post-processing of the STAViS protocol (``stanet_rt.eval.postprocess``,
metrics-and-peers.md 1.1-1.2): fspecial's 13 x 13 Gaussian, channel 1 / clip / max / min-max / blur
with symmetric padding, and MATLAB's bicubic ``imresize`` (Keys a = -0.5, antialiasing only when
shrinking, u = x / scale + 0.5 (1 - 1 / scale), symmetric edges) checked against values derived by hand
and a per-pixel loop reference written here from the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from stanet_rt.eval.postprocess import gaussian_kernel, imresize, postprocess_map


# -- an independent, per-output-pixel reference of MATLAB's imresize --------------------------------------
def keys_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def mirror(i: int, n: int) -> int:
    """1-based index -> 1-based index under symmetric padding (..., 2, 1 | 1, 2, ..., n | n, n-1, ...)."""
    r = (i - 1) % (2 * n)
    return r + 1 if r < n else 2 * n - r


def ref_resize_1d(x: np.ndarray, out_len: int, antialias: bool = True) -> np.ndarray:
    n = len(x)
    scale = out_len / n
    shrink_aa = antialias and scale < 1
    width = 4.0 / scale if shrink_aa else 4.0
    out = np.empty(out_len)
    for j in range(1, out_len + 1):
        u = j / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        total = acc = 0.0
        for k in range(math.ceil(width) + 2):
            idx = left + k
            w = scale * keys_cubic(scale * (u - idx)) if shrink_aa else keys_cubic(u - idx)
            total += w
            acc += w * x[mirror(idx, n) - 1]
        out[j - 1] = acc / total
    return out


def ref_resize(a: np.ndarray, size: tuple[int, int], antialias: bool = True) -> np.ndarray:
    rows = np.stack([ref_resize_1d(col, size[0], antialias) for col in a.T], axis=1)
    return np.stack([ref_resize_1d(row, size[1], antialias) for row in rows], axis=0)


def test_reference_reproduces_octave_published_values() -> None:
    # Octave: imresize(reshape(0:15, 4, 4)', 0.5, 'bicubic', 'AntiAliasing', false)
    img = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_allclose(ref_resize(img, (2, 2), antialias=False),
                               [[2.1875, 4.3125], [10.6875, 12.8125]], atol=1e-12)


# -- imresize --------------------------------------------------------------------------------------------
def test_imresize_2x_upscale_hand_values() -> None:
    # [0, 1] -> 4 samples at u = .75, 1.25, 1.75, 2.25 with the Keys weights c(.25) = .8671875,
    # c(.75) = .2265625, c(1.25) = -.0703125, c(1.75) = -.0234375 and the edge mirrored:
    # out(1) = 1.09375 a - .09375 b, out(2) = .796875 a + .203125 b (then symmetric)
    np.testing.assert_allclose(imresize(np.array([[0.0, 1.0]]), (1, 4)),
                               [[-0.09375, 0.203125, 0.796875, 1.09375]], atol=1e-15)
    np.testing.assert_allclose(imresize(np.array([[0.0], [1.0]]), (4, 1)).ravel(),
                               [-0.09375, 0.203125, 0.796875, 1.09375], atol=1e-15)


@pytest.mark.parametrize("shape,size", [
    ((3, 4), (6, 8)),     # 2x up
    ((5, 7), (11, 13)),   # non-integer up
    ((12, 10), (5, 4)),   # shrink: antialiased (kernel widened by 1 / scale)
    ((6, 9), (10, 4)),    # up in rows, down in columns
    ((9, 16), (18, 32)),  # the eval tests' prediction -> ground-truth sizes
])
def test_imresize_matches_the_loop_reference(shape, size) -> None:
    a = np.random.default_rng(sum(shape)).random(shape)
    np.testing.assert_allclose(imresize(a, size), ref_resize(a, size), atol=1e-12)


def test_imresize_constant_identity_and_ramps() -> None:
    assert np.allclose(imresize(np.full((5, 7), 3.0), (11, 13)), 3.0)
    assert np.allclose(imresize(np.full((20, 30), -2.0), (7, 9)), -2.0)
    a = np.random.default_rng(0).random((6, 5))
    np.testing.assert_array_equal(imresize(a, (6, 5)), a)
    # Keys' cubic reproduces a line away from the mirrored edges: 2x up samples f(u), u = x / 2 + .25
    ramp = np.tile(np.arange(1, 11, dtype=float), (3, 1))
    u = np.arange(1, 21) / 2 + 0.25
    np.testing.assert_allclose(imresize(ramp, (3, 20))[1, 4:16], u[4:16], atol=1e-12)
    # 2x down: u = 2x - .5 is half-way between samples, the widened kernel is symmetric about it
    long_ramp = np.tile(np.arange(1, 41, dtype=float), (2, 1))
    np.testing.assert_allclose(imresize(long_ramp, (2, 20))[0, 3:17], (2 * np.arange(1, 21) - 0.5)[3:17],
                               atol=1e-12)


def test_imresize_antialiasing_only_when_shrinking() -> None:
    # 0/1 stripes shrunk 3x: u = 3x - 1 hits a sample exactly, so plain Keys weights (1 at distance 0)
    # would alias to 1, 0, 1, 0, ...; the kernel widened by 1 / scale averages them to about 0.5
    stripes = np.tile([0.0, 1.0], 18)[None, :].repeat(2, axis=0)
    shrunk = imresize(stripes, (2, 12))
    assert np.abs(shrunk[0, 1:-1] - 0.5).max() < 0.02
    np.testing.assert_allclose(ref_resize(stripes, (2, 12), antialias=False)[0], np.tile([1.0, 0.0], 6),
                               atol=1e-12)
    grown = imresize(stripes, (2, 64))  # enlarging: the plain kernel, no widening
    np.testing.assert_allclose(grown, ref_resize(stripes, (2, 64), antialias=False), atol=1e-12)


# -- Gaussian and postprocess -----------------------------------------------------------------------------
def test_gaussian_kernel_is_fspecial() -> None:
    k = gaussian_kernel(2.0)
    x = np.arange(-6, 7, dtype=float)
    ref = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / 8.0)
    np.testing.assert_allclose(k, ref / ref.sum(), rtol=1e-13)
    assert k.shape == (13, 13) and k.sum() == pytest.approx(1.0, abs=1e-15)
    assert gaussian_kernel(1.0).shape == (7, 7) and gaussian_kernel(0.5).shape == (5, 5)  # 2 ceil(3 s) + 1


def _symmetric_blur(a: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    half = int(math.ceil(3 * sigma))
    x = np.arange(-half, half + 1, dtype=float)
    k = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    k /= k.sum()
    windows = sliding_window_view(np.pad(a, half, mode="symmetric"), k.shape)
    return np.einsum("ijkl,kl->ij", windows, k)


def test_postprocess_equals_normalise_then_symmetric_blur() -> None:
    p = np.random.default_rng(3).random((10, 12)) * 0.7 + 0.1
    n = (p - p.min()) / (p.max() - p.min())
    np.testing.assert_allclose(postprocess_map(p), _symmetric_blur(n), atol=1e-12)
    impulse = np.zeros((20, 20))
    impulse[0, 0] = 1.0  # the corner: MATLAB's 'symmetric' padding repeats the edge pixel
    k = gaussian_kernel(2.0)
    assert postprocess_map(impulse)[0, 0] == pytest.approx(k[5:7, 5:7].sum(), abs=1e-15)


def test_postprocess_steps() -> None:
    p = np.random.default_rng(4).random((8, 9))
    # 255 x, / max, min-max: invariant to a positive scale, and values above 1 / below 0 are clipped
    np.testing.assert_allclose(postprocess_map(0.5 * p), postprocess_map(p), atol=1e-12)
    clipped = p.copy()
    clipped[0, 0], clipped[1, 1] = 3.0, -1.0
    capped = clipped.copy()
    capped[0, 0], capped[1, 1] = 1.0, 0.0
    np.testing.assert_allclose(postprocess_map(clipped), postprocess_map(capped), atol=1e-12)
    # channel 1 of a colour prediction only
    rgb = np.zeros((9, 9, 3))
    rgb[4, 4, 0] = 1.0
    rgb[0, 0, 1] = rgb[8, 8, 2] = 1.0
    np.testing.assert_allclose(postprocess_map(rgb), postprocess_map(rgb[..., 0]), atol=0)
    assert np.unravel_index(np.argmax(postprocess_map(rgb)), (9, 9)) == (4, 4)


def test_postprocess_constant_and_black_maps() -> None:
    out = postprocess_map(np.full((8, 8), 0.3))
    assert out.shape == (8, 8) and np.allclose(out, 0.5)  # normalizeImage1: max == min -> 0.5
    assert np.isnan(postprocess_map(np.zeros((4, 4)))).all()  # / max(0) -> NaN: every metric drops the frame


def test_postprocess_then_resize_is_the_protocols_order() -> None:
    # blur sigma 2 at the prediction's own size, then resize: a 112 -> 224 upscale doubles the blur
    p = np.zeros((28, 28))
    p[14, 14] = 1.0
    small = imresize(postprocess_map(p), (56, 56))
    direct = postprocess_map(imresize(p, (56, 56)))
    row_small, row_direct = small[28], direct[28]
    width = lambda r: np.sum(r > r.max() / 2)  # noqa: E731
    assert width(row_small) > width(row_direct)
