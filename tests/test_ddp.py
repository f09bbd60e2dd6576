"""DDP through torchrun (training.ddp + training.engine): two CPU processes with gloo end with identical
weights, each having trained on its own shard of the data; a world of 1 needs no process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from stanet_rt.training.ddp import DistInfo, init_distributed, make_sampler, wrap_model


def test_world_of_one_without_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed(device="cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    model = torch.nn.Linear(2, 2)
    assert wrap_model(model, info) is model
    sampler = make_sampler(list(range(10)), info, seed=1)
    sampler.set_epoch(0)
    assert sorted(sampler) == list(range(10))
    shards = [set(make_sampler(list(range(10)), DistInfo(r, 2), seed=1)) for r in (0, 1)]
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 10


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    root = Path(__file__).resolve().parents[1]
    path = f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(root / "tests" / "_ddp_worker.py"),
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:  # never leave the workers behind
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2 and r0["backend"] == "gloo"
    first0, first1 = set(r0["seen"][:6]), set(r1["seen"][:6])  # epoch 0: 6 samples per rank
    assert first0.isdisjoint(first1) and len(first0 | first1) == 12
    init = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["meta"]
    assert init["epoch"] == 2 and init["complete"]
    for k, v in r0["state"].items():
        torch.testing.assert_close(v, r1["state"][k], rtol=0, atol=0, msg=k)
    # training moved the weights away from both ranks' different initialisations
    torch.manual_seed(100)
    from stanet_rt.config import get_config
    from stanet_rt.models.factory import build_model

    start = build_model(get_config("tiny_s").replace(input_size=32)).state_dict()
    assert any(not torch.equal(start[k], r0["state"][k]) for k in start if "extra" in k)
