"""Shared blocks of every STANet network, written once and composed by teachers and students.

Spec sections 3.1 (CAM head, self-attention gate, ConvGRU), 3.3 (AVfusion), 3.4 (temporal gate),
4.1 (co-attention graph, FRL). Parameters of new heads live in modules whose names contain
``extra`` (the original's convention), so :func:`param_groups` can give them 10x / 20x learning rates.

Differences from the original, on purpose:
- Temporal gate: frames are stacked as (B, C, T, H, W) with a real ``permute`` in temporal order;
  the original ``.view``-ed (B, T, C, H, W) into that shape, mixing channels with time (spec 9.1.4),
  and had no ReLUs between its Conv3d. ``TemporalGate(original=True)`` keeps both for the authors'
  checkpoints (``ModelConfig.original``).
- No hard-coded spatial sizes (the original's 8x8 / 32x32 buffers, spec 9.1.5).
- The co-attention graph is batched (one ``bmm`` for all samples, node pairs and positions) instead
  of a Python loop over the batch (spec 9.3).

Imports only torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from stanet_rt.config import ModelConfig


def gap_logits(cam: Tensor) -> Tensor:
    """(..., K, h, w) class maps -> (..., K) logits by global average pooling (no FC, spec 3.1).

    With ``avg_pool2d`` as the original: its rounding differs from ``mean``'s by ~1e-6, which the STA+
    parity with the authors' outputs can see (their GAP logits come out bit for bit this way)."""
    pooled = F.avg_pool2d(cam.reshape(-1, *cam.shape[-3:]), kernel_size=tuple(cam.shape[-2:]))
    return pooled.reshape(cam.shape[:-2])


def gated_residual(x: Tensor, gate: Tensor) -> Tensor:
    """ReLU(x + x * gate): how every gate (attention, temporal, audio-visual) is applied."""
    return F.relu(x + x * gate)


