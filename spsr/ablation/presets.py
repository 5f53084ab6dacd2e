"""The papers' ablation studies as grids (TPAMI 2021 Tables 2–7, the U-Net follow-up, Table 2).

Each row is a variant preset of the training engine plus the configuration keys it changes; the
rows run whatever the engine knows, so a preset whose variant (or key) the engine does not have
yet is planned with that row marked unavailable rather than failing.

What the rows switch, in the engine's terms:

* gradient branch off ("w/o GB"): the plain RRDB generator (``arch = rrdb``) with the branch loss
  off; every other loss stays;
* a loss off: its weight set to 0 (``loss.gradient_pixel`` = PGL, ``loss.gradient_gan`` = AGL,
  the structure loss's pixel / adversarial weights = PSL / ASL);
* another NSE: ``--nse NAME=RUN`` slots (``vertical``, ``cross``, ``jigsaw``);
* another backbone (TPAMI 2021 App. D, Table 7): the plain EDSR / SRResNet (``arch``) trained
  with a variant's losses, started from ``--init edsr=RUN`` / ``--init srresnet=RUN``: "-GAN"
  ESRGAN's losses, "-G" SPSR-G's gradient losses (pixel-wise and adversarial, on M(SR)) with no
  gradient branch, "-P" SPSR-P's structure loss; the grid ``backbones-gb`` instead puts the
  backbone under SPSR's gradient branch (``backbone``), a model the paper does not report.
"""

from __future__ import annotations

from spsr.ablation.grid import AblationConfig, AblationGrid
from spsr.errors import ConfigError

# The engine's names for the switches the presets use (one place to change if the engine renames).
PIXEL_GRADIENT_LOSS = "loss.gradient_pixel"  # β_GM, "PGL"
ADVERSARIAL_GRADIENT_LOSS = "loss.gradient_gan"  # γ_GM, "AGL"
BRANCH_LOSS = "loss.branch"  # β_GB
STRUCTURE_PIXEL_LOSS = "structure.beta"  # β_SF, "PSL" (SPSR-P)
STRUCTURE_ADVERSARIAL_LOSS = "structure.gamma"  # γ_SF, "ASL" (SPSR-P)

NO_BRANCH = {BRANCH_LOSS: 0.0}
LPIPS_PSNR_SSIM = ("lpips", "psnr", "ssim")


def _g_components() -> AblationGrid:
    c = AblationConfig
    return AblationGrid(
        name="g-components",
        title="Comparison of SPSR-G models with different components",
        source="TPAMI 2021, Table 2",
        metrics=LPIPS_PSNR_SSIM,
        configs=(
            c("ESRGAN", "esrgan", note="baseline: RRDBNet, L1 + VGG + RaGAN"),
            c(
                "SPSR-G w/o GB",
                "g",
                dict(NO_BRANCH),
                arch="rrdb",
                note="ESRGAN's generator trained with the full SPSR-G loss",
            ),
            c(
                "SPSR-G w/o GL",
                "g",
                {PIXEL_GRADIENT_LOSS: 0.0, ADVERSARIAL_GRADIENT_LOSS: 0.0},
                note="no gradient loss (pixel and adversarial)",
            ),
            c(
                "SPSR-G w/o AGL",
                "g",
                {ADVERSARIAL_GRADIENT_LOSS: 0.0},
                note="no adversarial gradient loss",
            ),
            c(
                "SPSR-G w/o PGL",
                "g",
                {PIXEL_GRADIENT_LOSS: 0.0},
                note="no pixel-wise gradient loss",
            ),
            c("SPSR-G", "g", note="complete model"),
        ),
    )


def _p_components() -> AblationGrid:
    c = AblationConfig
    return AblationGrid(
        name="p-components",
        title="Comparison of SPSR-P models with different components",
        source="TPAMI 2021, Table 3",
        metrics=LPIPS_PSNR_SSIM,
        configs=(
            c("SPSR-P", "p", nse="default", note="complete model"),
            c(
                "SPSR-P w/o ASL",
                "p",
                {STRUCTURE_ADVERSARIAL_LOSS: 0.0},
                nse="default",
                note="no adversarial structure loss",
            ),
            c(
                "SPSR-P w/o PSL",
                "p",
                {STRUCTURE_PIXEL_LOSS: 0.0},
                nse="default",
                note="no pixel-wise structure loss",
            ),
            c(
                "SPSR-P w/o GB",
                "p",
                dict(NO_BRANCH),
                arch="rrdb",
                nse="default",
                note="RRDB generator without the gradient branch",
            ),
            c(
                "SPSR-P w/o SL",
                "p",
                {STRUCTURE_PIXEL_LOSS: 0.0, STRUCTURE_ADVERSARIAL_LOSS: 0.0},
                nse="default",
                note="no structure loss",
            ),
        ),
    )


