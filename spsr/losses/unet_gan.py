"""Losses of the U-Net discriminator (the U-Net follow-up, eq. 2–5, 7; U-Net GAN's CutMix regularisation).

Hinge losses on the encoder's global logit and on the decoder's per-pixel logits::

    L_D_enc = E_HR[max(0, 1 - D_enc(HR))] + E_SR[max(0, 1 + D_enc(SR))]
    L_D_dec = the same, averaged over pixels
    L_G_adv = -E_SR[D_enc(SR) + D_dec(SR)]

CutMix consistency (U-Net GAN): mix HR and SR with a box mask ``M`` (1 = HR), and ask the decoder
to be equivariant to the mix,
``L_cons = ‖D_dec(mix(HR, SR, M)) − mix(D_dec(HR), D_dec(SR), M)‖²``; the mixed image is also
classified (encoder: fake; decoder: ``M`` per pixel).

Feature matching (eq. 7): ``Σ_l ‖D_l(SR) − D_l(HR)‖₁`` over the discriminator's blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from spsr.archs.discriminator_unet import UNetDOutput


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``mean(relu(1 − real)) + mean(relu(1 + fake))``.

    Args:
        real_logits: logits of real images, any shape (global or per pixel).
        fake_logits: logits of generated images, any shape.

    Returns:
        Scalar loss.
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss ``−mean(fake)``.

    Args:
        fake_logits: discriminator logits of generated images.

    Returns:
        Scalar loss.
    """
    return -fake_logits.mean()


def unet_d_losses(real: UNetDOutput, fake: UNetDOutput) -> dict[str, torch.Tensor]:
    """The two hinge terms of the U-Net discriminator (eq. 2 and 3).

    Args:
        real: discriminator output on HR images.
        fake: discriminator output on SR images (computed from detached SR).

    Returns:
        ``{"d_enc": L_D_enc, "d_dec": L_D_dec}``.
    """
    d_enc = hinge_d_loss(real.global_logit, fake.global_logit)
    if real.pixel_logits is None or fake.pixel_logits is None:  # an encoder-only D
        return {"d_enc": d_enc, "d_dec": d_enc.new_zeros(())}
    return {"d_enc": d_enc, "d_dec": hinge_d_loss(real.pixel_logits, fake.pixel_logits)}


def unet_g_loss(fake: UNetDOutput) -> torch.Tensor:
    """Generator adversarial loss against the U-Net discriminator (eq. 4).

    Args:
        fake: discriminator output on SR images (with gradients to the generator).

    Returns:
        ``−mean(D_enc(SR)) − mean(D_dec(SR))``.
    """
    if fake.pixel_logits is None:  # an encoder-only D: its global term alone
        return hinge_g_loss(fake.global_logit)
    return hinge_g_loss(fake.global_logit) + hinge_g_loss(fake.pixel_logits)


def cutmix_mask(
    n: int,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Random CutMix masks: 1 inside a box, 0 outside, or the inverse (each with probability ½).

    The box covers a fraction ``1 − λ`` of the area, ``λ ~ U(0, 1)``, and is centred uniformly
    (clipped at the borders), as in CutMix.

    Args:
        n: number of masks.
        height: mask height.
        width: mask width.
        generator: random generator (CPU) for reproducible masks.
        device: device of the returned tensor.

    Returns:
        Float tensor ``(n, 1, height, width)`` of zeros and ones.
    """
    rand = torch.rand(n, 4, generator=generator)
    mask = torch.zeros(n, 1, height, width)
    for i in range(n):
        lam, cy, cx, flip = rand[i].tolist()
        cut = (1.0 - lam) ** 0.5
        bh, bw = int(round(height * cut)), int(round(width * cut))
        y0 = max(int(cy * height) - bh // 2, 0)
        x0 = max(int(cx * width) - bw // 2, 0)
        mask[i, :, y0 : min(y0 + bh, height), x0 : min(x0 + bw, width)] = 1.0
        if flip < 0.5:
            mask[i] = 1.0 - mask[i]
    return mask.to(device)


def cutmix(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask · real + (1 − mask) · fake`` (mask broadcast over channels).

    Args:
        real: tensor ``(N, C, H, W)`` taken where the mask is 1.
        fake: tensor of the same shape taken where the mask is 0.
        mask: ``(N, 1, H, W)`` of zeros and ones.

    Returns:
        The mixed tensor.
    """
    return mask * real + (1.0 - mask) * fake


def cutmix_consistency_loss(
    mixed_pixel_logits: torch.Tensor,
    real_pixel_logits: torch.Tensor,
    fake_pixel_logits: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """``mean((D_dec(mix(HR, SR, M)) − mix(D_dec(HR), D_dec(SR), M))²)``.

    Zero exactly when the decoder's decision on the mixed image equals the mix of its decisions.

    Args:
        mixed_pixel_logits: decoder logits of the CutMix image.
        real_pixel_logits: decoder logits of the HR images.
        fake_pixel_logits: decoder logits of the SR images.
        mask: the CutMix mask used to build the mixed image (1 = HR).

    Returns:
        Scalar loss.
    """
    target = cutmix(real_pixel_logits, fake_pixel_logits, mask)
    return (mixed_pixel_logits - target).pow(2).mean()


def cutmix_d_losses(
    mixed: UNetDOutput,
    real: UNetDOutput,
    fake: UNetDOutput,
    mask: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Discriminator terms on a CutMix image (U-Net GAN): consistency and mixed classification.

    Args:
        mixed: discriminator output on ``cutmix(HR, SR, mask)``.
        real: discriminator output on HR.
        fake: discriminator output on SR (detached from the generator).
        mask: the CutMix mask (1 = HR).

    Returns:
        ``{"d_cons": consistency, "d_mix_enc": the encoder sees the mix as fake,
        "d_mix_dec": per-pixel hinge with target ``mask``}``.
    """
    pixel, real_pixel, fake_pixel = mixed.pixel_logits, real.pixel_logits, fake.pixel_logits
    if pixel is None or real_pixel is None or fake_pixel is None:
        raise ValueError("the CutMix terms need the U-Net discriminator's decoder")
    per_pixel = mask * F.relu(1.0 - pixel) + (1.0 - mask) * F.relu(1.0 + pixel)
    return {
        "d_cons": cutmix_consistency_loss(pixel, real_pixel, fake_pixel, mask),
        "d_mix_enc": F.relu(1.0 + mixed.global_logit).mean(),
        "d_mix_dec": per_pixel.mean(),
    }


def feature_matching_loss(
    fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Sum over blocks of the mean absolute difference of discriminator features (eq. 7).

    The real features are detached: only the generator is pulled towards them.

    Args:
        fake_features: block features of D on SR images.
        real_features: block features of D on HR images, same length and shapes.

    Returns:
        Scalar loss.
    """
    if len(fake_features) != len(real_features):
        raise ValueError("feature lists differ in length")
    total = fake_features[0].new_zeros(())
    for fake, real in zip(fake_features, real_features, strict=True):
        total = total + F.l1_loss(fake, real.detach())
    return total
