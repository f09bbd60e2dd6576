"""The authors' forward, reproduced: fixture weights in the original layout go through `stanet-rt import`,
and `stanet_rt.original.forward` matches the original code's stored outputs.

The fixtures (``../shared/reference/original-parity``; ``$STANET_ORIGINAL_PARITY`` points at another
set, e.g. the held-out one) hold no weights: ``_original_fixtures`` rebuilds the authors' files from
the fill rule. Tolerances (issue 12): float logits 5e-4 abs (STA, AudioSwitch, audio net), 2e-3 for
STA+'s maps, 8-bit maps within one level.

STA+ end to end depends on the CPU's float32 conv kernels: the fixtures were made on a CPU where oneDNN
ran its AVX2 kernels. With ``ONEDNN_MAX_CPU_ISA=AVX2`` our VGG16 trunk gives the fixture's CAMs bit for
bit and the maps meet the issue's bounds (:func:`test_sta_plus_end_to_end_on_the_fixture_kernels`, run in
a subprocess so the variable takes effect). With AVX-512 kernels the CAMs differ by ~9e-5 (rounding only:
a float64 trunk is as far from the fixture's, and ours in float32 is 2e-5 from float64), and STA+'s graph
amplifies that (three rounds of FRL thresholds): that run is held to a measured, looser bound
(:data:`STA_PLUS_NATIVE`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import _original_fixtures as fx
import numpy as np
import pytest
import torch

from stanet_rt.checkpoint import load_checkpoint
from stanet_rt.original import forward, import_checkpoint, read_weight_file, resize_linear_u8

pytestmark = pytest.mark.skipif(fx.parity_missing_reason() is not None, reason=str(fx.parity_missing_reason()))

LOGIT_TOL = 5e-4
STA_PLUS_TOL = 2e-3
# STA+ end to end with the fixture machine's conv kernels: the bounds.
STA_PLUS_END_TO_END = {"maps_abs": STA_PLUS_TOL, "u8_levels": 1, "u8_share": 1.0}
# ... and with AVX-512 kernels (measured, seed 1234: maps 1.4e-2 max abs on logits up to ~5; 8-bit maps
# off by one level on 1.6 % of the pixels, by two on one pixel of the 356 x 356 image). The bound leaves
# room for the graph's sensitivity on other inputs; an error in the model is O(1).
STA_PLUS_NATIVE = {"maps_abs": 0.1, "u8_levels": 4, "u8_share": 0.05}
# oneDNN's float32 kernels of the machine that made the fixtures (the variable is read once, when oneDNN
# starts, hence the subprocess)
FIXTURE_KERNELS = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
_FORWARD_SCRIPT = """
import sys
import numpy as np
from stanet_rt.checkpoint import load_checkpoint
from stanet_rt.original import forward
model, _, _ = load_checkpoint(sys.argv[1])
with np.load(sys.argv[2]) as data:
    inputs = {k: data[k] for k in data.files}
