"""Reading media files with PyAV: the audio track as 16 kHz mono float32, the video's frame timing.

* ``read_audio(path)`` decodes the first audio track of anything FFmpeg reads (wav, mp4, mkv, ...),
  resampled with ``MonoResampler`` (also used by the streaming sources for live audio frames).
* ``read_video_info(path)`` returns the first video stream's frame count, fps and per-frame
  presentation timestamps (from packet timestamps; frames are decoded only when packets lack them),
  or None for audio-only files.

Every failure on user input raises :class:`~stanet_rt.errors.InputError` naming the file.
Imports numpy, av and ``stanet_rt.errors`` only; must not import torch, models or pipeline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stanet_rt.errors import InputError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioTrack:
    """Decoded audio: ``samples`` (L,) float32 mono at ``sample_rate`` Hz, not clipped.

    ``start_time`` is the time of ``samples[0]`` in seconds on the container's timeline (the same
    clock as ``VideoInfo.timestamps``), so frame time t maps to sample (t - start_time) * rate.
    """

    samples: np.ndarray
    sample_rate: int
    start_time: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def end_time(self) -> float:
        """Time (seconds, container timeline) just past the last sample."""
        return self.start_time + self.duration


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream: ``n_frames`` frames at ``fps`` (frames/s), ``timestamps`` (T,) float64
    presentation times in seconds on the container's timeline, in display order; size in pixels."""

    n_frames: int
    fps: float
    timestamps: np.ndarray
    width: int
    height: int


class MonoResampler:
    """Converts PyAV audio frames of any format/layout/rate to mono float32 at ``rate`` Hz.

    ``push(frame)`` returns the samples ready so far, (n,) float32; ``flush()`` returns the rest held in
    the resampler's filter. One instance per audio source: it configures itself from the first frame.

    Deliberate difference from a plain ``AudioResampler(layout="mono")``: FFmpeg's mono down-mix of
    stereo is (L + R) / sqrt(2) (a -3 dB pan law), not the channel mean the original ``audiostft.py``
    takes, and the level matters (clipping to [-1, 1], the 1e-7 floor of the log). So we resample
    to ``fltp`` keeping the source layout and average the channels ourselves.
    """

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="fltp", layout=None, rate=rate)

    def push(self, frame: av.AudioFrame) -> np.ndarray:
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        chunks = [f.to_ndarray().mean(axis=0, dtype=np.float32) for f in frames]  # planar: (channels, n)
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks)


@contextlib.contextmanager
def open_input(path: str | Path) -> Iterator[av.container.InputContainer]:
    """``av.open`` for reading, with missing/unreadable files turned into one-line InputErrors."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a media file")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as a media file ({_one_line(exc)})") from None
    try:
        yield container
    finally:
        container.close()


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> AudioTrack:
    """Decode the first audio track of ``path`` to mono float32 at ``sample_rate`` Hz.

    Multi-channel audio becomes the mean of its channels, as in the original. Gaps in the stream's
    timestamps are not filled: the decoded samples are concatenated.
    """
    path = Path(path)
    with open_input(path) as container:
        if not container.streams.audio:
            raise InputError(f"{path}: no audio track")
        stream = container.streams.audio[0]
        resampler = MonoResampler(sample_rate)
        chunks: list[np.ndarray] = []
        start_time: float | None = None
        try:
            for frame in container.decode(stream):
                if start_time is None and frame.time is not None:
                    start_time = float(frame.time)
                chunks.append(resampler.push(frame))
            chunks.append(resampler.flush())
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"{path}: audio decoding failed ({_one_line(exc)})") from None
        if start_time is None:
            start_time = _seconds(stream.start_time, stream.time_base) or 0.0
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if samples.size == 0:
        raise InputError(f"{path}: the audio track has no samples")
    return AudioTrack(samples=samples, sample_rate=sample_rate, start_time=start_time)


def read_video_info(path: str | Path) -> VideoInfo | None:
    """Frame count, fps and presentation timestamps of the first video stream; None if there is none.

    Cover art (a still picture attached to an audio file) does not count as video.
    """
    path = Path(path)
    with open_input(path) as container:
        streams = [s for s in container.streams.video if not _is_cover_art(s)]
        if not streams:
            return None
        stream = streams[0]
        try:
            times = _packet_times(container, stream)
            if times is None:  # some packets carry no pts: decode to get the frames' times
                container.seek(0)
                times = [float(f.time) for f in container.decode(stream) if f.time is not None]
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: video demuxing failed ({_one_line(exc)})") from None
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
    if not times:
        raise InputError(f"{path}: the video stream has no frames")
    timestamps = np.sort(np.asarray(times, dtype=np.float64))
    if rate:
        fps = float(rate)
    elif len(timestamps) > 1 and timestamps[-1] > timestamps[0]:
        fps = (len(timestamps) - 1) / float(timestamps[-1] - timestamps[0])
    else:
        raise InputError(f"{path}: cannot determine the video frame rate")
    return VideoInfo(n_frames=len(timestamps), fps=fps, timestamps=timestamps, width=width, height=height)


def _packet_times(container: av.container.InputContainer, stream: av.VideoStream) -> list[float] | None:
    times: list[float] = []
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:  # flush packet / dropped by an edit list
            continue
        if packet.pts is None:
            return None
        times.append(float(packet.pts * packet.time_base))
    return times


def _is_cover_art(stream: av.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or not time_base:
        return None
    return float(value * time_base)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
