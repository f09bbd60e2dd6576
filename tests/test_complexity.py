"""Parameter / MAC counting (stanet_rt.models.complexity): exact counts on hand-computable layers, the
per-frame split of a student with and without feature caching, and the published reference figures
(torchvision's GMACs at 224, spec section 10), all counted on the ``meta`` device."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import Tensor, nn

from stanet_rt.config import AUDIO, AUDIO_RESNET18, RESNEXT101, VGG16_D1, BackboneConfig, ModelConfig
from stanet_rt.models.backbones import build_audio_net, build_backbone
from stanet_rt.models.complexity import FrameCost, count_macs, count_params, frame_cost
from stanet_rt.models.student_base import StudentModel


def test_macs_of_single_ops_are_exact() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(2, 3, 16, 16)
    assert count_macs(lambda: conv(x)) == 2 * 8 * 3 * 9 * 16 * 16  # bias and padding not counted
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
    assert count_macs(lambda: grouped(torch.randn(1, 8, 4, 4))) == 8 * (8 // 4) * 9 * 16
    lin = nn.Linear(10, 5)
    assert count_macs(lambda: lin(torch.randn(4, 10))) == 4 * 10 * 5
    a, b = torch.randn(3, 4, 6), torch.randn(3, 6, 7)
    assert count_macs(lambda: torch.bmm(a, b)) == 3 * 4 * 6 * 7
    assert count_macs(lambda: torch.einsum("bij,bjk->bik", a, b)) == 3 * 4 * 6 * 7
    conv3d = nn.Conv3d(4, 2, (3, 1, 1))
    assert count_macs(lambda: conv3d(torch.randn(1, 4, 3, 5, 5))) == 2 * 4 * 3 * 25
    # not counted (spec 10): BN, activations, softmax, pooling, resizing
    free = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.Softmax(dim=1), nn.MaxPool2d(2),
                         nn.Upsample(scale_factor=2))
    assert count_macs(lambda: free.eval()(x)) == 0


def test_meta_device_counts_equal_real_counts() -> None:
    cfg = BackboneConfig("resnet18", layers=(1, 1, 1, 1), widths=(4, 4, 8, 8, 16))
    real = build_backbone(cfg).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.device("meta"):
        meta = build_backbone(cfg)
        xm = torch.randn(1, 3, 64, 64)
    assert count_macs(lambda: meta(xm)) == count_macs(lambda: real(x)) > 0
    # parameters only (BN running statistics are buffers): conv1 4*3*49 + bn1 2*4 = 596 for the stem
    stem = nn.Sequential(real.conv1, real.bn1)
    assert count_params(stem) == 4 * 3 * 49 + 2 * 4
    assert count_params(meta) == count_params(real) > count_params(stem)


class _ToyStudent(StudentModel):
    """A student whose three parts have hand-computable MACs (S x S frames, T = 3):
    audio Linear(257*48 -> 4); encode 3x3 conv 3 -> 4 plus Linear(4 -> 2) on the embedding;
    head 1x1 conv over the T stacked feature maps (4T -> 1)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.audio = nn.Linear(257 * 48, 4)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.av = nn.Linear(4, 2)
        self.out = nn.Conv2d(4 * len(config.window_offsets), 1, 1)

    @property
    def audio_embedding_dim(self) -> int:
        return 4

    def encode_audio(self, spectrogram: Tensor) -> Tensor:
        return self.audio(spectrogram.flatten(1))

    def encode(self, frames: Tensor, audio_embedding: Tensor | None = None,
               audio_on: Tensor | None = None) -> OrderedDict[str, Tensor]:
        emb, on = self.audio_inputs(frames.shape[0], audio_embedding, audio_on, frames)
        return OrderedDict(x=self.conv(frames), a=self.av(emb) * on)

    def head(self, window: dict[str, Tensor], output_size: tuple[int, int] | None = None) -> Tensor:
        return self.out(window["x"].flatten(1, 2))

    def feature_shapes(self, height: int, width: int) -> OrderedDict[str, tuple[int, ...]]:
        return OrderedDict(x=(4, height, width), a=(2,))


@pytest.mark.parametrize("offsets", [(-1, 0, 1), (-2, -1, 0)])
def test_student_cost_with_and_without_caching(offsets: tuple[int, ...]) -> None:
    s, t = 8, len(offsets)
    cfg = ModelConfig("toy", "sta", BackboneConfig("resnet18"), input_size=s, window_offsets=offsets,
                      audio=AUDIO)
    with torch.device("meta"):
        toy = _ToyStudent(cfg)
    cost = frame_cost(toy, cfg)
    audio, encode, head = 257 * 48 * 4, 4 * 3 * 9 * s * s + 4 * 2, 4 * t * s * s
    assert isinstance(cost, FrameCost) and cost.window == t
    assert (cost.audio_gmac, cost.encode_gmac, cost.head_gmac) == pytest.approx((audio / 1e9, encode / 1e9,
                                                                                 head / 1e9))
    assert cost.cached_gmac == pytest.approx((audio + encode + head) / 1e9)
    assert cost.uncached_gmac == pytest.approx((t * (audio + encode) + head) / 1e9)
    bigger = frame_cost(toy, cfg, size=2 * s)  # conv costs scale with the pixel count, audio does not
    assert bigger.audio_gmac == pytest.approx(cost.audio_gmac)
    assert bigger.head_gmac == pytest.approx(4 * cost.head_gmac)


def test_frame_cost_without_audio_counts_no_audio() -> None:
    cfg = ModelConfig("toy", "sta", BackboneConfig("resnet18"), input_size=8, window_offsets=(-1, 0, 1))
    with torch.device("meta"):
        toy = _ToyStudent(cfg)
    cost = frame_cost(toy, cfg)
    assert cost.audio_gmac == 0.0
    assert cost.uncached_gmac == pytest.approx(3 * cost.encode_gmac + cost.head_gmac)


@pytest.mark.parametrize(
    "cfg,size,gmac",
    [
        (RESNEXT101, 224, 16.41),  # torchvision resnext101_32x8d (fc: +0.002)
        (BackboneConfig("resnet50"), 224, 4.09),  # torchvision resnet50
        (BackboneConfig("resnet18"), 224, 1.81),  # torchvision resnet18
        (RESNEXT101, 356, 44.04),  # spec section 10
        (VGG16_D1, 256, 25.48),  # spec section 10
    ],
    ids=["resnext101@224", "resnet50@224", "resnet18@224", "resnext101@356", "vgg16_d1@256"],
)
def test_published_backbone_gmacs(cfg: BackboneConfig, size: int, gmac: float) -> None:
    with torch.device("meta"):
        net = build_backbone(cfg)
        x = torch.randn(1, 3, size, size)
    assert count_macs(lambda: net(x)) / 1e9 == pytest.approx(gmac, abs=0.01)


def test_audio_net_cost_and_size_match_spec() -> None:
    with torch.device("meta"):
        audio = build_audio_net(AUDIO_RESNET18)
        spec = torch.randn(1, 1, 257, 48)
    assert count_macs(lambda: audio(spec)) / 1e9 == pytest.approx(0.49, abs=0.005)  # spec 2 / 10
    assert count_params(audio) / 1e6 == pytest.approx(11.19, abs=0.005)
