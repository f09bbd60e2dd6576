"""Weight loading (strict, with the published files' extra keys ignored) and `stanet-rt info`."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from stanet_rt.checkpoint import load_checkpoint, save_checkpoint
from stanet_rt.cli import app
from stanet_rt.config import TINY_AUDIO, TINY_RESNET, TINY_VGG, get_config
from stanet_rt.errors import InputError, WeightsError
from stanet_rt.models.backbones import build_audio_net, build_backbone
from stanet_rt.models.factory import build_model
from stanet_rt.models.info import model_info
from stanet_rt.weights import load_backbone_weights, load_pretrained, read_state_dict


def _torchvision_style_file(tmp_path, net, extra: dict, wrap: str | None = None, prefix: str = ""):
    state = {prefix + k: v.clone() for k, v in net.state_dict().items()}
    state.update(extra)
    path = tmp_path / "weights.pth"
    torch.save({wrap: state} if wrap else state, path)
    return path


def test_resnet_round_trip_ignores_fc_and_truncated_stages(tmp_path) -> None:
    src = build_backbone(TINY_RESNET)
    path = _torchvision_style_file(tmp_path, src, {"fc.weight": torch.zeros(10, 32), "fc.bias": torch.zeros(10)})
    dst = build_backbone(TINY_RESNET)
    load_backbone_weights(dst, TINY_RESNET, path)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(src.eval()(x)[-1], dst.eval()(x)[-1])
    trunk = build_backbone(TINY_RESNET, num_stages=3)  # S uses layer1..3: layer4 keys are ignored
    load_backbone_weights(trunk, TINY_RESNET, path)


def test_vgg_and_vggsound_layouts(tmp_path) -> None:
    vgg = build_backbone(TINY_VGG)
    path = _torchvision_style_file(tmp_path, vgg, {"classifier.0.weight": torch.zeros(2, 2)})
    load_backbone_weights(build_backbone(TINY_VGG), TINY_VGG, path)
    audio = build_audio_net(TINY_AUDIO)
    path = _torchvision_style_file(tmp_path, audio, {"fc_.weight": torch.zeros(309, 256)},
                                   wrap="model_state_dict", prefix="module.")
    dst = build_audio_net(TINY_AUDIO)
    load_backbone_weights(dst, TINY_AUDIO, path)
    torch.testing.assert_close(dst.avgpool.centroids, audio.avgpool.centroids)


def test_mismatches_are_clear_errors(tmp_path) -> None:
    net = build_backbone(TINY_RESNET)
    state = net.state_dict()
    del state["layer2.0.conv1.weight"]
    state["layer1.0.conv1.weight"] = torch.zeros(1, 1, 3, 3)
    state["head.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"bad\.pth.*missing keys.*layer2\.0\.conv1\.weight.*shape.*unexpected"):
        load_backbone_weights(build_backbone(TINY_RESNET), TINY_RESNET, path)
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="junk.pth: not a readable"):
        read_state_dict(tmp_path / "junk.pth")


def test_load_pretrained_applies_config_paths(tmp_path) -> None:
    cfg = get_config("tiny_sta")
    src = build_model(cfg)
    bb = tmp_path / "bb.pth"
    torch.save(src.backbone.state_dict(), bb)
    cfg = cfg.replace(backbone=cfg.backbone.__class__(**{**cfg.backbone.__dict__, "weights": str(bb)}))
    dst = build_model(cfg)
    assert load_pretrained(dst, cfg) == [f"backbone <- {bb}"]
    torch.testing.assert_close(dst.backbone.conv1.weight, src.backbone.conv1.weight)


def test_checkpoint_round_trip_and_errors(tmp_path) -> None:
    model = build_model(get_config("tiny_lite")).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, {"epoch": 3})
    loaded, cfg, meta = load_checkpoint(path)
    assert cfg == model.config and meta == {"epoch": 3}
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="x.pt: not a readable"):
        load_checkpoint(tmp_path / "x.pt")


def test_model_info_paper_numbers_match_spec() -> None:
    sta = model_info("sta")
    assert abs(sta["params"] / 1e6 - 99.7) < 0.1  # spec section 10: 99.7 M used
    assert abs(sta["gmac"]["per_frame_cached"] - 44.7) < 0.5
    assert abs(sta["gmac"]["per_frame_uncached"] - 134) < 1.5
    assert sta["lookahead_frames"] == 1
    lite = model_info("stanet_lite")
    assert lite["gmac"]["per_frame_cached"] < 0.1 * sta["gmac"]["per_frame_cached"]


def test_info_cli(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["info", "tiny_sta", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["window_offsets"] == [-1, 0, 1]
    assert data["gmac"]["per_frame_uncached"] > data["gmac"]["per_frame_cached"]
    ckpt = save_checkpoint(tmp_path / "c.pt", build_model(get_config("tiny_sta_plus")))
    result = runner.invoke(app, ["info", str(ckpt)])
    assert result.exit_code == 0 and "tiny_sta_plus" in result.output
    with pytest.raises(InputError, match="nonexistent"):
        model_info("nonexistent")
