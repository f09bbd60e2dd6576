"""Sources through PyAV: a media file, or a camera plus a microphone (devices or FFmpeg lavfi test sources).

Every source is a context manager whose :meth:`events` generator yields ``("video", VideoItem)`` and
``("audio", samples)`` (16 kHz mono float32) in demux order; live sources run one reader thread per
device and yield as data arrives. A corrupt packet in a file is skipped and counted; a camera that goes
away ends the stream with ``lost`` set.

Imports numpy, av and ``stanet_rt.audio``.
"""

from __future__ import annotations

import platform
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stanet_rt.audio.io import MonoResampler
from stanet_rt.errors import InputError


@dataclass
class VideoItem:
    """One decoded frame: ``image`` (H, W, 3) uint8 RGB, ``pts`` in seconds, ``raw_pts`` in ``time_base``."""

    index: int
    image: np.ndarray
    pts: float
    raw_pts: int | None
    time_base: Fraction | None


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class FileSource:
    """A file FFmpeg reads: video (required) with or without audio."""

    live = False

    def __init__(self, path: str | Path) -> None:
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
        self.time_base = self.video.time_base
        self.width, self.height = self.video.codec_context.width, self.video.codec_context.height
        self.total_frames = self.video.frames or None
        self.corrupt_packets = 0
        self.lost = False
        self.truncated = False

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()

    def events(self) -> Iterator[tuple[str, object]]:
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        resampler = MonoResampler() if self.audio is not None else None
        index, last_pts, resumes = 0, None, 0
        finished = False
        while not finished:
            finished = True
            try:
                for packet in self.container.demux(streams):
                    try:
                        frames = packet.decode()
                    except (av.error.InvalidDataError, av.error.FFmpegError):
                        self.corrupt_packets += 1  # skip the damaged packet, keep going
                        continue
                    for frame in frames:
                        if packet.stream.type == "video":
                            pts = float(frame.pts * self.time_base) if frame.pts is not None else index / self.fps
                            if last_pts is not None and pts <= last_pts:
                                continue  # a resumed demux may repeat frames
                            last_pts = pts
                            yield "video", VideoItem(index, frame.to_ndarray(format="rgb24"), pts, frame.pts,
                                                     self.time_base)
                            index += 1
                        else:
                            yield "audio", resampler.push(frame)
            except (av.error.InvalidDataError, av.error.FFmpegError, EOFError):
                self.corrupt_packets += 1  # damaged container data: try to resume after it a few times
                resumes += 1
                finished = resumes > 8
        if resampler is not None:
            yield "audio", resampler.flush()
        duration = float(self.container.duration / av.time_base) if self.container.duration else None
        if duration and last_pts is not None and last_pts + 2.0 / self.fps < duration - 1e-3:
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


def _open_device(spec: str, kind: str) -> av.container.InputContainer:
    url, fmt, options = device_spec(spec, kind)
    try:
        return av.open(url, format=fmt, options=options)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{kind} {spec!r}: cannot open ({_one_line(exc)})") from None


class LiveSource:
    """A camera (``--camera``) and an optional microphone (``--mic``), each read by its own thread.

    Timestamps are the arrival time on one monotonic clock (seconds since the source opened), so the
    audio window of a frame is the 0.5 s of microphone audio that ended when the frame arrived.
    """

    live = True

    def __init__(self, camera: str, mic: str | None = None, max_frames: int | None = None) -> None:
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
        self.corrupt_packets = 0
        self.lost = False
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._threads: list[threading.Thread] = []

    @property
    def has_audio(self) -> bool:
        return self.mic is not None

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self.camera.close()
        if self.mic is not None:
            self.mic.close()

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _put(self, event: tuple[str, object]) -> bool:
        """Queue an event unless the source is closing (never blocks forever on a full queue)."""
        while not self._stop.is_set():
            try:
                self._queue.put(event, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read_camera(self) -> None:
        index = 0
        try:
            for frame in self.camera.decode(video=0):
                if self._stop.is_set() or (self.max_frames and index >= self.max_frames):
                    break
                now = self._now()
                if not self._put(("video", VideoItem(index, frame.to_ndarray(format="rgb24"), now,
                                                     int(now * 1000), self.time_base))):
                    break
                index += 1
                if self.camera.format.name == "lavfi":  # test sources produce as fast as we read: pace them
                    time.sleep(max(0.0, index / self.fps - self._now()))
        except (av.error.FFmpegError, OSError):
            self.lost = True
        finally:
            self._put(("end", None))

    def _read_mic(self) -> None:
        resampler = MonoResampler()
        try:
            for frame in self.mic.decode(audio=0):
                if self._stop.is_set():
                    break
                if not self._put(("audio", resampler.push(frame))):
                    break
                if self.mic.format.name == "lavfi":
                    time.sleep(frame.samples / frame.sample_rate * 0.9)
        except (av.error.FFmpegError, OSError):
            pass

    def events(self) -> Iterator[tuple[str, object]]:
        self._threads = [threading.Thread(target=self._read_camera, daemon=True, name="camera")]
        if self.mic is not None:
            self._threads.append(threading.Thread(target=self._read_mic, daemon=True, name="microphone"))
        for t in self._threads:
            t.start()
        while True:
            kind, payload = self._queue.get()
            if kind == "end":
                self._stop.set()
                return
            yield kind, payload


def open_source(path: str | None = None, camera: str | None = None, mic: str | None = None,
                max_frames: int | None = None) -> FileSource | LiveSource:
    if camera is not None:
        return LiveSource(camera, mic, max_frames)
    if path is None:
        raise InputError("give a SOURCE file or --camera")
    return FileSource(path)
