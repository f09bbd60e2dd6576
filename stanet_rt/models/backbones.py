"""Backbones: ResNet-18/50, ResNeXt-101 32x8d, VGG16 with the dilated conv5 ("D1"), and the VGGSound
audio ResNet-18 + NetVLAD.

State-dict keys are a public contract: they follow torchvision's ``resnet.py`` / ``vgg.py`` (and
the WSL ResNeXt, which uses the same layout) and hche11/VGGSound ``models/resnet.py`` (conv1 with one
input channel, NetVLAD stored as ``avgpool.conv`` / ``avgpool.centroids``), so published weight
files load strictly (``stanet_rt.weights``). ``BackboneConfig.widths`` / ``layers`` shrink the same
code for tests.

Imports only torch and ``stanet_rt.config``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stanet_rt.config import BackboneConfig, ModelConfig

RESNET_LAYERS = {
    "resnet18": (2, 2, 2, 2),
    "resnet50": (3, 4, 6, 3),
    "resnext101_32x8d": (3, 4, 23, 3),
    "audio_resnet18": (2, 2, 2, 2),
}
DEFAULT_WIDTHS = (64, 64, 128, 256, 512)  # stem, planes of layer1..layer4


def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, groups=groups, bias=False, dilation=dilation)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision-layout ResNet/ResNeXt trunk returning every stage's output.

    ``forward(x)`` (B, C_in, H, W) -> [layer1 (/4), layer2 (/8), layer3 (/16), layer4 (/32)], truncated
    to ``num_stages`` (S uses layer3 only: the original's ``children()[:7]``). ``channels`` and
    ``strides`` describe that list.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, ...],
                 widths: tuple[int, ...] = DEFAULT_WIDTHS, groups: int = 1, width_per_group: int = 64,
                 in_channels: int = 3, num_stages: int = 4) -> None:
        super().__init__()
        if not 1 <= num_stages <= 4:
            raise ValueError(f"num_stages must be 1..4, got {num_stages}")
        self.groups, self.base_width = groups, width_per_group
        stem = widths[0]
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._cin = stem
        channels = []
        for i in range(num_stages):
            stage = self._make_layer(block, widths[i + 1], layers[i], stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", stage)
            channels.append(widths[i + 1] * block.expansion)
        self.num_stages = num_stages
        self.channels: tuple[int, ...] = tuple(channels)
        self.strides: tuple[int, ...] = (4, 8, 16, 32)[:num_stages]

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._cin != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self._cin, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        mods = [block(self._cin, planes, stride, downsample, self.groups, self.base_width)]
        self._cin = planes * block.expansion
        mods += [block(self._cin, planes, 1, None, self.groups, self.base_width) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def grid_sizes(self, size: int) -> tuple[int, ...]:
        """Spatial size of every stage's output for an input side ``size``: every stride-2 op here
        (7x7/2 conv pad 3, 3x3/2 max-pool pad 1, 3x3/2 conv pad 1, 1x1/2 conv) gives ceil(n / 2)."""
        sizes = []
        n = (size + 1) // 2  # conv1
        for _ in range(self.num_stages):
            n = (n + 1) // 2  # the max-pool before layer1, the first stride-2 conv of layer2..4
            sizes.append(n)
        return tuple(sizes)

    def stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages():
            x = stage(x)
            outs.append(x)
        return outs

    def forward_pooled(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, channels[-1]): global average pool of the last stage."""
        return self.forward(x)[-1].mean(dim=(2, 3))


# VGG16 configuration "D": conv widths per stage and the torchvision ``features`` indices.
_VGG16_STAGES = (2, 2, 3, 3, 3)


