"""Students STA / STA+ / stanet_lite (stanet_rt/models/students.py) beyond the contract checks of
tests/test_models.py (encode + head == forward, audio_on = 0, batch 1 vs 3, 96 / 356 px):
training outputs, per-sample audio gate, window use, odd sizes, AudioSwitch gating, audio-free
configs, trainability.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _model_helpers import audio_sensitive, lively

from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model
from stanet_rt.models.switch import AudioSwitch

STUDENTS = ("tiny_sta", "tiny_sta_plus", "tiny_lite")


def _model(name: str, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(get_config(name).replace(**changes)).eval()


def _clip(cfg, batch: int = 2, size: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s, t = size or cfg.input_size, len(cfg.window_offsets)
    return torch.randn(batch, t, 3, s, s, generator=g), torch.randn(batch, t, 1, 257, 48, generator=g)


def _force_switch(model: torch.nn.Module, on: bool) -> None:
    """Make the STA+ AudioSwitch say ``on`` for every input (logit of class 1 = +-100)."""
    fc = model.switch.extra_fc
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.copy_(torch.tensor([0.0, 100.0 if on else -100.0]))


@pytest.mark.parametrize("name", STUDENTS)
def test_forward_train_layout_and_its_offset_zero_map_is_forward(name: str) -> None:
    model = _model(name)
    frames, spec = _clip(model.config)
    with torch.no_grad():
        maps = model.forward_train(frames, spec)
        out = model(frames, spec)
    if model.config.arch == "sta_plus":
        assert maps.shape == (2, 3, 1, 64, 64)  # the 3 nodes (centres -3, 0, +3)
        assert model.node_offsets == (-3, 0, 3)
    else:
        assert maps.shape == (2, 2, 1, 64, 64)  # coarse (r1) and fine (r0) decoder levels of offset 0
    torch.testing.assert_close(maps[:, 1], out)  # node 1 / the fine level is what forward returns


@pytest.mark.parametrize("name", STUDENTS)
def test_head_output_size(name: str) -> None:
    model = _model(name)
    frames, spec = _clip(model.config)
    window = model.encode_window(frames, spec)
    with torch.no_grad():
        assert model.head(window).shape == (2, 1, 64, 64)  # default: the config's input size
        assert model.head(window, (50, 70)).shape == (2, 1, 50, 70)


@pytest.mark.parametrize("name", STUDENTS)
def test_audio_on_is_per_sample(name: str) -> None:
    model = _model(name)
    frames, spec = _clip(model.config)
    x = frames[:, 0]
    with torch.no_grad():
        emb = model.encode_audio(spec[:, 0])
        mixed = model.encode(x, emb, torch.tensor([[1.0], [0.0]]))
        on = model.encode(x[:1], emb[:1])
        free = model.encode(x[1:], None)
    for key in mixed:
        torch.testing.assert_close(mixed[key][:1], on[key])
        torch.testing.assert_close(mixed[key][1:], free[key])


@pytest.mark.parametrize("name", STUDENTS)
def test_head_reads_every_frame_of_the_window(name: str) -> None:
    model = lively(_model(name))
    frames, spec = _clip(model.config, batch=1)
    with torch.no_grad():
        window = model.encode_window(frames, spec)
        out = model.head(window)
        for t in range(frames.shape[1]):
            moved = {k: v.clone() for k, v in window.items()}
            moved["x"][:, t] += torch.randn_like(moved["x"][:, t])
            assert not torch.allclose(model.head(moved), out), f"window slot {t} is ignored"


@pytest.mark.parametrize("name,size", [("tiny_sta", 100), ("tiny_sta", 356), ("tiny_lite", 100),
                                       ("tiny_sta_plus", 100), ("tiny_sta_plus", 255)])
def test_feature_shapes_at_sizes_not_divisible_by_the_stride(name: str, size: int) -> None:
    model = _model(name)
    frames, spec = _clip(model.config, batch=1, size=size)
    with torch.no_grad():
        feats = model.encode(frames[:, 0], model.encode_audio(spec[:, 0]))
        out = model(frames, spec)
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == dict(model.feature_shapes(size, size))
    assert out.shape == (1, 1, size, size)


def test_sta_plus_audio_gate_follows_the_switch_decision() -> None:
    model = audio_sensitive(_model("tiny_sta_plus"))
    frames, spec = _clip(model.config, batch=2)
    x = frames[:, 0]
    with torch.no_grad():
        emb = model.encode_audio(spec[:, 0])
        expected = model.extra_av(emb[:, : model.audio_net.out_dim], model.backbone(x)[0])
        _force_switch(model, on=True)
        torch.testing.assert_close(model.encode(x, emb)["av"], expected)
        assert expected.abs().sum() > 0
        _force_switch(model, on=False)
        off = model.encode(x, emb)
    assert off["av"].abs().sum() == 0  # switch 0: the audio term is ReLU(x), as with audio_on = 0
    torch.testing.assert_close(off["x"], model.encode(x, None)["x"])


def test_sta_plus_switch_sees_the_frame_at_its_own_size() -> None:
    model = _model("tiny_sta_plus", switch_input_size=32)
    sizes = []
    model.switch.backbone.conv1.register_forward_hook(lambda m, i, o: sizes.append(tuple(i[0].shape[-2:])))
    frames, spec = _clip(model.config, batch=1)
    with torch.no_grad():
        model.encode(frames[:, 0], model.encode_audio(spec[:, 0]))
    assert sizes == [(32, 32)]


def test_sta_plus_switch_stays_frozen_in_training() -> None:
    """model.train() must not put the switch's BN in training mode (running stats drift, batch-dependent
    decisions), and its parameters must not require grad (DDP without find_unused_parameters)."""
    model = _model("tiny_sta_plus").train()
    before = {k: v.clone() for k, v in model.switch.state_dict().items()}
    frames, spec = _clip(model.config)
    model.forward_train(frames, spec).sum().backward()
    assert not model.switch.training
    assert not any(p.requires_grad for p in model.switch.parameters())
    for k, v in model.switch.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_trained_audio_switch_loads_into_sta_plus() -> None:
    """The switch has its own audio net (not the student's fine-tuned one): a trained audio_switch loads."""
    switch = build_model(get_config("tiny_audio_switch"))
    model = _model("tiny_sta_plus")
    assert isinstance(switch, AudioSwitch)
    model.switch.load_state_dict(switch.state_dict())  # strict: same keys and shapes


def test_sta_plus_audio_embedding_is_student_then_switch() -> None:
    """One exported ``audio_embedding``: [student audio net, AudioSwitch audio net]; encode splits it and the
    switch inside decides as the standalone trained switch does on the same frame and audio."""
    model = _model("tiny_sta_plus")
    torch.manual_seed(1)
    switch = build_model(get_config("tiny_audio_switch")).eval()
    model.switch.load_state_dict(switch.state_dict())
    frames, spec = _clip(model.config)
    x, s = frames[:, 0], spec[:, 0]
    own = model.audio_net.out_dim
    assert model.audio_embedding_dim == own + switch.audio_net.out_dim
    with torch.no_grad():
        emb = model.encode_audio(s)
        assert emb.shape == (2, model.audio_embedding_dim)
        torch.testing.assert_close(emb[:, :own], model.audio_net(s))
        torch.testing.assert_close(emb[:, own:], switch.audio_net(s))
        decision = switch.decision(switch(x, s))  # switch_input_size == input_size here: no resize
        torch.testing.assert_close(model.switch(x, emb[:, own:]), switch(x, s))
        expected = model.extra_av(emb[:, :own], model.backbone(x)[0]) * decision[:, :, None, None]
        torch.testing.assert_close(model.encode(x, emb)["av"], expected)


@pytest.mark.parametrize("name", ["tiny_sta", "tiny_lite", "tiny_sta_plus"])
def test_audio_free_config(name: str) -> None:
    model = _model(name, audio=None, audio_backbone=None)
    frames, spec = _clip(model.config)
    assert model.audio_embedding_dim == 0 and model.audio_net is None
    assert list(model.feature_shapes(64, 64)) == ["x"] if name == "tiny_sta_plus" else ["s0", "s1", "x"]
    with torch.no_grad():
        out = model(frames)
        torch.testing.assert_close(model(frames, spec), out)  # spectrograms are ignored
    assert out.shape == (2, 1, 64, 64)
    with pytest.raises(RuntimeError, match="no audio path"):
        model.encode_audio(spec[:, 0])


@pytest.mark.parametrize("name", STUDENTS)
def test_forward_train_reaches_every_trainable_parameter(name: str) -> None:
    model = _model(name).train()
    frames, spec = _clip(model.config)
    maps = model.forward_train(frames, spec)
    F.binary_cross_entropy_with_logits(maps, torch.rand_like(maps)).backward()
    # the AudioSwitch is a frozen, separately trained decision (spec 7): no gradient by design
    missing = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith("switch.")]
    assert missing == []
    assert model.audio_net.conv1.weight.grad.abs().sum() > 0  # the audio net is fine-tuned (spec 2)


