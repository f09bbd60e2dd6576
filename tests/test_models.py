"""Models: backbone key layouts and sizes, shared blocks, teachers, students and the factory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stanet_rt.config import (
    AUDIO_RESNET18,
    RESNEXT101,
    VGG16_D1,
    BackboneConfig,
    get_config,
    list_configs,
)
from stanet_rt.models.backbones import build_audio_net, build_backbone
from stanet_rt.models.blocks import FRL, CoAttentionGraph, ConvGRUCell, TemporalGate, param_groups
from stanet_rt.models.factory import build_model

TINY = [c for c in list_configs() if c.startswith("tiny_")]
TINY_STUDENTS = ["tiny_sta", "tiny_sta_plus", "tiny_lite"]


def _inputs(cfg, batch=2, size=None):
    s = size or cfg.input_size
    t = len(cfg.window_offsets)
    return torch.randn(batch, t, 3, s, s), torch.randn(batch, t, 1, 257, 48)


# -- backbones -----------------------------------------------------------------------------------
def test_published_backbones_match_reference_sizes_and_keys() -> None:
    with torch.device("meta"):
        resnext = build_backbone(RESNEXT101)
        vgg = build_backbone(VGG16_D1)
        audio = build_audio_net(AUDIO_RESNET18)
        r50 = build_backbone(BackboneConfig("resnet50"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(resnext) == 86_742_336  # torchvision resnext101_32x8d without fc
    assert count(vgg) == 14_714_688  # torchvision vgg16 features
    assert count(r50) == 23_508_032  # torchvision resnet50 without fc
    assert abs(count(audio) - 11.19e6) < 0.01e6  # spec section 2
    keys = resnext.state_dict()
    assert keys["layer3.22.conv2.weight"].shape == (1024, 32, 3, 3)  # width 256*8/64*32, 32 groups
    assert keys["layer1.0.downsample.1.running_var"].shape == (256,)
    vkeys = vgg.state_dict()
    conv_idx = sorted({int(k.split(".")[1]) for k in vkeys if k.endswith("weight")})
    assert conv_idx == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision features.N
    assert set(k for k in audio.state_dict() if k.startswith("avgpool")) == {
        "avgpool.conv.weight", "avgpool.conv.bias", "avgpool.centroids"
    }  # hche11/VGGSound NetVLAD layout
    assert audio.state_dict()["conv1.weight"].shape == (64, 1, 7, 7)


@pytest.mark.parametrize("size,expected", [(256, (32, 16, 8)), (356, (45, 23, 12))])
def test_resnet_grid_sizes_match_spec(size: int, expected: tuple[int, int, int]) -> None:
    net = build_backbone(BackboneConfig("resnet18", layers=(1, 1, 1, 1), widths=(4, 4, 4, 4, 4)))
    outs = net(torch.randn(1, 3, size, size))
    assert tuple(o.shape[-1] for o in outs[1:]) == expected  # spec 6.1: 45 / 23 / 12 at 356


def test_vgg_d1_is_stride_8_and_audio_net_is_normalised() -> None:
    vgg = build_backbone(BackboneConfig("vgg16_d1", widths=(4, 4, 4, 4, 4)))
    assert vgg(torch.randn(1, 3, 256, 256))[0].shape[-1] == 32
    audio = build_audio_net(BackboneConfig("audio_resnet18", layers=(1, 1, 1, 1), widths=(4, 4, 4, 4, 8)), 4)
    emb = audio(torch.randn(3, 1, 257, 48))
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))


# -- blocks --------------------------------------------------------------------------------------
def test_temporal_gate_mixes_time_not_channels() -> None:
    torch.manual_seed(0)
    gate = TemporalGate(4, 4, frames=3)
    frames = torch.randn(2, 3, 4, 5, 5)  # (B, T, C, H, W)
    out = gate(TemporalGate.stack(frames))
    assert out.shape == (2, 4, 5, 5)
    # reversing time changes the output (the first conv weighs each time step separately) ...
    assert not torch.allclose(out, gate(TemporalGate.stack(frames.flip(1))))
    # ... and equals a reference built with an explicit per-time-step 2D conv (no channel/time mixing)
    w = gate.layers[0].weight  # (C, C, 3, 1, 1)
    ref = sum(F.conv2d(frames[:, t], w[:, :, t]) for t in range(3)) + gate.layers[0].bias[None, :, None, None]
    torch.testing.assert_close(gate.layers[0](TemporalGate.stack(frames)).squeeze(2), ref)


def test_coattention_graph_batched_equals_per_sample() -> None:
    torch.manual_seed(0)
    graph = CoAttentionGraph(6, nodes=3, rounds=2).eval()
    nodes = torch.randn(4, 3, 6, 5, 7)
    batched = graph(nodes)
    single = torch.cat([graph(nodes[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)
    # node 0 receives [msg from 1, msg from 2]: swapping the senders swaps the two halves
    msgs = graph.messages(nodes)
    swapped = graph.messages(nodes[:, [0, 2, 1]])
    torch.testing.assert_close(swapped[:, 0, :6], msgs[:, 0, 6:])
    torch.testing.assert_close(swapped[:, 0, 6:], msgs[:, 0, :6])


def test_frl_formula_on_hand_case() -> None:
    x = torch.tensor([[[[1.0, 10.0]], [[3.0, 10.0]]]])  # channel mean: [2, 10]; theta = 8
    out = FRL(rate=0.6, thresh=0.8)(x)
    w = torch.tensor([torch.sigmoid(torch.tensor(2.0)) * 0.6, torch.sigmoid(torch.tensor(10.0))])
    torch.testing.assert_close(out, (x * w + x) / 2)


def test_convgru_formula() -> None:
    torch.manual_seed(0)
    cell = ConvGRUCell(3)
    u, s = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    z = torch.sigmoid(cell.update_gate(torch.cat([u, s], 1)))
    r = torch.sigmoid(cell.reset_gate(torch.cat([u, s], 1)))
    h = torch.tanh(cell.out_gate(torch.cat([u, r * s], 1)))
    torch.testing.assert_close(cell(u, s), (1 - z) * s + z * h)


def test_param_groups_follow_extra_naming() -> None:
    model = build_model(get_config("tiny_s"))
    groups = param_groups(model, lr=1e-3, weight_decay=5e-4)
    lrs = sorted(g["lr"] for g in groups)
    assert lrs == pytest.approx([1e-3, 2e-3, 1e-2, 2e-2])
    n = sum(len(g["params"]) for g in groups)
    assert n == len(list(model.parameters()))


# -- factory, teachers, students -------------------------------------------------------------------
@pytest.mark.parametrize("name", [c for c in list_configs() if not c.startswith(("tiny_", "demo_"))])
def test_paper_configs_build_on_meta(name: str) -> None:
    with torch.device("meta"):
        model = build_model(get_config(name))
    assert sum(p.numel() for p in model.parameters()) > 1e6


TEACHERS = ("s", "sa", "st", "s_plus", "sa_plus", "st_plus")


@pytest.mark.parametrize("name", [f"tiny_{t}" for t in TEACHERS])
@pytest.mark.parametrize("size", [64, 96])
def test_teachers_any_size_and_loss(name: str, size: int) -> None:
    cfg = get_config(name)
    model = build_model(cfg)
    frames, spec = _inputs(cfg, size=size)
    out = model(frames, spec)
    labels = F.one_hot(torch.tensor([0, 3]), cfg.num_classes).float()
    loss = model.loss(out, labels)
    loss.backward()
    assert torch.isfinite(loss)
    cam = model.cam(out, torch.tensor([0, 3]))
    assert cam.shape == (2, *out.raw_cams.shape[-2:])
    assert (cam >= 0).all()


@pytest.mark.parametrize("name", TINY_STUDENTS)
def test_student_encode_head_equals_forward(name: str) -> None:
    torch.manual_seed(0)
    cfg = get_config(name)
    model = build_model(cfg).eval()
    frames, spec = _inputs(cfg)
    with torch.no_grad():
        full = model(frames, spec)
        feats = [model.encode(frames[:, t], model.encode_audio(spec[:, t])) for t in range(frames.shape[1])]
        window = {k: torch.stack([f[k] for f in feats], dim=1) for k in feats[0]}
        split = model.head(window)
    assert full.shape == (2, 1, cfg.input_size, cfg.input_size)
    torch.testing.assert_close(full, split)
    shapes = model.feature_shapes(cfg.input_size, cfg.input_size)
    assert list(shapes) == list(feats[0])
    assert all(tuple(feats[0][k].shape[1:]) == v for k, v in shapes.items())


@pytest.mark.parametrize("name", TINY_STUDENTS)
def test_student_audio_off_equals_audio_free_path(name: str) -> None:
    cfg = get_config(name)
    model = build_model(cfg).eval()
    if cfg.use_switch:  # an untrained AudioSwitch may say "off"; make it say "on" (logit of class 1 = +100)
        with torch.no_grad():
            model.switch.extra_fc.weight.zero_()
            model.switch.extra_fc.bias.copy_(torch.tensor([0.0, 100.0]))
    frames, spec = _inputs(cfg, batch=1)
    with torch.no_grad():
        emb = model.encode_audio(spec[:, 0])
        off = model.encode(frames[:, 0], emb, torch.zeros(1, 1))
        free = model.encode(frames[:, 0], None)
        on = model.encode(frames[:, 0], emb)
    for key in off:
        torch.testing.assert_close(off[key], free[key])
    assert "av" in on and on["av"].abs().sum() > 0 and free["av"].abs().sum() == 0


@pytest.mark.parametrize("name", TINY_STUDENTS)
def test_student_batch_independence_and_other_sizes(name: str) -> None:
    cfg = get_config(name)
    model = build_model(cfg).eval()
    frames, spec = _inputs(cfg, batch=3, size=96)
    with torch.no_grad():
        three = model(frames, spec)
        one = torch.cat([model(frames[i : i + 1], spec[i : i + 1]) for i in range(3)])
        train = model.forward_train(frames, spec)
    assert three.shape == (3, 1, 96, 96)
    torch.testing.assert_close(three, one, rtol=1e-4, atol=1e-5)
    assert train.shape[0] == 3 and train.shape[-2:] == (96, 96)


def test_sta_runs_at_356_and_lite_is_causal() -> None:
    cfg = get_config("tiny_sta").replace(input_size=356)
    model = build_model(cfg).eval()
    frames, spec = _inputs(cfg, batch=1)
    with torch.no_grad():
        assert model(frames, spec).shape == (1, 1, 356, 356)
    assert get_config("stanet_lite").lookahead == 0 and get_config("sta").lookahead == 1
    assert get_config("sta_plus").lookahead == 4


def test_student_trains_with_batch_above_one() -> None:
    cfg = get_config("tiny_sta_plus")
    model = build_model(cfg).train()
    frames, spec = _inputs(cfg, batch=2)
    maps = model.forward_train(frames, spec)
    assert maps.shape == (2, 3, 1, 64, 64)
    F.binary_cross_entropy_with_logits(maps, torch.rand_like(maps)).backward()
    assert model.extra_readout[0].weight.grad is not None
