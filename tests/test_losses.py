"""Student / switch losses (training.losses): per-sample KL, batch invariance, hand values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from stanet_rt.training.losses import KL_EPS, kl_per_sample, saliency_loss, student_loss, switch_loss, teacher_loss

from stanet_rt.config import get_config
from stanet_rt.models.factory import build_model


def _batch_kl_original(inp: torch.Tensor, trg: torch.Tensor) -> torch.Tensor:
    """The original loss.py: normalisation over the WHOLE batch tensor (spec 6.1)."""
    p = inp / inp.sum()
    q = trg / trg.sum()
    return (q * torch.log(KL_EPS + q / (p + KL_EPS))).sum()


def test_kl_hand_case_and_zero_for_equal_distributions():
    p = torch.tensor([[0.25, 0.75]])
    q = torch.tensor([[0.5, 0.5]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_per_sample(p, q).item() == pytest.approx(expected, rel=1e-5)
    assert kl_per_sample(q * 3, q).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert kl_per_sample(p, torch.zeros_like(p)).item() == 0.0  # empty target: no NaN


def test_kl_is_per_sample_not_per_batch():
    torch.manual_seed(0)
    a, b = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4) * 10  # different total masses
    ga, gb = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)
    per_sample = kl_per_sample(torch.cat([a, b]), torch.cat([ga, gb]))
    assert per_sample[0].item() == pytest.approx(_batch_kl_original(a, ga).item(), rel=1e-5)
    assert per_sample[1].item() == pytest.approx(_batch_kl_original(b, gb).item(), rel=1e-5)
    # the original's batch-wide normalisation gives a different number at batch 2
    joint = _batch_kl_original(torch.cat([a, b]), torch.cat([ga, gb])).item()
    assert abs(joint - per_sample.mean().item()) > 1e-3


def test_saliency_loss_is_batch_invariant_and_matches_bce_plus_kl():
    torch.manual_seed(1)
    logits = torch.randn(3, 1, 8, 8)
    target = torch.rand(3, 1, 8, 8)
    whole = saliency_loss(logits, target)
    singles = torch.stack([saliency_loss(logits[i : i + 1], target[i : i + 1]) for i in range(3)])
    assert whole.item() == pytest.approx(singles.mean().item(), rel=1e-5)
    one = F.binary_cross_entropy_with_logits(logits[:1], target[:1]) + _batch_kl_original(
        torch.sigmoid(logits[:1]), target[:1]
    )
    assert singles[0].item() == pytest.approx(one.item(), rel=1e-5)
    with pytest.raises(ValueError):
        saliency_loss(logits, target[:, :, :4])


def test_student_loss_sums_maps_and_broadcasts_one_target():
    torch.manual_seed(2)
    maps = torch.randn(2, 3, 1, 6, 6)
    gts = torch.rand(2, 3, 1, 6, 6)
    total = student_loss(maps, gts)
    expected = sum(saliency_loss(maps[:, m], gts[:, m]).item() for m in range(3))
    assert total.item() == pytest.approx(expected, rel=1e-5)
    shared = student_loss(maps[:, :2], gts[:, :1])
    assert shared.item() == pytest.approx(
        saliency_loss(maps[:, 0], gts[:, 0]).item() + saliency_loss(maps[:, 1], gts[:, 0]).item(), rel=1e-5
    )
    # a perfect-ish prediction has a lower loss than a wrong one
    good = torch.where(gts > 0.5, 6.0, -6.0)
    assert student_loss(good, (gts > 0.5).float()) < student_loss(-good, (gts > 0.5).float())


def test_switch_and_teacher_losses():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    target = torch.tensor([0, 1])
    assert switch_loss(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())
    cfg = get_config("tiny_s")
    model = build_model(cfg)
    frames = torch.randn(2, 1, 3, cfg.input_size, cfg.input_size)
    labels = F.one_hot(torch.tensor([0, 2]), cfg.num_classes).float()
    out = model(frames)
    assert teacher_loss(model, out, labels).item() == pytest.approx(model.loss(out, labels).item())
