"""The STAViS test-set layout (the evaluation sets AVAD, DIEM, SumMe, ETMD, Coutrot; our synthetic set):

    <root>/video_frames/<DB>/<video>/img_%05d.jpg          frames, 1-based, sorted numerically
    <root>/video_audio/<DB>/<video>/<video>.wav            the audio track
    <root>/audio_feature/<DB>/<video>/img_%05d_asp.h5      or the original's per-frame spectrograms
    <root>/fold_lists/<DB>_list_test_<split>_fps.txt       ``video n_frames fps`` per line

Ground truth (``annotations/``) is read by ``stanet_rt.eval``, not here: these records are inputs.
Test sets carry no category tag (``class_index`` -1) and no event segments (``events`` all True).

Imports ``stanet_rt.eval.datasets`` (fold lists), ``stanet_rt.errors`` and ``training.data.{records,
frames}``; must not import torch or anything above.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stanet_rt.training.data.frames import sorted_frames
from stanet_rt.training.data.records import VideoRecord

from stanet_rt.errors import InputError
from stanet_rt.eval.datasets import fold_list_path, read_fold_list


def frames_dir(root: Path, dataset: str, video: str) -> Path:
    return Path(root) / "video_frames" / dataset / video


def audio_file(root: Path, dataset: str, video: str) -> Path:
    return Path(root) / "video_audio" / dataset / video / f"{video}.wav"


def features_dir(root: Path, dataset: str, video: str) -> Path:
    return Path(root) / "audio_feature" / dataset / video


def read_stavis(
    root: str | Path, dataset: str, split: int | None = 1, fps: float | None = None
) -> list[VideoRecord]:
    """Records of the videos of ``dataset`` in fold ``split`` (None: every folder under
    ``video_frames/<dataset>``, which then needs ``fps``).

    The frame count is the number of frame images on disk; a fold list whose count differs is
    reported (InputError), as is a listed video without a frames folder. Audio: the wav if present,
    else the ``audio_feature`` folder if present, else none (audio-free).
    """
    root = Path(root)
    if split is not None:
        entries = [(e.name, e.n_frames, e.fps) for e in read_fold_list(fold_list_path(root, dataset, split))]
    else:
        base = root / "video_frames" / dataset
        if not base.is_dir():
            raise InputError(f"{base}: frames folder of {dataset} not found")
        if fps is None or not fps > 0:
            raise InputError(f"{base}: without a fold list the frame rate must be given (fps > 0)")
        entries = [(p.name, None, fps) for p in sorted(base.iterdir()) if p.is_dir()]
    records = []
    for name, listed, rate in entries:
        folder = frames_dir(root, dataset, name)
        n_frames = len(sorted_frames(folder))
        if listed is not None and listed != n_frames:
            raise InputError(f"{folder}: the fold list says {listed} frames, the folder has {n_frames}")
        rate = fps or rate
        if not rate or rate <= 0:
            raise InputError(f"{folder}: unknown frame rate (fold list has none; pass fps)")
        wav = audio_file(root, dataset, name)
        feats = features_dir(root, dataset, name)
        records.append(
            VideoRecord(
                video_id=name,
                path=folder,
                class_index=-1,
                class_name="",
                n_frames=n_frames,
                fps=float(rate),
                events=np.ones(n_frames, dtype=bool),
                split=dataset if split is None else f"{dataset}:{split}",
                audio_path=wav if wav.is_file() else None,
                audio_features=feats if not wav.is_file() and feats.is_dir() else None,
            )
        )
    return records
