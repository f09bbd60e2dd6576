"""``stanet_rt.fileio``: the one atomic write. A file or folder appears under its name complete or not at
all; a failure leaves the earlier content and no temp files; temp names keep the suffix (format sniffing)."""

from __future__ import annotations

import numpy as np
import pytest

from stanet_rt.fileio import atomic_dir, atomic_path, save_npy, write_text


def test_atomic_path_renames_on_success_and_keeps_the_suffix(tmp_path) -> None:
    target = tmp_path / "sub" / "plot.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".plot.") and tmp.suffix == ".png"
        assert not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert sorted(p.name for p in target.parent.iterdir()) == ["plot.png"]


def test_atomic_path_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path) -> None:
    target = write_text(tmp_path / "log.txt", "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]


def test_save_npy_keeps_the_exact_name(tmp_path) -> None:
    path = save_npy(tmp_path / "frames.bin", np.arange(6).reshape(2, 3))
    assert path.name == "frames.bin" and np.load(path).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_atomic_dir_replaces_a_folder_only_when_complete(tmp_path) -> None:
    out = tmp_path / "maps"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in out.iterdir()) == ["a"]  # the earlier folder, untouched
    with atomic_dir(out) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c"]
    assert [p.name for p in tmp_path.iterdir()] == ["maps"]  # no .tmp / .old siblings left
