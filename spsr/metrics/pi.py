"""Perceptual Index (PIRM 2018): ``PI = ((10 - Ma) + NIQE) / 2``, lower is better.

Both parts are computed on the same Y image with the same border shaved (the PIRM protocol: Y of
``rgb2ycbcr``, 4 pixels), so one Y image is prepared and shared.
"""

from __future__ import annotations

import os

import numpy as np

from spsr.metrics.conventions import luminance, shave
from spsr.metrics.niqe import niqe_of_y
from spsr.metrics.nrqm import MaModel, load_ma_model, ma_of_y

PI_CROP_BORDER = 4


def pi_from_scores(ma: float, niqe: float) -> float:
    """PI from its two parts."""
    return ((10.0 - ma) + niqe) / 2.0


def perceptual_scores(
    img: np.ndarray,
    crop_border: int = PI_CROP_BORDER,
    ma_model: MaModel | str | os.PathLike[str] | None = None,
    y_channel: bool = True,
) -> dict[str, float]:
    """NIQE, Ma and PI of one image, sharing the prepared Y.

    Args:
        img: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1]).
        crop_border: pixels shaved from every side (PIRM: 4).
        ma_model: loaded model, path to ``model.mat``, or None for the cache folder.
        y_channel: Y of ``rgb2ycbcr`` (PIRM) or, when False, MATLAB ``rgb2gray``.

    Returns:
        ``{"niqe": ..., "ma": ..., "pi": ...}``.
    """
    model = ma_model if isinstance(ma_model, MaModel) else load_ma_model(ma_model)
    y = shave(luminance(img, y_channel), crop_border)
    niqe = niqe_of_y(y)
    ma = ma_of_y(y, model)
    return {"niqe": niqe, "ma": ma, "pi": pi_from_scores(ma, niqe)}


def calculate_pi(
    img: np.ndarray,
    crop_border: int = PI_CROP_BORDER,
    ma_model: MaModel | str | os.PathLike[str] | None = None,
    y_channel: bool = True,
) -> float:
    """The Perceptual Index of one image (see :func:`perceptual_scores` for the arguments)."""
    return perceptual_scores(img, crop_border, ma_model, y_channel)["pi"]
