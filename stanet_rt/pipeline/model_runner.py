"""Streaming a student: per-frame encoder, a feature ring buffer, the windowed head, STANet+ fusion.

:class:`StreamingStudent` takes frames in order (batched), preprocesses them (``stanet_rt.preprocess``,
the definition training and export parity use), runs the audio front end and the encoder once per frame,
keeps the features of the frames its window still needs, and emits the map of frame ``i`` as soon as
frame ``i + lookahead`` is encoded (edge padding: offsets before the first frame use the first frame's
features, offsets past the last frame, at :meth:`flush`, use the last's). :class:`Fuser` combines
several students: sigmoid, min-max per model, pixel-wise max, min-max (the original FinalFusion), at one
map size.

Everything here is numpy and goes through ``Engine.run`` (host arrays), so an ONNX Runtime or TensorRT
model runs without torch; the torch backend converts inside its engine (torch imported there, lazily).

Imports numpy and ``stanet_rt.preprocess``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from stanet_rt.preprocess import preprocess, resize


def normalise(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] per map over the last two dims (a constant map becomes zeros)."""
    lo = x.min(axis=(-2, -1), keepdims=True)
    hi = x.max(axis=(-2, -1), keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32, copy=False)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float32, without overflow warnings for large negative logits."""
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32, copy=False)


class StreamingStudent:
    """One student behind engines (``engines.StudentEngines``) in streaming order."""

    def __init__(self, bundle: Any, timings: dict[str, list[float]] | None = None) -> None:
        self.bundle = bundle
        self.config = bundle.config
        self.offsets = self.config.window_offsets
        self.lookahead = self.config.lookahead
        size = self.config.input_size
        self.size = (size, size)
        self.features: dict[int, dict[str, np.ndarray]] = {}
        self.next_out = 0
        self.last_in = -1
        self.timings = timings if timings is not None else defaultdict(list)

    def _timed(self, stage: str, fn, *args):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        out = fn(*args)
        self.timings[stage].append((time.perf_counter() - t0) * 1000.0)
        return out

    @property
    def pending(self) -> int:
        """Frames pushed whose map has not been emitted yet (the look-ahead in flight)."""
        return self.last_in + 1 - self.next_out

    def push(self, images: np.ndarray, windows: np.ndarray | None,
             audio_on: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Encode N new frames (N, H, W, 3) uint8; ``windows`` (N, window_samples) float32 or None;
        ``audio_on`` (N,) {0, 1}. Returns the (frame index, logits (1, 1, h, w) float32) pairs that
        became ready."""
        frames = self._timed("preprocess", preprocess, images, self.config)
        n = frames.shape[0]
        inputs = {"frames": frames}
        if self.bundle.audio is not None:
            samples = self.config.audio.window_samples
            wave = np.zeros((n, samples), np.float32) if windows is None else np.asarray(windows, np.float32)
            emb = self._timed("audio", self.bundle.audio.run, {"waveform": wave})
            inputs["audio_embedding"] = emb["audio_embedding"]
            inputs["audio_on"] = np.asarray(audio_on, np.float32).reshape(n, 1)
        feats = self._timed("encoder", self.bundle.encoder.run, inputs)
        for i in range(n):
            self.last_in += 1
            self.features[self.last_in] = {k: v[i] for k, v in feats.items()}
        return self._ready(final=False)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """Emit the remaining frames (end of stream) with edge padding."""
        return self._ready(final=True)

    def _ready(self, final: bool) -> list[tuple[int, np.ndarray]]:
        ready = []
        while self.next_out <= self.last_in and (final or self.next_out + self.lookahead <= self.last_in):
            ready.append(self.next_out)
            self.next_out += 1
        if not ready:
            return []
        keys = list(self.features[ready[0]])
        window = {k: np.stack([np.stack([self.features[min(max(i + o, 0), self.last_in)][k] for o in self.offsets])
                               for i in ready]) for k in keys}
        logits = self._timed("head", self.bundle.head.run, window)["logits"]
        keep_from = self.next_out + min(self.offsets)
        for i in [i for i in self.features if i < keep_from and i < self.last_in]:
            del self.features[i]
        return [(i, logits[j : j + 1]) for j, i in enumerate(ready)]


# How several students' maps become one: "max" is the original's FinalFusion.m (N(pixel-wise max of N(map_i)));
# "mean" (ours) averages them instead. With "max" any one student's response on a silent look-alike stays in the
# fused map; on the synth-hard test split (issue 15) "mean" scored higher on both CC (0.760 vs 0.722) and the
# share of the sounding object (0.668 vs 0.637) from the same STA and STA+.
FUSIONS = ("max", "mean")


def check_fusion(fusion: str) -> str:
    """``fusion`` if it is one of :data:`FUSIONS`; ValueError otherwise."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    return fusion


def combine_maps(maps: list[np.ndarray], fusion: str = "max") -> np.ndarray:
    """Maps (N, H, W) or a list of N (H, W) -> their pixel-wise max or mean (H, W), not normalised."""
    stack = np.stack(maps)
    return stack.max(axis=0) if check_fusion(fusion) == "max" else stack.mean(axis=0)


def fuse_maps(maps: list[np.ndarray], fusion: str = "max") -> np.ndarray:
    """Normalised maps (N, H, W) or a list of N (H, W) -> N(max or mean over N), (H, W) float32 in [0, 1]."""
    return normalise(combine_maps(maps, fusion))


class Fuser:
    """STANet+ fusion (:func:`fuse_maps`, ``fusion`` "max" as the paper or "mean") of several students'
    logits into one map (H, W) float32 in [0, 1] at ``size``.

    Logits of another size are resized bilinearly first (antialiased when shrinking, as in
    ``stanet_rt.preprocess.resize``)."""

    def __init__(self, n_models: int, size: tuple[int, int], fusion: str = "max") -> None:
        self.n = n_models
        self.size = size
        self.fusion = check_fusion(fusion)
        self.pending: dict[int, list[np.ndarray]] = defaultdict(list)

    def add(self, index: int, logits: np.ndarray) -> np.ndarray | None:
        """Logits (1, 1, h, w) of one model for frame ``index``; the fused map once every model gave its own."""
        x = np.asarray(logits, dtype=np.float32)[0, 0]
        if x.shape != tuple(self.size):
            x = resize(x[None, :, :, None], self.size)[0, :, :, 0]
        self.pending[index].append(normalise(sigmoid(x)))
        if len(self.pending[index]) < self.n:
            return None
        maps = self.pending.pop(index)
        return maps[0] if self.n == 1 else fuse_maps(maps, self.fusion)
