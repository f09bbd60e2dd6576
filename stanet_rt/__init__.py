"""stanet-rt: audio-visual saliency (STANet / STANet+) as real software.

The core (``config``, ``audio``, ``models``, ``weights``, ``eval``) imports nothing above it;
``training``, ``export`` and ``engines`` import the core; ``stanet_rt.pipeline`` imports ``engines``.

For applications: ``for frame in stanet_rt.stream("clip.mp4"): frame.timestamp, frame.image, frame.saliency``
(see :func:`stanet_rt.pipeline.api.stream`).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "stream"]


def __getattr__(name: str) -> Any:
    """``stanet_rt.stream`` is imported on first use, so ``import stanet_rt`` stays cheap (no numpy, av,
    onnxruntime or torch)."""
    if name == "stream":
        from stanet_rt.pipeline.api import stream

        return stream
    raise AttributeError(f"module 'stanet_rt' has no attribute {name!r}")
