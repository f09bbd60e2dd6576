"""The training stages of the method, in order (``stanet-rt train <stage>``):

| stage         | module                         | spec     |
|---------------|--------------------------------|----------|
| scam-coarse   | ``scam.run_coarse``            | 3, 5.1   |
| scam-fine     | ``scam.run_fine``              | 5.2-5.4  |
| scam-plus     | ``scam_plus.run_plus``         | 4, 5.6   |
| pseudo-gt     | ``pseudo_gt.run_pseudo_gt``    | 5.5, 5.7 |
| switch        | ``switch.run_switch``          | 7        |
| students      | ``students.run_students``      | 6        |
| distill       | ``distill.run_distill``        | issue 8: the light causal student from STANet+ |

Each takes a :class:`training.stages.common.StageContext`. This package file imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

STAGES: dict[str, tuple[str, str]] = {
    "scam-coarse": ("stanet_rt.training.stages.scam", "run_coarse"),
    "scam-fine": ("stanet_rt.training.stages.scam", "run_fine"),
    "scam-plus": ("stanet_rt.training.stages.scam_plus", "run_plus"),
    "pseudo-gt": ("stanet_rt.training.stages.pseudo_gt", "run_pseudo_gt"),
    "switch": ("stanet_rt.training.stages.switch", "run_switch"),
    "students": ("stanet_rt.training.stages.students", "run_students"),
    "distill": ("stanet_rt.training.stages.distill", "run_distill"),
}


def stage_function(name: str) -> Callable:
    """The ``run_*`` function of stage ``name``."""
    module, fn = STAGES[name]
    return getattr(importlib.import_module(module), fn)
