"""``run()``: the streaming scheduler of ``stanet-rt run`` (ARCHITECTURE.md, "Data flow").

Three threads joined by bounded queues: decode (source -> frame queue; audio -> ring buffer, never
dropped), inference (batches of frames -> audio window ending at each frame's pts -> students ->
fusion) and sinks (overlay video, maps, preview). Files are processed without dropping; live sources
keep the newest frames when inference falls behind (drops counted). SIGINT / SIGTERM set a stop event;
every sink is closed in ``finally``. Exit status: 0 done, 130 SIGINT, 143 SIGTERM, 3 source lost or
corrupt data skipped (outputs finalized), 2 bad input (raised before anything is written).

Imports numpy, torch, ``engines`` and ``stanet_rt.{audio,pipeline}``.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stanet_rt.audio.ring import AudioRing
from stanet_rt.errors import InputError
from stanet_rt.pipeline.model_runner import Fuser, StreamingStudent
from stanet_rt.pipeline.sinks import MapsSink, OverlaySink, PreviewSink, percentiles, write_stats
from stanet_rt.pipeline.sources import open_source

EXIT_OK, EXIT_SOURCE, EXIT_SIGINT, EXIT_SIGTERM = 0, 3, 130, 143
SILENCE_RMS = 1e-4
_END = object()


@dataclass
class RunOptions:
    overlay: Path | None = None
    maps: Path | None = None
    stats: Path | None = None
    preview: bool = False
    batch: int = 4
    max_frames: int | None = None
    backend: str = "auto"
    device: str = "auto"
    progress: bool = True
    queue_size: int = 32


@dataclass
class RunResult:
    exit_code: int
    frames_in: int
    frames_out: int
    dropped: int
    stats: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_models(models: list[str | Path], backend: str, device: str) -> list[Any]:
    from stanet_rt import engines
    if not models:
        from stanet_rt.models.default import default_model_paths

        models = default_model_paths()
    return [engines.open_student(m, backend=backend, device=device) for m in models]


def run(source: str | Path | None, models: list[str | Path], options: RunOptions | None = None,
        camera: str | None = None, mic: str | None = None, log=print) -> RunResult:  # noqa: ANN001
    """Run the pipeline; returns a :class:`RunResult` (its ``exit_code`` is what the CLI exits with)."""
    opts = options or RunOptions()
    device = _device(opts.device)
    bundles = load_models(models, opts.backend, device)
    src = open_source(str(source) if source is not None else None, camera, mic, opts.max_frames)
    stop = threading.Event()
    state: dict[str, Any] = {"signal": None}
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def handler(signum, _frame):  # noqa: ANN001
            state["signal"] = signum
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        with src:
            return _run(src, bundles, opts, device, stop, state, log)
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


class _Channel:
    """A bounded queue between two pipeline threads that cannot deadlock.

    ``put`` gives up (returns False) once the consumer has finished, so a producer never blocks on a
    full queue nobody reads; ``get`` returns ``_END`` once the producer has finished and the queue is
    drained, so no end sentinel has to squeeze into a full queue. Each thread marks its channels in a
    ``finally`` (see ``_worker``), whether it ended normally, on a stop or on an exception.
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
        """Put without waiting; the oldest queued items make room (live sources). Returns how many were dropped."""
        dropped = 0
        while not self.consumer_done.is_set():
            try:
                self.queue.put_nowait(item)
                break
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    dropped += 1
                except queue.Empty:
                    pass
        return dropped

    def get(self) -> Any:
        while True:
            try:
                return self.queue.get(timeout=0.05)
            except queue.Empty:
                if self.producer_done.is_set():  # every put happened before the flag was set
                    try:
                        return self.queue.get_nowait()
                    except queue.Empty:
                        return _END

    def get_nowait(self) -> Any:
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            return None

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()


def _valid_rms(window: np.ndarray, end_pts: float, ring: AudioRing) -> float:
    """RMS of the part of an end-aligned window that holds real samples (not the zero padding before
    the stream started or after the audio received so far); 0 when there is none. Without this the
    first frames of every clip counted as silent: their window is mostly padding."""
    sr = ring.sample_rate
    n = window.shape[-1]
    start = end_pts - n / sr
    lo = int(round((max(start, ring.start_time) - start) * sr))
    hi = int(round((min(end_pts, ring.end_time) - start) * sr))
    lo, hi = max(0, min(lo, n)), max(0, min(hi, n))
    if hi <= lo:
        return 0.0
    part = window[lo:hi]
    return float(np.sqrt(np.mean(part * part)))


