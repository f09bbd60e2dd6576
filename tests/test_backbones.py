"""Backbones: the state-dict key layout is a public contract (published weight files load strictly).

The expected layouts are produced here by a small, independent re-statement of torchvision's
``resnet.py`` / ``vgg.py`` naming rules and of hche11/VGGSound ``models/resnet.py`` (keys and shapes
only, no modules), and compared key by key with what :mod:`stanet_rt.models.backbones` builds on the
``meta`` device (ResNeXt-101 is 88 M parameters: nothing is allocated).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stanet_rt.config import (
    AUDIO_RESNET18,
    RESNEXT101,
    TINY_AUDIO,
    TINY_RESNET,
    TINY_VGG,
    VGG16_D1,
    BackboneConfig,
)
from stanet_rt.models.backbones import (
    NetVLAD,
    audio_embedding_dim,
    build_audio_net,
    build_backbone,
    loudness_profile,
)

Shapes = dict[str, tuple[int, ...]]


# -- independent reference layouts ---------------------------------------------------------------
def _bn(prefix: str, c: int) -> Shapes:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def torchvision_resnet_layout(bottleneck: bool, layers: tuple[int, ...], groups: int = 1,
                              width_per_group: int = 64, in_channels: int = 3, stages: int = 4,
                              fc: int | None = None) -> Shapes:
    """Keys and shapes of torchvision's ``ResNet(block, layers, groups, width_per_group)``."""
    expansion = 4 if bottleneck else 1
    out: Shapes = {"conv1.weight": (64, in_channels, 7, 7)} | _bn("bn1", 64)
    inplanes = 64
    for s, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        if s >= stages:
            break
        stride = 1 if s == 0 else 2
        for b in range(blocks):
            p = f"layer{s + 1}.{b}"
            if bottleneck:
                width = int(planes * (width_per_group / 64.0)) * groups
                out[f"{p}.conv1.weight"] = (width, inplanes, 1, 1)
                out |= _bn(f"{p}.bn1", width)
                out[f"{p}.conv2.weight"] = (width, width // groups, 3, 3)
                out |= _bn(f"{p}.bn2", width)
                out[f"{p}.conv3.weight"] = (planes * expansion, width, 1, 1)
                out |= _bn(f"{p}.bn3", planes * expansion)
            else:
                out[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                out |= _bn(f"{p}.bn1", planes)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                out |= _bn(f"{p}.bn2", planes)
            if b == 0 and (stride != 1 or inplanes != planes * expansion):
                out[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                out |= _bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    if fc is not None:
        out |= {"fc.weight": (fc, inplanes), "fc.bias": (fc,)}
    return out


# torchvision vgg16 ``features``: (index, in, out) of every conv; ReLUs and pools carry no weights.
VGG16_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
               (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512),
               (26, 512, 512), (28, 512, 512)]


def torchvision_vgg16_features_layout() -> Shapes:
    out: Shapes = {}
    for i, cin, cout in VGG16_CONVS:
        out[f"features.{i}.weight"] = (cout, cin, 3, 3)
        out[f"features.{i}.bias"] = (cout,)
    return out


def vggsound_audio_layout(clusters: int = 16) -> Shapes:
    """hche11/VGGSound ``resnet18(pool="vlad")`` minus ``fc_``: 1-channel stem, NetVLAD as avgpool."""
    out = torchvision_resnet_layout(False, (2, 2, 2, 2), in_channels=1)
    out |= {"avgpool.conv.weight": (clusters, 512, 1, 1), "avgpool.conv.bias": (clusters,),
            "avgpool.centroids": (clusters, 512)}
    return out


def _layout(module: nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _assert_same_layout(got: Shapes, want: Shapes) -> None:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    wrong = [(k, got[k], want[k]) for k in want if got[k] != want[k]]
    assert not wrong, f"shape mismatches {wrong[:5]}"


# -- published layouts, on the meta device ---------------------------------------------------------
@pytest.mark.parametrize(
    "cfg,bottleneck,groups,wpg",
    [(BackboneConfig("resnet18"), False, 1, 64), (BackboneConfig("resnet50"), True, 1, 64),
     (RESNEXT101, True, 32, 8)],
    ids=["resnet18", "resnet50", "resnext101_32x8d"],
)
def test_resnet_layouts_match_torchvision(cfg: BackboneConfig, bottleneck: bool, groups: int,
                                         wpg: int) -> None:
    with torch.device("meta"):
        net = build_backbone(cfg)
        trunk3 = build_backbone(cfg, num_stages=3)
    layers = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3), "resnext101_32x8d": (3, 4, 23, 3)}[cfg.name]
    _assert_same_layout(_layout(net), torchvision_resnet_layout(bottleneck, layers, groups, wpg))
    _assert_same_layout(_layout(trunk3), torchvision_resnet_layout(bottleneck, layers, groups, wpg, stages=3))
    exp = 4 if bottleneck else 1
    assert net.channels == (64 * exp, 128 * exp, 256 * exp, 512 * exp)
    assert net.strides == (4, 8, 16, 32)
    assert trunk3.channels == net.channels[:3] and trunk3.strides == (4, 8, 16)


def test_published_parameter_counts() -> None:
    """torchvision's documented totals minus the ImageNet fc (512 / 2048 x 1000 + 1000)."""
    with torch.device("meta"):
        r18 = build_backbone(BackboneConfig("resnet18"))
        s_trunk = build_backbone(RESNEXT101, num_stages=3)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(r18) == 11_689_512 - 513_000
    # S's trunk (conv1..layer3): the full trunk minus layer4, as spec 3.2 / section 10 (58.0 M with head)
    assert abs(count(s_trunk) / 1e6 - 58.0) < 0.05


def test_vgg16_d1_layout_and_structure() -> None:
    with torch.device("meta"):
        vgg = build_backbone(VGG16_D1)
    _assert_same_layout(_layout(vgg), torchvision_vgg16_features_layout())
    feats = vgg.features
    assert len(feats) == 30  # torchvision's 31 modules minus the final pool (index 30)
    for i in (4, 9, 16):
        assert isinstance(feats[i], nn.MaxPool2d) and (feats[i].kernel_size, feats[i].stride) == (2, 2)
    pool4 = feats[23]
    assert isinstance(pool4, nn.MaxPool2d)
    assert (pool4.kernel_size, pool4.stride, pool4.padding) == (3, 1, 1)
    for i, *_ in VGG16_CONVS:
        dil = 2 if i >= 24 else 1
        assert feats[i].dilation == (dil, dil) and feats[i].padding == (dil, dil), i
    assert isinstance(feats[29], nn.ReLU)
    assert vgg.channels == (512,) and vgg.strides == (8,)


def test_vgg16_bn_d1_is_vgg16_d1_with_a_batch_norm_after_every_conv() -> None:
    # the light presets' VGG (no ImageNet weights to start from): torchvision vgg16_bn's feature indices
    torch.manual_seed(0)
    plain = build_backbone(BackboneConfig("vgg16_d1", widths=(4, 4, 8, 8, 8)))
    bn = build_backbone(BackboneConfig("vgg16_bn_d1", widths=(4, 4, 8, 8, 8)))
    convs = [m for m in bn.features if isinstance(m, nn.Conv2d)]
    norms = [i for i, m in enumerate(bn.features) if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == 13 and len(norms) == 13 and len(bn.features) == 30 + 13
    assert all(isinstance(bn.features[i - 1], nn.Conv2d) and isinstance(bn.features[i + 1], nn.ReLU) for i in norms)
    assert norms[:2] == [1, 4]  # vgg16_bn: features.0 conv, .1 bn, .2 relu, .3 conv, .4 bn
    assert [c.dilation for c in convs] == [m.dilation for m in plain.features if isinstance(m, nn.Conv2d)]
    x = torch.randn(2, 3, 40, 40)
    assert bn(x)[0].shape == plain(x)[0].shape == (2, 8, 5, 5)
    with pytest.raises(ValueError, match="unknown visual backbone"):
        build_backbone(BackboneConfig("vgg16_xx"))


def test_vggsound_audio_net_layout() -> None:
    with torch.device("meta"):
        audio = build_audio_net(AUDIO_RESNET18)
    _assert_same_layout(_layout(audio), vggsound_audio_layout())
    assert audio.out_dim == 8192 == audio_embedding_dim(AUDIO_RESNET18)


# -- behaviour on tiny real inputs -----------------------------------------------------------------
def test_resnet_stage_outputs_truncation_and_pooling() -> None:
    torch.manual_seed(0)
    net = build_backbone(TINY_RESNET).eval()
    x = torch.randn(2, 3, 64, 64)
    outs = net(x)
    want = [(2, c, 64 // s, 64 // s) for c, s in zip(net.channels, net.strides, strict=True)]
    assert [tuple(o.shape) for o in outs] == want
    trunk = build_backbone(TINY_RESNET, num_stages=3).eval()
    trunk.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("layer4.")})
    short = trunk(x)
    assert len(short) == 3 and not hasattr(trunk, "layer4")
    for a, b in zip(short, outs[:3], strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(net.forward_pooled(x), outs[-1].mean(dim=(2, 3)))


def test_resnext_grouped_widths_follow_torchvision() -> None:
    cfg = BackboneConfig("resnext101_32x8d", layers=(1, 1, 1, 1), widths=(8, 8, 16, 16, 32), groups=4,
                         width_per_group=8)
    net = build_backbone(cfg).eval()
    _assert_same_layout(_layout(net), _tiny_bottleneck_layout(cfg))
    assert net.layer3[0].conv2.groups == 4
    assert net(torch.randn(1, 3, 64, 64))[-1].shape == (1, 32 * 4, 2, 2)


def _tiny_bottleneck_layout(cfg: BackboneConfig) -> Shapes:
    """The reference layout with custom widths: scale planes exactly as torchvision's rule does."""
    out: Shapes = {"conv1.weight": (cfg.widths[0], 3, 7, 7)} | _bn("bn1", cfg.widths[0])
    inplanes = cfg.widths[0]
    for s, planes in enumerate(cfg.widths[1:]):
        width = int(planes * (cfg.width_per_group / 64.0)) * cfg.groups
        p = f"layer{s + 1}.0"
        out[f"{p}.conv1.weight"] = (width, inplanes, 1, 1)
        out |= _bn(f"{p}.bn1", width)
        out[f"{p}.conv2.weight"] = (width, width // cfg.groups, 3, 3)
        out |= _bn(f"{p}.bn2", width)
        out[f"{p}.conv3.weight"] = (planes * 4, width, 1, 1)
        out |= _bn(f"{p}.bn3", planes * 4)
        out[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
        out |= _bn(f"{p}.downsample.1", planes * 4)
        inplanes = planes * 4
    return out


@pytest.mark.parametrize("size,grid", [(256, 32), (356, 44), (64, 8)])
def test_vgg_d1_is_stride_8(size: int, grid: int) -> None:
    vgg = build_backbone(TINY_VGG)
    (out,) = vgg(torch.randn(1, 3, size, size))  # 2x2 pools floor: 356 -> 178 -> 89 -> 44
    assert out.shape == (1, TINY_VGG.widths[-1], grid, grid)
    assert (out >= 0).all()  # ends in the ReLU after conv5_3, no pool


@pytest.mark.parametrize("size", [64, 100, 255, 356, 37])
def test_grid_sizes_match_the_outputs(size: int) -> None:
    """``grid_sizes`` (what students' ``feature_shapes`` use) is exact for any size: the ResNet stride-2
    ops round up, the VGG 2x2 max-pools round down (100 -> 13 at /8 for ResNet, 12 for VGG)."""
    x = torch.randn(1, 3, size, size)
    for net in (build_backbone(TINY_RESNET), build_backbone(TINY_RESNET, num_stages=3), build_backbone(TINY_VGG)):
        with torch.no_grad():
            outs = net(x)
        assert net.grid_sizes(size) == tuple(o.shape[-1] for o in outs) == tuple(o.shape[-2] for o in outs)


def _reference_netvlad(x: torch.Tensor, conv: nn.Conv2d, centroids: torch.Tensor) -> torch.Tensor:
    """hche11/VGGSound NetVLAD.forward, written with the explicit (B, K, C, N) residual tensor."""
    n, c = x.shape[:2]
    k = centroids.shape[0]
    x = F.normalize(x, p=2, dim=1)
    soft = F.softmax(conv(x).view(n, k, -1), dim=1)
    flat = x.view(n, c, -1)
    residual = (flat.expand(k, -1, -1, -1).permute(1, 0, 2, 3)
                - centroids.expand(flat.size(-1), -1, -1).permute(1, 2, 0).unsqueeze(0))
    vlad = (residual * soft.unsqueeze(2)).sum(dim=-1)
    vlad = F.normalize(vlad, p=2, dim=2).view(n, -1)
    return F.normalize(vlad, p=2, dim=1)


def test_netvlad_matches_reference_formula_and_norms() -> None:
    torch.manual_seed(0)
    vlad = NetVLAD(clusters=4, dim=8, alpha=100.0)
    with torch.no_grad():  # away from the published init, so the soft assignment is not one-hot
        vlad.conv.weight.normal_()
        vlad.conv.bias.normal_()
    x = torch.randn(3, 8, 5, 2)
    out = vlad(x)
    torch.testing.assert_close(out, _reference_netvlad(x, vlad.conv, vlad.centroids))
    assert out.shape == (3, 32)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    # intra-normalised blocks of equal norm before the final L2: every cluster block has norm 1/sqrt(K)
    torch.testing.assert_close(out.view(3, 4, 8).norm(dim=2), torch.full((3, 4), 0.5))


def test_netvlad_published_init_ties_assignment_to_centroids() -> None:
    torch.manual_seed(1)
    vlad = NetVLAD(clusters=16, dim=512, alpha=100.0)
    torch.testing.assert_close(vlad.conv.weight[:, :, 0, 0], 200.0 * vlad.centroids)
    torch.testing.assert_close(vlad.conv.bias, -100.0 * vlad.centroids.norm(dim=1))


def test_audio_net_grid_and_embedding() -> None:
    torch.manual_seed(0)
    audio = build_audio_net(TINY_AUDIO, clusters=4).eval()
    seen = {}
    audio.layer4.register_forward_hook(lambda m, i, o: seen.update(grid=tuple(o.shape[-2:])))
    emb = audio(torch.randn(2, 1, 257, 48))
    assert seen["grid"] == (9, 2)  # spec 2: 129x24 -> 65x12 -> 33x6 -> 17x3 -> 9x2
    assert emb.shape == (2, 4 * TINY_AUDIO.widths[-1]) == (2, audio.out_dim)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    assert not torch.allclose(emb[0], emb[1])


def test_loudness_profile_is_ordered_and_appended_without_parameters() -> None:
    spec = torch.zeros(2, 1, 257, 48)
    spec[0, :, :, 40:] = 1.0  # loud at the end of the window (the frame itself, end-aligned)
    spec[1, :, :, :8] = 1.0  # loud at the start
    prof = loudness_profile(spec, 12)
    assert prof.shape == (2, 12)
    torch.testing.assert_close(prof[0], torch.tensor([0.0] * 10 + [1.0] * 2))
    torch.testing.assert_close(prof[1], torch.tensor([1.0] * 2 + [0.0] * 10))
    with pytest.raises(ValueError, match="loudness bins"):
        loudness_profile(spec, 5)
    torch.manual_seed(0)
    plain = build_audio_net(TINY_AUDIO, clusters=4).eval()
    torch.manual_seed(0)
    timed = build_audio_net(TINY_AUDIO, clusters=4, envelope_bins=12).eval()
    assert timed.out_dim == plain.out_dim + 12 == audio_embedding_dim(TINY_AUDIO, 4, 12)
    assert timed.state_dict().keys() == plain.state_dict().keys()  # published weights still load
    x = torch.randn(2, 1, 257, 48)
    emb = timed(x)
    torch.testing.assert_close(emb[:, : plain.out_dim], plain(x))
    torch.testing.assert_close(emb[:, plain.out_dim :], loudness_profile(x, 12))
    with pytest.raises(ValueError, match="envelope_bins"):
        build_audio_net(TINY_AUDIO, envelope_bins=-1)


def test_unknown_backbones_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown visual backbone"):
        build_backbone(BackboneConfig("resnet34"))
    with pytest.raises(ValueError, match="unknown visual backbone"):
        build_backbone(AUDIO_RESNET18)
    with pytest.raises(ValueError, match="unknown audio backbone"):
        build_audio_net(TINY_RESNET)
    with pytest.raises(ValueError, match="num_stages"):
        build_backbone(TINY_RESNET, num_stages=5)
