"""Issue 13, user faults of ``stanet-rt run`` and the commands that write files: an output equal to the
input (also through symlinks, relative paths and hard links), output-path mistakes (a file where a
folder is expected, an existing folder as a file output, a name > 255 bytes, an unwritable place, two
outputs on one path), ``--device cuda`` without a GPU, a file and a camera at once. Each is one line on
stderr, exit code 2, nothing processed and the input untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stanet_rt.config import get_config
from stanet_rt.devices import cuda_device_count, resolve_device
from stanet_rt.errors import InputError
from stanet_rt.outputs import check_outputs
from stanet_rt.pipeline.clips import make_clip


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    import torch

    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.models.factory import build_model

    d = tmp_path_factory.mktemp("faults")
    torch.manual_seed(0)
    lite = save_checkpoint(d / "lite.pt", build_model(get_config("tiny_lite")))
    return {"dir": d, "lite": lite, "clip": make_clip(d / "clip.mp4", seconds=1.0, fps=10)}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stanet_rt.cli", *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd)


def _one_error_line(res: subprocess.CompletedProcess, pattern: str) -> str:
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], res.stderr[-2000:]
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_output_equal_to_the_input_is_refused_and_the_input_kept(assets, tmp_path) -> None:
    clip = tmp_path / "x.mp4"
    clip.write_bytes(assets["clip"].read_bytes())
    before = _digest(clip)
    (tmp_path / "sub").mkdir()
    os.symlink(clip, tmp_path / "link.mp4")
    os.link(clip, tmp_path / "hard.mp4")
    lite = str(assets["lite"])
    for option, path in (("-o", "x.mp4"), ("--maps", "./sub/../x.mp4"), ("--stats", str(clip)),
                         ("-o", "link.mp4"), ("--maps", "hard.mp4")):
        res = _cli("run", "x.mp4", "-m", lite, option, path, cwd=tmp_path)
        _one_error_line(res, f"{option} is the input x.mp4")
        assert _digest(clip) == before
    # the model is an input too
    _one_error_line(_cli("run", "x.mp4", "-m", lite, "--stats", lite, cwd=tmp_path), "--stats is the input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "link.mp4", "sub", "x.mp4"]


def test_output_path_mistakes_are_one_line_before_any_work(assets, tmp_path) -> None:
    clip, lite = str(assets["clip"]), str(assets["lite"])
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    (tmp_path / "folder").mkdir()
    long_name = "a" * 300 + ".mp4"
    cases = [(["-o", str(a_file / "out.mp4")], "notes.txt is a file, not a folder"),
             (["--stats", str(a_file / "deeper" / "s.json")], "notes.txt is a file, not a folder"),
             (["-o", str(tmp_path / "folder")], "-o: is a folder"),
             (["--maps", str(tmp_path / "folder")], "--maps: is a folder"),
             (["-o", str(tmp_path / long_name)], "304 bytes long (the limit is 255)"),
             (["-o", "/proc/stanet-out.mp4"], "cannot write in /proc"),
             (["--stats", "/proc/stanet-dir/s.json"], "cannot write in /proc"),
             (["-o", str(tmp_path / "same.mp4"), "--maps", str(tmp_path / "same.mp4")], "both -o and --maps")]
    for extra, pattern in cases:
        _one_error_line(_cli("run", clip, "-m", lite, *extra), pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]  # nothing written
    assert not any((tmp_path / "folder").iterdir())


def test_check_outputs_library_cases(tmp_path, monkeypatch) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(b"media")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="is the input"):
        check_outputs([src], files={"-o": Path("in.mp4")})
    with pytest.raises(InputError, match="both --maps and --stats"):
        check_outputs([src], files={"--maps": "m.h5", "--stats": tmp_path / "m.h5"})
    with pytest.raises(InputError, match="is a file; give a folder"):
        check_outputs([], folders={"--out": src})
    with pytest.raises(InputError, match="in.mp4 is a file, not a folder"):
        check_outputs([], folders={"--out": src / "results"})
    # fine: new files in new folders, an existing file to overwrite, lavfi / None inputs, a new folder
    check_outputs(["lavfi:testsrc2", None, src], files={"-o": tmp_path / "new" / "deep" / "o.mp4", "--maps": None,
                                                       "--stats": src.with_name("old.json")},
                  folders={"--out": tmp_path / "results"})
    check_outputs([src], files={"--maps": os.devnull, "--stats": os.devnull})  # a device takes several outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # the probe files are gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only (0555) folder; the /proc case "
                                              "in test_output_path_mistakes_are_one_line_before_any_work covers it")
def test_a_read_only_folder_is_refused(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="cannot write in"):
            check_outputs([], files={"-o": ro / "o.mp4"})
    finally:
        ro.chmod(0o755)


def test_a_file_and_a_camera_at_once_are_refused(assets) -> None:
    res = _cli("run", str(assets["clip"]), "--camera", "lavfi:testsrc2=size=96x64:rate=10", "-m", str(assets["lite"]))
    _one_error_line(res, "not both")
    _one_error_line(_cli("run", "-m", str(assets["lite"])), "give a SOURCE file or --camera")


@pytest.mark.skipif(cuda_device_count() > 0, reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_one_line_and_auto_falls_back_once(assets, tmp_path) -> None:
    _one_error_line(_cli("run", str(assets["clip"]), "-m", str(assets["lite"]), "--device", "cuda"),
                    "--device cuda: no CUDA GPU found")
    _one_error_line(_cli("run", str(assets["clip"]), "-m", str(assets["lite"]), "--device", "tpu"),
                    "--device 'tpu': expected one of")
    res = _cli("run", str(assets["clip"]), "-m", str(assets["lite"]), "--device", "auto",
               "--maps", str(tmp_path / "m.h5"))
    assert res.returncode == 0, res.stderr[-2000:]
    said = res.stdout + res.stderr
    assert said.count("no CUDA GPU found") == 1 and "device auto: no CUDA GPU found, ran on the CPU" in res.stdout
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") == "cpu"
    assert "--device cuda: no CUDA GPU found" in _refused("audio-features", str(assets["clip"]), "-o",
                                                          str(tmp_path / "f.h5"), "--device", "cuda")
    assert "--device cuda:1: no CUDA GPU found" in _refused("bench", "pipeline", "--device", "cuda:1", "--out",
                                                            str(tmp_path / "b"))
    assert not (tmp_path / "f.h5").exists() and not (tmp_path / "b").exists()


def _refused(*args: str) -> str:
    """The one-line refusal of a command run in-process (``main`` prints it and exits 2)."""
    from typer.testing import CliRunner

    from stanet_rt.cli import app

    res = CliRunner().invoke(app, list(args))
    if isinstance(res.exception, InputError):
        return str(res.exception)
    assert res.exit_code == 2, res.output
    return res.output.strip()


def test_other_writing_commands_check_their_outputs_up_front(assets, tmp_path) -> None:
    clip = str(assets["clip"])
    _one_error_line(_cli("audio-features", clip, "-o", clip), "-o is the input")  # end to end: one line, rc 2
    assert "is a file, not a folder" in _refused("audio-features", clip, "-o", str(assets["lite"] / "f.h5"))
    assert "--out: is a file; give a folder" in _refused("export", str(assets["lite"]), "--out", clip, "--no-trt")
    assert "--out: is a file; give a folder" in _refused("evaluate", "--data", str(tmp_path), "--dataset", "DIEM",
                                                          "--baseline", "centre", "--out", clip)
    assert "--out: is a file; give a folder" in _refused("bench", "metrics", "--out", clip)
    assert "not both" in _refused("bench", "pipeline", "--out", str(tmp_path), "--update-results")
    assert "--out: is a file; give a folder" in _refused("demo", "--out", clip)
    assert not any(tmp_path.iterdir())


def test_bench_writes_benchmarks_out_by_default_and_says_each_step(tmp_path) -> None:
    from stanet_rt.benchmarks.common import RESULTS_DIR

    from stanet_rt.cli.bench import result_dir

    committed = sorted(RESULTS_DIR.iterdir())
    res = _cli("bench", "metrics", "--width", "16", "--height", "16", "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(RESULTS_DIR.iterdir()) == committed  # the source tree is left alone
    assert {p.suffix for p in (tmp_path / "benchmarks_out").iterdir()} >= {".json", ".md"}
    steps = [line for line in res.stderr.splitlines() if line.startswith("bench metrics: ")]
    assert "bench metrics: CC" in steps and len(steps) == 9  # one line per timed case on a pipe
    assert result_dir(None, True) == RESULTS_DIR  # --update-results (not run here: it would rewrite them)


@pytest.mark.slow
def test_export_says_each_graph_on_a_pipe(assets, tmp_path) -> None:
    res = _cli("export", str(assets["lite"]), "--out", str(tmp_path / "exp"), "--no-trt")
    assert res.returncode == 0, res.stderr[-2000:]
    steps = [line for line in res.stderr.splitlines() if line.startswith("export [")]
    assert steps and steps[0].startswith("export [1/") and steps[-1].endswith(".head.onnx"), res.stderr


def test_steps_print_a_line_per_step_when_not_a_terminal() -> None:
    import io

    from stanet_rt.progress import Steps

    pipe = io.StringIO()  # isatty() is False, as for `stanet-rt export ... 2>&1 | tee log`
    with Steps("export", total=2, stream=pipe) as steps:
        for name in ("m.audio.onnx", "m.head.onnx"):
            steps.start(name)
            steps.advance()
    assert pipe.getvalue().splitlines() == ["export [1/2]: m.audio.onnx", "export [2/2]: m.head.onnx"]
    quiet = io.StringIO()
    with Steps("export", total=1, enabled=False, stream=quiet) as steps:
        steps.start("x")
    assert quiet.getvalue() == ""


def test_python_api_refuses_an_output_on_its_input(tmp_path) -> None:
    """stanet_rt.pipeline.api.run (and stream) check outputs as the CLI does: the input is never overwritten."""
    from stanet_rt.errors import InputError
    from stanet_rt.pipeline.api import RunOptions, run

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"precious bytes")
    with pytest.raises(InputError, match="clip.mp4"):
        run(clip, options=RunOptions(overlay=tmp_path / "." / "clip.mp4"), log=None)
    assert clip.read_bytes() == b"precious bytes"


@pytest.mark.skipif(cuda_device_count() > 0, reason="checks the refusal on a machine without a GPU")
def test_train_device_cuda_without_a_gpu_is_one_line(tmp_path) -> None:
    res = _cli("train", "scam-coarse", "--preset", "synth-tiny", "--out", str(tmp_path / "run"), "--device", "cuda")
    _one_error_line(res, "cuda")
    assert not (tmp_path / "run").exists()  # refused before the run folder or any data was made
