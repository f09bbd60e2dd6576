"""The AVE data set layout (Tian et al., ECCV 2018; STANet's weakly labelled training set), read and written.

    <root>/AVE/<VideoID>.mp4                 the clips (the synthetic set: <root>/videos/<VideoID>.mp4)
    <root>/Annotations.txt                   Category&VideoID&Quality&StartTime&EndTime, one row per event
    <root>/trainSet.txt, valSet.txt, testSet.txt   the splits, same format

Start/end times are whole seconds from the clip's start. The class index is the position of the
category in the sorted list of all categories of ``Annotations.txt`` (28 for AVE), so it is the same
for every split. Per-frame event labels come from the segments at the video's own frame rate
(:func:`training.data.records.event_labels`). The synthetic set (``training.data.synth``) writes the same
files, so this reader reads it too.

Imports numpy, ``stanet_rt.audio.io`` (PyAV probing), ``stanet_rt.errors`` and ``training.data.{records,
atomic}``; must not import torch or anything above.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stanet_rt.training.data.records import ClassIndex, VideoRecord, event_labels

from stanet_rt.errors import InputError
from stanet_rt.fileio import write_text

HEADER = "Category&VideoID&Quality&StartTime&EndTime"
ANNOTATIONS = "Annotations.txt"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
VIDEO_DIRS = ("AVE", "videos")  # the real set, the synthetic set
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
PROBE_CACHE = "ave_probe.json"


@dataclass(frozen=True)
class AnnotationRow:
    """One row: an event of ``category`` in ``video_id`` from ``start`` to ``end`` seconds."""

    category: str
    video_id: str
    quality: str
    start: float
    end: float

    def line(self) -> str:
        return "&".join([self.category, self.video_id, self.quality, _num(self.start), _num(self.end)])


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def read_annotations(path: str | Path) -> list[AnnotationRow]:
    """Rows of an AVE annotation / split file (the header line is optional; blank lines are skipped).

    Raises InputError naming the file and line for a missing file or a malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: annotation file not found")
    rows: list[AnnotationRow] = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = raw.strip()
        if not line or line.replace(" ", "") == HEADER:
            continue
        parts = line.split("&")
        if len(parts) != 5:
            raise InputError(f"{path}:{lineno}: expected {HEADER!r}, got {line!r}")
        category, video_id, quality, start, end = (p.strip() for p in parts)
        try:
            t0, t1 = float(start), float(end)
        except ValueError:
            raise InputError(f"{path}:{lineno}: start/end times must be numbers, got {line!r}") from None
        if not (0 <= t0 < t1):
            raise InputError(f"{path}:{lineno}: need 0 <= start < end, got {t0} .. {t1}")
        rows.append(AnnotationRow(category, video_id, quality, t0, t1))
    return rows


def write_annotations(path: str | Path, rows: Iterable[AnnotationRow]) -> Path:
    """Write ``rows`` with the header line, atomically."""
    return write_text(path, "\n".join([HEADER, *(r.line() for r in rows)]) + "\n")


def read_class_index(root: str | Path) -> ClassIndex:
    """All categories of ``<root>/Annotations.txt``, sorted."""
    return ClassIndex.from_names(r.category for r in read_annotations(Path(root) / ANNOTATIONS))


def find_video_dir(root: Path) -> Path:
    for name in VIDEO_DIRS:
        if (root / name).is_dir():
            return root / name
    raise InputError(f"{root}: no video folder (expected one of {', '.join(VIDEO_DIRS)})")


def find_video(video_dir: Path, video_id: str) -> Path:
    for suffix in VIDEO_SUFFIXES:
        candidate = video_dir / f"{video_id}{suffix}"
        if candidate.is_file():
            return candidate
    raise InputError(
        f"{video_dir / (video_id + '.mp4')}: video {video_id!r} listed in the annotations is missing"
    )


def read_ave(
    root: str | Path,
    split: str | None = "train",
    video_dir: str | Path | None = None,
    classes: ClassIndex | None = None,
    cache_dir: str | Path | None = None,
) -> list[VideoRecord]:
    """Records of one split (``"train"``, ``"val"``, ``"test"``; None: every video of Annotations.txt).

    Each video is probed with PyAV for its frame count and fps (``cache_dir``: remembered in
    ``<cache_dir>/ave_probe.json``, keyed by file size and mtime). ``classes`` defaults to the sorted
    categories of ``Annotations.txt``. A video listed but missing -> InputError naming it; a video
    whose rows disagree on the category -> InputError.
    """
    from stanet_rt.audio.io import read_video_info

    root = Path(root)
    classes = classes or read_class_index(root)
    if split is not None and split not in SPLIT_FILES:
        raise InputError(f"split must be one of {', '.join(SPLIT_FILES)} or None, got {split!r}")
    source = root / (SPLIT_FILES[split] if split is not None else ANNOTATIONS)
    rows = read_annotations(source)
    vdir = Path(video_dir) if video_dir is not None else find_video_dir(root)
    probes = _ProbeCache(Path(cache_dir) / PROBE_CACHE if cache_dir is not None else None)
    records: list[VideoRecord] = []
    try:
        for video_id, group in _group(rows, source).items():
            category = group[0].category
            if category not in classes:
                raise InputError(f"{source}: category {category!r} of {video_id} is not in {ANNOTATIONS}")
            path = find_video(vdir, video_id)
            n_frames, fps = probes.get(path, read_video_info)
            segments = tuple((r.start, r.end) for r in group)
            records.append(
                VideoRecord(
                    video_id=video_id,
                    path=path,
                    class_index=classes.index(category),
                    class_name=category,
                    n_frames=n_frames,
                    fps=fps,
                    events=event_labels(segments, n_frames, fps),
                    split=split or "all",
                    segments=segments,
                )
            )
    finally:
        probes.save()
    return records


def _group(rows: Sequence[AnnotationRow], source: Path) -> dict[str, list[AnnotationRow]]:
    """Rows by video id, in first-seen order; all rows of a video must share its category."""
    groups: dict[str, list[AnnotationRow]] = {}
    for row in rows:
        group = groups.setdefault(row.video_id, [])
        if group and group[0].category != row.category:
            raise InputError(
                f"{source}: video {row.video_id} has two categories ({group[0].category!r}, {row.category!r})"
            )
        group.append(row)
    return groups


class _ProbeCache:
    """(n_frames, fps) per video file, optionally persisted as JSON (keyed by name, size, mtime)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, list] = {}
        self.dirty = False
        if path is not None and path.is_file():
            try:
                self.data = json.loads(path.read_text())
            except (OSError, ValueError):
                self.data = {}  # a damaged cache is rebuilt

    def get(self, video: Path, probe) -> tuple[int, float]:
        stat = video.stat()
        key = str(video.resolve())
        hit = self.data.get(key)
        if hit is not None and hit[2:] == [stat.st_size, stat.st_mtime_ns]:
            return int(hit[0]), float(hit[1])
        info = probe(video)
        if info is None:
            raise InputError(f"{video}: no video stream")
        self.data[key] = [info.n_frames, info.fps, stat.st_size, stat.st_mtime_ns]
        self.dirty = True
        return info.n_frames, info.fps

    def save(self) -> None:
        if self.path is not None and self.dirty:
            write_text(self.path, json.dumps(self.data, sort_keys=True))
