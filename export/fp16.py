"""FP16 ONNX with FP32 inputs/outputs (TensorRT 11 has no FP16 builder flag: precision must live in the
graph, deployment-notes 2.2) via onnxconverter-common's ``convert_float_to_float16(keep_io_types=True)``.

FP32 islands: the whole audio front end (log-spectrogram: DFT power and log need the range, and the
NetVLAD normalisations), and in every graph the ops listed in :data:`FP32_OPS` (softmax over large
axes, reductions used by normalisations, BatchNorm). Imports onnx and onnxconverter-common.
"""

from __future__ import annotations

import onnx

FP32_OPS = ["Softmax", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceL2", "LpNormalization",
            "BatchNormalization", "Sqrt", "Log", "Exp", "Pow"]


def to_fp16(model: onnx.ModelProto, part: str) -> onnx.ModelProto:
    """An FP16 copy of ``model`` with FP32 I/O; the ``audio`` part is kept FP32 entirely (an island)."""
    from onnxconverter_common import float16

    if part == "audio":
        return onnx.ModelProto.FromString(model.SerializeToString())
    converted = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=FP32_OPS,
                                                 disable_shape_infer=False)
    onnx.checker.check_model(converted, full_check=True)
    return converted


def initializer_dtypes(model: onnx.ModelProto) -> dict[int, int]:
    """Count of initializers per ONNX element type (e.g. ``onnx.TensorProto.FLOAT16``)."""
    counts: dict[int, int] = {}
    for init in model.graph.initializer:
        counts[init.data_type] = counts.get(init.data_type, 0) + 1
    return counts