def _p_sensitivity() -> AblationGrid:
    c = AblationConfig
    rows = [
        c(
            f"γ = {label}",
            "p",
            {STRUCTURE_ADVERSARIAL_LOSS: value},
            nse="default",
            dir=f"gamma_{label}",
            note="adversarial structure loss weight γ_SF",
        )
        for label, value in (("1", 1.0), ("1e-2", 1e-2), ("1e-3", 1e-3))
    ] + [
        c(
            f"β = {label}",
            "p",
            {STRUCTURE_PIXEL_LOSS: value},
            nse="default",
            dir=f"beta_{label}",
            note="pixel-wise structure loss weight β_SF",
        )
        for label, value in (("1e-5", 1e-5), ("1e-6", 1e-6), ("1e-8", 1e-8))
    ]
    rows.append(c("SPSR-P", "p", nse="default", note="γ = 1e-1, β = 1e-7"))
    return AblationGrid(
        name="p-sensitivity",
        title="Parameter sensitivity of SPSR-P (γ = γ_SF, β = β_SF)",
        source="TPAMI 2021, Table 4",
        metrics=LPIPS_PSNR_SSIM,
        configs=tuple(rows),
    )


def _p_sampling() -> AblationGrid:
    c = AblationConfig
    return AblationGrid(
        name="p-sampling",
        title="SPSR-P models with NSEs trained by different sampling strategies",
        source="TPAMI 2021, Table 5",
        metrics=LPIPS_PSNR_SSIM,
        configs=(
            c("SPSR-P-h", "p", nse="default", note="NSE from horizontal neighbours (SPSR-P's)"),
            c("SPSR-P-v", "p", nse="vertical", note="NSE from vertical neighbours"),
            c("SPSR-P-c", "p", nse="cross", note="NSE from the four cross neighbours"),
        ),
    )


def _nse_choices() -> AblationGrid:
    c = AblationConfig
    return AblationGrid(
        name="nse-choices",
        title="SPSR models trained with different structure extractors",
        source="TPAMI 2021, Table 6",
        metrics=LPIPS_PSNR_SSIM,
        configs=(
            c("SPSR-VGG", "vgg", note="ImageNet VGG19 features"),
            c("SPSR-ResNet", "resnet", note="ImageNet ResNet18 conv4_2 features"),
            c("SPSR-R", "r", note="randomly initialised NSE"),
            c("SPSR-J", "j", nse="jigsaw", note="NSE trained by jigsaw puzzles"),
            c("SPSR-P", "p", nse="default", note="NSE trained by contrastive prediction"),
        ),
    )


BACKBONES = (("EDSR", "edsr"), ("SRResNet", "srresnet"))


def _backbones() -> AblationGrid:
    # App. D: "we use a pretrained EDSR model as initialization and train an EDSR-GAN model by
    # adding the perceptual loss and adversarial loss [...], an EDSR-G model with the proposed
    # gradient loss and an EDSR-P model with the proposed structure loss": the network stays the
    # plain backbone, only the losses change.
    c = AblationConfig
    rows = []
    for label, backbone in BACKBONES:
        rows += [
            c(
                label,
                "esrgan",
                arch=backbone,
                init=backbone,
                train=False,
                note=f"the PSNR-oriented {label} (--init {backbone}=...) as it is",
            ),
            c(
                f"{label}-GAN",
                "esrgan",
                arch=backbone,
                init=backbone,
                note="perceptual + adversarial losses",
            ),
            c(
                f"{label}-G",
                "g",
                dict(NO_BRANCH),
                arch=backbone,
                init=backbone,
                note=f"plain {label} + SPSR-G's gradient losses on M(SR) (no gradient branch)",
            ),
            c(
                f"{label}-P",
                "p",
                dict(NO_BRANCH),
                arch=backbone,
                init=backbone,
                nse="default",
                note=f"plain {label} + SPSR-P's structure loss (no gradient branch)",
            ),
        ]
    return AblationGrid(
        name="backbones",
        title="Perceptual-driven SR on other network architectures",
        source="TPAMI 2021, Table 7 (Appendix D)",
        metrics=LPIPS_PSNR_SSIM,
        configs=tuple(rows),
    )


