"""FP16 ONNX with FP32 inputs/outputs (TensorRT 11 has no FP16 builder flag: precision must live in the
graph, deployment-notes 2.2) via onnxconverter-common's ``convert_float_to_float16(keep_io_types=True)``.

FP32 islands:
- in every graph the ops listed in :data:`FP32_OPS` (softmax over large axes, reductions used by
  normalisations, BatchNorm, sqrt / log / exp / pow) through ``op_block_list``;
- in the ``audio`` graph the log-spectrogram (DFT conv, power, log, z-normalisation: the PSD and the
  1e9-scaled normalisation need FP32 range) through ``node_block_list``: :func:`spectrogram_island`
  finds it as every node upstream of the audio net's first 2-D convolution;
- in the ``audio`` graph the NetVLAD aggregation (:func:`aggregation_island`: everything downstream of
  a Softmax, i.e. the soft assignment's residual sums and both normalisations): a residual sum
  ``A X^T - sum(a) c`` of a nearly empty cluster is the small difference of two large terms, which FP16
  loses, and the intra-normalisation then blows that rounding up to a unit vector (a tiny STA+'s
  AudioSwitch audio net: embedding CC 0.90 in FP16 before, parity failed).
The audio net's convolutions run in FP16 like the encoder.

Around the converter (onnxconverter-common 1.16): the dynamo exporter writes ``value_info`` for
initializers, which makes the converter cast a blocked node's FP32 constants through FP16 (and clip
values such as 1e9 to 1e4); those entries are dropped first, and a constant shared by a blocked and a
converted node is duplicated so each side gets its own type. Afterwards every FP32 -> FP16 -> FP32 Cast
round trip the converter leaves between two blocked nodes (or between an FP32 input and a blocked node)
is removed, so values inside an island never pass through FP16. Imports onnx and onnxconverter-common.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, numpy_helper

FP32_OPS = ["Softmax", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceL2", "LpNormalization",
            "BatchNormalization", "Sqrt", "Log", "Exp", "Pow"]


def _reachable(graph: onnx.GraphProto, starts: list[onnx.NodeProto], upstream: bool) -> list[str]:
    """Names of ``starts`` and every node reachable from them through the producers of their inputs
    (``upstream``) or the readers of their outputs, in graph order."""
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    if upstream:
        neighbours = {n.name: [producer[i] for i in n.input if i in producer] for n in graph.node}
    else:
        neighbours = {n.name: [r for o in n.output for r in readers.get(o, [])] for n in graph.node}
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node.name not in seen:
            seen.add(node.name)
            stack.extend(neighbours[node.name])
    return [n.name for n in graph.node if n.name in seen]


def spectrogram_island(model: onnx.ModelProto) -> list[str]:
    """Names of the audio graph's log-spectrogram nodes: the ancestors of the data input of the first
    Conv with a 4-D weight (the audio net's stem). Empty when the graph has no such Conv."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    stem = next((n for n in graph.node if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in inits
                 and len(inits[n.input[1]].dims) == 4), None)
    if stem is None:
        return []
    first = [n for n in graph.node if stem.input[0] in n.output]
    return _reachable(graph, first, upstream=True)


