"""The artifact contract (``stanet_rt.artifacts``) and the import graph it makes possible: engines read
exports without importing ``stanet_rt.export``; core modules never import training or benchmarks."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch
from _export_helpers import exported, lively_student

from stanet_rt import artifacts, engines
from stanet_rt.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
CORE = ["stanet_rt/config.py", "stanet_rt/audio", "stanet_rt/models", "stanet_rt/weights.py", "stanet_rt/eval",
        "stanet_rt/artifacts.py", "stanet_rt/preprocess.py", "stanet_rt/pipeline", "stanet_rt/checkpoint.py",
        "stanet_rt/resolve.py"]


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved against the package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _files(entries: list[str]) -> list[Path]:
    out = []
    for entry in entries:
        p = ROOT / entry
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.exists() else []
    return out


def _offending(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in files:
        for name in _imports(f):
            if any(name == m or name.startswith(m + ".") for m in forbidden):
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    return bad


@pytest.mark.parametrize("package", ["training", "export", "engines"])
def test_training_export_and_engines_never_import_each_other(package: str) -> None:
    # ARCHITECTURE: they import the core only (the CLI joins them: e.g. stanet_rt/cli/install.py exports
    # the default that training installs)
    files = _files([package])
    assert len(files) >= 5
    others = [p for p in ("training", "export", "engines") if p != package]
    assert _offending(files, tuple(m for p in others for m in (f"stanet_rt.{p}", p))) == []


# Nothing is exempt: the demo (which makes its clip with the training data generator) lives in the CLI
# layer (stanet_rt/cli/demo_job.py), which may import everything.
NOT_CORE: set[str] = set()


def test_core_modules_import_neither_training_nor_benchmarks() -> None:
    files = [f for f in _files(CORE) if str(f.relative_to(ROOT)) not in NOT_CORE]
    assert len(files) >= 20
    forbidden = ("stanet_rt.training", "stanet_rt.benchmarks", "training", "benchmarks")
    assert _offending(files, forbidden) == []


def test_the_import_walker_sees_a_forbidden_import(tmp_path) -> None:
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from stanet_rt.export.api import export_model\n")
    assert _imports(f) >= {"stanet_rt.export.api"}


@pytest.mark.parametrize(("file", "name", "part", "precision"), [
    ("lite.v2.head.onnx", "lite.v2", "head", "fp32"),
    ("lite.v2.audio.fp16.onnx", "lite.v2", "audio", "fp16"),
    ("default.encoder.onnx", "default", "encoder", "fp32"),
])
def test_onnx_names_parse_with_dots_in_the_export_name(file, name, part, precision) -> None:
    assert artifacts.parse_onnx_name(file) == artifacts.ArtifactName(name, part, precision)
    assert artifacts.part_path("d", name, part, precision) == Path("d") / file


def test_engine_names_round_trip() -> None:
    path = artifacts.engine_path("d", "lite.v2", "encoder", "NVIDIA H200", "10.9.0.34", "fp16")
    assert artifacts.parse_engine_name(path) == artifacts.ArtifactName("lite.v2", "encoder", "fp16")
    assert artifacts.onnx_beside(path) == Path("d/lite.v2.encoder.fp16.onnx")
    assert artifacts.export_prefix(path) == Path("d/lite.v2")
    assert artifacts.parse_onnx_name("notes.txt") is None
    with pytest.raises(ValueError, match="not a stanet-rt artifact"):
        artifacts.export_prefix("x.onnx")


def test_metadata_carries_the_schema_version() -> None:
    meta = artifacts.read_metadata(exported("tiny_lite").path("head"))
    assert meta[artifacts.META_SCHEMA] == str(artifacts.SCHEMA_VERSION)
    assert meta[artifacts.META_PART] == "head" and len(meta[artifacts.META_WEIGHTS_SHA256]) == 64


def test_an_export_named_with_dots_opens(tmp_path) -> None:
    """Regression: ``export_model(..., name="lite.v2")`` then ``open_student(folder)`` looked for
    ``lite.head.onnx`` (the prefix was cut at the first dot)."""
    exp = exported("tiny_lite")
    for path in exp.folder.glob("*.onnx"):
        parsed = artifacts.parse_onnx_name(path)
        shutil.copy2(path, artifacts.part_path(tmp_path, "lite.v2", parsed.part, parsed.precision))
    for given in (tmp_path, tmp_path / "lite.v2", tmp_path / "lite.v2.head.onnx", tmp_path / "lite.v2.encoder.onnx"):
        bundle = engines.open_student(given, device="cpu")
        assert bundle.config == exp.model.config and bundle.backend == "onnxruntime", given


def test_fp16_graphs_are_chosen_by_precision(tmp_path) -> None:
    exp = exported("tiny_sta")
    assert engines.open_student(exp.folder, device="cpu", precision="fp16").head.info.precision == "fp16"
    assert engines.open_student(exp.folder, device="cpu").head.info.precision == "fp32"
    lite = exported("tiny_lite")  # exported without FP16 graphs
    with pytest.raises(InputError, match=r"tiny_lite\.head\.fp16\.onnx: not found .*--fp16"):
        engines.open_student(lite.folder, device="cpu", precision="fp16")


def test_torch_engines_leave_the_callers_model_alone() -> None:
    """Regression (H200 run): ``torch_engines(model, "cuda", "fp16")`` halved and moved the caller's module,
    so a second call on the same model failed. The engines now run a copy."""
    from stanet_rt.engines.torch_backend import half_with_fp32_islands, torch_engines

    model = lively_student("tiny_sta")
    before = {k: (v.device, v.dtype) for k, v in model.state_dict().items()}
    first = torch_engines(model, "cpu", "fp32")
    half_with_fp32_islands(first["encoder"].module)  # what the fp16 engine does to its module
    second = torch_engines(model, "cpu", "fp32")
    assert {k: (v.device, v.dtype) for k, v in model.state_dict().items()} == before
    assert first["encoder"].module.model is not model and second["encoder"].module.model is not model
    wave = {"waveform": 0.3 * torch.randn(1, model.config.audio.window_samples)}
    assert second["audio"].run_torch(wave)["audio_embedding"].dtype == torch.float32


def test_part_specs_follow_the_models_dtype() -> None:
    from stanet_rt.models.parts import part_specs

    model = lively_student("tiny_lite", audio=False).half()
    specs = {s.part: s for s in part_specs(model, batch=2)}
    assert specs["encoder"].example[0].dtype == torch.float16
    assert all(x.dtype == torch.float16 for x in specs["head"].example)
