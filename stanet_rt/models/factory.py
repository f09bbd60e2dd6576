"""``build_model(config)``: the one place that maps a config's ``arch`` to its network class."""

from __future__ import annotations

from torch import nn

from stanet_rt.config import ModelConfig


def build_model(config: ModelConfig) -> nn.Module:
    """Build the network described by ``config`` (random weights; see ``stanet_rt.weights``)."""
    from stanet_rt.models.students import STAPlusStudent, STAStudent
    from stanet_rt.models.switch import AudioSwitch
    from stanet_rt.models.teachers import SCAMTeacher

    if config.arch in ("sta", "stanet_lite"):
        return STAStudent(config)
    if config.arch == "sta_plus":
        return STAPlusStudent(config)
    if config.arch == "audio_switch":
        return AudioSwitch(config, own_audio_net=True)
    if config.arch == "audio_net":  # the VGGSound audio net alone (an imported vggsound_netvlad.pth.tar)
        from stanet_rt.models.backbones import audio_net_of

        net = audio_net_of(config)
        net.config = config
        return net
    return SCAMTeacher(config)