@pytest.mark.parametrize("name", ["tiny_sta", "tiny_sta_plus", "tiny_lite"])
def test_training_forward_closes_the_audio_gate_per_clip(name: str) -> None:
    model = _model(name)
    if model.config.use_switch:
        _force_switch(model, True)
    frames, spec = _clip(model.config)
    with torch.no_grad():
        both = model.encode_window(frames, spec, torch.tensor([1.0, 0.0]))
        opened = model.encode_window(frames, spec)
        closed = model.encode_window(frames, spec, torch.zeros(2))
    torch.testing.assert_close(both["av"][0], opened["av"][0])
    assert not both["av"][1].any() and not closed["av"].any() and opened["av"].abs().sum() > 0
    with torch.no_grad():
        out = model.forward_train(frames, spec, torch.tensor([1.0, 0.0]))
        torch.testing.assert_close(out[:1], model.forward_train(frames[:1], spec[:1]))


def test_audio_dropout_step_closes_a_share_of_the_gates() -> None:
    from stanet_rt.training.stages.students import audio_dropout_step, student_step

    assert audio_dropout_step(0.0) is student_step
    with pytest.raises(ValueError, match="audio dropout"):
        audio_dropout_step(1.0)
    seen: list[torch.Tensor] = []

    class Recorder(torch.nn.Module):
        def forward(self, frames, spectrograms=None, audio_on=None):
            seen.append(audio_on)
            return torch.zeros(len(frames), 1, 1, 4, 4, requires_grad=True)

    torch.manual_seed(0)
    batch = {"frames": torch.zeros(400, 1, 3, 4, 4), "gt": torch.rand(400, 1, 1, 4, 4)}
    audio_dropout_step(0.25)(Recorder(), batch)
    assert seen[0].shape == (400,) and set(seen[0].tolist()) == {0.0, 1.0}
    assert 0.18 < 1 - float(seen[0].mean()) < 0.32


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_train_student_trains_with_the_presets_audio_dropout(tmp_path, monkeypatch, dropout: float) -> None:
    """The wiring, not the helper: what ``train_student`` hands to ``fit`` closes the audio gate of the
    preset's share of clips (issue 14.6: it always passed ``student_step``)."""
    import dataclasses
    from types import SimpleNamespace

    from stanet_rt.training.presets import get_preset
    from stanet_rt.training.stages import students

    preset = dataclasses.replace(get_preset("synth-tiny"), warm_start={}, val_stride=None)
    trainer = preset.students["sta"]
    trainer = dataclasses.replace(trainer, settings=trainer.settings.replace(audio_dropout=dropout))
    config = get_config("tiny_lite")
    ctx = SimpleNamespace(resume=False, out=tmp_path, preset=preset, log=lambda _m: None,
                          run_dir=lambda stage, name: tmp_path / stage / name,
                          model_config=lambda _t: config)
    handed: list = []

    class Handed(Exception):
        pass

    def fake_fit(ctx, stage, name, model, dataset, step, *args, **kwargs):
        handed.append(step)
        raise Handed

    monkeypatch.setattr(students, "student_dataset", lambda *a, **k: [])
    monkeypatch.setattr(students, "new_model", lambda *a, **k: build_model(config))
    monkeypatch.setattr(students, "fit", fake_fit)
    with pytest.raises(Handed):
        students.train_student(ctx, "sta", trainer)
    seen: list[torch.Tensor] = []

    class Recorder(torch.nn.Module):
        def forward(self, frames, spectrograms=None, audio_on=None):
            seen.append(torch.ones(len(frames)) if audio_on is None else audio_on)
            return torch.zeros(len(frames), 1, 1, 4, 4, requires_grad=True)

    torch.manual_seed(0)
    handed[0](Recorder(), {"frames": torch.zeros(400, 1, 3, 4, 4), "gt": torch.rand(400, 1, 1, 4, 4)})
    closed = 1 - float(seen[0].mean())
    assert (closed == 0.0) if dropout == 0.0 else (0.18 < closed < 0.32)


