"""The streaming scheduler of ``stanet-rt run`` and of :func:`stanet_rt.stream` (ARCHITECTURE.md, "Data flow").

:class:`Scheduler` joins three stages by bounded channels: **decode** (a thread: the :class:`Source`
pushes frames into the frame channel and audio into a ring buffer built from the model's audio config,
never dropped), **infer** (a thread: batches of frames -> the audio window ending at each frame's pts ->
students -> STANet+ fusion -> the result channel) and **sink** (the caller's thread: :meth:`Scheduler.frames`
yields each :class:`SaliencyFrame`; :meth:`Scheduler.run` writes it to the overlay video, the maps file
and the preview).

Back-pressure: a file is never dropped from (a full channel blocks the decoder). A live source never
queues more than it can process: its frame channel holds one frame and a newer frame replaces it
(counted as dropped), its result channel one, and inference takes a frame only when its result can be
queued, so a map is at most about two frames old whatever the load. Every
frame that came in is output or counted as dropped (``frames_in == frames_out + dropped``), also when
the run is stopped (:meth:`Scheduler.request_stop`: frames still queued are dropped and counted) or
ends on ``max_frames``.

The library returns a :class:`RunResult` with a ``status``; signal handling and shell exit codes belong
to the CLI (``stanet_rt.cli.run``). Everything here is numpy: with ONNX Runtime engines nothing imports
torch.

Imports numpy, ``stanet_rt.{audio.ring,engines,pipeline}``.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stanet_rt.audio.ring import AudioRing
from stanet_rt.errors import InputError
from stanet_rt.pipeline.model_runner import Fuser, StreamingStudent
from stanet_rt.pipeline.sinks import MapsSink, OverlaySink, PreviewSink, percentiles
from stanet_rt.pipeline.sources import Source, VideoItem, open_source

SILENCE_RMS = 1e-4
RING_SECONDS = 30.0  # audio kept in the ring beyond one window: the most a frame may lag its audio
STATUS_DONE, STATUS_STOPPED, STATUS_LOST, STATUS_TRUNCATED, STATUS_CORRUPT = (
    "done", "stopped", "source lost", "source truncated", "source had corrupt data")
_END = object()


@dataclass
class RunOptions:
    """What to write and how to schedule: ``overlay`` video / ``maps`` (.h5) paths or None, ``preview``
    window, ``batch`` frames per encoder call (files; live sources run one frame at a time),
    ``max_frames`` (stop after N frames in), ``backend`` / ``device`` / ``precision`` for the engines,
    ``progress`` bar (files, on a terminal), ``queue_size`` (frames per channel for files), ``fusion`` of
    several models' maps ("max": the paper's FinalFusion, or "mean"; ``model_runner.fuse_maps``)."""

    overlay: Path | None = None
    maps: Path | None = None
    preview: bool = False
    batch: int = 4
    max_frames: int | None = None
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    progress: bool = True
    queue_size: int = 32
    encoder_preset: str = "veryfast"
    fusion: str = "max"


@dataclass
class RunResult:
    """``status``: "done", "stopped" (request_stop), "source lost", "source truncated" or "source had
    corrupt data" (outputs finalized in every case); counts with ``frames_in == frames_out + dropped``."""

    status: str
    frames_in: int
    frames_out: int
    dropped: int
    stats: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


@dataclass
class SaliencyFrame:
    """One output of :func:`stanet_rt.stream`: ``timestamp`` seconds (the stream's clock), ``image``
    (H, W, 3) uint8 RGB, ``saliency`` (h, w) float32 in [0, 1] at the model's map size, the frame's
    ``index`` and raw pts; ``arrival`` is ``time.perf_counter()`` when it was decoded / captured."""

    index: int
    timestamp: float
    image: np.ndarray
    saliency: np.ndarray
    raw_pts: int
    arrival: float
    yuv: np.ndarray | None = None


