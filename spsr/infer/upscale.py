"""Upscaling one decoded image: colour, grayscale, alpha and bit depth handled at the edges."""

from __future__ import annotations

import os

import numpy as np
import torch

from spsr.data.image_io import LoadedImage, from_tensor, to_tensor
from spsr.errors import OutOfMemoryEstimate
from spsr.infer.tiled import TileCallback, TiledUpscaler
from spsr.ops.resize import imresize


def bleed_transparent(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Give fully transparent pixels the colour of the nearest visible pixel.

    Transparent pixels often hold black (or arbitrary) colour; a network reading across the alpha
    edge would smear it into dark or coloured fringes. After this fill it reads plausible colour.
    """
    from scipy import ndimage

    hidden = alpha == 0
    if not hidden.any() or hidden.all():
        return rgb
    _, (iy, ix) = ndimage.distance_transform_edt(hidden, return_indices=True)
    return rgb[iy, ix]


def available_memory() -> int | None:
    """Bytes of RAM available to a new allocation (``MemAvailable``; total RAM elsewhere), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def estimate_upscale_bytes(
    h: int, w: int, scale: int, outscale: float | None, channels: int, itemsize: int, whole_image: bool
) -> tuple[int, int, int]:
    """Rough peak host memory of ``upscale_loaded`` for an ``h × w`` input.

    Counts the float32 buffers at the model's output size (blend accumulator and weights, 16 bytes
    a pixel), the resampled result (with ``outscale``), the float and integer copies of the final
    array, and — for a whole-image (untiled) run — two 64-channel float32 feature maps at output
    size. Model weights and tile activations are small next to these and left out.

    Returns:
        ``(output height, output width, bytes)``.
    """
    n_sr = h * w * scale * scale
    if outscale is not None and outscale != scale:
        oh, ow = max(1, round(h * outscale)), max(1, round(w * outscale))
    else:
        oh, ow = h * scale, w * scale
    n_out = oh * ow
    need = 16 * n_sr + channels * n_out * (3 * 4 + itemsize)
    if n_out != n_sr:
        need += 12 * n_out + 12 * (h * scale) * ow
    if whole_image:
        need += 2 * 64 * 4 * n_sr
    return oh, ow, need


def check_upscale_memory(image: LoadedImage, upscaler: TiledUpscaler, outscale: float | None = None) -> None:
    """Refuse, before allocating anything, an upscale whose output cannot fit in memory.

    Raises:
        OutOfMemoryEstimate: the estimate is more than the available RAM.
    """
    h, w, c = image.pixels.shape
    channels = c + (1 if image.alpha is not None else 0)
    whole = upscaler.tile == 0 or (h <= upscaler.tile and w <= upscaler.tile)
    oh, ow, need = estimate_upscale_bytes(h, w, upscaler.scale, outscale, max(channels, 3),
                                          image.pixels.dtype.itemsize, whole)
    avail = available_memory()
    if avail is not None and need > avail:
        hint = "a smaller --outscale" if outscale is not None and outscale > upscaler.scale else "a smaller image"
        if upscaler.tile == 0:
            hint += " or tiling (--tile 256)"
        raise OutOfMemoryEstimate(
            f"the {ow}×{oh} output needs about {need / 2**30:.1f} GiB of memory but "
            f"{avail / 2**30:.1f} GiB is available; use {hint}"
        )


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
