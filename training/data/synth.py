"""The synthetic audio-visual event set (``stanet-rt synth``): AVE-style clips whose sounding object
must be found, generated deterministically from a seed, with evaluation-only ground truth.

Each clip shows a source object of its class (the class tag), silent distractors (one of the same
class in ``distractor_prob`` of the clips, flagged ``has_same_class_distractor``), an object of another
class, optionally bright saturated objects of no class (``SceneParams.salient``), and background
clutter; a :class:`Variation` randomises per clip the fps, sample rate, class colours, textures,
timbre and rhythm (presets ``synth-hard``: what training uses, ``synth-unseen``: what it never sees).
Its audio is the source's class sound, modulated by a syllable
envelope inside one AVE-style event segment (whole seconds), over quiet background noise. The source
pulses with that envelope; distractors pulse out of sync or not at all (``synth_scene``). Ground truth
(never read by training): a Gaussian at the source on event frames, a mixture over the visible
objects on silent frames (``synth_scene.density_maps``), and fixations sampled from it.

Layout written under ``OUT``:

    videos/<video_id>.mp4            H.264 (or MPEG-4) + AAC mono, the clip's fps and sample rate
    Annotations.txt                  Category&VideoID&Quality&StartTime&EndTime (AVE format)
    trainSet.txt valSet.txt testSet.txt   the splits, same format (``training.data.ave`` reads them)
    meta/<video_id>.json             per-frame boxes of the source and distractors, flags, segments
    gt/<video_id>.h5                 ``density`` (T, H, W) float32 max-1 per frame, ``fixations`` uint8
    stavis/                          the test split in the STAViS layout (``stanet-rt evaluate --data
                                     OUT/stavis --dataset SYNTH --split 1``; ``training.data.stavis``)
    synth.json                       the generator settings, seed and class table

Determinism: clip i depends only on (seed, i, settings) through its own ``SeedSequence``; the split
depends on the number of clips: the first ~70 % are train, then val, then test (class = i mod K,
so every split cycles through the classes).

Imports numpy and ``training.data.{ave,atomic,records,synth_*}`` (av, h5py, scipy, pillow through
``synth_io``); must not import torch or anything above.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stanet_rt.training.data import synth_io
from stanet_rt.training.data.ave import ANNOTATIONS, SPLIT_FILES, AnnotationRow, write_annotations
from stanet_rt.training.data.records import event_labels
from stanet_rt.training.data.synth_audio import background as background_noise
from stanet_rt.training.data.synth_audio import class_carrier, syllable_envelope
from stanet_rt.training.data.synth_classes import SHAPES, SynthClass, class_table
from stanet_rt.training.data.synth_render import Texture, render_frames
from stanet_rt.training.data.synth_render import background as background_image
from stanet_rt.training.data.synth_scene import (
    ObjectTrack,
    SceneParams,
    add_salient,
    density_maps,
    envelope_at_frames,
    sample_fixations,
    sample_tracks,
)

from stanet_rt.errors import InputError
from stanet_rt.fileio import write_text
from stanet_rt.progress import track

STAVIS_DB = "SYNTH"
SPLITS = ("train", "val", "test")
GROUND_TRUTH = {
    "density": "per frame max 1; event frames: a Gaussian at the source (sigma = sigma_scale x its side); "
    "silent frames: an equal-mass mixture of such Gaussians over all objects",
    "fixations": "fixations draws per frame from the density normalised to sum 1; binary",
}
SETTINGS = "synth.json"
OUTPUTS = ("videos", "meta", "gt", "stavis", ANNOTATIONS, *SPLIT_FILES.values(), SETTINGS)


@dataclass(frozen=True)
class Variation:
    """Per-clip randomisation of everything that does not say which object sounds (none by default: the
    fixed class looks and sounds of the original set). Drawn from the clip's own random stream.

    ``fps`` / ``sample_rates``: choices per clip (empty: the config's); ``colour_jitter``: per clip and
    class, a uniform offset of up to this much per RGB channel (0-255; every object of the class alike, so
    a silent twin still looks the same); ``texture_prob``: probability that a class's objects carry
    stripes or a checker (random period, angle); ``pitch``: the sound's pitch factor range; ``timbre``:
    :func:`~training.data.synth_audio.class_carrier`'s per-clip timbre variation; ``tempo``: range of a
    factor on the syllables' lengths and gaps (the rhythm); ``texture_period``: range of a texture's
    period as a fraction of the object's side.
    """

    fps: tuple[int, ...] = ()
    sample_rates: tuple[int, ...] = ()
    colour_jitter: float = 0.0
    texture_prob: float = 0.0
    texture_period: tuple[float, float] = (0.2, 0.5)
    pitch: tuple[float, float] = (0.95, 1.05)
    timbre: float = 0.0
    tempo: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthetic set (sizes in pixels, times in seconds, rates in Hz).

    ``size``: square frame side (even, for yuv420p); ``seconds``: whole seconds, as AVE's event times;
    ``sound_level``: RMS of the source sound at full envelope; ``background_level``: RMS of the
    background noise; ``clutter``: static background shapes per clip; ``noise``: per-pixel sensor
    noise std (0-255); ``fixations``: fixation draws per frame; ``sigma_scale``: GT Gaussian sigma as a
    fraction of the object's side; ``split``: train / val / test fractions; ``full_event_prob``: the
    probability that the event lasts the whole clip (else it lasts 1 s up to the whole clip).
    """

    classes: int = 4
    size: int = 128
    fps: int = 8
    seconds: int = 4
    sample_rate: int = 16000
    scene: SceneParams = field(default_factory=SceneParams)
    sound_level: float = 0.3
    background_level: float = 0.02
    clutter: int = 8
    noise: float = 3.0
    fixations: int = 15
    sigma_scale: float = 0.5
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    full_event_prob: float = 0.25
    variation: Variation = field(default_factory=Variation)

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 2:
            raise InputError(f"synth: size must be an even number of pixels >= 32, got {self.size}")
        if self.fps < 1 or self.seconds < 1:
            raise InputError(f"synth: fps and seconds must be >= 1, got {self.fps} and {self.seconds}")
        if not 1 <= self.classes <= 28:
            raise InputError(f"synth: classes must be in 1..28, got {self.classes}")
        if not 0.0 <= self.scene.distractor_prob <= 1.0:
            raise InputError(f"synth: distractor_prob must be in [0, 1], got {self.scene.distractor_prob}")
        if any(f < 1 for f in self.variation.fps) or any(r < 8000 for r in self.variation.sample_rates):
            raise InputError(f"synth: fps choices must be >= 1 and sample rates >= 8000 Hz, got {self.variation}")

    @property
    def n_frames(self) -> int:
        return self.fps * self.seconds

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Presets: "synth-lite" is the original set (4 classes, 4 s at 8 fps, 128 px, fixed looks and sounds);
# "synth-hard" is what the CPU training presets use now (issue 15): the same classes with randomised
# colours, textures, sizes, timbres and rhythms, objects crossing the whole frame, salient silent
# distractors, 6-10 fps and three sample rates; "synth-unseen" is the configuration training never sees,
# which the report also scores: other fps and sample rates, wider ranges of every nuisance, more salient
# distractors and clutter. "tiny" / "tiny-hard" are for tests (64 px, 2 s).
_HARD_SCENE = SceneParams(object_scale=(0.12, 0.3), max_speed=0.25, salient=2, salient_speed=0.35)
_HARD = Variation(
    fps=(6, 8, 10),
    sample_rates=(16000, 22050, 32000),
    colour_jitter=35.0,
    texture_prob=0.5,
    pitch=(0.85, 1.2),
    timbre=1.0,
    tempo=(0.6, 1.6),
)
_UNSEEN = Variation(
    fps=(7, 12),
    sample_rates=(24000, 44100),
    colour_jitter=50.0,
    texture_prob=0.7,
    texture_period=(0.15, 0.6),
    pitch=(0.8, 1.3),
    timbre=1.5,
    tempo=(0.5, 2.0),
)
PRESETS: dict[str, SynthConfig] = {
    "synth-lite": SynthConfig(),
    "synth-hard": SynthConfig(scene=_HARD_SCENE, variation=_HARD),
    "synth-unseen": SynthConfig(
        scene=SceneParams(
            distractor_prob=0.75, object_scale=(0.1, 0.34), max_speed=0.3, salient=3, salient_speed=0.45
        ),
        variation=_UNSEEN,
        clutter=12,
        noise=5.0,
        split=(0.1, 0.1, 0.8),
    ),
    "tiny": SynthConfig(size=64, seconds=2, clutter=4),
    "tiny-hard": SynthConfig(size=64, seconds=2, clutter=4, scene=_HARD_SCENE, variation=_HARD),
    "tiny-unseen": SynthConfig(size=64, seconds=2, clutter=4, variation=_UNSEEN, split=(0.2, 0.2, 0.6)),
}


@dataclass(frozen=True, eq=False)
class Clip:
    """One generated clip in memory: ``frames`` (T, H, W, 3) uint8, ``audio`` (n,) float32 mono,
    ``events`` (T,) bool, ``density`` (T, H, W) float32 max-1, ``fixations`` (T, H, W) uint8."""

    video_id: str
    index: int
    klass: SynthClass
    class_index: int
    split: str
    segment: tuple[int, int]
    frames: np.ndarray
    audio: np.ndarray
    events: np.ndarray
    tracks: list[ObjectTrack]
    density: np.ndarray
    fixations: np.ndarray
    fps: int
    sample_rate: int

    @property
    def has_same_class_distractor(self) -> bool:
        return any(t.role == "same_class" for t in self.tracks)

    def meta(self, config: SynthConfig) -> dict[str, Any]:
        """The JSON-ready metadata (boxes are (x0, y0, x1, y1) pixels, rounded to 1/1000)."""
        source = self.tracks[0]
        return {
            "video_id": self.video_id,
            "class_index": self.class_index,
            "class_name": self.klass.name,
            "split": self.split,
            "fps": self.fps,
            "n_frames": len(self.frames),
            "size": config.size,
            "sample_rate": self.sample_rate,
            "event_segments": [list(self.segment)],
            "events": self.events.astype(int).tolist(),
            "has_same_class_distractor": self.has_same_class_distractor,
            "source": _track_meta(source),
            "distractors": [_track_meta(t) for t in self.tracks[1:]],
        }


def _track_meta(track: ObjectTrack) -> dict[str, Any]:
    own = {} if track.shape is None else {"shape": track.shape, "colour": list(track.colour or ())}
    return {
        **own,
        "class_index": track.class_index,
        "same_class": track.role == "same_class",
        "role": track.role,
        "pulsing": track.pulsing,
        "boxes": np.round(track.boxes().astype(np.float64), 3).tolist(),
        "pulse": np.round(track.pulse.astype(np.float64), 4).tolist(),
    }


def video_id(index: int) -> str:
    return f"synth{index:05d}"


def assign_splits(n_videos: int, fractions: tuple[float, float, float]) -> list[str]:
    """Split of each clip index: train first, then val, then test; with >= 3 clips every split gets
    at least one."""
    _, f_val, f_test = fractions
    n_test, n_val = round(f_test * n_videos), round(f_val * n_videos)
    if n_videos >= 3:
        n_test, n_val = max(1, n_test), max(1, n_val)
    n_train = n_videos - n_val - n_test
    return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


def make_clip(config: SynthConfig, seed: int, index: int, split: str = "train") -> Clip:
    """Generate clip ``index`` of the set with ``seed`` (pure: no files)."""
    classes = class_table(config.classes)
    class_index = index % config.classes
    klass = classes[class_index]
    # a fifth stream for the variation: the first four (and so every clip without variation) are unchanged
    scene_rng, audio_rng, render_rng, fix_rng, vary_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(5)
    )
    var = config.variation
    fps = int(vary_rng.choice(var.fps)) if var.fps else config.fps
    rate = int(vary_rng.choice(var.sample_rates)) if var.sample_rates else config.sample_rate
    tempo = float(vary_rng.uniform(*var.tempo))
    n_frames = fps * config.seconds
    n_samples = config.seconds * rate
    segment = _event_segment(scene_rng, config.seconds, config.full_event_prob)
    envelope = syllable_envelope(
        audio_rng, n_samples, [segment], rate, length=(0.2 * tempo, 0.45 * tempo), gap=(0.05 * tempo, 0.3 * tempo)
    )
    carrier = class_carrier(
        klass.sound, klass.pitch * audio_rng.uniform(*var.pitch), n_samples, audio_rng, rate, timbre=var.timbre
    )
    audio = config.sound_level * envelope * carrier + background_noise(
        audio_rng, n_samples, config.background_level, rate
    )
    pulse = envelope_at_frames(envelope, n_frames, fps, rate)
    tracks = sample_tracks(
        scene_rng, config.scene, config.size, n_frames, fps, class_index, config.classes, pulse, rate
    )
    tracks = add_salient(vary_rng, config.scene, tracks, config.size, n_frames, fps, rate, SHAPES)
    colours, textures = _class_looks(vary_rng, var, classes, {t.class_index for t in tracks if t.class_index >= 0})
    frames = render_frames(
        render_rng,
        background_image(render_rng, config.size, config.clutter),
        tracks,
        classes,
        config.noise,
        colours=colours,
        textures=textures,
    )
    events = event_labels([segment], n_frames, fps)
    density = density_maps(tracks, events, config.size, config.sigma_scale)
    fixations = sample_fixations(fix_rng, density, config.fixations)
    return Clip(
        video_id(index),
        index,
        klass,
        class_index,
        split,
        segment,
        frames,
        np.clip(audio, -1.0, 1.0).astype(np.float32),
        events,
        tracks,
        density,
        fixations,
        fps,
        rate,
    )


