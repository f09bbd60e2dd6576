"""Training stages end to end (training.run_all on the synth-tiny preset), presets, CAM files, CLI."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from stanet_rt.training.cams import CamFile, read_boxes, to_uint8, write_boxes, write_cams
from stanet_rt.training.data.pseudo_gt import available_frames, pseudo_gt_path, read_pseudo_gt
from stanet_rt.training.presets import PAPER_PLUS, get_preset, list_presets, plus_branch
from stanet_rt.training.pseudo_gt import BranchMaps, fuse_video, read_probability_table
from stanet_rt.training.stages.pseudo_gt import open_branch_files, video_branches, video_refiner
from typer.testing import CliRunner

from stanet_rt.checkpoint import load_checkpoint, read_checkpoint
from stanet_rt.cli import app


def test_paper_preset_is_appendix_a():
    p = get_preset("paper")
    s, sa, st = p.coarse["s"], p.coarse["sa"], p.coarse["st"]
    assert (s.config.input_size, s.settings.batch_size, s.settings.lr, s.settings.decay_points) == (
        256,
        8,
        1e-4,
        (5, 10),
    )
    assert s.augment.crop_scale == pytest.approx((256 / 300, 256 / 300))
    assert (sa.config.input_size, sa.settings.decay_points, st.settings.batch_size) == (224, (), 3)
    assert {t.config.input_size for t in p.fine.values()} == {356} and p.frame_size == 356
    assert tuple(p.plus) == PAPER_PLUS and len(p.branches()) == 11  # the 11 maps of CAMFuse.m
    lrs = {n: t.settings.lr for n, t in p.plus.items()}
    assert lrs["s_plus_cross"] == 1e-3 and lrs["sa_plus_long"] == 1e-5 and lrs["st_plus_short"] == 1e-5
    assert p.plus["sa_plus_cross"].settings.decay_points == (5, 10)
    sw = p.switch.settings
    assert (sw.epochs, sw.lr, sw.weight_decay, sw.groups, p.switch.config.input_size) == (
        300,
        1e-4,
        0.0,
        "flat",
        356,
    )
    sta, stap = p.students["sta"], p.students["sta_plus"]
    assert (sta.config.input_size, sta.settings.batch_size, sta.settings.lr, sta.settings.weight_decay) == (
        356,
        1,
        1e-3,
        1e-4,
    )
    assert stap.config.use_switch and stap.config.switch_input_size == 356 and stap.config.input_size == 256
    assert all(
        t.settings.epochs == 15 and t.settings.optimizer == "sgd" and t.settings.nesterov
        for t in [*p.coarse.values(), *p.plus.values(), *p.students.values()]
    )
    # the paper preset is the paper's: none of our additions for the light presets
    assert p.av_sync is None and p.visual_prior is None
    configs = [t.config for t in [*p.coarse.values(), *p.plus.values(), *p.students.values(), p.switch]]
    assert {c.audio_envelope_bins for c in configs} == {0} and {c.av_fusion for c in configs} == {"stanet"}
    assert {t.settings.audio_dropout for t in p.students.values()} == {0.0}
    lite = get_preset("synth-lite")
    assert lite.av_sync is not None and lite.students["sta"].settings.audio_dropout > 0
    assert {t.config.av_fusion for t in lite.students.values()} == {"film"}
    assert all(t.config.audio_envelope_bins == 24 for t in lite.students.values())
    assert {t.config.backbone.name for t in lite.plus.values()} == {"vgg16_bn_d1"}
    assert {(t.config.sync_combine, t.config.sync_differences, t.config.sync_activity)
            for t in lite.students.values()} == {("modulate", True, "profile")}
    assert not lite.students["sta_plus"].config.sync_switch  # STA+'s sync gate: audio_on, not the switch
    assert lite.av_sync.differences and lite.visual_prior is not None
    assert lite.fusion == "mean" and p.fusion == "max"  # the paper's FinalFusion keeps the max
    assert get_preset("synth-lite").with_epochs(2).students["sta"].settings.epochs == 2
    assert set(list_presets()) == {"paper", "synth-lite", "synth-tiny"}
    assert plus_branch("st_plus_short") == ("st_plus", "short")
    with pytest.raises(ValueError):
        plus_branch("s_long")


def test_cam_file_and_boxes_round_trip(tmp_path):
    maps = np.zeros((3, 8, 8), np.float32)
    maps[0, 2, 2] = 5.0
    maps[1, 4, 4] = 0.5
    b = BranchMaps(maps, np.array([0.9, 0.8, 0.1], np.float32), np.array([True, True, False]))
    write_cams(tmp_path / "c.h5", {"v1": b}, {"branch": "s"})
    with CamFile(tmp_path / "c.h5") as f:
        assert f.videos() == ["v1"] and f.attrs["branch"] == "s"
        r = f.video("v1")
    assert r.maps[0, 2, 2] == 1.0 and r.maps[1, 4, 4] == 1.0  # each map scaled to max 1 (uint8 storage)
    np.testing.assert_array_equal(r.valid, b.valid)
    np.testing.assert_allclose(r.probs, b.probs)
    assert to_uint8(np.zeros((2, 2))).max() == 0
    write_boxes(tmp_path / "b.h5", {"v1": (np.array([[0, 3, 1, 5]] * 3), np.array([True, False, True]))})
    boxes, valid = read_boxes(tmp_path / "b.h5")["v1"]
    assert boxes.shape == (3, 4) and list(valid) == [True, False, True]


def test_lsuv_gives_unit_variance_and_warm_start_copies_matching_tensors(tmp_path):
    from stanet_rt.training.init import lsuv_init, start_weights, warm_start

    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.config import get_config
    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    cfg = get_config("tiny_s_plus")
    model = build_model(cfg)
    frames = torch.randn(6, 3, 32, 32)
    assert lsuv_init(model.backbone, frames) == 13  # every VGG16 conv
    outs = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: outs.append(float(o.detach().std())))
        for m in model.backbone.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    model.backbone(frames)
    for h in hooks:
        h.remove()
    assert all(abs(v - 1.0) < 0.06 for v in outs)
    assert any("LSUV" in line for line in start_weights(build_model(cfg), cfg, lambda: frames))
    assert start_weights(build_model(get_config("tiny_s")), get_config("tiny_s"), lambda: frames) == []
    # warm start: a student takes the teacher's trunk (same names and shapes), nothing else
    teacher = build_model(get_config("tiny_sa"))
    save_checkpoint(tmp_path / "t.pt", teacher)
    student = build_model(get_config("tiny_lite"))
    copied = warm_start(student, tmp_path / "t.pt", prefixes=("backbone.", "audio_net."))
    assert copied and all(k.startswith(("backbone.", "audio_net.")) for k in copied)
    torch.testing.assert_close(student.backbone.conv1.weight, teacher.backbone.conv1.weight)


def test_sa_plus_starts_from_the_trained_s_plus_as_the_preset_says(tmp_path):
    # light presets: the SCAM+ branches after S+ take every matching S+ parameter (trunk, CAM head,
    # attention, graph); their own audio / fusion parts stay new; a source that was not trained is an error
    from types import SimpleNamespace

    from stanet_rt.training.stages.common import preset_warm_start

    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.config import get_config
    from stanet_rt.errors import InputError
    from stanet_rt.models.factory import build_model

    lite = get_preset("synth-lite")
    first, *rest = lite.plus
    assert plus_branch(first)[0] == "s_plus" and rest
    assert all(lite.warm_start[b] == (f"scam-plus/{first}", ("",)) for b in rest)
    assert first not in lite.warm_start and not any(b in get_preset("paper").warm_start for b in PAPER_PLUS)
    logs: list[str] = []
    ctx = SimpleNamespace(out=tmp_path, preset=lite, log=logs.append)
    torch.manual_seed(0)
    sa_plus = build_model(get_config("tiny_sa_plus"))
    with pytest.raises(InputError, match=f"scam-plus/{first}.*has not been trained"):
        preset_warm_start(ctx, "scam-plus", rest[0], sa_plus)
    s_plus = build_model(get_config("tiny_s_plus"))
    save_checkpoint(tmp_path / "scam-plus" / first / "checkpoint.pt", s_plus)
    fresh_av = {k: v.clone() for k, v in sa_plus.state_dict().items() if k.startswith("extra_av.")}
    copied = preset_warm_start(ctx, "scam-plus", rest[0], sa_plus)
    assert {k.split(".")[0] for k in copied} == {k.split(".")[0] for k in s_plus.state_dict()}
    torch.testing.assert_close(sa_plus.extra_cam.state_dict(), s_plus.extra_cam.state_dict())
    torch.testing.assert_close({k: v for k, v in sa_plus.state_dict().items() if k in fresh_av}, fresh_av)
    assert logs == [f"scam-plus/{rest[0]}: all parameters from scam-plus/{first} ({len(copied)} tensors)"]
    assert preset_warm_start(ctx, "scam-plus", first, s_plus) == []


def test_cli_rejects_bad_stage_and_missing_data(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "bogus", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown stage 'bogus'" in res.output
    from stanet_rt.errors import InputError

    res = runner.invoke(app, ["train", "scam-coarse", "--preset", "paper", "--out", str(tmp_path / "p")])
    assert isinstance(res.exception, InputError) and "needs --data" in str(res.exception)


def test_evaluation_batches_follow_the_model_to_its_device():
    # validators and CAM / map export feed the model where training left it (the GPU after
    # `train --device cuda`); the loader alone yields CPU tensors, which crashed every stage on a GPU
    from stanet_rt.training.stages.common import model_batches, model_device

    class Items(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> dict:
            return {"frames": torch.zeros(2, 4), "video_index": i, "name": f"v{i}"}

    model = torch.nn.Linear(4, 1, device="meta")
    assert model_device(model) == torch.device("meta")
    batches = list(model_batches(model, Items(), 2))
    assert [b["frames"].device.type for b in batches] == ["meta", "meta"]
    assert batches[0]["name"] == ["v0", "v1"] and batches[0]["video_index"].device.type == "meta"
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_a_finished_trainer_reloads_even_without_samples(tmp_path):
    # the unseen-set pass reuses finished trainers; a fine branch of that set may have no crop box at all
    # (no training samples), which must not stop it (found on the GPU, where the CAMs come out differently)
    from stanet_rt.training.engine import StepOutput, TrainSettings
    from stanet_rt.training.presets import Trainer
    from stanet_rt.training.stages.common import StageContext, fit

    from stanet_rt.config import get_config
    from stanet_rt.errors import InputError
    from stanet_rt.models.factory import build_model

    def step(model, batch):  # any differentiable function of the weights will do
        loss = sum((p**2).sum() for p in model.parameters()) * batch["x"].mean()
        return StepOutput(loss, 0.0, 0)

    def tiny():
        return build_model(get_config("tiny_s"))

    data = [{"x": torch.ones(3)} for _ in range(4)]
    trainer = Trainer(config=None, settings=TrainSettings(epochs=1, batch_size=2, lr=0.01, groups="flat"))
    model = tiny()
    ctx = StageContext(get_preset("synth-tiny"), tmp_path, tmp_path / "run", progress=False, log_fn=lambda _: None)
    fit(ctx, "scam-fine", "s", model, data, step, trainer)
    with pytest.raises(InputError, match="no training samples for scam-fine/s"):
        fit(ctx, "scam-fine", "s", tiny(), [], step, trainer)  # not resuming: nothing to train
    resumed = dataclasses.replace(ctx, resume=True)
    again = tiny()
    result = fit(resumed, "scam-fine", "s", again, [], step, trainer)
    assert not result.trained
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True))


@pytest.mark.parametrize(("sta_cc", "lite_cc", "chosen"), [(0.5, 0.6, "lite.pt"), (0.6, 0.5, "sta.pt"),
                                                         (None, None, "lite.pt")])
def test_default_is_the_distilled_student_unless_the_report_says_sta_is_better(tmp_path, sta_cc, lite_cc, chosen):
    from types import SimpleNamespace

    from stanet_rt.training.run_all import default_sources

    ctx = SimpleNamespace(out=tmp_path, preset=SimpleNamespace(name="synth-lite"), log=lambda _: None)
    (tmp_path / "students").mkdir()
    for name in ("sta.pt", "sta_plus.pt", "lite.pt"):
        (tmp_path / "students" / name).write_bytes(b"x")
    if sta_cc is not None:  # the run's report on its own test split
        (tmp_path / "report").mkdir()
        rows = {"STA": {"CC": sta_cc}, "STANet-lite (distilled)": {"CC": lite_cc}, "STA+": {"CC": 0.9}}
        (tmp_path / "report" / "synth_lite_training.json").write_text(json.dumps({"scores": {"all": rows}}))
    assert default_sources(ctx) == {"default.pt": tmp_path / "students" / chosen}


@pytest.mark.gpu
def test_train_all_synth_tiny_on_cuda(tmp_path):
    # every stage on the GPU: training, validation, CAM export, pseudo-GT, students, distillation, report
    from stanet_rt.training.run_all import make_context, run_all

    ctx = make_context("synth-tiny", tmp_path / "run", progress=False, device="cuda", log=lambda _: None)
    times = run_all(ctx)
    assert "report" in times and (tmp_path / "run" / "students").is_dir()


@pytest.mark.slow  # ~30 s alone on 2 cores, over a minute when the machine is shared
def test_train_all_synth_tiny_end_to_end(tmp_path, monkeypatch):
    import stanet_rt.training.stages.students as students_stage
    from stanet_rt.training.run_all import make_context, run_all

    # record the audio gates the students train with (the preset's audio_dropout must reach the step)
    gates: list[torch.Tensor | None] = []
    plain_step = students_stage.student_step

    def recording_step(model, batch):
        if model.training:
            gates.append(batch.get("audio_on"))
        return plain_step(model, batch)

    monkeypatch.setattr(students_stage, "student_step", recording_step)
    out = tmp_path / "run"
    logs: list[str] = []
    ctx = make_context("synth-tiny", out, progress=False, threads=None, log=logs.append)
    times = run_all(ctx)
    assert set(times) == {
        "scam-coarse",
        "scam-fine",
        "scam-plus",
        "pseudo-gt",
        "switch",
        "students",
        "distill",
        "report",
        "report unseen",
    }
    preset = ctx.preset
    # students and the distilled student trained with a share of their audio gates closed (audio dropout)
    assert {t.settings.audio_dropout for t in preset.students.values()} == {0.25}
    assert gates and all(g is not None for g in gates)
    closed = float(sum((g == 0).sum() for g in gates)) / sum(g.numel() for g in gates)
    assert 0.0 < closed < 0.6
    # every trainer finished and checkpointed with its config
    runs = [("scam-coarse", b) for b in preset.coarse] + [("scam-fine", b) for b in preset.fine]
    runs += [("scam-plus", b) for b in preset.plus] + [("switch", "audio_switch")]
    runs += [("students", s) for s in preset.students] + [("distill", "lite")]
    for stage, branch in runs:
        meta = read_checkpoint(out / stage / branch / "checkpoint.pt")["meta"]
        assert meta["complete"] and meta["stage"] == stage and meta["branch"] == branch
        assert (out / stage / branch / "log.csv").is_file()
    # the SCAM+ branches after S+ started from the trained S+ (trunk, CAM head, attention, graph)
    s_plus = next(iter(preset.plus))
    assert s_plus.startswith("s_plus_")
    for branch in list(preset.plus)[1:]:
        line = next(x for x in logs if x.startswith(f"scam-plus/{branch}: all parameters from scam-plus/{s_plus}"))
        assert int(line.rsplit("(", 1)[1].split()[0]) > 20, line
    # CAM exports cover every frame of every split; boxes lie inside the canvas
    n_frames = sum(r.n_frames for s in ctx.export_splits() for r in ctx.records(s))
    for kind, names in (("coarse", preset.coarse), ("fine", preset.fine), ("plus", preset.plus)):
        for name in names:
            with CamFile(ctx.cams_path(kind, name)) as f:
                assert sum(len(f.video(v).valid) for v in f.videos()) == n_frames
    for boxes, valid in read_boxes(ctx.boxes_path).values():
        assert (boxes[valid] >= 0).all() and (boxes[valid] < preset.frame_size).all()
    # pseudo-GT PNGs and the probability table agree
    rows = read_probability_table(out / "pseudo_gt" / "probabilities.csv")
    pngs = sorted(out.glob("pseudo_gt/*/*.png"))
    assert rows and len(rows) == len(pngs)
    assert all(1 <= int(r["n_maps"]) <= len(preset.branches()) for r in rows)
    summary = json.loads((out / "pseudo_gt" / "complete.json").read_text())
    assert summary["branches"] == preset.branches()
    # every video (all have audio) was reweighted by audio-visual synchrony, with the preset's settings
    assert summary["av_sync"] == dataclasses.asdict(preset.av_sync)
    assert summary["visual_prior"] == dataclasses.asdict(preset.visual_prior)
    for split in ctx.export_splits():
        assert summary["counts"][split]["av_sync_videos"] == len(ctx.records(split))
    # the written maps are the fused ones after the sync step and the visual prior, and the prior changed them
    rec = ctx.records("test")[0]
    files = open_branch_files(ctx)
    try:
        fused, _ = fuse_video(video_branches(ctx, files, rec.video_id), preset.min_maps)
    finally:
        for f in files.values():
            f.close()
    full, synced = video_refiner(ctx, "test", 0, preset.av_sync, preset.visual_prior)
    sync_only, _ = video_refiner(ctx, "test", 0, preset.av_sync, None)
    assert full is not None and sync_only is not None and synced
    expected, without_prior = full(list(fused)), sync_only(list(fused))
    frames = available_frames(out / "pseudo_gt", rec.video_id)
    written = {t: read_pseudo_gt(pseudo_gt_path(out / "pseudo_gt", rec.video_id, t)) for t in frames}
    assert written and all(np.abs(m - expected[t]).max() <= 1 / 255 + 1e-6 for t, m in written.items())
    assert max(np.abs(expected[t] - without_prior[t]).max() for t in written) > 0.05
    # the students are self-describing and run
    for name in preset.students:
        model, config, meta = load_checkpoint(out / "students" / f"{name}.pt")
        frames, spec = model.example_inputs(batch=1)
        t = len(config.window_offsets)
        logits = model(
            frames[:, None].expand(1, t, *frames.shape[1:]), spec[:, None].expand(1, t, *spec.shape[1:])
        )
        assert logits.shape == (1, 1, config.input_size, config.input_size) and torch.isfinite(logits).all()
    sta_plus = load_checkpoint(out / "students" / "sta_plus.pt")[0]
    switch = read_checkpoint(out / "switch" / "audio_switch" / "checkpoint.pt")["state_dict"]
    torch.testing.assert_close(sta_plus.switch.extra_fc.weight, switch["extra_fc.weight"])  # loaded, frozen
    own = {k.removeprefix("audio_net."): v for k, v in switch.items() if k.startswith("audio_net.")}
    for k, v in sta_plus.switch.audio_net.state_dict().items():  # with its own audio net
        torch.testing.assert_close(v, own[k])
    # the distilled light student: causal stanet_lite trained on the fused teacher maps of every train / val frame
    lite, lite_cfg, lite_meta = load_checkpoint(out / "students" / "lite.pt")
    assert lite_cfg.arch == "stanet_lite" and lite_cfg.lookahead == 0 and "distilled" in lite_meta["kind"]
    teacher_pngs = sorted(out.glob("distill/teacher_maps/*/*.png"))
    assert len(teacher_pngs) == sum(r.n_frames for s in ("train", "val") for r in ctx.records(s))
    # the report
    report = json.loads((out / "report" / "synth_tiny_training.json").read_text())
    assert "centre bias" in report["scores"]["all"] and "STA" in report["scores"]["all"]
    assert "STA (audio off)" in report["scores"]["all"] and "STANet+" in report["scores"]["all"]
    lite_row = report["scores"]["all"]["STANet-lite (distilled)"]
    assert lite_row["teacher"] == "STANet+" and -1.0 <= lite_row["CC_vs_teacher"] <= 1.0
    assert "STANet-lite (distilled) CC vs STANet+ maps" in report["acceptance"]
    shares = report["pseudo_gt_source_share"]
    assert set(shares) == {"all twins", "pulsing twins"}
    assert shares["all twins"]["videos"] >= shares["pulsing twins"]["videos"]
    assert shares["all twins"]["share"] is None or 0.0 <= shares["all twins"]["share"] <= 1.0
    assert (out / "report" / "synth_tiny_training.png").stat().st_size > 1000
    # issue 15: the same report on the configuration training never saw, its pseudo-GT made by the
    # trained teachers, nothing retrained (the students there are the run's own files)
    unseen = json.loads((out / "unseen" / "report" / "synth_tiny_training_unseen.json").read_text())
    assert "never saw" in unseen["title"] and "motion baseline" in unseen["scores"]["all"]
    assert "CC - colour-saturation baseline" in unseen["scores"]["all"]["STA"]
    assert (out / "unseen" / "pseudo_gt" / "complete.json").is_file()
    assert (out / "unseen" / "students" / "sta.pt").read_bytes() == (out / "students" / "sta.pt").read_bytes()
    assert set(unseen["teachers"]) >= {"scam-coarse/s", "switch/audio_switch"}
    assert json.loads((out / "timings.json").read_text())["wall_s"]["total"] > 0
    # the students install as the runtime's default models (here into a scratch assets folder)
    from stanet_rt.cli.install import install_default_models

    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "default_plus.pt").write_bytes(b"stale")
    installed = install_default_models(ctx, assets=assets)
    assert installed[0].name == "default.pt"  # one light student replaces STA (+ STA+)
    assert {p.name for p in installed[1:]} == {f"default.{part}.onnx" for part in ("audio", "encoder", "head")}
    assert not (assets / "default_plus.pt").exists()
    # the distilled student, unless the run's report scores it below the STA it started from
    scores = json.loads((out / "report" / "synth_tiny_training.json").read_text())["scores"]["all"]
    cc = {k: v["CC"] for k, v in scores.items()}
    kind = load_checkpoint(installed[0])[2]["kind"]
    assert ("distilled" in kind) == (cc["STANet-lite (distilled)"] >= cc["STA"]), (kind, cc)
    from stanet_rt import engines
    assert engines.open_student(installed[0]).backend == "onnxruntime"  # the ONNX beside it is used
    # a second `train all` skips every finished stage and retrains nothing
    stamp = os.stat(out / "students" / "sta" / "checkpoint.pt").st_mtime_ns
    lite_stamp = os.stat(out / "distill" / "lite" / "checkpoint.pt").st_mtime_ns
    logs.clear()
    ctx2 = make_context("synth-tiny", out, progress=False, threads=None, log=logs.append)
    run_all(ctx2, report=False)
    assert os.stat(out / "students" / "sta" / "checkpoint.pt").st_mtime_ns == stamp
    assert os.stat(out / "distill" / "lite" / "checkpoint.pt").st_mtime_ns == lite_stamp
    assert not any(" epoch " in line for line in logs)
    assert any("done (" in line for line in logs)
