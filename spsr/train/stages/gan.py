"""Adversarial training of a generator: ESRGAN and SPSR-G, and the base of later variants.

Every iteration: one generator step on the weighted sum of its loss terms, then one step of each
discriminator (RaGAN, BCE-with-logits, as the official code: G and every D updated each step).

Generator terms (weights in ``cfg.loss``; a zero weight removes the term, and its network):

================  ==========================================  ===============================
log key           term                                        SPSR-G weight (CVPR 2020 eq. 10)
================  ==========================================  ===============================
``g/pixel``       L1(SR, HR)                                  β_I = 0.01
``g/perceptual``  L1(VGG19 conv5_4 (SR), VGG19 conv5_4 (HR))  1 (``--perceptual lpips``: LPIPS)
``g/gan``         RaGAN of D on images                        γ_I = 0.005
``g/grad_pixel``  L1(M(SR), M(HR)) (official: MSE, pad 2)     β_GM = 0.01
``g/grad_gan``    RaGAN of D_grad on M(SR)                    γ_GM = 0.005
``g/branch``      L1(gradient branch output, M(HR))           β_GB = 0.5
================  ==========================================  ===============================

Variants: ``esrgan`` (RRDBNet; the first three terms) and ``g`` (SPSR generator; all six).
``--backbone edsr|srresnet`` swaps the backbone (EDSR-GAN / EDSR-G, TPAMI 2021 App. D): the
gradient-space terms work with any generator, the branch term needs an SPSR generator.

Extending: subclass :class:`GANStage` and override :meth:`GANStage.generator_terms` (content
terms) and/or :meth:`GANStage.build_adversaries` (one :class:`Adversary` per discriminator: the
discriminator, what it looks at, its weight and its loss). SPSR-P swaps the gradient-space
adversary for one on NSE features; the U-Net variant's discriminator is an :class:`Adversary`
with its own losses (:class:`spsr.train.stages.unet.UNetAdversary`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from spsr.archs import SROutput, build_model, sr_of
from spsr.archs.discriminator_vgg import VGGDiscriminator
from spsr.archs.init import init_discriminator, init_generator
from spsr.errors import ConfigError, MissingWeightsError
from spsr.losses.gan import AdversarialLoss, make_adversarial_loss
from spsr.losses.gradient import GradientPixelLoss
from spsr.losses.lpips_loss import LPIPSLoss
from spsr.losses.lpips_net import alexnet_need
from spsr.losses.perceptual import PerceptualLoss, VGGFeatureExtractor, vgg19_need
from spsr.losses.pixel import PixelLoss, pixel_distance
from spsr.train.config import PERCEPTUAL_NETS, TrainConfig
from spsr.train.runtime import Runtime, frozen
from spsr.train.stage import Stage, make_adam, make_multistep
from spsr.train.variants import register_stage
from spsr.weights.fetch import Need


@dataclass
class Adversary:
    """A discriminator and how the generator meets it.

    The generator step calls :meth:`generator_terms` and each discriminator's step
    :meth:`discriminator_loss`; the defaults are a relativistic (or plain) GAN on one output of
    the discriminator. A discriminator with another loss (the U-Net follow-up's, whose terms live
    in :mod:`spsr.losses.unet_gan`) overrides the two methods.

    Attributes:
        name: network / optimizer name (``D``, ``D_grad``).
        key: log prefix (``gan`` → ``g/gan``; the discriminator logs ``d_gan/loss``...).
        view: maps an image batch to what the discriminator sees (identity, gradient map...);
            it must be differentiable for the generated images.
        weight: weight of the generator's adversarial term.
        loss: the adversarial loss (RaGAN by default; None for an adversary that overrides both
            methods).
    """

    name: str
    key: str
    view: Callable[[torch.Tensor], torch.Tensor]
    weight: float
    loss: AdversarialLoss | None = None

    def generator_terms(
        self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The generator's weighted terms against ``d`` (frozen), by log key.

        Args:
            d: the discriminator, unwrapped (no DDP synchronisation).
            real: the view of the real images (detached).
            fake: the view of the generated images (differentiable).
        """
        assert self.loss is not None
        with torch.no_grad():
            real_logits = d(real)
        return {f"g/{self.key}": self.weight * self.loss.generator(real_logits, d(fake))}

    def discriminator_loss(
        self, net: nn.Module, real: torch.Tensor, fake: torch.Tensor, iteration: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """The discriminator's loss on one batch and what to log besides it (under ``d_KEY/``).

        Args:
            net: the discriminator as trained (DDP-wrapped when distributed).
            real: the view of the real images.
            fake: the view of the generated images, detached.
            iteration: the current iteration (for schedules such as CutMix's warm-up).
        """
        assert self.loss is not None
        real_logits, fake_logits = net(real), net(fake)
        loss = self.loss.discriminator(real_logits, fake_logits)
        return loss, {"real": real_logits.detach().float().mean(),
                      "fake": fake_logits.detach().float().mean()}


class GANStage(Stage):
    """Generator + discriminators trained together (see the module docstring)."""

    @classmethod
    def needs(cls, cfg: TrainConfig) -> list[Need]:
        """The perceptual loss's ImageNet weights: VGG19 or (``--perceptual lpips``) AlexNet."""
        lo = cfg.loss
        if lo.perceptual <= 0:
            return []
        if lo.perceptual_net == "vgg":
            return [vgg19_need(lo.vgg_weights, "--vgg-weights PATH (or --perceptual none)")]
        if lo.perceptual_net == "lpips":
            return [alexnet_need(lo.lpips_weights, "--lpips-weights PATH (or --perceptual none)",
                                 "the LPIPS perceptual loss")]
        return []

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        super().__init__(cfg, rt)
        lo = cfg.loss
        if lo.perceptual_net not in PERCEPTUAL_NETS:
            raise ConfigError(f"unknown perceptual network {lo.perceptual_net!r} (vgg, lpips, none)")
        self.spec = cfg.model.spec()
        self.has_branch = self.spec.has_gradient_branch
        if lo.branch > 0 and not self.has_branch:
            raise ConfigError("loss.branch needs a generator with a gradient branch (arch spsr)")
        generator = init_generator(build_model(self.spec), self.spec.arch, cfg.model.weight_init)
        self.G = self.add_network(
            "G", generator, export_spec=self.spec,
            find_unused_parameters=self.has_branch and lo.branch == 0,
        )
        opt = make_adam(generator.parameters(), cfg.optim, cfg.optim.lr_g, cfg.optim.weight_decay_g)
        self.add_optimizer("G", opt, make_multistep(opt, cfg.optim))
        self.warmup_frozen = self._warmup_frozen(generator)

        self.pixel = PixelLoss(lo.pixel_criterion)
        self.gradient = GradientPixelLoss(lo.gradient_form).to(rt.device)
        self.branch_target = GradientPixelLoss("paper").to(rt.device)  # M with padding 1, as the branch
        self.perceptual: PerceptualLoss | LPIPSLoss | None = None
        if lo.perceptual > 0 and lo.perceptual_net.startswith("lpips"):
            self.perceptual = _lpips_loss(lo.lpips_weights, lo.perceptual_net == "lpips_random")
            self.add_network("lpips", self.perceptual, trainable=False)
        elif lo.perceptual > 0 and lo.perceptual_net != "none":
            extractor = VGGFeatureExtractor(
                lo.perceptual_layer, lo.vgg_weights or None, pretrained=lo.perceptual_net == "vgg"
            )
            self.add_network("vgg", extractor, trainable=False)
            self.perceptual = PerceptualLoss(extractor, "l1")
        self.adversaries = self.build_adversaries()
        self.nets = {a.name: self.rt.networks[a.name].wrapped for a in self.adversaries}

    # ------------------------------------------------------------------ building blocks

    def _warmup_frozen(self, generator: nn.Module) -> list[nn.Parameter]:
        if self.cfg.run.fusion_warmup <= 0:
            return []
        fusion_parameters = getattr(generator, "fusion_parameters", None)
        if fusion_parameters is None:
            raise ConfigError("run.fusion_warmup needs an SPSR generator (it trains the fusion block alone)")
        fusion = {id(p) for p in fusion_parameters()}
        return [p for p in generator.parameters() if id(p) not in fusion]

    def hr_size(self) -> int:
        """Side of the HR training crops (what the discriminators are built for)."""
        shape = self.rt.data_shapes.get("hr")
        if not shape:
            raise ConfigError("the training data gave no 'hr' tensor")
        if shape[-1] != shape[-2]:
            raise ConfigError(f"the VGG discriminator needs square HR crops, got {shape[-2]}×{shape[-1]}")
        return int(shape[-1])

    def add_adversary(
        self,
        name: str,
        key: str,
        view: Callable[[torch.Tensor], torch.Tensor],
        weight: float,
        discriminator: nn.Module,
        loss: AdversarialLoss | None = None,
    ) -> Adversary:
        """Initialise a new discriminator (``d.weight_init``) and register it with its own Adam +
        MultiStepLR (lr ``optim.lr_d``)."""
        self.register_discriminator(name, discriminator)
        return Adversary(name, key, view, weight, loss or make_adversarial_loss(self.cfg.loss.gan_type))

    def register_discriminator(self, name: str, discriminator: nn.Module) -> nn.Module:
        """Initialise ``discriminator`` (``d.weight_init``), register it as network ``name`` with
        its own Adam + MultiStepLR (lr ``optim.lr_d``); the network as trained (DDP-wrapped)."""
        net = self.add_network(name, init_discriminator(discriminator, self.cfg.d.weight_init))
        o = self.cfg.optim
        opt = make_adam(discriminator.parameters(), o, o.lr_d, o.weight_decay_d)
        self.add_optimizer(name, opt, make_multistep(opt, o))
        return net

    def vgg_discriminator(self, input_size: int, in_nc: int = 3) -> VGGDiscriminator:
        return VGGDiscriminator(in_nc, self.cfg.d.nf, input_size, self.cfg.d.hidden)

    def build_adversaries(self) -> list[Adversary]:
        """D on images (weight ``loss.gan``) and D_grad on gradient maps (``loss.gradient_gan``)."""
        lo, size = self.cfg.loss, self.hr_size()
        out = []
        if lo.gan > 0:
            out.append(self.add_adversary("D", "gan", identity_view, lo.gan, self.vgg_discriminator(size)))
        if lo.gradient_gan > 0:
            pad = 2 if lo.gradient_form == "official" else 0
            out.append(self.add_adversary(
                "D_grad", "grad_gan", self.gradient.maps, lo.gradient_gan,
                self.vgg_discriminator(size + pad),
            ))
        return out

    def generator_terms(
        self, out: torch.Tensor | SROutput, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The weighted non-adversarial terms of the generator's loss, by log key."""
        lo, hr = self.cfg.loss, batch["hr"]
        sr = sr_of(out)
        terms: dict[str, torch.Tensor] = {}
        if lo.pixel > 0:
            terms["g/pixel"] = lo.pixel * self.pixel(sr, hr)
        if self.perceptual is not None:
            terms["g/perceptual"] = lo.perceptual * self.perceptual(sr, hr)
        if lo.gradient_pixel > 0:
            terms["g/grad_pixel"] = lo.gradient_pixel * self.gradient(sr, hr)
        if lo.branch > 0:
            assert isinstance(out, SROutput)
            target = self.branch_target.maps(hr)
            terms["g/branch"] = lo.branch * pixel_distance(out.grad, target, "l1")
        return terms

    # ------------------------------------------------------------------ one iteration

    def generate(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | SROutput:
        """The generator's forward on the batch (called under autocast)."""
        return self.G(batch["lr"])

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        rt, hr = self.rt, batch["hr"]
        with rt.autocast():
            out = self.generate(batch)
        sr = sr_of(out)

        # Generator step: discriminators frozen and called without DDP (no synchronisation).
        real_views, fake_views = {}, {}
        with frozen(*(self.module(a.name) for a in self.adversaries)), rt.autocast():
            terms = self.generator_terms(out, batch)
            for a in self.adversaries:
                real_views[a.name] = a.view(hr).detach()
                fake_views[a.name] = a.view(sr)
                terms.update(a.generator_terms(
                    self.module(a.name), real_views[a.name], fake_views[a.name]
                ))
        values = self.optimize_generator(terms)
        values.update(self.discriminator_steps(real_views, fake_views))
        return values

    def optimize_generator(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """One G step on the summed terms (fusion-only during the warm-up); the logged values."""
        rt = self.rt
        total = cast(torch.Tensor, sum(terms.values()))  # terms is never empty
        warm = rt.iteration <= self.cfg.run.fusion_warmup
        rt.optimize(total, "G", drop_grads=self.warmup_frozen if warm else ())
        values = {k: float(v.detach()) for k, v in terms.items()}
        values["g/total"] = float(total.detach())
        return values

    def discriminator_steps(
        self, real_views: dict[str, torch.Tensor], fake_views: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        """One step of every adversary on the same generated batch, detached."""
        rt = self.rt
        values: dict[str, float] = {}
        for a in self.adversaries:
            with rt.autocast():
                loss, logs = a.discriminator_loss(
                    self.nets[a.name], real_views[a.name], fake_views[a.name].detach(), rt.iteration
                )
            rt.optimize(loss, a.name)
            values[f"d_{a.key}/loss"] = float(loss.detach())
            values.update({f"d_{a.key}/{k}": float(v) for k, v in logs.items()})
        return values


def identity_view(x: torch.Tensor) -> torch.Tensor:
    """The view of a discriminator on images: the images."""
    return x


def _lpips_loss(weights: str, random_backbone: bool) -> LPIPSLoss:
    """The LPIPS perceptual loss; a missing AlexNet file says how to go on without it."""
    try:
        return LPIPSLoss(weights or None, random_backbone=random_backbone,
                         option="--lpips-weights PATH (or --perceptual none)")
    except MissingWeightsError as exc:
        raise MissingWeightsError(f"the LPIPS perceptual loss: {exc}") from None


register_stage("gan", GANStage)
