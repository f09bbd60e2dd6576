"""One way to name a model: ``stanet_rt.resolve`` and the commands built on it (info, export, run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _export_helpers import exported
from typer.testing import CliRunner

from stanet_rt.cli import app
from stanet_rt.errors import InputError
from stanet_rt.models.default import ASSETS, default_model_paths
from stanet_rt.resolve import ModelRef, load_config, open_model, resolve_model, resolve_models


def test_nothing_and_default_name_the_default_model() -> None:
    for given in (None, "", "default"):
        ref = resolve_model(given)
        assert ref.kind == "checkpoint" and ref.default and ref.target == default_model_paths()[0]
    assert [r.target for r in resolve_models([])] == default_model_paths()


def test_config_checkpoint_export_and_single_files() -> None:
    exp = exported("tiny_lite")
    assert resolve_model("tiny_lite") == ModelRef("config", "tiny_lite", "tiny_lite")
    assert resolve_model(str(exp.checkpoint)).kind == "checkpoint"
    prefix = exp.folder / "tiny_lite"
    for given in (exp.folder, prefix, exp.path("head"), exp.path("encoder")):
        ref = resolve_model(str(given))
        assert (ref.kind, ref.target) == ("export", prefix), given


def test_a_single_onnx_opens_its_export() -> None:
    """Regression: ``-m file.onnx`` looked for ``file.onnx.head.onnx``."""
    exp = exported("tiny_sta")
    bundle = open_model(str(exp.path("encoder")), device="cpu")
    assert bundle.backend == "onnxruntime" and bundle.config == exp.model.config and bundle.audio is not None


@pytest.mark.parametrize("given", ["nope", "missing.pt", "missing.onnx", "x/y/z"])
def test_bad_names_are_one_line_errors(given) -> None:
    with pytest.raises(InputError) as info:
        resolve_model(given)
    assert "\n" not in str(info.value) and given in str(info.value)


def test_onnxruntime_on_the_default_model_uses_its_shipped_onnx() -> None:
    """Regression: ``--backend onnxruntime`` on the default model said "export it for onnxruntime"."""
    bundle = open_model(None, backend="onnxruntime", device="cpu")
    assert bundle.backend == "onnxruntime"


def test_a_config_name_runs_with_torch() -> None:
    bundle = open_model("tiny_lite", device="cpu")
    assert bundle.backend == "torch"
    with pytest.raises(InputError, match="random weights"):
        open_model("tiny_lite", backend="onnxruntime", device="cpu")


def test_the_users_installed_default_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STANET_RT_HOME", str(tmp_path))
    assert resolve_model("default").target == ASSETS / "default.pt"
    (tmp_path / "models").mkdir()
    shutil.copy2(ASSETS / "default.pt", tmp_path / "models" / "default.pt")
    assert resolve_model(None).target == tmp_path / "models" / "default.pt"


def test_info_takes_every_kind_of_name() -> None:
    runner = CliRunner()
    for args in ([], ["default"], ["tiny_lite"], [str(exported("tiny_lite").folder)]):
        result = runner.invoke(app, ["info", *args, "--json"])
        assert result.exit_code == 0, (args, result.output)
    config, ref = load_config(str(exported("tiny_lite").path("head")))
    assert config == exported("tiny_lite").model.config and ref.kind == "export"


def test_export_without_a_model_exports_the_default(monkeypatch, tmp_path) -> None:
    """``stanet-rt export --fp16`` (no model) and ``export default`` export the default model."""
    import stanet_rt.export.api as api

    seen = []
    monkeypatch.setattr(api, "export_model", lambda model, out, **kw: seen.append((model, kw["fp16"])) or
                        api.ExportReport())
    runner = CliRunner()
    for args in (["--fp16"], ["default"]):
        result = runner.invoke(app, ["export", *args, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
    assert seen == [(None, True), ("default", False)]
    net, source = api.load_student(None)
    assert net.config == load_config(None)[0] and source.startswith("default model, checkpoint")
    assert Path(source.split()[-1]) == default_model_paths()[0]


def test_install_default_goes_to_the_user_folder_not_the_package(tmp_path, monkeypatch) -> None:
    """Issue 14.1: ``train ... --install-default`` installs into ``$STANET_RT_HOME/models`` (never the
    installed package), and ``default`` then resolves to it."""
    from types import SimpleNamespace

    from stanet_rt.training import run_all

    monkeypatch.setenv("STANET_RT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(run_all, "default_sources", lambda ctx: {"default.pt": exported("tiny_lite").checkpoint})
    before = {p.name: p.stat().st_mtime_ns for p in ASSETS.iterdir()}
    logs: list[str] = []
    from stanet_rt.cli.install import install_default_models

    written = install_default_models(SimpleNamespace(log=logs.append, out=tmp_path))
    home = tmp_path / "home" / "models"
    assert written[0] == home / "default.pt" and all(p.parent == home for p in written)
    assert {p.name: p.stat().st_mtime_ns for p in ASSETS.iterdir()} == before
    ref = resolve_model(None)
    assert ref.target == home / "default.pt" and ref.default
    assert open_model(None, device="cpu").backend == "onnxruntime"  # its ONNX was exported beside it
