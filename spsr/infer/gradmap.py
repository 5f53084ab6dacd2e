"""Gradient-map pictures: M(image) as an image, and the papers' comparison panels.

A gradient map has three channels (one per colour); pictures show their mean, on a fixed scale so
that maps of different images and of different sources in one panel compare directly.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from spsr.ops.gradient import gradient_map
from spsr.ops.resize import imresize


def gradient_gray(grad: torch.Tensor, vmax: float) -> np.ndarray:
    """``(3, H, W)`` gradient map → ``(H, W)`` uint8 picture, ``vmax`` mapped to white."""
    g = grad.float().mean(dim=0) / max(vmax, 1e-8)
    return (g.clamp(0, 1) * 255).round().byte().numpy()


def gradient_picture(img: torch.Tensor, padding: int = 1) -> np.ndarray:
    """M(img) of a ``(3, H, W)`` image in [0, 1] as an 8-bit grayscale picture (scaled to its 99.5th percentile)."""
    grad = gradient_map(img.unsqueeze(0), padding)[0]
    vmax = float(torch.quantile(grad.mean(0).flatten()[:4_000_000], 0.995))
    return gradient_gray(grad, vmax)


def comparison_panel(
    lr: torch.Tensor,
    sr: torch.Tensor,
    predicted_grad: torch.Tensor,
    scale: int,
    hr: torch.Tensor | None = None,
) -> np.ndarray:
    """The papers' figure: M(LR)↑ | gradient-branch output | M(SR) [| M(HR)] on one scale.

    Args:
        lr: ``(3, h, w)`` LR image.
        sr: ``(3, H, W)`` SR image.
        predicted_grad: ``(3, H, W)`` gradient map predicted by the gradient branch.
        scale: the model's scale (``H = h·scale``).
        hr: optional ``(3, H, W)`` HR reference.

    Returns:
        ``(H + 20, k·W, 3)`` uint8 RGB panel with a caption strip.
    """
    h, w = sr.shape[-2:]
    lr_grad = imresize(gradient_map(lr.unsqueeze(0))[0], size=(h, w)).clamp(min=0)
    maps = [("M(LR), bicubic up", lr_grad), ("gradient branch", predicted_grad.float()),
            ("M(SR)", gradient_map(sr.unsqueeze(0))[0])]
    if hr is not None:
        maps.append(("M(HR)", gradient_map(hr[:, :h, :w].unsqueeze(0))[0]))
    ref = maps[-1][1]
    vmax = float(torch.quantile(ref.mean(0).flatten()[:4_000_000], 0.995))
    strip = 20
    panel = Image.new("RGB", (w * len(maps), h + strip), "white")
    draw = ImageDraw.Draw(panel)
    for i, (label, grad) in enumerate(maps):
        tile = Image.fromarray(gradient_gray(grad, vmax), mode="L").convert("RGB")
        panel.paste(tile, (i * w, strip))
        draw.text((i * w + 4, 4), label, fill="black")
    return np.asarray(panel)
