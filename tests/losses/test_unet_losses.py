"""Hinge, CutMix consistency and feature-matching losses of the U-Net discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spsr.archs.discriminator_unet import UNetDiscriminator, UNetDOutput
from spsr.losses.unet_gan import (
    cutmix,
    cutmix_consistency_loss,
    cutmix_d_losses,
    cutmix_mask,
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    unet_d_losses,
    unet_g_loss,
)


def output(global_logit: torch.Tensor, pixel_logits: torch.Tensor) -> UNetDOutput:
    return UNetDOutput(global_logit, pixel_logits, [])


def test_hinge_losses_known_values() -> None:
    real = torch.tensor([2.0, 0.5])  # relu(1 - x): 0, 0.5
    fake = torch.tensor([-2.0, 0.5])  # relu(1 + x): 0, 1.5
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.25 + 0.75)
    assert hinge_g_loss(fake).item() == pytest.approx(0.75)


def test_unet_losses_use_both_outputs() -> None:
    real = output(torch.tensor([[2.0]]), torch.full((1, 1, 2, 2), 0.0))
    fake = output(torch.tensor([[0.0]]), torch.tensor([[[[-1.0, 1.0], [0.0, 3.0]]]]))
    d = unet_d_losses(real, fake)
    assert d["d_enc"].item() == pytest.approx(0.0 + 1.0)
    assert d["d_dec"].item() == pytest.approx(1.0 + (0 + 2 + 1 + 4) / 4)
    assert unet_g_loss(fake).item() == pytest.approx(-(0.0 + 0.75))


def is_rectangle(box: torch.Tensor) -> bool:
    """Whether the ones of a 2-D 0/1 map form one filled axis-aligned rectangle (or none)."""
    if box.sum() == 0:
        return True
    rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    return bool(box.sum() == (r1 - r0) * (c1 - c0))


def test_cutmix_mask_is_a_box_or_its_complement() -> None:
    gen = torch.Generator().manual_seed(3)
    masks = cutmix_mask(16, 12, 10, generator=gen)
    assert masks.shape == (16, 1, 12, 10)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    for m in masks[:, 0]:
        assert is_rectangle(m) or is_rectangle(1 - m)
    again = cutmix_mask(16, 12, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(masks, again)
    assert 0.1 < masks.mean().item() < 0.9


def test_consistency_is_zero_for_an_exactly_consistent_decoder() -> None:
    """A per-pixel decoder commutes with CutMix, so the regulariser must vanish."""
    torch.manual_seed(0)
    per_pixel = nn.Conv2d(3, 1, 1)
    real, fake = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    mask = cutmix_mask(4, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss = cutmix_consistency_loss(
            per_pixel(cutmix(real, fake, mask)), per_pixel(real), per_pixel(fake), mask
        )
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_consistency_is_positive_for_a_decoder_with_context() -> None:
    torch.manual_seed(0)
    d = UNetDiscriminator(nf=8, channel_mult=(1, 2)).eval()
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    with torch.no_grad():
        mixed, r, f = d(cutmix(real, fake, mask)), d(real), d(fake)
        losses = cutmix_d_losses(mixed, r, f, mask)
    assert losses["d_cons"].item() > 1e-8


def test_mixed_image_targets_known_values() -> None:
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    perfect = output(torch.tensor([[-1.0]]), 2 * mask - 1)  # encoder: fake; decoder: the mask
    losses = cutmix_d_losses(perfect, perfect, perfect, mask)
    assert losses["d_mix_enc"].item() == 0.0 and losses["d_mix_dec"].item() == 0.0
    wrong = output(torch.tensor([[1.0]]), 1 - 2 * mask)
    losses = cutmix_d_losses(wrong, perfect, perfect, mask)
    assert losses["d_mix_enc"].item() == pytest.approx(2.0)
    assert losses["d_mix_dec"].item() == pytest.approx(2.0)


def test_feature_matching_known_value_and_gradient_to_fake_only() -> None:
    fake = [
        torch.ones(1, 2, 2, 2, requires_grad=True),
        torch.full((1, 1, 4, 4), 3.0, requires_grad=True),
    ]
    real = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.ones(1, 1, 4, 4, requires_grad=True)]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(1.0 + 2.0)
    loss.backward()
    assert fake[0].grad is not None and real[0].grad is None
    with pytest.raises(ValueError):
        feature_matching_loss(fake, real[:1])
