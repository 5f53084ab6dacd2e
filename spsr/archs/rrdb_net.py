"""RRDBNet (ESRGAN) in the original ``model.N`` key layout, and its reusable feature trunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from spsr.archs.blocks import RRDB, ShortcutBlock, conv_block, run_layers, upconv_layers


class RRDBTrunk(nn.Sequential):
    """ESRGAN's ``model`` Sequential up to the HR convolution, plus tapped feature extraction.

    Children: ``0`` first conv, ``1`` ShortcutBlock(sub = nb RRDBs + trunk conv), the up-convs,
    then the HR conv (+ LReLU). Keys are those of the old ESRGAN / SPSR files (``model.1.sub.N…``).

    Args:
        in_nc: input channels.
        nf: feature channels.
        nb: number of RRDB blocks.
        gc: growth channels.
        scale: upscaling factor.
        hr_conv: the HR conv + LReLU module to append (SPSR shares it as ``HR_conv0_new``).
    """

    #: Runs a layer sequence (plain; the torch engine's CPU kernels override it).
    run_layers = staticmethod(run_layers)

    def __init__(self, in_nc: int, nf: int, nb: int, gc: int, scale: int, hr_conv: nn.Sequential) -> None:
        trunk = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, padding=1))
        super().__init__(
            nn.Conv2d(in_nc, nf, 3, padding=1),
            ShortcutBlock(trunk),
            *upconv_layers(nf, scale),
            *hr_conv,
        )
        self.nf = nf
        self.num_blocks = nb

    def forward_features(
        self, x: torch.Tensor, taps: Sequence[int] = ()
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run the trunk; return the LR features after each block count in ``taps`` and the HR features."""
        feat = self[0](x)
        blocks = cast(nn.Sequential, self[1].sub)  # ShortcutBlock.sub, untyped through nn.Module
        tapped: list[torch.Tensor] = []
        out = feat
        wanted = sorted(set(taps))
        for i in range(self.num_blocks):
            out = blocks[i](out)
            if i + 1 in wanted:
                tapped.append(out)
        by_count = dict(zip(wanted, tapped, strict=False))
        out = blocks[self.num_blocks](out) + feat
        out = self.run_layers(list(self)[2:], out)
        return [by_count[t] for t in taps], out


class RRDBNet(nn.Module):
    """ESRGAN generator. State-dict keys: ``model.0``, ``model.1.sub.*``, up-convs, HR conv, last conv.

    Args:
        in_nc: input channels.
        out_nc: output channels.
        nf: feature channels (64).
        nb: RRDB blocks (23).
        gc: growth channels (32).
        scale: 2, 3, 4 or 8 (1 or 2 with ``pixel_unshuffle``).
        pixel_unshuffle: BasicSR's ×2 / ×1 form (Real-ESRGAN ``x2plus``): the input is folded by
            ``pixel_unshuffle`` (factor 2 for ×2, 4 for ×1), so the first conv sees
            ``in_nc·4`` or ``in_nc·16`` channels, and the trunk always upsamples ×4. Inputs whose
            sides are not multiples of the factor are reflect-padded and the output cropped, as
            Real-ESRGAN's inference does.
        desubpixel_head: the U-Net follow-up's head (§3.1), as :class:`~spsr.archs.SPSRNet`'s: the
            input is the LR image nearest-upsampled to HR size (so MoA's CutBlur can put HR pixels
            in it), brought back to LR size by space-to-depth; the first conv sees
            ``in_nc·scale²`` channels. ``forward`` still takes a plain LR image. This is the
            generator of the follow-up's "w/o GB" row: SPSR's SR branch without the gradient
            branch, its head kept.
    """

    #: Runs a layer sequence (plain; the torch engine's CPU kernels override it).
    run_layers = staticmethod(run_layers)

    def __init__(
        self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4,
        pixel_unshuffle: bool = False, desubpixel_head: bool = False,
    ) -> None:
        super().__init__()
        if pixel_unshuffle and desubpixel_head:
            raise ValueError("pixel_unshuffle and desubpixel_head cannot be combined")
        self.scale = scale
        self.unshuffle = 0
        self.desubpixel_head = desubpixel_head
        trunk_scale = scale
        if desubpixel_head:
            in_nc *= scale**2
        if pixel_unshuffle:
            if scale not in (1, 2):
                raise ValueError(f"pixel-unshuffle RRDBNet is x1 or x2, not x{scale}")
            self.unshuffle, trunk_scale = 4 // scale, 4
            in_nc *= self.unshuffle**2
        trunk = RRDBTrunk(in_nc, nf, nb, gc, trunk_scale, conv_block(nf, nf, act=True))
        self.model = nn.Sequential(*trunk, nn.Conv2d(nf, out_nc, 3, padding=1))

    def forward(self, x: torch.Tensor, upsampled: bool = False) -> torch.Tensor:
        """Super-resolve ``x``; ``upsampled=True`` (desubpixel head only): ``x`` is the LR image
        already nearest-upsampled to HR size, possibly MoA-augmented."""
        if self.desubpixel_head:
            if not upsampled:
                x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
            elif x.shape[-2] % self.scale or x.shape[-1] % self.scale:
                raise ValueError(f"upsampled input size {tuple(x.shape[-2:])} is not a multiple of {self.scale}")
            return self.run_layers(self.model, F.pixel_unshuffle(x, self.scale))
        if upsampled:
            raise ValueError("upsampled input needs a generator built with desubpixel_head=True")
        if not self.unshuffle:
            return self.run_layers(self.model, x)
        f = self.unshuffle
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % f, (-w) % f
        if pad_h or pad_w:
            mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        out = self.run_layers(self.model, F.pixel_unshuffle(x, f))
        return out[..., : h * self.scale, : w * self.scale]
