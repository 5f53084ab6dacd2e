"""D_SF: the discriminator on structure features (SPSR-P / SPSR-J, TPAMI 2021 eq. 15).

The paper says D_SF "is similar to that used for the gradient loss, but has small differences in
the network architecture since the structure features have different scales from the gradient
maps". So it keeps the VGG-style discriminator's pattern (3×3 stride-1 and 4×4 stride-2
convolutions, batch norm and LeakyReLU(0.2), a 4×4 map, ``Linear → LReLU → Linear(1)``) and
adapts the two things the input changes:

* channels: the first convolution takes the feature map's channels (32 for the NSE, 512 for
  VGG19 conv5_4, 256 for ResNet18 conv4_2);
* size: as many stride-2 stages as bring the map to 4×4 (a 128×128 HR crop gives a 32×32 NSE
  map: 3 stages; an 8×8 VGG/ResNet map: 1 stage).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spsr.archs.discriminator_vgg import conv_bn, logit_head, stride2_size


class StructureFeatureDiscriminator(nn.Module):
    """VGG-style discriminator for C×S×S structure feature maps, one logit per map.

    Args:
        in_channels: channels of the structure features.
        input_size: side S of the (square) feature map.
        nf: channels after the first convolution; doubled at each stride-2 stage up to 8·nf.
        hidden: width of the first linear layer (100, as D and D_GM).
    """

    def __init__(self, in_channels: int, input_size: int, nf: int = 64, hidden: int = 100) -> None:
        super().__init__()
        if input_size < 1:
            raise ValueError(f"feature maps must be at least 1×1, not {input_size}")
        self.input_size = input_size
        stages = max(0, math.floor(math.log2(input_size / 4))) if input_size >= 4 else 0
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, nf, 3, 1, 1, bias=True),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width, size = nf, input_size
        for _ in range(stages):
            wider = min(width * 2, nf * 8)
            layers += conv_bn(width, width, 4, 2)
            layers += conv_bn(width, wider, 3, 1)
            width, size = wider, stride2_size(size)
        self.features = nn.Sequential(*layers)
        self.final_size = size
        self.classifier = logit_head(width * size * size, hidden)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)`` for feature maps ``(N, in_channels, input_size, input_size)``."""
        if features.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"D_SF built for {self.input_size}×{self.input_size} feature maps got "
                f"{features.shape[-2]}×{features.shape[-1]}"
            )
        return self.classifier(torch.flatten(self.features(features), 1))
