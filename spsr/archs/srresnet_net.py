"""SRResNet without batch norm (the MSRResNet form used as an SR backbone), bilinear skip at HR."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv residual block without batch normalisation."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SRResNet(nn.Module):
    """SRResNet generator; with ``feature_only`` it stops at the HR features (for SPSR).

    Args:
        in_nc: input channels.
        out_nc: output channels.
        nf: feature channels (64).
        nb: residual blocks (16).
        scale: 2, 3 or 4.
        feature_only: drop the final RGB conv and the bilinear skip.
    """

    def __init__(
        self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 16, scale: int = 4, feature_only: bool = False
    ) -> None:
        super().__init__()
        self.nf = nf
        self.num_blocks = nb
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(nf) for _ in range(nb)])
        steps = {2: [2], 3: [3], 4: [2, 2]}.get(scale)
        if steps is None:
            raise ValueError(f"unsupported scale {scale} for SRResNet; use 2, 3 or 4")
        ups: list[nn.Module] = []
        for factor in steps:
            ups += [nn.Conv2d(nf, nf * factor * factor, 3, padding=1), nn.PixelShuffle(factor),
                    nn.LeakyReLU(0.1, inplace=True)]
        self.upsample = nn.Sequential(*ups)
        self.conv_hr = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = None if feature_only else nn.Conv2d(nf, out_nc, 3, padding=1)

    def forward_features(
        self, x: torch.Tensor, taps: Sequence[int] = ()
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """LR features after each block count in ``taps``, and the HR features."""
        out = F.leaky_relu(self.conv_first(x), 0.1)
        tapped: dict[int, torch.Tensor] = {}
        for i in range(self.num_blocks):
            out = self.body[i](out)
            if i + 1 in taps:
                tapped[i + 1] = out
        hr = F.leaky_relu(self.conv_hr(self.upsample(out)), 0.1)
        return [tapped[t] for t in taps], hr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_last is None:
            raise RuntimeError("a feature-only SRResNet has no image output")
        _, hr = self.forward_features(x)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(hr) + base
