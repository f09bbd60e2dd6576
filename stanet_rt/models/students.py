"""Students: STA (spec 6.1), STA+ (spec 6.2) and the light causal ``stanet_lite`` (issue 8).

All follow the encode/head contract of :mod:`stanet_rt.models.student_base`. STA and stanet_lite are
the same network (:class:`STAStudent`) with different backbones and windows (STA: ResNeXt-101,
offsets -1, 0, +1; lite: ResNet-18-class, offsets -2, -1, 0, no look-ahead).

Differences from the original, on purpose:
- STA gates its audio path with ``audio_on`` (the original accepted the AudioSwitch output and
  ignored it); the declared-but-unused modules (``extra_audio_d`` 16.8 M params, ...) are dropped.
- The head predicts the map of the offset-0 frame; the original also produced maps for t-1 / t+1
  from re-ordered stacks. ``forward_train`` returns the two decoder levels of that frame.
- STA+ computes its AudioSwitch decision inside the encoder on the frame resized to
  ``switch_input_size`` (the original loaded the node-centre frames again at 356 x 356). The switch
  keeps its own audio net (as the original's separately trained switch did), so its audio
  embedding travels next to the student's: STA+'s ``encode_audio`` returns the two concatenated,
  [student (A_s), switch (A_w)], and ``encode`` splits them (one ``audio_embedding`` tensor in the
  exported graphs, ``audio_embedding_dim`` = A_s + A_w). The switch is frozen (eval mode, no grad).

Config options of ours, off in the paper's configs and on in the light presets (see
``training.presets``): ``av_fusion="film"`` swaps AVfusion for :class:`~stanet_rt.models.blocks.AVFiLMGate`;
``audio_envelope_bins`` appends a loudness profile to the audio embedding; ``sync_gate`` adds the
parameter-free :class:`~stanet_rt.models.blocks.SyncGate` (per-frame features ``grey`` and ``loud``,
correlated over the window in the head, and with ``sync_activity="profile"`` ``activity``, the contrast
of the frame's loudness profile that opens the modulating gate; STA+ with ``sync_switch`` off feeds the
gate ``audio_on`` without the AudioSwitch decision). On the synthetic set only the last
made the audio matter: with it the light STA's CC on the twin clips' event frames is 0.67 with the
audio and 0.54 without; with the learned gates alone audio on and off scored the same.

Compatibility mode (``ModelConfig.original``, on for the authors' checkpoints that ``stanet-rt import``
converts, off for our training): the blocks take the original's quirks as options, so the same classes
reproduce the published forward (``stanet_rt.original``): the temporal gate's ``.view`` stacking in the
original frame orders and no ReLUs (:class:`~stanet_rt.models.blocks.TemporalGate`), STA+'s biased graph
projections and own message gate (:class:`~stanet_rt.models.blocks.CoAttentionGraph`).

Imports torch and ``stanet_rt.{config,models}``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stanet_rt.config import ModelConfig
from stanet_rt.models.backbones import audio_net_of, build_backbone
from stanet_rt.models.blocks import (
    CAMHead,
    CoAttentionGraph,
    ConvGRUCell,
    SelfAttentionGate,
    SyncGate,
    TemporalGate,
    build_av_gate,
    gated_residual,
    init_heads,
    resize_to,
)
from stanet_rt.models.student_base import StudentModel
from stanet_rt.models.switch import AudioSwitch

# The original STA concatenated its three frames for the temporal gate of output frame t as (t+1, t, t-1)
# (``incat0`` of ``STAmodel.py``), window indices (2, 1, 0) of offsets (-1, 0, 1); with its ``.view``
# that order changes the numbers, so compatibility mode keeps it.
ORIGINAL_STA_ORDER = (2, 1, 0)


def _output_size(config: ModelConfig, output_size: tuple[int, int] | None) -> tuple[int, int]:
    return output_size if output_size is not None else (config.input_size, config.input_size)


class _AudioMixin:
    """Audio net shared by the students: (B, 1, 257, 48) -> (B, A) embedding."""

    audio_net: nn.Module | None

    @property
    def audio_embedding_dim(self) -> int:
        return self.audio_net.out_dim if self.audio_net is not None else 0

    def encode_audio(self, spectrogram: Tensor) -> Tensor:
        if self.audio_net is None:
            raise RuntimeError("this config has no audio path")
        return self.audio_net(spectrogram)

    def sync_features(self, feats: OrderedDict[str, Tensor], frames: Tensor, emb: Tensor, on: Tensor) -> None:
        """Add the :class:`SyncGate` inputs of these frames to ``feats``: their grey grid, the loudness at
        each frame (the last bin of the student's loudness profile, times the audio gate) and, for a
        "profile" gate, the profile's contrast (``activity``, 0 without audio)."""
        own, bins = self.audio_net.out_dim, self.config.audio_envelope_bins
        profile = emb[:, own - bins : own] * on
        feats["grey"], feats["loud"] = self.extra_sync.frame_features(frames, profile[:, -1:])
        if self.extra_sync.activity == "profile":
            feats["activity"] = self.extra_sync.profile_activity(profile)

    def sync_shapes(self, shapes: OrderedDict[str, tuple[int, ...]], height: int, width: int) -> None:
        cell = self.extra_sync.cell
        shapes["grey"] = (1, height // cell, width // cell)
        shapes["loud"] = (1, 1, 1)
        if self.extra_sync.activity == "profile":
            shapes["activity"] = (1, 1, 1)

    def apply_sync(self, logits: Tensor, window: dict[str, Tensor], centres: int | slice) -> Tensor:
        """The :class:`SyncGate` over ``window`` applied to logits (B, M, H, W) of the window frame(s)
        ``centres`` (an index, or a slice of M frames: one map per frame)."""
        activity = window["activity"][:, centres] if "activity" in window else None
        return self.extra_sync.apply(logits, window["grey"], window["loud"], activity)


class STAStudent(_AudioMixin, StudentModel):
    """STA / stanet_lite: multi-level trunk, 32-channel heads, temporal + audio-visual + attention gates,
    ConvGRU and a two-level decoder (spec 6.1).

    Features per frame: ``s0`` (C, H/8, W/8), ``s1`` (C, H/16), ``x`` (C, H/32), ``av`` (1, H/32).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config.channels
        self.backbone = build_backbone(config.backbone)
        ch = self.backbone.channels
        self.audio_net = (
            audio_net_of(config) if config.uses_audio else None
        )
        self.extra_s0 = nn.Conv2d(ch[1], c, 1)
        self.extra_s1 = nn.Conv2d(ch[2], c, 1)
        self.extra_x = nn.Conv2d(ch[3], c, 1)
        self.extra_av = None
        if self.audio_net is not None:
            self.extra_av = build_av_gate(config.av_fusion, ch[3], self.audio_embedding_dim, c, config.av_dim)
        self.extra_temporal = TemporalGate(c, c, frames=len(config.window_offsets), original=config.original,
                                           order=ORIGINAL_STA_ORDER if config.original else None)
        self.extra_attention = SelfAttentionGate(c)
        n_terms = 3 if self.audio_net is not None else 2
        self.extra_fuse = nn.Conv2d(n_terms * c, c, 3, padding=1)
        self.extra_sync = SyncGate.of(config) if config.sync_gate else None
        self.extra_gru = ConvGRUCell(c)
        self.extra_refine1 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.extra_refine0 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.extra_out1 = nn.Conv2d(c, 1, 1)
        self.extra_out0 = nn.Conv2d(c, 1, 1)
        self.centre = config.window_offsets.index(0)
        init_heads(nn.ModuleList(m for n, m in self.named_children() if n.startswith("extra")))

    def feature_shapes(self, height: int, width: int) -> OrderedDict[str, tuple[int, ...]]:
        c = self.config.channels
        (_, h0, h1, h2), (_, w0, w1, w2) = self.backbone.grid_sizes(height), self.backbone.grid_sizes(width)
        shapes = OrderedDict(s0=(c, h0, w0), s1=(c, h1, w1), x=(c, h2, w2))
        if self.audio_net is not None:
            shapes["av"] = (1, h2, w2)
        if self.extra_sync is not None:
            self.sync_shapes(shapes, height, width)
        return shapes

    def encode(self, frames: Tensor, audio_embedding: Tensor | None = None,
               audio_on: Tensor | None = None) -> OrderedDict[str, Tensor]:
        _, f0, f1, f2 = self.backbone(frames)
        feats = OrderedDict(s0=self.extra_s0(f0), s1=self.extra_s1(f1), x=self.extra_x(f2))
        if self.extra_av is not None:
            emb, on = self.audio_inputs(frames.shape[0], audio_embedding, audio_on, frames)
            feats["av"] = self.extra_av(emb, f2) * on[:, :, None, None]
            if self.extra_sync is not None:
                self.sync_features(feats, frames, emb, on)
        return feats

    def _decode(self, window: dict[str, Tensor], output_size: tuple[int, int], centre: int | None = None,
                order: tuple[int, ...] | None = None) -> tuple[Tensor, Tensor]:
        """Both decoder levels (coarse, fine) of window frame ``centre`` (default: offset 0); ``order``
        overrides the temporal gate's frame order (``stanet_rt.original`` decodes the original's other two
        frames with their own orders)."""
        centre = self.centre if centre is None else centre
        x_all = window["x"]
        x = x_all[:, centre]
        s0, s1 = window["s0"][:, centre], window["s1"][:, centre]
        temporal = torch.sigmoid(self.extra_temporal(self.extra_temporal.arrange(x_all, order)))
        terms = [F.relu(x + self.extra_attention(x)), gated_residual(x, temporal)]
        if self.extra_av is not None:
            terms.append(gated_residual(x, window["av"][:, centre]))
        y = self.extra_gru(self.extra_fuse(torch.cat(terms, dim=1)), x)
        up = resize_to(y, s1.shape[-2:])
        r1 = F.relu(self.extra_refine1(torch.cat([up, s1], dim=1)) + s1)
        r1 = resize_to(r1, s0.shape[-2:])
        r0 = F.relu(self.extra_refine0(torch.cat([r1, s0], dim=1)) + r1)
        out1, out0 = resize_to(self.extra_out1(r1), output_size), resize_to(self.extra_out0(r0), output_size)
        if self.extra_sync is not None:
            # both levels in one pass: the window's synchrony map is computed once
            both = self.apply_sync(torch.cat([out1, out0], dim=1), window, centre)
            out1, out0 = both[:, :1], both[:, 1:]
        return out1, out0

    def head(self, window: dict[str, Tensor], output_size: tuple[int, int] | None = None) -> Tensor:
        return self._decode(window, _output_size(self.config, output_size))[1]

    def forward_train(
        self, frames: Tensor, spectrograms: Tensor | None = None, audio_on: Tensor | None = None
    ) -> Tensor:
        """(B, T, 3, H, W), (B, T, 1, 257, 48), (B,) gate -> (B, 2, 1, H, W): coarse and fine logits of
        offset 0."""
        window = self.encode_window(frames, spectrograms, audio_on)
        return torch.stack(self._decode(window, tuple(frames.shape[-2:])), dim=1)


class STAPlusStudent(_AudioMixin, StudentModel):
    """STA+ (spec 6.2): VGG16-D1 + CAM head per frame; 9-frame window as 3 triplet nodes (centres -3, 0,
    +3); temporal gate per triplet; audio-visual gate on the centres, times ``audio_on`` and the
    AudioSwitch decision; co-attention graph; BN readout -> logits of the centre node.

    Features per frame: ``x`` (K classes, H/8, W/8) and ``av`` (1, H/8, W/8).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        k = config.num_classes
        self.backbone = build_backbone(config.backbone)
        vis = self.backbone.channels[-1]
        self.audio_net = (
            audio_net_of(config) if config.uses_audio else None
        )
        self.extra_cam = CAMHead(vis, k, config.head_depth, config.head_width)
        self.extra_av = (
            build_av_gate(config.av_fusion, vis, self.audio_net.out_dim, k, config.av_dim) if self.audio_net else None
        )
        self.switch = None
        if config.use_switch and self.audio_net is not None:
            # A separately trained network with its own audio net (a trained ``audio_switch`` state dict
            # loads into it as is), frozen: eval mode under ``train()``, no gradients (spec 7).
            self.switch = AudioSwitch(config.replace(backbone=config.switch_backbone or config.backbone),
                                      own_audio_net=True).freeze()
        # original: each triplet is concatenated in temporal order (c-1, c, c+1) and ``.view``-ed
        self.extra_temporal = TemporalGate(k, 1, frames=3, original=config.original)
        self.extra_attention = SelfAttentionGate(k)
        n_terms = 3 if self.audio_net is not None else 2
        self.extra_fuse = nn.Conv2d(n_terms * k, k, 3, padding=1)
        # ours shares the message gate with the self-attention gate (as the SCAM+ teachers do); the original
        # STA+ has a separate one (``extra_gate``) and biased projections
        self.extra_graph = CoAttentionGraph(
            k, 3, config.graph_rounds, use_gru=True, gate=None if config.original else self.extra_attention.gate,
            refine_rate=config.refine_rate, refine_thresh=config.refine_thresh, proj_bias=config.original,
        )
        self.extra_readout = nn.Sequential(
            nn.Conv2d(2 * k, k, 1, bias=False), nn.BatchNorm2d(k), nn.ReLU(inplace=True), nn.Conv2d(k, 1, 1)
        )
        self.extra_sync = SyncGate.of(config) if config.sync_gate else None
        init_heads(nn.ModuleList(m for n, m in self.named_children() if n.startswith("extra")))

    @property
    def audio_embedding_dim(self) -> int:
        """The student's embedding, then the AudioSwitch's (one ``audio_embedding`` tensor for export)."""
        switch_dim = self.switch.audio_net.out_dim if self.switch is not None else 0
        return super().audio_embedding_dim + switch_dim

    def encode_audio(self, spectrogram: Tensor) -> Tensor:
        """(B, 1, 257, 48) -> (B, A): [student embedding, AudioSwitch embedding] concatenated."""
        emb = super().encode_audio(spectrogram)
        if self.switch is None:
            return emb
        return torch.cat([emb, self.switch.audio_net(spectrogram)], dim=1)

    def feature_shapes(self, height: int, width: int) -> OrderedDict[str, tuple[int, ...]]:
        (h,), (w,) = self.backbone.grid_sizes(height), self.backbone.grid_sizes(width)
        shapes = OrderedDict(x=(self.config.num_classes, h, w))
        if self.audio_net is not None:
            shapes["av"] = (1, h, w)
        if self.extra_sync is not None:
            self.sync_shapes(shapes, height, width)
        return shapes

    def encode(self, frames: Tensor, audio_embedding: Tensor | None = None,
               audio_on: Tensor | None = None) -> OrderedDict[str, Tensor]:
        if self.extra_av is None:
            return self.encode_gated(frames)
        emb, on = self.audio_inputs(frames.shape[0], audio_embedding, audio_on, frames)
        gate = on
        if self.switch is not None and audio_embedding is not None:  # without audio, on is 0 anyway
            size = self.config.switch_input_size or self.config.input_size
            switch_emb = emb[:, self.audio_net.out_dim:]
            gate = on * self.switch.decision(self.switch(resize_to(frames, (size, size)), switch_emb))
        return self.encode_gated(frames, emb, gate, sync_on=gate if self.config.sync_switch else on)

    def encode_gated(self, frames: Tensor, audio_embedding: Tensor | None = None,
                     gate: Tensor | None = None, sync_on: Tensor | None = None) -> OrderedDict[str, Tensor]:
        """:meth:`encode` with the audio gate given: ``gate`` (B, 1) is ``audio_on`` times the AudioSwitch
        decision (the original computed the switch outside the model, on separately loaded frames);
        ``sync_on`` (B, 1), what gates the synchrony features (default ``gate``; ``audio_on`` alone with
        ``config.sync_switch`` off)."""
        (v,) = self.backbone(frames)
        feats = OrderedDict(x=self.extra_cam(v))
        if self.extra_av is not None:
            own = self.audio_net.out_dim
            feats["av"] = self.extra_av(audio_embedding[:, :own], v) * gate[:, :, None, None]
            if self.extra_sync is not None:
                self.sync_features(feats, frames, audio_embedding, gate if sync_on is None else sync_on)
        return feats

    def graph_nodes(self, window: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Node states after the graph (B, 3, K, h, w) and the raw centre CAMs (B*3, K, h, w)."""
        x_all = window["x"]  # (B, 9, K, h, w)
        b, t, k, h, w = x_all.shape
        triplets = x_all.view(b * 3, 3, k, h, w)
        x = triplets[:, 1]  # centre of every triplet, (B*3, K, h, w)
        temporal = torch.sigmoid(self.extra_temporal(self.extra_temporal.arrange(triplets)))
        terms = [F.relu(x + self.extra_attention(x)), gated_residual(x, temporal)]
        if self.extra_av is not None:
            terms.append(gated_residual(x, window["av"].view(b * 3, 3, 1, h, w)[:, 1]))
        nodes = self.extra_fuse(torch.cat(terms, dim=1)).view(b, 3, k, h, w)
        return self.extra_graph(nodes), x

    def readout(self, nodes: Tensor, x: Tensor, output_size: tuple[int, int]) -> Tensor:
        """:meth:`graph_nodes`' outputs -> (B*3, 1, H, W) node logits (before any synchrony boost)."""
        return resize_to(self.extra_readout(torch.cat([nodes.flatten(0, 1), x], dim=1)), output_size)

    def _node_maps(self, window: dict[str, Tensor], output_size: tuple[int, int]) -> Tensor:
        """All 3 node maps: (B, 3, 1, H, W) logits for the triplet centres."""
        nodes, x = self.graph_nodes(window)
        b = nodes.shape[0]
        logits = self.readout(nodes, x, output_size).view(b, 3, *output_size)
        if self.extra_sync is not None:  # the synchrony over the whole 9-frame window, on every node
            logits = self.apply_sync(logits, window, slice(1, None, 3))  # each node's activity: its centre's
        return logits.view(b, 3, 1, *output_size)

    def head(self, window: dict[str, Tensor], output_size: tuple[int, int] | None = None) -> Tensor:
        return self._node_maps(window, _output_size(self.config, output_size))[:, 1]

    def forward_train(
        self, frames: Tensor, spectrograms: Tensor | None = None, audio_on: Tensor | None = None
    ) -> Tensor:
        """(B, 9, 3, H, W), (B, 9, 1, 257, 48), (B,) gate -> (B, 3, 1, H, W): node maps of offsets -3, 0,
        +3."""
        window = self.encode_window(frames, spectrograms, audio_on)
        return self._node_maps(window, tuple(frames.shape[-2:]))

    @property
    def node_offsets(self) -> tuple[int, int, int]:
        o = self.config.window_offsets
        return (o[1], o[4], o[7])
