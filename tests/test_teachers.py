"""SCAM / SCAM+ teachers (stanet_rt/models/teachers.py): output layout, grid at the spec's sizes,
loss weights, CAM export rule, temporal order, audio path, batch independence, trainability.

Complements tests/test_models.py (every teacher runs at 64 and 96 and back-propagates).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _model_helpers import audio_sensitive, lively

from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model

TEACHERS = ("s", "sa", "st", "s_plus", "sa_plus", "st_plus")
# frames per sample, refined targets per sample, feature stride
LAYOUT = {"s": (1, 1, 16), "sa": (1, 1, 32), "st": (3, 3, 32),
          "s_plus": (3, 3, 8), "sa_plus": (3, 3, 8), "st_plus": (9, 3, 8)}


def _clip(arch: str, batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = LAYOUT[arch][0]
    return torch.randn(batch, t, 3, size, size, generator=g), torch.randn(batch, t, 1, 257, 48, generator=g)


def _model(arch: str, live: bool = False) -> torch.nn.Module:
    """Tiny teacher in eval mode; ``live``: weights redrawn so behaviour tests see their inputs."""
    torch.manual_seed(0)
    model = build_model(get_config(f"tiny_{arch}")).eval()
    return lively(model) if live else model


# the sizes the spec runs each family at (coarse 256 / fine 356; "+" models at 256)
@pytest.mark.parametrize("arch,size", [("s", 256), ("s", 356), ("sa", 256), ("st", 256), ("st", 356),
                                       ("s_plus", 256), ("sa_plus", 256), ("st_plus", 256)])
def test_output_layout_at_spec_sizes(arch: str, size: int) -> None:
    model = _model(arch)
    frames, spec = _clip(arch, 1, size)
    t, r, stride = LAYOUT[arch]
    k = model.config.num_classes
    grid = -(-size // stride)  # the ResNet stride-2 convs round up: 356 -> 23 at /16, 12 at /32
    with torch.no_grad():
        out = model(frames, spec)
    assert out.raw_cams.shape == (1, t, k, grid, grid)
    assert out.refined_cams.shape == (1, r, k, grid, grid)
    torch.testing.assert_close(out.raw_logits, out.raw_cams.mean(dim=(-2, -1)))  # GAP, no FC
    torch.testing.assert_close(out.refined_logits, out.refined_cams.mean(dim=(-2, -1)))
    # anchor: S/SA the frame, ST frame t of (t-1, t, t+1), "+" node 0 (ST+: centre of the first triplet)
    assert (out.centre, out.raw_centre) == {"s": (0, 0), "sa": (0, 0), "st": (1, 1), "s_plus": (0, 0),
                                            "sa_plus": (0, 0), "st_plus": (0, 1)}[arch]


@pytest.mark.parametrize("arch", TEACHERS)
def test_loss_uses_the_spec_weights(arch: str) -> None:
    model = _model(arch)
    frames, spec = _clip(arch, 2, 64)
    labels = F.one_hot(torch.tensor([1, 2]), model.config.num_classes).float()
    out = model(frames, spec)
    mlsm = F.multilabel_soft_margin_loss
    raw = [mlsm(out.raw_logits[:, i], labels) for i in range(out.raw_logits.shape[1])]
    ref = [mlsm(out.refined_logits[:, i], labels) for i in range(out.refined_logits.shape[1])]
    weight = 1.0 if arch in ("s", "sa") else 0.4  # S/SA: raw + refined; ST and "+": 0.4 sum raw + sum refined
    torch.testing.assert_close(model.loss(out, labels), weight * sum(raw) + sum(ref))


@pytest.mark.parametrize("arch", TEACHERS)
def test_cam_export_rule(arch: str) -> None:
    model = _model(arch)
    frames, spec = _clip(arch, 2, 64)
    classes = torch.tensor([3, 0])
    with torch.no_grad():
        out = model(frames, spec)
    cam = model.cam(out, classes)
    for b, c in enumerate(classes.tolist()):
        raw = out.raw_cams[b, out.raw_centre, c]
        ref = out.refined_cams[b, out.centre, c]
        # ReLU((raw + refined) / 2) of the anchor; S+ keeps the raw term (spec 9.1 item 6)
        torch.testing.assert_close(cam[b], F.relu((raw + ref) / 2))
    # which logits decide "correctly classified" (spec 3.1): S the raw CAM's, every other the refined
    expected = out.raw_logits[:, out.raw_centre] if arch == "s" else out.refined_logits[:, out.centre]
    torch.testing.assert_close(model.anchor_logits(out), expected)


@pytest.mark.parametrize("arch", ["st", "st_plus"])
def test_temporal_teachers_read_frames_in_order(arch: str) -> None:
    model = _model(arch, live=True)
    frames, _ = _clip(arch, 1, 64)
    order = torch.arange(frames.shape[1])
    order[0], order[2] = 2, 0  # swap t-1 and t+1 (of the first triplet for ST+)
    with torch.no_grad():
        out = model(frames)
        swapped = model(frames[:, order])
    # raw CAMs are per frame: they just follow the frames; the temporal gate sees the order
    torch.testing.assert_close(swapped.raw_cams, out.raw_cams[:, order])
    assert not torch.allclose(swapped.refined_cams[:, out.centre], out.refined_cams[:, out.centre])


def _audio_sensitive(arch: str) -> torch.nn.Module:
    return audio_sensitive(_model(arch))


def test_sa_audio_reaches_refined_but_not_raw() -> None:
    model = _audio_sensitive("sa")
    frames, spec = _clip("sa", 1, 64)
    with torch.no_grad():
        out = model(frames, spec)
        other = model(frames, torch.randn_like(spec))
    torch.testing.assert_close(other.raw_cams, out.raw_cams)
    assert not torch.allclose(other.refined_cams, out.refined_cams)
    with pytest.raises(ValueError, match="spectrograms"):
        model(frames)


def test_sa_plus_raw_logits_follow_the_audio() -> None:
    """Spec 4.3: SA+ takes its raw logits AFTER the audio fusion (unlike SA, whose raw CAM is audio-free)."""
    model = _audio_sensitive("sa_plus")
    frames, spec = _clip("sa_plus", 1, 64)
    with torch.no_grad():
        out = model(frames, spec)
        other = model(frames, torch.randn_like(spec))
    assert not torch.allclose(other.raw_logits, out.raw_logits)


@pytest.mark.parametrize("arch", TEACHERS)
def test_batch_independent_in_eval(arch: str) -> None:
    model = _model(arch)
    frames, spec = _clip(arch, 2, 64)
    with torch.no_grad():
        both = model(frames, spec)
        single = [model(frames[i : i + 1], spec[i : i + 1]) for i in range(2)]
    for field in ("raw_cams", "refined_cams"):
        torch.testing.assert_close(
            getattr(both, field), torch.cat([getattr(s, field) for s in single]), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("arch", TEACHERS)
def test_every_parameter_is_trained(arch: str) -> None:
    """No declared-but-unused modules (spec 9.3 "dead weight"): the loss reaches every parameter (DDP
    without find_unused_parameters needs it; S+ once built an extra_fuse it never used)."""
    model = _model(arch).train()
    frames, spec = _clip(arch, 2, 64)
    labels = F.one_hot(torch.tensor([1, 2]), model.config.num_classes).float()
    model.loss(model(frames, spec), labels).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_plus_graph_shares_the_attention_gate() -> None:
    for arch in ("s_plus", "sa_plus", "st_plus"):
        model = _model(arch)
        assert model.extra_graph.gate is model.extra_attention.gate  # spec 4.1: the same extra_gate
        assert (model.extra_graph.gru is None) == (arch == "st_plus")  # ST+: FRL only, no ConvGRU


def test_module_level_cam_for_class() -> None:
    """The module-level ``cam_for_class(outputs, labels)`` that the training brief names (class indices or
    one-hot rows) is the teachers' CAM export rule."""
    from stanet_rt.models.teachers import cam_for_class

    model = _model("st")
    frames, _ = _clip("st", 2, 64)
    with torch.no_grad():
        out = model(frames)
    labels = torch.tensor([1, 2])
    torch.testing.assert_close(cam_for_class(out, labels), model.cam(out, labels))
    one_hot = F.one_hot(labels, model.config.num_classes).float()
    torch.testing.assert_close(cam_for_class(out, one_hot), model.cam(out, labels))


def test_s_plus_node_is_the_attention_term() -> None:
    """Spec 4.1: an S+ graph node is ReLU(x + SelfAttGate(x)), no fusion conv is built."""
    model = _model("s_plus", live=True)
    assert model.extra_fuse is None
    frames, _ = _clip("s_plus", 1, 64)
    seen = []
    model.extra_graph.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        out = model(frames)
    x = out.raw_cams.flatten(0, 1)
    torch.testing.assert_close(seen[0].flatten(0, 1), F.relu(x + model.extra_attention(x)))


@pytest.mark.parametrize("arch", ["s_plus", "sa_plus", "st_plus"])
def test_plus_teachers_need_three_nodes(arch: str) -> None:
    """The paper "+" configs read 3 nodes (ST+: 3 triplets); other frame counts are clear errors."""
    assert len(get_config(arch).window_offsets) == LAYOUT[arch][0]
    model = _model(arch)
    frames, spec = _clip(arch, 1, 64)
    with pytest.raises(ValueError, match="3 graph nodes"):
        model(frames[:, :2], spec[:, :2])
    with pytest.raises(ValueError, match="window_offsets"):
        build_model(get_config(f"tiny_{arch}").replace(window_offsets=(0,)))
