"""Building blocks shared by the generators, laid out so state-dict keys match ESRGAN/SPSR files.

``conv_block`` is ``Sequential(conv[, LeakyReLU(0.2)])`` — its weight key ends in ``.0.weight`` —
exactly as the official ESRGAN/SPSR code registers its convolutions.

The forwards are plain PyTorch, the official networks' op sequence. spsr's CPU inference kernels
(fused oneDNN convolutions, Winograd) live with the torch engine (:mod:`spsr.engines.torch_fast`),
which applies them to a loaded network; :func:`run_layers` is the hook it overrides.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def run_layers(layers: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """``x`` through ``layers`` in order, as ``nn.Sequential`` would."""
    for layer in layers:
        x = layer(x)
    return x


def conv_block(in_nc: int, out_nc: int, act: bool = True, kernel_size: int = 3) -> nn.Sequential:
    """A 3×3 convolution, optionally followed by LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv2d(in_nc, out_nc, kernel_size, padding=kernel_size // 2)]
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class ResidualDenseBlock(nn.Module):
    """ESRGAN's ResidualDenseBlock_5C: five densely connected convs, output ``x + 0.2·conv5``.

    Args:
        nf: channels in and out.
        gc: growth channels of the intermediate convolutions.
    """

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.conv1 = conv_block(nf, gc)
        self.conv2 = conv_block(nf + gc, gc)
        self.conv3 = conv_block(nf + 2 * gc, gc)
        self.conv4 = conv_block(nf + 3 * gc, gc)
        self.conv5 = conv_block(nf + 4 * gc, nf, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(torch.cat((x, x1), 1))
        x3 = self.conv3(torch.cat((x, x1, x2), 1))
        x4 = self.conv4(torch.cat((x, x1, x2, x3), 1))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, output ``x + 0.2·RDB3(RDB2(RDB1(x)))``."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nf, gc)
        self.RDB2 = ResidualDenseBlock(nf, gc)
        self.RDB3 = ResidualDenseBlock(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class ShortcutBlock(nn.Module):
    """Holds the trunk as ``sub`` (key prefix ``sub.``); the residual add is done by the caller."""

    def __init__(self, sub: nn.Sequential) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sub(x)


def upconv_layers(nf: int, scale: int) -> list[nn.Module]:
    """Nearest-neighbour upsampling + conv + LeakyReLU per step: ×4 = two ×2 steps, ×3 one ×3 step.

    Returned flat (``[Upsample, Conv, LReLU, ...]``) so they take consecutive Sequential indices,
    as in the official files (``model.3``, ``model.6`` for ×4).
    """
    if scale == 1:
        return []
    steps = {2: [2], 3: [3], 4: [2, 2], 8: [2, 2, 2]}.get(scale)
    if steps is None:
        raise ValueError(f"unsupported scale {scale}; use 2, 3, 4 or 8")
    layers: list[nn.Module] = []
    for factor in steps:
        layers += [
            nn.Upsample(scale_factor=factor, mode="nearest"),
            nn.Conv2d(nf, nf, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
    return layers


def tap_points(num_blocks: int, num_taps: int = 4) -> tuple[int, ...]:
    """Where the gradient branch taps the trunk (block counts, 1-based).

    ``ceil(nb / (taps + 1))`` apart: 5/10/15/20 for 23 blocks (the paper's), 1/2/3/4 for 4 blocks;
    clamped to the trunk length for very small trunks.
    """
    step = -(-num_blocks // (num_taps + 1))
    return tuple(min(step * (k + 1), num_blocks) for k in range(num_taps))