def load_models(models: list[str | Path], backend: str = "auto", device: str = "auto",
                precision: str = "auto") -> list[Any]:
    """Open each student through the model resolver (``stanet_rt.resolve``: ``default``, config names,
    checkpoints, exports, single graphs); no models = the default model(s)."""
    from stanet_rt.resolve import open_model, resolve_models

    return [open_model(ref, backend, device, precision) for ref in resolve_models(models)]


class _Channel:
    """A bounded queue between two stages that cannot deadlock.

    ``put`` gives up (returns False) once the consumer has finished, so a producer never blocks on a
    full queue nobody reads; ``get`` returns ``_END`` once the producer has finished and the queue is
    drained, so no end sentinel has to squeeze into a full queue.
    """

    def __init__(self, maxsize: int) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.producer_done = threading.Event()
        self.consumer_done = threading.Event()

    def put(self, item: Any) -> bool:
        while not self.consumer_done.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def put_newest(self, item: Any) -> int:
        """Put without waiting; the oldest queued items make room (live sources). Returns how many
        items were dropped (1 for ``item`` itself when the consumer has finished)."""
        dropped = 0
        while not self.consumer_done.is_set():
            try:
                self.queue.put_nowait(item)
                return dropped
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    dropped += 1
                except queue.Empty:
                    pass
        return dropped + 1

    def get(self, stop: threading.Event | None = None) -> Any:
        """The next item; ``_END`` once the producer is done and the queue empty (or ``stop`` is set)."""
        while True:
            if stop is not None and stop.is_set():
                return _END
            try:
                return self.queue.get(timeout=0.05)
            except queue.Empty:
                if self.producer_done.is_set():  # every put happened before the flag was set
                    try:
                        return self.queue.get_nowait()
                    except queue.Empty:
                        return _END

    def drain(self) -> list[Any]:
        """Everything still queued (the channel is being shut down)."""
        items = []
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                return items

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()


def _valid_rms(window: np.ndarray, end_pts: float, ring: AudioRing) -> float | None:
    """RMS of the part of an end-aligned window that holds real samples (not the zero padding before
    the stream started or after the audio received so far); None when there is none."""
    sr = ring.sample_rate
    n = window.shape[-1]
    start = end_pts - n / sr
    lo = int(round((max(start, ring.start_time) - start) * sr))
    hi = int(round((min(end_pts, ring.end_time) - start) * sr))
    lo, hi = max(0, min(lo, n)), max(0, min(hi, n))
    if hi <= lo:
        return None
    part = window[lo:hi]
    return float(np.sqrt(np.mean(part * part)))


class SilenceTracker:
    """Stretches of real audio that are silent (the gate is closed for their frames). Frames whose
    window holds no real samples yet (the very first frames, a microphone that has not started) do not
    count: they are not silence, just no audio."""

    def __init__(self) -> None:
        self.silent_frames = 0
        self.frames = 0
        self.longest = (0.0, 0.0)  # (seconds, start)
        self._run_start: float | None = None
        self._last: float | None = None

    def add(self, pts: float, silent: bool) -> None:
        self.frames += 1
        if silent:
            self.silent_frames += 1
            if self._run_start is None:
                self._run_start = pts
            self._last = pts
            length = pts - self._run_start
            if length > self.longest[0] or self.longest == (0.0, 0.0):
                self.longest = (length, self._run_start)
        else:
            self._run_start = None

    def summary(self, fps: float) -> str | None:
        """One line, or None when no real stretch of the audio was silent."""
        if not self.silent_frames:
            return None
        seconds = self.silent_frames / fps if fps else 0.0
        length, start = self.longest
        length += 1.0 / fps if fps else 0.0
        return (f"silent audio: {seconds:.1f} s of the audio was silent (longest stretch {length:.1f} s from "
                f"{start:.1f} s); the audio-visual gate was off there")


