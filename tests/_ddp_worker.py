"""Worker of tests/test_ddp.py, started by ``torchrun --nproc_per_node=2``: trains a tiny S teacher with
the shared engine (gloo on CPU) and writes this rank's final weights and the samples it saw."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from stanet_rt.training.ddp import init_distributed, shutdown
from stanet_rt.training.engine import StepOutput, TrainSettings, train
from stanet_rt.training.losses import teacher_loss
from torch.utils.data import Dataset

from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model


class Frames(Dataset):
    def __init__(self, n: int = 12, size: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.frames = torch.randn(n, 1, 3, size, size, generator=g)
        self.labels = torch.arange(n) % 4
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.seen.append(i)
        return {"frames": self.frames[i], "label": torch.nn.functional.one_hot(self.labels[i], 4).float()}


def step(model, batch):
    return StepOutput(teacher_loss(model, model(batch["frames"]), batch["label"]))


def main(out: Path) -> None:
    info = init_distributed(device="cpu")
    torch.manual_seed(100 + info.rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = build_model(get_config("tiny_s").replace(input_size=32))
    ds = Frames()
    settings = TrainSettings(epochs=2, batch_size=2, lr=1e-2, seed=3)
    train(model, ds, step, settings, out / "run", name="s", info=info, progress=False, log=None)
    result = {"state": model.state_dict(), "seen": ds.seen, "world": info.world_size, "backend": info.backend}
    torch.save(result, out / f"rank{info.rank}.pt")
    shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
