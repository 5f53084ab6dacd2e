"""Structure loss of SPSR-P / SPSR-J (TPAMI 2021 §4.3, eqs. 14–17, App. C) and its feature extractors.

``L_SF = β_SF · ‖F(SR) − F(HR)‖₁ + γ_SF · L_adv(D_SF(F(SR)))`` with a frozen extractor F:
β_SF = 1e-7 and γ_SF = 0.1 in the paper. This module holds F (every variant of TPAMI 2021 Table 6),
the pixel-wise term, and a helper for the generator's adversarial term; the discriminator D_SF is
:class:`spsr.archs.discriminator_sf.StructureFeatureDiscriminator`.

Extractors (``kind``):

* ``p`` / ``j``: an NSE trained by ``spsr pretrain-nse`` (contrastive / jigsaw), read from its
  ``nse.safetensors`` or run folder; 32 channels at 1/4 resolution.
* ``r``: a randomly initialised NSE (SPSR-R), drawn from a fixed seed so that a resumed run sees
  the same one.
* ``vgg``: ImageNet VGG19, "the 4th convolution after the 4th max-pooling" as ESRGAN, i.e. conv5_4
  before its ReLU; 512 channels at 1/16.
* ``resnet``: ImageNet ResNet18 ``conv4_2``: the output of the second basic block of the fourth
  stage (``layer3``), 256 channels at 1/16 ("the same spatial resolution" as VGG's, App. C).

ImageNet weights are torchvision's files, looked up in torchvision's cache (``$TORCH_HOME``) or
given as a path, fetched by :mod:`spsr.weights` when missing (unless offline); weights that
cannot be had raise :class:`MissingWeightsError`.

Reduction: β_SF = 1e-7 only makes the term count (Tables 3–4 show it moves PSNR by tenths of a
dB) when the L1 distance is summed rather than averaged (a mean over features of magnitude ~1
times 1e-7 could not change anything), so the default reduction is ``sum`` over the batch, as
``nn.L1Loss(reduction="sum")``; ``mean`` is available. The sum is over the *global* batch: under
DistributedDataParallel each process sums its own slice and DDP averages the gradients over the
N processes, so the loss multiplies its slice's sum by N (``world_size``); N processes then train
exactly as one process on the whole batch, and the logged value (averaged over processes) is the
global sum.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from spsr.errors import CheckpointError, ConfigError
from spsr.losses.gan import AdversarialLoss
from spsr.losses.perceptual import IMAGENET_MEAN, IMAGENET_STD, VGGFeatureExtractor
from spsr.nse.extractor import NeuralStructureExtractor
from spsr.nse.files import load_nse
from spsr.weights.catalog import spec
from spsr.weights.fetch import Need, ensure_file
from spsr.weights.kinds import load_torch_state

STRUCTURE_EXTRACTORS: tuple[str, ...] = ("p", "j", "r", "vgg", "resnet")
STRUCTURE_REDUCTIONS: tuple[str, ...] = ("sum", "mean")
DEFAULT_BETA = 1e-7
DEFAULT_GAMMA = 0.1
#: Seed of the random NSE of ``r`` (fixed, so every run and resume sees the same extractor).
RANDOM_NSE_SEED = 0
RESNET18_URL = ResNet18_Weights.IMAGENET1K_V1.url


class StructureExtractor(nn.Module):
    """A frozen feature network F: images in [0, 1] → structure features.

    Always in eval mode, no parameter requires gradients; gradients still flow to its input.

    Args:
        net: the network (an NSE, VGG19 or ResNet18 features).
        kind: one of :data:`STRUCTURE_EXTRACTORS`.
        channels: channels of the output.
        stride: input side / output side.
        imagenet_normalize: normalise the input with ImageNet's mean and std first.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, net: nn.Module, kind: str, channels: int, stride: int, imagenet_normalize: bool
    ) -> None:
        super().__init__()
        self.net = net
        self.kind = kind
        self.channels = channels
        self.stride = stride
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> StructureExtractor:
        return super().train(False)

    def output_size(self, input_size: int) -> int:
        """Side of the feature map of a square input of side ``input_size``."""
        return -(-input_size // self.stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Structure features of N×3×H×W images in [0, 1]."""
        if self.imagenet_normalize:
            images = (images - self.mean) / self.std
        return self.net(images)


def random_nse(seed: int = RANDOM_NSE_SEED) -> NeuralStructureExtractor:
    """A randomly initialised NSE, the same for the same seed (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NeuralStructureExtractor()


# ----------------------------------------------------------------------------------- ResNet18


def extractor_need(extractor: str, weights: str, vgg_weights: str = "") -> Need | None:
    """The ImageNet weights a pretrained ``vgg`` / ``resnet`` structure extractor loads (None for
    the others): ``weights`` if given, else for VGG ``vgg_weights``, else torchvision's cache."""
    if extractor not in ("vgg", "resnet"):
        return None
    file = spec("vgg19" if extractor == "vgg" else "resnet18")
    explicit = weights or (vgg_weights if extractor == "vgg" else "")
    option = "--set structure.weights=PATH" + (" or --vgg-weights PATH" if extractor == "vgg" else "")
    return Need(file, explicit or None, option, "the structure extractor")


def resolve_resnet18_weights(
    path: str | os.PathLike[str] | None = None, option: str = "--set structure.weights=PATH"
) -> Path:
    """The ResNet18 weights file: ``path`` if given, else torchvision's cache (fetched from
    torchvision's URL when missing or corrupt, unless network access is off).

    Raises:
        MissingWeightsError: the file does not exist and cannot be fetched (the message says how to
            provide it).
    """
    return ensure_file(Need(spec("resnet18"), str(path) if path else None, option, "ResNet18 features"))


def resnet18_conv4_2(
    weights: str | os.PathLike[str] | None = None, pretrained: bool = True
) -> nn.Module:
    """ResNet18 from its stem to ``conv4_2`` (the end of ``layer3``).

    Args:
        weights: torchvision ``resnet18`` state dict; ``None`` looks in the cache.
        pretrained: ``False`` keeps torchvision's random initialisation and reads nothing.

    Raises:
        MissingWeightsError: pretrained weights requested but not available.
        CheckpointError: the file is not a ResNet18 state dict.
    """
    model = resnet18()
    if pretrained:
        path = resolve_resnet18_weights(weights)
        state = load_torch_state(path, "torchvision's ResNet18 weights", "the file is resnet18-f37072fd.pth")
        state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path} does not hold torchvision ResNet18 weights ({exc})"
            ) from None
    return nn.Sequential(
        model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3
    )


