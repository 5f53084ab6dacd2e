"""The built-in training variants: names, one-line summaries, stages and presets (imports no torch).

A *variant* is a name users pass to ``--variant`` (or ``--task``, or an ablation row's
``variant``): a preset configuration and the *stage* that trains it. This table is the one place
they are declared, read by the configuration (:mod:`spsr.train.config`), the variant registry
(:mod:`spsr.train.variants`, which adds variants registered at run time), the command line's
``--help`` (which must stay fast: nothing here imports torch), ``spsr ablate`` and the stages.

* ``psnr`` (stage ``psnr``, ``spsr pretrain-psnr``): PSNR-oriented L1 pre-training, ESRGAN's
  schedule;
* ``esrgan`` and ``g`` (stage ``gan``): ESRGAN and SPSR-G (CVPR 2020 §3, eq. 10);
* ``u`` (stage ``unet``): the U-Net follow-up (§3.1, eq. 13);
* ``p``, ``j``, ``r``, ``vgg``, ``resnet`` (stage ``structure``): SPSR-P, -J, -R, -VGG, -ResNet
  (TPAMI 2021 §4.3, eq. 17, Table 6);
* ``contrastive`` and ``jigsaw`` (stage ``nse``, ``spsr pretrain-nse``): the NSE's pretext
  training (TPAMI 2021 §4.2, §5.1).

A stage is a class in the module :data:`STAGE_MODULES` names, which registers it when imported
(:func:`spsr.train.variants.register_stage`); stage-specific configuration sections
(``[unet]``, ``[nse]``, ``[structure]``) are registered by the same modules
(:data:`SECTION_MODULES`). To add a variant of an existing stage, add a :class:`Variant` below;
plugins register theirs at run time with :func:`spsr.train.variants.register_variant`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spsr.nse import NSE_TASKS

if TYPE_CHECKING:
    from spsr.train.config import TrainConfig


@dataclass(frozen=True)
class Variant:
    """A named preset.

    Attributes:
        name: what ``--variant`` takes.
        stage: the registered stage that trains it.
        summary: one line for ``--help``.
        configure: sets the preset's values on a default :class:`~spsr.train.config.TrainConfig`.
        command: the ``spsr`` command that trains it (``train``, ``pretrain-psnr``,
            ``pretrain-nse``).
    """

    name: str
    stage: str
    summary: str
    configure: Callable[[TrainConfig], None]
    command: str = "train"


#: The module that defines (and registers) each built-in stage.
STAGE_MODULES: dict[str, str] = {
    "psnr": "spsr.train.stages.psnr",
    "gan": "spsr.train.stages.gan",
    "unet": "spsr.train.stages.unet",
    "structure": "spsr.train.stages.structure",
    "nse": "spsr.train.stages.nse",
}
#: The module that registers each stage-specific configuration section.
SECTION_MODULES: dict[str, str] = {
    "unet": STAGE_MODULES["unet"],
    "nse": STAGE_MODULES["nse"],
    "structure": STAGE_MODULES["structure"],
}


# ----------------------------------------------------------------------------------- presets


def configure_psnr(cfg: TrainConfig) -> None:
    """``psnr``: ESRGAN's PSNR-oriented schedule (L1, Adam 2e-4 halved every 200k, 1M steps)."""
    cfg.model.arch = "rrdb"
    lo = cfg.loss
    lo.pixel, lo.perceptual, lo.perceptual_net = 1.0, 0.0, "none"
    lo.gan = lo.gradient_pixel = lo.gradient_gan = lo.branch = 0.0
    cfg.optim.lr_g = 2e-4
    cfg.optim.milestones = [200_000, 400_000, 600_000, 800_000]
    cfg.run.iterations = 1_000_000


def configure_g(cfg: TrainConfig) -> None:
    """``g`` (SPSR-G): the defaults of :mod:`spsr.train.config` are its published values."""
    cfg.model.arch = "spsr"


def configure_esrgan(cfg: TrainConfig) -> None:
    """``esrgan``: RRDBNet with pixel, perceptual and image-adversarial losses only."""
    cfg.model.arch = "rrdb"
    cfg.loss.gradient_pixel = cfg.loss.gradient_gan = cfg.loss.branch = 0.0


