"""Readers of the STAViS evaluation layout and of predictions (``stanet_rt.eval.datasets`` and
``stanet_rt.eval.predictions``) on a generated miniature: fold lists (per split; DIEM's single list),
``fixMap_%05d.mat`` written as the datasets do (v5 uint8 / logical / double, and v7.3 HDF5), density
JPEGs, the shuffled-AUC union, prediction folders with ``*_<number>.jpg|png`` names and our ``.h5`` map
files, and damaged inputs that must become clear InputErrors naming the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
from _eval_layout import (
    GT_SIZE,
    fixation_map,
    make_video,
    write_fold_list,
    write_prediction_h5,
    write_prediction_images,
    write_v73_mat,
)
from PIL import Image

from stanet_rt.errors import InputError
from stanet_rt.eval.datasets import (
    DATASETS,
    VideoEntry,
    VideoGroundTruth,
    fold_list_path,
    read_fold_list,
    read_gray,
    read_mat_variable,
)
from stanet_rt.eval.predictions import h5_maps, image_folder, video_predictions


# -- fold lists -------------------------------------------------------------------------------------------
def test_the_six_protocol_datasets_are_known() -> None:
    assert set(DATASETS) == {"AVAD", "DIEM", "SumMe", "ETMD_av", "Coutrot_db1", "Coutrot_db2"}


def test_fold_list_paths_per_split_and_diems_single_list(tmp_path) -> None:
    for split in (1, 2, 3):
        expected = tmp_path / "fold_lists" / f"AVAD_list_test_{split}_fps.txt"
        assert fold_list_path(tmp_path, "AVAD", split) == expected
    single = write_fold_list(tmp_path, "DIEM", None, [("v", 3)])
    assert {fold_list_path(tmp_path, "DIEM", s) for s in (1, 2, 3)} == {single}
    assert fold_list_path(tmp_path, "SumMe", 2).name == "SumMe_list_test_2_fps.txt"


def test_read_fold_list(tmp_path) -> None:
    path = tmp_path / "AVAD_list_test_1_fps.txt"
    path.write_text("V3_Speech3 120 29.97\n\nV39_Guitar4 80 25\n")
    assert read_fold_list(path) == [VideoEntry("V3_Speech3", 120, 29.97), VideoEntry("V39_Guitar4", 80, 25.0)]


def test_read_fold_list_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(InputError, match="AVAD_list_test_9_fps.txt"):
        read_fold_list(tmp_path / "AVAD_list_test_9_fps.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("v1 10 25\nv2\n")
    with pytest.raises(InputError, match=r"bad\.txt:2"):
        read_fold_list(bad)


def test_read_fold_list_non_numeric_count_is_an_input_error(tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("v1 ten 25\n")
    with pytest.raises(InputError, match=r"bad\.txt:1"):
        read_fold_list(bad)


# -- .mat fixation maps --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, bool, np.float64])
def test_read_v5_mat_as_the_datasets_store_it(tmp_path, dtype) -> None:
    fix = fixation_map((5, 7), [(0, 6), (4, 0), (2, 3)]).astype(dtype)
    scipy.io.savemat(tmp_path / "fixMap_00001.mat", {"eyeMap": fix})
    out = read_mat_variable(tmp_path / "fixMap_00001.mat")
    assert out.shape == (5, 7) and out.dtype == np.float64
    np.testing.assert_array_equal(out, fix.astype(np.float64))


def test_read_v73_mat_keeps_the_orientation(tmp_path) -> None:
    fix = fixation_map((5, 7), [(0, 6), (4, 0), (2, 3)])
    path = write_v73_mat(tmp_path / "fixMap_00001.mat", "eyeMap", fix)
    with pytest.raises(NotImplementedError):  # it really is a v7.3 file: scipy refuses it
        scipy.io.loadmat(path)
    np.testing.assert_array_equal(read_mat_variable(path), fix)


def test_read_v5_mat_without_the_variable(tmp_path) -> None:
    scipy.io.savemat(tmp_path / "f.mat", {"fixations": np.eye(3)})
    with pytest.raises(InputError, match=r"f\.mat.*eyeMap"):
        read_mat_variable(tmp_path / "f.mat")


def test_read_v73_mat_without_the_variable(tmp_path) -> None:
    path = write_v73_mat(tmp_path / "f.mat", "fixations", np.eye(3))
    with pytest.raises(InputError, match=r"f\.mat"):
        read_mat_variable(path)


def test_read_unreadable_mat_is_an_input_error(tmp_path) -> None:
    path = tmp_path / "noise.mat"
    path.write_bytes(np.random.default_rng(0).bytes(400))
    with pytest.raises(InputError, match=r"noise\.mat"):
        read_mat_variable(path)


@pytest.mark.parametrize("content", [b"", b"garbage"])
def test_read_truncated_mat_is_an_input_error(tmp_path, content) -> None:
    path = tmp_path / "cut.mat"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"cut\.mat"):
        read_mat_variable(path)


# -- images (im2double, channel 1) ---------------------------------------------------------------------------
def test_read_gray_is_im2double_channel_1(tmp_path) -> None:
    grey = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_gray(tmp_path / "g.png"), grey / 255.0, atol=1e-15)
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1] = grey, 255 - grey
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_allclose(read_gray(tmp_path / "c.png"), grey / 255.0, atol=1e-15)
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=100)
    assert np.abs(read_gray(tmp_path / "g.jpg") - grey / 255.0).max() < 0.03  # lossy JPEG


def test_read_gray_16_bit_png(tmp_path) -> None:
    a = (np.arange(12).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "p16.png")
    np.testing.assert_allclose(read_gray(tmp_path / "p16.png"), a / 65535.0, atol=1e-12)


# -- ground truth of one video ---------------------------------------------------------------------------
def test_video_ground_truth_reads_the_layout(tmp_path) -> None:
    fixes, dens = make_video(tmp_path, "AVAD", "V1", 4, seed=0)
    gt = VideoGroundTruth(tmp_path, "AVAD", VideoEntry("V1", 4, 25.0))
    assert gt.fixation_path(3) == tmp_path / "annotations" / "AVAD" / "V1" / "fixMap_00003.mat"
    assert gt.density_path(3) == tmp_path / "annotations" / "AVAD" / "V1" / "maps" / "eyeMap_00003.jpg"
    np.testing.assert_array_equal(gt.fixations(2), fixes[1])
    d = gt.density(2)
    assert d.shape == GT_SIZE and np.abs(d - dens[1]).max() < 0.05  # JPEG of the density, im2double
    # createShuffmap1: the union of every frame of the video, current frame included
    np.testing.assert_array_equal(gt.shuffle_union(), np.any(np.stack(fixes) > 0, axis=0))


def test_video_ground_truth_missing_folder(tmp_path) -> None:
    with pytest.raises(InputError, match="nope"):
        VideoGroundTruth(tmp_path, "AVAD", VideoEntry("nope", 3, 25.0))


def test_shuffle_union_skips_missing_frames_and_reads_v73(tmp_path) -> None:
    fixes, _ = make_video(tmp_path, "DIEM", "clip", 3, seed=1)
    folder = tmp_path / "annotations" / "DIEM" / "clip"
    (folder / "fixMap_00002.mat").unlink()
    (folder / "fixMap_00003.mat").unlink()
    write_v73_mat(folder / "fixMap_00003.mat", "eyeMap", fixes[2])
    gt = VideoGroundTruth(tmp_path, "DIEM", VideoEntry("clip", 3, 25.0))
    np.testing.assert_array_equal(gt.shuffle_union(), (fixes[0] > 0) | (fixes[2] > 0))


# -- predictions --------------------------------------------------------------------------------------------
def test_image_folder_numbers_after_the_last_underscore(tmp_path) -> None:
    folder = tmp_path / "v"
    write_prediction_images(folder, [np.full((3, 4), 0.2)], start=9, pattern="pred_sal_{:06d}.jpg")
    write_prediction_images(folder, [np.full((3, 4), 0.6)], start=12, pattern="frame_{}.png")
    write_prediction_images(folder, [np.full((3, 4), 0.4)], start=3, pattern="my_run_2_{:03d}.PNG")
    (folder / "notes.txt").write_text("not a map")
    write_prediction_images(folder, [np.zeros((3, 4))], start=5, pattern="img{}.png")  # no "_<number>"
    frames = image_folder(folder)
    assert sorted(frames) == [3, 9, 12]
    assert frames[12]().shape == (3, 4) and np.allclose(frames[12](), 153 / 255)
    assert np.allclose(frames[3](), 102 / 255)


def test_h5_map_file_row_i_is_frame_i_plus_1(tmp_path) -> None:
    maps = np.stack([np.full((4, 6), v) for v in (0.25, 0.5, 0.75)])
    frames = h5_maps(write_prediction_h5(tmp_path / "v.h5", maps))
    assert sorted(frames) == [1, 2, 3]
    np.testing.assert_allclose(frames[2](), 0.5)
    np.testing.assert_allclose(frames[3](), 0.75)


def test_h5_map_file_errors(tmp_path) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh["saliency"] = np.zeros((2, 3, 3))
    with pytest.raises(InputError, match=r"other\.h5.*maps"):
        h5_maps(tmp_path / "other.h5")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match=r"broken\.h5"):
        h5_maps(tmp_path / "broken.h5")


def test_video_predictions_search_order(tmp_path) -> None:
    root = tmp_path / "pred"
    assert video_predictions(root, "AVAD", "v1") == {}
    write_prediction_h5(root / "v1.h5", np.full((2, 3, 3), 0.1))
    assert sorted(video_predictions(root, "AVAD", "v1")) == [1, 2]
    write_prediction_h5(root / "AVAD" / "v1.h5", np.full((3, 3, 3), 0.1))
    assert sorted(video_predictions(root, "AVAD", "v1")) == [1, 2, 3]  # <DB>/<video>.h5 before <video>.h5
    write_prediction_images(root / "v1", [np.ones((3, 3))], start=7)
    assert sorted(video_predictions(root, "AVAD", "v1")) == [7]  # folders before map files
    write_prediction_images(root / "AVAD" / "v1", [np.ones((3, 3))], start=8)
    assert sorted(video_predictions(root, "AVAD", "v1")) == [8]  # <DB>/<video>/ first


# -- damaged inputs become InputErrors naming the file ------------------------------------------------------
def test_read_gray_unreadable_image_is_an_input_error(tmp_path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"bad\.jpg"):
        read_gray(tmp_path / "bad.jpg")
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.png"):
        read_gray(tmp_path / "cut.png")


def test_shuffle_union_collects_unreadable_fixation_maps(tmp_path) -> None:
    fixes, _ = make_video(tmp_path, "AVAD", "v", 3, seed=2)
    bad = tmp_path / "annotations" / "AVAD" / "v" / "fixMap_00002.mat"
    bad.write_bytes(b"")
    gt = VideoGroundTruth(tmp_path, "AVAD", VideoEntry("v", 3, 25.0))
    with pytest.raises(InputError, match=r"fixMap_00002\.mat"):
        gt.shuffle_union()  # strict without a collector
    skipped: list = []
    np.testing.assert_array_equal(gt.shuffle_union(skipped), (fixes[0] > 0) | (fixes[2] > 0))
    assert skipped == [bad]
