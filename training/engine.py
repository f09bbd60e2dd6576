"""The one training loop every stage uses: epochs, optimiser and lr decay, DDP, progress, per-epoch log,
checkpoint + exact resume, validation hook.

A stage supplies a model, a dataset (``set_epoch`` is called each epoch when present) and a
``step_fn(model, batch) -> StepOutput`` (forward + loss on one batch, batch tensors already on the
device); :func:`train` does the rest:

* optimiser: SGD nesterov momentum 0.9 over the original's four lr groups (``extra`` heads x10, biases
  x2; spec 3.1) or a flat group, or Adam (used by the CPU presets: their backbones start from random
  weights, see ``training.presets``); lr x ``decay_factor`` at every epoch index in ``decay_points``
  (0-based: (5, 10) = the original's ``my_optim.reduce_lr`` at the starts of its epochs 5 and 10);
* data: a seeded :class:`DistributedSampler` (``training.ddp``) for any world size, so the order of an
  epoch depends only on (seed, epoch) and a resumed run sees the same batches;
* log (rank 0): ``<run_dir>/log.jsonl`` and ``log.csv`` with epoch, loss, accuracy, seconds, lr and the
  validation numbers; a progress bar per epoch (``stanet_rt.progress``);
* checkpoint (rank 0) after every epoch: ``<run_dir>/checkpoint.pt`` (``stanet_rt.checkpoint``: config +
  state dict; ``meta`` holds the completed epoch count, optimiser state, RNG states, settings and a
  ``complete`` flag), written atomically. ``resume=True`` continues from it and ends with the same
  weights as an uninterrupted run (a test pins this).

Imports torch, ``stanet_rt.progress``, ``stanet_rt.checkpoint``, ``stanet_rt.models.blocks.param_groups``,
``training.ddp`` and ``stanet_rt.fileio`` (atomic log writes); must not import stages or datasets.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from stanet_rt.training.ddp import (
    DistInfo,
    all_reduce_sum,
    barrier,
    init_distributed,
    make_sampler,
    sync_buffers,
    unwrap,
    wrap_model,
)
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from stanet_rt.checkpoint import read_checkpoint, save_checkpoint
from stanet_rt.errors import InputError
from stanet_rt.progress import ProgressBar

CHECKPOINT = "checkpoint.pt"
LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one trainer run (batch size is per process; lrs are base lrs).

    ``groups``: "extra" = the original's 4 SGD groups (base / base biases x2 / ``extra`` x10 / ``extra``
    biases x20), "flat" = one group at ``lr`` (the AudioSwitch's setting). ``steps_per_epoch`` caps the
    iterations of an epoch (None: the whole sampler). ``freeze``: parameter-name prefixes that are not
    trained (and kept in eval mode), e.g. a loaded AudioSwitch inside STA+. ``optimizer``: "sgd" (the
    original's), "adamw" (Adam with decoupled weight decay: what the light presets use) or "adam" (Adam
    with the decay added to the gradient; beware: Adam normalises that sum, so a parameter whose loss
    gradient is tiny, such as an audio net behind a gate that has not opened yet, shrinks by about
    ``lr`` per step and collapses to zero within a few hundred steps).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 5e-4
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    groups: Literal["extra", "flat"] = "extra"
    momentum: float = 0.9
    nesterov: bool = True
    decay_points: tuple[int, ...] = ()
    decay_factor: float = 0.1
    steps_per_epoch: int | None = None
    grad_clip: float | None = None
    num_workers: int = 0
    seed: int = 0
    freeze: tuple[str, ...] = ()
    audio_dropout: float = 0.0  # students: share of training clips whose audio-visual gate is closed

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"invalid settings: epochs {self.epochs}, batch {self.batch_size}, lr {self.lr}")
        if not 0.0 <= self.audio_dropout < 1.0:
            raise ValueError(f"audio_dropout must be in [0, 1), got {self.audio_dropout}")
        if self.optimizer not in ("sgd", "adam", "adamw") or self.groups not in ("extra", "flat"):
            raise ValueError(f"unknown optimizer {self.optimizer!r} / groups {self.groups!r}")

    def replace(self, **changes: Any) -> TrainSettings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lr_scale(self, epoch: int) -> float:
        """Multiplier of the base lrs during 0-based ``epoch``."""
        return self.decay_factor ** sum(1 for p in self.decay_points if epoch >= p)


@dataclass
class StepOutput:
    """One batch's result: the scalar ``loss`` to back-propagate, and optionally how many of ``count``
    samples were classified correctly (teachers, switch; None for regression stages)."""

    loss: Tensor
    correct: float | None = None
    count: int = 0


@dataclass
class TrainResult:
    """What :func:`train` leaves behind: the checkpoint path, the epoch records, and whether training
    ran in this call (False: the checkpoint was already complete)."""

    checkpoint: Path
    history: list[dict[str, Any]]
    trained: bool


StepFn = Callable[[nn.Module, dict[str, Tensor]], StepOutput]
ValidateFn = Callable[[nn.Module], Mapping[str, float]]


def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """The optimiser of ``settings`` over the trainable parameters of ``model`` (unwrapped)."""
    from stanet_rt.models.blocks import param_groups

    inner = unwrap(model)
    if settings.groups == "extra":
        groups = param_groups(inner, settings.lr, settings.weight_decay)
    else:
        params = [p for p in inner.parameters() if p.requires_grad]
        groups = [
            {
                "params": params,
                "lr": settings.lr,
                "weight_decay": settings.weight_decay,
                "initial_lr": settings.lr,
            }
        ]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.lr)
    if settings.optimizer == "adam":
        return torch.optim.Adam(groups, lr=settings.lr)
    return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, nesterov=settings.nesterov)


def set_lr(optimizer: torch.optim.Optimizer, scale: float) -> float:
    """Set every group's lr to its ``initial_lr`` x ``scale``; returns the first group's lr."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * scale
    return optimizer.param_groups[0]["lr"]


