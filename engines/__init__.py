"""One inference interface over PyTorch, ONNX Runtime and native TensorRT.

``engines.open(path, backend="auto", device="auto")`` opens one graph; ``engines.open_student(path)``
opens a student's audio / encoder / head graphs (or a checkpoint through PyTorch).
"""

from stanet_rt.engines.auto import BACKENDS, StudentEngines, open, open_student  # noqa: A004
from stanet_rt.engines.base import Engine, EngineInfo, TensorSpec

__all__ = ["BACKENDS", "Engine", "EngineInfo", "StudentEngines", "TensorSpec", "open", "open_student"]
