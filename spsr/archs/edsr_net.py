"""EDSR (Lim et al. 2017): by default without the mean shift, inputs and outputs in [0, 1].

With ``mean_shift`` the network carries EDSR-PyTorch's ``sub_mean`` / ``add_mean`` 1×1 convs
(keys ``sub_mean.weight/bias``, ``add_mean.weight/bias``) and, with ``rgb_range``, works in
``0..rgb_range`` inside (the official models use 255): the input is multiplied by ``rgb_range``
on the way in and the output divided by it on the way out, so callers still see [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ResBlock(nn.Module):
    """conv-ReLU-conv with a scaled residual (``body.0``/``body.2`` keys)."""

    def __init__(self, nf: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(nf, nf, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(nf, nf, 3, padding=1)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


def pixelshuffle_upsampler(nf: int, scale: int) -> nn.Sequential:
    """conv → PixelShuffle per step (×2 steps for 2/4/8, one ×3 step for 3)."""
    steps = {2: [2], 3: [3], 4: [2, 2], 8: [2, 2, 2]}.get(scale)
    if steps is None:
        raise ValueError(f"unsupported scale {scale}; use 2, 3, 4 or 8")
    layers: list[nn.Module] = []
    for factor in steps:
        layers += [nn.Conv2d(nf, nf * factor * factor, 3, padding=1), nn.PixelShuffle(factor)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """EDSR generator; with ``feature_only`` it stops at the upsampled HR features (for SPSR).

    Args:
        in_nc: input channels.
        out_nc: output channels.
        nf: feature channels (64 baseline, 256 full).
        nb: residual blocks (16 baseline, 32 full).
        scale: 2, 3, 4 or 8.
        res_scale: residual scaling (1.0 baseline, 0.1 full).
        feature_only: drop the final RGB conv.
        mean_shift: add EDSR-PyTorch's ``sub_mean`` / ``add_mean`` 1×1 convs around the network.
        rgb_range: the value range the convolutions work in (1: [0, 1]; EDSR-PyTorch: 255).
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        nb: int = 16,
        scale: int = 4,
        res_scale: float = 1.0,
        feature_only: bool = False,
        mean_shift: bool = False,
        rgb_range: float = 1.0,
    ) -> None:
        super().__init__()
        if rgb_range <= 0:
            raise ValueError(f"rgb_range must be positive, got {rgb_range}")
        self.nf = nf
        self.num_blocks = nb
        self.rgb_range = float(rgb_range)
        self.mean_shift = mean_shift
        if mean_shift:
            self.sub_mean = nn.Conv2d(in_nc, in_nc, 1)
            self.add_mean = nn.Conv2d(out_nc, out_nc, 1)
        self.head = nn.Sequential(nn.Conv2d(in_nc, nf, 3, padding=1))
        self.body = nn.Sequential(*[ResBlock(nf, res_scale) for _ in range(nb)], nn.Conv2d(nf, nf, 3, padding=1))
        tail: list[nn.Module] = [pixelshuffle_upsampler(nf, scale)]
        if not feature_only:
            tail.append(nn.Conv2d(nf, out_nc, 3, padding=1))
        self.tail = nn.Sequential(*tail)

    def forward_features(
        self, x: torch.Tensor, taps: Sequence[int] = ()
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """LR features after each block count in ``taps``, and the upsampled HR features."""
        feat = self.head(self._shift_in(x))
        out = feat
        tapped: dict[int, torch.Tensor] = {}
        for i in range(self.num_blocks):
            out = self.body[i](out)
            if i + 1 in taps:
                tapped[i + 1] = out
        out = self.body[self.num_blocks](out) + feat
        return [tapped[t] for t in taps], self.tail[0](out)

    def _shift_in(self, x: torch.Tensor) -> torch.Tensor:
        if self.rgb_range != 1.0:
            x = x * self.rgb_range
        return self.sub_mean(x) if self.mean_shift else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(self._shift_in(x))
        out = self.tail(self.body(feat) + feat)
        if self.mean_shift:
            out = self.add_mean(out)
        return out / self.rgb_range if self.rgb_range != 1.0 else out
