"""build_model (stanet_rt/models/factory.py) over every registered config: the right class per arch,
parameter counts of the paper configs against spec section 10 (on the ``meta`` device, nothing
allocated), tiny configs small and JSON-round-trippable, the stanet_lite paper config causal.

Complements tests/test_models.py (paper configs build on meta with > 1 M parameters).
"""

from __future__ import annotations

import pytest
import torch

from stanet_rt.config import ARCHS, ModelConfig, get_config, list_configs
from stanet_rt.models.backbones import AudioNet
from stanet_rt.models.factory import build_model
from stanet_rt.models.student_base import StudentModel
from stanet_rt.models.students import STAPlusStudent, STAStudent
from stanet_rt.models.switch import AudioSwitch
from stanet_rt.models.teachers import SCAMTeacher

CLASS_OF = {"s": SCAMTeacher, "sa": SCAMTeacher, "st": SCAMTeacher, "s_plus": SCAMTeacher,
            "sa_plus": SCAMTeacher, "st_plus": SCAMTeacher, "audio_switch": AudioSwitch,
            "sta": STAStudent, "stanet_lite": STAStudent, "sta_plus": STAPlusStudent, "audio_net": AudioNet}
PAPER = [c for c in list_configs() if not c.startswith(("tiny_", "demo_"))]
TINY = [c for c in list_configs() if c.startswith("tiny_")]

# spec section 10 (used parameters, dead weight dropped), millions
SPEC_PARAMS_M = {
    "s": 58.0,
    "sa": 213.0,  # "~213 M used (+~159 M unused)"
    "st": 200.0,
    "s_plus": 21.8,  # trunk + CAM head (+ ~0.02 M graph)
    "st_plus": 21.8,
    "sa_plus": 21.8 + 11.19 + 1.18,  # + audio net + AVfusion at 512 channels
    "audio_switch": 101.3,
    "sta": 99.7,
    "sta_plus": 34.2 + 101.3,  # used STA+ parameters + the AudioSwitch it needs at inference
}


def test_every_arch_has_a_paper_and_a_tiny_config() -> None:
    archs = {get_config(c).arch for c in PAPER}
    tiny_archs = {get_config(c).arch for c in TINY}
    assert archs == tiny_archs == set(ARCHS) == set(CLASS_OF)


@pytest.mark.parametrize("name", PAPER)
def test_paper_config_class_and_size(name: str) -> None:
    cfg = get_config(name)
    with torch.device("meta"):
        model = build_model(cfg)
    assert type(model) is CLASS_OF[cfg.arch]
    assert model.config == cfg
    assert isinstance(model, StudentModel) == cfg.is_student
    assert all(p.is_meta for p in model.parameters())
    if name in SPEC_PARAMS_M:
        millions = sum(p.numel() for p in model.parameters()) / 1e6
        assert millions == pytest.approx(SPEC_PARAMS_M[name], rel=0.01)


def test_stanet_lite_paper_config() -> None:
    cfg = get_config("stanet_lite")
    assert cfg.lookahead == 0 and cfg.window_offsets == (-2, -1, 0)  # causal: no look-ahead
    assert cfg.input_size == 256 and cfg.input_size % 32 == 0  # 8 x 8 at the /32 level
    with torch.device("meta"):
        model = build_model(cfg)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert millions < 0.2 * SPEC_PARAMS_M["sta"]  # "light": ResNet-18 class, narrow audio net


@pytest.mark.parametrize("name", TINY)
def test_tiny_config_is_small_and_round_trips(name: str) -> None:
    cfg = get_config(name)
    assert cfg.input_size in (64, 96)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert type(model) is CLASS_OF[cfg.arch]
    assert sum(p.numel() for p in model.parameters()) < 100_000
    again = ModelConfig.from_json(cfg.to_json())
    assert again == cfg
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in build_model(again).state_dict().items()} == shapes


def test_factory_passes_the_config_through() -> None:
    cfg = get_config("tiny_sta").replace(channels=6, window_offsets=(-1, 0))
    model = build_model(cfg)
    assert model.config is cfg
    assert model.extra_x.out_channels == 6
    assert model.extra_temporal.layers[0].kernel_size == (2, 1, 1)  # the gate spans the 2-frame window
