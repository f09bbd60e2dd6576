"""Export (ONNX graphs, FP16, parity, sidecars, TensorRT logic) and engines (open, auto fallback,
providers, students through every backend). TensorRT / CUDA paths are marked and skipped without a GPU."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
import torch
from _export_helpers import copy_export, exported
from stanet_rt.engines.ort_backend import fallback_note, requested_providers
from stanet_rt.export.fp16 import initializer_dtypes
from stanet_rt.export.tensorrt_build import PrecisionMismatch, verify_precision
from typer.testing import CliRunner

from stanet_rt import engines
from stanet_rt.artifacts import Sidecar, engine_path, mismatch_reason, read_metadata, sha256_of
from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.cli import app
from stanet_rt.config import get_config
from stanet_rt.errors import InputError
from stanet_rt.models.factory import build_model


@pytest.fixture(scope="module")
def sta_export():
    """The shared tiny STA export of this test process (FP32 + FP16 graphs, ``_export_helpers``) as
    (folder, model, report, checkpoint). Read-only: tests that add files work on a copy."""
    exp = exported("tiny_sta")
    return exp.folder, exp.model, exp.report, exp.checkpoint


def test_export_writes_checked_graphs_with_metadata(sta_export) -> None:
    out, model, report, _ = sta_export
    names = sorted(p.name for p in report.files)
    assert names == sorted(f"tiny_sta.{part}{sfx}.onnx" for part in ("audio", "encoder", "head")
                           for sfx in ("", ".fp16"))
    for path in report.files:
        onnx.checker.check_model(str(path), full_check=True)
        meta = read_metadata(path)
        assert json.loads(meta["stanet_rt.config"])["name"] == "tiny_sta"
        assert meta["stanet_rt.part"] in path.name
    inputs = [i.name for i in onnx.load(str(out / "tiny_sta.encoder.onnx")).graph.input]
    assert inputs == ["frames", "audio_embedding", "audio_on"]


def test_parity_thresholds_met_on_random_and_real_inputs(sta_export) -> None:
    _, _, report, _ = sta_export
    assert report.passed
    assert {r.inputs for r in report.parity} == {"random", "real"}
    head32 = [r for r in report.parity if r.part == "head" and r.precision == "fp32"]
    head16 = [r for r in report.parity if r.part == "head" and r.precision == "fp16"]
    assert all(r.cc is not None and r.cc >= 0.9999 for r in head32)
    assert all(r.cc is not None and r.cc >= 0.999 for r in head16)
    assert max(r.max_abs_err for r in head16) > max(r.max_abs_err for r in head32)  # really ran in half


def test_fp16_graph_types(sta_export) -> None:
    out = sta_export[0]
    enc16 = onnx.load(str(out / "tiny_sta.encoder.fp16.onnx"))
    counts = initializer_dtypes(enc16)
    assert counts.get(onnx.TensorProto.FLOAT16, 0) > 0
    for value in list(enc16.graph.input) + list(enc16.graph.output):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # FP32 I/O
    audio16 = onnx.load(str(out / "tiny_sta.audio.fp16.onnx"))  # the STFT island stays FP32 ...
    inits = {i.name: i.data_type for i in audio16.graph.initializer}
    dft = next(n for n in audio16.graph.node if n.op_type == "Conv")  # the first Conv: the DFT
    assert inits[dft.input[1]] == onnx.TensorProto.FLOAT
    assert initializer_dtypes(audio16).get(onnx.TensorProto.FLOAT16, 0) > 0  # ... the audio net is FP16


def test_dynamic_batch_and_engine_interface(sta_export) -> None:
    out, model, _, _ = sta_export
    enc = engines.open(out / "tiny_sta.encoder.onnx", device="cpu")
    assert enc.info.backend == "onnxruntime" and enc.info.providers[0] == "CPUExecutionProvider"
    assert enc.input_names == ["frames", "audio_embedding", "audio_on"]
    for batch in (1, 3):
        frames = np.random.default_rng(batch).standard_normal((batch, 3, 64, 64)).astype(np.float32)
        emb = np.zeros((batch, model.audio_embedding_dim), np.float32)
        res = enc.run({"frames": frames, "audio_embedding": emb, "audio_on": np.zeros((batch, 1), np.float32)})
        with torch.no_grad():
            ref = model.encode(torch.from_numpy(frames), None)
        for key in ref:
            np.testing.assert_allclose(res[key], ref[key].numpy(), atol=1e-4)
    torch_out = enc.run_torch({"frames": torch.zeros(2, 3, 64, 64),
                               "audio_embedding": torch.zeros(2, model.audio_embedding_dim),
                               "audio_on": torch.ones(2, 1)})
    assert isinstance(torch_out["x"], torch.Tensor) and torch_out["x"].shape[0] == 2


def _run_student(bundle, frames: np.ndarray, wave: np.ndarray) -> np.ndarray:
    emb = bundle.audio.run({"waveform": wave})["audio_embedding"]
    t = len(bundle.config.window_offsets)
    feats = [bundle.encoder.run({"frames": frames[i:i + 1], "audio_embedding": emb[i:i + 1],
                                 "audio_on": np.ones((1, 1), np.float32)}) for i in range(t)]
    window = {k: np.stack([f[k][0] for f in feats])[None] for k in feats[0]}
    return bundle.head.run(window)["logits"]


def test_open_student_backends_agree(sta_export) -> None:
    out, _, _, ckpt = sta_export
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
    wave = (0.3 * rng.standard_normal((3, 8000))).astype(np.float32)
    via_ort = engines.open_student(out, device="cpu")
    via_torch = engines.open_student(ckpt, device="cpu")
    assert via_ort.backend == "onnxruntime" and via_torch.backend == "torch"
    assert via_ort.config == via_torch.config
    np.testing.assert_allclose(_run_student(via_ort, frames, wave), _run_student(via_torch, frames, wave),
                               atol=1e-4)


def test_clear_errors(tmp_path, sta_export) -> None:
    out = sta_export[0]
    with pytest.raises(InputError, match="missing.onnx: file not found"):
        engines.open(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="bad.onnx: not a loadable ONNX model"):
        engines.open(bad)
    with pytest.raises(InputError, match="unknown model file type"):
        engines.open(sta_export[3])
    teacher = save_checkpoint(tmp_path / "teacher.pt", build_model(get_config("tiny_s")))
    with pytest.raises(InputError, match="not a student"):
        engines.open_student(teacher)
    with pytest.raises(InputError, match="unknown backend"):
        engines.open(out / "tiny_sta.head.onnx", backend="magic")


def test_engine_without_matching_gpu_falls_back_to_onnx(tmp_path, caplog) -> None:
    out = copy_export(exported("tiny_sta"), tmp_path)
    fake = engine_path(out, "tiny_sta", "head", "NVIDIA H100", "11.4.0", "fp32")
    fake.write_bytes(b"not really an engine")
    Sidecar(sha256_of(out / "tiny_sta.head.onnx"), "tiny_sta.head.onnx", "11.4.0", "NVIDIA H100", "9.0", "fp32",
            "head", {}).write(fake)
    with caplog.at_level(logging.WARNING, logger="stanet_rt.engines"):
        eng = engines.open(fake)
    assert eng.info.backend == "onnxruntime" and "fallback" in eng.info.notes[0]
    assert any("using tiny_sta.head.onnx through ONNX Runtime" in r.message for r in caplog.records)
    with pytest.raises(InputError, match="cannot run this engine here"):
        engines.open(fake, backend="tensorrt")


def test_sidecar_matching_and_precision_rules() -> None:
    side = Sidecar("abc", "m.head.onnx", "11.4.0", "NVIDIA H100", "9.0", "fp16", "head", {})
    assert mismatch_reason(side, "NVIDIA H100", "9.0", "11.4.0", "abc") is None
    assert "TensorRT 11.4.0" in mismatch_reason(side, "NVIDIA H100", "9.0", "10.15.0")
    assert "compute 9.0" in mismatch_reason(side, "NVIDIA A100", "8.0", "11.4.0")
    assert "changed" in mismatch_reason(side, "NVIDIA H100", "9.0", "11.4.0", "zzz")
    assert mismatch_reason(side, None, None, "11.4.0") == "no CUDA GPU is present"
    verify_precision([("frames", "FLOAT", True), ("logits", "FLOAT", False)], "fp16", internal_half_layers=12)
    with pytest.raises(PrecisionMismatch, match="no FP16 layers"):
        verify_precision([("logits", "FLOAT", False)], "fp16", internal_half_layers=0)
    with pytest.raises(PrecisionMismatch, match="expected FP32 I/O"):
        verify_precision([("logits", "HALF", False)], "fp16", internal_half_layers=3)


def test_provider_choice_and_fallback_detection() -> None:
    avail = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert requested_providers("auto", avail) == avail
    assert requested_providers("cpu", avail) == ["CPUExecutionProvider"]
    assert requested_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    note = fallback_note(avail, ["CPUExecutionProvider"])
    assert note and "fell back from TensorrtExecutionProvider to CPUExecutionProvider" in note
    assert fallback_note(["CPUExecutionProvider"], ["CPUExecutionProvider"]) is None


def test_other_students_export(tmp_path) -> None:
    from stanet_rt.export.api import build_engines

    from stanet_rt.models.parts import part_specs

    for name in ("tiny_sta_plus", "tiny_lite"):
        exp = exported(name)
        assert exp.report.passed, [r for r in exp.report.parity if not r.passed]
        built, message = build_engines(exp.report.files, tmp_path / name, name, part_specs(exp.model))
        assert built or "TensorRT engines skipped" in message
        bundle = engines.open_student(exp.folder, device="cpu")
        assert bundle.config.name == name and bundle.audio is not None


@pytest.mark.parametrize(("name", "activity"), [("tiny_lite", "window"), ("tiny_lite", "profile"),
                                              ("tiny_sta_plus", "profile")])
def test_modulating_sync_gate_student_exports_with_parity(tmp_path, name: str, activity: str) -> None:
    # the light students' synchrony gate (frame-to-frame changes, modulating the map): ONNX FP32 and FP16;
    # "profile": one more per-frame feature (``activity``) between the encoder and the head graphs; STA+ as
    # the light preset has it (its gate fed audio_on, the AudioSwitch inside the encoder graph)
    from _model_helpers import lively
    from stanet_rt.export.api import export_model

    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.config import get_config
    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    base = get_config(name)
    offsets = base.window_offsets if name == "tiny_sta_plus" else tuple(range(-5, 1))
    cfg = base.replace(window_offsets=offsets, sync_gate=True, sync_power=8.0, audio_envelope_bins=4,
                       sync_differences=True, sync_combine="modulate", sync_activity=activity,
                       sync_switch=name != "tiny_sta_plus")
    ckpt = save_checkpoint(tmp_path / "mod.pt", lively(build_model(cfg)).eval())
    report = export_model(ckpt, tmp_path / "out", fp16=True, tensorrt=False, progress=False)
    assert report.passed, [r for r in report.parity if not r.passed]
    head = onnx.load(next(p for p in report.files if p.name.endswith(".head.onnx")))
    assert ("activity" in {i.name for i in head.graph.input}) == (activity == "profile")


def test_cli_export_check_only_and_errors(sta_export, tmp_path) -> None:
    out, _, _, ckpt = sta_export
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(ckpt), "--out", str(out), "--check-only", "--no-trt"])
    assert res.exit_code == 0, res.output
    assert "parity" in res.output and "NO" not in res.output
    res = runner.invoke(app, ["export", str(ckpt), "--out", str(tmp_path / "empty"), "--check-only"])
    assert res.exit_code != 0


@pytest.mark.gpu
@pytest.mark.ort_cuda
def test_onnxruntime_cuda_provider_attached(sta_export) -> None:
    eng = engines.open(sta_export[0] / "tiny_sta.encoder.onnx", device="cuda")
    assert eng.info.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider"), eng.info.notes


@pytest.mark.trt
def test_tensorrt_build_and_run(sta_export, tmp_path) -> None:
    from stanet_rt.export.api import build_engines

    from stanet_rt.models.parts import part_specs

    _, model, report, _ = sta_export
    out = copy_export(exported("tiny_sta"), tmp_path)  # the engines go beside their graphs, not into the cache
    built, _ = build_engines([out / p.name for p in report.files if ".fp16." in p.name], out, "tiny_sta",
                             part_specs(model))
    eng = engines.open(built[-1])
    assert eng.info.backend == "tensorrt" and eng.info.precision == "fp16"