def _class_looks(
    rng: np.random.Generator, var: Variation, classes: list[SynthClass], present: set[int]
) -> tuple[dict[int, np.ndarray], dict[int, Texture]]:
    """This clip's colour and texture of each class in ``present`` (sorted, so the draws are fixed)."""
    colours: dict[int, np.ndarray] = {}
    textures: dict[int, Texture] = {}
    for k in sorted(present):
        if var.colour_jitter > 0:
            offset = rng.uniform(-var.colour_jitter, var.colour_jitter, size=3)
            colours[k] = np.clip(np.asarray(classes[k].colour, np.float64) + offset, 0, 255)
        if var.texture_prob > 0 and rng.random() < var.texture_prob:
            kind = "stripes" if rng.random() < 0.5 else "checker"
            textures[k] = Texture(kind, float(rng.uniform(*var.texture_period)), float(rng.uniform(0, np.pi)))
    return colours, textures


def _event_segment(rng: np.random.Generator, seconds: int, full_prob: float) -> tuple[int, int]:
    """One event [start, end) in whole seconds: the whole clip, or 1 s up to the whole clip."""
    if rng.random() < full_prob:
        return 0, seconds
    length = int(rng.integers(1, seconds + 1))
    start = int(rng.integers(0, seconds - length + 1))
    return start, start + length


