"""Structure-loss variants: SPSR-P, SPSR-J and the other extractors of TPAMI 2021 Table 6.

Generator loss (TPAMI 2021 eq. 17): ``L_Per + β_I·L_Pix + L_SF`` with the structure loss
``L_SF = β_SF·L1(F(SR), F(HR)) + γ_SF·L_adv(D_SF(F(SR)))`` (eq. 16); the image-space adversarial
loss and the gradient-space losses of SPSR-G are removed, the gradient branch and its L1 loss
are kept (the ablation "w/o GB" removes them with ``--arch rrdb``).

================  ==============================================  =====================
log key           term                                            weight (default)
================  ==============================================  =====================
``g/pixel``       L1(SR, HR)                                      loss.pixel (0.01)
``g/perceptual``  VGG19 conv5_4 L1 (or LPIPS)                     loss.perceptual (1)
``g/branch``      L1(gradient branch output, M(HR))               loss.branch (0.5)
``g/structure``   L1(F(SR), F(HR)), summed over the global batch  structure.beta (1e-7)
``g/sf_gan``      RaGAN of D_SF on F(SR)                          structure.gamma (0.1)
================  ==============================================  =====================

Variants pick F (``structure.extractor``): ``p`` / ``j`` an NSE from ``spsr pretrain-nse``
(``--nse RUN``, trained by contrastive prediction / jigsaw: the run's task is checked), ``r`` a
random NSE, ``vgg`` / ``resnet`` ImageNet VGG19 conv5_4 / ResNet18 conv4_2 (App. C). F is frozen;
its weights are also kept in the training state, so a resumed run uses the same F even if the
NSE file changed. D_SF (:class:`~spsr.archs.discriminator_sf.StructureFeatureDiscriminator`)
is sized for F's maps of the HR crops (32 channels × 32×32 for the NSE on 128×128 crops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from spsr.archs import SROutput, sr_of
from spsr.archs.discriminator_sf import StructureFeatureDiscriminator
from spsr.errors import ConfigError, MissingWeightsError
from spsr.losses.gan import make_adversarial_loss
from spsr.losses.structure import (
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    STRUCTURE_EXTRACTORS,
    STRUCTURE_REDUCTIONS,
    StructureExtractor,
    StructurePixelLoss,
    build_structure_extractor,
    extractor_need,
)
from spsr.nse.files import nse_metadata
from spsr.train.config import TrainConfig, register_section
from spsr.train.runtime import Runtime
from spsr.train.stages.gan import Adversary, GANStage
from spsr.train.variants import register_stage
from spsr.weights.fetch import Need

#: The pretext task an NSE must have been trained with for each variant.
_NSE_TASK = {"p": "contrastive", "j": "jigsaw"}


@dataclass
class StructureConfig:
    """The structure loss (TOML section ``[structure]``, ``--set structure.KEY=...``).

    Attributes:
        extractor: F: ``p`` | ``j`` | ``r`` | ``vgg`` | ``resnet`` (set by the variant).
        nse: for ``p`` / ``j``: a ``spsr pretrain-nse`` run folder or ``nse.safetensors``.
        beta: β_SF, weight of the pixel-wise structure loss (1e-7).
        gamma: γ_SF, weight of the adversarial structure loss (0.1).
        reduction: ``sum`` (default; over the global batch whatever the number of processes,
            see :mod:`spsr.losses.structure`) or ``mean``.
        weights: for ``vgg`` / ``resnet``: the ImageNet weights file (default: torchvision's
            cache; for ``vgg`` also ``loss.vgg_weights``).
        random_backbone: ``vgg`` / ``resnet`` with random weights (tests, benchmarks only).
        gan_type: D_SF's adversarial loss (empty: ``loss.gan_type``, RaGAN).
    """

    extractor: str = "p"
    nse: str = ""
    beta: float = DEFAULT_BETA
    gamma: float = DEFAULT_GAMMA
    reduction: str = "sum"
    weights: str = ""
    random_backbone: bool = False
    gan_type: str = ""


register_section("structure", StructureConfig)


class StructureGANStage(GANStage):
    """:class:`GANStage` with the structure loss (see the module docstring)."""

    @classmethod
    def needs(cls, cfg: TrainConfig) -> list[Need]:
        """The perceptual loss's weights and a pretrained VGG/ResNet structure extractor's."""
        needs = super().needs(cfg)
        s: StructureConfig = cfg.section("structure")
        if not s.random_backbone and (s.beta > 0 or s.gamma > 0):
            extractor = extractor_need(s.extractor, s.weights, cfg.loss.vgg_weights)
            if extractor is not None:
                needs.append(extractor)
        return needs

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        self.s: StructureConfig = cfg.section("structure")
        self.extractor: StructureExtractor | None = None
        self.structure_pixel: StructurePixelLoss | None = None
        super().__init__(cfg, rt)  # calls build_adversaries, which builds F when it is needed

    def _extractor(self) -> StructureExtractor:
        if self.extractor is None:
            s = self.s
            if s.extractor not in STRUCTURE_EXTRACTORS:
                raise ConfigError(
                    f"unknown structure extractor {s.extractor!r}; choose one of "
                    f"{', '.join(STRUCTURE_EXTRACTORS)}"
                )
            if s.reduction not in STRUCTURE_REDUCTIONS:
                raise ConfigError(f"unknown structure.reduction {s.reduction!r} (sum, mean)")
            if s.beta < 0 or s.gamma < 0:
                raise ConfigError("structure.beta and structure.gamma must be >= 0")
            if s.extractor in _NSE_TASK and s.nse:
                trained = nse_metadata(s.nse).get("task", "")
                if trained != _NSE_TASK[s.extractor]:
                    raise ConfigError(
                        f"variant {s.extractor} takes an NSE trained by {_NSE_TASK[s.extractor]}, "
                        f"but {s.nse} was trained by {trained or 'an unknown task'}"
                    )
            weights = s.weights or (self.cfg.loss.vgg_weights if s.extractor == "vgg" else "")
            try:
                extractor = build_structure_extractor(
                    s.extractor, nse=s.nse or None, weights=weights or None,
                    pretrained=not s.random_backbone,
                )
            except MissingWeightsError as exc:
                raise MissingWeightsError(f"variant {s.extractor}: {exc}") from None
            self.add_network("F", extractor, trainable=False)
            self.extractor = extractor
        return self.extractor

    def build_adversaries(self) -> list[Adversary]:
        """SPSR-G's adversaries still switched on (none in the presets) plus D_SF on F(SR)."""
        adversaries = super().build_adversaries()
        s = self.s
        if s.beta > 0:
            self.structure_pixel = StructurePixelLoss(
                self._extractor(), s.beta, s.reduction, world_size=self.rt.dist.world_size
            )
        if s.gamma > 0:
            extractor = self._extractor()
            size = self.hr_size()
            d_sf = StructureFeatureDiscriminator(
                extractor.channels, extractor.output_size(size), self.cfg.d.nf, self.cfg.d.hidden
            )
            loss = make_adversarial_loss(s.gan_type) if s.gan_type else None
            adversaries.append(self.add_adversary("D_SF", "sf_gan", extractor, s.gamma, d_sf, loss))
        return adversaries

    def generator_terms(
        self, out: torch.Tensor | SROutput, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        terms = super().generator_terms(out, batch)
        if self.structure_pixel is not None:
            terms["g/structure"] = self.structure_pixel(sr_of(out), batch["hr"])
        return terms

    def extra_state(self) -> dict[str, Any]:
        state = super().extra_state()
        if self.extractor is not None and self.s.extractor in ("p", "j", "r"):
            state["structure_extractor"] = {
                k: v.detach().cpu() for k, v in self.extractor.state_dict().items()
            }
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        saved = state.get("structure_extractor")
        if saved is not None and self.extractor is not None:
            self.extractor.load_state_dict(saved)


register_stage("structure", StructureGANStage)
