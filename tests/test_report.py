"""stanet_rt.training.report.source_share: how much of a map falls on the true source rather than its silent twin."""

from __future__ import annotations

import numpy as np
import pytest
from stanet_rt.training.report import source_share, twin_pulses


def _meta(twin_pulsing: bool = True) -> dict:
    src = {"boxes": [[0, 0, 16, 16]] * 2, "role": "source"}
    twin = {"boxes": [[32, 32, 48, 48]] * 2, "same_class": True, "pulsing": twin_pulsing}
    other = {"boxes": [[0, 40, 10, 50]] * 2, "same_class": False, "pulsing": True}
    return {"size": 64, "source": src, "distractors": [other, twin], "has_same_class_distractor": True}


def test_source_share_of_hand_made_maps() -> None:
    meta = _meta()
    only_source = np.zeros((2, 32, 32), np.float32)  # maps at half the canvas size: boxes scale by 0.5
    only_source[:, 0:8, 0:8] = 1.0
    assert source_share(only_source, meta, [0, 1]) == [1.0, 1.0]
    only_twin = np.zeros((2, 32, 32), np.float32)
    only_twin[:, 16:24, 16:24] = 1.0
    assert source_share(only_twin, meta, [0, 1]) == [0.0, 0.0]
    flat = np.full((2, 32, 32), 0.3, np.float32)
    assert source_share(flat, meta, [0, 1]) == pytest.approx([0.5, 0.5])
    three_to_one = np.zeros((2, 32, 32), np.float32)
    three_to_one[:, 0:8, 0:8], three_to_one[:, 16:24, 16:24] = 0.75, 0.25
    assert source_share(three_to_one, meta, [1]) == pytest.approx([0.75])


def test_source_share_skips_empty_frames_and_clips_without_a_twin() -> None:
    meta = _meta()
    maps = np.zeros((2, 64, 64), np.float32)
    maps[1, 0:16, 0:16] = 1.0
    assert source_share(maps, meta, [0, 1]) == [1.0]  # frame 0 has nothing on either box
    no_twin = {**meta, "distractors": [d for d in meta["distractors"] if not d["same_class"]]}
    assert source_share(maps, no_twin, [0, 1]) == []
    assert twin_pulses(meta) and not twin_pulses(_meta(twin_pulsing=False)) and not twin_pulses(no_twin)


def test_train_all_on_an_ave_folder_with_a_foreign_gt_skips_the_report(tmp_path, monkeypatch) -> None:
    """Issue 15: an AVE-layout folder whose ``gt/`` is of another format trains to the end; the report,
    which can only score a `stanet-rt synth` set, is skipped with a line instead of failing the run."""
    import h5py
    from stanet_rt.training import run_all as run_all_module

    data = tmp_path / "ave"
    (data / "gt").mkdir(parents=True)
    (data / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n")
    with h5py.File(data / "gt" / "clip.h5", "w") as f:
        f["saliency"] = np.zeros((2, 8, 8), np.float32)  # not the synthetic set's density / fixations
    ran: list[str] = []
    monkeypatch.setattr(run_all_module, "run_stage", lambda ctx, stage: ran.append(stage) or 0.0)
    monkeypatch.setattr(run_all_module, "run_report", lambda *a, **k: pytest.fail("report on a foreign gt/"))
    logs: list[str] = []
    ctx = run_all_module.make_context("synth-tiny", tmp_path / "run", data=data, progress=False, log=logs.append)
    times = run_all_module.run_all(ctx)
    assert ran == list(run_all_module.STAGE_ORDER) and "report" not in times
    assert any(line.startswith("report: skipped") for line in logs)
    assert not run_all_module.is_synthetic_set(data)
    (data / "synth.json").write_text("{}")
    assert run_all_module.is_synthetic_set(data)