np.savez(sys.argv[3], **forward(model, inputs))
"""


def _close(ours: np.ndarray, ref: np.ndarray, tol: float, name: str) -> None:
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != {ref.shape}"
    err = float(np.abs(ours.astype(np.float64) - ref.astype(np.float64)).max())
    assert err <= tol, f"{name}: max abs error {err:.3g} > {tol}"


def _u8_close(ours: np.ndarray, ref: np.ndarray, name: str, levels: int = 1) -> None:
    assert ours.dtype == np.uint8 and ours.shape == ref.shape, name
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() <= levels, f"{name}: {int((diff > levels).sum())} pixels off by more than {levels}"


def test_opencv_resize_is_bit_exact() -> None:
    out = fx.arrays("staplus.outputs.npz")
    for prefix in ("", "swoff."):
        got = resize_linear_u8(out[f"{prefix}final_pre_resize_u8"], 356, 356)
        assert np.array_equal(got, out[f"{prefix}final_u8"]), prefix


def test_audio_net(tmp_path) -> None:
    src = fx.write_vggsound(tmp_path / "vggsound_netvlad.pth.tar")
    report = import_checkpoint(src, "audio_net", tmp_path / "audio_net.pt")
    assert list(report.dropped) == ["audnet.fc_."]
    model, _, _ = load_checkpoint(tmp_path / "audio_net.pt")
    got = forward(model, fx.arrays("audionet.inputs.npz"))
    _close(got["embedding"], fx.arrays("audionet.outputs.npz")["embedding"], LOGIT_TOL, "embedding")


@pytest.mark.slow
def test_zero_weight_pickle_reads_without_the_original_code(tmp_path) -> None:
    got = read_weight_file(fx.ZERO_PICKLE)
    info = fx.keys_of("audioswitch")
    assert got.kind.startswith("module pickle (models.att_Model)")
    assert list(got.state_dict) == [r["key"] for r in info["keys"]]
    assert all(tuple(got.state_dict[r["key"]].shape) == tuple(r["shape"]) for r in info["keys"])
    assert all(not t.any() for t in got.state_dict.values())


@pytest.mark.slow
def test_audio_switch_from_the_pickled_module(tmp_path) -> None:
    src = fx.write_switch_pickle(tmp_path / "27001.pt")
    report = import_checkpoint(src, "audio_switch", tmp_path / "switch.pt")
    assert "module pickle (models.att_Model)" in report.sources["source"] and not report.dropped
    model, config, _ = load_checkpoint(tmp_path / "switch.pt")
    assert config.original
    got = forward(model, fx.arrays("audioswitch.inputs.npz"))
    ref = fx.arrays("audioswitch.outputs.npz")
    _close(got["logits"], ref["logits"], LOGIT_TOL, "logits")
    _close(got["embedding"], ref["embedding"], LOGIT_TOL, "embedding")
    assert np.array_equal(got["switch_bit"], ref["switch_bit"])


@pytest.mark.slow
def test_sta(tmp_path) -> None:
    src = fx.write_state_dict("sta", tmp_path / "STANet.pth")
    report = import_checkpoint(src, "sta", tmp_path / "sta.pt")
    assert set(report.dropped) == {"extra_audio_d.", "extra_gate.", "extra_refineSA.", "extra_conv_stafusion."}
    src.unlink()
    model, _, _ = load_checkpoint(tmp_path / "sta.pt")
    got = forward(model, fx.arrays("sta.inputs.npz"))
    ref = fx.arrays("sta.outputs.npz")
    for name in ("out0_1", "out0_0", "out1_1", "out1_0", "out2_0", "out2_1", "audio_embedding"):
        _close(got[name], ref[name], LOGIT_TOL, name)
    _u8_close(got["final_u8"], ref["final_u8"], "final_u8")
    _u8_close(got["final_u8_all"], ref["final_u8_all"], "final_u8_all")
    # the per-frame encode / window head split (what `stanet-rt run` streams) gives frame t's map
    frames = torch.stack([torch.from_numpy(fx.arrays("sta.inputs.npz")[f"img{s}"][0]) for s in (1, 0, 2)])[None]
    spec = torch.stack([torch.from_numpy(fx.arrays("sta.inputs.npz")[f"aud{s}"]) for s in (1, 0, 2)])[None]
    with torch.no_grad():
        _close(model(frames, spec).numpy(), ref["out0_0"], LOGIT_TOL, "head(encode) out0_0")


@pytest.fixture(scope="module")
def sta_plus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("staplus")
    src = fx.write_state_dict("staplus", tmp / "STAGCN.pth")
    switch = fx.write_switch_pickle(tmp / "27001.pt")
    report = import_checkpoint(src, "sta_plus", tmp / "sta_plus.pt", switch=switch)
    src.unlink()
    switch.unlink()
    model, _, _ = load_checkpoint(tmp / "sta_plus.pt")
    return model, report, tmp / "sta_plus.pt"


def _window_with_original_cams(model, inputs: dict, ref: dict, on: bool) -> dict:
    frames = torch.cat([torch.from_numpy(inputs[f"img{k}_{j}"]) for k in range(3) for j in range(3)])
    auds = torch.cat([torch.from_numpy(inputs[f"aud{k}_1"]) for k in range(3)]).unsqueeze(1)
    bits = torch.from_numpy(ref["switch_bits"])[:, None] * float(on)
    with torch.no_grad():
        emb = model.audio_net(auds).repeat_interleave(3, dim=0)
        feats = model.encode_gated(frames, emb, bits.repeat_interleave(3, dim=0))
    feats["x"] = torch.from_numpy(ref["int.extra_convs"].reshape(9, *feats["x"].shape[1:]))
    return {k: v.unsqueeze(0) for k, v in feats.items()}


@pytest.mark.slow
def test_sta_plus_graph_and_readout_from_the_original_cams(sta_plus) -> None:
    model, report, _ = sta_plus
    assert set(report.dropped) == {"extra_audio_d.", "extra_bilinear.", "extra_refineSA."}
    inputs, ref = fx.arrays("staplus.inputs.npz"), fx.arrays("staplus.outputs.npz")
    for prefix, on in (("", True), ("swoff.", False)):
        window = _window_with_original_cams(model, inputs, ref, on)
        with torch.no_grad():
            nodes, x = model.graph_nodes(window)
            maps = model.readout(nodes, x, (256, 256)).numpy()
            head = model.head(window).numpy()
        for k in range(3):
            _close(maps[k : k + 1], ref[f"{prefix}map{k}"], STA_PLUS_TOL, f"{prefix}map{k}")
        _close(head, ref[f"{prefix}map1"], STA_PLUS_TOL, f"{prefix}head")
        if on:
            for k in range(3):
                got = nodes[0, k].mean(dim=(-2, -1))[None].numpy()
                _close(got, ref[f"x{k}_1sss"], STA_PLUS_TOL, f"x{k}_1sss")


def _check_sta_plus_end_to_end(got: dict, ref: dict, bounds: dict) -> None:
    assert np.array_equal(got["switch_bits"], ref["switch_bits"])
    for name in ("switch_logits", "switch_audio_embedding", "audio_embedding",
                 *(f"x{k}_{j}ss" for k in range(3) for j in range(3))):
        _close(got[name], ref[name], LOGIT_TOL, name)
    for k in range(3):
        _close(got[f"x{k}_1sss"], ref[f"x{k}_1sss"], bounds["maps_abs"], f"x{k}_1sss")
    for prefix in ("", "swoff."):
        for k in range(3):
            _close(got[f"{prefix}map{k}"], ref[f"{prefix}map{k}"], bounds["maps_abs"], f"{prefix}map{k}")
        for name in ("final_pre_resize_u8", "final_u8"):
            ours, theirs = got[prefix + name], ref[prefix + name]
            _u8_close(ours, theirs, prefix + name, bounds["u8_levels"])
            assert (ours != theirs).mean() <= bounds["u8_share"], prefix + name


def _forward_in_subprocess(checkpoint: Path, inputs: str, out: Path, env: dict[str, str]) -> dict[str, np.ndarray]:
    """``original.forward`` of ``checkpoint`` on the fixture's ``inputs`` in a fresh process with ``env``."""
    subprocess.run([sys.executable, "-c", _FORWARD_SCRIPT, str(checkpoint), str(fx.PARITY / inputs), str(out)],
                   env={**os.environ, **env}, check=True, timeout=900)
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.slow
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="the fixture's conv kernels are oneDNN's AVX2 ones: needs an x86 CPU with AVX2")
def test_sta_plus_end_to_end_on_the_fixture_kernels(sta_plus, tmp_path) -> None:
    _, _, checkpoint = sta_plus
    got = _forward_in_subprocess(checkpoint, "staplus.inputs.npz", tmp_path / "out.npz", FIXTURE_KERNELS)
    ref = fx.arrays("staplus.outputs.npz")
    # (seed 1234: the nine frames' CAMs and GAP logits come out bit for bit the fixture's, maps within 3.8e-4)
    _check_sta_plus_end_to_end(got, ref, STA_PLUS_END_TO_END)


@pytest.mark.slow
def test_sta_plus_end_to_end(sta_plus) -> None:
    """The same on this machine's own kernels (AVX-512 ones move the CAMs by rounding): measured bound."""
    model, _, _ = sta_plus
    _check_sta_plus_end_to_end(forward(model, fx.arrays("staplus.inputs.npz")), fx.arrays("staplus.outputs.npz"),
                               STA_PLUS_NATIVE)
