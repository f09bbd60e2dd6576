"""Distributed data parallel plumbing for every trainer: ``torchrun --nproc_per_node=N`` or one process.

* :func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``) and starts the process group: NCCL when CUDA is available, gloo on
  CPU. Without those variables (a plain ``python`` / ``stanet-rt`` run) it returns a world of size 1
  and starts nothing, so the same trainer code runs both ways.
* :func:`wrap_model` wraps in DistributedDataParallel only when the world is larger than 1.
* :func:`make_sampler` is always a :class:`DistributedSampler` with explicit rank / world size (a
  world of 1 gets the same seeded shuffling), so a run's data order depends only on (seed, epoch).
* :func:`barrier`, :func:`all_reduce_sum`, :func:`sync_buffers`: no-ops in a
  world of 1.
* Rank 0 alone logs, writes checkpoints and shows progress (:attr:`DistInfo.is_main`).

Imports torch only; must not import models, data or stages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from stanet_rt.devices import cuda_available


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def init_distributed(device: str | None = None, backend: str | None = None) -> DistInfo:
    """Join the torchrun process group if there is one (idempotent) and pick this process's device.

    ``device``: "cpu", "cuda" or None (CUDA when available). ``backend``: None picks NCCL for CUDA and
    gloo for CPU. Returns :class:`DistInfo`.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    use_cuda = cuda_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank % max(1, torch.cuda.device_count()))
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    if world <= 1:
        return DistInfo(0, 1, 0, dev, None)
    chosen = backend or ("nccl" if use_cuda else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=chosen, rank=rank, world_size=world)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, chosen)


def shutdown() -> None:
    """Leave the process group (safe to call when none was started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` on ``info.device``; wrapped in DistributedDataParallel when the world is > 1."""
    model = model.to(info.device)
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP / DataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def make_sampler(
    dataset: Dataset, info: DistInfo, shuffle: bool = True, seed: int = 0, drop_last: bool = False
) -> DistributedSampler:
    """A seeded :class:`DistributedSampler` for this rank (world of 1 included); call
    ``set_epoch(epoch)`` every epoch so each epoch has its own order."""
    return DistributedSampler(
        dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed, drop_last=drop_last
    )


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a world of 1)."""
    if info.distributed:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over the ranks (a copy; the input is unchanged). World of 1: the tensor itself."""
    if not info.distributed:
        return values
    out = values.detach().clone().to(info.device)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def sync_buffers(model: nn.Module, info: DistInfo, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank. DDP broadcasts them
    before each forward, so after the last step the ranks differ by one batch; the trainers call this at
    the end of every epoch so that all ranks hold the weights rank 0 checkpoints."""
    if not info.distributed:
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf.data, src=src)

