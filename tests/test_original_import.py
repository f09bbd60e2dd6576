"""stanet-rt import without the fixtures: key accounting, wrappers, refused pickles, compatibility-mode
blocks, and imported (original-mode) students through encode/head and ONNX export."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from stanet_rt.checkpoint import load_checkpoint
from stanet_rt.cli import app
from stanet_rt.config import AUDIO_RESNET18, get_config
from stanet_rt.errors import WeightsError
from stanet_rt.models.backbones import build_audio_net
from stanet_rt.models.blocks import CoAttentionGraph, TemporalGate
from stanet_rt.models.factory import build_model
from stanet_rt.original import PickleRefused, import_checkpoint, read_weight_file


def _vggsound_state() -> OrderedDict[str, torch.Tensor]:
    """A ``vggsound_netvlad.pth.tar`` state dict: our audio net's keys (the published layout) under
    ``audnet.``, plus the 309-way ``fc_`` the embedding does not use."""
    torch.manual_seed(0)
    state = OrderedDict((f"audnet.{k}", v) for k, v in build_audio_net(AUDIO_RESNET18).state_dict().items())
    state["audnet.fc_.weight"] = torch.randn(309, 8192)
    state["audnet.fc_.bias"] = torch.randn(309)
    return state


@pytest.mark.parametrize("wrap", ["model_state_dict", "state_dict", "plain_dataparallel"])
def test_audio_net_import_wrappers_and_dropped(tmp_path: Path, wrap: str) -> None:
    state = _vggsound_state()
    if wrap == "plain_dataparallel":
        payload = OrderedDict((f"module.{k}", v) for k, v in state.items())
    else:
        payload = {wrap: state, "epoch": 3}
    torch.save(payload, tmp_path / "vgg.pth.tar")
    report = import_checkpoint(tmp_path / "vgg.pth.tar", "audio_net", tmp_path / "a.pt")
    assert report.dropped == {"audnet.fc_.": 309 * 8192 + 309}
    assert any("dropped audnet.fc_" in line for line in report.lines())
    model, config, meta = load_checkpoint(tmp_path / "a.pt")
    assert config.original and config.arch == "audio_net" and meta["dropped"] == {"audnet.fc_": 309 * 8193}
    assert torch.equal(model.layer3[0].conv1.weight, state["audnet.layer3.0.conv1.weight"])
    emb = model(torch.randn(1, 1, 257, 48))
    assert emb.shape == (1, 8192)


@pytest.mark.parametrize("change, message", [
    ("missing", "missing key for 'layer2.0.bn1.running_var'"),
    ("unexpected", "unexpected key 'audnet.layer9.weight'"),
    ("shape", "shape mismatch at 'avgpool.centroids'"),
])
def test_key_problems_are_one_line_errors(tmp_path: Path, change: str, message: str) -> None:
    state = _vggsound_state()
    if change == "missing":
        del state["audnet.layer2.0.bn1.running_var"]
    elif change == "unexpected":
        state["audnet.layer9.weight"] = torch.zeros(1)
    else:
        state["audnet.avgpool.centroids"] = torch.zeros(8, 512)
    torch.save({"model_state_dict": state}, tmp_path / "v.pth")
    with pytest.raises(WeightsError, match=message) as err:
        import_checkpoint(tmp_path / "v.pth", "audio_net", tmp_path / "a.pt")
    assert "\n" not in str(err.value) and "v.pth" in str(err.value)
    assert not (tmp_path / "a.pt").exists()


class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


def _torch_zip(path: Path, obj) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("call, name", [(os.system, "posix.system"), (eval, "__builtin__.eval")])
def test_crafted_pickles_are_refused_without_running(tmp_path: Path, call, name: str) -> None:
    marker = tmp_path / "ran"
    arg = f"touch {marker}" if call is os.system else f"open({str(marker)!r}, 'w')"
    src = _torch_zip(tmp_path / "27001.pt", {"state_dict": _Evil(call, arg)})
    with pytest.raises(PickleRefused, match=f"names global '{name}'") as err:
        read_weight_file(src)
    assert "\n" not in str(err.value)
    # the legacy (non-zip) path goes through torch's weights-only loader, which refuses it too
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps(_Evil(call, arg), protocol=2))
    with pytest.raises(WeightsError):
        read_weight_file(legacy)
    res = CliRunner().invoke(app, ["import", str(src), "--arch", "audio_switch", "--out", str(tmp_path / "o.pt")])
    assert res.exit_code != 0
    assert not marker.exists()


def test_cli_import_errors_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "stanet_rt.cli", "import", str(tmp_path / "none.pth"), "--arch", "sta",
           "--out", str(tmp_path / "o.pt")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "none.pth" in res.stderr
    torch.save(_vggsound_state(), tmp_path / "v.pth")
    cmd[4:7] = [str(tmp_path / "v.pth"), "--arch", "sta_plus"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "--switch 27001.pt" in res.stderr


def test_temporal_gate_view_stacking_matches_the_original_layout() -> None:
    b, t, c, h, w = 1, 3, 4, 2, 2
    window = torch.arange(b * t * c * h * w, dtype=torch.float32).view(b, t, c, h, w)
    ours = TemporalGate(c, c, t)
    assert torch.equal(ours.arrange(window), window.permute(0, 2, 1, 3, 4))
    gate = TemporalGate(c, c, t, original=True, order=(2, 1, 0))
    stack = gate.arrange(window)
    cat = window[:, [2, 1, 0]]
    for cc in range(c):
        for tau in range(t):  # element [c, tau] is frame (3c + tau) // C, channel (3c + tau) % C
            flat = t * cc + tau
            assert torch.equal(stack[0, cc, tau], cat[0, flat // c, flat % c])
    assert not any(isinstance(m, torch.nn.ReLU) for m in gate.layers)
    assert sum(isinstance(m, torch.nn.ReLU) for m in ours.layers) == 2
    with pytest.raises(ValueError, match="permutation"):
        TemporalGate(c, c, 3, original=True, order=(0, 0, 1))


def test_original_configs_keep_the_original_layout() -> None:
    assert not get_config("sta").original and not get_config("sta_plus").original
    with torch.device("meta"):
        plus = build_model(get_config("sta_plus_original"))
        ours = build_model(get_config("sta_plus"))
    assert plus.extra_graph.gate is not plus.extra_attention.gate  # the original's own extra_gate
    assert ours.extra_graph.gate is ours.extra_attention.gate
    assert plus.extra_graph.proja.bias is not None and ours.extra_graph.proja.bias is None
    assert isinstance(CoAttentionGraph(4, proj_bias=True).projb.bias, torch.nn.Parameter)
    with pytest.raises(ValueError, match="original=True"):
        get_config("sta").replace(original=True, window_offsets=(-2, -1, 0))
    with pytest.raises(ValueError, match="no original code"):
        get_config("stanet_lite").replace(original=True, av_fusion="stanet", audio_envelope_bins=0)


@pytest.mark.parametrize("name", ["tiny_sta_original", "tiny_sta_plus_original"])
def test_original_mode_students_keep_the_encode_head_contract(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(get_config(name)).eval()
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            m.reset_parameters()
    t = len(model.window_offsets)
    frames = torch.randn(2, t, 3, 64, 64)
    spec = torch.randn(2, t, 1, 257, 48)
    with torch.no_grad():
        out = model(frames, spec)
        emb = model.encode_audio(spec.flatten(0, 1))
        feats = model.encode(frames.flatten(0, 1), emb)
        window = {k: v.unflatten(0, (2, t)) for k, v in feats.items()}
        assert torch.allclose(model.head(window, (64, 64)), out, atol=1e-5)


def test_original_mode_students_export_with_parity(tmp_path: Path) -> None:
    """Graphs with parity, FP32 and FP16. A tiny random STA+'s head map is nearly flat (0.2735..0.2799, about
    25 FP16 steps): its FP16 graph's rounding alone gives CC 0.9989 on the real inputs, so it passes on the
    FP16-step criterion (max abs error 0.8 step), which the report names."""
    from stanet_rt.export.api import export_model

    torch.manual_seed(0)
    for name in ("tiny_sta_original", "tiny_sta_plus_original"):
        model = build_model(get_config(name)).eval()
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
                m.reset_parameters()
        report = export_model(model, tmp_path / name, fp16=True, tensorrt=False, progress=False)
        assert report.passed, [r for r in report.parity if not r.passed]
        if name == "tiny_sta_plus_original":
            assert any("FP16 steps" in r.note for r in report.parity if r.part == "head")


def test_module_pickle_reader_on_a_real_torch_archive(tmp_path: Path) -> None:
    """A whole module saved by torch.save (nn classes only, all allowed) reads back as its state dict."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU())
    torch.save(net, tmp_path / "m.pt")
    got = read_weight_file(tmp_path / "m.pt")
    assert got.kind.startswith("module pickle (torch.nn.modules.container.Sequential)")
    assert list(got.state_dict) == list(net.state_dict())
    assert all(torch.equal(got.state_dict[k], v) for k, v in net.state_dict().items())
    buf = io.BytesIO()
    torch.save(torch.nn.GELU(), buf)  # a class outside the list
    (tmp_path / "g.pt").write_bytes(buf.getvalue())
    with pytest.raises(PickleRefused, match="torch.nn.modules.activation.GELU"):
        read_weight_file(tmp_path / "g.pt")
