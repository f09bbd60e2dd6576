"""Loading local weight files (stanet_rt.weights): files in the published formats, written here from
tiny backbones, load strictly and reproduce the outputs; every mismatch is a WeightsError that names
the file and the offending keys, and leaves the module untouched."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from stanet_rt.config import TINY_AUDIO, TINY_RESNET, TINY_VGG, BackboneConfig, get_config
from stanet_rt.errors import WeightsError
from stanet_rt.models.backbones import build_audio_net, build_backbone
from stanet_rt.models.factory import build_model
from stanet_rt.weights import load_backbone_weights, load_pretrained, read_state_dict

TINY_RESNEXT = BackboneConfig("resnext101_32x8d", layers=(1, 2, 1, 1), widths=(8, 8, 16, 16, 32), groups=4,
                              width_per_group=8)


def _save(path, state: dict) -> str:
    torch.save(state, path)
    return str(path)


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Non-default values everywhere (BN statistics included), so a load that skips a key shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + (0.5 if name.endswith("running_var") else -0.5))
    return module.eval()


def _torchvision_vgg_file(vgg: nn.Module) -> dict:
    """A torchvision ``vgg16`` state dict: ``features.N`` plus the classifier (fc6, fc7, fc8)."""
    state = {k: v.clone() for k, v in vgg.state_dict().items()}
    for i, shape in ((0, (8, 4)), (3, (8, 8)), (6, (10, 8))):
        state[f"classifier.{i}.weight"] = torch.zeros(shape)
        state[f"classifier.{i}.bias"] = torch.zeros(shape[0])
    return state


def test_vgg16_file_loads_features_and_ignores_the_classifier(tmp_path) -> None:
    src = _randomise(build_backbone(TINY_VGG), 0)
    path = _save(tmp_path / "vgg16-397923af.pth", _torchvision_vgg_file(src))
    dst = build_backbone(TINY_VGG).eval()
    load_backbone_weights(dst, TINY_VGG, path)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(dst(x)[0], src(x)[0])


@pytest.mark.parametrize("drop,add,pattern", [
    ("features.28.bias", None, r"1 missing keys \(e\.g\. features\.28\.bias\)"),
    (None, "features.30.weight", r"1 unexpected keys \(e\.g\. features\.30\.weight\)"),
])
def test_vgg16_file_other_mismatches_are_errors(tmp_path, drop: str | None, add: str | None,
                                                pattern: str) -> None:
    state = _torchvision_vgg_file(build_backbone(TINY_VGG))
    if drop:
        del state[drop]
    if add:
        state[add] = torch.zeros(3)
    path = _save(tmp_path / "vgg16.pth", state)
    with pytest.raises(WeightsError, match=r"vgg16\.pth: .*" + pattern):
        load_backbone_weights(build_backbone(TINY_VGG), TINY_VGG, path)


def test_wsl_resnext_file_with_fc_loads_strictly(tmp_path) -> None:
    """torch.hub's resnext101_32x8d_wsl state dict: torchvision layout including the 1000-way fc."""
    src = _randomise(build_backbone(TINY_RESNEXT), 1)
    state = dict(src.state_dict()) | {"fc.weight": torch.zeros(1000, 128), "fc.bias": torch.zeros(1000)}
    path = _save(tmp_path / "ig_resnext101_32x8-c38310e5.pth", state)
    cfg = dataclasses.replace(TINY_RESNEXT, weights=path)
    dst = build_backbone(cfg).eval()
    load_backbone_weights(dst, cfg)  # the path comes from BackboneConfig.weights
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(dst(x), src(x), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model_state_dict", "model"])
def test_dataparallel_prefixes_and_nested_dicts(tmp_path, wrap: str | None) -> None:
    src = _randomise(build_backbone(TINY_RESNET), 2)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    path = _save(tmp_path / "dp.pth", {wrap: state, "epoch": 3} if wrap else state)
    assert set(read_state_dict(path)) == set(src.state_dict())
    dst = build_backbone(TINY_RESNET).eval()
    load_backbone_weights(dst, TINY_RESNET, path)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(dst(x)[-1], src(x)[-1])


def test_shape_mismatch_names_key_and_both_shapes_and_leaves_module_untouched(tmp_path) -> None:
    state = dict(_randomise(build_backbone(TINY_RESNET), 3).state_dict())
    state["layer3.0.conv1.weight"] = torch.zeros(16, 8, 1, 1)
    path = _save(tmp_path / "r18.pth", state)
    dst = build_backbone(TINY_RESNET)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    expected = r"r18\.pth: .*layer3\.0\.conv1\.weight \(16, 8, 1, 1\) != \(16, 16, 3, 3\)"
    with pytest.raises(WeightsError, match=expected):
        load_backbone_weights(dst, TINY_RESNET, path)
    for k, v in dst.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_unreadable_files_are_clear_errors(tmp_path) -> None:
    good = tmp_path / "good.pth"
    torch.save(build_backbone(TINY_RESNET).state_dict(), good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"cut\.pth: not a readable PyTorch weight file"):
        read_state_dict(cut)
    names = tmp_path / "names.pth"
    torch.save({"layers": ["conv1", "bn1"], "epoch": 1}, names)
    with pytest.raises(WeightsError, match=r"names\.pth: does not contain a state dict of tensors"):
        read_state_dict(names)
    with pytest.raises(WeightsError, match="no weight file given for backbone resnet18"):
        load_backbone_weights(build_backbone(TINY_RESNET), TINY_RESNET)


def test_load_pretrained_applies_audio_weights(tmp_path) -> None:
    cfg = get_config("tiny_sta")
    audio = _randomise(build_audio_net(TINY_AUDIO, cfg.netvlad_clusters, cfg.audio_envelope_bins), 4)
    path = _save(tmp_path / "audio.pth", {"model_state_dict": dict(audio.state_dict())})
    cfg = cfg.replace(audio_backbone=dataclasses.replace(cfg.audio_backbone, weights=path))
    model = build_model(cfg)
    assert load_pretrained(model, cfg) == [f"audio_net <- {path}"]
    spec = torch.randn(2, 1, 257, 48)
    torch.testing.assert_close(model.eval().encode_audio(spec), audio(spec))


@pytest.mark.parametrize("prefix", ["audnet.", "module.", "module.audnet."])
def test_vggsound_audio_weights_under_a_prefix_load(tmp_path, prefix: str) -> None:
    """Audio weights saved from DataParallel (``module.``) or inside the original STANet models (``audnet.``,
    next to the rest of the model, which is not used) load into the audio net with the prefix stripped."""
    src = _randomise(build_audio_net(TINY_AUDIO, 4), 5)
    state = {f"{prefix}{k}": v for k, v in src.state_dict().items()}
    state[f"{prefix}fc_.weight"] = torch.zeros(309, src.out_dim)
    if "audnet." in prefix:  # the visual part of the original model shares the file
        state[prefix.removesuffix("audnet.") + "features.0.weight"] = torch.zeros(8, 3, 3, 3)
    path = _save(tmp_path / "vggsound_netvlad.pth.tar", {"model_state_dict": state})
    dst = build_audio_net(TINY_AUDIO, 4).eval()
    load_backbone_weights(dst, TINY_AUDIO, path)
    spec = torch.randn(2, 1, 257, 48)
    torch.testing.assert_close(dst(spec), src(spec))


def test_audio_weights_from_a_stanet_rt_checkpoint(tmp_path) -> None:
    """A student checkpoint's ``audio_net.*`` tensors load as audio weights (e.g. into another model)."""
    from stanet_rt.checkpoint import save_checkpoint

    cfg = get_config("tiny_sta")
    student = build_model(cfg)
    _randomise(student.audio_net, 6)
    path = save_checkpoint(tmp_path / "sta.pt", student)
    dst = build_audio_net(TINY_AUDIO, cfg.netvlad_clusters, cfg.audio_envelope_bins).eval()
    load_backbone_weights(dst, TINY_AUDIO, path)
    spec = torch.randn(2, 1, 257, 48)
    torch.testing.assert_close(dst(spec), student.audio_net.eval()(spec))


def test_audio_weights_without_the_audio_net_are_an_error(tmp_path) -> None:
    path = _save(tmp_path / "visual.pth", {"audnet_x.conv1.weight": torch.zeros(1), "features.0.weight":
                                           torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"visual\.pth: does not match AudioNet: .*missing keys"):
        load_backbone_weights(build_audio_net(TINY_AUDIO, 4), TINY_AUDIO, path)
