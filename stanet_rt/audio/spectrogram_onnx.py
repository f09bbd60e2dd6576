"""Export :class:`~stanet_rt.audio.spectrogram.LogSpectrogram` to a standalone ONNX graph.

The graph maps ``waveforms`` (B, 8000) float32 to ``log_spectrogram`` (B, 1, 257, 48) float32 with a
dynamic batch axis, opset 18, using only Conv/Mul/Add/Log/ReduceMean/Sqrt/Where (no ONNX STFT/DFT,
which TensorRT imports poorly). The model config JSON is stored in ``metadata_props`` under
``stanet_rt.audio_config``.

Imports torch, onnx and ``stanet_rt.audio.spectrogram``; must not import models, pipeline or cli.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from pathlib import Path

import torch

from stanet_rt.audio.spectrogram import LogSpectrogram
from stanet_rt.config import AUDIO, AudioConfig

OPSET = 18
INPUT_NAME = "waveforms"
OUTPUT_NAME = "log_spectrogram"
METADATA_KEY = "stanet_rt.audio_config"


def export_log_spectrogram_onnx(path: str | Path, config: AudioConfig = AUDIO) -> Path:
    """Write the log-spectrogram as an ONNX model at ``path`` (atomically) and return the path.

    Input ``waveforms``: (batch, window_samples) float32; output ``log_spectrogram``:
    (batch, 1, n_freq, n_time) float32. Exported with the dynamo exporter at opset 18.
    """
    import onnx

    path = Path(path)
    module = LogSpectrogram(config).eval()
    example = torch.zeros(2, config.window_samples)
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        opset_version=OPSET,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: batch},),
        external_data=False,
        verbose=False,
    )
    model = program.model_proto
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(dataclasses.asdict(config), sort_keys=True)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"  # same file system: atomic rename
    try:
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
