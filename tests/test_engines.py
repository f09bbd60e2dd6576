"""The ``engines`` package on CPU: ``engines.open`` on ONNX / engine / checkpoint paths (specs, info,
numpy and torch-tensor paths), ``open_student`` over an export folder, a ``<name>`` prefix and a
checkpoint (the torch backend keeps the ONNX I/O names, STFT included, and agrees with ONNX Runtime),
the ``auto`` rule (TensorRT only when the sidecar matches this GPU / TensorRT / ONNX, else the ONNX
beside it with a one-line warning), ONNX Runtime provider choice and silent-fallback detection, and
one-line errors for missing files, corrupt files, the wrong kind of model, a graph of the wrong part or of
another model, and a missing audio graph; device None means auto; a CUDA device asked of an onnxruntime
without a GPU provider is reported; the torch backend's half precision keeps the STFT / NetVLAD islands
in FP32 (checked on CPU through the same helper). CUDA tests are marked."""

from __future__ import annotations

import json
import logging
import re
import shutil

import numpy as np
import onnx
import pytest
import stanet_rt.engines.auto as auto
import stanet_rt.engines.trt_backend as trt_backend
import torch
from _export_helpers import copy_export, exported, lively_student, torch_outputs
from onnx import TensorProto, helper
from stanet_rt.engines.base import EngineInfo
from stanet_rt.engines.ort_backend import OrtEngine, fallback_note, requested_providers

from stanet_rt import engines
from stanet_rt.artifacts import Sidecar, engine_path, sha256_of
from stanet_rt.checkpoint import save_checkpoint
from stanet_rt.config import get_config
from stanet_rt.errors import InputError
from stanet_rt.models.factory import build_model
from stanet_rt.models.parts import part_specs

H100 = ("NVIDIA H100 80GB HBM3", "9.0", "11.4.0")  # (GPU name, compute capability, TensorRT version)


def fake_engine(folder, name: str, part: str, precision: str = "fp32", machine=H100,
                onnx_sha: str | None = None):
    """An engine file (not a real plan) with the sidecar a build on ``machine`` would write."""
    gpu, cc, trt = machine
    path = engine_path(folder, name, part, gpu, trt, precision)
    path.write_bytes(b"not a serialized TensorRT plan")
    onnx_file = folder / f"{name}.{part}{'' if precision == 'fp32' else '.' + precision}.onnx"
    Sidecar(onnx_sha or sha256_of(onnx_file), onnx_file.name, trt, gpu, cc, precision, part,
            {"frames": {"min": [1, 3, 64, 64], "opt": [4, 3, 64, 64], "max": [8, 3, 64, 64]}}).write(path)
    return path


def random_feed(engine, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s.name: rng.standard_normal((batch, *s.shape[1:])).astype(np.float32) for s in engine.inputs}


