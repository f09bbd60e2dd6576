"""Weights hashes (issue 13 item 6): recorded at save / export, verified at load; a flipped byte in a
weight is one line naming the file and exit code 2; artifacts without a hash still load."""

from __future__ import annotations

import shutil
import subprocess
import sys

import onnx
import pytest
import torch
from _export_helpers import copy_export, exported

from stanet_rt import engines
from stanet_rt.artifacts import META_WEIGHTS_SHA256, read_metadata
from stanet_rt.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from stanet_rt.errors import WeightsError


def _flip_inside(path, needle: bytes) -> None:
    """Flip one byte in the middle of ``needle``'s first occurrence in the file."""
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0
    data[at + len(needle) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _largest_tensor_bytes(state: dict) -> bytes:
    t = max(state.values(), key=lambda v: v.numel())
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()[:256]


def test_a_flipped_byte_in_a_checkpoint_tensor_is_caught(tmp_path) -> None:
    exp = exported("tiny_lite")
    path = tmp_path / "m.pt"
    shutil.copy2(exp.checkpoint, path)
    assert read_checkpoint(path)["weights_sha256"]
    load_checkpoint(path)  # intact: loads
    _flip_inside(path, _largest_tensor_bytes(exp.model.state_dict()))
    with pytest.raises(WeightsError, match=r"m\.pt: the weights do not match"):
        load_checkpoint(path)
    run = subprocess.run([sys.executable, "-m", "stanet_rt.cli", "info", str(path)], capture_output=True, text=True)
    assert run.returncode == 0  # info reads the config only (no weights)
    run = subprocess.run([sys.executable, "-m", "stanet_rt.cli", "export", str(path), "--out", str(tmp_path / "e")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "m.pt: the weights do not match" in run.stderr


def test_a_checkpoint_without_a_hash_still_loads(tmp_path) -> None:
    exp = exported("tiny_lite")
    payload = read_checkpoint(exp.checkpoint)
    del payload["weights_sha256"]
    torch.save(payload, tmp_path / "old.pt")
    model, _, _ = load_checkpoint(tmp_path / "old.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), exp.model.state_dict().values(),
                                                 strict=True))
    save_checkpoint(tmp_path / "new.pt", model)
    assert read_checkpoint(tmp_path / "new.pt")["weights_sha256"]


def test_a_flipped_byte_in_an_onnx_initializer_is_caught(tmp_path) -> None:
    exp = exported("tiny_lite")
    folder = copy_export(exp, tmp_path / "e")
    head = folder / exp.path("head").name
    assert len(read_metadata(head)[META_WEIGHTS_SHA256]) == 64
    engines.open_student(folder, device="cpu")  # intact: opens
    init = max(onnx.load(str(head)).graph.initializer, key=lambda i: len(i.raw_data))
    _flip_inside(head, init.raw_data[:256])
    with pytest.raises(WeightsError, match=r"tiny_lite\.head\.onnx: the weights do not match"):
        engines.open_student(folder, device="cpu")
    clip = tmp_path / "none.mp4"  # the model is opened (and refused) before the source is read
    clip.write_bytes(b"")
    run = subprocess.run([sys.executable, "-m", "stanet_rt.cli", "run", str(clip), "-m", str(folder),
                          "--maps", str(tmp_path / "m.h5")], capture_output=True, text=True)
    assert run.returncode == 2 and "tiny_lite.head.onnx: the weights do not match" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_an_onnx_without_a_hash_still_opens(tmp_path) -> None:
    exp = exported("tiny_lite")
    folder = copy_export(exp, tmp_path / "e")
    for path in folder.glob("*.onnx"):
        model = onnx.load(str(path))
        kept = [p for p in model.metadata_props if p.key != META_WEIGHTS_SHA256]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        onnx.save(model, str(path))
    assert engines.open_student(folder, device="cpu").config == exp.model.config