# ----------------------------------------------------------------------------------- factory


def build_structure_extractor(
    kind: str,
    nse: str | os.PathLike[str] | NeuralStructureExtractor | None = None,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    seed: int = RANDOM_NSE_SEED,
) -> StructureExtractor:
    """The frozen extractor F of a structure-loss variant.

    Args:
        kind: ``p``, ``j`` (trained NSE), ``r`` (random NSE), ``vgg`` or ``resnet``.
        nse: for ``p`` / ``j``: a ``pretrain-nse`` run folder, an ``nse.safetensors`` file, or
            an NSE module.
        weights: for ``vgg`` / ``resnet``: an explicit ImageNet weights file (default: the cache).
        pretrained: for ``vgg`` / ``resnet``: ``False`` uses a random backbone (tests only).
        seed: for ``r``: the seed of the random NSE.

    Raises:
        ConfigError: unknown kind, or ``p`` / ``j`` without ``nse``.
        CheckpointError / MissingWeightsError: weights that cannot be read or found.
    """
    if kind in ("p", "j"):
        if nse is None:
            raise ConfigError(
                f"variant {kind} needs a trained NSE: pass --nse RUN (spsr pretrain-nse)"
            )
        net = nse if isinstance(nse, NeuralStructureExtractor) else load_nse(nse)
        return StructureExtractor(net, kind, net.out_channels, net.stride, imagenet_normalize=False)
    if kind == "r":
        net = random_nse(seed)
        return StructureExtractor(net, kind, net.out_channels, net.stride, imagenet_normalize=False)
    if kind == "vgg":
        vgg = VGGFeatureExtractor("conv5_4", weights, pretrained=pretrained)  # normalises itself
        return StructureExtractor(vgg, kind, 512, 16, imagenet_normalize=False)
    if kind == "resnet":
        return StructureExtractor(resnet18_conv4_2(weights, pretrained), kind, 256, 16, True)
    raise ConfigError(
        f"unknown structure extractor {kind!r}; choose one of {', '.join(STRUCTURE_EXTRACTORS)}"
    )


