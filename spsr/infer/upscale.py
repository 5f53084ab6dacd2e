"""Upscaling one decoded image with a :class:`~spsr.infer.tiled.TiledUpscaler`.

Colour, grayscale, alpha, bit depth and ``outscale`` are handled at the edges of the network by
:func:`spsr.lite.image.upscale_decoded`, the same NumPy code the warm start runs, so both paths
write the same pixels; this module gives it the PyTorch upscaler as its runner.
"""

from __future__ import annotations

import numpy as np
import torch

from spsr.data.image_io import LoadedImage
from spsr.infer.tiled import TileCallback, TiledUpscaler
from spsr.lite.image import bleed_transparent, check_memory, upscale_decoded

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
        NonFiniteOutputError: the model gave NaN or infinite values.
    """

    def run(x: np.ndarray, progress: TileCallback | None) -> np.ndarray:
        return upscaler(torch.from_numpy(x), progress).float().numpy()

    return upscale_decoded(image, run, upscaler.scale, upscaler.tile, outscale, on_tiles)
