"""One decoded image upscaled by a NumPy runner: colour, grayscale, alpha, bit depth, ``outscale``.

What ``spsr upscale`` does at the edges of the network, without PyTorch: grayscale runs as
R=G=B and comes back as one channel; alpha is upscaled apart with MATLAB bicubic
(:func:`spsr.ops.resize.imresize_np`) after the transparent-colour fill and re-attached; 16-bit
stays 16-bit; the memory an output needs is checked before anything is allocated. The PyTorch
path (:func:`spsr.infer.upscale.upscale_loaded`) runs this function with its PyTorch upscaler.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from spsr.data.image_io import LoadedImage
from spsr.errors import NonFiniteOutputError, OutOfMemoryEstimate
from spsr.lite.tiles import TileCallback


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


def check_memory(image: LoadedImage, scale: int, tile: int, outscale: float | None = None) -> None:
    """Refuse, before allocating anything, an upscale whose output cannot fit in memory.

    Raises:
        OutOfMemoryEstimate: the estimate is more than the available RAM.
    """
    h, w, c = image.pixels.shape
    channels = c + (1 if image.alpha is not None else 0)
    whole = tile == 0 or (h <= tile and w <= tile)
    oh, ow, need = estimate_upscale_bytes(h, w, scale, outscale, max(channels, 3),
                                          image.pixels.dtype.itemsize, whole)
    avail = available_memory()
    if avail is not None and need > avail:
        hint = "a smaller --outscale" if outscale is not None and outscale > scale else "a smaller image"
        if tile == 0:
            hint += " or tiling (--tile 256)"
        raise OutOfMemoryEstimate(
            f"the {ow}×{oh} output needs about {need / 2**30:.1f} GiB of memory but "
            f"{avail / 2**30:.1f} GiB is available; use {hint}"
        )


def to_float(arr: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` uint8/uint16 → float32 ``(C, H, W)`` in [0, 1] (as :func:`spsr.data.image_io.to_tensor`)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    scale = np.float32(np.iinfo(arr.dtype).max)
    return np.array(arr.transpose(2, 0, 1), dtype=np.float32) / scale


def from_float(x: np.ndarray, dtype: np.dtype | type, overwrite: bool = False) -> np.ndarray:
    """Float ``(C, H, W)`` in [0, 1] → ``(H, W, C)`` of ``dtype``, rounded half to even and clipped
    (as :func:`spsr.data.image_io.from_tensor`).

    Args:
        x: the float image.
        dtype: ``uint8`` or ``uint16``.
        overwrite: scale and round in ``x`` itself (a float32 array the caller no longer needs)
            instead of a float temporary of its size: at a 4096² colour output that is 192 MiB.
    """
    maxval = np.float32(np.iinfo(dtype).max)
    if overwrite and x.dtype == np.float32 and x.flags.writeable:
        y = x
        np.clip(y, 0, 1, out=y)
    else:
        y = np.clip(x, 0, 1)
    y *= maxval
    np.round(y, out=y)
    return y.transpose(1, 2, 0).astype(dtype)


def all_finite(x: np.ndarray) -> bool:
    """No NaN or infinity in ``x``, without a boolean array of its size: NaN and infinity survive a
    sum, and an fp64 sum of finite float32 values cannot overflow."""
    return bool(np.isfinite(np.sum(x, dtype=np.float64)))


ImageRunner = Callable[[np.ndarray, "TileCallback | None"], np.ndarray]
"""``run(x, on_tiles)``: a ``(3, H, W)`` float32 image → its ``(3, s·H, s·W)`` float32 output."""


def upscale_decoded(
    image: LoadedImage,
    run: ImageRunner,
    scale: int,
    tile: int,
    outscale: float | None = None,
    on_tiles: TileCallback | None = None,
) -> np.ndarray:
    """Upscale a decoded image; returns an array of the input's dtype and channel layout.

    Args:
        image: what :func:`spsr.data.image_io.read_image` returned.
        run: the network over a whole image, tiled (:func:`spsr.lite.tiles.run_tiled`).
        scale: the model's factor.
        tile: the tile side (for the memory estimate; 0 = whole image).
        outscale: final scale if different from the model's (resampled with MATLAB bicubic).
        on_tiles: progress within the image.

    Raises:
        OutOfMemoryEstimate: the output would not fit in the available memory (checked first).
        NonFiniteOutputError: the model gave NaN or infinite values.
    """
    from spsr.ops.resize import imresize_np

    check_memory(image, scale, tile, outscale)
    pixels = image.pixels
    if image.alpha is not None:
        pixels = bleed_transparent(pixels, image.alpha)
    x = to_float(pixels)
    if x.shape[0] == 1:
        x = np.repeat(x, 3, axis=0)
    sr = run(x, on_tiles)
    if not all_finite(sr):
        raise NonFiniteOutputError("the model produced NaN or infinite values (broken weights?)")
    np.clip(sr, 0, 1, out=sr)  # in place: the output is the largest array of the run
    h, w = pixels.shape[:2]
    size = (h * scale, w * scale)
    if outscale is not None and outscale != scale:
        size = (max(1, round(h * outscale)), max(1, round(w * outscale)))
        sr = np.clip(imresize_np(sr.transpose(1, 2, 0), size=size), 0, 1).transpose(2, 0, 1)
    if image.is_gray:
        sr = sr.mean(axis=0, keepdims=True)
    if image.alpha is not None:
        a = to_float(image.alpha[:, :, None])[0]
        alpha = np.clip(imresize_np(a, size=size), 0, 1)[None].astype(np.float32)
        sr = np.concatenate([sr.astype(np.float32, copy=False), alpha], axis=0)
    return from_float(sr, pixels.dtype, overwrite=True)  # sr is this function's own array
