"""``forward(model, inputs)``: the original test forward of an imported model, on a fixture's arrays.

``inputs`` are the arrays of a parity fixture's ``<model>.inputs.npz`` (same names and layout: the
exact tensors the original forward received, ImageNet-normalised float32); the result holds the
``<model>.outputs.npz`` arrays this reproduces, as numpy:

- STA (``sta``): inputs ``img0..2`` (1, 3, 356, 356) in slot order t, t-1, t+1 and ``aud0..2``
  (1, 257, 48); outputs ``out0_1, out0_0, out1_1, out1_0, out2_0, out2_1`` (1, 1, 356, 356) logits,
  ``final_float`` and ``final_u8`` (of ``out0_0``), ``final_u8_all`` (6, 356, 356) and
  ``audio_embedding`` (3, 8192).
- STA+ (``sta_plus``): inputs ``img{k}_{j}`` (1, 3, 256, 256) = frame t + 3(k-1) + (j-1), ``aud{k}_1``
  and ``imgswitch{k}`` (1, 3, 256, 256); outputs ``map0..2`` (1, 1, 256, 256), ``final_float``,
  ``final_pre_resize_u8`` and ``final_u8`` (356 x 356, of ``map1``), the same under ``swoff.``
  (switches forced to 0), ``x{k}_{j}ss`` / ``x{k}_1sss`` (1, 28) GAP logits, ``switch_bits`` (3,),
  ``switch_logits`` (3, 2), ``switch_audio_embedding`` and ``audio_embedding`` (3, 8192).
- AudioSwitch (``audio_switch``): inputs ``audio`` (1, 1, 257, 48), ``video`` (1, 3, 356, 356); outputs
  ``logits`` (1, 2), ``switch_bit`` (1, 1, 1, 1), ``embedding`` (1, 8192).
- audio net (``audio_net``): input ``aud`` (1, 1, 257, 48); output ``embedding`` (1, 8192) (not
  ``logits309``: the 309-way classifier is dropped on import).

The model must be in compatibility mode (``config.original``: an imported checkpoint). STA runs through
the same ``encode`` per frame and window decoder as ``stanet-rt run``; the original's other two frames
(t-1, t+1) are decoded with their own frame orders. The 8-bit maps follow the test scripts:
``rint(sigmoid / (max + 1e-8) * 255)`` in float32, then OpenCV's INTER_LINEAR resize to 356 x 356
(:func:`~stanet_rt.original.cv2_resize.resize_linear_u8`, bit-exact).

Numerics: STA+'s graph (three rounds of FRL thresholds) amplifies float32 rounding in the VGG16 trunk. The
parity fixtures were made where oneDNN ran its AVX2 kernels; with ``ONEDNN_MAX_CPU_ISA=AVX2`` in the
environment before Python starts, the trunk reproduces their CAMs bit for bit and the maps come within
4e-4, while AVX-512 kernels leave the maps up to ~1.4e-2 apart (README, "Use the authors' weights").

Imports numpy, torch and ``stanet_rt``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from stanet_rt.config import ModelConfig
from stanet_rt.errors import InputError
from stanet_rt.models.blocks import gap_logits
from stanet_rt.original.cv2_resize import resize_linear_u8

WRITTEN_SIZE = 356  # both test scripts write 356 x 356 images
# STA slots (img0 = t, img1 = t-1, img2 = t+1) -> index in our window (offsets -1, 0, 1).
STA_SLOT_TO_WINDOW = (1, 0, 2)
# The frame order the original STA concatenated for each output slot's temporal gate, in slots
# (``incat0/1/2`` of ``STAmodel.py``): (t+1, t, t-1), (t, t-1, t+1), (t-1, t+1, t).
STA_CAT_ORDERS = ((2, 0, 1), (0, 1, 2), (1, 2, 0))
# STA's return order: (slot, level) with level 1 = ``extra_out1`` (coarse), 0 = ``extra_out0`` (fine).
STA_RETURN_ORDER = ((0, 1), (0, 0), (1, 1), (1, 0), (2, 0), (2, 1))


def saliency_u8(logits: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) logits -> (value before rounding (float32), 8-bit map) as the test scripts write them."""
    att = torch.sigmoid(logits).detach().cpu().numpy().astype(np.float32)
    # float32 throughout, as NumPy 2 evaluates ``att / (att.max() + 1e-8) * 255``
    value = att / (np.float32(att.max()) + np.float32(1e-8)) * np.float32(255)
    return value, np.rint(value).astype(np.uint8)


