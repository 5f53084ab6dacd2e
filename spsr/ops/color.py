"""Colour conversions with MATLAB's conventions (BT.601 studio swing, as ``rgb2ycbcr``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spsr.ops.rounding import round_half_away

if TYPE_CHECKING:
    import torch

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Y of MATLAB ``rgb2ycbcr`` for a float RGB tensor ``(..., 3, H, W)`` in [0, 1].

    Returns ``(..., 1, H, W)`` in [16/255, 235/255] (MATLAB's double convention, not rounded).
    """
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    return (16.0 + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0


def rgb_to_y_np(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` for an ``(H, W, 3)`` array.

    ``uint8`` input gives the rounded ``uint8`` Y MATLAB returns for ``uint8``; float input in [0, 1]
    gives float64 Y in [16/255, 235/255]. A 2-D (grayscale) array counts as R = G = B.
    """
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype == np.uint8:
        # MATLAB's arithmetic for uint8 (imlincomb): (w/255)·RGB in 0..255 plus 16 in double,
        # rounded halves away from zero.
        rgb = img.astype(np.float64)
        y = rgb @ (np.asarray(_Y_WEIGHTS) / 255.0) + 16.0
        return np.clip(round_half_away(y), 0, 255).astype(np.uint8)
    rgb = img.astype(np.float64)
    return (16.0 + rgb @ np.asarray(_Y_WEIGHTS)) / 255.0
