"""SCAM and SCAM+ teachers: S, SA, ST (spec 3) and S+, SA+, ST+ (spec 4), trained from class tags only.

One :class:`SCAMTeacher` composes the shared blocks per arch instead of six near-copies:

| arch    | trunk            | frames in         | gates on the CAM x          | refinement          |
|---------|------------------|-------------------|-----------------------------|---------------------|
| s       | ResNeXt -> layer3| 1                 | self-attention              | fuse + ConvGRU      |
| sa      | ResNeXt -> layer4| 1 (+ audio)       | self-attention, audio-visual| fuse + ConvGRU      |
| st      | ResNeXt -> layer4| 3 (t-1, t, t+1)   | self-attention, temporal    | fuse + ConvGRU      |
| s_plus  | VGG16-D1         | 3 nodes x 1       | self-attention              | co-attention graph  |
| sa_plus | VGG16-D1         | 3 nodes x 1 (+au) | self-attention, audio-visual| co-attention graph  |
| st_plus | VGG16-D1         | 3 nodes x 3       | self-attention, temporal    | graph (no ConvGRU)  |

Input: frames (B, T, 3, H, W) (T = len(window_offsets); ST: t-1, t, t+1 in temporal order; "+":
3 nodes of 1 frame (ST+: 3 triplets, each in temporal order) with the anchor node first), optional
spectrograms (B, T, 1, 257, 48). Output: :class:`TeacherOutputs`. Loss (spec): S/SA: MLSM(raw) +
MLSM(refined); ST and the "+" models: 0.4 * sum MLSM(raw) + sum MLSM(refined/graph).

As in the original: SA+'s "raw" maps (and logits) are taken after the audio fusion (spec 4.3), the
other branches' straight from the CAM head; an S+ node is ReLU(x + SelfAttGate(x)) with no fusion
conv. :func:`cam_for_class` is the CAM export rule (``SCAMTeacher.cam`` calls it).

Differences from the original, on purpose: one gate formula ReLU(x + x * gate) for every branch (S's
original concatenated [x, gate(x)] without it); S+ keeps the raw-CAM term in its exported CAM (its
``map_1`` was never assigned, spec 9.1.6); the ST temporal gate of frame i stacks (i-1, i, i+1) with
edge frames repeated (the original used three ad-hoc orderings over a `.view`-scrambled tensor);
declared-but-unused modules (Aup, extra_audio_d, S+'s extra_conv_stfusion, ...) are not built.

Imports torch and ``stanet_rt.{config,models}``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stanet_rt.config import ModelConfig
from stanet_rt.models.backbones import audio_net_of, build_backbone
from stanet_rt.models.blocks import (
    AVFusion,
    CAMHead,
    CoAttentionGraph,
    ConvGRUCell,
    SelfAttentionGate,
    TemporalGate,
    gap_logits,
    gated_residual,
    init_heads,
)

PLUS_ARCHS = ("s_plus", "sa_plus", "st_plus")


class TeacherOutputs(NamedTuple):
    """raw_cams (B, T, K, h, w) per input frame; refined_cams (B, R, K, h, w) per target (S/SA: the
    frame, ST: each of the 3 frames, "+": each graph node); logits are their GAP, (B, T|R, K).
    ``centre`` indexes the anchor (frame t) in the refined axis and ``raw_centre`` in the raw axis."""

    raw_logits: Tensor
    refined_logits: Tensor
    raw_cams: Tensor
    refined_cams: Tensor
    centre: int
    raw_centre: int


class SCAMTeacher(nn.Module):
    """A SCAM (s, sa, st) or SCAM+ (s_plus, sa_plus, st_plus) teacher; see the module table."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        arch = config.arch
        if arch not in ("s", "sa", "st", *PLUS_ARCHS):
            raise ValueError(f"{arch!r} is not a teacher arch")
        self.config = config
        self.plus = arch in PLUS_ARCHS
        self.temporal = arch in ("st", "st_plus")
        self.uses_audio = arch in ("sa", "sa_plus")
        if self.plus and len(config.window_offsets) != 3 * self.frames_per_node:
            raise ValueError(f"{arch} reads 3 graph nodes of {self.frames_per_node} frame(s): window_offsets "
                             f"must have {3 * self.frames_per_node} entries, got {config.window_offsets}")
        k = config.num_classes
        self.backbone = build_backbone(config.backbone, num_stages=3 if arch == "s" else None)
        vis = self.backbone.channels[-1]
        self.extra_cam = CAMHead(vis, k, 0 if arch == "s" else config.head_depth, config.head_width)
        self.extra_attention = SelfAttentionGate(k)
        self.audio_net = None
        if self.uses_audio:
            if config.audio_backbone is None:
                raise ValueError(f"{arch} needs an audio backbone")
            self.audio_net = audio_net_of(config)
            self.extra_av = AVFusion(vis, self.audio_net.out_dim, k, config.av_dim)
        if self.temporal:
            self.extra_temporal = TemporalGate(k, k, frames=3)
        n_terms = 1 + int(self.uses_audio) + int(self.temporal)
        self.extra_fuse: nn.Conv2d | None = None
        if n_terms > 1 or not self.plus:
            self.extra_fuse = nn.Conv2d(n_terms * k, k, 3 if (self.temporal or self.plus) else 1,
                                        padding=1 if (self.temporal or self.plus) else 0)
        # S+ has no fusion conv: its graph node is the attention term ReLU(x + SelfAttGate(x)) itself
        # (spec 4.1); the original's fusion conv there (extra_conv_stfusion) was declared but unused.
        if self.plus:
            self.extra_graph = CoAttentionGraph(
                k, 3, config.graph_rounds, use_gru=arch != "st_plus", gate=self.extra_attention.gate,
                refine_rate=config.refine_rate, refine_thresh=config.refine_thresh,
            )
        else:
            self.extra_gru = ConvGRUCell(k)
        init_heads(nn.ModuleList(m for n, m in self.named_children() if n.startswith("extra")))

    @property
    def frames_per_node(self) -> int:
        return 3 if self.temporal else 1

    def _targets(self, cams: Tensor) -> tuple[Tensor, Tensor | None]:
        """Target CAMs and their temporal stacks. cams (B, T, K, h, w) ->
        x (B*R, K, h, w) and stacks (B*R, K, 3, h, w) or None."""
        b, t = cams.shape[:2]
        if not self.temporal:
            return cams.flatten(0, 1), None
        if self.plus:  # ST+: 3 triplets, gate on each triplet's centre
            trip = cams.view(b * (t // 3), 3, *cams.shape[2:])
            return trip[:, 1], TemporalGate.stack(trip)
        idx = torch.arange(t, device=cams.device)  # ST: every frame i with (i-1, i, i+1), edges repeated
        nbr = torch.stack([(idx - 1).clamp(0, t - 1), idx, (idx + 1).clamp(0, t - 1)], dim=1)  # (T, 3)
        stacks = cams[:, nbr]  # (B, T, 3, K, h, w)
        return cams.flatten(0, 1), TemporalGate.stack(stacks.flatten(0, 1))

    def forward(self, frames: Tensor, spectrograms: Tensor | None = None) -> TeacherOutputs:
        b, t = frames.shape[:2]
        if self.plus and t != 3 * self.frames_per_node:
            raise ValueError(f"{self.config.arch} expects frames (B, {3 * self.frames_per_node}, 3, H, W) "
                             f"(3 graph nodes), got {tuple(frames.shape)}")
        feats = self.backbone(frames.flatten(0, 1))[-1]
        cams = self.extra_cam(feats)
        raw = cams.unflatten(0, (b, t))
        x, stacks = self._targets(raw)
        terms = [F.relu(x + self.extra_attention(x))]
        if self.uses_audio:
            if spectrograms is None:
                raise ValueError(f"{self.config.arch} needs spectrograms")
            emb = self.audio_net(spectrograms.flatten(0, 1))
            terms.append(gated_residual(x, self.extra_av(emb, feats)))
        if self.temporal:
            terms.append(gated_residual(x, torch.sigmoid(self.extra_temporal(stacks))))
        fused = self.extra_fuse(torch.cat(terms, dim=1)) if self.extra_fuse is not None else terms[0]
        if self.plus and self.uses_audio:
            raw = fused.unflatten(0, (b, t))  # spec 4.3: SA+'s raw maps / logits are the audio-fused ones
        if self.plus:
            refined = self.extra_graph(fused.unflatten(0, (b, 3)))
        else:
            refined = self.extra_gru(fused, x).unflatten(0, (b, -1))
        if self.plus:
            # node 0 is the anchor (spec 4.2: the original exports graph node 0); datasets put the
            # anchor frame / triplet first, which the weight-shared, fully connected graph allows.
            centre, raw_centre = 0, (1 if self.temporal else 0)
        else:
            centre = raw_centre = t // 2  # s / sa: the frame; st: t in (t-1, t, t+1)
        return TeacherOutputs(gap_logits(raw), gap_logits(refined), raw, refined, centre, raw_centre)

    def loss(self, out: TeacherOutputs, labels: Tensor) -> Tensor:
        """Multi-label soft margin on every logit set; labels (B, K) one-hot (spec 3.1, Appendix A)."""
        raw_weight = 1.0 if self.config.arch in ("s", "sa") else 0.4
        raw = sum(F.multilabel_soft_margin_loss(out.raw_logits[:, i], labels)
                  for i in range(out.raw_logits.shape[1]))
        ref = sum(F.multilabel_soft_margin_loss(out.refined_logits[:, i], labels)
                  for i in range(out.refined_logits.shape[1]))
        return raw_weight * raw + ref

    def cam(self, out: TeacherOutputs, classes: Tensor) -> Tensor:
        """Anchor-frame CAM of ``classes``; see :func:`cam_for_class`."""
        return cam_for_class(out, classes)

    def anchor_logits(self, out: TeacherOutputs) -> Tensor:
        """Logits deciding whether the anchor is correctly classified (S: raw, others: refined)."""
        if self.config.arch == "s":
            return out.raw_logits[:, out.raw_centre]
        return out.refined_logits[:, out.centre]


def cam_for_class(outputs: TeacherOutputs, labels: Tensor) -> Tensor:
    """Anchor-frame CAM of each sample's class: ReLU((raw + refined) / 2), (B, h, w) (spec 3.1).

    ``labels``: class indices (B,), or one-hot / score rows (B, K) (their argmax is taken).
    """
    classes = labels.argmax(dim=1) if labels.dim() == 2 else labels
    idx = torch.arange(classes.shape[0], device=classes.device)
    raw = outputs.raw_cams[:, outputs.raw_centre][idx, classes]
    ref = outputs.refined_cams[:, outputs.centre][idx, classes]
    return F.relu((raw + ref) / 2)