@pytest.mark.parametrize(("combine", "activity"), [("add", "window"), ("modulate", "window"),
                                                    ("modulate", "profile")])
def test_sync_gate_student_contract_and_audio_free_path(combine: str, activity: str) -> None:
    from stanet_rt.config import get_config as config_of

    cfg = config_of("tiny_lite").replace(window_offsets=tuple(range(-5, 1)), sync_gate=True,
                                         sync_differences=combine == "modulate", sync_combine=combine,
                                         sync_activity=activity)
    model = build_model(cfg).eval()
    frames, spec = _clip(cfg)
    with torch.no_grad():
        whole = model(frames, spec)
        feats = [model.encode(frames[:, i], model.encode_audio(spec[:, i])) for i in range(6)]
        window = {k: torch.stack([f[k] for f in feats], 1) for k in feats[0]}
        assert tuple(window["grey"].shape[2:]) == model.feature_shapes(64, 64)["grey"]
        assert ("activity" in window) == (activity == "profile") == ("activity" in model.feature_shapes(64, 64))
        torch.testing.assert_close(model.head(window), whole)  # the encode / head contract holds
        if activity == "profile":  # the output frame's loudness-profile contrast, 0 with the audio closed
            bins = cfg.audio_envelope_bins
            profile = model.encode_audio(spec[:, -1])[:, -bins:]
            torch.testing.assert_close(window["activity"][:, -1].flatten(), profile.std(dim=1))
            closed = model.encode(frames[:, -1], model.encode_audio(spec[:, -1]), torch.zeros(2))
            assert not closed["activity"].any()
        on = model.forward_train(frames, spec)
        off = model.forward_train(frames, spec, torch.zeros(2))
        model.extra_sync.extra_sync_weight.zero_()
        on0 = model.forward_train(frames, spec)
        off0 = model.forward_train(frames, spec, torch.zeros(2))
    torch.testing.assert_close(off, off0)  # gate closed: the synchrony adds nothing
    assert not torch.allclose(on, on0)  # open: it does
    with pytest.raises(ValueError, match="sync_gate"):
        config_of("tiny_lite").replace(sync_gate=True)  # a 3-frame window is too short