def generate_synth(
    out: str | Path,
    n_videos: int,
    seed: int = 0,
    classes: int | None = None,
    size: int | None = None,
    fps: int | None = None,
    seconds: int | None = None,
    distractor_prob: float | None = None,
    preset: str = "synth-lite",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Generate ``n_videos`` clips into ``out`` (layout in the module docstring); returns ``out``.

    ``preset`` ("synth-lite" or "tiny") gives the defaults; the other arguments override it.
    An ``out`` that already holds a generated set is refused unless ``overwrite`` (which removes only
    the files this generator writes).
    """
    if preset not in PRESETS:
        raise InputError(f"synth: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    if n_videos < 1:
        raise InputError(f"synth: the number of videos must be >= 1, got {n_videos}")
    config = _configure(PRESETS[preset], classes, size, fps, seconds, distractor_prob)
    out = Path(out)
    _prepare_out(out, overwrite)
    splits = assign_splits(n_videos, config.split)
    settings = {
        "seed": seed,
        "n_videos": n_videos,
        "preset": preset,
        "config": config.to_dict(),
        "classes": [dataclasses.asdict(c) for c in class_table(config.classes)],
        "ground_truth": GROUND_TRUTH,
    }
    write_text(out / SETTINGS, json.dumps(settings, indent=1, sort_keys=True) + "\n")
    done: list[Clip] = []
    indices = track(range(n_videos), "synth videos", enabled=progress)
    try:
        for i in indices:
            clip = make_clip(config, seed, i, splits[i])
            _write_clip(out, clip, config)
            done.append(clip)
    finally:  # an interrupted run still leaves annotation files that match the clips written
        _write_lists(out, done, config)
    return out


def _write_lists(out: Path, clips: list[Clip], config: SynthConfig) -> None:
    """Annotations.txt, the split files and the STAViS fold list of ``clips``."""
    rows = [AnnotationRow(c.klass.name, c.video_id, "good", *c.segment) for c in clips]
    write_annotations(out / ANNOTATIONS, rows)
    for split, name in SPLIT_FILES.items():
        write_annotations(out / name, [r for r, c in zip(rows, clips, strict=True) if c.split == split])
    fold = "".join(f"{c.video_id} {len(c.frames)} {c.fps}\n" for c in clips if c.split == "test")
    write_text(out / "stavis" / "fold_lists" / f"{STAVIS_DB}_list_test_1_fps.txt", fold)


def _configure(base: SynthConfig, classes, size, fps, seconds, distractor_prob) -> SynthConfig:
    changes = {
        k: v for k, v in dict(classes=classes, size=size, fps=fps, seconds=seconds).items() if v is not None
    }
    if distractor_prob is not None:
        changes["scene"] = dataclasses.replace(base.scene, distractor_prob=float(distractor_prob))
    return dataclasses.replace(base, **changes)


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to write over anything but an earlier synthetic set (recognised by its ``synth.json``);
    with ``overwrite``, remove only the files and folders this generator writes."""
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not (out / SETTINGS).is_file():
        raise InputError(
            f"{out}: holds {', '.join(existing)} but is not a synthetic set; choose another folder"
        )
    if existing and not overwrite:
        raise InputError(f"{out}: already holds a synthetic set; pass --overwrite to replace it")
    for name in existing:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_clip(out: Path, clip: Clip, config: SynthConfig) -> None:
    synth_io.write_mp4(out / "videos" / f"{clip.video_id}.mp4", clip.frames, clip.fps, clip.audio, clip.sample_rate)
    synth_io.write_gt_h5(
        out / "gt" / f"{clip.video_id}.h5",
        clip.density,
        clip.fixations,
        {"normalisation": "max1", "video_id": clip.video_id, "fps": clip.fps},
    )
    write_text(out / "meta" / f"{clip.video_id}.json", json.dumps(clip.meta(config), sort_keys=True) + "\n")
    if clip.split == "test":
        synth_io.write_stavis_video(
            out / "stavis",
            STAVIS_DB,
            clip.video_id,
            clip.frames,
            clip.audio,
            clip.sample_rate,
            clip.density,
            clip.fixations,
        )
