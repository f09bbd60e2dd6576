"""stanet-rt: audio-visual saliency (STANet / STANet+) as real software.

The core (``config``, ``audio``, ``models``, ``weights``, ``eval``) imports nothing above it;
``training``, ``export`` and ``engines`` import the core; ``stanet_rt.pipeline`` imports ``engines``.
"""

__version__ = "0.1.0"
