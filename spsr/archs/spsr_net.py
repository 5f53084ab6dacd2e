"""The SPSR-G generator: an SR branch, a gradient branch that super-resolves M(LR), and a fusion.

With the default RRDB backbone at nf 64 / nb 23 / ×4, the state dict has exactly the 884 keys
and shapes of the released official ``spsr.pth``, so it loads strictly. The
gradient branch is model-agnostic: any backbone with ``forward_features(x, taps)`` (EDSR,
SRResNet) can feed it (TPAMI 2021, Appendix D).

Data flow (×4, default)::

    LR ──SR branch──► trunk taps t1..t4 ───────────────┐        HR features ─┐
    M(LR) ─b_fea_conv─► [cat t_i → RRDB(2nf) → conv]×4 ─► up ×4 ─► conv_w ─► predicted HR gradient
                                                           └── cat ──────────┴► f_block ─► SR image
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spsr.archs.blocks import RRDB, conv_block, run_layers, tap_points, upconv_layers
from spsr.ops.gradient import GradientMap


class SROutput(NamedTuple):
    """What an SPSR generator returns.

    Attributes:
        sr: the super-resolved image ``(N, 3, sH, sW)``.
        grad: the gradient branch's predicted HR gradient map ``(N, 3, sH, sW)``.
        lr_grad: M(LR), the gradient map of the input ``(N, 3, H, W)``.
    """

    sr: torch.Tensor
    grad: torch.Tensor
    lr_grad: torch.Tensor


class SPSRNet(nn.Module):
    """SPSR-G generator.

    Args:
        in_nc: input channels.
        out_nc: output channels.
        nf: feature channels (64).
        nb: backbone blocks (23 RRDBs; 16 for EDSR/SRResNet).
        gc: RRDB growth channels (32).
        scale: 2, 3, 4 or 8.
        taps: trunk block counts the gradient branch reads (default 5/10/15/20 of 23).
        backbone: a registered family with an SR ``branch``: ``rrdb`` (keys of the official
            file), ``edsr`` or ``srresnet``.
        res_scale: EDSR residual scaling.
        desubpixel_head: the U-Net follow-up's head: the network input is the LR image nearest-upsampled to
            HR size (so MoA augmentations such as CutBlur can put HR content in it), brought back
            to LR size by a desubpixel (space-to-depth) layer; the first convs of both branches
            then see ``in_nc·scale²`` channels. ``forward`` still accepts a plain LR image.
        image_skip: add the bicubic upsampling of the LR image to the output, so the network
            learns the residual over bicubic (as VDSR): training starts at bicubic quality and
            converges much faster, which is what the small CPU-trained built-in models use. Off
            for the papers' models (the official weights have no such skip); no extra weights.
        fusion_block: the fusion's RRDB at HR resolution (``f_block``, the official design).
            Without it the concatenated branch and SR features go straight to ``f_concat``: the
            RRDB at HR resolution is over half of the network's FLOPs at nf 32 / nb 6, so this is
            the cheap configuration of the fast built-in models; it has no ``f_block.*`` keys.
    """

    #: Runs a layer sequence (plain; the torch engine's CPU kernels override it).
    run_layers = staticmethod(run_layers)

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        nb: int = 23,
        gc: int = 32,
        scale: int = 4,
        taps: Sequence[int] | None = None,
        backbone: str = "rrdb",
        res_scale: float = 1.0,
        desubpixel_head: bool = False,
        image_skip: bool = False,
        fusion_block: bool = True,
    ) -> None:
        super().__init__()
        if image_skip and desubpixel_head:
            raise ValueError("image_skip and desubpixel_head cannot be combined")
        self.image_skip = image_skip
        from spsr.archs.registry import backbone_names, family

        if backbone not in backbone_names():
            raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(backbone_names())}")
        make_branch = family(backbone).branch
        assert make_branch is not None
        self.scale = scale
        self.taps = tuple(taps) if taps is not None else tap_points(nb)
        if any(t < 1 or t > nb for t in self.taps):
            raise ValueError(f"tap points {self.taps} must lie in 1..{nb}")
        self.backbone = backbone
        self.desubpixel_head = desubpixel_head
        head_nc = in_nc * scale**2 if desubpixel_head else in_nc

        # SR branch. For RRDB the HR conv is shared with the trunk as in the official file.
        branch, shared_hr_conv = make_branch(head_nc, out_nc, nf, nb, gc, scale, res_scale)
        if shared_hr_conv is not None:
            self.HR_conv0_new = shared_hr_conv
        self.model: nn.Module = branch
        self.HR_conv1_new = conv_block(nf, nf, act=False)

        # Gradient branch.
        self.get_g_nopadding = GradientMap(padding=1)
        self.b_fea_conv = conv_block(head_nc, nf, act=False)
        for i in range(1, len(self.taps) + 1):
            setattr(self, f"b_block_{i}", RRDB(nf * 2, gc))
            setattr(self, f"b_concat_{i}", conv_block(nf * 2, nf, act=False))
        self.b_LR_conv = conv_block(nf, nf, act=False)
        self.b_module = nn.Sequential(
            *upconv_layers(nf, scale),
            *conv_block(nf, nf, act=True),
            *conv_block(nf, nf, act=False),
        )
        self.conv_w = conv_block(nf, out_nc, act=False, kernel_size=1)

        # Fusion at HR resolution.
        self.f_block: nn.Module = RRDB(nf * 2, gc) if fusion_block else nn.Identity()
        self.f_concat = conv_block(nf * 2, nf, act=False)
        self.f_HR_conv0 = conv_block(nf, nf, act=True)
        self.f_HR_conv1 = conv_block(nf, out_nc, act=False)

    def forward(self, x: torch.Tensor, upsampled: bool = False) -> SROutput:
        """Super-resolve ``x``.

        Args:
            x: the LR image ``(N, C, H, W)``; with ``upsampled=True`` (desubpixel head only) the
                LR image already nearest-upsampled to HR size, possibly MoA-augmented.
            upsampled: whether ``x`` is at HR size.

        Returns:
            ``SROutput(sr, grad, lr_grad)``; with the desubpixel head ``lr_grad`` is M of the
            HR-size input.
        """
        lr_image = x
        if self.desubpixel_head:
            x, lr_grad, grad_in = self._desubpixel_inputs(x, upsampled)
        elif upsampled:
            raise ValueError("upsampled input needs a generator built with desubpixel_head=True")
        else:
            lr_grad = grad_in = self.get_g_nopadding(x)
        tapped, sr_feat = self.model.forward_features(x, self.taps)  # type: ignore[operator]  # a trunk method
        sr_feat = self.HR_conv1_new(sr_feat)

        b_fea = self.b_fea_conv(grad_in)
        b = b_fea
        for i, feat in enumerate(tapped, start=1):
            b = getattr(self, f"b_block_{i}")(torch.cat([b, feat], dim=1))
            b = getattr(self, f"b_concat_{i}")(b)
        b = self.b_LR_conv(b) + b_fea
        branch = self.run_layers(self.b_module, b)
        grad = self.conv_w(branch)

        fused = self.f_block(torch.cat([branch, sr_feat], dim=1))
        sr = self.f_HR_conv1(self.run_layers(self.f_HR_conv0, self.f_concat(fused)))
        if self.image_skip:
            # Added in fp32: under bf16 autocast a bf16 sum would cost up to 1/255 per pixel.
            skip = F.interpolate(lr_image.float(), scale_factor=self.scale, mode="bicubic", align_corners=False)
            sr = sr.float() + skip
        return SROutput(sr=sr, grad=grad, lr_grad=lr_grad)

    def _desubpixel_inputs(
        self, x: torch.Tensor, upsampled: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(space-to-depth image, M of the HR-size image, space-to-depth of that M)."""
        if not upsampled:
            x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        elif x.shape[-2] % self.scale or x.shape[-1] % self.scale:
            size = tuple(x.shape[-2:])
            raise ValueError(f"upsampled input size {size} is not a multiple of {self.scale}")
        hr_grad = self.get_g_nopadding(x)
        return F.pixel_unshuffle(x, self.scale), hr_grad, F.pixel_unshuffle(hr_grad, self.scale)

    def sr_branch_parameters(self) -> list[nn.Parameter]:
        """Parameters of the SR branch (what an RRDB/EDSR/SRResNet init fills)."""
        return list(self.model.parameters())

    def fusion_parameters(self) -> list[nn.Parameter]:
        """Parameters of the fusion block (trained alone during the official warm-up)."""
        mods = [self.f_block, self.f_concat, self.f_HR_conv0, self.f_HR_conv1]
        return [p for m in mods for p in m.parameters()]