def aggregation_island(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes downstream of every Softmax (in the audio graph: the NetVLAD aggregation after
    its soft assignment, up to the embedding). Empty when the graph has no Softmax."""
    graph = model.graph
    return _reachable(graph, [n for n in graph.node if n.op_type == "Softmax"], upstream=False)


def _blocked(node: onnx.NodeProto, ops: set[str], names: set[str]) -> bool:
    return node.op_type in ops or node.name in names


def _prepare(model: onnx.ModelProto, ops: set[str], names: set[str]) -> None:
    """Drop initializers' value_info and give converted consumers their own copy of a constant that a
    blocked node also reads (both in place)."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    kept = [v for v in graph.value_info if v.name not in inits]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in inits and inits[name].data_type == TensorProto.FLOAT:
                readers.setdefault(name, []).append((node, k))
    for name, uses in readers.items():
        free = [(n, k) for n, k in uses if not _blocked(n, ops, names)]
        if free and len(free) < len(uses):
            copy = numpy_helper.from_array(numpy_helper.to_array(inits[name]), f"{name}__fp16")
            graph.initializer.append(copy)
            for node, k in free:
                node.input[k] = copy.name


def _drop_cast_round_trips(model: onnx.ModelProto) -> int:
    """Remove ``x (FP32) -> Cast(FP16) -> Cast(FP32)`` pairs: readers of the second Cast read ``x``.
    Returns how many FP32 Casts were removed."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    fp32 = {v.name for v in [*graph.input, *graph.value_info] if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    fp32 |= {i.name for i in graph.initializer if i.data_type == TensorProto.FLOAT}

    def cast_to(node: onnx.NodeProto | None) -> int | None:
        if node is None or node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    rename: dict[str, str] = {}
    dropped: set[str] = set()
    for node in graph.node:
        first = producer.get(node.input[0]) if node.input else None
        if (cast_to(node) == TensorProto.FLOAT and cast_to(first) == TensorProto.FLOAT16
                and first.input[0] in fp32 and node.output[0] not in outputs):
            rename[node.output[0]] = first.input[0]
            dropped.add(node.name)
    if not rename:
        return 0
    kept = [n for n in graph.node if n.name not in dropped]
    for node in kept:
        for k, name in enumerate(node.input):
            node.input[k] = rename.get(name, name)
    read = {name for n in kept for name in n.input} | outputs
    kept = [n for n in kept if not (cast_to(n) == TensorProto.FLOAT16 and n.output[0] not in read)]
    live = {o for n in kept for o in n.output}
    del graph.node[:]
    graph.node.extend(kept)
    vi = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(vi)
    return len(dropped)


def to_fp16(model: onnx.ModelProto, part: str) -> onnx.ModelProto:
    """An FP16 copy of ``model`` with FP32 I/O and FP32 islands (:data:`FP32_OPS` everywhere, and in the
    ``audio`` part the log-spectrogram and the NetVLAD aggregation, :func:`spectrogram_island`,
    :func:`aggregation_island`)."""
    import warnings

    from onnxconverter_common import float16

    work = onnx.ModelProto.FromString(model.SerializeToString())
    ops = set(FP32_OPS)
    names: set[str] = set()
    if part == "audio":
        names = set(spectrogram_island(work))
        if not names:  # no recognisable audio net: keep the whole front end FP32 rather than guess
            return work
        names |= set(aggregation_island(work))
    _prepare(work, ops, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the float32 number ... will be truncated": tiny weights clip to 1e-7
        converted = float16.convert_float_to_float16(work, keep_io_types=True, op_block_list=sorted(ops),
                                                     node_block_list=sorted(names), disable_shape_infer=False)
    _drop_cast_round_trips(converted)
    _keep_fp32_outputs(converted)
    onnx.checker.check_model(converted, full_check=True)
    return converted


def _keep_fp32_outputs(model: onnx.ModelProto) -> int:
    """Give back FP32 graph outputs that the converter typed FP16 (in place; returns how many).

    With ``keep_io_types`` the converter still ends a graph whose last node is blocked (FP32) with a
    ``Cast(to=FP16)`` onto the output name (e.g. the audio embedding after the FP32 NetVLAD island); that
    Cast becomes an FP32 identity and the output FP32 again, so no output is rounded to FP16."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    fixed = 0
    for out in graph.output:
        tensor = out.type.tensor_type
        node = producer.get(out.name)
        if tensor.elem_type != TensorProto.FLOAT16 or node is None or node.op_type != "Cast":
            continue
        for attr in node.attribute:
            if attr.name == "to":
                attr.i = TensorProto.FLOAT
        tensor.elem_type = TensorProto.FLOAT
        fixed += 1
    return fixed


def initializer_dtypes(model: onnx.ModelProto) -> dict[int, int]:
    """Count of initializers per ONNX element type (e.g. ``onnx.TensorProto.FLOAT16``)."""
    counts: dict[int, int] = {}
    for init in model.graph.initializer:
        counts[init.data_type] = counts.get(init.data_type, 0) + 1
    return counts
