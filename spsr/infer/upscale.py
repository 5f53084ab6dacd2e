"""Upscaling one decoded image: colour, grayscale, alpha and bit depth handled at the edges."""

from __future__ import annotations

import numpy as np
import torch

from spsr.data.image_io import LoadedImage, from_tensor, to_tensor
from spsr.infer.tiled import TileCallback, TiledUpscaler
from spsr.lite.image import bleed_transparent, check_memory
from spsr.ops.resize import imresize

__all__ = ["bleed_transparent", "check_upscale_memory", "upscale_loaded"]


def check_upscale_memory(image: LoadedImage, upscaler: TiledUpscaler, outscale: float | None = None) -> None:
    """Refuse, before allocating anything, an upscale whose output cannot fit in memory
    (:func:`spsr.lite.image.check_memory` for this upscaler's scale and tile).

    Raises:
        OutOfMemoryEstimate: the estimate is more than the available RAM.
    """
    check_memory(image, upscaler.scale, upscaler.tile, outscale)


def upscale_loaded(
    image: LoadedImage,
    upscaler: TiledUpscaler,
    outscale: float | None = None,
    on_tiles: TileCallback | None = None,
) -> np.ndarray:
    """Upscale a decoded image; returns an array of the input's dtype and channel layout.

    Grayscale runs as R=G=B and comes back as one channel; alpha is upscaled separately with
    MATLAB bicubic (after the transparent-colour fill) and re-attached; 16-bit stays 16-bit.

    Args:
        image: what ``read_image`` returned.
        upscaler: the configured tiled upscaler.
        outscale: final scale if different from the model's (the result is resampled).
        on_tiles: progress within the image, ``on_tiles(done, total)`` (see ``TiledUpscaler``).

    Raises:
        OutOfMemoryEstimate: the output would not fit in the available memory (checked first).
    """
    check_upscale_memory(image, upscaler, outscale)
    pixels = image.pixels
    if image.alpha is not None:
        pixels = bleed_transparent(pixels, image.alpha)
    x = to_tensor(pixels)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    sr = upscaler(x, on_tiles)
    h, w = pixels.shape[:2]
    target = None
    if outscale is not None and outscale != upscaler.scale:
        target = (max(1, round(h * outscale)), max(1, round(w * outscale)))
        sr = imresize(sr, size=target).clamp(0, 1)
    if image.is_gray:
        sr = sr.mean(dim=0, keepdim=True)
    channels = [sr]
    if image.alpha is not None:
        a = to_tensor(image.alpha[:, :, None])
        size = target or (h * upscaler.scale, w * upscaler.scale)
        channels.append(imresize(a, size=size).clamp(0, 1))
    out = torch.cat(channels, dim=0)
    return from_tensor(out, pixels.dtype)
