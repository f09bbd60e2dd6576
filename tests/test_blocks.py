"""Shared blocks (stanet_rt/models/blocks.py) against the spec's formulas (sections 3.1, 3.3, 3.4, 4.1).

Complements tests/test_models.py (temporal-gate reference conv, batched graph, FRL / ConvGRU hand
cases, lr-group sizes): here each block is checked against an independent einsum / loop reference.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stanet_rt.models.blocks import (
    AVFiLMGate,
    AVFusion,
    CAMHead,
    CoAttentionGraph,
    SelfAttentionGate,
    SyncGate,
    TemporalGate,
    build_av_gate,
    gap_logits,
    gated_residual,
    param_groups,
    resize_to,
)


def test_gap_logits_and_gated_residual_hand_case() -> None:
    cam = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]], [[-2.0, 2.0], [0.0, 4.0]]]])  # (1, 2, 2, 2)
    torch.testing.assert_close(gap_logits(cam), torch.tensor([[4.0, 1.0]]))
    x = torch.tensor([-1.0, 2.0, 3.0])
    gate = torch.tensor([0.5, 0.5, 0.0])
    torch.testing.assert_close(gated_residual(x, gate), torch.tensor([0.0, 3.0, 3.0]))  # ReLU(x + x g)


def test_cam_head_depth_and_width() -> None:
    s_head = CAMHead(16, 5, depth=0)  # S: a single 1x1 conv
    convs = [m for m in s_head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(16, 5, (1, 1))]
    head = CAMHead(16, 5, depth=3, width=8)  # SA/ST/+ extra convs: 3 x (3x3 + ReLU) + 1x1
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (16, 8, 3), (8, 8, 3), (8, 8, 3), (8, 5, 1)
    ]
    assert head(torch.randn(2, 16, 7, 9)).shape == (2, 5, 7, 9)


def test_self_attention_gate_matches_reference() -> None:
    torch.manual_seed(0)
    gate = SelfAttentionGate(6)
    x = torch.randn(2, 6, 3, 5)
    f, g, h = (F.conv2d(x, m.weight, m.bias).flatten(2) for m in (gate.f, gate.g, gate.h))
    a = torch.softmax(torch.einsum("bci,bcj->bij", f, g), dim=1)  # A_ij normalised over i
    o = torch.einsum("bci,bij->bcj", h, a).view_as(x)
    mask = torch.sigmoid(F.conv2d(o, gate.gate.weight))  # 1 channel, no bias
    out = gate(x)
    torch.testing.assert_close(out, mask * x)
    assert gate.gate.bias is None and gate.gate.out_channels == 1
    ratio = out / x  # one spatial gate shared by every channel
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


def test_avfusion_matches_reference_and_listens_to_audio() -> None:
    torch.manual_seed(0)
    av = AVFusion(visual_channels=12, audio_dim=20, mid_channels=4, av_dim=6)
    vis, audio = torch.randn(2, 12, 4, 5), torch.randn(2, 20)
    v = av.extra_convv(vis).flatten(2)  # (B, D, N)
    a = av.extra_lineara(audio)  # (B, D)
    g = av.extra_linearv(vis.mean(dim=(2, 3)))  # (B, D)
    w = torch.softmax(torch.einsum("bi,bj->bij", a, g), dim=2)  # softmax over the last dim of a' g^T
    z = torch.einsum("bij,bjn->bin", w, v).view(2, 6, 4, 5)
    ref = torch.sigmoid(av.extra_gateav(z))
    out = av(audio, vis)
    assert out.shape == (2, 1, 4, 5)
    torch.testing.assert_close(out, ref)
    assert ((out > 0) & (out < 1)).all()
    assert not torch.allclose(out, av(torch.randn(2, 20), vis))
    assert all("extra" in name for name, _ in av.named_parameters())  # 10x / 20x lr groups


def test_film_gate_matches_reference_and_can_pick_a_location_by_audio() -> None:
    torch.manual_seed(0)
    av = AVFiLMGate(visual_channels=12, audio_dim=20, mid_channels=4, av_dim=6)
    vis, audio = torch.randn(2, 12, 4, 5), torch.randn(2, 20)
    v = av.extra_convv(vis)
    gamma, beta = av.extra_film(audio).split(6, dim=1)
    ref = torch.sigmoid(av.extra_gateav(F.relu(v * (1 + gamma[..., None, None]) + beta[..., None, None])))
    out = av(audio, vis)
    assert out.shape == (2, 1, 4, 5)
    torch.testing.assert_close(out, ref)
    assert not torch.allclose(out, av(torch.randn(2, 20), vis))
    assert all("extra" in name for name, _ in av.named_parameters())
    # hand-set: visual channel 0 marks location A, channel 1 location B; audio dim 0 ("loud") selects A,
    # dim 1 ("quiet") selects B. AVFusion cannot express this: its audio only reorders a channel mix.
    gate = AVFiLMGate(visual_channels=2, audio_dim=2, mid_channels=1, av_dim=2)
    with torch.no_grad():
        for p in gate.parameters():
            p.zero_()
        gate.extra_convv.weight[:, :, 0, 0] = torch.eye(2)
        gate.extra_film.bias[:2] = -1.0  # gamma = -1 + audio: closed unless the audio opens the channel
        gate.extra_film.weight[:2] = torch.eye(2)
        gate.extra_gateav[0].weight.fill_(10.0)
        gate.extra_gateav[2].weight.fill_(1.0)
    scene = torch.zeros(1, 2, 1, 2)
    scene[0, 0, 0, 0] = scene[0, 1, 0, 1] = 1.0  # A at x = 0, B at x = 1
    loud, quiet = gate(torch.tensor([[1.0, 0.0]]), scene), gate(torch.tensor([[0.0, 1.0]]), scene)
    assert loud[0, 0, 0, 0] > 0.99 and loud[0, 0, 0, 1] == 0.5
    assert quiet[0, 0, 0, 1] > 0.99 and quiet[0, 0, 0, 0] == 0.5
    assert isinstance(build_av_gate("stanet", 4, 3, 2, 2), AVFusion)
    assert isinstance(build_av_gate("film", 4, 3, 2, 2), AVFiLMGate)
    with pytest.raises(ValueError, match="audio-visual gate"):
        build_av_gate("concat", 4, 3, 2, 2)


def test_temporal_gate_time_slice_only_sees_its_frame() -> None:
    """With the proper permute, the (3,1,1) kernel's time slice t reads only frame t; the original's
    ``.view`` made slice t read a mix of channels from several frames (spec 9.1 item 4)."""
    torch.manual_seed(0)
    gate = TemporalGate(4, 2, frames=3)
    with torch.no_grad():
        gate.layers[0].weight[:, :, 0] = 0  # blind to the first frame (t - 1)
    frames = torch.randn(1, 3, 4, 6, 6)
    out = gate(TemporalGate.stack(frames))
    changed_first, changed_mid = frames.clone(), frames.clone()
    changed_first[:, 0] += torch.randn(4, 6, 6)
    changed_mid[:, 1] += torch.randn(4, 6, 6)
    torch.testing.assert_close(gate(TemporalGate.stack(changed_first)), out)
    assert not torch.allclose(gate(TemporalGate.stack(changed_mid)), out)


def test_temporal_gate_treats_channels_as_channels() -> None:
    """Permuting the channels of every frame and the first conv's input channels alike leaves the
    output unchanged: channels and time are not mixed up."""
    torch.manual_seed(0)
    gate = TemporalGate(5, 5, frames=3)
    frames = torch.randn(2, 3, 5, 4, 4)
    perm = torch.tensor([3, 0, 4, 1, 2])
    permuted = TemporalGate(5, 5, frames=3)
    permuted.load_state_dict(gate.state_dict())
    with torch.no_grad():
        permuted.layers[0].weight.copy_(gate.layers[0].weight[:, perm])
    torch.testing.assert_close(
        permuted(TemporalGate.stack(frames[:, :, perm])), gate(TemporalGate.stack(frames))
    )
    stacked = TemporalGate.stack(frames)
    assert stacked.shape == (2, 5, 3, 4, 4)
    torch.testing.assert_close(stacked[:, :, 1], frames[:, 1])


def _message_reference(graph: CoAttentionGraph, e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """generate_attention(e <- q) for one sample pair, as spec 4.1 writes it: (C, h, w) each."""
    c, h, w = e.shape
    ea = graph.proja(e[None]).flatten(2)[0]  # (C/2, N)
    qb = graph.projb(q[None]).flatten(2)[0]
    s = ea.T @ qb  # (N_e, N_q)
    p = torch.softmax(s.T, dim=0)  # over query positions
    m = (q.flatten(1) @ p).view(1, c, h, w)
    return (m * torch.sigmoid(graph.gate(m)))[0]


def test_coattention_messages_and_round_without_gru_match_reference() -> None:
    torch.manual_seed(0)
    graph = CoAttentionGraph(4, nodes=3, rounds=1, use_gru=False)  # ST+: fusion conv then FRL only
    nodes = torch.randn(2, 3, 4, 3, 5)
    msgs = graph.messages(nodes)
    assert msgs.shape == (2, 3, 8, 3, 5)
    for b in range(2):
        for k in range(3):
            others = [j for j in range(3) if j != k]
            ref = torch.cat([_message_reference(graph, nodes[b, k], nodes[b, j]) for j in others])
            torch.testing.assert_close(msgs[b, k], ref, rtol=1e-5, atol=1e-6)
    fused = graph.conv_fusion(msgs.flatten(0, 1))
    torch.testing.assert_close(graph(nodes), graph.frl(fused).unflatten(0, (2, 3)), rtol=1e-5, atol=1e-6)


def test_coattention_graph_shares_the_gate_and_any_grid() -> None:
    att = SelfAttentionGate(6)
    graph = CoAttentionGraph(6, gate=att.gate)
    assert graph.gate is att.gate
    model = torch.nn.ModuleDict({"extra_attention": att, "extra_graph": graph})
    names = [n for n, _ in model.named_parameters() if n.rsplit(".", 2)[-2] == "gate"]
    assert names == ["extra_attention.gate.weight"]  # one shared tensor, listed once
    for h, w in ((4, 4), (7, 3)):
        assert graph(torch.randn(1, 3, 6, h, w)).shape == (1, 3, 6, h, w)


def test_param_groups_assign_every_parameter_by_name() -> None:
    model = torch.nn.ModuleDict({
        "backbone": torch.nn.Conv2d(3, 4, 3),
        "extra_head": torch.nn.Conv2d(4, 2, 1),
        "frozen": torch.nn.Linear(2, 2),
    })
    model["frozen"].requires_grad_(False)
    groups = param_groups(model, lr=0.5, weight_decay=1e-4)
    by_param = {id(p): g for g in groups for p in g["params"]}
    expected = {"backbone.weight": 0.5, "backbone.bias": 1.0, "extra_head.weight": 5.0, "extra_head.bias": 10.0}
    for name, p in model.named_parameters():
        if name.startswith("frozen"):
            assert id(p) not in by_param  # frozen parameters are left out
        else:
            assert by_param[id(p)]["lr"] == expected[name]
            assert by_param[id(p)]["initial_lr"] == expected[name]
            assert by_param[id(p)]["weight_decay"] == 1e-4
    torch.optim.SGD(groups, lr=0.5, momentum=0.9, nesterov=True)  # the original's optimiser accepts them


def test_resize_to_any_size() -> None:
    x = torch.randn(2, 3, 5, 7)
    assert resize_to(x, (11, 13)).shape == (2, 3, 11, 13)
    torch.testing.assert_close(resize_to(x, (5, 7)), x)


def test_sync_gate_finds_the_cell_that_follows_the_loudness() -> None:
    gate = SyncGate(cell=2, power=4.0, weight=3.0)
    g = torch.Generator().manual_seed(0)
    loud = torch.rand(1, 8, generator=g)
    grey = torch.zeros(1, 8, 1, 2, 2)
    grey[0, :, 0, 0, 0] = 0.5 + 2.0 * loud[0]  # follows the sound
    grey[0, :, 0, 1, 1] = torch.rand(8, generator=g)  # its own rhythm
    sync = gate(grey, loud.reshape(1, 8, 1, 1, 1))
    assert sync.shape == (1, 1, 2, 2)
    assert sync[0, 0, 0, 0] == pytest.approx(1.0, abs=1e-4) and sync[0, 0, 1, 1] < 0.5
    assert sync[0, 0, 0, 1] == 0 and sync[0, 0, 1, 0] == 0  # still pixels: no correlation
    silent = gate(grey, torch.zeros(1, 8, 1, 1, 1))  # no audio (gate closed): nothing to add
    assert not silent.any()
    logits = torch.zeros(1, 2, 4, 4)
    with torch.no_grad():
        boosted = gate.boost(logits, sync)
    torch.testing.assert_close(boosted[:, 0], boosted[:, 1])
    assert boosted[0, 0, 0, 0] == pytest.approx(3.0, abs=1e-3) and boosted.min() >= 0
    frames = torch.randn(2, 3, 8, 6)
    g2, l2 = gate.frame_features(frames, torch.tensor([[0.3], [0.0]]))
    torch.testing.assert_close(g2, F.avg_pool2d(frames.mean(1, keepdim=True), 2))
    assert l2.shape == (2, 1, 1, 1) and float(l2[0]) == pytest.approx(0.3)


def test_differenced_sync_gate_ignores_a_drift_that_fools_the_levels() -> None:
    # a cell whose grey level drifts along with a slow rise of the loudness correlates by level, but its
    # frame-to-frame changes do not follow the loudness's; the pulsing cell's do (issue 15: objects drift)
    t = torch.arange(8, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    pulses = torch.rand(8, generator=g)
    loud = 0.2 * t + pulses  # a crescendo with syllables on top
    grey = torch.zeros(1, 8, 1, 2, 2)
    grey[0, :, 0, 0, 0] = 3.0 * pulses  # pulses with the syllables only
    grey[0, :, 0, 1, 1] = 0.5 * t  # drifts across the cell
    levels, changes = SyncGate(cell=2, power=8.0), SyncGate(cell=2, power=8.0, differences=True)
    by_level = levels(grey, loud.reshape(1, 8, 1, 1, 1))[0, 0]
    by_change = changes(grey, loud.reshape(1, 8, 1, 1, 1))[0, 0]
    assert by_level[1, 1] > 0.5  # the drifting cell passes for synchronous ...
    assert by_change[0, 0] == pytest.approx(1.0, abs=1e-4) and by_change[1, 1] < 0.05  # ... not any more
    from stanet_rt.config import get_config

    cfg = get_config("stanet_lite").replace(sync_differences=True, sync_power=8.0)
    gate = SyncGate.of(cfg)
    assert gate.differences and gate.power == 8.0 and not SyncGate.of(get_config("stanet_lite")).differences


def test_modulating_sync_gate_narrows_the_map_to_the_synchronous_cells_only_with_audio() -> None:
    # the additive gate cannot move probability between two saturated look-alikes; the modulating one
    # can, and it leaves the logits exactly as they are when the audio is closed or still
    torch.manual_seed(0)
    gate = SyncGate(cell=2, power=8.0, differences=True, combine="modulate")
    loud = torch.tensor([0.0, 1.0, 0.0, 1.2, 0.1, 0.9, 0.0, 1.1]).reshape(1, 8, 1, 1, 1)
    grey = torch.zeros(1, 8, 1, 4, 4)
    grey[0, :, 0, 0, 0] = loud.flatten()  # the source pulses with the sound
    grey[0, :, 0, 3, 3] = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.8, 0.8, 0.1, 0.1])  # a twin on its own rhythm
    logits = torch.full((1, 1, 8, 8), 6.0)  # both objects (and everything) saturated
    with torch.no_grad():
        out = torch.sigmoid(gate.apply(logits, grey, loud))
        added = torch.sigmoid(SyncGate(cell=2, power=8.0, differences=True).apply(logits, grey, loud))
    src, twin = float(out[0, 0, :2, :2].mean()), float(out[0, 0, 6:, 6:].mean())
    assert src / (src + twin) > 0.9
    a_src, a_twin = float(added[0, 0, :2, :2].mean()), float(added[0, 0, 6:, 6:].mean())
    assert a_src / (a_src + a_twin) < 0.51  # the additive gate: no difference left to see
    with torch.no_grad():
        closed = gate.apply(logits, grey, torch.zeros_like(loud))  # audio gate closed
        still = gate.apply(torch.randn(1, 1, 8, 8), grey, torch.full_like(loud, 0.7))
    torch.testing.assert_close(closed, logits, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(still).all()
    with pytest.raises(ValueError, match="combine"):
        SyncGate(combine="multiply")


def test_profile_activity_gate_stays_closed_on_noise_that_opens_the_window_gate() -> None:
    # issue 15: the audio windows are z-normalised, so the loudness at each frame of a noise-only stretch
    # still varies over the window and the "window" gate narrows the map in silence; inside one frame's
    # window noise is flat, so the "profile" gate, which reads that window's contrast, stays closed
    g = torch.Generator().manual_seed(3)
    noise = 0.05 * torch.randn(1, 24, generator=g)  # a flat profile (the frame's own 0.5 s)
    event = torch.cat([torch.full((1, 16), -0.5), torch.full((1, 8), 1.0)], dim=1)  # onset in the window
    quiet, sounding = SyncGate.profile_activity(noise), SyncGate.profile_activity(event)
    assert quiet.shape == (1, 1, 1, 1) and float(quiet) < 0.1 < 0.5 < float(sounding)
    loud = torch.tensor([0.3, -0.4, 0.5, -0.2, 0.4, -0.5, 0.2, -0.3]).reshape(1, 8, 1, 1, 1)  # noise's levels
    grey = torch.zeros(1, 8, 1, 4, 4)
    grey[0, :, 0, 0, 0] = torch.rand(8, generator=g)
    logits = torch.randn(1, 1, 8, 8, generator=g)
    window_gate = SyncGate(cell=2, power=8.0, differences=True, combine="modulate", weight=7.0)
    profile_gate = SyncGate(cell=2, power=8.0, differences=True, combine="modulate", weight=7.0, activity="profile")
    with torch.no_grad():
        assert float(window_gate.gate_input(loud, None).mul(7.0).clamp(0, 1)) == 1.0  # fully open on noise
        assert float(profile_gate.gate_input(loud, quiet).mul(7.0)) < 0.7
        closed = profile_gate.apply(logits, grey, loud, torch.zeros(1, 1, 1, 1))
        opened = profile_gate.apply(logits, grey, loud, sounding)
        narrowed = window_gate.apply(logits, grey, loud)
    torch.testing.assert_close(closed, logits, atol=1e-4, rtol=1e-4)  # activity 0: the visual map as it is
    torch.testing.assert_close(opened, narrowed)  # both fully open: the same map
    per_map = profile_gate.gate_input(loud, torch.tensor([0.0, 0.2, 1.0]).reshape(1, 3, 1, 1, 1))
    assert per_map.shape == (1, 3, 1, 1)  # STA+: one activity per node map
    with pytest.raises(ValueError, match="activity feature"):
        profile_gate.apply(logits, grey, loud)
    with pytest.raises(ValueError, match="activity"):
        SyncGate(activity="loudest")