def _backbones_gb() -> AblationGrid:
    # Not in the paper: the backbone as the SR branch of SPSR's generator, i.e. with the gradient
    # branch and fusion block, and SPSR-G's / SPSR-P's full losses (branch L1 included).
    c = AblationConfig
    rows = []
    for label, backbone in BACKBONES:
        rows += [
            c(
                f"{label}-G+GB",
                "g",
                backbone=backbone,
                init=backbone,
                note=f"SPSR-G with {label} as its SR branch (gradient branch, fusion, all losses)",
            ),
            c(
                f"{label}-P+GB",
                "p",
                backbone=backbone,
                init=backbone,
                nse="default",
                note=f"SPSR-P with {label} as its SR branch",
            ),
        ]
    return AblationGrid(
        name="backbones-gb",
        title="Other backbones as the SR branch of SPSR's generator (with the gradient branch)",
        source="not in the papers: the models of TPAMI 2021 Table 7 with the gradient branch",
        metrics=LPIPS_PSNR_SSIM,
        configs=tuple(rows),
    )


def _u_components() -> AblationGrid:
    """The U-Net follow-up's Table 2: each row changes what its name says and nothing else.

    * "Ours w/o GB": variant ``u`` with the plain RRDB generator (``arch = rrdb``, branch loss
      off) that keeps the desubpixel head (``model.extra`` as ``u`` sets it), so its input is the
      nearest-upsampled LR and MoA keeps CutBlur; every loss, both discriminators and MoA stay.
    * "Ours w/o U-Net": variant ``u`` with the U-Net discriminator's decoder removed
      (``unet.decoder = false``): §3.3 says this row "has the same encode discriminator as the
      general perceptual-driven methods", i.e. an encoder that ends in one global real/fake
      decision, which is D_U's encoder. Feature matching (eq. 7) is defined on "the l-th block
      of the discriminator" and nothing in the text drops it with the U-Net, so it stays, on the
      encoder's blocks (the blocks that remain). The CutMix terms (eq. 5) go with the decoder:
      their consistency and per-pixel classification are decoder outputs. The generator, its
      desubpixel input, MoA (CutBlur included), LPIPS and the gradient discriminator stay.
    * "Ours w/o LPIPS": the VGG19 perceptual loss at its usual weight instead of LPIPS.
    """
    c = AblationConfig
    return AblationGrid(
        name="u-components",
        title="Model configurations of the U-Net variant",
        source="the U-Net follow-up, Table 2",
        metrics=("pi", "psnr", "ssim"),
        configs=(
            c(
                "Ours w/o GB",
                "u",
                dict(NO_BRANCH),
                arch="rrdb",
                note="RRDB generator with the desubpixel head, no gradient branch",
            ),
            c(
                "Ours w/o U-Net",
                "u",
                {"unet.decoder": False, "unet.cutmix": 0.0},
                note="the U-Net D's encoder alone (feature matching on its blocks, no CutMix terms)",
            ),
            c(
                "Ours w/o LPIPS",
                "u",
                {"loss.perceptual_net": "vgg", "loss.perceptual": 1.0},
                note="VGG19 perceptual loss instead of LPIPS",
            ),
            c("Ours", "u", note="complete model"),
        ),
    )


_BUILDERS = {
    "g-components": _g_components,
    "p-components": _p_components,
    "p-sensitivity": _p_sensitivity,
    "p-sampling": _p_sampling,
    "nse-choices": _nse_choices,
    "backbones": _backbones,
    "backbones-gb": _backbones_gb,
    "u-components": _u_components,
}


def preset_names() -> list[str]:
    """Names of the built-in grids, in the papers' order."""
    return list(_BUILDERS)


def get_preset(name: str) -> AblationGrid:
    """A built-in grid by name.

    Raises:
        ConfigError: an unknown name.
    """
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise ConfigError(
            f"unknown ablation preset {name!r}; choose one of {', '.join(_BUILDERS)}"
        ) from None
