"""``stanet-rt import``: the authors' weight files -> an ordinary stanet-rt checkpoint.

Sources (read by :func:`~stanet_rt.original.pickle_reader.read_weight_file`, no original code needed):

| ``arch`` | SRC | extra files |
|---|---|---|
| ``sta`` | ``STANet.pth`` (``DataParallel`` state dict of ``STAmodel.STANetModel``) | ``--audio`` (if no audio) |
| ``sta_plus`` | ``STAGCN.pth`` (``DataParallel`` state dict of ``modelCGCN.CGCN``) | ``--switch 27001.pt`` (required) |
| ``audio_switch`` | ``27001.pt`` (whole pickled ``models.att_Model``) | |
| ``audio_net`` | ``vggsound_netvlad.pth.tar`` (``model_state_dict``, keys ``audnet.*``) | |

Every key of the source is accounted for: it maps to a key of our model (:data:`KEY_MAPS`), or it
belongs to a module the original declares but never runs in its test forward (:data:`DROPPED`; dropped
and reported with its parameter count), or the import fails with one line naming it. Every key of our
model must be filled, with the same shape. The output is a normal checkpoint
(``stanet_rt.checkpoint.save_checkpoint``) whose config has ``original=True`` (``sta_original``,
``sta_plus_original``, ``audio_switch_original``, ``audio_net``), so ``run`` / ``export`` / ``bench`` /
``info`` take it like any other.

Imports torch and ``stanet_rt`` core modules.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stanet_rt.config import ModelConfig, get_config
from stanet_rt.errors import WeightsError
from stanet_rt.original.pickle_reader import read_weight_file

IMPORT_ARCHS = ("sta", "sta_plus", "audio_switch", "audio_net")
CONFIG_OF = {"sta": "sta_original", "sta_plus": "sta_plus_original", "audio_switch": "audio_switch_original",
             "audio_net": "audio_net"}

# Children of the original ``nn.Sequential(*list(net.children())[:n])`` trunks -> our attribute names.
_RESNET_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
_AUDIO_CHILDREN = {**_RESNET_CHILDREN, "8": "avgpool"}  # avgpool = NetVLAD (its ``conv`` and ``centroids``)


def _children(src: str, dst: str, children: dict[str, str]) -> dict[str, str]:
    return {f"{src}.{i}.": f"{dst}.{name}." for i, name in children.items()}


def _av(prefix: str) -> dict[str, str]:
    """AVfusion's four modules (flat attributes in the original) -> our ``extra_av`` block."""
    return {f"{n}.": f"{prefix}.{n}." for n in ("extra_gateav", "extra_lineara", "extra_linearv", "extra_convv")}


_SWITCH = {
    **_children("layerA", "audio_net", _AUDIO_CHILDREN),
    **_children("layerV", "backbone", _RESNET_CHILDREN),
    "layerA_d.": "extra_audio.",
    "layerV_d.": "extra_visual.",
    "extra_bilinear.weight": "extra_bilinear",  # nn.Bilinear (out, in1, in2) = our einsum's (o, i, j)
    "extra_bilinear.bias": "extra_bilinear_bias",
    "fc.": "extra_fc.",
}
_ATTENTION = {"extra_gates.": "extra_attention.gate.", "extra_projf.": "extra_attention.f.",
              "extra_projg.": "extra_attention.g.", "extra_projh.": "extra_attention.h."}