class VGG16D1(nn.Module):
    """The "conservative" VGG16 of SCAM+ / STA+ (spec 4.1), torchvision ``features.N`` indices kept.

    ``batch_norm`` (``vgg16_bn_d1``; ours, not the paper's) puts a BatchNorm after every conv, with the
    indices of torchvision's ``vgg16_bn``: the light presets train their narrow VGG from scratch (no
    ImageNet weights), and without normalisation it stayed at chance for their few CPU epochs.

    conv1..conv3 stages each end in a 2x2 max-pool; conv4 ends in a 3x3 stride-1 max-pool (index 23);
    conv5 uses dilation 2; no final pool. Output: one map with ``channels[-1]`` (512) at stride 8.
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 512), batch_norm: bool = False) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        cin = 3
        for stage, (n_convs, width) in enumerate(zip(_VGG16_STAGES, widths, strict=True)):
            dilation = 2 if stage == 4 else 1
            for _ in range(n_convs):
                mods.append(nn.Conv2d(cin, width, 3, padding=dilation, dilation=dilation))
                if batch_norm:
                    mods.append(nn.BatchNorm2d(width))
                mods.append(nn.ReLU(inplace=True))
                cin = width
            if stage < 3:
                mods.append(nn.MaxPool2d(2, 2))
            elif stage == 3:
                mods.append(nn.MaxPool2d(3, 1, 1))
        self.features = nn.Sequential(*mods)
        self.channels: tuple[int, ...] = (widths[-1],)
        self.strides: tuple[int, ...] = (8,)

    def grid_sizes(self, size: int) -> tuple[int]:
        """Output side for an input side ``size``: the three 2x2 max-pools each round down (n // 2);
        the 3x3 stride-1 pool and the padded / dilated convs keep the size."""
        return (size // 2 // 2 // 2,)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.features(x)]


class NetVLAD(nn.Module):
    """NetVLAD pooling (VGGSound): (B, C, H, W) -> (B, clusters * C), intra- and L2-normalised."""

    def __init__(self, clusters: int = 16, dim: int = 512, alpha: float = 100.0) -> None:
        super().__init__()
        self.clusters, self.dim, self.alpha = clusters, dim, alpha
        self.conv = nn.Conv2d(dim, clusters, 1, bias=True)
        self.centroids = nn.Parameter(torch.rand(clusters, dim))
        with torch.no_grad():  # the published initialisation (assignment tied to the centroids)
            self.conv.weight.copy_((2.0 * alpha * self.centroids)[..., None, None])
            self.conv.bias.copy_(-alpha * self.centroids.norm(dim=1))

    def forward(self, x: Tensor) -> Tensor:
        x = F.normalize(x, p=2, dim=1)
        assign = F.softmax(self.conv(x).flatten(2), dim=1)  # (B, K, N)
        flat = x.flatten(2)  # (B, C, N)
        # sum_n a_kn (x_n - c_k) = (A X^T) - (sum_n a_kn) c_k, without the (B, K, C, N) residual tensor
        vlad = torch.bmm(assign, flat.transpose(1, 2)) - assign.sum(-1, keepdim=True) * self.centroids
        vlad = F.normalize(vlad, p=2, dim=2)
        return F.normalize(vlad.flatten(1), p=2, dim=1)


def loudness_profile(spec: Tensor, bins: int) -> Tensor:
    """The ordered loudness profile of log-spectrogram windows: (B, 1, F, T) -> (B, bins).

    Mean over frequency of every time column, averaged over ``bins`` equal runs of columns (T must be
    divisible by ``bins``), oldest first. The windows are z-normalised (spec 1), so this is the
    loudness over the window relative to its own mean: with the streaming (end-aligned) window the
    last bin says how loud the sound is at the frame itself. Parameter-free.
    """
    b, _, _, t = spec.shape
    if t % bins:
        raise ValueError(f"{t} spectrogram columns do not split into {bins} loudness bins")
    return spec.mean(dim=(1, 2)).reshape(b, bins, t // bins).mean(dim=2)


class AudioNet(nn.Module):
    """VGGSound audio ResNet-18 (1 input channel) + NetVLAD: (B, 1, 257, 48) -> (B, out_dim).

    Keys match ``vggsound_netvlad.pth.tar``'s ``model_state_dict`` minus its 309-way ``fc_``.

    ``envelope_bins`` > 0 appends :func:`loudness_profile` (``envelope_bins`` values) to the NetVLAD
    embedding. A deliberate addition to the original: NetVLAD pools the time-frequency grid without
    order, so the embedding says what sounds in the 0.5 s window but hardly *when*, while telling a
    sounding object from a silent look-alike needs "loud right now" (the source moves with its sound).
    The profile has no parameters, so published weights still load; 0 keeps the original embedding.
    """

    def __init__(
        self, layers: tuple[int, ...], widths: tuple[int, ...], clusters: int = 16, envelope_bins: int = 0
    ) -> None:
        super().__init__()
        if envelope_bins < 0:
            raise ValueError(f"envelope_bins must be >= 0, got {envelope_bins}")
        trunk = ResNet(BasicBlock, layers, widths, in_channels=1)
        # Same attribute names as VGGSound's ResNet so the keys line up (conv1, bn1, layer1..4, avgpool).
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = trunk.stages()
        self.avgpool = NetVLAD(clusters, trunk.channels[-1])
        self.envelope_bins = envelope_bins
        self.out_dim = clusters * trunk.channels[-1] + envelope_bins

    def forward(self, spec: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(spec))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        emb = self.avgpool(x)
        if self.envelope_bins:
            emb = torch.cat([emb, loudness_profile(spec, self.envelope_bins)], dim=1)
        return emb


def audio_net_of(config: ModelConfig) -> AudioNet:
    """The audio net a model config asks for (its audio backbone, NetVLAD clusters, loudness bins)."""
    if config.audio_backbone is None:
        raise ValueError(f"{config.name}: no audio backbone")
    return build_audio_net(config.audio_backbone, config.netvlad_clusters, config.audio_envelope_bins)


def audio_dim_of(config: ModelConfig) -> int:
    """Width of :func:`audio_net_of`'s embedding without building the net."""
    if config.audio_backbone is None:
        raise ValueError(f"{config.name}: no audio backbone")
    return audio_embedding_dim(config.audio_backbone, config.netvlad_clusters, config.audio_envelope_bins)


def build_backbone(cfg: BackboneConfig, num_stages: int | None = None) -> ResNet | VGG16D1:
    """Build the visual backbone ``cfg.name`` (see module docstring); ``num_stages`` truncates ResNets."""
    if cfg.name in ("vgg16_d1", "vgg16_bn_d1"):
        return VGG16D1(cfg.widths or (64, 128, 256, 512, 512), batch_norm=cfg.name == "vgg16_bn_d1")
    if cfg.name not in RESNET_LAYERS or cfg.name == "audio_resnet18":
        raise ValueError(f"unknown visual backbone {cfg.name!r}")
    block = BasicBlock if cfg.name == "resnet18" else Bottleneck
    layers = cfg.layers or RESNET_LAYERS[cfg.name]
    return ResNet(block, layers, cfg.widths or DEFAULT_WIDTHS, cfg.groups, cfg.width_per_group,
                  num_stages=num_stages or 4)


def audio_embedding_dim(cfg: BackboneConfig, clusters: int = 16, envelope_bins: int = 0) -> int:
    """Width of :func:`build_audio_net`'s output without building it: clusters x last-stage channels
    (+ the loudness profile's bins)."""
    return clusters * (cfg.widths or DEFAULT_WIDTHS)[-1] + envelope_bins


def build_audio_net(cfg: BackboneConfig, clusters: int = 16, envelope_bins: int = 0) -> AudioNet:
    """Build the audio net (``audio_resnet18``): (B, 1, 257, 48) -> (B, clusters * C + envelope_bins)."""
    if cfg.name != "audio_resnet18":
        raise ValueError(f"unknown audio backbone {cfg.name!r}")
    return AudioNet(
        cfg.layers or RESNET_LAYERS["audio_resnet18"], cfg.widths or DEFAULT_WIDTHS, clusters, envelope_bins
    )
