"""Helpers of the original-parity tests: the fixture folder, and the authors' files rebuilt from it.

The fixture folder (``../shared/reference/original-parity`` from the repo root, or
``$STANET_ORIGINAL_PARITY``, e.g. the held-out set) holds the original's key layout (``*.keys.json``),
the weight rule (``fill_rule.py``), the gzipped zero-weight AudioSwitch pickle, inputs and outputs. From
them these helpers write what the authors ship: ``DataParallel`` state dicts (``module.`` keys, saved
with ``torch.save``), the whole-module pickle ``27001.pt`` (the zero pickle's archive with the fill-rule
values in its storage records) and ``vggsound_netvlad.pth.tar`` (``{'model_state_dict': ...}``).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
PARITY = Path(os.environ.get("STANET_ORIGINAL_PARITY") or REPO.parent / "shared" / "reference" / "original-parity")
ZERO_PICKLE = PARITY / "audioswitch_pickled_zeros.pt.gz"


def parity_missing_reason() -> str | None:
    """Why the parity tests cannot run here (None when the folder is there)."""
    if not (PARITY / "fill_rule.py").is_file():
        return f"original-parity fixtures not found at {PARITY} (set STANET_ORIGINAL_PARITY)"
    return None


def fill_rule() -> ModuleType:
    spec = importlib.util.spec_from_file_location("parity_fill_rule", PARITY / "fill_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keys_of(model: str) -> dict:
    return json.loads((PARITY / f"{model}.keys.json").read_text())


def filled_state(model: str) -> OrderedDict[str, np.ndarray]:
    """The bare model's state dict (numpy, bare keys) filled by the fixture's rule; its CRC is checked
    against the header, so a wrong fill fails here and not as a parity mismatch."""
    info = keys_of(model)
    state = OrderedDict((r["key"], np.zeros(r["shape"], dtype=r["dtype"])) for r in info["keys"])
    fill_rule().fill(state)
    crc = 0
    for key in sorted(state):
        crc = zlib.crc32(np.ascontiguousarray(state[key]).tobytes(), crc)
    assert f"{crc:08x}" == info["state_dict_crc32_after_fill"], f"{model}: fill CRC {crc:08x}"
    return state


def write_state_dict(model: str, path: Path) -> Path:
    """``torch.save`` of the filled state dict under the original checkpoint's key names."""
    info = keys_of(model)
    state = filled_state(model)
    torch.save(OrderedDict((r["checkpoint_key"], torch.from_numpy(state[r["key"]])) for r in info["keys"]), path)
    return path


def write_switch_pickle(path: Path) -> Path:
    """The AudioSwitch whole-module pickle with the fill-rule weights: the zero pickle's archive, each
    storage record replaced by its tensor's filled bytes."""
    from stanet_rt.original.pickle_reader import read_weight_file

    zeros = read_weight_file(ZERO_PICKLE)
    state = filled_state("audioswitch")
    record_of = {zeros.storage_of[k]: k for k in zeros.state_dict}
    with zipfile.ZipFile(io.BytesIO(gzip.decompress(ZERO_PICKLE.read_bytes()))) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for item in src.infolist():
            data = src.read(item)
            record = item.filename.split("/data/", 1)[1] if "/data/" in item.filename else None
            if record in record_of:
                key = record_of[record]
                data = state[key].astype(zeros.state_dict[key].numpy().dtype).tobytes()
            out.writestr(item, data)
    return path


def write_vggsound(path: Path) -> Path:
    info = keys_of("audionet")
    state = filled_state("audionet")
    torch.save({"model_state_dict": OrderedDict((r["checkpoint_key"], torch.from_numpy(state[r["key"]]))
                                                for r in info["keys"]), "epoch": 1}, path)
    return path


def arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(PARITY / name) as data:
        return {k: data[k] for k in data.files}