def _run(src: Any, bundles: list[Any], opts: RunOptions, device: str, stop: threading.Event,
         state: dict[str, Any], log) -> RunResult:  # noqa: ANN001
    timings: dict[str, list[float]] = defaultdict(list)
    students = [StreamingStudent(b, device, timings) for b in bundles]
    map_size = students[0].size
    fuser = Fuser(len(students), map_size)
    uses_audio = any(b.audio is not None for b in bundles)
    ring = AudioRing(capacity=30 * 16000)
    # A live source keeps only the newest frames and runs them one at a time: latency stays one frame
    # behind the camera instead of a queue of stale frames (drops are counted).
    batch = 1 if src.live else opts.batch
    frames_ch = _Channel(2 if src.live else opts.queue_size)
    results_ch = _Channel(opts.queue_size)
    counters = {"in": 0, "out": 0, "dropped": 0}
    audio_done = threading.Event()
    messages: list[str] = []
    errors: list[BaseException] = []
    arrivals: dict[int, float] = {}  # frame index -> when it was decoded (latency = arrival to map written)

    def say_once(msg: str) -> None:
        if msg not in messages:
            messages.append(msg)
            log(msg)

    for note in getattr(src, "notes", ()):
        say_once(note)
    if uses_audio and not src.has_audio:
        say_once("no audio track / microphone: running the audio-free path (AudioSwitch off)")

    sinks: list[Any] = []
    overlay = maps = preview = None
    audio_from = getattr(src, "path", None) if src.has_audio and not src.live else None
    try:
        if opts.overlay:
            overlay = OverlaySink(opts.overlay, src.fps, src.time_base, src.width, src.height, audio_from)
            sinks.append(overlay)
        if opts.maps:
            maps = MapsSink(opts.maps, map_size, {"models": ",".join(b.config.name for b in bundles),
                                                  "fps": src.fps, "source": str(getattr(src, "path", "live"))})
            sinks.append(maps)
        if opts.preview:
            preview = PreviewSink()
            sinks.append(preview)
    except Exception:
        for s in sinks:
            s.close()
        raise

    def decode() -> None:
        try:
            t0 = time.perf_counter()  # decode time of a frame: demux + decode (its audio included)
            for kind, payload in src.events():
                if stop.is_set():
                    break
                if kind == "audio":
                    ring.push(payload)
                    continue
                counters["in"] += 1
                arrivals[payload.index] = time.perf_counter()
                if not src.live:  # a live source's wait for the camera is not decode time
                    timings["decode"].append((time.perf_counter() - t0) * 1000.0)
                if src.live:
                    counters["dropped"] += frames_ch.put_newest(payload)
                elif not frames_ch.put(payload):
                    break  # inference has finished (stop or error): nothing more to decode
                t0 = time.perf_counter()
                if opts.max_frames and counters["in"] >= opts.max_frames:
                    break
        finally:
            audio_done.set()

    def audio_windows(items: list[Any]) -> tuple[np.ndarray | None, np.ndarray]:
        if not (uses_audio and src.has_audio):
            return None, np.zeros(len(items))
        windows, on = [], []
        for item in items:
            deadline = time.monotonic() + (1.0 if src.live else 30.0)
            while (ring.end_time < item.pts and not audio_done.is_set() and not frames_ch.full()
                   and not stop.is_set() and time.monotonic() < deadline):
                time.sleep(0.002)  # the audio of this frame is still being demuxed
            w = ring.window_ending_at(item.pts, pad_future=True)
            silent = _valid_rms(w, item.pts, ring) < SILENCE_RMS
            if silent:
                say_once("silent audio: the audio-visual gate is off for silent frames")
            windows.append(w)
            on.append(0.0 if silent else 1.0)
        return np.stack(windows), np.array(on)

    def next_batch() -> tuple[list[Any], bool]:
        """Up to ``batch`` frames: waits for the first, takes the rest only if already queued."""
        item = frames_ch.get()
        if item is _END:
            return [], True
        items = [item]
        while len(items) < batch and not frames_ch.empty():
            nxt = frames_ch.get()
            if nxt is _END:
                return items, True
            items.append(nxt)
        return items, False

    def infer() -> None:
        pending: dict[int, Any] = {}
        done = False
        while not done:
            items, done = next_batch()
            done = done or stop.is_set()
            if items:
                for it in items:
                    pending[it.index] = it
                images = np.stack([it.image for it in items])
                windows, on = audio_windows(items)
                t0 = time.perf_counter()
                ready = [s.push(images, windows, on) for s in students]
                if not _emit(ready, pending, t0):
                    return
        _emit([s.flush() for s in students], pending, time.perf_counter())

    def _emit(ready: list[list[tuple[int, Any]]], pending: dict[int, Any], t0: float) -> bool:
        for per_model in ready:
            for index, logits in per_model:
                t1 = time.perf_counter()
                fused = fuser.add(index, logits)
                timings["fusion"].append((time.perf_counter() - t1) * 1000.0)
                if fused is not None and index in pending:
                    item = pending.pop(index)
                    if not results_ch.put((item, fused.detach().float().cpu().numpy(), time.perf_counter())):
                        return False  # the sinks have finished (error): stop producing
        return True

    def write_sinks() -> None:
        bar = None
        if opts.progress and not src.live and sys.stderr.isatty():
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("saliency", total=src.total_frames)
        try:
            while True:
                got = results_ch.get()
                if got is _END:
                    break
                item, sal, _t_ready = got
                t0 = time.perf_counter()
                if overlay is not None:
                    overlay.write(item.image, sal, item.raw_pts)
                    timings["overlay"].append((time.perf_counter() - t0) * 1000.0)
                if maps is not None:
                    t1 = time.perf_counter()
                    maps.write(sal, item.pts)
                    if counters["out"] % 8 == 0:
                        maps.flush()
                    timings["maps"].append((time.perf_counter() - t1) * 1000.0)
                if preview is not None and not preview.write(item.image, sal):
                    stop.set()
                timings["sinks"].append((time.perf_counter() - t0) * 1000.0)
                arrived = arrivals.pop(item.index, None)
                if arrived is not None:
                    timings["latency"].append((time.perf_counter() - arrived) * 1000.0)
                if src.live:  # frames dropped before inference never reach this point
                    for stale in [k for k in list(arrivals) if k < item.index]:
                        arrivals.pop(stale, None)
                counters["out"] += 1
                if bar is not None:
                    bar.advance(task)
        finally:
            if bar is not None:
                bar.stop()

    def _worker(fn, consumes: _Channel | None, produces: _Channel | None) -> None:  # noqa: ANN001
        try:
            fn()
        except BaseException as exc:  # re-raised by run() once every sink is finalized
            errors.append(exc)
            stop.set()
        finally:
            if produces is not None:
                produces.producer_done.set()
            if consumes is not None:
                consumes.consumer_done.set()

    start = time.perf_counter()
    threads = [threading.Thread(target=_worker, args=spec, name=name, daemon=True) for name, spec in
               (("decode", (decode, None, frames_ch)), ("inference", (infer, frames_ch, results_ch)),
                ("sinks", (write_sinks, results_ch, None)))]
    try:
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.1)
    finally:
        stop.set()
        for s in sinks:
            try:
                s.close()
            except Exception as exc:  # keep closing the others
                errors.append(exc)
    elapsed = time.perf_counter() - start
    if state["signal"] == signal.SIGINT:
        code = EXIT_SIGINT
    elif state["signal"] == signal.SIGTERM:
        code = EXIT_SIGTERM
    elif src.lost or src.corrupt_packets or getattr(src, "truncated", False):
        code = EXIT_SOURCE
        what = "was lost" if src.lost else "is truncated" if getattr(src, "truncated", False) else "had corrupt data"
        say_once(f"source {what}: stopped/skipped cleanly, outputs finalized")
    else:
        code = EXIT_OK
    stats = {
        "frames_in": counters["in"], "frames_out": counters["out"], "dropped": counters["dropped"],
        "corrupt_packets": src.corrupt_packets, "seconds": round(elapsed, 3),
        "fps": round(counters["out"] / elapsed, 2) if elapsed > 0 else 0.0,
        "models": [b.config.name for b in bundles], "backend": [b.backend for b in bundles], "device": device,
        "stages": {k: percentiles(v) for k, v in timings.items()}, "exit_code": code,
    }
    if opts.stats:
        write_stats(opts.stats, stats)
    if errors:
        raise errors[0]
    return RunResult(code, counters["in"], counters["out"], counters["dropped"], stats, messages)


def check_model_files(models: list[str]) -> None:
    for m in models:
        if not Path(m).exists():
            raise InputError(f"{m}: model file not found")
