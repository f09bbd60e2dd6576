"""FP32 ONNX export of the tiny students (``export.onnx_export``, ``export.parity``, ``export.api``): the
three graphs of STA / STA+ / lite pass the full checker at opset 18, carry the config in
``metadata_props``, keep the I/O contract the pipeline relies on, match PyTorch in ONNX Runtime
(CC >= 0.9999 on random inputs and on frames decoded from a generated clip plus a real tone), and run
at batch 1 and 3 (dynamic batch). The parity check itself is shown to fail on a wrong graph."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from _export_helpers import PARTS, STUDENTS, cc, exported, lively_student, torch_outputs
from stanet_rt.export.onnx_export import export_part
from stanet_rt.export.parity import check_part, generated_clip_frames, real_inputs

from stanet_rt import __version__
from stanet_rt.artifacts import read_metadata
from stanet_rt.config import ModelConfig
from stanet_rt.models.parts import part_specs


def expected_io(model) -> dict[str, tuple[dict[str, tuple], dict[str, tuple]]]:
    """The ONNX I/O contract of the task brief, derived from the model: part -> (inputs, outputs),
    each name -> per-sample shape (the batch axis excluded)."""
    cfg = model.config
    s = cfg.input_size
    feats = model.feature_shapes(s, s)
    t = len(cfg.window_offsets)
    io = {}
    enc_in = {"frames": (3, s, s)}
    if model.uses_audio:
        a = model.audio_embedding_dim
        io["audio"] = ({"waveform": (8000,)}, {"audio_embedding": (a,)})
        enc_in |= {"audio_embedding": (a,), "audio_on": (1,)}
    io["encoder"] = (enc_in, dict(feats))
    io["head"] = ({k: (t, *v) for k, v in feats.items()}, {"logits": (1, s, s)})
    return io


def _shape(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", STUDENTS)
def test_three_graphs_pass_the_full_checker_at_opset_18(name: str) -> None:
    exp = exported(name)
    assert exp.model.uses_audio  # every tiny student has audio: all three parts are exported
    for part in PARTS:
        path = exp.path(part)
        assert path in exp.report.files
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        assert {o.domain: o.version for o in model.opset_import}[""] == 18
    assert not list(exp.folder.glob(".*.tmp"))  # atomic writes leave no temporaries behind


@pytest.mark.parametrize("name", STUDENTS)
def test_metadata_carries_config_part_precision_version(name: str) -> None:
    exp = exported(name)
    for part in PARTS:
        meta = read_metadata(exp.path(part))
        assert ModelConfig.from_json(meta["stanet_rt.config"]) == exp.model.config
        assert meta["stanet_rt.part"] == part
        assert meta["stanet_rt.precision"] == "fp32"
        assert meta["stanet_rt.version"] == __version__


@pytest.mark.parametrize("name", STUDENTS)
def test_io_names_shapes_and_dynamic_batch_axis_follow_the_contract(name: str) -> None:
    exp = exported(name)
    for part, (inputs, outputs) in expected_io(exp.model).items():
        graph = onnx.load(str(exp.path(part))).graph
        for values, contract in ((graph.input, inputs), (graph.output, outputs)):
            assert [v.name for v in values] == list(contract), part
            for v in values:
                assert v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                dims = _shape(v)
                assert isinstance(dims[0], str) and dims[0], f"{part}/{v.name}: batch axis is not symbolic"
                assert tuple(dims[1:]) == contract[v.name], f"{part}/{v.name}"


@pytest.mark.parametrize("name", STUDENTS)
def test_parity_after_export_on_random_and_real_inputs(name: str) -> None:
    exp = exported(name)
    rows = [r for r in exp.report.parity if r.precision == "fp32"]
    assert exp.report.passed and all(r.passed for r in rows)
    for part, (_, outputs) in expected_io(exp.model).items():
        for label in ("random", "real"):
            got = {r.output: r for r in rows if r.part == part and r.inputs == label}
            assert set(got) == set(outputs), (part, label)
            for r in got.values():
                assert 0.0 <= r.max_abs_err < 1e-3, r
                if r.cc is None:  # CC undefined: the PyTorch output is constant, judged on abs error
                    assert "constant" in r.note and r.max_abs_err <= 1e-4, r
                else:
                    assert r.cc >= 0.9999, r
    logits = [r for r in rows if r.output == "logits"]
    assert len(logits) == 2 and all(r.cc is not None for r in logits)  # the map itself has variance


@pytest.mark.parametrize("name", STUDENTS)
@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_runs_every_graph_at_other_batch_sizes(name: str, batch: int) -> None:
    exp = exported(name)
    rng = np.random.default_rng(batch)
    for spec in part_specs(exp.model, batch=2):
        feed = [rng.standard_normal((batch, *x.shape[1:])).astype(np.float32) for x in spec.example]
        sess = ort.InferenceSession(str(exp.path(spec.part)), providers=["CPUExecutionProvider"])
        got = sess.run(None, dict(zip(spec.input_names, feed, strict=True)))
        ref = torch_outputs(spec.module, feed)
        for name_out, g, r in zip(spec.output_names, got, ref, strict=True):
            assert g.shape == r.shape and g.shape[0] == batch, (spec.part, name_out)
            np.testing.assert_allclose(g, r, atol=1e-4, rtol=1e-3, err_msg=f"{spec.part}/{name_out}")
            if r.std() > 1e-6:
                assert cc(g, r) >= 0.9999


def test_real_inputs_are_decoded_clip_frames_and_a_tone() -> None:
    frames = generated_clip_frames(4, 64)
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8
    yellow = (frames[..., 0] > 200) & (frames[..., 2] < 120)  # the (250, 220, 40) disc
    xs = [np.nonzero(m)[1].mean() for m in yellow]
    assert all(b > a + 3 for a, b in zip(xs, xs[1:], strict=False)), xs  # the disc moves right
    assert len({f.tobytes() for f in frames}) == 4

    model = exported("tiny_lite").model
    audio, encoder, _ = part_specs(model)
    (wave,) = real_inputs(audio, model)
    spectrum = np.abs(np.fft.rfft(wave[0].numpy()))
    assert np.argmax(spectrum) * 16000 / wave.shape[1] == pytest.approx(440.0, abs=2.0)
    enc = real_inputs(encoder, model)
    mean = torch.tensor(model.config.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.config.std).view(1, 3, 1, 1)
    pixels = enc[0] * std + mean  # undo the ImageNet normalisation: back to [0, 1] RGB of the clip
    clip = generated_clip_frames(2, 64)
    np.testing.assert_allclose(pixels.permute(0, 2, 3, 1).numpy() * 255, clip, atol=1e-3)
    assert enc[2].tolist() == [[1.0], [1.0]]  # audio on


def test_parity_check_fails_on_a_graph_from_other_weights() -> None:
    exp = exported("tiny_lite")
    other = copy.deepcopy(exp.model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    head = part_specs(other)[-1]
    results = check_part(head, str(exp.path("head")), "fp32", head.example, "random")
    assert results and not any(r.passed for r in results)
    assert all(r.cc is not None and r.cc < 0.9999 for r in results)


def test_opset_option_reaches_the_graph(tmp_path) -> None:
    model = lively_student("tiny_lite")
    head = part_specs(model)[-1]
    path = export_part(head, tmp_path / "h.onnx", model.config.to_json(), opset=17)
    onnx.checker.check_model(str(path), full_check=True)
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 17
    assert all(r.passed for r in check_part(head, str(path), "fp32", head.example, "random"))
