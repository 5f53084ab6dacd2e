"""VGG19 perceptual loss: L1 between VGG19 features of SR and HR (ESRGAN / SPSR: conv5_4, before
the ReLU, on ImageNet-normalised input in [0, 1]).

Weights are torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``), looked up the standard way in
torchvision's cache (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) or
given explicitly. A missing or corrupt cached file is fetched from torchvision's URL by
:mod:`spsr.weights` (SHA-256 checked) unless network access is off; then a
:class:`~spsr.errors.MissingWeightsError` says where to put it. Files are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn
from torchvision.models import VGG19_Weights

from spsr.errors import CheckpointError, ConfigError
from spsr.losses.pixel import pixel_distance
from spsr.weights.catalog import spec
from spsr.weights.fetch import Need, ensure_file
from spsr.weights.kinds import load_torch_state

VGG19_URL = VGG19_Weights.IMAGENET1K_V1.url
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_need(path: str | None, option: str, purpose: str = "the VGG19 perceptual loss") -> Need:
    """The VGG19 ImageNet weights this loss loads: ``path`` if given, else torchvision's cache."""
    return Need(spec("vgg19"), path or None, option, purpose)


def resolve_vgg19_weights(
    path: str | os.PathLike[str] | None = None,
    option: str = "--vgg-weights PATH (or --perceptual none)",
) -> Path:
    """The VGG19 weights file to use.

    Args:
        path: an explicit file; ``None`` or ``""`` uses torchvision's cache, fetching the file from
            torchvision's URL when it is missing or corrupt (unless network access is off).
        option: the option that supplies the file, for messages.

    Returns:
        An existing file path.

    Raises:
        MissingWeightsError: the file does not exist and cannot be fetched (the message says how to
            provide it).
    """
    return ensure_file(Need(spec("vgg19"), str(path) if path else None, option, "VGG19 perceptual loss"))


def vgg19_layer_index(layer: str) -> int:
    """Index in ``torchvision.models.vgg19().features`` of a named layer.

    Args:
        layer: ``convB_I`` / ``reluB_I`` (block B = 1..5, I-th conv of the block) or ``poolB``.

    Returns:
        The position of that layer in the ``features`` Sequential.
    """
    names: list[str] = []
    block, conv = 1, 0
    for module in _VGG19_LAYOUT:
        if module == "C":
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        else:
            names.append(f"pool{block}")
            block, conv = block + 1, 0
    if layer not in names:
        raise ConfigError(f"unknown VGG19 layer {layer!r} (e.g. conv5_4, relu5_4, pool4)")
    return names.index(layer)


# VGG19 ("E" configuration): C = conv (followed by ReLU), M = max-pool.
_VGG19_LAYOUT = ["C", "C", "M", "C", "C", "M"] + ["C"] * 4 + ["M"] + ["C"] * 4 + ["M"] + ["C"] * 4 + ["M"]
_VGG19_WIDTHS = [64, 64, 128, 128] + [256] * 4 + [512] * 8


def vgg19_features() -> nn.Sequential:
    """A randomly initialised ``torchvision.models.vgg19().features`` (same layers and indices,
    so its state dict is torchvision's ``features.*`` without the prefix), without building the
    140 M-parameter classifier."""
    layers: list[nn.Module] = []
    widths = iter(_VGG19_WIDTHS)
    cin = 3
    for kind in _VGG19_LAYOUT:
        if kind == "C":
            cout = next(widths)
            conv = nn.Conv2d(cin, cout, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            cin = cout
        else:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGFeatureExtractor(nn.Module):
    """VGG19 ``features`` up to and including ``layer``, frozen, on ImageNet-normalised input.

    Args:
        layer: last layer kept (see :func:`vgg19_layer_index`); ``conv5_4`` is before the ReLU.
        weights: path of torchvision's ``vgg19`` state dict; ``None`` looks in the cache.
        pretrained: ``False`` keeps the random initialisation (tests, benchmarks) and reads nothing.

    Raises:
        MissingWeightsError: pretrained weights requested but not available.
        CheckpointError: the file is not a VGG19 state dict.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        layer: str = "conv5_4",
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        stop = vgg19_layer_index(layer)
        features = vgg19_features()
        if pretrained:
            _load_vgg19_state(features, resolve_vgg19_weights(weights))
        self.layer = layer
        self.features = nn.Sequential(*list(features.children())[: stop + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        # Always in eval mode: a frozen feature extractor (no dropout/BN here, but be explicit).
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of RGB images in [0, 1], ``(N, 3, H, W)``."""
        return self.features((images - self.mean) / self.std)


def _load_vgg19_state(features: nn.Sequential, path: Path) -> None:
    state = load_torch_state(path, "torchvision's VGG19 weights", "the file is vgg19-dcbb9e9d.pth")
    found = {k[len("features."):]: v for k, v in state.items()
             if re.match(r"^features\.\d+\.(weight|bias)$", k)}
    expected = set(features.state_dict())
    if set(found) != expected:
        raise CheckpointError(
            f"{path} does not hold torchvision VGG19 features (missing {len(expected - set(found))} "
            f"keys, {len(set(found) - expected)} unexpected); is it vgg19_bn or another network?"
        )
    try:
        features.load_state_dict(found)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: VGG19 weights of the wrong shape ({exc})") from None


class PerceptualLoss(nn.Module):
    """Distance between feature maps of prediction and target.

    Args:
        extractor: a frozen feature network (e.g. :class:`VGGFeatureExtractor`).
        criterion: ``l1`` (ESRGAN / SPSR) or ``l2``.
    """

    def __init__(self, extractor: nn.Module, criterion: str = "l1") -> None:
        super().__init__()
        self.extractor = extractor
        self.criterion = criterion

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.extractor(target)
        return pixel_distance(self.extractor(prediction), target_features.detach(), self.criterion)
