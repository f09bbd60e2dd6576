"""Per-frame audio features of a media file, and the files they are stored in.

``plan_features`` decodes the audio and decides each video frame's 0.5 s window (start- or
end-aligned, see ``alignment.py``); ``FeaturePlan.iter_features`` turns the windows into (257 x 48)
log-spectrograms batch by batch; ``compute_features`` collects them into a :class:`FeatureSet`.
Writers (all atomic: a temp file or folder renamed into place at the end, so a failure never leaves a
half-written output):

* ``layout="h5"``: one file per video, dataset ``features`` (T, 257, 48) float32, ``timestamps`` (T,)
  seconds and ``sample_ranges`` (T, 2); attributes fps, sample_rate, alignment, n_frames, source.
* ``layout="stanet"``: the original's folder of per-frame ``NNNN_asp.h5`` files (4-digit, 0-based),
  dataset ``dataset`` (257, 48) float32, as the original loaders read them.

Imports numpy, h5py, torch and ``stanet_rt.audio``/``config``/``errors``; must not import models,
pipeline or cli.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from stanet_rt.audio.alignment import end_aligned_windows, slice_windows, start_aligned_windows
from stanet_rt.audio.io import AudioTrack, VideoInfo, read_audio, read_video_info
from stanet_rt.audio.spectrogram import reference_log_spectrogram
from stanet_rt.config import AUDIO, AudioConfig
from stanet_rt.errors import InputError
from stanet_rt.fileio import atomic_dir, atomic_path

Layout = Literal["h5", "stanet"]
AlignmentName = Literal["start", "end"]
LAYOUTS = ("h5", "stanet")
ALIGNMENTS = ("start", "end")
MEDIA_SUFFIXES = frozenset(
    {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".mp4", ".m4v", ".mkv", ".mov", ".avi"}
    | {".webm", ".mpg", ".mpeg", ".ts", ".flv"}
)
CHECK_TOLERANCE = 1e-4  # max |torch - scipy reference| accepted by ``--check``


@dataclass(frozen=True)
class FeaturePlan:
    """Decoded audio plus the window of every frame, before any spectrogram is computed.

    ``waveform`` (L,) float32 at ``sample_rate`` Hz; ``ranges`` (T, 2) int64 [start, stop) sample
    indices into it (may reach outside [0, L): zero-padded); ``timestamps`` (T,) float64 frame times in
    seconds on the container's timeline; ``fps`` frames per second.
    """

    source: Path
    waveform: np.ndarray
    ranges: np.ndarray
    timestamps: np.ndarray
    fps: float
    alignment: AlignmentName
    config: AudioConfig = AUDIO

    @property
    def n_frames(self) -> int:
        return len(self.ranges)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def windows(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Waveform windows of frames [lo, hi): (n, window_samples) float32."""
        return slice_windows(self.waveform, self.ranges[lo:hi])

    def iter_features(
        self, batch_size: int = 64, device: str = "cpu", check: ReferenceCheck | None = None
    ) -> Iterator[np.ndarray]:
        """Yield the frames' log-spectrograms in order, (b, 257, 48) float32 blocks of <= batch_size.

        ``device``: torch device string ("cpu", "cuda", "cuda:1"). With ``check``, every block is also
        computed with the scipy reference and the largest difference recorded in ``check``.
        """
        import torch

        from stanet_rt.audio.spectrogram import log_spectrogram

        for lo in range(0, self.n_frames, batch_size):
            windows = self.windows(lo, lo + batch_size)
            feats = log_spectrogram(torch.from_numpy(windows).to(device), self.config)[:, 0].cpu().numpy()
            if check is not None:
                check.update(windows, feats, self.config)
            yield feats


class ReferenceCheck:
    """Largest |torch - scipy reference| seen over all checked windows (z-normalised units)."""

    def __init__(self) -> None:
        self.max_abs_error = 0.0
        self.n_windows = 0

    def update(self, windows: np.ndarray, features: np.ndarray, config: AudioConfig = AUDIO) -> None:
        """``windows`` (b, N) waveforms and their computed ``features`` (b, 257, 48)."""
        ref = reference_log_spectrogram(windows, config)[:, 0]
        if len(ref):
            self.max_abs_error = max(self.max_abs_error, float(np.max(np.abs(ref - features))))
        self.n_windows += len(ref)

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= CHECK_TOLERANCE


@dataclass(frozen=True)
class FeatureSet:
    """The features of one file: ``features`` (T, 257, 48) float32, one z-normalised log-spectrogram per
    video frame, with the plan that produced them."""

    plan: FeaturePlan
    features: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.features)

    @property
    def fps(self) -> float:
        return self.plan.fps

    @property
    def alignment(self) -> AlignmentName:
        return self.plan.alignment

    @property
    def timestamps(self) -> np.ndarray:
        return self.plan.timestamps


