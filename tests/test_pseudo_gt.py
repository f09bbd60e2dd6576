"""Pseudo-GT maths (training.pseudo_gt) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from stanet_rt.training.data.pseudo_gt import pseudo_gt_path, read_pseudo_gt
from stanet_rt.training.pseudo_gt import (
    FUSION_EPS,
    Box,
    BranchMaps,
    ProbabilityTable,
    box_from_map,
    confidence_fusion,
    crop,
    fuse_video,
    normalize,
    read_probability_table,
    recover,
    resize_bilinear,
    temporal_smooth,
    threshold_map,
    write_video_pseudo_gt,
)


def test_normalize_range_and_constant():
    m = np.array([[2.0, 4.0], [6.0, 10.0]])
    np.testing.assert_allclose(normalize(m), [[0, 0.25], [0.5, 1.0]])
    const = np.full((2, 2), 3.0)
    np.testing.assert_array_equal(normalize(const), const)  # Matlab leaves a constant map unchanged


def test_confidence_fusion_hand_case():
    a = np.array([[0.0, 1.0], [0.0, 0.0]])
    b = np.array([[0.0, 0.0], [0.0, 2.0]])  # normalises to [[0,0],[0,1]]
    fused = confidence_fusion([a, b], [0.9, 0.3])
    raw = (np.array([[0, 0.9], [0, 0.3]]) + FUSION_EPS) / (1.2 + FUSION_EPS)
    np.testing.assert_allclose(fused, normalize(raw), atol=1e-6)
    assert fused[0, 1] == pytest.approx(1.0) and fused[1, 1] == pytest.approx(1 / 3, abs=1e-4)


def test_confidence_fusion_skips_missing_maps():
    a = np.array([[0.0, 5.0], [1.0, 0.0]])
    only_a = confidence_fusion([a, None, None], [0.5, 0.99, 0.99])
    np.testing.assert_allclose(only_a, normalize(a), atol=1e-6)
    assert confidence_fusion([None, None], [0.5, 0.5]) is None
    with pytest.raises(ValueError):
        confidence_fusion([a], [0.1, 0.2])


def test_box_from_map_threshold_two_means():
    f = np.zeros((10, 10))
    f[2:5, 6:9] = 1.0  # 9 pixels of 1, mean 0.09 -> threshold 0.18
    f[8, 0] = 0.15  # below 2 x mean: outside the box
    box = box_from_map(f)
    assert box == Box(2, 4, 6, 8)
    assert (box.height, box.width) == (3, 3)
    assert box_from_map(np.ones((4, 4))) is None  # uniform: no pixel passes
    np.testing.assert_array_equal(crop(f, box), np.ones((3, 3)))
    assert Box.from_array(box.as_array()) == box


def test_recover_pastes_resized_cam_into_zero_canvas():
    cam = np.ones((4, 4), dtype=np.float32)
    box = Box(2, 5, 1, 6)  # 4 rows x 6 cols
    canvas = recover(cam, box, 8)
    assert canvas.shape == (8, 8)
    assert canvas[2:6, 1:7].min() == pytest.approx(1.0)
    canvas[2:6, 1:7] = 0
    assert canvas.max() == 0.0
    with pytest.raises(ValueError):
        recover(cam, Box(0, 8, 0, 3), 8)


def test_resize_bilinear_matches_half_pixel_convention():
    img = np.array([[0.0, 1.0]])
    up = resize_bilinear(img, (1, 4))
    np.testing.assert_allclose(up[0], [0.0, 0.25, 0.75, 1.0])
    rgb = np.stack([img, 2 * img, 3 * img], axis=-1)
    assert resize_bilinear(rgb, (2, 4)).shape == (2, 4, 3)


def test_threshold_three_means():
    m = np.array([[1.0, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # mean 0.15 -> cut below 0.45
    np.testing.assert_allclose(threshold_map(m), [[1.0, 0, 0, 0], [0, 0, 0, 0]])


def _frames(values):
    """Per-frame 1 x 3 maps: a peak at column v (or None)."""
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        m = np.zeros((1, 3), dtype=np.float32)
        m[0, v] = 1.0
        out.append(m)
    return out


def test_temporal_smooth_is_centred_not_recursive():
    # frame 2 alone peaks at column 2; its 4 neighbours at column 0. A centred mean keeps frame 2's own
    # peak in its output (1/5 of the mass); the original's recursion ignored f_t itself.
    maps = _frames([0, 0, 2, 0, 0])
    out = temporal_smooth(maps, radius=2, factor=0.0)
    np.testing.assert_allclose(out[2], normalize(np.array([[4 / 5, 0, 1 / 5]])), atol=1e-6)
    # symmetry: a single peak at frame 2 spreads equally to frames 0..4 within radius
    single = temporal_smooth(_frames([1, 1, 1, 1, 1]), radius=2, factor=0.0)
    for m in single:
        np.testing.assert_allclose(m, [[0, 1, 0]])


def test_temporal_smooth_edges_and_missing_frames():
    maps = _frames([0, 2, None, 2, 1])
    out = temporal_smooth(maps, radius=2, factor=0.0)
    assert out[2] is None  # the frame's own CAM is missing: no output (selection kept)
    # frame 0 averages frames 0, 1 (2 is missing): [1, 0, 1] / 2 -> N -> [1, 0, 1]
    np.testing.assert_allclose(out[0], [[1, 0, 1]])
    # frame 4 averages frames 3, 4 (2 missing, 5/6 outside): [0, .5, .5] -> [0, 1, 1]
    np.testing.assert_allclose(out[4], [[0, 1, 1]])
    filled = temporal_smooth(maps, radius=1, factor=0.0, require_centre=False)
    np.testing.assert_allclose(filled[2], [[0, 0, 1]])  # neighbours 1 and 3 only


def test_temporal_smooth_applies_threshold():
    m = np.zeros((4, 4), dtype=np.float32)
    m[0, 0], m[3, 3] = 1.0, 0.3  # mean 0.08125: 3 x mean = 0.24 keeps 0.3, a 0.2 would go
    m[1, 1] = 0.2
    (out,) = temporal_smooth([m], radius=2)
    assert out[0, 0] == 1.0 and out[3, 3] == pytest.approx(0.3) and out[1, 1] == 0.0


def test_fuse_video_and_written_pngs(tmp_path):
    t, s = 3, 8
    maps_a = np.zeros((t, s, s), np.float32)
    maps_a[:, 2, 3] = 1.0
    maps_b = np.zeros((t, s, s), np.float32)
    maps_b[:, 6, 6] = 1.0
    a = BranchMaps(maps_a, np.array([0.8, 0.8, 0.8]), np.array([True, True, False]))
    b = BranchMaps(maps_b, np.array([0.4, 0.2, 0.2]), np.array([True, False, False]))
    fused, used = fuse_video({"S": a, "SA": b})
    assert fused[2] is None and used[2] == {}
    assert used[0] == {"S": 0.8, "SA": 0.4}
    assert fused[0][2, 3] == pytest.approx(1.0) and fused[0][6, 6] == pytest.approx(0.5, abs=1e-3)
    assert fuse_video({"S": a, "SA": b}, min_maps=2)[0][1] is None

    table = ProbabilityTable(["S", "SA"])
    n = write_video_pseudo_gt(tmp_path / "pgt", "vid0", {"S": a, "SA": b}, table)
    assert n == 2
    png = read_pseudo_gt(pseudo_gt_path(tmp_path / "pgt", "vid0", 0))
    assert png.shape == (s, s) and png[2, 3] == 1.0 and png[6, 6] == pytest.approx(0.5, abs=1.5 / 255)
    assert not pseudo_gt_path(tmp_path / "pgt", "vid0", 2).exists()
    rows = read_probability_table(table.write(tmp_path / "probabilities.csv"))
    assert [(r["frame"], r["n_maps"], r["p_S"], r["p_SA"]) for r in rows] == [
        ("0", "2", "0.800000", "0.400000"),
        ("1", "1", "0.800000", ""),
    ]


def test_branch_smoothed_keeps_validity():
    maps = np.zeros((3, 2, 2), np.float32)
    maps[:, 0, 0] = 1.0
    br = BranchMaps(maps, np.ones(3), np.array([True, False, True])).smoothed()
    assert list(br.valid) == [True, False, True]
    assert br.maps[0][0, 0] == 1.0
