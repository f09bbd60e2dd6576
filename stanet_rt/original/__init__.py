"""The authors' STANet models: import their checkpoints, run their exact forward.

- :func:`import_checkpoint` (``stanet-rt import``): STA / STA+ ``DataParallel`` state dicts, the
  AudioSwitch whole-module pickle ``27001.pt`` (read by a restricted unpickler, no original code) and
  ``vggsound_netvlad.pth.tar`` -> an ordinary stanet-rt checkpoint with ``config.original = True``.
- :func:`forward`: the original test forward on a parity fixture's input arrays -> its output arrays.
- :func:`resize_linear_u8`: OpenCV's INTER_LINEAR uint8 resize, bit-exact, without OpenCV.

Compatibility mode itself lives in the shared model blocks (``ModelConfig.original``).
"""

from stanet_rt.original.cv2_resize import resize_linear_u8
from stanet_rt.original.forward import forward, saliency_u8
from stanet_rt.original.importer import IMPORT_ARCHS, ImportReport, import_checkpoint
from stanet_rt.original.pickle_reader import PickleRefused, read_weight_file

__all__ = ["IMPORT_ARCHS", "ImportReport", "PickleRefused", "forward", "import_checkpoint", "read_weight_file",
           "resize_linear_u8", "saliency_u8"]
