"""Variant ``u`` (the U-Net follow-up): SPSR with a U-Net discriminator, LPIPS and feature matching.

The generator is SPSR-G's (gradient features fused at HR resolution, after the up-convs) with the
desubpixel head: its input is the LR image nearest-upsampled to HR size and brought back by
space-to-depth, so MoA (on by default here, ``data.moa``) can use CutBlur. Every iteration: one
generator step, then one step of each discriminator.

Generator terms (the U-Net follow-up, eq. 13; a zero weight removes the term):

=================== ================================================== =========================
log key             term                                               weight (default)
=================== ================================================== =========================
``g/pixel``         L1(SR, HR) (eq. 12)                                loss.pixel (0.01)
``g/perceptual``    LPIPS AlexNet v0.1 (SR, HR) (eq. 6)                loss.perceptual (0.001)
``g/grad_pixel``    L1(M(SR), M(HR)) (eq. 8)                           loss.gradient_pixel (0.01)
``g/branch``        L1(gradient branch output, M(HR)) (eq. 9)          loss.branch (0.5)
``g/gan``           hinge −E[D_enc(SR) + D_dec(SR)], U-Net D (eq. 4)   loss.gan (0.005)
``g/feature_match`` Σ_l L1(D_l(SR), D_l(HR)), U-Net D blocks (eq. 7)   unet.feature_matching (1)
``g/grad_gan``      RaGAN of the VGG-style D_grad on M(SR) (eq. 11)    loss.gradient_gan (0.005)
=================== ================================================== =========================

Eq. 13 gives the feature-matching term no λ (weight 1) and lists one λ_Adv for both adversarial
terms (0.005). The U-Net discriminator ``D`` is trained with hinge losses on its global (encoder)
and per-pixel (decoder) outputs (eq. 2, 3) plus, with probability ``unet.cutmix_prob`` (reached
linearly over the first ``unet.cutmix_warmup`` iterations, as U-Net GAN ramps it), the CutMix
terms of U-Net GAN: the decoder's consistency on a CutMix of HR and SR (eq. 5's L_Dcons) and the
classification of that mix (encoder: fake; decoder: the mask). The classification term and the
ramped probability are additions: the follow-up's eq. 5 is L_Denc + L_Ddec + L_Dcons, and they
come from U-Net GAN. ``unet.decoder = false`` keeps the encoder alone (hinge on its logit,
feature matching on its blocks, no CutMix terms): the follow-up's "w/o U-Net" row. ``D_grad`` is
SPSR-G's, RaGAN
(``loss.gan_type`` applies to it only; the U-Net D is always hinge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from spsr.archs import SROutput
from spsr.archs.discriminator_unet import UNetDiscriminator
from spsr.errors import ConfigError
from spsr.losses.unet_gan import (
    cutmix,
    cutmix_d_losses,
    cutmix_mask,
    feature_matching_loss,
    unet_d_losses,
    unet_g_loss,
)
from spsr.train.batches import sample_seed
from spsr.train.config import TrainConfig, register_section
from spsr.train.runtime import Runtime
from spsr.train.stages.gan import Adversary, GANStage, identity_view
from spsr.train.variants import register_stage

# Seed position of the per-iteration CutMix coin (apart from the samples' and MoA's).
_CUTMIX_POSITION = (1 << 41) + (1 << 40)


@dataclass
class UNetConfig:
    """The U-Net discriminator and its terms (TOML section ``[unet]``, ``--set unet.KEY=...``).

    Attributes:
        nf: channels of the first encoder block (64; blocks ``nf × channel_mult``).
        channel_mult: channel multiplier of each encoder block; its length is the depth, and HR
            crops must be multiples of ``2 ** depth``.
        spectral_norm: spectral normalisation on every layer (the reference design).
        feature_matching: weight of the feature-matching term of the generator (eq. 7).
        cutmix: weight of the CutMix terms in the discriminator's loss (0: no CutMix).
        cutmix_prob: probability of the CutMix terms in an iteration, once warmed up (0.5).
        cutmix_warmup: iterations over which that probability grows linearly from 0.
        decoder: False drops the decoder: an encoder discriminator (hinge on its global logit,
            feature matching over its blocks, no CutMix terms, which need the per-pixel output;
            ``unet.cutmix`` must then be 0): the follow-up's "w/o U-Net" row.
    """

    nf: int = 64
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    spectral_norm: bool = True
    feature_matching: float = 1.0
    cutmix: float = 1.0
    cutmix_prob: float = 0.5
    cutmix_warmup: int = 50_000
    decoder: bool = True


register_section("unet", UNetConfig)


def _check(u: UNetConfig) -> None:
    if u.nf < 1 or not u.channel_mult or min(u.channel_mult) < 1:
        raise ConfigError("unet.nf and every unet.channel_mult entry must be positive")
    if u.feature_matching < 0 or u.cutmix < 0:
        raise ConfigError("unet.feature_matching and unet.cutmix are weights >= 0")
    if not u.decoder and u.cutmix > 0:
        raise ConfigError("the CutMix terms need the U-Net decoder: set unet.cutmix=0 with "
                          "unet.decoder=false")
    if not 0.0 <= u.cutmix_prob <= 1.0 or u.cutmix_warmup < 0:
        raise ConfigError("unet.cutmix_prob must lie in [0, 1] and unet.cutmix_warmup be >= 0")


def _never(iteration: int) -> bool:
    return False


@dataclass
class UNetAdversary(Adversary):
    """The U-Net discriminator ``D`` as an adversary of the generator (the U-Net follow-up, §2).

    Generator: hinge −E[D_enc(SR) + D_dec(SR)] weighted by ``weight`` (``loss.gan``; eq. 4) and
    the feature matching Σ_l L1(D_l(SR), D_l(HR)) weighted by ``feature_matching`` (eq. 7).
    Discriminator: hinge on both outputs (eq. 2, 3), plus ``cutmix`` × the CutMix terms when the
    iteration draws them (eq. 5's consistency, plus U-Net GAN's classification of the mix: an
    addition). The losses are those of :mod:`spsr.losses.unet_gan`.

    Attributes:
        feature_matching: weight of the feature-matching term (0: none).
        cutmix: weight of the CutMix terms in the discriminator's loss.
        draws_cutmix: whether an iteration uses the CutMix terms (the stage's seeded coin).
    """

    feature_matching: float = 0.0
    cutmix: float = 0.0
    draws_cutmix: Callable[[int], bool] = _never

    def generator_terms(
        self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        out = d(fake)
        if self.weight > 0:
            terms[f"g/{self.key}"] = self.weight * unet_g_loss(out)
        if self.feature_matching > 0:
            with torch.no_grad():
                target = d(real)
            terms["g/feature_match"] = self.feature_matching * feature_matching_loss(
                out.features, target.features
            )
        return terms

    def discriminator_loss(
        self, net: nn.Module, real: torch.Tensor, fake: torch.Tensor, iteration: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        use_cutmix = self.draws_cutmix(iteration)
        real_out, fake_out = net(real), net(fake)
        terms = unet_d_losses(real_out, fake_out)
        loss = terms["d_enc"] + terms["d_dec"]
        cons = mix = torch.zeros((), device=real.device)
        if use_cutmix:
            n, _, height, width = real.shape
            mask = cutmix_mask(n, height, width, device=real.device).to(real.dtype)
            mixed = net(cutmix(real, fake, mask))
            cm = cutmix_d_losses(mixed, real_out, fake_out, mask)
            cons, mix = cm["d_cons"], cm["d_mix_enc"] + cm["d_mix_dec"]
            loss = loss + self.cutmix * (cons + mix)
        return loss, {
            "enc": terms["d_enc"].detach(),
            "dec": terms["d_dec"].detach(),  # 0 for an encoder-only D
            "cons": cons.detach(),
            "mix": mix.detach(),
            "cutmix_rate": 1.0 if use_cutmix else 0.0,
            "real": real_out.global_logit.detach().float().mean(),
            "fake": fake_out.global_logit.detach().float().mean(),
        }


class UNetStage(GANStage):
    """SPSR generator + U-Net discriminator ``D`` + gradient discriminator ``D_grad``.

    Networks: ``G``; ``D`` (U-Net, when ``loss.gan`` or ``unet.feature_matching`` is > 0);
    ``D_grad`` (when ``loss.gradient_gan`` > 0); the frozen ``lpips`` (or ``vgg``) network.
    Every iteration runs :class:`GANStage`'s loop over the adversaries ``D`` then ``D_grad``.
    """

    feeds_upsampled_lr = True  # MoA's HR-size lr goes to G(lr, upsampled=True)

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        self.unet: UNetConfig = cfg.section("unet")
        _check(self.unet)
        self.has_unet = cfg.loss.gan > 0 or self.unet.feature_matching > 0
        super().__init__(cfg, rt)

    def _build_unet(self) -> UNetDiscriminator:
        u = self.unet
        multiple = 2 ** len(u.channel_mult)
        shape = self.rt.data_shapes.get("hr") or ()
        if len(shape) < 2 or shape[-1] % multiple or shape[-2] % multiple:
            raise ConfigError(
                f"the U-Net discriminator of depth {len(u.channel_mult)} needs HR crops that are "
                f"multiples of {multiple} pixels, got {tuple(shape[-2:])}"
            )
        return UNetDiscriminator(3, u.nf, tuple(u.channel_mult), u.spectral_norm, u.decoder)

    def build_adversaries(self) -> list[Adversary]:
        """The U-Net ``D`` on images, then ``D_grad`` (SPSR-G's, RaGAN) on gradient maps.

        ``D_grad`` is built (and its weights drawn) first, as it always was, so that a run's
        initial weights and checkpoint layout do not depend on this order.
        """
        lo = self.cfg.loss
        adversaries: list[Adversary] = []
        if lo.gradient_gan > 0:
            pad = 2 if lo.gradient_form == "official" else 0
            size = self.hr_size()
            adversaries.append(self.add_adversary(
                "D_grad", "grad_gan", self.gradient.maps, lo.gradient_gan,
                self.vgg_discriminator(size + pad),
            ))
        if self.has_unet:
            self.D = self.register_discriminator("D", self._build_unet())
            u = self.unet
            adversaries.insert(0, UNetAdversary(
                "D", "gan", identity_view, lo.gan, None, feature_matching=u.feature_matching,
                cutmix=u.cutmix, draws_cutmix=self.draws_cutmix,
            ))
        return adversaries

    def cutmix_probability(self, iteration: int) -> float:
        """Probability of the CutMix terms at ``iteration`` (linear warm-up to ``cutmix_prob``)."""
        u = self.unet
        if u.cutmix <= 0:
            return 0.0
        if u.cutmix_warmup <= 0:
            return u.cutmix_prob
        return u.cutmix_prob * min(1.0, iteration / u.cutmix_warmup)

    def cutmix_coin(self, iteration: int) -> float:
        """A uniform draw in [0, 1) that decides whether ``iteration`` uses CutMix.

        It depends on the run's seed and the iteration only, so every process draws the same: a
        DDP forward broadcasts the discriminator's buffers, so every process must call it as often.
        """
        seed = sample_seed(self.cfg.run.seed, iteration, _CUTMIX_POSITION)
        return float(torch.rand((), generator=torch.Generator().manual_seed(seed)))

    def draws_cutmix(self, iteration: int) -> bool:
        """Whether ``iteration`` adds the CutMix terms to the U-Net D's loss."""
        p = self.cutmix_probability(iteration)
        return p > 0 and self.cutmix_coin(iteration) < p

    # ------------------------------------------------------------------ one iteration

    def generate(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | SROutput:
        """``G(lr)``, or ``G(lr, upsampled=True)`` when MoA handed the HR-size input."""
        lr, hr = batch["lr"], batch["hr"]
        if lr.shape[-2:] == hr.shape[-2:]:
            return self.G(lr, upsampled=True)
        return self.G(lr)


register_stage("unet", UNetStage)
