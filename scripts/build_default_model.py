"""Build the interim default model shipped as ``stanet_rt/assets/default.pt``.

What it is, plainly: a ``demo_lite`` student (causal stanet_lite, 128 px) trained for a few hundred
steps WITH SUPERVISION on generated scenes whose sounding object's location is known (a disc pulsing
with a tone, a same-looking silent distractor, textured background). It is NOT the weakly supervised
STANet pipeline (teachers from category tags -> pseudo-GT -> students); that pipeline's ``synth-lite``
student is meant to replace this file. It exists so that ``stanet-rt run`` / ``demo`` work out of the
box with a model that does something visible.

Run: ``python scripts/build_default_model.py [--steps N] [--out PATH]`` (``make default-model``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stanet_rt.audio.spectrogram import log_spectrogram
from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model

SR, WIN = 16000, 8000


def scene_batch(rng: np.random.Generator, batch: int, size: int, offsets: tuple[int, ...], fps: float = 10.0):
    """Frames (B, T, 3, S, S) normalised, audio windows (B, T, 8000), target (B, 1, S, S) for offset 0."""
    t_len = len(offsets)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = np.zeros((batch, t_len, size, size, 3), np.float32)
    waves = np.zeros((batch, t_len, WIN), np.float32)
    targets = np.zeros((batch, 1, size, size), np.float32)
    for b in range(batch):
        bg = rng.random((size, size, 3)).astype(np.float32) * 0.3 + 0.1
        colour = rng.random(3).astype(np.float32) * 0.6 + 0.4
        src, dis = rng.uniform(0.2, 0.8, 2) * size, rng.uniform(0.2, 0.8, 2) * size
        vel = rng.uniform(-2, 2, 2)
        freq, rate, phase = rng.uniform(200, 900), rng.uniform(0.8, 2.5), rng.uniform(0, 2 * np.pi)
        t0 = rng.uniform(1.0, 5.0)
        for k, off in enumerate(offsets):
            t = t0 + off / fps
            env = 0.5 + 0.5 * np.sin(2 * np.pi * rate * t + phase)
            cx, cy = src + vel * off
            img = bg.copy()
            r_src = size * (0.06 + 0.06 * env)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < r_src**2] = colour
            img[(xx - dis[0]) ** 2 + (yy - dis[1]) ** 2 < (size * 0.09) ** 2] = colour
            frames[b, k] = img
            ts = t - WIN / SR + np.arange(WIN) / SR  # the 0.5 s ending at the frame
            waves[b, k] = 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * rate * ts + phase)) * np.sin(2 * np.pi * freq * ts)
            if off == 0:
                sigma = size * 0.08
                targets[b, 0] = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    frames = (frames - mean) / std
    return (torch.from_numpy(frames).permute(0, 1, 4, 2, 3).contiguous(), torch.from_numpy(waves),
            torch.from_numpy(targets))


def saliency_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE with logits + KL per sample (the students' loss, normalised per sample, not per batch)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    p = p / p.sum(1, keepdim=True)
    q = target.flatten(1) / target.flatten(1).sum(1, keepdim=True)
    kl = (q * torch.log(2.2e-16 + q / (p + 2.2e-16))).sum(1).mean()
    return bce + kl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("stanet_rt/assets/default.pt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = get_config("demo_lite")
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    start = time.time()
    for step in range(1, args.steps + 1):
        frames, waves, target = scene_batch(rng, args.batch, cfg.input_size, cfg.window_offsets)
        spec = log_spectrogram(waves.flatten(0, 1)).unflatten(0, waves.shape[:2])
        maps = model.forward_train(frames, spec)
        loss = saliency_loss(maps[:, 0], target) + saliency_loss(maps[:, 1], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    frames, waves, target = scene_batch(np.random.default_rng(12345), 32, cfg.input_size, cfg.window_offsets)
    with torch.no_grad():
        spec = log_spectrogram(waves.flatten(0, 1)).unflatten(0, waves.shape[:2])
        pred = torch.sigmoid(model(frames, spec)).flatten(1)
    t = target.flatten(1)
    cc = torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(pred, t, strict=True)]).mean()
    print(f"held-out generated scenes: mean CC {cc.item():.3f}")
    save_checkpoint(args.out, model, {"kind": "interim supervised demo model", "steps": args.steps,
                                      "heldout_cc": round(cc.item(), 4)})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