def configure_u(cfg: TrainConfig) -> None:
    """``u`` (the U-Net follow-up, §3.1): the desubpixel SPSR generator, MoA, eq. 13's weights."""
    cfg.model.arch = "spsr"
    cfg.model.extra = {"desubpixel_head": True}
    lo = cfg.loss
    lo.pixel, lo.perceptual, lo.perceptual_net = 0.01, 0.001, "lpips"
    lo.gan, lo.gradient_pixel, lo.gradient_gan, lo.branch = 0.005, 0.01, 0.005, 0.5
    cfg.data.moa = True
    cfg.section("unet")  # written out in the run's config.toml with its defaults


def configure_structure(extractor: str) -> Callable[[TrainConfig], None]:
    """SPSR-P / -J / -R / -VGG / -ResNet (TPAMI 2021 eq. 17): the structure loss on
    ``extractor``."""

    def configure(cfg: TrainConfig) -> None:
        cfg.model.arch = "spsr"
        # TPAMI 2021 eq. 17: no image-space adversarial loss, no gradient-space losses.
        cfg.loss.gan = cfg.loss.gradient_pixel = cfg.loss.gradient_gan = 0.0
        cfg.section("structure").extractor = extractor

    return configure


def configure_nse(
    task: str, crop: int, lr: float, epochs: int, step: int
) -> Callable[[TrainConfig], None]:
    """The NSE's pretext training (TPAMI 2021 §5.1): batch 48, lr × 0.2 every ``step`` epochs."""

    def configure(cfg: TrainConfig) -> None:
        n = cfg.section("nse")
        n.task, n.crop, n.epochs, n.lr_step_epochs = task, crop, epochs, step
        cfg.optim.lr_g = lr
        cfg.optim.gamma = 0.2
        cfg.data.batch_size = 48
        # Library defaults; spsr pretrain-nse derives both from nse.epochs and the data size.
        cfg.run.iterations = 30_000 if task == "contrastive" else 45_000
        cfg.optim.milestones = [10_000, 20_000] if task == "contrastive" else [15_000, 30_000]
        cfg.run.checkpoint_every = 1000

    return configure


_NSE_PRESETS = {  # task: (crop, lr, epochs, decay step in epochs, summary)
    "contrastive": (420, 1e-3, 60, 20, "NSE by contrastive prediction (F_P of SPSR-P)"),
    "jigsaw": (84, 1e-4, 90, 30, "NSE by 2×2 jigsaw puzzles (F_J of SPSR-J)"),
}

#: Every built-in variant, in the order ``--help`` lists them.
CATALOG: tuple[Variant, ...] = (
    Variant("psnr", "psnr", "PSNR-oriented L1 pre-training of any generator", configure_psnr,
            command="pretrain-psnr"),
    Variant("esrgan", "gan", "ESRGAN: L1 + VGG19 perceptual + RaGAN (RRDBNet)", configure_esrgan),
    Variant("g", "gan",
            "SPSR-G: ESRGAN losses + gradient pixel/adversarial + branch L1 (SPSR generator)",
            configure_g),
    Variant("u", "unet",
            "the U-Net follow-up: SPSR (desubpixel head) + U-Net D (hinge, CutMix) + LPIPS + "
            "feature matching + gradient losses, MoA",
            configure_u),
    Variant("p", "structure",
            "SPSR-P: L1 + perceptual + structure loss on an NSE by contrastive prediction",
            configure_structure("p")),
    Variant("j", "structure", "SPSR-J: as p, with an NSE trained by jigsaw puzzles",
            configure_structure("j")),
    Variant("r", "structure", "SPSR-R: as p, with a randomly initialised NSE",
            configure_structure("r")),
    Variant("vgg", "structure", "SPSR-VGG: as p, with ImageNet VGG19 conv5_4 features",
            configure_structure("vgg")),
    Variant("resnet", "structure", "SPSR-ResNet: as p, with ImageNet ResNet18 conv4_2 features",
            configure_structure("resnet")),
    *(Variant(task, "nse", _NSE_PRESETS[task][4], configure_nse(task, *_NSE_PRESETS[task][:4]),
              command="pretrain-nse") for task in NSE_TASKS),
)


def catalog() -> dict[str, Variant]:
    """The built-in variants by name."""
    return {v.name: v for v in CATALOG}


def trained_by(command: str) -> list[Variant]:
    """The built-in variants a command trains (``train``: those ``--variant`` offers)."""
    return [v for v in CATALOG if v.command == command]
