"""Streaming a student: per-frame encoder, a feature ring buffer, the windowed head, STANet+ fusion.

:class:`StreamingStudent` takes frames in order (batched), runs the audio front end and the encoder
once per frame, keeps the features of the frames its window still needs, and emits the map of frame
``i`` as soon as frame ``i + lookahead`` is encoded (edge padding: offsets before the first frame use
the first frame's features, offsets past the last frame, at :meth:`flush`, use the last's).
:class:`Fuser` combines several students: sigmoid, min-max per model, pixel-wise max, min-max (the
original FinalFusion), at one map size. Tensors stay on the device between steps.

Imports numpy, torch and ``engines`` (through the bundle it is given).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] per map over the last two dims (a constant map becomes zeros)."""
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-12)


class StreamingStudent:
    """One student behind engines (``engines.StudentEngines``) in streaming order."""

    def __init__(self, bundle: Any, device: str = "cpu", timings: dict[str, list[float]] | None = None) -> None:
        self.bundle = bundle
        self.config = bundle.config
        self.device = torch.device(device)
        self.offsets = self.config.window_offsets
        self.lookahead = self.config.lookahead
        size = self.config.input_size
        self.size = (size, size)
        self.mean = torch.tensor(self.config.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(self.config.std, device=self.device).view(1, 3, 1, 1)
        self.features: dict[int, dict[str, torch.Tensor]] = {}
        self.next_out = 0
        self.last_in = -1
        self.timings = timings if timings is not None else defaultdict(list)

    def _timed(self, stage: str, fn, *args):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        out = fn(*args)
        self.timings[stage].append((time.perf_counter() - t0) * 1000.0)
        return out

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, 3, S, S) normalised float32 on the device (square resize).

        On the CPU the antialiased resize runs on the uint8 frames (channels-last: torch's vectorised
        uint8 path, ~4x faster than resizing floats; within 1/255 of it), then converts the small image."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2)
        if self.device.type == "cpu":
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True).float() / 255.0
        else:
            x = F.interpolate(x.float() / 255.0, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    def push(
        self, images: np.ndarray, windows: np.ndarray | None, audio_on: np.ndarray
    ) -> list[tuple[int, torch.Tensor]]:
        """Encode N new frames; ``windows`` (N, 8000) float32 or None; ``audio_on`` (N,) {0, 1}.
        Returns the (frame index, logits (1, 1, S, S)) pairs that became ready."""
        frames = self._timed("preprocess", self.preprocess, images)
        n = frames.shape[0]
        inputs = {"frames": frames}
        if self.bundle.audio is not None:
            wave = torch.zeros(n, self.config.audio.window_samples) if windows is None else torch.from_numpy(windows)
            emb = self._timed("audio", self.bundle.audio.run_torch, {"waveform": wave.to(self.device)})
            inputs["audio_embedding"] = emb["audio_embedding"]
            inputs["audio_on"] = torch.from_numpy(audio_on.astype(np.float32)).view(n, 1).to(self.device)
        feats = self._timed("encoder", self.bundle.encoder.run_torch, inputs)
        for i in range(n):
            self.last_in += 1
            self.features[self.last_in] = {k: v[i] for k, v in feats.items()}
        return self._ready(final=False)

    def flush(self) -> list[tuple[int, torch.Tensor]]:
        """Emit the remaining frames (end of stream) with edge padding."""
        return self._ready(final=True)

    def _ready(self, final: bool) -> list[tuple[int, torch.Tensor]]:
        ready = []
        while self.next_out <= self.last_in and (final or self.next_out + self.lookahead <= self.last_in):
            ready.append(self.next_out)
            self.next_out += 1
        if not ready:
            return []
        keys = list(self.features[ready[0]])
        window = {k: torch.stack([torch.stack([self.features[min(max(i + o, 0), self.last_in)][k]
                                               for o in self.offsets]) for i in ready]) for k in keys}
        logits = self._timed("head", self.bundle.head.run_torch, window)["logits"]
        keep_from = self.next_out + min(self.offsets)
        for i in [i for i in self.features if i < keep_from and i < self.last_in]:
            del self.features[i]
        return [(i, logits[j : j + 1]) for j, i in enumerate(ready)]


class Fuser:
    """STANet+ fusion of several students' logits into one map (H, W) in [0, 1] at ``size``."""

    def __init__(self, n_models: int, size: tuple[int, int]) -> None:
        self.n = n_models
        self.size = size
        self.pending: dict[int, list[torch.Tensor]] = defaultdict(list)

    def add(self, index: int, logits: torch.Tensor) -> torch.Tensor | None:
        m = normalise(torch.sigmoid(F.interpolate(logits, size=self.size, mode="bilinear", align_corners=False)))
        self.pending[index].append(m)
        if len(self.pending[index]) < self.n:
            return None
        maps = self.pending.pop(index)
        fused = maps[0] if self.n == 1 else normalise(torch.stack(maps).amax(dim=0))
        return fused[0, 0]
