"""Sources through PyAV: a media file, or a camera plus a microphone (devices or FFmpeg lavfi test sources).

Every source implements the :class:`Source` protocol: a context manager whose :meth:`Source.read` pushes
decoded video frames (``on_video(VideoItem) -> bool``, False = stop reading) and mono audio at the
model's sample rate (``on_audio(samples, start_time)``) until the stream ends or ``stop`` is set. A file
is read in demux order on the caller's thread; a live source reads the camera on the caller's thread
(so a slow consumer never makes a queue of stale frames grow) and the microphone on its own thread
(audio is never dropped). A corrupt packet in a file is skipped and counted; a camera that goes away
ends the stream with ``lost`` set.

Timestamps: ``VideoItem.pts`` is seconds (the stream's own clock for files, seconds since the source
opened for live sources); ``raw_pts`` is the same instant as an integer in ``Source.time_base``,
strictly increasing (variable-frame-rate files keep their own timing).

Imports numpy, av and ``stanet_rt.audio``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from stanet_rt.audio.io import SAMPLE_RATE, MonoResampler
from stanet_rt.errors import InputError

OnVideo = Callable[["VideoItem"], bool]
OnAudio = Callable[[np.ndarray, "float | None"], None]


@dataclass
class VideoItem:
    """One decoded frame: ``image`` (H, W, 3) uint8 RGB; ``yuv`` the same frame as a yuv420p plane
    stack (H * 3 / 2, W) uint8 when the source was asked for it (the overlay blends on it), else None;
    ``pts`` seconds; ``raw_pts`` integer in ``time_base``; ``arrival`` ``time.perf_counter()`` when it
    was decoded / captured (latency is measured from here)."""

    index: int
    image: np.ndarray
    pts: float
    raw_pts: int
    time_base: Fraction
    arrival: float = 0.0
    yuv: np.ndarray | None = None


class Source(Protocol):
    """What the scheduler needs from a source (files and live devices alike)."""

    live: bool
    fps: float
    time_base: Fraction
    width: int
    height: int
    total_frames: int | None
    corrupt_packets: int
    lost: bool
    truncated: bool
    notes: list[str]

    @property
    def has_audio(self) -> bool: ...

    def read(self, on_video: OnVideo, on_audio: OnAudio, stop: threading.Event) -> None: ...

    def __enter__(self) -> Source: ...

    def __exit__(self, *exc: object) -> None: ...


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _yuv420(frame: av.VideoFrame) -> np.ndarray:
    """(H' * 3 / 2, W') uint8 yuv420p planes of ``frame`` cropped to even sizes (H', W')."""
    w, h = frame.width - frame.width % 2, frame.height - frame.height % 2
    if frame.format.name != "yuv420p" or (w, h) != (frame.width, frame.height):
        frame = frame.reformat(width=w, height=h, format="yuv420p")
    return frame.to_ndarray()


class _Timeline:
    """Makes a stream's integer timestamps strictly increasing (a repeated or missing pts becomes the
    previous one + 1 tick, so a muxer never sees a non-increasing timestamp)."""

    def __init__(self) -> None:
        self.last: int | None = None

    def next(self, pts: int | None) -> int:
        value = pts if pts is not None else (0 if self.last is None else self.last + 1)
        if self.last is not None and value <= self.last:
            value = self.last + 1
        self.last = value
        return value


class FileSource:
    """A file FFmpeg reads: video (required) with or without audio."""

    live = False

    def __init__(self, path: str | Path, sample_rate: int = SAMPLE_RATE, max_frames: int | None = None,
                 want_yuv: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read as a media file ({_one_line(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{self.path}: no video stream")
        self.video = self.container.streams.video[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.video.thread_type = "AUTO"
        rate = self.video.average_rate or self.video.guessed_rate or 25
        self.fps = float(rate)
        self.time_base = self.video.time_base or Fraction(1, 90000)
        self.width, self.height = self.video.codec_context.width, self.video.codec_context.height
        self.total_frames = self.video.frames or None
        if max_frames:
            self.total_frames = min(self.total_frames or max_frames, max_frames)
        self.max_frames = max_frames
        self.sample_rate = sample_rate
        self.want_yuv = want_yuv
        self.corrupt_packets = 0
        self.lost = False
        self.truncated = False
        self.notes: list[str] = []

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()

    def read(self, on_video: OnVideo, on_audio: OnAudio, stop: threading.Event) -> None:
        """Demux and decode until the end, ``stop``, ``max_frames`` or ``on_video`` returning False."""
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        resampler = MonoResampler(self.sample_rate) if self.audio is not None else None
        index, last_time, resumes, audio_started = 0, None, 0, False
        timeline = _Timeline()
        finished = False
        while not finished:
            finished = True
            try:
                for packet in self.container.demux(streams):
                    if stop.is_set():
                        return
                    try:
                        frames = packet.decode()
                    except (av.error.InvalidDataError, av.error.FFmpegError):
                        self.corrupt_packets += 1  # skip the damaged packet, keep going
                        continue
                    for frame in frames:
                        if packet.stream.type != "video":
                            start = None if audio_started or frame.time is None else float(frame.time)
                            audio_started = True
                            on_audio(resampler.push(frame), start)
                            continue
                        t = float(frame.pts * self.time_base) if frame.pts is not None else None
                        if t is not None and last_time is not None and t <= last_time:
                            continue  # a resumed demux may repeat frames
                        raw = timeline.next(frame.pts)
                        last_time = float(raw * self.time_base)
                        item = VideoItem(index, frame.to_ndarray(format="rgb24"), last_time, raw, self.time_base,
                                         time.perf_counter(), _yuv420(frame) if self.want_yuv else None)
                        index += 1
                        if not on_video(item) or (self.max_frames and index >= self.max_frames):
                            return
            except (av.error.InvalidDataError, av.error.FFmpegError, EOFError):
                self.corrupt_packets += 1  # damaged container data: try to resume after it a few times
                resumes += 1
                finished = resumes > 8
        if resampler is not None:
            on_audio(resampler.flush(), None)
        duration = float(self.container.duration / av.time_base) if self.container.duration else None
        if duration and last_time is not None and last_time + 2.0 / self.fps < duration - 1e-3:
            self.truncated = True  # the container promised more than it held


# -- live --------------------------------------------------------------------------------------------
_CAMERA_FORMATS = {"Linux": "v4l2", "Darwin": "avfoundation", "Windows": "dshow"}
_MIC_FORMATS = {"Linux": "alsa", "Darwin": "avfoundation", "Windows": "dshow"}


def device_spec(spec: str, kind: str) -> tuple[str, str, dict[str, str]]:
    """``lavfi:testsrc2=size=...`` / ``0`` / ``/dev/video0`` / ``default`` -> (url, format, options)."""
    if spec.startswith("lavfi:"):
        return spec[len("lavfi:"):], "lavfi", {}
    system = platform.system()
    fmt = (_CAMERA_FORMATS if kind == "camera" else _MIC_FORMATS).get(system)
    if fmt is None:
        raise InputError(f"{spec}: no {kind} support on {system}")
    if kind == "camera":
        if fmt == "v4l2":
            url = f"/dev/video{spec}" if spec.isdigit() else spec
        elif fmt == "avfoundation":
            url = f"{spec}:none" if spec.isdigit() else spec
        else:
            url = f"video={spec}"
        return url, fmt, {"framerate": "30"} if fmt != "dshow" else {}
    url = {"alsa": spec, "avfoundation": f":{spec}" if spec != "default" else ":0", "dshow": f"audio={spec}"}[fmt]
    return url, fmt, {}


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration: device libraries (alsa-lib, v4l2) print
    their own lines straight to stderr before FFmpeg returns an error, above our one-line message.
    Python's ``sys.stderr`` object is untouched; used only while opening devices, before any thread runs."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_device(spec: str, kind: str) -> av.container.InputContainer:
    url, fmt, options = device_spec(spec, kind)
    try:
        with _native_stderr_silenced():
            return av.open(url, format=fmt, options=options)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{kind} {spec!r}: cannot open ({_one_line(exc)})") from None


class LiveSource:
    """A camera (``--camera``) and an optional microphone (``--mic``).

    Timestamps are seconds since the source opened on one monotonic clock, so the audio window of a
    frame is the microphone audio that ended when the frame arrived. The camera is read on the caller's
    thread, one frame at a time: whatever the consumer does with a frame, the next one read is the
    newest the device holds (FFmpeg lavfi test sources are paced to their frame rate). ``frames`` counts
    the frames captured, every one of which was handed to ``on_video``.
    """

    live = True

    def __init__(self, camera: str, mic: str | None = None, max_frames: int | None = None,
                 sample_rate: int = SAMPLE_RATE, want_yuv: bool = False) -> None:
        self.camera = _open_device(camera, "camera")
        self.notes: list[str] = []  # one-line warnings the pipeline prints
        self.mic = None
        if mic:
            try:
                self.mic = _open_device(mic, "microphone")
            except InputError as exc:  # a camera without its microphone is still useful: audio-free path
                self.notes.append(f"warning: {exc}; running without audio")
        v = self.camera.streams.video[0]
        self.fps = float(v.average_rate or v.guessed_rate or 30)
        self.time_base = Fraction(1, 1000)
        self.width, self.height = v.codec_context.width, v.codec_context.height
        self.total_frames = max_frames
        self.max_frames = max_frames
        self.sample_rate = sample_rate
        self.want_yuv = want_yuv
        self.corrupt_packets = 0
        self.lost = False
        self.truncated = False
        self.frames = 0
        self._t0 = time.monotonic()
        self._mic_thread: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def has_audio(self) -> bool:
        return self.mic is not None

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        if self._mic_thread is not None:
            self._mic_thread.join(timeout=2)
        self.camera.close()
        if self.mic is not None:
            self.mic.close()

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _read_mic(self, on_audio: OnAudio, stop: threading.Event) -> None:
        resampler = MonoResampler(self.sample_rate)
        paced = self.mic.format.name == "lavfi"  # test sources produce as fast as we read: pace them
        produced = 0.0
        first = True
        try:
            for frame in self.mic.decode(audio=0):
                if stop.is_set() or self._closing.is_set():
                    break
                samples = resampler.push(frame)
                seconds = frame.samples / frame.sample_rate
                if paced:
                    produced += seconds
                    time.sleep(max(0.0, produced - self._now()))
                on_audio(samples, self._now() - len(samples) / self.sample_rate if first else None)
                first = False
        except (av.error.FFmpegError, OSError):
            pass

    def read(self, on_video: OnVideo, on_audio: OnAudio, stop: threading.Event) -> None:
        """Capture until ``max_frames``, ``stop``, the camera ends / goes away or ``on_video`` says stop."""
        if self.mic is not None:
            self._mic_thread = threading.Thread(target=self._read_mic, args=(on_audio, stop), daemon=True,
                                                name="microphone")
            self._mic_thread.start()
        timeline = _Timeline()
        paced = self.camera.format.name == "lavfi"
        try:
            for frame in self.camera.decode(video=0):
                if stop.is_set() or (self.max_frames and self.frames >= self.max_frames):
                    break
                if paced:
                    time.sleep(max(0.0, self.frames / self.fps - self._now()))
                now = self._now()
                item = VideoItem(self.frames, frame.to_ndarray(format="rgb24"), now, timeline.next(int(now * 1000)),
                                 self.time_base, time.perf_counter(), _yuv420(frame) if self.want_yuv else None)
                item.pts = item.raw_pts / 1000.0
                self.frames += 1
                if not on_video(item):
                    break
        except (av.error.FFmpegError, OSError):
            self.lost = True
        finally:
            self._closing.set()


def open_source(path: str | None = None, camera: str | None = None, mic: str | None = None,
                max_frames: int | None = None, sample_rate: int = SAMPLE_RATE,
                want_yuv: bool = False) -> FileSource | LiveSource:
    """A :class:`LiveSource` for ``camera`` (+ ``mic``), else a :class:`FileSource` for ``path``;
    audio is resampled to ``sample_rate`` (the model's)."""
    if camera is not None:
        return LiveSource(camera, mic, max_frames, sample_rate, want_yuv)
    if path is None:
        raise InputError("give a SOURCE file or --camera")
    return FileSource(path, sample_rate, max_frames, want_yuv)
