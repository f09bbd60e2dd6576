"""FP16 ONNX (``export.fp16`` through ``export_model(fp16=True)``) of tiny STA: FP16 weights with FP32
inputs/outputs (TensorRT 11 has no FP16 builder flag, so precision lives in the graph), strict type
inference passes, parity CC >= 0.999 on random and real inputs at batch 2, 1 and 3, and the FP32
islands (log-spectrogram / STFT, softmax, normalisation statistics) stay FP32 while the audio net runs
in FP16, and no value inside an island passes through FP16 (no FP32 -> FP16 -> FP32 Cast round trips)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _export_helpers import cc, exported, torch_outputs
from onnx import TensorProto, helper, numpy_helper
from stanet_rt.export.fp16 import aggregation_island, initializer_dtypes, spectrogram_island, to_fp16

from stanet_rt.artifacts import read_metadata
from stanet_rt.config import ModelConfig
from stanet_rt.models.parts import part_specs

FP32_ISLAND_OPS = {"Softmax", "ReduceMean", "ReduceL2", "ReduceSum", "LpNormalization", "Sqrt", "Pow", "Log",
                   "Exp", "BatchNormalization"}


def _typed(path) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The model after strict shape + type inference, and the element type of every named tensor."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), check_type=True, strict_mode=True)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types |= {i.name: i.data_type for i in g.initializer}
    return model, types


def _scopes(node: onnx.NodeProto) -> str:
    return next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")


@pytest.mark.parametrize("part", ["encoder", "head"])
def test_fp16_graph_has_half_weights_and_fp32_io(part: str) -> None:
    exp = exported("tiny_sta")
    path = exp.path(part, "fp16")
    assert path in exp.report.files
    model = onnx.load(str(path))
    counts = initializer_dtypes(model)
    assert counts.get(TensorProto.FLOAT16, 0) >= 10  # the weights are half ...
    assert counts.get(TensorProto.FLOAT16, 0) > counts.get(TensorProto.FLOAT, 0)  # ... most of them
    fp32 = onnx.load(str(exp.path(part)))
    for got, ref in ((model.graph.input, fp32.graph.input), (model.graph.output, fp32.graph.output)):
        assert [v.name for v in got] == [v.name for v in ref]  # same contract as the FP32 graph
        assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in got)
    meta = read_metadata(path)
    assert meta["stanet_rt.precision"] == "fp16" and meta["stanet_rt.part"] == part
    assert ModelConfig.from_json(meta["stanet_rt.config"]) == exp.model.config
    _, types = _typed(path)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(types[n.output[0]] == TensorProto.FLOAT16 for n in convs)  # really computes in half


@pytest.mark.parametrize("part", ["audio", "encoder", "head"])
def test_fp16_graph_passes_strict_type_inference_and_the_full_checker(part: str) -> None:
    path = exported("tiny_sta").path(part, "fp16")
    onnx.checker.check_model(str(path), full_check=True)
    _typed(path)  # raises on any type conflict (what TensorRT 11's strongly typed parser enforces)


@pytest.mark.parametrize("part", ["encoder", "head"])
def test_softmax_and_normalisation_statistics_stay_fp32(part: str) -> None:
    model, types = _typed(exported("tiny_sta").path(part, "fp16"))
    islands = [n for n in model.graph.node if n.op_type in FP32_ISLAND_OPS]
    assert any(n.op_type == "Softmax" for n in islands)
    for node in islands:
        assert all(types[o] == TensorProto.FLOAT for o in node.output), (node.op_type, node.name)


def test_log_spectrogram_island_stays_fp32() -> None:
    model, types = _typed(exported("tiny_sta").path("audio", "fp16"))
    stft = [n for n in model.graph.node if "'spectrogram'" in _scopes(n)]
    assert {"Conv", "Log", "ReduceMean", "Sqrt"} <= {n.op_type for n in stft}
    for node in stft:
        assert all(types.get(o) != TensorProto.FLOAT16 for o in node.output), (node.op_type, node.name)
    dft = next(n for n in stft if n.op_type == "Conv")
    assert types[dft.input[1]] == TensorProto.FLOAT  # the DFT kernels keep their FP32 values


def test_netvlad_aggregation_stays_fp32_and_sta_plus_fp16_audio_holds_parity() -> None:
    # STA+'s audio graph holds two NetVLADs (student + AudioSwitch); in FP16 the residual sums of a nearly
    # empty cluster lost their digits and the intra-normalisation blew that up (embedding CC 0.90)
    exp = exported("tiny_sta_plus")
    model, types = _typed(exp.path("audio", "fp16"))
    island = set(aggregation_island(onnx.load(str(exp.path("audio")))))
    softmaxes = [n for n in model.graph.node if n.op_type == "Softmax"]
    assert len(softmaxes) == 2 and all(n.name in island for n in softmaxes)
    for node in model.graph.node:
        if node.name in island:
            assert all(types.get(o) != TensorProto.FLOAT16 for o in node.output), (node.op_type, node.name)
    assert any(n.op_type == "MatMul" and n.name in island for n in model.graph.node)  # the residual sums
    audio16 = [r for r in exp.report.parity if r.part == "audio" and r.precision == "fp16"]
    assert len(audio16) == 2 and all(r.passed and r.cc >= 0.999 for r in audio16), audio16


def test_fp16_audio_net_runs_in_half_outside_the_stft_island() -> None:
    model, types = _typed(exported("tiny_sta").path("audio", "fp16"))
    assert initializer_dtypes(model).get(TensorProto.FLOAT16, 0) > 0
    net = [n for n in model.graph.node if n.op_type == "Conv" and "'spectrogram'" not in _scopes(n)]
    assert net and all(types[n.output[0]] == TensorProto.FLOAT16 for n in net)


def test_fp16_parity_report_meets_0999_and_really_ran_in_half() -> None:
    report = exported("tiny_sta").report
    fp16 = [r for r in report.parity if r.precision == "fp16"]
    assert {(r.part, r.inputs) for r in fp16} == {(p, i) for p in ("audio", "encoder", "head")
                                                  for i in ("random", "real")}
    for r in fp16:
        assert r.passed, r
        assert r.cc is None or r.cc >= 0.999, r
    for part in ("encoder", "head"):
        err16 = max(r.max_abs_err for r in fp16 if r.part == part)
        err32 = max(r.max_abs_err for r in report.parity if r.part == part and r.precision == "fp32")
        assert err32 < err16 < 0.05, (part, err32, err16)


@pytest.mark.parametrize("batch", [1, 3])
def test_fp16_graphs_run_at_other_batch_sizes(batch: int) -> None:
    exp = exported("tiny_sta")
    rng = np.random.default_rng(10 + batch)
    for spec in part_specs(exp.model, batch=2):
        feed = [rng.standard_normal((batch, *x.shape[1:])).astype(np.float32) for x in spec.example]
        if spec.part == "audio":
            feed = [np.clip(0.3 * feed[0], -1, 1)]
        sess = ort.InferenceSession(str(exp.path(spec.part, "fp16")), providers=["CPUExecutionProvider"])
        got = sess.run(None, dict(zip(spec.input_names, feed, strict=True)))
        for name, g, r in zip(spec.output_names, got, torch_outputs(spec.module, feed), strict=True):
            assert g.dtype == np.float32 and g.shape == r.shape, (spec.part, name)
            if r.std() > 1e-6:
                assert cc(g, r) >= 0.999, (spec.part, name)
            else:
                np.testing.assert_allclose(g, r, atol=1e-2)


def _round_trips(model: onnx.ModelProto) -> list[str]:
    """Cast(FP32) nodes reading a Cast(FP16) of an FP32 value: a value rounded through FP16 for nothing."""
    _, types = _typed_model(model)
    producer = {o: n for n in model.graph.node for o in n.output}

    def to(node):
        return next((a.i for a in node.attribute if a.name == "to"), None) if node and node.op_type == "Cast" else None

    return [n.name for n in model.graph.node
            if to(n) == TensorProto.FLOAT and to(first := producer.get(n.input[0])) == TensorProto.FLOAT16
            and types.get(first.input[0]) == TensorProto.FLOAT]


def _typed_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    return model, types | {i.name: i.data_type for i in g.initializer}


@pytest.mark.parametrize("part", ["audio", "encoder", "head"])
def test_no_value_inside_an_fp32_island_is_rounded_through_fp16(part: str) -> None:
    assert _round_trips(onnx.load(str(exported("tiny_sta").path(part, "fp16")))) == []


def test_the_spectrogram_island_is_the_spectrogram_module() -> None:
    model = onnx.load(str(exported("tiny_sta").path("audio")))
    scoped = [n.name for n in model.graph.node if "'spectrogram'" in _scopes(n)]
    assert scoped and spectrogram_island(model) == scoped


def _graph(nodes, inits) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 18)])


def test_a_constant_shared_by_an_island_and_the_fp16_graph_gets_one_copy_each() -> None:
    # y = Log(Sqrt(2 x + c)) ** c: Mul and Add run in FP16, Sqrt -> Log -> Pow are FP32 ops (one island);
    # the constant c (= 3) is read by the FP16 Add and by the FP32 Pow.
    nodes = [helper.make_node("Mul", ["x", "big"], ["m"], name="mul"),
             helper.make_node("Add", ["m", "c"], ["a"], name="add"),
             helper.make_node("Sqrt", ["a"], ["s"], name="sqrt"),
             helper.make_node("Log", ["s"], ["l"], name="log"),
             helper.make_node("Pow", ["l", "c"], ["y"], name="pow")]
    model = _graph(nodes, {"big": 2.0, "c": 3.0})
    half = to_fp16(model, "encoder")
    typed, types = _typed_model(half)
    assert types["c"] == TensorProto.FLOAT and types["c__fp16"] == TensorProto.FLOAT16
    pow_node = next(n for n in half.graph.node if n.name == "pow")
    assert types[pow_node.input[1]] == TensorProto.FLOAT  # Pow is FP32: reads the FP32 constant
    assert _round_trips(half) == []  # Sqrt -> Log -> Pow: no casts between blocked nodes
    x = np.abs(np.random.default_rng(0).standard_normal((2, 3))).astype(np.float32) + 0.5
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, np.log(np.sqrt(x * 2 + 3)) ** 3, rtol=2e-3)


def test_an_audio_graph_without_an_audio_net_stays_fp32() -> None:
    model = _graph([helper.make_node("Mul", ["x", "k"], ["y"], name="mul")], {"k": 2.0})
    assert spectrogram_island(model) == []
    assert initializer_dtypes(to_fp16(model, "audio")) == {TensorProto.FLOAT: 1}
