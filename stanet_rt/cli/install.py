"""``train --install-default``: install a run's students as the runtime's default models, and export a
single default to ONNX beside it (so that ``run`` uses ONNX Runtime by default).

In the CLI layer because it joins two packages that do not import each other: ``training`` (which
files a run has) and ``export`` (ONNX with the parity check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def install_default_models(ctx: Any, assets: Path | None = None) -> list[Path]:
    """:func:`stanet_rt.training.run_all.install_defaults` for the run ``ctx`` (a ``StageContext``) into
    ``assets`` (None: the user's models folder), then, when the distilled ``default.pt`` alone was
    installed, its ONNX graphs beside it. Returns every file written (the checkpoints first)."""
    from stanet_rt.export.api import export_model
    from stanet_rt.training.run_all import install_defaults

    written = install_defaults(ctx, assets)
    if [p.name for p in written] == ["default.pt"]:
        folder = written[0].parent
        export_model(written[0], folder, name="default", tensorrt=False, progress=False)
        written += sorted(folder.glob("default.*.onnx"))
        ctx.log(f"exported {written[0]} to ONNX beside it (parity checked)")
    return written
