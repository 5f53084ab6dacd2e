"""PSNR-oriented pre-training: any generator, pixel loss only (the init of GAN training).

Preset ``psnr`` (:func:`spsr.variant_catalog.configure_psnr`: ESRGAN's PSNR-oriented schedule,
the init the SPSR papers start from): L1, Adam lr 2e-4, halved every 200k iterations, 1M
iterations, batch 16 of 32×32 LR patches. For an SPSR generator, ``loss.branch`` > 0 adds the
L1 loss on the gradient branch's predicted map.
"""

from __future__ import annotations

import torch

from spsr.archs import build_model, sr_of
from spsr.archs.init import init_generator
from spsr.errors import ConfigError
from spsr.losses.pixel import PixelLoss, pixel_distance
from spsr.ops import GradientMap
from spsr.train.config import TrainConfig
from spsr.train.runtime import Runtime
from spsr.train.stage import Stage, make_adam, make_multistep
from spsr.train.variants import register_stage


class PSNRStage(Stage):
    """One generator, one optimizer, ``pixel·L1(SR, HR) [+ branch·L1(grad, M(HR))]``."""

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        super().__init__(cfg, rt)
        spec = cfg.model.spec()
        self.has_branch = spec.arch == "spsr"
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

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        lr, hr = batch["lr"], batch["hr"]
        with self.rt.autocast():
            out = self.G(lr)
        terms = {"g/pixel": self.cfg.loss.pixel * self.pixel(sr_of(out), hr)}
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
