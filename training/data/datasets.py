"""torch ``Dataset``s of every training stage, composed from one shared base (:class:`StageDataset`).

| dataset          | stage                          | frames of one sample                                |
|------------------|--------------------------------|-----------------------------------------------------|
| FrameDataset     | S, SA (``only_events`` for SA) | frame t                                             |
| ClipDataset      | ST, STA-style clips            | t + offsets, e.g. (-1, 0, 1) or -4..4               |
| GraphDataset     | S+, SA+, ST+                   | 3 nodes x node_offsets (short / long / cross)       |
| SwitchDataset    | AudioSwitch                    | frame t, event on/off target, balanced per epoch    |
| StudentDataset   | STA, STA+, stanet_lite         | t + offsets, pseudo-GT maps at gt_offsets           |

Every sample is addressed by (video index, frame index) into the record list (never by joined path
strings). Frame indices outside a video are clamped to its first / last frame (edge padding), so
samples near the ends are kept rather than dropped and never read past the video (the original's
loaders crossed video ends or dropped the ends, spec 9.1 item 9).

A sample is a dict of tensors (shapes per sample; a DataLoader adds the batch dimension):

* ``frames`` (N, 3, S, S) float32, ImageNet-normalised with the config's mean / std, S = the config's
  ``input_size``; ``spectrograms`` (N, 1, 257, 48) float32 (only when audio is used); N frames as in
  the table, in the order the models expect (clips in temporal order; graph nodes anchor first,
  ST+ triplets each in temporal order);
* ``frame_indices`` (N,) int64 and ``video_indices`` (N,) int64: where every frame comes from;
* ``video_index``, ``frame_index`` () int64: the anchor; ``event`` () float32: 1 on an event frame;
* ``label`` (K,) float32 one-hot of the video's class, K = the config's ``num_classes`` (zeros for
  untagged videos; not in SwitchDataset / StudentDataset); ``class_index`` () int64 (-1: untagged);
* SwitchDataset adds ``target`` () int64 (1 = event on); StudentDataset adds ``gt`` (G, 1, S, S)
  float32 in [0, 1] and ``gt_positions`` (G,) int64 (which of the N frames each map belongs to).

Training augmentation (``augment``): one random crop / flip / colour jitter per sample, shared by all
its frames and maps (the original cropped every frame independently, spec 9.1 item 15). Randomness
(augmentation, long / cross partners, negative subsampling) comes from ``(seed, epoch, index)``, so
a sample is the same in any worker and changes with :meth:`StageDataset.set_epoch`.

The synthetic set's ground truth (``gt/``, ``stavis/annotations``) is never read here.

Imports torch, numpy and ``training.data.{records,frames,transforms,pseudo_gt}``, ``stanet_rt.config``;
must not import models or anything above.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from stanet_rt.training.data.frames import MediaStore
from stanet_rt.training.data.pseudo_gt import available_frames, pseudo_gt_path, read_pseudo_gt
from stanet_rt.training.data.records import VideoRecord
from stanet_rt.training.data.transforms import Augment, AugmentParams, prepare_frames, prepare_maps, sample_augment
from torch import Tensor
from torch.utils.data import Dataset

from stanet_rt.config import AUDIO, ModelConfig

GraphMode = Literal["short", "long", "cross"]
GRAPH_MODES = ("short", "long", "cross")


def clamp_frames(t: int, offsets: Sequence[int], n_frames: int) -> np.ndarray:
    """Frame indices t + offsets clamped to [0, n_frames - 1] (edge padding): (len(offsets),) int64."""
    return np.clip(int(t) + np.asarray(offsets, dtype=np.int64), 0, n_frames - 1)


def frame_items(records: Sequence[VideoRecord], only_events: bool = False, stride: int = 1) -> np.ndarray:
    """(N, 2) int64 (video index, frame index) of every ``stride``-th frame (event frames only with
    ``only_events``)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    parts = []
    for v, rec in enumerate(records):
        frames = np.arange(0, rec.n_frames, stride)
        if only_events:
            frames = frames[rec.events[frames]]
        parts.append(np.stack([np.full(len(frames), v), frames], axis=1))
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2), dtype=np.int64)