class Scheduler:
    """One run over one source: decode and infer threads, results through :meth:`frames` / :meth:`run`."""

    def __init__(self, source: Source, bundles: list[Any], options: RunOptions | None = None,
                 log: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> None:
        self.source = source
        self.bundles = bundles
        self.opts = options or RunOptions()
        self.log = log or (lambda m: None)
        self.stop_event = stop or threading.Event()
        self.timings: dict[str, Any] = defaultdict(lambda: array("d"))  # ms per call, 8 bytes each
        self.students = [StreamingStudent(b, self.timings) for b in bundles]
        self.map_size = self.students[0].size
        self.fuser = Fuser(len(self.students), self.map_size, self.opts.fusion)
        audio_configs = {b.config.audio for b in bundles if b.config.audio is not None}
        if len(audio_configs) > 1:
            raise InputError("the fused models use different audio front ends; fuse models with the same audio config")
        self.audio_config = next(iter(audio_configs), None)
        self.ring: AudioRing | None = None
        if self.audio_config is not None:
            sr = self.audio_config.sample_rate
            window = self.audio_config.window_samples
            self.ring = AudioRing(capacity=window + int(RING_SECONDS * sr), sample_rate=sr, window=window)
        live = source.live
        self.batch = 1 if live else max(1, self.opts.batch)
        self.frames_ch = _Channel(1 if live else self.opts.queue_size)
        self.results_ch = _Channel(1 if live else self.opts.queue_size)
        self._lock = threading.Lock()
        self.frames_in = self.frames_out = self.dropped_late = self.dropped_at_stop = 0
        self.audio_done = threading.Event()
        self.messages: list[str] = []
        self.errors: list[BaseException] = []
        self.silence = SilenceTracker()
        self._audio_started = False
        self.elapsed = 0.0
        self.first_map_s: float | None = None
        self.stopped = False
        self.first_map_at: float | None = None  # wall clock (epoch seconds) when the first map was ready

    # -- control ---------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop reading; frames already processed are still delivered, queued ones are dropped (counted)."""
        self.stop_event.set()

    def say(self, msg: str) -> None:
        """Log ``msg`` once per run."""
        if msg not in self.messages:
            self.messages.append(msg)
            self.log(msg)

    @property
    def dropped(self) -> int:
        return self.dropped_late + self.dropped_at_stop

    # -- decode ----------------------------------------------------------------------------------
    def _on_video(self, item: VideoItem) -> bool:
        with self._lock:
            self.frames_in += 1
        if self.source.live:
            dropped = self.frames_ch.put_newest(item)
            with self._lock:
                self.dropped_late += dropped
            return not self.stop_event.is_set()
        self.timings["decode"].append((time.perf_counter() - self._t_decode) * 1000.0)
        if not self.frames_ch.put(item):
            return False  # inference has finished (stop or error): this frame is not processed
        self._t_decode = time.perf_counter()
        return not self.stop_event.is_set()

    def _on_audio(self, samples: np.ndarray, start_time: float | None) -> None:
        if self.ring is None:
            return
        if not self._audio_started and start_time is not None:
            self.ring.start_time = start_time  # the audio's own start on the video's clock
        self._audio_started = True
        self.ring.push(samples)

    def decode(self) -> None:
        """The decode stage (a thread): the source pushes frames and audio until it ends or is stopped."""
        self._t_decode = time.perf_counter()  # decode time of a file frame: demux + decode (audio included)
        try:
            self.source.read(self._on_video, self._on_audio, self.stop_event)
        finally:
            self.audio_done.set()

    # -- infer -----------------------------------------------------------------------------------
    def _audio_windows(self, items: list[VideoItem]) -> tuple[np.ndarray | None, np.ndarray]:
        ring = self.ring
        if ring is None or not self.source.has_audio:
            return None, np.zeros(len(items))
        windows, on = [], []
        for item in items:
            deadline = time.monotonic() + (1.0 if self.source.live else 30.0)
            while (ring.end_time < item.pts and not self.audio_done.is_set() and not self.frames_ch.full()
                   and not self.stop_event.is_set() and time.monotonic() < deadline):
                time.sleep(0.002)  # the audio of this frame is still being demuxed / recorded
            w = ring.window_ending_at(item.pts, pad_future=True)
            rms = _valid_rms(w, item.pts, ring)
            silent = rms is None or rms < SILENCE_RMS
            if rms is not None:
                self.silence.add(item.pts, silent)
            windows.append(w)
            on.append(0.0 if silent else 1.0)
        return np.stack(windows), np.array(on)

    def _next_batch(self) -> list[VideoItem]:
        """Up to ``batch`` frames: waits for the first, takes the rest only if already queued."""
        item = self.frames_ch.get(self.stop_event)
        if item is _END:
            return []
        items = [item]
        while len(items) < self.batch and not self.frames_ch.empty():
            nxt = self.frames_ch.get(self.stop_event)
            if nxt is _END:
                break
            items.append(nxt)
        return items

    def infer(self) -> None:
        """The inference stage (a thread): batches through every student, fused maps to the result channel."""
        pending: dict[int, VideoItem] = {}  # the students' frame sequence number -> the frame
        seq = 0  # live sources drop frames, so item.index has gaps; the students count the frames they got
        while True:
            if self.source.live:  # take the next (newest) frame only once its result has somewhere to go
                while (self.results_ch.full() and not self.stop_event.is_set()
                       and not self.results_ch.consumer_done.is_set()):
                    time.sleep(0.001)
            items = self._next_batch()
            if not items:
                break
            for it in items:
                pending[seq] = it
                seq += 1
            images = np.stack([it.image for it in items])
            windows, on = self._audio_windows(items)
            ready = [s.push(images, windows, on) for s in self.students]
            if not self._emit(ready, pending):
                return
        self._emit([s.flush() for s in self.students], pending)  # the look-ahead's last frames, edge-padded

    def _emit(self, ready: list[list[tuple[int, np.ndarray]]], pending: dict[int, VideoItem]) -> bool:
        for per_model in ready:
            for index, logits in per_model:
                t1 = time.perf_counter()
                fused = self.fuser.add(index, logits)
                self.timings["fusion"].append((time.perf_counter() - t1) * 1000.0)
                if fused is not None and index in pending:
                    item = pending.pop(index)
                    frame = SaliencyFrame(item.index, item.pts, item.image, fused, item.raw_pts, item.arrival,
                                          item.yuv)
                    if not self.results_ch.put(frame):
                        return False  # the consumer has finished: stop producing
        return True

    # -- threads and results ---------------------------------------------------------------------
    def _worker(self, fn: Callable[[], None], consumes: _Channel | None, produces: _Channel | None) -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised by frames() once the stages are down
            self.errors.append(exc)
            self.stop_event.set()
        finally:
            if produces is not None:
                produces.producer_done.set()
            if consumes is not None:
                consumes.consumer_done.set()

    def frames(self) -> Iterator[SaliencyFrame]:
        """Start the decode and infer threads and yield fused maps in frame order as they are ready.

        Stopping early (``break`` in the caller, :meth:`request_stop`, an error) shuts the threads down
        and counts what was still queued as dropped; a stage's exception is re-raised here."""
        for note in getattr(self.source, "notes", ()):
            self.say(note)
        if self.audio_config is not None and not self.source.has_audio:
            switch = any(getattr(b.config, "use_switch", False) for b in self.bundles)
            self.say("no audio track / microphone: running the audio-free path "
                     + ("(AudioSwitch off)" if switch else "(audio-visual gate closed)"))
        start = time.perf_counter()
        threads = [threading.Thread(target=self._worker, args=(self.decode, None, self.frames_ch), name="decode",
                                    daemon=True),
                   threading.Thread(target=self._worker, args=(self.infer, self.frames_ch, self.results_ch),
                                    name="inference", daemon=True)]
        for t in threads:
            t.start()
        try:
            while True:
                frame = self.results_ch.get()
                if frame is _END:
                    break
                with self._lock:
                    self.frames_out += 1
                if self.first_map_s is None:
                    self.first_map_s = time.perf_counter() - start
                    self.first_map_at = time.time()
                yield frame
        finally:
            self.stopped = self.stop_event.is_set()  # asked to stop (request_stop / the caller's event / an error)
            self.stop_event.set()
            self.results_ch.consumer_done.set()
            for t in threads:
                t.join()
            self.frames_ch.drain()
            self.results_ch.drain()
            with self._lock:  # every frame that came in and was neither output nor replaced by a newer one
                self.dropped_at_stop = self.frames_in - self.frames_out - self.dropped_late
            self.elapsed = time.perf_counter() - start
            summary = self.silence.summary(self.source.fps)
            if summary:
                self.say(summary)
        if self.errors:
            raise self.errors[0]

    def _open_sinks(self) -> list[Any]:
        opts, src = self.opts, self.source
        sinks: list[Any] = []
        audio_from = getattr(src, "path", None) if src.has_audio and not src.live else None
        try:
            if opts.overlay:
                sinks.append(OverlaySink(opts.overlay, src.fps, src.time_base, src.width, src.height, audio_from,
                                         opts.encoder_preset))
            if opts.maps:
                attrs = {"models": ",".join(b.config.name for b in self.bundles), "fps": src.fps,
                         "source": str(getattr(src, "path", "live"))}
                sinks.append(MapsSink(opts.maps, self.map_size, attrs))
            if opts.preview:
                sinks.append(PreviewSink())
        except Exception:
            for s in sinks:
                s.close()
            raise
        return sinks

    def sink(self, frame: SaliencyFrame, sinks: list[Any]) -> None:
        """The sink stage for one frame: overlay, maps (flushed every 8 frames), preview; its latency."""
        t0 = time.perf_counter()
        for s in sinks:
            t1 = time.perf_counter()
            if isinstance(s, OverlaySink):
                s.write(frame.image, frame.saliency, frame.raw_pts, frame.yuv)
                self.timings["overlay"].append((time.perf_counter() - t1) * 1000.0)
            elif isinstance(s, MapsSink):
                s.write(frame.saliency, frame.timestamp)
                if s.count % 8 == 0:
                    s.flush()
                self.timings["maps"].append((time.perf_counter() - t1) * 1000.0)
            elif not s.write(frame.image, frame.saliency):
                self.request_stop()  # the preview window was closed
        now = time.perf_counter()
        self.timings["sinks"].append((now - t0) * 1000.0)
        self.timings["latency"].append((now - frame.arrival) * 1000.0)

    def run(self) -> RunResult:
        """Run to the end writing the sinks of the options; outputs are finalized on every exit path."""
        sinks = self._open_sinks()
        bar = task = None
        if self.opts.progress and not self.source.live and sys.stderr.isatty():
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("saliency", total=self.source.total_frames)
        try:
            for frame in self.frames():
                self.sink(frame, sinks)
                if bar is not None:
                    bar.advance(task)
        finally:
            if bar is not None:
                bar.stop()
            errors = []
            for s in sinks:
                try:
                    s.close()
                except Exception as exc:  # keep closing the others
                    errors.append(exc)
            if errors and not self.errors:
                raise errors[0]
        return self.result()

    def status(self) -> str:
        src = self.source
        if self.stopped:
            return STATUS_STOPPED
        if src.lost:
            return STATUS_LOST
        if getattr(src, "truncated", False):
            return STATUS_TRUNCATED
        if src.corrupt_packets:
            return STATUS_CORRUPT
        return STATUS_DONE

    def result(self) -> RunResult:
        """The run's counts, status and statistics (also valid after an exception)."""
        status = self.status()
        if status in (STATUS_LOST, STATUS_TRUNCATED, STATUS_CORRUPT):
            what = {STATUS_LOST: "was lost", STATUS_TRUNCATED: "is truncated"}.get(status, "had corrupt data")
            self.say(f"source {what}: stopped/skipped cleanly, outputs finalized")
        stats = self.stats()
        stats["status"] = status
        return RunResult(status, self.frames_in, self.frames_out, self.dropped, stats, list(self.messages))

    def stats(self) -> dict[str, Any]:
        """Counts, fps, per-stage timing percentiles (ms), latency (arrival -> map written), models."""
        elapsed = self.elapsed
        return {
            "frames_in": self.frames_in, "frames_out": self.frames_out, "dropped": self.dropped,
            "dropped_late": self.dropped_late, "dropped_at_stop": self.dropped_at_stop,
            "corrupt_packets": self.source.corrupt_packets, "seconds": round(elapsed, 3),
            "fps": round(self.frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            "first_map_s": None if self.first_map_s is None else round(self.first_map_s, 3),
            "first_map_at": self.first_map_at,
            "silent_audio_s": round(self.silence.silent_frames / self.source.fps, 2) if self.source.fps else 0.0,
            "models": [b.config.name for b in self.bundles], "backend": [b.backend for b in self.bundles],
            "device": self.bundles[0].encoder.info.device,
            "lookahead_frames": max(s.lookahead for s in self.students),
            "stages": {k: percentiles(v) for k, v in self.timings.items()},
        }


def open_run(source: str | Path | None, models: list[str | Path] | None = None, options: RunOptions | None = None,
             camera: str | None = None, mic: str | None = None, log: Callable[[str], None] | None = None,
             stop: threading.Event | None = None) -> tuple[Scheduler, Source]:
    """Load the models, then open the source with their audio sample rate; returns (scheduler, source).
    The caller enters the source (``with source:``) and runs the scheduler."""
    from stanet_rt.outputs import check_outputs

    opts = options or RunOptions()
    # the Python API refuses what the CLI refuses: an output on the input, folders as files, ... (one line)
    check_outputs([source, *(models or [])], {"overlay": opts.overlay, "maps": opts.maps})
    bundles = load_models(list(models or []), opts.backend, opts.device, opts.precision)
    rate = next((b.config.audio.sample_rate for b in bundles if b.config.audio is not None), 16000)
    src = open_source(str(source) if source is not None else None, camera, mic, opts.max_frames, rate,
                      want_yuv=opts.overlay is not None)
    return Scheduler(src, bundles, opts, log, stop), src


def run(source: str | Path | None, models: list[str | Path] | None = None, options: RunOptions | None = None,
        camera: str | None = None, mic: str | None = None, log: Callable[[str], None] | None = print,
        stop: threading.Event | None = None) -> RunResult:
    """Run the pipeline over a file (``source``) or ``camera`` (+ ``mic``) and write the outputs of
    ``options``; returns a :class:`RunResult`. Setting ``stop`` ends the run early (status "stopped")."""
    scheduler, src = open_run(source, models, options, camera, mic, log, stop)
    with src:
        return scheduler.run()


def stream(source: str | Path | None = None, model: str | Path | list[str | Path] | None = None, *,
           camera: str | None = None, mic: str | None = None, backend: str = "auto", device: str = "auto",
           batch: int = 4, max_frames: int | None = None,
           log: Callable[[str], None] | None = None) -> Iterator[SaliencyFrame]:
    """Saliency for every frame of a file or a live camera, as a generator::

        for frame in stanet_rt.stream("clip.mp4"):
            frame.timestamp, frame.image, frame.saliency  # seconds, (H, W, 3) uint8, (h, w) float32 in [0, 1]

    ``model``: a checkpoint / export path, a list of them (fused, STANet+), or None for the default
    model. Same scheduling and back-pressure as ``stanet-rt run``: a file is processed frame by frame
    at the pace the loop consumes; a live source keeps only the newest frame when the loop is slower.
    Breaking out of the loop stops the threads."""
    models = [] if model is None else list(model) if isinstance(model, (list, tuple)) else [model]
    opts = RunOptions(batch=batch, max_frames=max_frames, backend=backend, device=device, progress=False)
    scheduler, src = open_run(source, models, opts, camera, mic, log)
    with src:
        yield from scheduler.frames()