def plan_features(
    path: str | Path,
    fps: float | None = None,
    alignment: AlignmentName = "start",
    n_frames: int | None = None,
    config: AudioConfig = AUDIO,
) -> FeaturePlan:
    """Decode ``path`` and place one window per video frame.

    Frames: a video gives its own frame count and timestamps. ``fps`` overrides its rate (frame i at
    t0 + i / fps) and is required for audio-only files, whose frames are i / fps for
    i < floor(duration * fps). ``n_frames`` overrides the count (e.g. the number of extracted jpgs).

    ``alignment="start"``: the original's evenly spread start-aligned windows (the default, matching
    the original feature files); ``"end"``: the streaming window ending at each frame's timestamp.

    Raises InputError (naming the file) for a missing/unreadable file, no audio track, an audio-only
    file without ``fps``, or audio that ends more than one frame before the last frame.
    """
    path = Path(path)
    if alignment not in ALIGNMENTS:
        raise InputError(f"alignment must be one of {', '.join(ALIGNMENTS)}, got {alignment!r}")
    if fps is not None and not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    if n_frames is not None and n_frames < 1:
        raise InputError(f"the number of frames must be >= 1, got {n_frames}")
    audio = read_audio(path, config.sample_rate)
    video = read_video_info(path)
    if video is None and fps is None:
        raise InputError(f"{path}: audio-only file; pass the video frame rate (--fps)")
    timestamps, rate = _frame_times(audio, video, fps, n_frames)
    needed = float(timestamps[-1])
    if audio.end_time < needed - 1.0 / rate:
        raise InputError(
            f"{path}: audio too short: it ends at {audio.end_time:.3f} s, "
            f"but the last video frame is at {needed:.3f} s"
        )
    if alignment == "start":
        ranges = start_aligned_windows(len(audio.samples), len(timestamps), config.window_samples)
    else:
        ranges = end_aligned_windows(timestamps - audio.start_time, config.window_samples, config.sample_rate)
    return FeaturePlan(
        source=path,
        waveform=audio.samples,
        ranges=ranges,
        timestamps=timestamps,
        fps=rate,
        alignment=alignment,
        config=config,
    )


def _frame_times(
    audio: AudioTrack, video: VideoInfo | None, fps: float | None, n_frames: int | None
) -> tuple[np.ndarray, float]:
    """Frame timestamps (T,) seconds and the frame rate used."""
    rate = float(fps) if fps is not None else video.fps  # type: ignore[union-attr]  (checked by caller)
    if video is not None and fps is None and (n_frames is None or n_frames <= video.n_frames):
        return video.timestamps[: n_frames or video.n_frames].copy(), rate
    t0 = float(video.timestamps[0]) if video is not None else audio.start_time
    if n_frames is None and video is not None:
        n_frames = video.n_frames
    elif n_frames is None:
        n_frames = max(1, int(np.floor(audio.duration * rate + 1e-9)))
    return t0 + np.arange(n_frames, dtype=np.float64) / rate, rate


def compute_features(
    path: str | Path,
    fps: float | None = None,
    alignment: AlignmentName = "start",
    n_frames: int | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    check: ReferenceCheck | None = None,
) -> FeatureSet:
    """Features of every video frame of ``path`` in memory: (T, 257, 48) float32 (49 kB per frame).

    Arguments as :func:`plan_features` and :meth:`FeaturePlan.iter_features`.
    """
    plan = plan_features(path, fps=fps, alignment=alignment, n_frames=n_frames)
    blocks = list(plan.iter_features(batch_size=batch_size, device=device, check=check))
    return FeatureSet(plan=plan, features=np.concatenate(blocks, axis=0))


# -------------------------------------------------------------------------------------------------
# Writers
# -------------------------------------------------------------------------------------------------


def write_features(plan: FeaturePlan, blocks: Iterable[np.ndarray], out: str | Path, layout: Layout) -> Path:
    """Write feature ``blocks`` ((b, 257, 48) arrays, in frame order, T frames in all) of ``plan`` to
    ``out`` atomically: a file for ``layout="h5"``, a folder for ``"stanet"``. Returns ``out``."""
    if layout == "h5":
        return _write_h5(plan, blocks, Path(out))
    if layout == "stanet":
        return _write_stanet(plan, blocks, Path(out))
    raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def save_features(features: FeatureSet, out: str | Path, layout: Layout = "h5") -> Path:
    """Write a computed :class:`FeatureSet` (see :func:`write_features`)."""
    return write_features(features.plan, [features.features], out, layout)