def _tensor(inputs: Mapping[str, np.ndarray], name: str) -> Tensor:
    if name not in inputs:
        raise InputError(f"inputs lack {name!r} (have {', '.join(sorted(inputs))})")
    return torch.from_numpy(np.ascontiguousarray(inputs[name], dtype=np.float32))


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _forward_sta(model: nn.Module, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    imgs = [_tensor(inputs, f"img{s}") for s in range(3)]
    auds = [_tensor(inputs, f"aud{s}").unsqueeze(1) for s in range(3)]  # the forward unsqueezed them
    window_slots = sorted(range(3), key=lambda s: STA_SLOT_TO_WINDOW[s])  # window index -> slot
    emb = model.encode_audio(torch.cat([auds[s] for s in window_slots]))
    feats = model.encode(torch.cat([imgs[s] for s in window_slots]), emb)
    window = {k: v.unsqueeze(0) for k, v in feats.items()}  # (1, 3, ...)
    size = tuple(imgs[0].shape[-2:])
    maps: dict[tuple[int, int], Tensor] = {}
    for slot in range(3):
        order = tuple(STA_SLOT_TO_WINDOW[s] for s in STA_CAT_ORDERS[slot])
        maps[slot, 1], maps[slot, 0] = model._decode(window, size, centre=STA_SLOT_TO_WINDOW[slot], order=order)
    out = {f"out{s}_{lvl}": _np(maps[s, lvl]) for s, lvl in STA_RETURN_ORDER}
    out["final_float"], u8 = saliency_u8(maps[0, 0][0, 0])
    out["final_u8"] = resize_linear_u8(u8, WRITTEN_SIZE, WRITTEN_SIZE)
    out["final_u8_all"] = np.stack([resize_linear_u8(saliency_u8(maps[key][0, 0])[1], WRITTEN_SIZE, WRITTEN_SIZE)
                                    for key in STA_RETURN_ORDER])
    out["audio_embedding"] = _np(emb[list(STA_SLOT_TO_WINDOW)])
    return out


def _staplus_maps(model: nn.Module, window: dict[str, Tensor], size: tuple[int, int], prefix: str,
                  out: dict[str, np.ndarray]) -> tuple[Tensor, Tensor]:
    nodes, x = model.graph_nodes(window)
    logits = model.readout(nodes, x, size)  # (3, 1, H, W)
    for k in range(3):
        out[f"{prefix}map{k}"] = _np(logits[k : k + 1])
    out[f"{prefix}final_float"], u8 = saliency_u8(logits[1, 0])
    out[f"{prefix}final_pre_resize_u8"] = u8
    out[f"{prefix}final_u8"] = resize_linear_u8(u8, WRITTEN_SIZE, WRITTEN_SIZE)
    return nodes, x


def _forward_sta_plus(model: nn.Module, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    frames = torch.cat([_tensor(inputs, f"img{k}_{j}") for k in range(3) for j in range(3)])  # t-4 .. t+4
    auds = torch.cat([_tensor(inputs, f"aud{k}_1") for k in range(3)]).unsqueeze(1)
    out: dict[str, np.ndarray] = {}
    emb = model.audio_net(auds)
    if model.switch is not None:
        switch_emb = model.switch.audio_net(auds)
        logits = model.switch(torch.cat([_tensor(inputs, f"imgswitch{k}") for k in range(3)]), switch_emb)
        bits = model.switch.decision(logits)  # (3, 1)
        out["switch_logits"], out["switch_bits"] = _np(logits), _np(bits[:, 0])
        out["switch_audio_embedding"] = _np(switch_emb)
    else:
        bits = torch.ones(3, 1)
    out["audio_embedding"] = _np(emb)
    # each triplet's frames carry their node's audio and switch; only the centre's gate is read
    feats = model.encode_gated(frames, emb.repeat_interleave(3, dim=0), bits.repeat_interleave(3, dim=0))
    window = {k: v.unsqueeze(0) for k, v in feats.items()}  # (1, 9, ...)
    size = tuple(frames.shape[-2:])
    nodes, x = _staplus_maps(model, window, size, "", out)
    cams = gap_logits(feats["x"])  # (9, K) GAP logits of every frame
    for k in range(3):
        for j in range(3):
            out[f"x{k}_{j}ss"] = _np(cams[3 * k + j : 3 * k + j + 1])
        out[f"x{k}_1sss"] = _np(gap_logits(nodes[0, k : k + 1]))
    _staplus_maps(model, {**window, "av": torch.zeros_like(window["av"])}, size, "swoff.", out)
    return out


def _forward_audio_switch(model: nn.Module, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    audio, video = _tensor(inputs, "audio"), _tensor(inputs, "video")
    emb = model.audio_net(audio)
    logits = model(video, emb)
    return {"logits": _np(logits), "switch_bit": _np(model.decision(logits).view(-1, 1, 1, 1)),
            "embedding": _np(emb)}


def _forward_audio_net(model: nn.Module, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"embedding": _np(model(_tensor(inputs, "aud")))}


_FORWARDS = {"sta": _forward_sta, "sta_plus": _forward_sta_plus, "audio_switch": _forward_audio_switch,
             "audio_net": _forward_audio_net}


def forward(model: nn.Module, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the original test forward of ``model`` (an imported, ``config.original`` model) on the arrays of
    a fixture's ``<model>.inputs.npz``; returns the ``<model>.outputs.npz`` arrays it reproduces (see the
    module table). Runs in eval mode under ``no_grad`` on the model's device (CPU)."""
    config: ModelConfig | None = getattr(model, "config", None)
    if config is None or not config.original:
        raise InputError("stanet_rt.original.forward needs a model in compatibility mode (config.original), "
                         "e.g. one loaded from a checkpoint written by `stanet-rt import`")
    model.eval()
    with torch.no_grad():
        return _FORWARDS[config.arch](model, inputs)
