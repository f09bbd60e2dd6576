"""What a training / test video is: :class:`VideoRecord`, and :class:`ClassIndex` (class name -> index).

Every sample in ``training.data`` is addressed by (video index, frame index) into a list of records;
nothing is addressed by ``'+'``-joined path strings (the original's descriptors broke on paths with
``+``, e.g. its own ``S+`` folders; spec 9.2).

Imports numpy and ``stanet_rt.errors`` only; must not import torch, av or anything above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stanet_rt.errors import InputError

Segment = tuple[float, float]  # [start, end) in seconds from the first frame


def event_labels(segments: Sequence[Segment], n_frames: int, fps: float) -> np.ndarray:
    """Per-frame event flags from on/off segments: (n_frames,) bool.

    Frame i is shown at t_i = i / fps seconds; it is an event frame iff start <= t_i < end for some
    segment (AVE segments are whole seconds, so at 30 fps a 2-5 s event covers frames 60..149).
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    t = np.arange(n_frames, dtype=np.float64) / fps
    on = np.zeros(n_frames, dtype=bool)
    for start, end in segments:
        # a tiny tolerance so that frames exactly on a whole second are not lost to rounding of i / fps
        on |= (t >= start - 1e-9) & (t < end - 1e-9)
    return on


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One video of a data set.

    * ``path``: the video file (decoded with PyAV) or a folder of frame images (sorted numerically).
    * ``class_index`` / ``class_name``: the video's category tag (AVE: the event class); -1 / "" when
      the set has no tags (STAViS test sets).
    * ``n_frames`` frames at ``fps`` frames per second; ``events`` (n_frames,) bool, True where the
      audio-visual event is on (from ``segments``, [start, end) seconds; all True when unknown).
    * ``split``: "train", "val", "test" (AVE / synthetic) or the test set's name (STAViS).
    * ``audio_path``: a separate audio file (STAViS ``video_audio/.../<video>.wav``); None: the
      video's own audio track (or no audio for a frames folder).
    * ``audio_features``: the original's folder of per-frame ``<frame>_asp.h5`` spectrograms
      (STAViS ``audio_feature``), used when there is no ``audio_path``.
    """

    video_id: str
    path: Path
    class_index: int
    class_name: str
    n_frames: int
    fps: float
    events: np.ndarray
    split: str = "train"
    audio_path: Path | None = None
    audio_features: Path | None = None
    segments: tuple[Segment, ...] = field(default=())

    def __post_init__(self) -> None:
        events = np.asarray(self.events, dtype=bool).reshape(-1)
        if self.n_frames < 1:
            raise InputError(f"{self.path}: video {self.video_id!r} has no frames")
        if len(events) != self.n_frames:
            raise ValueError(f"{self.video_id}: {len(events)} event labels for {self.n_frames} frames")
        events.setflags(write=False)
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "path", Path(self.path))

    @property
    def has_class(self) -> bool:
        return self.class_index >= 0

    @property
    def is_frame_folder(self) -> bool:
        return self.path.is_dir()


@dataclass(frozen=True)
class ClassIndex:
    """Class names in sorted order; a class's index is its position (as the original's sorted class
    folder listing, spec section 0)."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if list(names) != sorted(set(names)):
            raise ValueError("ClassIndex names must be sorted and unique; use ClassIndex.from_names")
        object.__setattr__(self, "names", names)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> ClassIndex:
        """Sorted unique ``names`` -> index."""
        return cls(tuple(sorted(set(names))))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def index(self, name: str) -> int:
        """Index of ``name``; KeyError naming the known classes if it is not one."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r}; known: {', '.join(self.names)}") from None

    def name(self, index: int) -> str:
        return self.names[index]

    def one_hot(self, index: int) -> np.ndarray:
        """(len(self),) float32 with a 1 at ``index``."""
        out = np.zeros(len(self.names), dtype=np.float32)
        out[index] = 1.0
        return out
