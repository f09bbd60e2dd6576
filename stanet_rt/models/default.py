"""The default model(s) of ``stanet-rt run`` when no ``--model`` is given: checkpoints shipped in
``stanet_rt/assets/`` (rebuilt with ``make default-model``)."""

from __future__ import annotations

from pathlib import Path

from stanet_rt.errors import InputError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_NAMES = ("default.pt", "default_plus.pt")


def default_model_paths() -> list[Path]:
    """Shipped default checkpoints (the STA-class one first), or a clear error if none is shipped."""
    paths = [ASSETS / n for n in DEFAULT_NAMES if (ASSETS / n).is_file()]
    if not paths:
        raise InputError(f"{ASSETS}: no default model is shipped; pass --model or run `make default-model`")
    return paths