def apply_freeze(model: nn.Module, prefixes: tuple[str, ...]) -> None:
    """Stop gradients to the parameters whose names start with one of ``prefixes``."""
    if not prefixes:
        return
    for name, p in unwrap(model).named_parameters():
        if name.startswith(prefixes):
            p.requires_grad_(False)


def train_mode(model: nn.Module, frozen: tuple[str, ...] = ()) -> None:
    """``model.train()`` with the frozen sub-modules (name prefixes) kept in eval mode (their BN stats)."""
    model.train()
    if not frozen:
        return
    for name, module in unwrap(model).named_modules():
        if name and name.startswith(frozen):
            module.eval()


def rng_state() -> dict[str, Any]:
    """torch / numpy / python RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def read_progress(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``meta`` of ``<run_dir>/checkpoint.pt`` (epoch, complete, ...) or None if there is none."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    return read_checkpoint(path)["meta"]


def is_complete(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint of a finished run."""
    meta = read_progress(run_dir)
    return bool(meta and meta.get("complete"))


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """``batch`` with every tensor moved to ``device`` (other values as they are)."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def _write_logs(run_dir: Path, history: list[dict[str, Any]]) -> None:
    from stanet_rt.fileio import write_text

    write_text(run_dir / LOG_JSONL, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(run_dir / LOG_CSV, buf.getvalue())


def _read_history(run_dir: Path, upto: int) -> list[dict[str, Any]]:
    path = run_dir / LOG_JSONL
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if int(r["epoch"]) <= upto]


def train(
    model: nn.Module,
    dataset: Dataset,
    step_fn: StepFn,
    settings: TrainSettings,
    run_dir: str | Path,
    *,
    name: str = "model",
    resume: bool = False,
    validate: ValidateFn | None = None,
    info: DistInfo | None = None,
    progress: bool = True,
    extra_meta: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = print,
    find_unused_parameters: bool = False,
    stop_after: int | None = None,
    forward_module: nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` for ``settings.epochs`` epochs, checkpointing into ``run_dir``.

    ``resume``: continue from ``run_dir/checkpoint.pt`` if present (a complete one returns at once);
    otherwise a fresh run (an existing checkpoint is replaced at the end of the first epoch).
    ``validate(model) -> {name: value}`` runs on rank 0 after each epoch (model in eval mode, no grad).
    ``stop_after``: end after this many epochs in total without marking the run complete (tests,
    time-boxed runs). ``forward_module``: the module DDP wraps and ``step_fn`` receives, sharing its
    parameters with ``model`` (e.g. a wrapper routing ``forward`` to a student's ``forward_train``);
    checkpoints always hold ``model``. Returns :class:`TrainResult`; the model holds the final weights.
    """
    run_dir = Path(run_dir)
    info = info or init_distributed()
    torch.manual_seed(settings.seed)
    apply_freeze(model, settings.freeze)
    start_epoch, history = 0, []
    ckpt = run_dir / CHECKPOINT
    optimizer_state = None
    if resume and ckpt.is_file():
        payload = read_checkpoint(ckpt)
        meta = payload["meta"]
        if meta.get("name") not in (None, name):
            raise InputError(f"{ckpt}: checkpoint of {meta.get('name')!r}, not {name!r}; use another --out")
        unwrap(model).load_state_dict(payload["state_dict"])
        start_epoch = int(meta.get("epoch", 0))
        history = _read_history(run_dir, start_epoch)
        if meta.get("complete") and start_epoch >= settings.epochs:
            return TrainResult(ckpt, history, trained=False)
        optimizer_state = meta.get("optimizer")
        if meta.get("rng") is not None:
            set_rng_state(meta["rng"])
    net = wrap_model(forward_module if forward_module is not None else model, info, find_unused_parameters)
    model.to(info.device)
    optimizer = build_optimizer(model, settings)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    sampler = make_sampler(dataset, info, shuffle=True, seed=settings.seed)
    per_rank = len(sampler)
    drop_last = per_rank >= 2 * settings.batch_size  # no 1-sample tail batch for BatchNorm
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=settings.num_workers,
        persistent_workers=False,
    )
    end_epoch = settings.epochs if stop_after is None else min(settings.epochs, stop_after)
    for epoch in range(start_epoch, end_epoch):
        lr = set_lr(optimizer, settings.lr_scale(epoch))
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        net.train()
        train_mode(model, settings.freeze)
        started = time.perf_counter()
        totals = torch.zeros(4, dtype=torch.float64)  # loss sum, batches, correct, count
        steps = len(loader)
        if settings.steps_per_epoch is not None:
            steps = min(steps, settings.steps_per_epoch)
        bar = ProgressBar(steps, f"{name} {epoch + 1}/{settings.epochs}", enabled=progress and info.is_main)
        for i, batch in enumerate(loader):
            if i >= steps:
                break
            out = step_fn(net, to_device(batch, info.device))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in net.parameters() if p.requires_grad], settings.grad_clip
                )
            optimizer.step()
            totals[0] += float(out.loss.detach())
            totals[1] += 1
            if out.correct is not None:
                totals[2] += float(out.correct)
                totals[3] += out.count
            bar.advance(status=f"loss={totals[0] / totals[1]:.4f}")
        bar.close()
        totals = all_reduce_sum(totals, info)
        sync_buffers(net, info)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": round(float(totals[0] / max(1.0, float(totals[1]))), 6),
            "accuracy": round(float(totals[2] / totals[3]), 6) if totals[3] > 0 else None,
            "seconds": round(time.perf_counter() - started, 3),
            "lr": lr,
            "steps": int(totals[1]),
        }
        if validate is not None and info.is_main:
            net.eval()
            with torch.no_grad():
                record.update({f"val_{k}": round(float(v), 6) for k, v in validate(unwrap(net)).items()})
        history.append(record)
        if info.is_main:
            meta = {
                "name": name,
                "epoch": epoch + 1,
                "epochs": settings.epochs,
                "complete": epoch + 1 >= settings.epochs,
                "optimizer": optimizer.state_dict(),
                "rng": rng_state(),
                "settings": settings.to_dict(),
                **(extra_meta or {}),
            }
            save_checkpoint(ckpt, model, meta)
            _write_logs(run_dir, history)
            if log is not None:
                acc = "" if record["accuracy"] is None else f" acc {record['accuracy']:.3f}"
                val = "".join(f" {k} {v:.4f}" for k, v in record.items() if k.startswith("val_"))
                log(
                    f"{name} epoch {epoch + 1}/{settings.epochs} loss {record['loss']:.4f}{acc}{val} "
                    f"({record['seconds']:.1f} s, lr {lr:.2e})"
                )
        barrier(info)
    return TrainResult(ckpt, history, trained=True)
