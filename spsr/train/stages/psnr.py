"""PSNR-oriented pre-training: any generator, pixel loss only (the init of GAN training).

Preset ``psnr`` (:func:`spsr.variant_catalog.configure_psnr`: ESRGAN's PSNR-oriented schedule,
the init the SPSR papers start from): L1, Adam lr 2e-4, halved every 200k iterations, 1M
iterations, batch 16 of 32×32 LR patches. Two gradient-space terms of SPSR-G (CVPR 2020 §3.2,
eq. 7 and eq. 9) can be added, neither needing ImageNet weights nor a discriminator:
``loss.gradient_pixel`` > 0 adds the gradient pixel loss ``L1(M(SR), M(HR))`` (any generator), and
for an SPSR generator ``loss.branch`` > 0 adds the L1 loss between the gradient branch's predicted
map and ``M(HR)``. The ``psnr`` preset sets both to 0 (ESRGAN's L1-only schedule); the built-in
``psnr`` model was fine-tuned with both on (``spsr/tools/train_default_models.sh``).
"""

from __future__ import annotations

import torch

from spsr.archs import build_model, sr_of
from spsr.archs.init import init_generator
from spsr.errors import ConfigError
from spsr.losses.gradient import GradientPixelLoss
from spsr.losses.pixel import PixelLoss, pixel_distance
from spsr.ops import GradientMap
from spsr.train.config import TrainConfig
from spsr.train.runtime import Runtime
from spsr.train.stage import Stage, make_adam, make_multistep
from spsr.train.variants import register_stage


class PSNRStage(Stage):
    """One generator, one optimizer,
    ``pixel·L1(SR, HR) [+ gradient_pixel·L1(M(SR), M(HR))] [+ branch·L1(grad, M(HR))]``."""

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        super().__init__(cfg, rt)
        spec = cfg.model.spec()
        self.has_branch = spec.has_gradient_branch
        self.branch_weight = cfg.loss.branch
        if self.branch_weight > 0 and not self.has_branch:
            raise ConfigError("loss.branch needs a generator with a gradient branch (--arch spsr)")
        if cfg.loss.pixel <= 0 and self.branch_weight <= 0:
            raise ConfigError("PSNR pre-training needs loss.pixel > 0")
        generator = init_generator(build_model(spec), spec.arch, cfg.model.weight_init)
        # Without the branch loss the gradient map head (conv_w) takes no part in the loss.
        self.G = self.add_network(
            "G", generator, export_spec=spec,
            find_unused_parameters=self.has_branch and self.branch_weight == 0,
        )
        opt = make_adam(generator.parameters(), cfg.optim, cfg.optim.lr_g, cfg.optim.weight_decay_g)
        self.add_optimizer("G", opt, make_multistep(opt, cfg.optim))
        self.pixel = PixelLoss(cfg.loss.pixel_criterion)
        self.gradient = GradientMap(padding=1).to(rt.device)
        self.gradient_pixel_weight = cfg.loss.gradient_pixel
        self.gradient_pixel = GradientPixelLoss(cfg.loss.gradient_form).to(rt.device)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        lr, hr = batch["lr"], batch["hr"]
        with self.rt.autocast():
            out = self.G(lr)
        sr = sr_of(out)
        terms = {"g/pixel": self.cfg.loss.pixel * self.pixel(sr, hr)}
        if self.gradient_pixel_weight > 0:
            terms["g/grad_pixel"] = self.gradient_pixel_weight * self.gradient_pixel(sr, hr)
        if self.branch_weight > 0:
            with torch.autocast(hr.device.type, enabled=False):
                target = self.gradient(hr.float())
            terms["g/branch"] = self.branch_weight * pixel_distance(out.grad, target, "l1")
        total = sum(terms.values())
        self.rt.optimize(total, "G")
        values = {k: float(v.detach()) for k, v in terms.items()}
        values["g/total"] = float(total.detach())
        return values


register_stage("psnr", PSNRStage)
