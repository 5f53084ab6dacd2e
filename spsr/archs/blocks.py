"""Building blocks shared by the generators, laid out so state-dict keys match ESRGAN/SPSR files.

``conv_block`` is ``Sequential(conv[, LeakyReLU(0.2)])`` — its weight key ends in ``.0.weight`` —
exactly as the official ESRGAN/SPSR code registers its convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

from spsr.archs import fast, winograd


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
        if fast.use_fused(x):
            return self.fused_forward(x, x.clone(memory_format=fast.memory_format_of(x)), 0.2)
        x1 = self.conv1(x)
        x2 = self.conv2(torch.cat((x, x1), 1))
        x3 = self.conv3(torch.cat((x, x1, x2), 1))
        x4 = self.conv4(torch.cat((x, x1, x2, x3), 1))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x

    def fused_forward(self, x: torch.Tensor, out: torch.Tensor, scale: float) -> torch.Tensor:
        """Inference only: ``out + scale·conv5(…)`` written into ``out``, conv+LReLU fused (:mod:`spsr.archs.fast`)."""
        feats = [x]
        for block in (self.conv1, self.conv2, self.conv3, self.conv4):
            conv, act = block[0], block[1]
            assert isinstance(conv, nn.Conv2d) and isinstance(act, nn.LeakyReLU)
            inp = torch.cat(feats, 1) if len(feats) > 1 else x
            feats.append(fast.conv_lrelu(conv, inp, act.negative_slope))
        last = self.conv5[0]
        assert isinstance(last, nn.Conv2d)
        return fast.conv_residual_(last, torch.cat(feats, 1), out, scale)


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, output ``x + 0.2·RDB3(RDB2(RDB1(x)))``."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nf, gc)
        self.RDB2 = ResidualDenseBlock(nf, gc)
        self.RDB3 = ResidualDenseBlock(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast.use_fused(x) and winograd.applies(x):
            return winograd.rrdb_forward(self, x)
        if fast.use_fused(x):
            # x + 0.2·(r + 0.2·conv5) = (x + 0.2·r) + 0.04·conv5, with r RDB3's input: one pass fewer.
            r = self.RDB2(self.RDB1(x))
            return self.RDB3.fused_forward(r, torch.add(x, r, alpha=0.2), 0.04)
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
