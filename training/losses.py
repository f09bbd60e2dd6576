"""Training losses of the stages that do not carry their loss in the model.

* SCAM / SCAM+ teachers: multi-label soft margin (MLSM) on their GAP logits with the spec's weights
  (S/SA: raw + refined; ST and the "+" models: 0.4 * sum raw + sum refined/graph). That loss is written
  once in :meth:`stanet_rt.models.teachers.SCAMTeacher.loss`; :func:`teacher_loss` only names it here.
* AudioSwitch: 2-way cross-entropy on the event on/off target (:func:`switch_loss`).
* Students (STA, STA+): for every output map p and its pseudo-GT g, BCE-with-logits(p, g) + KL(g || P)
  with weight 1 (spec 6.1). :func:`kl_per_sample` normalises P = sigmoid(p) and Q = g over the pixels
  of EACH SAMPLE; the original normalised over the whole batch tensor, which is only right at batch 1
  (spec 9.1 item 13) - a deliberate fix so that batch > 1 trains the same objective.

Imports torch only (and the teacher class for typing); must not import data or stage modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

KL_EPS = 2.2e-16  # the original loss.py's epsilon


def kl_per_sample(pred_prob: Tensor, target: Tensor, eps: float = KL_EPS) -> Tensor:
    """KL(Q || P) per sample with P = pred_prob / sum and Q = target / sum over each sample's pixels.

    pred_prob, target: (B, ...) non-negative (e.g. (B, 1, H, W)). Returns (B,). An all-zero target gives
    Q = 0 and a zero term (instead of NaN)."""
    p = pred_prob.flatten(1)
    q = target.flatten(1)
    p = p / (p.sum(dim=1, keepdim=True) + eps)
    q = q / (q.sum(dim=1, keepdim=True) + eps)
    return (q * torch.log(eps + q / (p + eps))).sum(dim=1)


def saliency_loss(logits: Tensor, target: Tensor) -> Tensor:
    """BCE-with-logits + KL for one output map per sample: logits, target (B, 1, H, W), target in [0, 1].

    Both terms are per-sample means / sums averaged over the batch, so the value does not depend on the
    batch size. Returns a scalar."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(dim=1)
    kl = kl_per_sample(torch.sigmoid(logits), target)
    return (bce + kl).mean()


def student_loss(maps: Tensor, targets: Tensor) -> Tensor:
    """Sum over the M output maps of :func:`saliency_loss`: maps (B, M, 1, H, W) logits, targets
    (B, M, 1, H, W) or (B, 1, 1, H, W) (one pseudo-GT shared by all maps, e.g. STA's two decoder levels).
    Returns a scalar."""
    if targets.shape[1] == 1 and maps.shape[1] > 1:
        targets = targets.expand_as(maps)
    if maps.shape != targets.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and targets {tuple(targets.shape)} differ")
    return sum(saliency_loss(maps[:, m], targets[:, m]) for m in range(maps.shape[1]))


def switch_loss(logits: Tensor, target: Tensor) -> Tensor:
    """AudioSwitch: cross-entropy of (B, 2) logits against (B,) int64 targets (1 = event on)."""
    return F.cross_entropy(logits, target)


def teacher_loss(model: torch.nn.Module, outputs, labels: Tensor) -> Tensor:
    """SCAM / SCAM+ loss: the teacher's own MLSM with the spec's weights (``SCAMTeacher.loss``);
    ``model`` may be wrapped in DistributedDataParallel."""
    inner = getattr(model, "module", model)
    return inner.loss(outputs, labels)