# Original key prefix (ending in '.') or exact key -> ours. Longest match wins.
KEY_MAPS: dict[str, dict[str, str]] = {
    "sta": {
        **_children("features0", "backbone", {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2"}),
        "features1.": "backbone.layer3.",
        "features2.": "backbone.layer4.",
        **_children("audio_model", "audio_net", _AUDIO_CHILDREN),
        "extra_convs.": "extra_x.",
        "extra_convsd1.": "extra_s1.",
        "extra_convsd0.": "extra_s0.",
        "extra_conv_fusion.": "extra_fuse.",
        "extra_ConvGRU.": "extra_gru.",
        **_ATTENTION,
        **_av("extra_av"),
        "extra_refineST.": "extra_temporal.layers.",
        "extra_refine1.0.": "extra_refine1.",
        "extra_refine0.0.": "extra_refine0.",
        "extra_out1.": "extra_out1.",
        "extra_out0.": "extra_out0.",
    },
    "sta_plus": {
        "features.": "backbone.features.",
        **_children("audio_model", "audio_net", _AUDIO_CHILDREN),
        "extra_convs.": "extra_cam.layers.",
        "extra_refineST.": "extra_temporal.layers.",
        "extra_conv_stafusion.": "extra_fuse.",
        **_ATTENTION,
        "extra_gate.": "extra_graph.gate.",
        "extra_ConvGRU.": "extra_graph.gru.",
        "extra_conv_fusion.": "extra_graph.conv_fusion.",
        "extra_proja.": "extra_graph.proja.",
        "extra_projb.": "extra_graph.projb.",
        "extra_conv1.": "extra_readout.0.",
        "extra_bn1.": "extra_readout.1.",
        "extra_main_classifier1.": "extra_readout.3.",
        **_av("extra_av"),
    },
    "audio_switch": _SWITCH,
    "audio_net": {f"audnet.{n}.": f"{n}." for n in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4",
                                                    "avgpool")},
}
# Modules the original declares (so their weights sit in the files) but never runs in its test forward.
DROPPED: dict[str, tuple[str, ...]] = {
    "sta": ("extra_audio_d.", "extra_gate.", "extra_refineSA.", "extra_conv_stafusion."),
    "sta_plus": ("extra_audio_d.", "extra_bilinear.", "extra_refineSA."),
    "audio_switch": (),
    "audio_net": ("audnet.fc_.",),  # the 309-way VGGSound classifier; the embedding stops before it
}


@dataclass
class ImportReport:
    """What :func:`import_checkpoint` did."""

    out: Path
    config: ModelConfig
    sources: dict[str, str] = field(default_factory=dict)  # role -> "path (kind)"
    loaded: int = 0  # tensors written
    dropped: dict[str, int] = field(default_factory=dict)  # original module prefix -> parameters

    def lines(self) -> list[str]:
        out = [f"wrote {self.out} (config {self.config.name}, {self.loaded} tensors)"]
        out += [f"  {role}: {src}" for role, src in self.sources.items()]
        for prefix, n in self.dropped.items():
            out.append(f"  dropped {prefix.rstrip('.')} ({n:,} values): declared by the original, never run")
        return out


def _map_key(key: str, table: dict[str, str]) -> str | None:
    best = None
    for src in table:
        if (key == src or (src.endswith(".") and key.startswith(src))) and (best is None or len(src) > len(best)):
            best = src
    if best is None:
        return None
    return table[best] + key[len(best):] if best.endswith(".") else table[best]


def _strip_module(state: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Remove one ``module.`` (DataParallel) prefix when every key carries it."""
    if state and all(k.startswith("module.") for k in state):
        return OrderedDict((k[len("module."):], v) for k, v in state.items())
    return OrderedDict(state)


def map_state_dict(state: dict[str, torch.Tensor], arch: str, source: str, prefix: str = "",
                   dropped: dict[str, int] | None = None) -> OrderedDict[str, torch.Tensor]:
    """Original keys -> ours (each prefixed with ``prefix``); dropped modules counted into ``dropped``.
    A key with no rule raises :class:`WeightsError` naming it."""
    table, drop = KEY_MAPS[arch], DROPPED[arch]
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in _strip_module(state).items():
        gone = next((d for d in drop if key.startswith(d)), None)
        if gone is not None:
            if dropped is not None:
                dropped[gone] = dropped.get(gone, 0) + value.numel()
            continue
        ours = _map_key(key, table)
        if ours is None:
            raise WeightsError(f"{source}: unexpected key {key!r} (not a {arch} weight of the original)")
        out[prefix + ours] = value
    return out


def _check_against(model_state: dict[str, torch.Tensor], mapped: dict[str, torch.Tensor], source: str) -> None:
    for key, ref in model_state.items():
        if key not in mapped:
            raise WeightsError(f"{source}: missing key for {key!r}")
        if tuple(mapped[key].shape) != tuple(ref.shape):
            raise WeightsError(f"{source}: shape mismatch at {key!r}: file {tuple(mapped[key].shape)}, "
                               f"model {tuple(ref.shape)}")
    extra = [k for k in mapped if k not in model_state]
    if extra:
        raise WeightsError(f"{source}: unexpected key {extra[0]!r} for this model")


def _read(path: str | Path, role: str, sources: dict[str, str]) -> OrderedDict[str, torch.Tensor]:
    wf = read_weight_file(path)
    sources[role] = f"{path} ({wf.kind})"
    return wf.state_dict


def import_checkpoint(src: str | Path, arch: str, out: str | Path, switch: str | Path | None = None,
                      audio: str | Path | None = None) -> ImportReport:
    """Convert the authors' ``src`` (see the module table) into the stanet-rt checkpoint ``out``.

    ``switch``: the AudioSwitch file (``27001.pt``), required for ``sta_plus``. ``audio``: a
    ``vggsound_netvlad.pth.tar`` for the audio net when ``src`` has none (``sta`` / ``sta_plus``).
    Raises :class:`~stanet_rt.errors.WeightsError` (one line) on any key problem.
    """
    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.models.factory import build_model

    if arch not in IMPORT_ARCHS:
        raise WeightsError(f"unknown arch {arch!r}; expected one of {', '.join(IMPORT_ARCHS)}")
    if arch == "sta_plus" and switch is None:
        raise WeightsError(f"{src}: STA+ needs its AudioSwitch: pass --switch 27001.pt")
    if switch is not None and arch != "sta_plus":
        raise WeightsError(f"{switch}: --switch belongs to --arch sta_plus only")
    if audio is not None and arch not in ("sta", "sta_plus"):
        raise WeightsError(f"{audio}: --audio belongs to --arch sta / sta_plus only")
    config = get_config(CONFIG_OF[arch])
    report = ImportReport(Path(out), config)
    state = _read(src, "source", report.sources)
    mapped = map_state_dict(state, arch, str(src), dropped=report.dropped)
    if audio is not None:
        if any(k.startswith("audio_net.") for k in mapped):
            raise WeightsError(f"{src}: already holds the audio net (audio_model.*); drop --audio {audio}")
        mapped.update(map_state_dict(_read(audio, "audio", report.sources), "audio_net", str(audio),
                                     prefix="audio_net.", dropped=report.dropped))
    if switch is not None:
        mapped.update(map_state_dict(_read(switch, "switch", report.sources), "audio_switch", str(switch),
                                     prefix="switch.", dropped=report.dropped))
    with torch.device("meta"):
        model = build_model(config)
    _check_against(model.state_dict(), mapped, str(src))
    model.load_state_dict(mapped, strict=True, assign=True)
    meta = {"imported": dict(report.sources), "arch": arch,
            "dropped": {k.rstrip("."): n for k, n in report.dropped.items()}}
    save_checkpoint(out, model, meta=meta)
    report.loaded = len(mapped)
    return report