def resize_to(x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinear resize (align_corners=False: the TensorRT-safe mode) of (B, C, h, w) to ``size``."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class CAMHead(nn.Module):
    """``depth`` x (3x3 conv + ReLU) then a 1x1 conv to ``classes`` maps: (B, C_in, h, w) -> (B, K, h, w).

    depth 0 is the S branch's single 1x1 conv; depth 3 at width C_in the SA/ST/+ ``extra_convs``.
    """

    def __init__(self, in_channels: int, classes: int, depth: int = 3, width: int | None = None) -> None:
        super().__init__()
        width = width or in_channels
        layers: list[nn.Module] = []
        cin = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
            cin = width
        layers.append(nn.Conv2d(cin, classes, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class SelfAttentionGate(nn.Module):
    """Self-attention spatial gate (spec 3.1): returns ``sigmoid(conv(h A)) * x``, (B, C, h, w).

    A = softmax over dim 1 of f^T g (N x N, no 1/sqrt(d) scale, as the original). ``gate`` may be
    passed in to share the 1-channel gate conv with the co-attention messages (S+/SA+/ST+).
    """

    def __init__(self, channels: int, gate: nn.Conv2d | None = None) -> None:
        super().__init__()
        half = max(1, channels // 2)
        self.f = nn.Conv2d(channels, half, 1)
        self.g = nn.Conv2d(channels, half, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        self.gate = gate if gate is not None else nn.Conv2d(channels, 1, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        f, g, h = self.f(x).flatten(2), self.g(x).flatten(2), self.h(x).flatten(2)
        attn = torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # (B, N, N), columns sum to 1
        o = torch.bmm(h, attn).view_as(x)
        return torch.sigmoid(self.gate(o)) * x


class ConvGRUCell(nn.Module):
    """One ConvGRU step (spec 3.1): s' = (1 - z) s + z tanh(W_o [u, r s]), kernel 1 by default."""

    def __init__(self, channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.reset_gate = nn.Conv2d(2 * channels, channels, kernel_size, padding=pad)
        self.update_gate = nn.Conv2d(2 * channels, channels, kernel_size, padding=pad)
        self.out_gate = nn.Conv2d(2 * channels, channels, kernel_size, padding=pad)

    def forward(self, u: Tensor, state: Tensor) -> Tensor:
        both = torch.cat([u, state], dim=1)
        z = torch.sigmoid(self.update_gate(both))
        r = torch.sigmoid(self.reset_gate(both))
        cand = torch.tanh(self.out_gate(torch.cat([u, r * state], dim=1)))
        return (1 - z) * state + z * cand


class AVFusion(nn.Module):
    """Audio-visual gate (spec 3.3, with the module definitions the shipped SA model lacked).

    (B, A) audio embedding, (B, C_vis, h, w) visual map -> (B, 1, h, w) gate in (0, 1):
    W = softmax_j(a'_i g_j) mixes 128 visual channels conditioned on the audio.
    """

    def __init__(self, visual_channels: int, audio_dim: int, mid_channels: int, av_dim: int = 128) -> None:
        super().__init__()
        self.extra_convv = nn.Conv2d(visual_channels, av_dim, 1)
        self.extra_lineara = nn.Linear(audio_dim, av_dim)
        self.extra_linearv = nn.Linear(visual_channels, av_dim)
        self.extra_gateav = nn.Sequential(
            nn.Conv2d(av_dim, mid_channels, 1), nn.ReLU(inplace=True), nn.Conv2d(mid_channels, 1, 1)
        )

    def forward(self, audio: Tensor, visual: Tensor) -> Tensor:
        v = self.extra_convv(visual)  # (B, D, h, w)
        a = self.extra_lineara(audio)  # (B, D)
        g = self.extra_linearv(visual.mean(dim=(2, 3)))  # (B, D)
        mix = torch.softmax(a.unsqueeze(2) * g.unsqueeze(1), dim=-1)  # (B, D, D)
        z = torch.bmm(mix, v.flatten(2)).view_as(v)
        return torch.sigmoid(self.extra_gateav(z))


class AVFiLMGate(nn.Module):
    """Audio-visual gate by feature-wise modulation (FiLM, Perez et al., AAAI 2018); not in the original.

    (B, A) audio embedding, (B, C_vis, h, w) visual map -> (B, 1, h, w) gate in (0, 1):
    Z = ReLU(v (1 + gamma(a)) + beta(a)) with v = conv1x1(V) (D channels) and gamma, beta = Linear(a),
    then the same conv1x1-ReLU-conv1x1-sigmoid readout as :class:`AVFusion`.

    Why: :class:`AVFusion` conditions on the audio only through softmax(a' g^T), which mixes visual
    channels by their global means; trained on the synthetic set it saturated into one fixed channel
    choice whatever the audio (gate identical with the audio of another frame). FiLM lets each audio
    dimension (the loudness profile's "loud right now" among them) scale and shift each visual
    channel directly, so the gate can open on the object whose look matches the sound at this moment.
    A config option (``ModelConfig.av_fusion = "film"``); the paper's models keep :class:`AVFusion`.
    """

    def __init__(self, visual_channels: int, audio_dim: int, mid_channels: int, av_dim: int = 128) -> None:
        super().__init__()
        self.extra_convv = nn.Conv2d(visual_channels, av_dim, 1)
        self.extra_film = nn.Linear(audio_dim, 2 * av_dim)
        self.extra_gateav = nn.Sequential(
            nn.Conv2d(av_dim, mid_channels, 1), nn.ReLU(inplace=True), nn.Conv2d(mid_channels, 1, 1)
        )

    def forward(self, audio: Tensor, visual: Tensor) -> Tensor:
        v = self.extra_convv(visual)  # (B, D, h, w)
        gamma, beta = self.extra_film(audio)[:, :, None, None].chunk(2, dim=1)  # (B, D, 1, 1) each
        return torch.sigmoid(self.extra_gateav(F.relu(v * (1 + gamma) + beta)))


def build_av_gate(kind: str, visual_channels: int, audio_dim: int, mid_channels: int, av_dim: int) -> nn.Module:
    """The audio-visual gate ``kind``: "stanet" (:class:`AVFusion`, the paper's) or "film" (:class:`AVFiLMGate`)."""
    if kind == "stanet":
        return AVFusion(visual_channels, audio_dim, mid_channels, av_dim)
    if kind == "film":
        return AVFiLMGate(visual_channels, audio_dim, mid_channels, av_dim)
    raise ValueError(f"unknown audio-visual gate {kind!r}; expected 'stanet' or 'film'")


class SyncGate(nn.Module):
    """Audio-visual synchrony over a student's window ("pixels that sound"; ours, not the original's).

    The same cue as the pseudo-GT's synchrony term (``training.av_sync``), computed inside the model
    over its own window so that it also runs in streaming: per frame the encoder emits a coarse grey
    grid (:meth:`frame_features`: the channel mean of the normalised frame averaged over ``cell`` x
    ``cell`` pixels) and the audio's loudness at that frame (the last bin of the embedding's loudness
    profile, times ``audio_on``); the head correlates them over the window (:meth:`forward`:
    |Pearson r|^power per grid cell, max-normalised) and adds ``extra_sync_weight`` x that map to the
    saliency logits ("add") or narrows the map to the synchronous cells where the audio is active
    ("modulate"). What counts as active (``activity``): "window", the std of the per-frame loudness over
    the window (the first light models'), or "profile", the contrast of the loudness profile inside the
    output frame's own audio window (:meth:`profile_activity`, one more per-frame feature, ``activity``;
    the light presets' since issue 15). No audio (gate closed) gives a zero map: the audio-free path is
    the visual one.
    Learned students could not discover this correlation from a few CPU epochs (they learned which
    object is the source in each training clip by heart instead); computing it is cheap and exact.
    """

    COMBINES = ("add", "modulate")
    ACTIVITIES = ("window", "profile")

    def __init__(self, cell: int = 8, power: float = 4.0, weight: float | None = None, differences: bool = False,
                 combine: str = "add", activity: str = "window") -> None:
        super().__init__()
        if combine not in self.COMBINES:
            raise ValueError(f"sync combine must be one of {self.COMBINES}, got {combine!r}")
        if activity not in self.ACTIVITIES:
            raise ValueError(f"sync activity must be one of {self.ACTIVITIES}, got {activity!r}")
        self.cell, self.power, self.differences, self.combine = cell, power, differences, combine
        self.activity = activity
        if weight is None:  # add: the map's weight on the logits; modulate: the gain on the audio activity
            # (modulate: training barely moves the gain from where it starts, 5 -> 4.8, so the start sets it.
            # Issue 15, students on the synth-hard test split: 5 -> share on twin clips 0.640-0.659, 10 -> 0.683-0.693
            # at 0.01-0.03 less CC, 7 -> 0.664-0.679: the smallest start that keeps every student above 0.65)
            weight = 2.0 if combine == "add" else 7.0
        self.extra_sync_weight = nn.Parameter(torch.tensor(float(weight)))

    @classmethod
    def of(cls, config: ModelConfig) -> SyncGate:
        """The gate of a student ``config`` (``sync_differences``, ``sync_power``, ``sync_combine``,
        ``sync_activity``)."""
        return cls(power=config.sync_power, differences=config.sync_differences, combine=config.sync_combine,
                   activity=config.sync_activity)

    def apply(self, logits: Tensor, grey: Tensor, loud: Tensor, activity: Tensor | None = None) -> Tensor:
        """Saliency logits (B, M, H, W) with the synchrony of the window (grey (B, T, 1, h, w), loud
        (B, T, 1, 1, 1)) applied: :meth:`boost` ("add") or :meth:`modulate`; ``activity`` (B, 1 or M, ...):
        the :meth:`profile_activity` of the frame each map is for ("profile" gates only)."""
        sync = self(grey, loud)
        if self.combine == "add":
            return self.boost(logits, sync)
        return self.modulate(logits, sync, self.gate_input(loud, activity))

    def gate_input(self, loud: Tensor, activity: Tensor | None) -> Tensor:
        """What :meth:`modulate` multiplies by its gain, (B, 1 or M, 1, 1): "window": the std of the
        window's loudness (B, T, 1, 1, 1); "profile": the ``activity`` of each map's frame."""
        b = loud.shape[0]
        if self.activity == "profile":
            if activity is None:
                raise ValueError("a 'profile' sync gate needs the output frame's activity feature")
            return activity.flatten(1)[:, :, None, None]  # static sizes (export): (B, 1 or M, 1, 1)
        return loud.reshape(b, -1).std(dim=1).reshape(b, 1, 1, 1)

    @staticmethod
    def profile_activity(profile: Tensor) -> Tensor:
        """The contrast of a frame's loudness profile (B, bins) -> (B, 1, 1, 1): its std over the bins.

        Why not the std of the per-frame loudness over the window (the "window" gate): the audio windows
        are z-normalised (spec 1), so a noise-only stretch varies as much from frame to frame as a
        quiet sound; inside one 0.5 s window, noise is flat and a sounding event is not (synth-unseen,
        median over frames: event 0.22, silent 0.04; the window std: 0.30 vs 0.15)."""
        return profile.std(dim=1).reshape(-1, 1, 1, 1)

    def modulate(self, logits: Tensor, sync: Tensor, active: Tensor, eps: float = 1e-6) -> Tensor:
        """The logits of sigmoid(logits) x (1 - g + g S'): the visual map kept where the audio is quiet
        and, where it is active, narrowed to the cells that change with it. S' = the synchrony map
        dilated by one cell (the map peaks on a part of the sounding object; the object is wider);
        g = clamp(``extra_sync_weight`` x ``active`` (:meth:`gate_input`), 0, 1), 0 without audio.

        Unlike :meth:`boost` it does not saturate: adding to logits that are already large moves no
        probability mass, so the additive students put as much weight on a silent look-alike as on the
        source. Computed in log space: log m - softplus(-L) - log((1 - m) + m sigmoid(-L)), which is L
        itself for m = 1."""
        g = (self.extra_sync_weight * active).clamp(0.0, 1.0)
        wide = resize_to(F.max_pool2d(sync, 3, 1, 1), logits.shape[-2:])
        m = 1.0 - g + g * wide
        return torch.log(m + eps) - F.softplus(-logits) - torch.log((1.0 - m) + m * torch.sigmoid(-logits) + eps)

    def frame_features(self, frames: Tensor, loudness: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) normalised frames, (B, 1) loudness (0 without audio) -> grey (B, 1, H/cell,
        W/cell), loud (B, 1, 1, 1)."""
        grey = F.avg_pool2d(frames.mean(dim=1, keepdim=True), self.cell, self.cell)
        return grey, loudness.reshape(-1, 1, 1, 1)

    def forward(self, grey: Tensor, loud: Tensor, eps: float = 1e-6) -> Tensor:
        """grey (B, T, 1, h, w), loud (B, T, 1, 1, 1) -> synchrony map (B, 1, h, w) in [0, 1].

        With ``differences`` the correlation is between the T - 1 frame-to-frame changes: an object that
        drifts across a cell changes its grey level slowly, a pulse changes it from one frame to the next,
        so differencing drops most of the motion that the level correlation mistook for synchrony (source
        share of the gate alone on the synth-unseen twin clips: 0.688 -> 0.766 with power 8)."""
        if self.differences:
            grey, loud = grey[:, 1:] - grey[:, :-1], loud[:, 1:] - loud[:, :-1]
        x = grey - grey.mean(dim=1, keepdim=True)
        e = loud - loud.mean(dim=1, keepdim=True)
        num = (x * e).sum(dim=1)
        den = torch.sqrt((x * x).sum(dim=1) * (e * e).sum(dim=1)) + eps
        s = (num / den).abs() ** self.power
        return s / (s.amax(dim=(-2, -1), keepdim=True) + eps)

    def boost(self, logits: Tensor, sync: Tensor) -> Tensor:
        """Logits (B, M, H, W) plus the weighted synchrony map (B, 1, h, w) resized to (H, W)."""
        return logits + self.extra_sync_weight * resize_to(sync, logits.shape[-2:])


class TemporalGate(nn.Module):
    """Temporal gate logits (spec 3.4 / 6.1 / 6.2): Conv3d (T,1,1) then two Conv3d (1,3,3).

    Input (B, C, T, H, W) from :meth:`arrange`; output (B, out_channels, H, W) logits (apply sigmoid to
    gate). The first conv consumes the whole time axis (no temporal padding). ReLUs sit between the
    convs (the reference is silent on them; a purely linear stack would collapse to one conv).

    ``original=True`` reproduces the authors' code for their checkpoints (``ModelConfig.original``):
    no ReLUs (their ``extra_refineST`` is three bare Conv3d) and the ``.view`` stacking of
    :meth:`arrange`, with the window frames concatenated in ``order`` (window indices; the original STA
    used (t+1, t, t-1) for its output frame).
    """

    def __init__(self, channels: int, out_channels: int, frames: int = 3, original: bool = False,
                 order: tuple[int, ...] | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv3d(channels, channels, (frames, 1, 1))]
        if not original:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1)))
        if not original:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv3d(channels, out_channels, (1, 3, 3), padding=(0, 1, 1)))
        self.layers = nn.Sequential(*layers)
        self.original = original
        self.order = tuple(order) if order is not None else tuple(range(frames))
        if sorted(self.order) != list(range(frames)):
            raise ValueError(f"temporal order {self.order} is not a permutation of {frames} frames")

    def forward(self, stack: Tensor) -> Tensor:
        return self.layers(stack).squeeze(2)

    def arrange(self, window: Tensor, order: tuple[int, ...] | None = None) -> Tensor:
        """(B, T, C, H, W) window in temporal order -> (B, C, T, H, W), the input of :meth:`forward`.

        Ours: a real permute in temporal order (:meth:`stack`). Original mode: the frames concatenated
        in ``order`` (default: the gate's own) and ``.view``-ed as (B, C, T, H, W) without a permute,
        so element [c, tau] is frame (T c + tau) // C, channel (T c + tau) % C: the time axis of the
        Conv3d runs over adjacent channels, mostly of one frame. Their weights were trained that way.
        """
        if not self.original:
            return self.stack(window)
        order = self.order if order is None else tuple(order)
        if order != tuple(range(window.shape[1])):
            window = window[:, list(order)]
        b, t, c, h, w = window.shape
        return window.reshape(b, c, t, h, w)

    @staticmethod
    def stack(frames: Tensor) -> Tensor:
        """(B, T, C, H, W) -> (B, C, T, H, W) with a real permute (the original's `.view` was a bug)."""
        return frames.permute(0, 2, 1, 3, 4)


class FRL(nn.Module):
    """Feature refine layer (spec 4.1), parameter-free and per sample.

    mu = channel mean (B, 1, H, W); theta = thresh * max(mu) per sample;
    w = sigmoid(mu) * (rate where mu < theta else 1); out = (x * w + x) / 2.
    """

    def __init__(self, rate: float = 0.6, thresh: float = 0.8) -> None:
        super().__init__()
        self.rate, self.thresh = rate, thresh

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(dim=1, keepdim=True)
        theta = self.thresh * mu.amax(dim=(2, 3), keepdim=True)
        damp = torch.where(mu < theta, torch.full_like(mu, self.rate), torch.ones_like(mu))
        w = torch.sigmoid(mu) * damp
        return (x * w + x) / 2


class CoAttentionGraph(nn.Module):
    """AGNN-style graph over K fully connected nodes (spec 4.1), batched.

    Nodes (B, K, C, h, w) -> (B, K, C, h, w) after ``rounds`` rounds of: co-attention messages from
    every other node, a 3x3 fusion conv over the concatenated messages, an optional ConvGRU update
    (ST+ has none) and FRL. Weights are shared across rounds and nodes; ``gate`` (the 1-channel
    message gate conv) may be shared with a self-attention gate as in the original SCAM+ teachers
    (STA+'s original has its own, ``extra_gate``).
    """

    def __init__(self, channels: int, nodes: int = 3, rounds: int = 3, use_gru: bool = True,
                 gate: nn.Conv2d | None = None, refine_rate: float = 0.6, refine_thresh: float = 0.8,
                 proj_bias: bool = False) -> None:
        super().__init__()
        half = max(1, channels // 2)
        self.nodes, self.rounds = nodes, rounds
        # proj_bias: the original STA+ (CGCN) projections carry biases (its checkpoints hold them); ours are
        # bias-free
        self.proja = nn.Conv2d(channels, half, 1, bias=proj_bias)
        self.projb = nn.Conv2d(channels, half, 1, bias=proj_bias)
        self.gate = gate if gate is not None else nn.Conv2d(channels, 1, 1, bias=False)
        self.conv_fusion = nn.Conv2d(channels * (nodes - 1), channels, 3, padding=1)
        self.gru = ConvGRUCell(channels) if use_gru else None
        self.frl = FRL(refine_rate, refine_thresh)
        # message k <- j for every ordered pair k != j, grouped by receiving node k
        pairs = [(k, j) for k in range(nodes) for j in range(nodes) if j != k]
        self.register_buffer("_recv", torch.tensor([k for k, _ in pairs]), persistent=False)
        self.register_buffer("_send", torch.tensor([j for _, j in pairs]), persistent=False)

    def messages(self, nodes: Tensor) -> Tensor:
        """(B, K, C, h, w) -> (B, K, (K-1) * C, h, w): gated co-attention messages to every node."""
        b, k, c, h, w = nodes.shape
        flat = nodes.flatten(0, 1)  # (B*K, C, h, w)
        ea = self.proja(flat).view(b, k, -1, h * w)
        qb = self.projb(flat).view(b, k, -1, h * w)
        e = ea[:, self._recv].flatten(0, 1)  # (B*P, C/2, N) exemplar (receiver)
        q = qb[:, self._send].flatten(0, 1)  # (B*P, C/2, N) query (sender)
        qraw = nodes[:, self._send].flatten(0, 1).flatten(2)  # (B*P, C, N)
        affinity = torch.bmm(e.transpose(1, 2), q)  # (B*P, N_e, N_q)
        attn = torch.softmax(affinity, dim=2)  # over query positions
        msg = torch.bmm(qraw, attn.transpose(1, 2)).view(-1, c, h, w)  # (B*P, C, h, w)
        msg = msg * torch.sigmoid(self.gate(msg))
        return msg.view(b, k, (k - 1) * c, h, w)

    def forward(self, nodes: Tensor) -> Tensor:
        b, k = nodes.shape[:2]
        for _ in range(self.rounds):
            m = self.conv_fusion(self.messages(nodes).flatten(0, 1))
            h = nodes.flatten(0, 1)
            h = self.gru(m, h) if self.gru is not None else m
            nodes = self.frl(h).unflatten(0, (b, k))
        return nodes


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """The original's four SGD groups (spec 3.1): base weights lr, base biases 2 lr, ``extra`` weights
    10 lr, ``extra`` biases 20 lr; weight decay on all groups."""
    keys = [(e, b) for e in (False, True) for b in (False, True)]
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {key: [] for key in keys}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups[("extra" in name, name.endswith("bias"))].append(p)
    scale = {(False, False): 1, (False, True): 2, (True, False): 10, (True, True): 20}
    return [
        {"params": ps, "lr": lr * scale[key], "weight_decay": weight_decay, "initial_lr": lr * scale[key]}
        for key, ps in groups.items() if ps
    ]


def init_heads(module: nn.Module, std: float = 0.01) -> None:
    """Initialise every Conv2d weight of a new head from N(0, std) (spec 3.1 "Init")."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
