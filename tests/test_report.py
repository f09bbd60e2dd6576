"""training.report and the end of `train all`: source share, training-free baselines, issue-15 checks, the report on
the unseen configuration, and an AVE folder whose gt/ the report cannot score."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_training_free_baselines_find_the_colourful_and_the_moving() -> None:
    from stanet_rt.training.report import motion_baseline, saturation_baseline

    frames = np.full((3, 32, 32, 3), 120, np.uint8)  # grey
    frames[:, 2:8, 2:8] = (250, 10, 10)  # a still, saturated square
    for t in range(3):  # a grey square that moves
        frames[t, 20:26, 10 + 3 * t:16 + 3 * t] = 200
    sat, mot = saturation_baseline(frames), motion_baseline(frames)
    assert sat.shape == mot.shape == (3, 32, 32) and sat.max() == pytest.approx(1.0)
    assert np.unravel_index(sat[1].argmax(), (32, 32))[0] < 10  # the red square
    assert np.unravel_index(mot[1].argmax(), (32, 32))[0] > 16  # the moving one
    assert mot[:, :10, :10].max() < 0.05


def test_issue_15_checks_margins_source_share_and_teachers(tmp_path) -> None:
    from stanet_rt.training.report import acceptance, baseline_margins, teacher_accuracy

    row = lambda cc, share=None: {"CC": cc, **({} if share is None else {"source_share": share})}  # noqa: E731
    scores = {
        "all": {"centre bias": row(0.2), "colour-saturation baseline": row(0.5), "motion baseline": row(0.3),
                "centre bias (pseudo-GT frames)": row(0.2), "colour-saturation baseline (pseudo-GT frames)": row(0.4),
                "motion baseline (pseudo-GT frames)": row(0.3), "pseudo-GT": row(0.45), "STA": row(0.65)},
        "distractor_events": {"STA": row(0.6, 0.7), "STA (audio off)": row(0.5, 0.55)},
    }
    baseline_margins(scores)
    assert scores["all"]["pseudo-GT"]["CC - colour-saturation baseline"] == pytest.approx(0.05)  # its frames
    assert scores["all"]["STA"]["CC - colour-saturation baseline"] == pytest.approx(0.15)
    log = tmp_path / "scam-coarse" / "s" / "log.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text('{"epoch": 0, "accuracy": 0.4, "val_accuracy": 0.3}\n'
                   '{"epoch": 1, "accuracy": 0.9, "val_accuracy": 0.8}\n')
    teachers = teacher_accuracy(tmp_path)
    assert teachers == {"scam-coarse/s": {"val_accuracy": 0.8, "train_accuracy": 0.9}}
    checks = acceptance(scores, teachers, chance=0.25)
    assert not checks["pseudo-GT CC - colour-saturation baseline CC"]["pass"]
    assert checks["pseudo-GT CC - motion baseline CC"]["pass"] and checks["STA CC - motion baseline CC"]["pass"]
    assert checks["STA source share (twin clips, event frames)"] == {"value": 0.7, "pass": True}
    gain = checks["STA source share audio on - off (twin clips, event frames)"]
    assert gain["value"] == pytest.approx(0.15) and gain["pass"]
    assert checks["scam-coarse/s validation accuracy (chance 0.25)"]["pass"]
    assert not acceptance(scores, {"scam-coarse/s": {"val_accuracy": 0.45}}, 0.25)[
        "scam-coarse/s validation accuracy (chance 0.25)"]["pass"]


def test_run_unseen_scores_the_trained_models_on_the_unseen_configuration(tmp_path, monkeypatch) -> None:
    """Issue 15: ``train all`` also reports on a generator configuration training never saw: its set is
    generated apart, the trained stages are copied (not the distillation's teacher maps) so that every
    stage finds its model complete, and the report is written under its own name."""
    from stanet_rt.training import report as report_module
    from stanet_rt.training import run_all as run_all_module
    from stanet_rt.training.presets import get_preset
    from stanet_rt.training.stages.common import StageContext

    out = tmp_path / "run"
    (out / "students").mkdir(parents=True)
    (out / "students" / "sta.pt").write_bytes(b"model")
    (out / "distill" / "teacher_maps").mkdir(parents=True)
    (out / "distill" / "lite").mkdir()
    preset = get_preset("synth-tiny")
    ctx = StageContext(preset, tmp_path / "train-data", out, progress=False, log_fn=lambda _m: None)
    seen: list[tuple[str, Path]] = []
    monkeypatch.setattr(run_all_module, "run_stage", lambda sub, stage: seen.append((stage, sub.data)) or 0.0)
    written = {}
    monkeypatch.setattr(report_module, "write_report", lambda sub, results, **kw: written.update(kw, out=sub.out))
    from stanet_rt.errors import InputError

    with pytest.raises(InputError, match="not trained to the end"):  # else a stage would train on the unseen set
        run_all_module.run_unseen(ctx)
    assert not seen
    monkeypatch.setattr(run_all_module, "is_complete", lambda run_dir: True)
    run_all_module.run_unseen(ctx)
    data = out / "unseen" / "synth"
    assert json.loads((data / "synth.json").read_text())["preset"] == preset.unseen.preset == "tiny-unseen"
    assert [s for s, _ in seen] == list(run_all_module.STAGE_ORDER) and {d for _, d in seen} == {data}
    assert (out / "unseen" / "students" / "sta.pt").read_bytes() == b"model"
    assert (out / "unseen" / "distill" / "lite").is_dir() and not (out / "unseen" / "distill" / "teacher_maps").exists()
    assert written["name"] == "synth_tiny_training_unseen" and written["teachers_from"] == out
    assert written["out"] == out / "unseen"
