"""`stanet-rt demo` (the README's main job) with the shipped default model, and the default-model lookup."""

from __future__ import annotations

import json
import re

import av
import h5py
import numpy as np
from PIL import Image

from stanet_rt.checkpoint import load_checkpoint
from stanet_rt.cli.demo_job import run_demo
from stanet_rt.models.default import default_model_paths


def test_default_model_is_shipped_and_causal() -> None:
    paths = default_model_paths()
    model, config, meta = load_checkpoint(paths[0])
    assert config.lookahead == 0 and config.uses_audio
    assert paths[0].stat().st_size < 20e6 and "kind" in meta


def test_demo_writes_every_output(tmp_path) -> None:
    said: list[str] = []
    paths = run_demo(tmp_path / "demo", log=said.append)
    with av.open(str(paths["input"])) as c:
        n_in = sum(1 for _ in c.decode(video=0))
    with av.open(str(paths["overlay"])) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        n_out = sum(1 for _ in c.decode(video=0))
    with h5py.File(paths["maps"]) as fh:
        maps = fh["maps"][:].astype(np.float32)
    assert n_in == n_out == maps.shape[0] == 48  # 6 s at 8 fps
    assert json.loads(paths["stats"].read_text())["frames_out"] == 48
    assert Image.open(paths["contact_sheet"]).size[0] > 0
    # the shipped model localises: each map has a clear peak, not a flat field, and it finds the sounding
    # object (a silent look-alike is in the clip) far better than the centre bias does
    assert float(np.mean(maps.max(axis=(1, 2)) - maps.mean(axis=(1, 2)))) > 0.5
    line = next(m for m in said if m.startswith("CC against the true sound source"))
    cc, centre = (float(v) for v in re.findall(r"-?\d+\.\d+", line))
    assert cc > centre + 0.2, line