def run_chain(bundle, frames: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """Audio -> encoder per frame -> head over every complete window, through a StudentEngines bundle."""
    n = len(frames)
    enc = {"frames": frames}
    if bundle.audio is not None:
        enc["audio_embedding"] = bundle.audio.run({"waveform": wave})["audio_embedding"]
        enc["audio_on"] = np.ones((n, 1), np.float32)
    feats = bundle.encoder.run(enc)
    t = len(bundle.config.window_offsets)
    window = {k: np.stack([v[i:i + t] for i in range(n - t + 1)]) for k, v in feats.items()}
    return bundle.head.run(window)["logits"]


# -- one graph through ONNX Runtime ----------------------------------------------------------------------
def test_onnx_engine_specs_info_and_both_run_paths() -> None:
    exp = exported("tiny_sta")
    enc = engines.open(exp.path("encoder"), device="cpu")
    info = enc.info
    assert (info.backend, info.precision, info.device, info.part) == ("onnxruntime", "fp32", "cpu", "encoder")
    assert info.providers == ["CPUExecutionProvider"] and info.notes == []
    keys = list(exp.model.feature_shapes(64, 64))
    assert enc.input_names == ["frames", "audio_embedding", "audio_on"] and enc.output_names == keys
    assert isinstance(enc.inputs[0].shape[0], str) and tuple(enc.inputs[0].shape[1:]) == (3, 64, 64)

    feed = random_feed(enc, 2)
    feed["audio_on"] = np.array([[1.0], [0.0]], np.float32)
    out = enc.run(feed)
    ref = torch_outputs(part_specs(exp.model)[1].module, [feed[n] for n in enc.input_names])
    assert list(out) == keys
    for key, r in zip(keys, ref, strict=True):
        assert out[key].dtype == np.float32
        np.testing.assert_allclose(out[key], r, atol=1e-4)

    tout = enc.run_torch({k: torch.from_numpy(v) for k, v in feed.items()})
    assert list(tout) == keys
    for key in keys:
        assert isinstance(tout[key], torch.Tensor) and tout[key].device.type == "cpu"
        np.testing.assert_allclose(tout[key].numpy(), out[key], atol=1e-6)


def test_fp16_graph_engine_reports_fp16() -> None:
    head = engines.open(exported("tiny_sta").path("head", "fp16"), device="cpu")
    assert head.info.precision == "fp16" and head.info.part == "head"
    assert head.run(random_feed(head, 1))["logits"].dtype == np.float32  # FP32 I/O


# -- students: folder, prefix, checkpoint --------------------------------------------------------------
def test_open_student_over_folder_prefix_and_checkpoint_agree() -> None:
    exp = exported("tiny_sta")
    bundles = {
        "folder": engines.open_student(exp.folder, device="cpu"),
        "prefix": engines.open_student(exp.folder / "tiny_sta", device="cpu"),
        "checkpoint": engines.open_student(exp.checkpoint, device="cpu"),
    }
    for bundle in bundles.values():
        assert bundle.config == exp.model.config and bundle.audio is not None
    assert bundles["folder"].backend == bundles["prefix"].backend == "onnxruntime"
    torch_bundle = bundles["checkpoint"]
    assert torch_bundle.backend == "torch" and torch_bundle.encoder.info.device == "cpu"
    for part in ("audio", "encoder", "head"):  # the torch backend keeps the ONNX I/O names
        a, b = getattr(bundles["folder"], part), getattr(torch_bundle, part)
        assert (a.input_names, a.output_names) == (b.input_names, b.output_names), part
        assert a.info.precision == "fp32" and b.info.part == part

    rng = np.random.default_rng(0)
    frames = rng.standard_normal((4, 3, 64, 64)).astype(np.float32)
    wave = np.clip(0.3 * rng.standard_normal((4, 8000)), -1, 1).astype(np.float32)
    maps = {k: run_chain(b, frames, wave) for k, b in bundles.items()}
    assert maps["folder"].shape == (2, 1, 64, 64) and maps["folder"].std() > 0
    np.testing.assert_allclose(maps["folder"], maps["prefix"], atol=0)
    np.testing.assert_allclose(maps["folder"], maps["checkpoint"], atol=1e-4)

    audio = torch_bundle.audio  # the torch audio part takes the waveform: the STFT is inside it
    emb = audio.run_torch({"waveform": torch.from_numpy(wave)})["audio_embedding"]
    assert isinstance(emb, torch.Tensor) and tuple(emb.shape) == (4, exp.model.audio_embedding_dim)


def test_open_refuses_a_checkpoint_and_points_to_open_student() -> None:
    with pytest.raises(InputError, match="open_student"):
        engines.open(exported("tiny_sta").checkpoint)


def test_open_student_checkpoint_with_default_device_none() -> None:
    bundle = engines.open_student(exported("tiny_sta").checkpoint, device=None)
    assert bundle.backend == "torch"


# -- the auto rule -------------------------------------------------------------------------------------
@pytest.mark.parametrize("machine,onnx_changed,reason", [
    ((None, None, None), False, "TensorRT is not installed"),
    (("NVIDIA A100-SXM4-40GB", "8.0", "11.4.0"), False, "this GPU is NVIDIA A100-SXM4-40GB (compute 8.0)"),
    ((H100[0], "9.0", "10.13.0.35"), False, "built with TensorRT 11.4.0, this machine has 10.13"),
    (H100, True, "the ONNX beside it changed"),
])
def test_engine_that_does_not_match_falls_back_to_the_onnx_with_one_warning(
        tmp_path, monkeypatch, caplog, machine, onnx_changed, reason) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    path = fake_engine(folder, "tiny_sta", "head", onnx_sha="0" * 64 if onnx_changed else None)
    monkeypatch.setattr(auto, "_gpu_and_trt", lambda: machine)
    with caplog.at_level(logging.WARNING, logger="stanet_rt.engines"):
        eng = engines.open(path, device="cpu")
    assert eng.info.backend == "onnxruntime" and eng.info.part == "head"
    assert len(eng.info.notes) == 1 and reason in eng.info.notes[0] and path.name in eng.info.notes[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert path.name in warnings[0] and reason in warnings[0] and "tiny_sta.head.onnx" in warnings[0]
    assert eng.run(random_feed(eng, 2))["logits"].shape == (2, 1, 64, 64)
    with pytest.raises(InputError, match=f"cannot run this engine here: .*{re.escape(reason)}"):
        engines.open(path, backend="tensorrt")


def test_engine_with_missing_or_corrupt_sidecar_falls_back(tmp_path, caplog) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    path = fake_engine(folder, "tiny_sta", "encoder")
    sidecar = folder / (path.name + ".json")
    sidecar.write_text("{ not json")
    with caplog.at_level(logging.WARNING, logger="stanet_rt.engines"):
        eng = engines.open(path, device="cpu")
    assert eng.info.backend == "onnxruntime" and "sidecar" in eng.info.notes[0]
    sidecar.unlink()
    assert "sidecar" in engines.open(path, device="cpu").info.notes[0]


class _StubTensorRT:
    """Stands in for engines.trt_backend.TensorRTEngine (which needs a GPU) to observe auto's choice."""

    def __init__(self, path, cuda_graph: bool = False) -> None:
        self.path = path
        sidecar = json.loads(path.with_name(path.name + ".json").read_text())
        self.info = EngineInfo("tensorrt", sidecar["precision"], "cuda", sidecar["part"])


def test_auto_chooses_tensorrt_only_when_the_sidecar_matches(tmp_path, monkeypatch) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    paths = {part: fake_engine(folder, "tiny_sta", part) for part in ("audio", "encoder", "head")}
    monkeypatch.setattr(auto, "_gpu_and_trt", lambda: H100)
    monkeypatch.setattr(trt_backend, "TensorRTEngine", _StubTensorRT)
    eng = engines.open(paths["head"])
    assert isinstance(eng, _StubTensorRT) and eng.path == paths["head"]
    bundle = engines.open_student(folder / "tiny_sta")
    assert bundle.backend == "tensorrt" and bundle.config == exported("tiny_sta").model.config
    assert [getattr(bundle, p).path for p in ("audio", "encoder", "head")] == list(paths.values())
    only_onnx = engines.open_student(folder / "tiny_sta", backend="onnxruntime", device="cpu")
    assert only_onnx.backend == "onnxruntime"


# -- errors --------------------------------------------------------------------------------------------
def _foreign_onnx(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


ERRORS = {
    "missing onnx": (lambda d: engines.open(d / "missing.onnx"), "missing.onnx: file not found"),
    "corrupt onnx": (lambda d: engines.open(_bytes(d / "bad.onnx")), "bad.onnx: not a loadable ONNX model"),
    "corrupt engine, no onnx": (lambda d: engines.open(_bytes(d / "m.head.fp32.gpu.trt11.engine")),
                                r"m.head.fp32.gpu.trt11.engine: cannot run this engine here .*"
                                r"m.head.onnx is missing"),
    "unknown suffix": (lambda d: engines.open(_bytes(d / "model.bin")), "model.bin: unknown model file type"),
    "unknown backend": (lambda d: engines.open(exported("tiny_sta").path("head"), backend="magic"),
                        "unknown backend 'magic'"),
    "onnx on tensorrt": (lambda d: engines.open(exported("tiny_sta").path("head"), backend="tensorrt"),
                         "head.onnx: an ONNX file runs with onnxruntime"),
    "engine on onnxruntime": (lambda d: engines.open(_bytes(d / "m.head.fp32.x.engine"), "onnxruntime"),
                              "m.head.fp32.x.engine: an engine file needs the tensorrt or auto backend"),
    "teacher checkpoint": (lambda d: engines.open_student(save_checkpoint(
        d / "teacher.pt", build_model(get_config("tiny_s")))), "teacher.pt: a s checkpoint is not a student"),
    "checkpoint on onnxruntime": (lambda d: engines.open_student(
        exported("tiny_sta").checkpoint, backend="onnxruntime"), "export it for onnxruntime"),
    "folder without graphs": (lambda d: engines.open_student(d), "expected exactly one <name>.head.onnx"),
    "prefix without encoder": (lambda d: engines.open_student(_only_head(d) / "tiny_sta"),
                               "tiny_sta.encoder.onnx: not found"),
    "foreign onnx": (lambda d: engines.open_student(_foreign(d) / "m"), "not a stanet-rt export"),
}


def _bytes(path):
    path.write_bytes(b"\x00\x01 garbage \xff")
    return path


def _only_head(folder):
    (folder / "tiny_sta.head.onnx").write_bytes(exported("tiny_sta").path("head").read_bytes())
    return folder


def _foreign(folder):
    for part in ("encoder", "head"):
        _foreign_onnx(folder / f"m.{part}.onnx")
    return folder


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_paths_are_one_line_input_errors_naming_the_file(tmp_path, case: str) -> None:
    call, message = ERRORS[case]
    with pytest.raises(InputError, match=message) as info:
        call(tmp_path)
    assert "\n" not in str(info.value)


def test_open_student_rejects_a_graph_of_the_wrong_part(tmp_path) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    (folder / "tiny_sta.encoder.onnx").write_bytes((folder / "tiny_sta.head.onnx").read_bytes())
    with pytest.raises(InputError, match="encoder"):
        engines.open_student(folder / "tiny_sta", device="cpu")


def test_open_student_with_the_audio_graph_missing_is_an_error(tmp_path) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    (folder / "tiny_sta.audio.onnx").unlink()
    with pytest.raises(InputError, match="tiny_sta.audio.onnx"):
        engines.open_student(folder / "tiny_sta", device="cpu")


@pytest.mark.parametrize("slot,source", [("head", "encoder"), ("audio", "encoder"), ("audio", "head")])
def test_open_student_names_the_file_holding_the_wrong_part(tmp_path, slot: str, source: str) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    (folder / f"tiny_sta.{slot}.onnx").write_bytes((folder / f"tiny_sta.{source}.onnx").read_bytes())
    with pytest.raises(InputError, match=rf"tiny_sta\.{slot}\.onnx: this is the {source} graph .* not its {slot}"):
        engines.open_student(folder / "tiny_sta", device="cpu")


def _rewrite_config(path, config) -> None:
    """Replace the stanet_rt.config of an ONNX file (as if it had been exported from ``config``)."""
    model = onnx.load(str(path))
    next(p for p in model.metadata_props if p.key == "stanet_rt.config").value = config.to_json()
    onnx.save(model, str(path))


@pytest.mark.parametrize("part", ["encoder", "audio"])
def test_open_student_rejects_another_models_graph(tmp_path, part: str) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    other = exported("tiny_sta").model.config.replace(name="other_sta", channels=12)
    _rewrite_config(folder / f"tiny_sta.{part}.onnx", other)
    with pytest.raises(InputError, match=rf"tiny_sta\.{part}\.onnx: this {part} graph belongs to another model "
                                         r"\(other_sta"):
        engines.open_student(folder / "tiny_sta", device="cpu")


def test_open_student_of_an_audio_free_config_needs_no_audio_graph(tmp_path) -> None:
    folder = copy_export(exported("tiny_sta"), tmp_path)
    silent = exported("tiny_sta").model.config.replace(audio=None)
    for part in ("encoder", "head"):
        _rewrite_config(folder / f"tiny_sta.{part}.onnx", silent)
    (folder / "tiny_sta.audio.onnx").unlink()
    bundle = engines.open_student(folder, device="cpu")
    assert bundle.audio is None and bundle.config == silent


# -- ONNX Runtime providers ----------------------------------------------------------------------------
def test_provider_order_and_fallback_note() -> None:
    trt, cuda, azure, cpu = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "AzureExecutionProvider",
                             "CPUExecutionProvider")
    assert requested_providers("auto", [trt, cuda, azure, cpu]) == [trt, cuda, cpu]  # best first
    assert requested_providers("cuda", [cpu, cuda, trt], trt_ep=False) == [cuda, cpu]
    assert requested_providers("cpu", [trt, cuda, cpu]) == [cpu]
    assert requested_providers("auto", [azure, cpu]) == [cpu]
    note = fallback_note(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])
    assert note and "fell back from CUDAExecutionProvider to CPUExecutionProvider" in note
    assert fallback_note(["CUDAExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]) is None


def test_a_gpu_provider_that_does_not_attach_is_detected_and_reported(monkeypatch, caplog) -> None:
    """ONNX Runtime attaches only the CPU when a requested GPU provider cannot load (here: it is not in
    this CPU build at all); the engine reads get_providers() afterwards and says so."""
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="stanet_rt.engines"), pytest.warns(UserWarning):
        eng = OrtEngine(exported("tiny_sta").path("head"), device="cuda")
    assert eng.info.providers == ["CPUExecutionProvider"] and eng.info.device == "cpu"
    assert len(eng.info.notes) == 1 and "fell back from CUDAExecutionProvider" in eng.info.notes[0]
    assert any("fell back" in r.getMessage() for r in caplog.records)


def test_cuda_asked_without_a_gpu_provider_is_reported() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    eng = engines.open(exported("tiny_sta").path("head"), device="cuda")
    assert eng.info.device == "cpu" and any("CPU" in n for n in eng.info.notes)


def test_device_none_means_auto_for_graphs_too() -> None:
    exp = exported("tiny_sta")
    assert engines.open(exp.path("head"), device=None).info.backend == "onnxruntime"
    bundle = engines.open_student(exp.folder, device=None)
    assert bundle.backend == "onnxruntime" and bundle.audio is not None


def test_cuda_index_without_a_gpu_provider_is_reported_once(caplog) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    with caplog.at_level(logging.WARNING, logger="stanet_rt.engines"):
        eng = engines.open(exported("tiny_sta").path("head"), device="cuda:1")
    assert eng.info.providers == ["CPUExecutionProvider"] and eng.info.device == "cpu"
    assert len(eng.info.notes) == 1 and "'cuda:1'" in eng.info.notes[0] and "onnxruntime-gpu" in eng.info.notes[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "tiny_sta.head.onnx" in warnings[0]
    assert engines.open(exported("tiny_sta").path("head"), device="auto").info.notes == []  # auto: no complaint


def test_half_precision_keeps_the_stft_and_netvlad_islands_in_fp32_on_cpu() -> None:
    """What TorchEngine(precision='fp16') does to a module, checked on the CPU (which has FP16 convs)."""
    from stanet_rt.engines.torch_backend import half_with_fp32_islands

    model = lively_student("tiny_sta")
    audio, encoder, _ = part_specs(model)
    wave = (0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    with torch.no_grad():
        ref = audio.module(wave)
        enc_ref = encoder.module(*encoder.example)
        kernel = audio.module.spectrogram.kernel.clone()
        half_with_fp32_islands(audio.module)
        half_with_fp32_islands(encoder.module)  # the same student again: idempotent
        assert torch.equal(audio.module.spectrogram.kernel, kernel)  # the DFT kernels never went through FP16
        assert model.audio_net.conv1.weight.dtype == torch.float16
        assert model.audio_net.avgpool.centroids.dtype == torch.float32  # NetVLAD island
        out = audio.module(wave)
        enc = encoder.module(*[x.half() for x in encoder.example])
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert torch.corrcoef(torch.stack([out.float().flatten(), ref.flatten()]))[0, 1] >= 0.999
    for got, want in zip(enc, enc_ref, strict=True):
        assert got.dtype == torch.float16
        assert torch.corrcoef(torch.stack([got.float().flatten(), want.flatten()]))[0, 1] >= 0.999


# -- CUDA (marked; skipped with a reason on machines without a GPU) ------------------------------------
@pytest.mark.gpu
@pytest.mark.ort_cuda
def test_onnx_runtime_on_cuda_keeps_torch_tensors_on_the_device() -> None:
    exp = exported("tiny_sta")
    eng = engines.open(exp.path("encoder"), device="cuda")
    assert eng.info.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider"), eng.info.notes
    feed = random_feed(eng, 2)
    out = eng.run_torch({k: torch.from_numpy(v).cuda() for k, v in feed.items()})
    ref = engines.open(exp.path("encoder"), device="cpu").run(feed)
    for key, value in out.items():
        assert value.is_cuda, key  # IOBinding: the outputs stay on the GPU
        np.testing.assert_allclose(value.cpu().numpy(), ref[key], atol=1e-3)


@pytest.mark.gpu
def test_torch_backend_on_cuda_matches_cpu() -> None:
    """With TF32 off (cuDNN convs and matmuls in full FP32): TF32's 10-bit mantissa gave 2.9e-3 on an H200."""
    exp = exported("tiny_sta")
    gpu = engines.open_student(exp.checkpoint, device="cuda")
    cpu = engines.open_student(exp.checkpoint, device="cpu")
    feed = random_feed(cpu.encoder, 2)
    matmul = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            out = gpu.encoder.run_torch({k: torch.from_numpy(v).cuda() for k, v in feed.items()})
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
    for key, ref in cpu.encoder.run(feed).items():
        assert out[key].is_cuda
        np.testing.assert_allclose(out[key].cpu().numpy(), ref, atol=1e-3)


@pytest.mark.gpu
def test_torch_backend_fp16_keeps_the_stft_in_fp32() -> None:
    from stanet_rt.engines.torch_backend import torch_engines

    model = lively_student("tiny_sta")
    half = torch_engines(model, "cuda", "fp16")["audio"]
    full = torch_engines(model, "cuda", "fp32")["audio"]
    wave = {"waveform": (0.3 * torch.randn(2, 8000)).clamp(-1, 1).cuda()}
    a, b = half.run_torch(wave)["audio_embedding"], full.run_torch(wave)["audio_embedding"]
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] >= 0.999


def test_auto_prefers_onnx_exported_beside_a_checkpoint_unless_stale(tmp_path, caplog) -> None:
    import os

    from stanet_rt.engines.auto import open_student as open_student_auto

    exp = exported("tiny_lite")  # exported from its checkpoint: the graphs carry the checkpoint's hash
    ckpt = tmp_path / "lite.pt"
    shutil.copy2(exp.checkpoint, ckpt)
    assert open_student_auto(ckpt).backend == "torch"
    copy_export(exp, tmp_path, stem="lite")  # = export_model(ckpt, tmp_path, name="lite")
    bundle = open_student_auto(ckpt)
    assert bundle.backend == "onnxruntime" and bundle.audio is not None
    assert open_student_auto(ckpt, backend="torch").backend == "torch"  # asked for explicitly
    earlier = os.stat(tmp_path / "lite.head.onnx").st_mtime - 100
    os.utime(tmp_path / "lite.head.onnx", (earlier, earlier))  # file times do not matter (git checkouts)
    assert open_student_auto(ckpt).backend == "onnxruntime"
    torch.manual_seed(1)
    save_checkpoint(ckpt, build_model(get_config("tiny_lite")).eval())  # retrained after the export
    with caplog.at_level(logging.WARNING, logger="stanet_rt.engines"):
        assert open_student_auto(ckpt).backend == "torch"
    assert any("not exported from this lite.pt" in r.getMessage() for r in caplog.records)
