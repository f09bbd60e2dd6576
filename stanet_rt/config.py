"""Model configurations: dataclasses, a registry of named configs, JSON (de)serialisation.

A config travels with every artifact (checkpoint, ONNX ``metadata_props``, engine sidecar), so a
file is self-describing. This module imports only the standard library.

Vocabulary (spec sections 2-7):
- ``arch``: which network: the SCAM teachers ``s``, ``sa``, ``st``; the SCAM+ teachers
  ``s_plus``, ``sa_plus``, ``st_plus``; ``audio_switch``; the students ``sta``, ``sta_plus`` and the
  light causal student ``stanet_lite``; ``audio_net`` (the VGGSound audio net alone, for imported
  ``vggsound_netvlad.pth.tar`` files).
- ``window_offsets``: frame offsets (relative to the output frame t) that a model reads. Positive
  offsets are look-ahead and decide the streaming delay.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ARCHS = (
    "s",
    "sa",
    "st",
    "s_plus",
    "sa_plus",
    "st_plus",
    "audio_switch",
    "sta",
    "sta_plus",
    "stanet_lite",
    "audio_net",
)
STUDENT_ARCHS = ("sta", "sta_plus", "stanet_lite")

Alignment = Literal["start", "end"]


@dataclass(frozen=True)
class AudioConfig:
    """Audio front end: 16 kHz mono, one 0.5 s window per video frame -> log-spectrogram (257 x 48).

    ``alignment`` says how a frame's window is placed: ``"start"`` is the original's evenly spread,
    start-aligned windows (offline only); ``"end"`` is the streaming window that ends at the frame's
    timestamp.
    """

    sample_rate: int = 16000
    window_seconds: float = 0.5
    nperseg: int = 512
    noverlap: int = 353
    tukey_alpha: float = 0.25
    alignment: Alignment = "end"

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_seconds))

    @property
    def hop(self) -> int:
        return self.nperseg - self.noverlap

    @property
    def n_freq(self) -> int:
        return self.nperseg // 2 + 1

    @property
    def n_time(self) -> int:
        return (self.window_samples - self.noverlap) // self.hop


@dataclass(frozen=True)
class BackboneConfig:
    """A visual or audio backbone.

    ``name`` is one of ``resnext101_32x8d``, ``resnet18``, ``resnet50``, ``vgg16_d1``, ``vgg16_bn_d1``,
    ``audio_resnet18`` (the VGGSound audio ResNet-18, 1 input channel) or a ``tiny_*`` variant.
    ``widths``/``layers`` override the stage widths / block counts (tiny test models); ``None`` keeps
    the published architecture, whose state-dict keys load the published weight files strictly.
    """

    name: str
    layers: tuple[int, ...] | None = None
    widths: tuple[int, ...] | None = None
    groups: int = 1
    width_per_group: int = 64
    weights: str | None = None  # optional local path to pretrained weights


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a model and feed it.

    Sizes are in pixels; ``input_size`` is the square side frames are resized to (the original
    always resizes to a square, spec section 0). Every model accepts any size divisible by
    ``stride`` (its coarsest feature stride).
    """

    name: str
    arch: str
    backbone: BackboneConfig
    input_size: int = 256
    num_classes: int = 28
    channels: int = 28  # width of the CAM / saliency head (28 in SCAM, 32 in STA)
    window_offsets: tuple[int, ...] = (0,)
    audio: AudioConfig | None = None
    audio_backbone: BackboneConfig | None = None
    netvlad_clusters: int = 16
    # > 0: the audio nets append an ordered loudness profile of the window in this many bins to their
    # NetVLAD embedding (``models.backbones.loudness_profile``; not in the original, whose configs keep 0)
    audio_envelope_bins: int = 0
    # the students' audio-visual gate: "stanet" (the paper's AVfusion) or "film" (feature-wise modulation,
    # ``models.blocks.AVFiLMGate``; ours, for the light models)
    av_fusion: str = "stanet"
    # students: add the parameter-free audio-visual synchrony gate over the window (``models.blocks.SyncGate``;
    # ours, needs the loudness profile and a window of several frames)
    sync_gate: bool = False
    # the gate correlates frame-to-frame changes of grey level and loudness (True) or their levels (False,
    # the first light models'), with |r| ** sync_power; see SyncGate
    sync_differences: bool = False
    sync_power: float = 4.0
    # how the gate acts on the saliency logits: "add" its weighted map, or "modulate" the probability
    # where the audio is active (SyncGate.modulate)
    sync_combine: str = "add"
    # what opens the modulating gate (SyncGate.modulate): "window", the std over the window of each frame's
    # loudness (the first light models'; a noise-only stretch opens it too, since the audio windows are
    # z-normalised), or "profile", the contrast of the loudness profile inside the output frame's own audio
    # window (an encoder feature ``activity`` per frame; issue 15)
    sync_activity: str = "window"
    # STA+: the synchrony gate's audio passes the AudioSwitch decision too (True, the first light STA+
    # models') or only ``audio_on`` (False, the light presets since issue 15: the gate has its own measure
    # of activity, and the switch, which says "no" on about a third of the frames, closed it on event
    # frames too; the switch still gates the audio-visual branch as in the paper)
    sync_switch: bool = True
    av_dim: int = 128  # AVfusion embedding width
    head_depth: int = 3  # number of 3x3 convs in the "extra" CAM head (SA/ST/+ teachers, STA+)
    head_width: int | None = None  # width of those convs (None: the backbone's output width)
    graph_rounds: int = 3  # message-passing rounds of the co-attention graph
    refine_rate: float = 0.6  # FRL
    refine_thresh: float = 0.8  # FRL
    use_switch: bool = False  # STA+: gate the audio path with AudioSwitch
    switch_input_size: int | None = None  # AudioSwitch frame size (356 in the paper)
    switch_backbone: BackboneConfig | None = None  # AudioSwitch trunk inside STA+ (ResNeXt-101 in the paper)
    # Compatibility mode for the authors' checkpoints (``stanet-rt import``, ``stanet_rt.original``): the
    # forward reproduces the original code's quirks (``.view`` temporal stacking in its frame orders, no
    # ReLU in the temporal gate, biased graph projections, STA+'s own message gate; see the README's table).
    # Off for every model we train: the fixed behaviour is the default.
    original: bool = False
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.av_fusion not in ("stanet", "film"):
            raise ValueError(f"unknown av_fusion {self.av_fusion!r}; expected 'stanet' or 'film'")
        if self.sync_combine not in ("add", "modulate"):
            raise ValueError(f"unknown sync_combine {self.sync_combine!r}; expected 'add' or 'modulate'")
        if self.sync_activity not in ("window", "profile"):
            raise ValueError(f"unknown sync_activity {self.sync_activity!r}; expected 'window' or 'profile'")
        if self.sync_gate and (self.audio is None or self.audio_envelope_bins < 1 or len(self.window_offsets) < 4):
            raise ValueError("sync_gate needs audio, audio_envelope_bins > 0 and a window of at least 4 frames")
        if 0 not in self.window_offsets:
            raise ValueError(f"window_offsets {self.window_offsets} must contain 0")
        o = self.window_offsets
        if self.arch == "sta_plus" and (len(o) != 9 or list(o) != sorted(set(o)) or o[4] != 0):
            # the head splits the window into 3 triplets around the co-attention graph's 3 nodes and
            # outputs the middle node: any other window built, then failed in a ``.view`` at run time
            raise ValueError(f"STA+ reads 3 triplets of frames (the graph's 3 nodes): window_offsets must be 9 "
                             f"increasing offsets with 0 in the middle, got {o}")
        if self.original:
            self._check_original()

    def _check_original(self) -> None:
        """The original code exists for these archs and windows only, without our additions."""
        windows = {"sta": (-1, 0, 1), "sta_plus": tuple(range(-4, 5))}
        if self.arch not in ("sta", "sta_plus", "audio_switch", "audio_net"):
            raise ValueError(f"original=True: no original code for arch {self.arch!r}")
        if self.arch in windows and self.window_offsets != windows[self.arch]:
            raise ValueError(f"original=True: {self.arch} reads window {windows[self.arch]}, "
                             f"not {self.window_offsets}")
        if self.av_fusion != "stanet" or self.sync_gate or self.audio_envelope_bins:
            raise ValueError("original=True: av_fusion 'film', sync_gate and audio_envelope_bins are ours")

    @property
    def is_student(self) -> bool:
        return self.arch in STUDENT_ARCHS

    @property
    def lookahead(self) -> int:
        """Frames of look-ahead (the streaming delay in frames); 0 for a causal config."""
        return max(0, max(self.window_offsets))

    @property
    def uses_audio(self) -> bool:
        return self.audio is not None

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data["backbone"] = _backbone_from_dict(data["backbone"])
        for key in ("audio_backbone", "switch_backbone"):
            if data.get(key) is not None:
                data[key] = _backbone_from_dict(data[key])
        if data.get("audio") is not None:
            data["audio"] = AudioConfig(**data["audio"])
        for key in ("window_offsets", "mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


def _backbone_from_dict(data: dict[str, Any]) -> BackboneConfig:
    data = dict(data)
    for key in ("layers", "widths"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return BackboneConfig(**data)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[[], ModelConfig]] = {}


def register_config(name: str) -> Callable[[Callable[[], ModelConfig]], Callable[[], ModelConfig]]:
    """Decorator: register a zero-argument factory returning a :class:`ModelConfig` under ``name``."""

    def wrap(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
        if name in _REGISTRY:
            raise ValueError(f"config {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def get_config(name: str) -> ModelConfig:
    """Return the registered config ``name`` (a fresh instance)."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown config {name!r}; known: {', '.join(list_configs())}") from None


def list_configs() -> list[str]:
    return sorted(_REGISTRY)


AUDIO = AudioConfig()
RESNEXT101 = BackboneConfig("resnext101_32x8d", layers=(3, 4, 23, 3), groups=32, width_per_group=8)
VGG16_D1 = BackboneConfig("vgg16_d1")
AUDIO_RESNET18 = BackboneConfig("audio_resnet18", layers=(2, 2, 2, 2))
# Tiny backbones for tests: same code paths and key layout, a few thousand parameters.
TINY_RESNET = BackboneConfig("resnet18", layers=(1, 1, 1, 1), widths=(8, 8, 16, 16, 32))
TINY_VGG = BackboneConfig("vgg16_d1", widths=(4, 8, 8, 16, 16))
TINY_AUDIO = BackboneConfig("audio_resnet18", layers=(1, 1, 1, 1), widths=(4, 4, 8, 8, 16))


# --- paper configs (spec Appendix A) ------------------------------------------------------------
@register_config("s")
def _s() -> ModelConfig:
    return ModelConfig("s", "s", RESNEXT101, input_size=256)


@register_config("sa")
def _sa() -> ModelConfig:
    return ModelConfig("sa", "sa", RESNEXT101, input_size=256, audio=AUDIO, audio_backbone=AUDIO_RESNET18)


@register_config("st")
def _st() -> ModelConfig:
    return ModelConfig("st", "st", RESNEXT101, input_size=256, window_offsets=(-1, 0, 1))


# S+ / SA+ read 3 graph nodes of one frame each (anchor first). Which frames the partners are depends
# on the sampling term (short / long / cross, spec 4.2); the offsets fix the count (3 frames per
# sample, which the cost count of ``stanet-rt info`` needs), as in training/presets.py.
PLUS_NODE_OFFSETS = (0, 1, 2)


@register_config("s_plus")
def _s_plus() -> ModelConfig:
    return ModelConfig("s_plus", "s_plus", VGG16_D1, input_size=256, window_offsets=PLUS_NODE_OFFSETS)


@register_config("sa_plus")
def _sa_plus() -> ModelConfig:
    return ModelConfig(
        "sa_plus", "sa_plus", VGG16_D1, input_size=256, window_offsets=PLUS_NODE_OFFSETS, audio=AUDIO,
        audio_backbone=AUDIO_RESNET18,
    )


@register_config("st_plus")
def _st_plus() -> ModelConfig:
    return ModelConfig("st_plus", "st_plus", VGG16_D1, input_size=256, window_offsets=tuple(range(-4, 5)))


@register_config("audio_switch")
def _audio_switch() -> ModelConfig:
    return ModelConfig(
        "audio_switch", "audio_switch", RESNEXT101, input_size=356, num_classes=2,
        audio=AUDIO, audio_backbone=AUDIO_RESNET18,
    )


@register_config("sta")
def _sta() -> ModelConfig:
    return ModelConfig(
        "sta", "sta", RESNEXT101, input_size=356, channels=32, window_offsets=(-1, 0, 1),
        audio=AUDIO, audio_backbone=AUDIO_RESNET18,
    )


@register_config("sta_plus")
def _sta_plus() -> ModelConfig:
    return ModelConfig(
        "sta_plus", "sta_plus", VGG16_D1, input_size=256, window_offsets=tuple(range(-4, 5)),
        audio=AUDIO, audio_backbone=AUDIO_RESNET18, use_switch=True, switch_input_size=356,
        switch_backbone=RESNEXT101,
    )


@register_config("stanet_lite")
def _stanet_lite() -> ModelConfig:
    """Light causal student (issue 8): ResNet-18 at 256, window (-2, -1, 0) so no look-ahead, a narrow
    audio net (widths / 4, 8 NetVLAD clusters -> 1024-d, + a 12-bin loudness profile: not an original
    model, so it gets the audio that can say "loud right now"). 256 keeps the /32 grid at 8 x 8."""
    return ModelConfig(
        "stanet_lite", "stanet_lite", BackboneConfig("resnet18"), input_size=256, channels=32,
        window_offsets=(-2, -1, 0), audio=AUDIO,
        audio_backbone=BackboneConfig("audio_resnet18", widths=(16, 16, 32, 64, 128)), netvlad_clusters=8,
        audio_envelope_bins=12, av_fusion="film",
    )


# --- the authors' checkpoints (``stanet-rt import``): the paper configs in compatibility mode -------
@register_config("sta_original")
def _sta_original() -> ModelConfig:
    return _sta().replace(name="sta_original", original=True)


@register_config("sta_plus_original")
def _sta_plus_original() -> ModelConfig:
    """The original STA+ test script feeds its AudioSwitch the node centres at 256 x 256 (loaded at 356,
    then its ``Resize(256)``), so the switch runs at the frame size here."""
    return _sta_plus().replace(name="sta_plus_original", original=True, switch_input_size=256)


@register_config("audio_switch_original")
def _audio_switch_original() -> ModelConfig:
    return _audio_switch().replace(name="audio_switch_original", original=True)


@register_config("audio_net")
def _audio_net() -> ModelConfig:
    """The VGGSound audio ResNet-18 + NetVLAD alone: (B, 1, 257, 48) -> (B, 8192) embedding."""
    return ModelConfig("audio_net", "audio_net", AUDIO_RESNET18, num_classes=0, audio=AUDIO,
                       audio_backbone=AUDIO_RESNET18, original=True)


# --- tiny configs for tests: same code paths, a few thousand parameters -------------------------
def _tiny(name: str, arch: str, backbone: BackboneConfig, **kw: Any) -> ModelConfig:
    base: dict[str, Any] = dict(input_size=64, num_classes=4, channels=8, head_depth=1, head_width=8,
                                av_dim=8, netvlad_clusters=4, graph_rounds=2)
    base.update(kw)
    return ModelConfig(name, arch, backbone, **base)


_TINY_AV = dict(audio=AUDIO, audio_backbone=TINY_AUDIO, audio_envelope_bins=4)
_TINY_FACTORIES: dict[str, Callable[[], ModelConfig]] = {
    "tiny_s": lambda: _tiny("tiny_s", "s", TINY_RESNET),
    "tiny_sa": lambda: _tiny("tiny_sa", "sa", TINY_RESNET, **_TINY_AV),
    "tiny_st": lambda: _tiny("tiny_st", "st", TINY_RESNET, window_offsets=(-1, 0, 1)),
    "tiny_s_plus": lambda: _tiny("tiny_s_plus", "s_plus", TINY_VGG, window_offsets=(0, 1, 2)),
    "tiny_sa_plus": lambda: _tiny("tiny_sa_plus", "sa_plus", TINY_VGG, window_offsets=(0, 1, 2), **_TINY_AV),
    "tiny_st_plus": lambda: _tiny("tiny_st_plus", "st_plus", TINY_VGG, window_offsets=tuple(range(-4, 5))),
    "tiny_audio_switch": lambda: _tiny("tiny_audio_switch", "audio_switch", TINY_RESNET, num_classes=2,
                                       **_TINY_AV),
    "tiny_sta": lambda: _tiny("tiny_sta", "sta", TINY_RESNET, window_offsets=(-1, 0, 1), **_TINY_AV),
    "tiny_sta_plus": lambda: _tiny("tiny_sta_plus", "sta_plus", TINY_VGG, window_offsets=tuple(range(-4, 5)),
                                   use_switch=True, switch_input_size=64, switch_backbone=TINY_RESNET,
                                   **_TINY_AV),
    "tiny_audio_net": lambda: _tiny("tiny_audio_net", "audio_net", TINY_AUDIO, num_classes=0, audio=AUDIO,
                                    audio_backbone=TINY_AUDIO, original=True),
    "tiny_sta_original": lambda: _tiny("tiny_sta_original", "sta", TINY_RESNET, window_offsets=(-1, 0, 1),
                                       audio=AUDIO, audio_backbone=TINY_AUDIO, original=True),
    "tiny_sta_plus_original": lambda: _tiny("tiny_sta_plus_original", "sta_plus", TINY_VGG,
                                            window_offsets=tuple(range(-4, 5)), use_switch=True,
                                            switch_input_size=64, switch_backbone=TINY_RESNET, audio=AUDIO,
                                            audio_backbone=TINY_AUDIO, original=True),
    "tiny_lite": lambda: _tiny("tiny_lite", "stanet_lite", TINY_RESNET, window_offsets=(-2, -1, 0),
                               **_TINY_AV),
}
for _name, _factory in _TINY_FACTORIES.items():
    register_config(_name)(_factory)
