"""Issue 14.4 (engines side): running the default model with ONNX Runtime works where ``import torch``
fails: the resolver, artifact reading, ``engines.open_student`` and the ORT backend import no torch."""

from __future__ import annotations

import subprocess
import sys

import av
import pytest

from stanet_rt.pipeline.clips import make_clip

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("torch is blocked in this test", name=name)  # as if not installed
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=300)


def test_the_hook_really_blocks_torch() -> None:
    res = _run("import torch\n")
    assert res.returncode != 0 and "torch is blocked" in res.stderr


def test_default_model_runs_without_torch(tmp_path) -> None:
    """Issue 14.4: ``stanet-rt run`` on the default (ONNX Runtime) model, overlay video and maps, with
    ``import torch`` made to fail."""
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0, fps=10)
    code = ("from stanet_rt.cli import main\n"
            f"sys.argv = ['stanet-rt', 'run', {str(clip)!r}, '--backend', 'onnxruntime', "
            f"'-o', {str(tmp_path / 'o.mp4')!r}, '--maps', {str(tmp_path / 'm.h5')!r}]\n"
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
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 10


def test_a_command_that_needs_torch_names_the_extra(tmp_path) -> None:
    res = _run("from stanet_rt.cli import main\n"
               f"sys.argv = ['stanet-rt', 'export', 'tiny_lite', '--out', {str(tmp_path)!r}]\n"
               "main()\n")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "pip install 'stanet-rt[torch]'" in res.stderr or "pip install 'stanet-rt[train]'" in res.stderr


def test_the_base_install_leaves_torch_to_the_extras() -> None:
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith(("torch", "onnxscript", "onnxconverter")) for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert "torch>=2.4" in extras["torch"] and "stanet-rt[torch]" in extras["train"]
    assert "stanet-rt[train]" in extras["dev"]  # the Makefile's `pip install -e .[dev]` keeps training working