class StageDataset(Dataset):
    """Shared base: records, the media store, labels, augmentation, per-(seed, epoch, index) RNG.

    ``records``: the videos; ``config``: the model config (input size, mean / std, number of classes,
    audio front end); ``store``: a :class:`MediaStore` over the same records to share caches between
    datasets (default: a new one decoding at ``load_size`` or the input size, caching in
    ``cache_dir``); ``augment``: an :class:`Augment`, True for the defaults, None / False for none;
    ``with_audio``: return spectrograms (default: when the config has audio).
    Subclasses set ``self.items`` ((N, 2) anchors) and implement :meth:`frames_of`; those whose config's
    ``num_classes`` is not the number of video classes (AudioSwitch: 2 outputs) set ``uses_labels``
    False and return no ``label``.
    """

    uses_labels = True

    def __init__(
        self,
        records: Sequence[VideoRecord],
        config: ModelConfig,
        *,
        store: MediaStore | None = None,
        cache_dir: str | Path | None = None,
        augment: Augment | bool | None = None,
        seed: int = 0,
        with_audio: bool | None = None,
        load_size: int | None = None,
    ) -> None:
        self.records = list(records)
        if not self.records:
            raise ValueError("no videos given")
        self.config = config
        self.with_audio = config.audio is not None if with_audio is None else bool(with_audio)
        if store is None:
            store = MediaStore(self.records, load_size or config.input_size, cache_dir, config.audio or AUDIO)
        elif [r.video_id for r in store.records] != [r.video_id for r in self.records]:
            raise ValueError("the store was built over different records")
        self.store = store
        self.augment = Augment() if augment is True else (augment or None)
        self.seed = int(seed)
        self.epoch = 0
        bad = [r.video_id for r in self.records if r.class_index >= config.num_classes]
        if self.uses_labels and bad:
            raise ValueError(f"class index >= num_classes ({config.num_classes}) for videos {bad[:5]}")
        self.items = np.zeros((0, 2), dtype=np.int64)

    # -- the interface trainers use ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Re-seed the per-sample randomness (augmentation, partners, subsampling) for ``epoch``."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        v, t = (int(x) for x in self.items[index])
        rng = self.rng(index)
        videos, frames = self.frames_of(v, t, rng)
        params = sample_augment(rng, self.augment)
        sample = self.load(videos, frames, params)
        sample.update(self.anchor(v, t))
        self.extend(sample, v, t, frames, params)
        return sample

    # -- hooks ---------------------------------------------------------------------------------------
    def frames_of(self, v: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(video indices (N,), frame indices (N,)) of the frames of the sample anchored at (v, t)."""
        return np.array([v]), np.array([t])

    def extend(
        self, sample: dict[str, Tensor], v: int, t: int, frames: np.ndarray, params: AugmentParams
    ) -> None:
        """Add stage-specific entries to the sample anchored at (v, t) whose frame indices are ``frames``
        and whose augmentation is ``params`` (default: nothing)."""

    # -- shared helpers ----------------------------------------------------------------------------
    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def load(self, videos: np.ndarray, frames: np.ndarray, params: AugmentParams) -> dict[str, Tensor]:
        """Frames (and spectrograms) of (videos[i], frames[i]), transformed with one ``params``."""
        videos, frames = np.asarray(videos, dtype=np.int64), np.asarray(frames, dtype=np.int64)
        rgb = np.empty((len(frames), self.store.size, self.store.size, 3), dtype=np.uint8)
        spec = None
        for v in np.unique(videos):
            rows = np.flatnonzero(videos == v)
            rgb[rows] = self.store.frames(int(v))[frames[rows]]
            if self.with_audio:
                block = self.store.spectrograms(int(v))[frames[rows]]
                if spec is None:
                    spec = np.empty((len(frames), *block.shape[1:]), dtype=np.float32)
                spec[rows] = block
        cfg = self.config
        sample = {
            "frames": prepare_frames(rgb, params, cfg.input_size, cfg.mean, cfg.std),
            "frame_indices": torch.from_numpy(frames.copy()),
            "video_indices": torch.from_numpy(videos.copy()),
        }
        if spec is not None:
            sample["spectrograms"] = torch.from_numpy(spec).unsqueeze(1)
        return sample

    def anchor(self, v: int, t: int) -> dict[str, Tensor]:
        rec = self.records[v]
        out = {
            "video_index": torch.tensor(v, dtype=torch.int64),
            "frame_index": torch.tensor(t, dtype=torch.int64),
            "event": torch.tensor(float(rec.events[t])),
            "class_index": torch.tensor(rec.class_index, dtype=torch.int64),
        }
        if self.uses_labels:
            out["label"] = torch.zeros(self.config.num_classes)
            if rec.has_class:
                out["label"][rec.class_index] = 1.0
        return out


class FrameDataset(StageDataset):
    """S / SA: one frame per sample (``frames`` (1, 3, S, S), ``spectrograms`` (1, 1, 257, 48)) and its
    video's one-hot label. ``only_events``: event frames only (the original SA / SA+ kept only frames in
    its "switch" folder); ``stride``: every stride-th frame (the original validated with 30)."""

    def __init__(
        self,
        records: Sequence[VideoRecord],
        config: ModelConfig,
        only_events: bool = False,
        stride: int = 1,
        **kw,
    ) -> None:
        super().__init__(records, config, **kw)
        self.items = frame_items(self.records, only_events, stride)


class ClipDataset(StageDataset):
    """ST / STA-style clips: frames at t + ``offsets`` (default: the config's window offsets) in that
    order, with one shared crop / jitter; ``frames`` (len(offsets), 3, S, S)."""

    def __init__(
        self,
        records: Sequence[VideoRecord],
        config: ModelConfig,
        offsets: Sequence[int] | None = None,
        only_events: bool = False,
        stride: int = 1,
        **kw,
    ) -> None:
        super().__init__(records, config, **kw)
        self.offsets = tuple(config.window_offsets if offsets is None else offsets)
        if not self.offsets:
            raise ValueError("offsets must not be empty")
        self.items = frame_items(self.records, only_events, stride)

    def frames_of(self, v: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        frames = clamp_frames(t, self.offsets, self.records[v].n_frames)
        return np.full(len(frames), v), frames


class GraphDataset(StageDataset):
    """S+ / SA+ / ST+: three graph nodes, the anchor node first, each node = its centre + ``node_offsets``
    ((0,) for S+ / SA+, (-1, 0, 1) for ST+ triplets). ``frames`` (3 * len(node_offsets), 3, S, S), node-major.

    Node centres (spec 4.2, with the original's indexing bugs fixed, 9.1 item 9):
    * ``short``: t, t - ``short_step``, t + ``short_step`` (3: with ST+ triplets these are t-4..t+4),
      clamped to the video;
    * ``long``: t and 2 random other frames of the same video;
    * ``cross``: t and a random frame of each of 2 random other videos of the same class (the
      anchor's own video only when its class has no other video; the original also allowed it).
    ``node_centres`` (3,) and ``video_indices`` tell where each node comes from.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        config: ModelConfig,
        mode: GraphMode = "cross",
        node_offsets: Sequence[int] = (0,),
        short_step: int = 3,
        only_events: bool = False,
        stride: int = 1,
        **kw,
    ) -> None:
        super().__init__(records, config, **kw)
        if mode not in GRAPH_MODES:
            raise ValueError(f"mode must be one of {', '.join(GRAPH_MODES)}, got {mode!r}")
        self.mode = mode
        self.node_offsets = tuple(node_offsets)
        self.short_step = int(short_step)
        self.items = frame_items(self.records, only_events, stride)
        if mode == "cross":
            untagged = [r.video_id for r in self.records if not r.has_class]
            if untagged:
                raise ValueError(f"cross mode needs class tags; untagged videos: {untagged[:5]}")
        classes = np.array([r.class_index for r in self.records])
        self._same_class = {int(c): np.flatnonzero(classes == c) for c in np.unique(classes)}

    def node_centres(self, v: int, t: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """(video, centre frame) of the 3 nodes, anchor first."""
        n = self.records[v].n_frames
        if self.mode == "short":
            return [(v, t), (v, max(0, t - self.short_step)), (v, min(n - 1, t + self.short_step))]
        if self.mode == "long":
            if n == 1:
                return [(v, t)] * 3
            picks = rng.integers(0, n - 1, size=2)
            return [(v, t), *((v, int(p + (p >= t))) for p in picks)]  # any frame but t
        pool = self._same_class[self.records[v].class_index]
        others = pool[pool != v] if len(pool) > 1 else pool
        partners = rng.choice(others, size=2)
        return [(v, t), *((int(u), int(rng.integers(self.records[int(u)].n_frames))) for u in partners)]

    def frames_of(self, v: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        videos, frames = [], []
        for u, c in self.node_centres(v, t, rng):
            f = clamp_frames(c, self.node_offsets, self.records[u].n_frames)
            videos.append(np.full(len(f), u))
            frames.append(f)
        return np.concatenate(videos), np.concatenate(frames)

    def extend(self, sample, v, t, frames, params) -> None:
        k = len(self.node_offsets)
        centre = self.node_offsets.index(0) if 0 in self.node_offsets else 0
        sample["node_centres"] = torch.from_numpy(frames[centre::k].copy())


class SwitchDataset(StageDataset):
    """AudioSwitch: frame + spectrogram + ``target`` (1 = the audio-visual event is on). Every epoch
    keeps all positives and a fresh random subset of the negatives of the same size (the original's
    balancing, spec 7); when negatives are the minority all of them are kept. The length is the same
    every epoch (a DistributedSampler's length stays valid). No ``label``: the switch config's
    ``num_classes`` (2) counts its outputs, not video classes."""

    uses_labels = False

    def __init__(self, records: Sequence[VideoRecord], config: ModelConfig, stride: int = 1, **kw) -> None:
        kw["with_audio"] = True
        super().__init__(records, config, **kw)
        items = frame_items(self.records, False, stride)
        on = np.array([self.records[v].events[t] for v, t in items], dtype=bool)
        self._positives, self._negatives = items[on], items[~on]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        negatives = self._negatives
        if len(negatives) > len(self._positives):
            # a stream of its own, distinct from every sample's (seed, epoch, index) stream
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch], spawn_key=(1,)))
            keep = np.sort(rng.choice(len(negatives), size=len(self._positives), replace=False))
            negatives = negatives[keep]
        self.items = np.concatenate([self._positives, negatives])

    def extend(self, sample, v, t, frames, params) -> None:
        sample["target"] = torch.tensor(int(self.records[v].events[t]), dtype=torch.int64)


class StudentDataset(StageDataset):
    """Students: frames at t + ``offsets`` (default: the config's window offsets), their spectrograms,
    and the pseudo-GT maps (``<pseudo_gt_dir>/<video_id>/<frame:05d>.png``, ``training.data.pseudo_gt``)
    of the frames at ``gt_offsets`` (default: all offsets; STA+: its node centres (-3, 0, 3)), cropped
    alike. Anchors whose needed maps are not all present are skipped. No ``label`` (students learn
    from the maps, and their config's ``num_classes`` need not match the data set)."""

    uses_labels = False

    def __init__(
        self,
        records: Sequence[VideoRecord],
        config: ModelConfig,
        pseudo_gt_dir: str | Path,
        offsets: Sequence[int] | None = None,
        gt_offsets: Sequence[int] | None = None,
        stride: int = 1,
        **kw,
    ) -> None:
        super().__init__(records, config, **kw)
        self.pseudo_gt_dir = Path(pseudo_gt_dir)
        self.offsets = tuple(config.window_offsets if offsets is None else offsets)
        self.gt_offsets = tuple(self.offsets if gt_offsets is None else gt_offsets)
        missing = [o for o in self.gt_offsets if o not in self.offsets]
        if missing:
            raise ValueError(f"gt_offsets {missing} are not among the offsets {self.offsets}")
        self.gt_positions = np.array([self.offsets.index(o) for o in self.gt_offsets], dtype=np.int64)
        have = [available_frames(self.pseudo_gt_dir, r.video_id) for r in self.records]
        keep = [
            (v, t)
            for v, t in frame_items(self.records, False, stride)
            if all(int(f) in have[v] for f in clamp_frames(t, self.gt_offsets, self.records[v].n_frames))
        ]
        self.items = np.array(keep, dtype=np.int64).reshape(-1, 2)

    def frames_of(self, v: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        frames = clamp_frames(t, self.offsets, self.records[v].n_frames)
        return np.full(len(frames), v), frames

    def extend(self, sample, v, t, frames, params) -> None:
        video_id = self.records[v].video_id
        maps = [
            read_pseudo_gt(pseudo_gt_path(self.pseudo_gt_dir, video_id, int(frames[p])))
            for p in self.gt_positions
        ]
        sample["gt"] = prepare_maps(
            maps, params, self.config.input_size
        )  # the frames' crop / flip, no jitter
        sample["gt_positions"] = torch.from_numpy(self.gt_positions.copy())
