"""The gradient operator M(·) of SPSR.

Central differences per colour channel, ``Ix = I(x+1,y) - I(x-1,y)``, ``Iy = I(x,y+1) - I(x,y-1)``,
``M = sqrt(Ix² + Iy² + 1e-6)``, with zero padding. Padding 1 (the paper's form) keeps the input
size; padding 2 (the form the official code feeds the gradient loss and D_GM) gives ``H+2 × W+2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6


def gradient_map(x: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """M(x) for a tensor ``(N, C, H, W)``; output ``(N, C, H + 2p - 2, W + 2p - 2)``."""
    if padding < 1:
        raise ValueError("padding must be at least 1")
    xp = F.pad(x, (padding, padding, padding, padding))
    ix = xp[..., 1:-1, 2:] - xp[..., 1:-1, :-2]
    iy = xp[..., 2:, 1:-1] - xp[..., :-2, 1:-1]
    return torch.sqrt(ix * ix + iy * iy + EPS)


class GradientMap(nn.Module):
    """M(·) as a fixed module.

    The two 3×3 difference kernels are kept as buffers named ``weight_h`` / ``weight_v`` so that
    the module's state matches the official checkpoint's ``get_g_nopadding`` entries; they are
    never trained (not parameters) and the forward uses them directly.
    """

    weight_h: torch.Tensor
    weight_v: torch.Tensor

    def __init__(self, padding: int = 1) -> None:
        super().__init__()
        self.padding = padding
        kernel_h = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
        kernel_v = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        self.register_buffer("weight_h", kernel_h.view(1, 1, 3, 3))
        self.register_buffer("weight_v", kernel_v.view(1, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.reshape(n * c, 1, h, w)
        ix = F.conv2d(flat, self.weight_h.to(x.dtype), padding=self.padding)
        iy = F.conv2d(flat, self.weight_v.to(x.dtype), padding=self.padding)
        out = torch.sqrt(ix * ix + iy * iy + EPS)
        return out.reshape(n, c, out.shape[-2], out.shape[-1])
