"""VGG-style discriminator of ESRGAN / SPSR (used for images, D, and for gradient maps, D_GM).

Ten convolutions in five stages (3×3 stride 1, then 4×4 stride 2), batch norm and LeakyReLU(0.2)
after every convolution but the first; channels ``nf, 2nf, 4nf, 8nf, 8nf``; for a 128×128 input
the last map is 4×4×512 and a head ``Linear(8192 → 100) → LReLU → Linear(100 → 1)`` gives one
logit per image. ``input_size`` sets the linear layer's width, so tiny tests can use small inputs;
the official padding-2 gradient maps (130×130) also end on a 4×4 map.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def stride2_size(size: int) -> int:
    """Side of a map after a 4×4, stride-2, padding-1 convolution."""
    return (size + 2 - 4) // 2 + 1


def conv_bn(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
    """Conv (no bias) + BatchNorm + LeakyReLU(0.2): the VGG-style discriminator stage."""
    return [
        nn.Conv2d(cin, cout, kernel, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    ]


def logit_head(in_features: int, hidden: int) -> nn.Sequential:
    """Linear → LeakyReLU → Linear(1): the discriminators' classifier."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 1))


class VGGDiscriminator(nn.Module):
    """VGG-128 style discriminator returning a logit per image.

    Args:
        in_nc: input channels (3 for images and for the 3-channel gradient maps).
        nf: channels of the first stage (64 in the papers).
        input_size: side of the square input (128 in the papers; at least 32).
        hidden: width of the first linear layer (100 in the papers).
    """

    def __init__(self, in_nc: int = 3, nf: int = 64, input_size: int = 128, hidden: int = 100) -> None:
        super().__init__()
        if input_size < 32:
            raise ValueError(f"VGGDiscriminator needs inputs of at least 32 pixels, not {input_size}")
        self.input_size = input_size
        widths = [nf, nf * 2, nf * 4, nf * 8, nf * 8]
        layers: list[nn.Module] = [
            nn.Conv2d(in_nc, nf, 3, 1, 1, bias=True),
            nn.LeakyReLU(0.2, inplace=True),
            *conv_bn(nf, nf, 4, 2),
        ]
        size = stride2_size(input_size)
        for prev, width in itertools.pairwise(widths):
            layers += conv_bn(prev, width, 3, 1)
            layers += conv_bn(width, width, 4, 2)
            size = stride2_size(size)
        self.features = nn.Sequential(*layers)
        self.final_size = size
        self.classifier = logit_head(widths[-1] * size * size, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)`` for inputs ``(N, in_nc, input_size, input_size)``."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"VGGDiscriminator built for {self.input_size}×{self.input_size} inputs got "
                f"{x.shape[-2]}×{x.shape[-1]}"
            )
        features = self.features(x)
        return self.classifier(torch.flatten(features, 1))
