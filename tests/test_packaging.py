"""Packaging: the top folders training/, export/, engines/, benchmarks/ install as sub-packages of stanet_rt
(nothing generic at the top of site-packages), and no package folder is left out of pyproject's list."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"training", "export", "engines", "benchmarks"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_folders() -> dict[str, Path]:
    """Every folder with an ``__init__.py`` under the installed trees, by its installed dotted name."""
    found = {}
    for top in ["stanet_rt", *sorted(MAPPED)]:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            name = ".".join(rel) if top == "stanet_rt" else ".".join(("stanet_rt", *rel))
            found[name] = init.parent
    return found


def test_every_package_folder_is_listed_and_mapped() -> None:
    setup = _pyproject()["tool"]["setuptools"]
    listed = set(setup["packages"])
    assert listed == set(_package_folders()), "pyproject [tool.setuptools] packages must list every package"
    assert {name.split(".")[0] for name in listed} == {"stanet_rt"}
    assert {setup["package-dir"][f"stanet_rt.{m}"] for m in MAPPED} == MAPPED


@pytest.mark.slow
def test_wheel_installs_nothing_generic_at_the_top(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("stanet_rt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert not tops & MAPPED, f"generic top-level modules in the wheel: {sorted(tops & MAPPED)}"
    assert {t for t in tops if not t.endswith(".dist-info")} == {"stanet_rt"}
    for sub in ("training/stages/students.py", "training/data/synth.py", "export/api.py", "engines/auto.py",
                "benchmarks/common.py", "assets/default.pt"):
        assert f"stanet_rt/{sub}" in names