# ----------------------------------------------------------------------------------- losses


class StructurePixelLoss(nn.Module):
    """β_SF · L1(F(SR), F(HR)) (TPAMI 2021 eq. 14), F frozen, F(HR) without gradient.

    Args:
        extractor: the frozen F.
        beta: β_SF.
        reduction: ``sum`` (default, see the module docstring) or ``mean``.
        world_size: processes the batch is split over (DDP): a sum is multiplied by it, so
            that after DDP's gradient averaging it is the sum over the global batch.
    """

    def __init__(
        self,
        extractor: StructureExtractor,
        beta: float = DEFAULT_BETA,
        reduction: str = "sum",
        world_size: int = 1,
    ) -> None:
        super().__init__()
        if reduction not in STRUCTURE_REDUCTIONS:
            raise ConfigError(f"unknown structure loss reduction {reduction!r} (sum, mean)")
        if world_size < 1:
            raise ValueError(f"world_size must be at least 1, not {world_size}")
        self.extractor = extractor
        self.beta = beta
        self.reduction = reduction
        self.world_size = world_size

    def forward(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        sr_features: torch.Tensor | None = None,
        hr_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            sr: generated images (carrying the generator's graph).
            hr: ground-truth images.
            sr_features: F(sr) when already computed (e.g. for D_SF too).
            hr_features: F(hr) when already computed (used detached).

        Returns:
            The weighted scalar loss, in float32.
        """
        if sr_features is None:
            sr_features = self.extractor(sr)
        if hr_features is None:
            with torch.no_grad():
                hr_features = self.extractor(hr)
        distance = (sr_features.float() - hr_features.detach().float()).abs()
        if self.reduction == "sum":
            return self.beta * self.world_size * distance.sum()
        return self.beta * distance.mean()


def structure_generator_loss(
    extractor: StructureExtractor,
    discriminator: nn.Module,
    adversarial: AdversarialLoss,
    sr: torch.Tensor,
    hr: torch.Tensor,
    beta: float = DEFAULT_BETA,
    gamma: float = DEFAULT_GAMMA,
    reduction: str = "sum",
    world_size: int = 1,
) -> dict[str, torch.Tensor]:
    """The generator's structure loss L_SF (eq. 16), both terms, by name.

    D_SF is called as given: freeze its parameters (``spsr.train.runtime.frozen``) so that only
    the generator receives gradients. ``world_size``: as :class:`StructurePixelLoss`.

    Returns:
        ``{"pixel": β·L1, "adversarial": γ·L_adv, "sr_features": F(SR), "hr_features": F(HR)}``;
        the feature maps are returned for the discriminator's own step (detach them there).
    """
    sr_features = extractor(sr)
    with torch.no_grad():
        hr_features = extractor(hr)
        real_logits = discriminator(hr_features)
    pixel = StructurePixelLoss(extractor, beta, reduction, world_size)(sr, hr, sr_features, hr_features)
    fake_logits = discriminator(sr_features)
    return {
        "pixel": pixel,
        "adversarial": gamma * adversarial.generator(real_logits, fake_logits),
        "sr_features": sr_features,
        "hr_features": hr_features,
    }
