"""Frames and per-frame audio of a :class:`~training.data.records.VideoRecord`, with an on-disk cache.

* :func:`sorted_frames`: the image files of a frames folder, sorted by the number in their name
  (``img_2`` before ``img_10``; the original paired files with unsorted ``os.listdir``, spec 1).
* :func:`decode_video`: PyAV decoding to uint8 RGB frames square-resized to ``size`` (the original
  always square-resizes, spec section 0; the aspect ratio is not kept).
* :class:`MediaStore`: ``frames(v)`` (T, S, S, 3) uint8 and ``spectrograms(v)`` (T, 257, 48) float32 of
  video ``v``, decoded / computed once and cached as ``<cache_dir>/<video_id>_<size>.npy`` and
  ``<cache_dir>/<video_id>_spec_<alignment>.npy`` (written atomically, read memory-mapped; a cache
  older than its source is rebuilt). The audio path uses ``stanet_rt.audio`` (PyAV decoding to 16 kHz
  mono, start- or end-aligned 0.5 s windows, the torch log-spectrogram); STAViS sets that ship the
  original per-frame ``<frame>_asp.h5`` files are read as they are.

Imports numpy, av, pillow, h5py, ``stanet_rt.{audio,config,errors}`` and ``training.data.{records,
atomic}`` (torch only through ``stanet_rt.audio.features``); must not import models or anything above.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from stanet_rt.training.data.records import VideoRecord

from stanet_rt.config import AUDIO, AudioConfig
from stanet_rt.errors import InputError
from stanet_rt.fileio import save_npy
from stanet_rt.progress import track

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: str | Path) -> int:
    """The last run of digits in a file name's stem (``img_00012.jpg`` -> 12); InputError if none."""
    match = _NUMBER.search(Path(path).stem)
    if match is None:
        raise InputError(f"{path}: frame file name has no frame number")
    return int(match.group(1))


