"""The inference interface every backend implements (imports numpy and, lazily, torch).

An :class:`Engine` runs one graph (an audio front end, an encoder or a head of a student):
``run(dict[str, np.ndarray]) -> dict[str, np.ndarray]`` on the host, ``run_torch(dict[str, Tensor])
-> dict[str, Tensor]`` for device tensors without host copies where the backend allows it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (``-1`` / a string for dynamic axes) and numpy dtype name of one graph tensor."""

    name: str
    shape: tuple[Any, ...]
    dtype: str = "float32"


@dataclass
class EngineInfo:
    """What actually runs: ``backend`` (torch | onnxruntime | tensorrt), ``precision``, ``device``,
    ``providers`` (ONNX Runtime's, as attached to the session), ``part`` and free-form ``notes``."""

    backend: str
    precision: str
    device: str
    part: str
    providers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Engine(abc.ABC):
    """One graph behind one backend."""

    info: EngineInfo
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    @abc.abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host arrays in, host arrays out (float32)."""

    def run_torch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """torch tensors in and out; the default goes through the host (backends override it)."""
        import torch

        device = next(iter(inputs.values())).device
        out = self.run({k: v.detach().cpu().numpy() for k, v in inputs.items()})
        return {k: torch.from_numpy(v).to(device) for k, v in out.items()}

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]
