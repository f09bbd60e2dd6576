"""The default model(s): what ``stanet-rt run`` / ``export`` / ``info`` use when no model is named.

Looked up in the user's data folder first (where ``stanet-rt train ... --install-default`` installs,
:func:`user_data_dir`), then in the checkpoints shipped in ``stanet_rt/assets/`` (rebuilt with
``make default-model``). The package folder is never written at run time. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

from stanet_rt.errors import InputError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_NAMES = ("default.pt", "default_plus.pt")


def user_data_dir() -> Path:
    """``$STANET_RT_HOME``, else ``$XDG_DATA_HOME/stanet-rt``, else ``~/.local/share/stanet-rt``."""
    if os.environ.get("STANET_RT_HOME"):
        return Path(os.environ["STANET_RT_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "stanet-rt"


def user_models_dir() -> Path:
    """Where installed default models live: ``<user data dir>/models``."""
    return user_data_dir() / "models"


def default_model_paths() -> list[Path]:
    """The default checkpoints (the STA-class one first): the user's installed ones if any, else the
    shipped ones; a clear error if there are none."""
    for folder in (user_models_dir(), ASSETS):
        paths = [folder / n for n in DEFAULT_NAMES if (folder / n).is_file()]
        if paths:
            return paths
    raise InputError(f"{ASSETS}: no default model is shipped; pass --model or run `make default-model`")