def sorted_frames(folder: str | Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files of ``folder`` sorted numerically by :func:`frame_number`.

    InputError for a missing folder, a folder without images, or two files with the same number.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: frames folder not found")
    files = [p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith(".")]
    if not files:
        raise InputError(f"{folder}: no frame images ({', '.join(suffixes)})")
    keyed = sorted((frame_number(p), p.name, p) for p in files)
    numbers = [k[0] for k in keyed]
    if len(set(numbers)) != len(numbers):
        dup = next(n for n in numbers if numbers.count(n) > 1)
        raise InputError(f"{folder}: two frame files share the number {dup}")
    return [k[2] for k in keyed]


def decode_video(path: str | Path, size: int) -> np.ndarray:
    """All frames of the first video stream of ``path``, square-resized: (T, size, size, 3) uint8 RGB.

    Resizing happens in libswscale (bilinear, filtered when shrinking) before the copy to numpy.
    """
    import av

    from stanet_rt.audio.io import open_input

    path = Path(path)
    frames: list[np.ndarray] = []
    with open_input(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # offline decoding: frame threading is faster, its delay is harmless
        try:
            for frame in container.decode(stream):
                small = frame.reformat(width=size, height=size, format="rgb24", interpolation="BILINEAR")
                frames.append(small.to_ndarray())
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"{path}: video decoding failed ({' '.join(str(exc).split())})") from None
    if not frames:
        raise InputError(f"{path}: the video stream has no frames")
    return np.stack(frames)


def load_frame_folder(folder: str | Path, size: int) -> np.ndarray:
    """The numerically sorted images of ``folder``, square-resized: (T, size, size, 3) uint8 RGB."""
    from PIL import Image

    out = []
    for path in sorted_frames(folder):
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                if rgb.size != (size, size):
                    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
                out.append(np.asarray(rgb, dtype=np.uint8))
        except OSError as exc:
            raise InputError(f"{path}: unreadable image ({exc})") from None
    return np.stack(out)


def fit_length(array: np.ndarray, n: int, source: Path) -> np.ndarray:
    """Trim or edge-pad ``array`` along axis 0 to ``n`` rows.

    A decoder may return a frame more or less than the container's packet count; the last row is
    repeated so every (video, frame) address stays valid. More than 2 missing rows is an error.
    """
    if len(array) == n:
        return array
    if len(array) > n:
        return array[:n]
    if n - len(array) > 2:
        raise InputError(f"{source}: expected {n} frames, got {len(array)}")
    pad = np.repeat(array[-1:], n - len(array), axis=0)
    return np.concatenate([array, pad])


class MediaStore:
    """Frames and spectrograms of a list of records, by video index, with a memory + disk cache.

    ``size``: the square side frames are decoded to (pixels). ``audio``: the audio front end
    (window, STFT parameters, ``alignment`` "start" = the original's evenly spread windows or "end" =
    the streaming window ending at each frame; ``alignment`` overrides it). ``cache_dir``: where
    ``.npy`` caches go (None: memory only). Arrays stay in an LRU: at most ``max_open`` of them
    (memory-mapped caches hold a file descriptor each) and at most ``memory_bytes`` of decoded arrays
    held in RAM (without a cache dir; memory-mapped ones are paged by the OS and do not count).

    Safe to use from DataLoader workers: caches are written atomically, the in-memory part is dropped
    when the store is pickled.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        size: int,
        cache_dir: str | Path | None = None,
        audio: AudioConfig = AUDIO,
        alignment: str | None = None,
        max_open: int = 256,
        memory_bytes: int = 2 << 30,
    ) -> None:
        if size < 8:
            raise ValueError(f"frame size must be >= 8 pixels, got {size}")
        self.records = list(records)
        self.size = int(size)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.audio = audio
        self.alignment = alignment or audio.alignment
        if self.alignment not in ("start", "end"):
            raise InputError(f"audio alignment must be 'start' or 'end', got {self.alignment!r}")
        self.max_open = max_open
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_memory"] = OrderedDict()
        return state

    # -- public API ------------------------------------------------------------------------------
    def frames(self, v: int) -> np.ndarray:
        """Frames of video ``v``: (T, size, size, 3) uint8 RGB, T = ``records[v].n_frames``."""
        rec = self.records[v]
        return self._cached("frames", v, f"{rec.video_id}_{self.size}.npy", lambda: self._decode(rec))

    def spectrograms(self, v: int) -> np.ndarray:
        """Per-frame log-spectrograms of video ``v``: (T, 257, 48) float32 (z-normalised, spec 1)."""
        rec = self.records[v]
        name = f"{rec.video_id}_spec_{self.alignment}.npy"
        return self._cached("spectrograms", v, name, lambda: self._spectrograms(rec))

    def audio_windows(self, v: int) -> np.ndarray:
        """The 0.5 s, 16 kHz mono waveform window of every frame of video ``v``: (T, 8000) float32."""
        return self._plan(self.records[v]).windows()

    def audio_track(self, v: int) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The decoded audio of video ``v`` with each frame's place in it: ``waveform`` (L,) float32 at
        the front end's rate, ``frame_samples`` (T,) int64 sample index of every frame's timestamp
        (may lie outside [0, L)) and the frame rate; None for a record that ships only per-frame
        spectrogram files (no waveform)."""
        rec = self.records[v]
        if rec.audio_path is None and rec.audio_features is not None:
            return None
        plan = self._plan(rec, alignment="end")  # an end-aligned window stops at its frame's time
        return plan.waveform, np.asarray(plan.ranges[:, 1], dtype=np.int64), float(plan.fps)

    def prepare(self, audio: bool = True, progress: bool = False) -> None:
        """Fill the disk cache for every video (before starting DataLoader workers)."""
        for v in track(range(len(self.records)), "caching videos", enabled=progress):
            self.frames(v)
            if audio:
                self.spectrograms(v)

    # -- internals -------------------------------------------------------------------------------
    def _cached(self, kind: str, v: int, name: str, build) -> np.ndarray:
        key = (kind, v)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        rec = self.records[v]
        array = None
        path = self.cache_dir / name if self.cache_dir is not None else None
        if path is not None and path.is_file() and _newer_than_sources(path, rec):
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError):
                array = None  # a damaged cache file is rebuilt
            if array is not None and len(array) != rec.n_frames:
                array = None
        if array is None:
            array = np.ascontiguousarray(build())
            if path is not None:
                save_npy(path, array)
        self._memory[key] = array
        while len(self._memory) > 1 and (
            len(self._memory) > self.max_open or self._resident() > self.memory_bytes
        ):
            self._memory.popitem(last=False)
        return array

    def _resident(self) -> int:
        """Bytes of the in-memory (not memory-mapped) arrays held."""
        return sum(a.nbytes for a in self._memory.values() if not isinstance(a, np.memmap))

    def _decode(self, rec: VideoRecord) -> np.ndarray:
        raw = (
            load_frame_folder(rec.path, self.size)
            if rec.is_frame_folder
            else decode_video(rec.path, self.size)
        )
        return fit_length(raw, rec.n_frames, rec.path)

    def _plan(self, rec: VideoRecord, alignment: str | None = None):
        from stanet_rt.audio.features import plan_features

        alignment = alignment or self.alignment
        if rec.audio_path is not None:
            return plan_features(
                rec.audio_path,
                fps=rec.fps,
                alignment=alignment,  # type: ignore[arg-type]
                n_frames=rec.n_frames,
                config=self.audio,
            )
        if rec.is_frame_folder:
            raise InputError(f"{rec.path}: video {rec.video_id!r} has no audio file")
        return plan_features(
            rec.path,
            alignment=alignment,
            n_frames=rec.n_frames,  # type: ignore[arg-type]
            config=self.audio,
        )

    def _spectrograms(self, rec: VideoRecord) -> np.ndarray:
        if rec.audio_path is None and rec.audio_features is not None:
            return read_frame_features(rec, self.audio)
        plan = self._plan(rec)
        feats = np.concatenate(list(plan.iter_features()), axis=0)
        return fit_length(feats.astype(np.float32, copy=False), rec.n_frames, plan.source)


def read_frame_features(rec: VideoRecord, config: AudioConfig = AUDIO) -> np.ndarray:
    """The original's per-frame ``<frame stem>_asp.h5`` files (dataset ``dataset``, (257, 48)) of a frames
    folder record, in frame order: (T, 257, 48) float32. InputError naming the first missing file."""
    import h5py

    folder = Path(rec.audio_features)  # type: ignore[arg-type]
    out = []
    for frame in sorted_frames(rec.path):
        path = folder / f"{frame.stem}_asp.h5"
        if not path.is_file():
            raise InputError(f"{path}: audio feature file of frame {frame.name} is missing")
        try:
            with h5py.File(path, "r") as fh:
                out.append(np.asarray(fh["dataset"], dtype=np.float32).reshape(config.n_freq, config.n_time))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: unreadable audio feature file ({exc})") from None
    return fit_length(np.stack(out), rec.n_frames, folder)


def _newer_than_sources(cache: Path, rec: VideoRecord) -> bool:
    """True if ``cache`` was written after the record's media last changed."""
    mtime = cache.stat().st_mtime_ns
    for source in (rec.path, rec.audio_path):
        if source is not None and source.exists() and source.stat().st_mtime_ns > mtime:
            return False
    return True
