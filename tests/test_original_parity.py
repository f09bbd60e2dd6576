"""The authors' forward, reproduced: fixture weights in the original layout go through `stanet-rt import`,
and `stanet_rt.original.forward` matches the original code's stored outputs.

The fixtures (``../shared/reference/original-parity``; ``$STANET_ORIGINAL_PARITY`` points at another
set, e.g. the held-out one) hold no weights: ``_original_fixtures`` rebuilds the authors' files from
the fill rule. Tolerances (issue 12): float logits 5e-4 abs (STA, AudioSwitch, audio net), 2e-3 for
STA+'s maps, 8-bit maps within one level.

STA+ measured on this project's CPUs: the VGG16 trunk's CAMs differ from the fixture machine's by ~9e-5
(float32 kernels; a float64 trunk differs from them as much), and STA+'s graph amplifies such noise
(three rounds of FRL thresholds: 1e-5 of noise on the CAMs moves the maps by ~4e-3). So the 2e-3 check
runs on the graph and readout fed with the original's own CAMs (``int.extra_convs``), and the end-to-end
maps are held to the measured bound (see :data:`STA_PLUS_END_TO_END`).
"""

from __future__ import annotations

import _original_fixtures as fx
import numpy as np
import pytest
import torch

from stanet_rt.checkpoint import load_checkpoint
from stanet_rt.original import forward, import_checkpoint, read_weight_file, resize_linear_u8

pytestmark = pytest.mark.skipif(fx.parity_missing_reason() is not None, reason=str(fx.parity_missing_reason()))

LOGIT_TOL = 5e-4
STA_PLUS_TOL = 2e-3
# End-to-end STA+ on a machine whose conv kernels differ from the fixture machine's (measured, seed 1234:
# maps 1.4e-2 max abs on logits up to ~5, 8-bit maps up to 2 levels on 0.4 % of the pixels). The bound
# leaves room for the graph's sensitivity on other inputs; an error in the model is O(1).
STA_PLUS_END_TO_END = {"maps_abs": 0.1, "u8_levels": 4, "u8_share": 0.05}


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
    return model, report


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
    model, report = sta_plus
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


@pytest.mark.slow
def test_sta_plus_end_to_end(sta_plus) -> None:
    model, _ = sta_plus
    got = forward(model, fx.arrays("staplus.inputs.npz"))
    ref = fx.arrays("staplus.outputs.npz")
    assert np.array_equal(got["switch_bits"], ref["switch_bits"])
    for name in ("switch_logits", "switch_audio_embedding", "audio_embedding",
                 *(f"x{k}_{j}ss" for k in range(3) for j in range(3))):
        _close(got[name], ref[name], LOGIT_TOL, name)
    for prefix in ("", "swoff."):
        for k in range(3):
            _close(got[f"{prefix}map{k}"], ref[f"{prefix}map{k}"], STA_PLUS_END_TO_END["maps_abs"], f"{prefix}map{k}")
        for name in ("final_pre_resize_u8", "final_u8"):
            ours, theirs = got[prefix + name], ref[prefix + name]
            _u8_close(ours, theirs, prefix + name, STA_PLUS_END_TO_END["u8_levels"])
            assert (ours != theirs).mean() <= STA_PLUS_END_TO_END["u8_share"], prefix + name
