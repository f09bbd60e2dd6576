"""Issue 14.4 (engines side): running the default model with ONNX Runtime works where ``import torch``
fails: the resolver, artifact reading, ``engines.open_student`` and the ORT backend import no torch."""

from __future__ import annotations

import subprocess
import sys

from stanet_rt.pipeline.clips import make_clip

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=300)


def test_the_hook_really_blocks_torch() -> None:
    res = _run("import torch\n")
    assert res.returncode != 0 and "torch is blocked" in res.stderr


def test_default_model_runs_without_torch(tmp_path) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0, fps=10)
    code = ("from stanet_rt.cli import main\n"
            f"sys.argv = ['stanet-rt', 'run', {str(clip)!r}, '--backend', 'onnxruntime', "
            f"'--maps', {str(tmp_path / 'm.h5')!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "from stanet_rt.resolve import open_model, resolve_model\n"
            "from stanet_rt.models.default import ASSETS\n"
            "for given in (None, 'default', str(ASSETS / 'default.encoder.onnx'), str(ASSETS / 'default')):\n"
            "    assert open_model(given, device='cpu').backend == 'onnxruntime', given\n"
            "print('OK', 'torch' in sys.modules)\n")
    res = _run(code)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "OK False"
    assert (tmp_path / "m.h5").stat().st_size > 0