def _write_h5(plan: FeaturePlan, blocks: Iterable[np.ndarray], out: Path) -> Path:
    import h5py

    cfg = plan.config
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        dset = f.create_dataset(
            "features",
            shape=(plan.n_frames, cfg.n_freq, cfg.n_time),
            dtype="float32",
            chunks=(1, cfg.n_freq, cfg.n_time),
        )
        _fill(plan, blocks, lambda lo, block: dset.__setitem__(slice(lo, lo + len(block)), block))
        f.create_dataset("timestamps", data=plan.timestamps.astype(np.float64))
        f.create_dataset("sample_ranges", data=plan.ranges.astype(np.int64))
        f.attrs.update(
            fps=plan.fps,
            sample_rate=cfg.sample_rate,
            alignment=plan.alignment,
            n_frames=plan.n_frames,
            source=plan.source.name,
            window_samples=cfg.window_samples,
        )
    return out


def _write_stanet(plan: FeaturePlan, blocks: Iterable[np.ndarray], out: Path) -> Path:
    import h5py

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory (the stanet layout writes a folder)")
    with atomic_dir(out) as tmp:

        def put(lo: int, block: np.ndarray) -> None:
            for i, frame in enumerate(block, start=lo):
                with h5py.File(tmp / f"{i:04d}_asp.h5", "w") as f:
                    f.create_dataset("dataset", data=frame.astype(np.float32))

        _fill(plan, blocks, put)
    return out


def _fill(plan: FeaturePlan, blocks: Iterable[np.ndarray], put: Callable[[int, np.ndarray], None]) -> None:
    """Hand each block to ``put(first_frame_index, block)``; check the total is plan.n_frames."""
    lo = 0
    for block in blocks:
        put(lo, block)
        lo += len(block)
    if lo != plan.n_frames:
        raise ValueError(f"{plan.source}: got features for {lo} frames, expected {plan.n_frames}")


# -------------------------------------------------------------------------------------------------
# Files and folders
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractResult:
    """What ``extract_file`` wrote: ``output`` with ``n_frames`` frames; ``max_abs_error`` against the
    scipy reference when checked (else None)."""

    source: Path
    output: Path
    n_frames: int
    max_abs_error: float | None = None


def output_path(source: Path, out: Path, layout: Layout, out_is_dir: bool) -> Path:
    """Where the features of ``source`` go. ``out_is_dir``: ``out`` is a folder receiving
    ``<stem>.h5`` (h5) or ``<stem>/`` (stanet); otherwise ``out`` itself is the file (h5) or the
    per-frame folder (stanet)."""
    if not out_is_dir:
        return out
    return out / f"{source.stem}.h5" if layout == "h5" else out / source.stem


def extract_file(
    source: str | Path,
    out: str | Path,
    layout: Layout = "h5",
    fps: float | None = None,
    alignment: AlignmentName = "start",
    n_frames: int | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    check: bool = False,
) -> ExtractResult:
    """Compute and write the features of one file, streaming blocks to the writer.

    For ``layout="h5"``, ``out`` ending in ``.h5`` is the output file, anything else a folder that
    receives ``<stem>.h5``; for ``"stanet"``, ``out`` is the per-frame folder.
    """
    source, out = Path(source), Path(out)
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    target = output_path(source, out, layout, out_is_dir=layout == "h5" and out.suffix.lower() != ".h5")
    plan = plan_features(source, fps=fps, alignment=alignment, n_frames=n_frames)
    checker = ReferenceCheck() if check else None
    write_features(plan, plan.iter_features(batch_size, device, checker), target, layout)
    return ExtractResult(source, target, plan.n_frames, checker.max_abs_error if checker else None)


def find_media(folder: str | Path) -> list[Path]:
    """Media files under ``folder`` (recursively, by suffix), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)


def extract_folder(
    folder: str | Path,
    out: str | Path,
    layout: Layout = "h5",
    on_done: Callable[[Path, ExtractResult | InputError], None] | None = None,
    **options: object,
) -> tuple[list[ExtractResult], list[tuple[Path, InputError]]]:
    """``extract_file`` for every media file under ``folder``, mirroring sub-folders under ``out``
    (``a/b.mp4`` -> ``out/a/b.h5`` or ``out/a/b/NNNN_asp.h5``).

    A file that fails with InputError is recorded and skipped; the others are still written.
    ``on_done(path, result_or_error)`` is called after each file (progress). ``options`` go to
    ``extract_file``. Returns (results, failures).
    """
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such directory")
    sources = find_media(folder)
    if not sources:
        raise InputError(f"{folder}: no media files found (looked for {', '.join(sorted(MEDIA_SUFFIXES))})")
    targets: dict[Path, Path] = {}
    for src in sources:
        target = output_path(src, out / src.parent.relative_to(folder), layout, out_is_dir=True)
        if target in targets:
            raise InputError(f"{src}: same output name as {targets[target]} ({target})")
        targets[target] = src
    results: list[ExtractResult] = []
    failures: list[tuple[Path, InputError]] = []
    for target, src in targets.items():
        try:
            outcome: ExtractResult | InputError = extract_file(src, target, layout, **options)  # type: ignore[arg-type]
            results.append(outcome)
        except InputError as exc:
            outcome = exc
            failures.append((src, exc))
        if on_done is not None:
            on_done(src, outcome)
    return results, failures