def test_sta_plus_profile_gate_reads_each_node_centres_activity() -> None:
    # STA+ modulates its 3 node maps; with the "profile" gate each node is gated by the activity of its own
    # centre frame (window indices 1, 4, 7), and the encode / head contract still holds
    cfg = get_config("tiny_sta_plus").replace(audio_envelope_bins=4, sync_gate=True, sync_differences=True,
                                              sync_combine="modulate", sync_activity="profile", use_switch=False)
    model = build_model(cfg).eval()
    frames, spec = _clip(cfg, batch=1)
    with torch.no_grad():
        feats = [model.encode(frames[:, i], model.encode_audio(spec[:, i])) for i in range(9)]
        window = {k: torch.stack([f[k] for f in feats], 1) for k in feats[0]}
        torch.testing.assert_close(model.head(window), model(frames, spec))
        seen = []
        gate_input = model.extra_sync.gate_input
        model.extra_sync.gate_input = lambda loud, activity: seen.append(activity) or gate_input(loud, activity)
        model.head(window)
    torch.testing.assert_close(seen[0], window["activity"][:, 1::3])


@pytest.mark.parametrize("sync_switch", [True, False])
def test_sta_plus_sync_gate_follows_the_switch_only_with_sync_switch(sync_switch: bool) -> None:
    # The AudioSwitch gates the audio-visual branch either way; the synchrony gate's loudness and activity
    # follow it only with sync_switch (the first light STA+ models); without, they follow audio_on alone
    cfg = get_config("tiny_sta_plus").replace(audio_envelope_bins=4, sync_gate=True, sync_differences=True,
                                              sync_combine="modulate", sync_activity="profile",
                                              sync_switch=sync_switch)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    frames, spec = _clip(cfg, batch=2)
    x = frames[:, 0]
    with torch.no_grad():
        emb = model.encode_audio(spec[:, 0])
        _force_switch(model, on=True)
        opened = model.encode(x, emb)
        _force_switch(model, on=False)
        switched_off = model.encode(x, emb)
        closed = model.encode(x, emb, torch.zeros(2))
    assert opened["activity"].abs().sum() > 0 and opened["loud"].abs().sum() > 0
    assert not switched_off["av"].any() and not closed["av"].any()  # the switch closes the av branch
    for key in ("loud", "activity"):
        assert not closed[key].any()  # audio_on = 0 closes the synchrony gate in both modes
        if sync_switch:
            assert not switched_off[key].any()
        else:
            torch.testing.assert_close(switched_off[key], opened[key])


def test_config_without_sync_switch_keeps_the_switch_on_the_sync_gate() -> None:
    # configs written before the option (the first light STA+ checkpoints) keep the gate they were trained with
    from stanet_rt.config import ModelConfig

    data = get_config("tiny_sta_plus").to_dict()
    del data["sync_switch"]
    assert ModelConfig.from_dict(data).sync_switch is True


@pytest.mark.parametrize("offsets", [tuple(range(-6, 6)), tuple(range(-2, 1)), (-4, -3, -2, -1, 0, 1, 2, 4, 3),
                                     tuple(range(-8, 1))])
def test_sta_plus_refuses_windows_its_head_cannot_run(offsets) -> None:
    """12 offsets used to build and then fail in the head's ``.view``; the config now says why at once."""
    with pytest.raises(ValueError, match="STA\\+ reads 3 triplets"):
        get_config("tiny_sta_plus").replace(window_offsets=offsets)


def test_sta_plus_runs_any_valid_nine_frame_window() -> None:
    cfg = get_config("tiny_sta_plus").replace(window_offsets=(-10, -9, -8, -1, 0, 1, 8, 9, 10))
    model = build_model(cfg).eval()
    s = cfg.input_size
    feats = model.encode(torch.randn(9, 3, s, s))
    window = {k: v[None] for k, v in feats.items()}
    assert model.head(window).shape == (1, 1, s, s)


def test_checkpoint_without_sync_activity_loads_as_the_window_gate(tmp_path) -> None:
    # checkpoints (and installed default models) written before the "profile" gate have no sync_activity in
    # their config: they keep the gate they were trained with, and their feature contract (no ``activity``)
    from stanet_rt.checkpoint import load_checkpoint, save_checkpoint

    cfg = get_config("tiny_lite").replace(window_offsets=tuple(range(-5, 1)), sync_gate=True,
                                          sync_differences=True, sync_combine="modulate")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = save_checkpoint(tmp_path / "old.pt", model)
    payload = torch.load(path, weights_only=False)
    del payload["config"]["sync_activity"]
    torch.save(payload, path)
    loaded, config, _ = load_checkpoint(path)
    assert config.sync_activity == "window" and "activity" not in loaded.feature_shapes(64, 64)
    frames, spec = _clip(cfg)
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames, spec), model(frames, spec))
