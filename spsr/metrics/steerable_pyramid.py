"""Steerable pyramid in the frequency domain, as matlabPyrTools' ``buildSFpyr`` builds it.

Ma et al.'s global features decompose the image into a high-pass residual and ``levels`` scales of
``orientations`` oriented bands (raised-cosine radial masks on a log2 radius, ``cos^order`` angular
masks). Only what those features use is built: the high-pass residual and the oriented bands (the
final low-pass residual is dropped). Every mask is evaluated with the lookup-table interpolation of
``pointOp`` (linear, extrapolated at both ends) so the bands match the MATLAB ones to rounding error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spsr.metrics.conventions import MetricInputError


@dataclass
class SteerablePyramid:
    """The parts of a steerable pyramid Ma et al. use.

    Attributes:
        highpass: ``(H, W)`` high-pass residual (matlabPyrTools band 1).
        bands: ``bands[level][orientation]``, real parts; level 0 is full size, each next level half.
    """

    highpass: np.ndarray
    bands: list[list[np.ndarray]]


def _point_op(values: np.ndarray, table: np.ndarray, origin: float, increment: float) -> np.ndarray:
    """matlabPyrTools ``pointOp``: linear interpolation in ``table`` sampled at origin + k increment."""
    pos = (values - origin) / increment
    index = np.clip(np.trunc(pos), 0, len(table) - 2).astype(np.int64)
    return table[index] + (table[index + 1] - table[index]) * (pos - index)


def _raised_cosine() -> tuple[np.ndarray, np.ndarray]:
    """``rcosFn(1, -0.5, [0 1])``: the radial transition, returned as (X, sqrt(Y))."""
    size = 256
    x = np.pi * np.arange(-size - 1, 2, dtype=np.float64) / (2 * size)
    y = np.cos(x) ** 2
    y[0] = y[1]
    y[size + 2] = y[size + 1]
    x = -0.5 + (2.0 / np.pi) * (x + np.pi / 4)
    return x, np.sqrt(y)


def _polar_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """log2 radius and angle of the centred frequency grid (MATLAB's 1-based centre)."""
    ctr_r = math.ceil((rows + 0.5) / 2)
    ctr_c = math.ceil((cols + 0.5) / 2)
    xr = (np.arange(1, cols + 1) - ctr_c) / (cols / 2.0)
    yr = (np.arange(1, rows + 1) - ctr_r) / (rows / 2.0)
    xramp, yramp = np.meshgrid(xr, yr)
    angle = np.arctan2(yramp, xramp)
    rad = np.sqrt(xramp**2 + yramp**2)
    rad[ctr_r - 1, ctr_c - 1] = rad[ctr_r - 1, ctr_c - 2]
    return np.log2(rad), angle


def build_steerable_pyramid(
    image: np.ndarray, levels: int = 2, orientations: int = 6
) -> SteerablePyramid:
    """Build the pyramid of a grayscale image (``buildSFpyr(im, levels, orientations - 1)``).

    Args:
        image: ``(H, W)`` float64.
        levels: number of scales.
        orientations: bands per scale.

    Returns:
        The high-pass residual and the oriented bands.
    """
    rows, cols = image.shape
    if levels > math.floor(math.log2(min(rows, cols))) - 2:
        raise MetricInputError(f"image {rows}x{cols} is too small for a {levels}-level pyramid")
    log_rad, angle = _polar_grid(rows, cols)
    x_rcos, y_rcos = _raised_cosine()
    yi_rcos = np.sqrt(1.0 - y_rcos**2)
    step = x_rcos[1] - x_rcos[0]
    dft = np.fft.fftshift(np.fft.fft2(image))
    low = dft * _point_op(log_rad, yi_rcos, x_rcos[0], step)
    high = dft * _point_op(log_rad, y_rcos, x_rcos[0], step)
    highpass = np.real(np.fft.ifft2(np.fft.ifftshift(high)))

    order = orientations - 1
    lut = 1024
    x_cosn = np.pi * np.arange(-(2 * lut + 1), lut + 2, dtype=np.float64) / lut
    const = (2.0 ** (2 * order)) * math.factorial(order) ** 2 / (
        orientations * math.factorial(2 * order)
    )
    y_cosn = math.sqrt(const) * np.cos(x_cosn) ** order
    rotation = (-1j) ** order
    bands: list[list[np.ndarray]] = []
    for level in range(levels):
        x_rcos = x_rcos - 1.0  # log2(2): one octave down
        step = x_rcos[1] - x_rcos[0]
        hi_mask = _point_op(log_rad, y_rcos, x_rcos[0], step)
        level_bands = []
        for b in range(orientations):
            angle_mask = _point_op(
                angle, y_cosn, x_cosn[0] + np.pi * b / orientations, x_cosn[1] - x_cosn[0]
            )
            band_dft = rotation * low * angle_mask * hi_mask
            level_bands.append(np.real(np.fft.ifft2(np.fft.ifftshift(band_dft))))
        bands.append(level_bands)
        if level == levels - 1:
            break
        # Keep the centre half of the spectrum and apply the low-pass mask for the next level.
        r, c = low.shape
        ctr = (math.ceil((r + 0.5) / 2), math.ceil((c + 0.5) / 2))
        lodims = (math.ceil((r - 0.5) / 2), math.ceil((c - 0.5) / 2))
        loctr = (math.ceil((lodims[0] + 0.5) / 2), math.ceil((lodims[1] + 0.5) / 2))
        r0, c0 = ctr[0] - loctr[0], ctr[1] - loctr[1]
        crop = (slice(r0, r0 + lodims[0]), slice(c0, c0 + lodims[1]))
        log_rad, angle, low = log_rad[crop], angle[crop], low[crop]
        low = low * _point_op(log_rad, np.abs(np.sqrt(1.0 - y_rcos**2)), x_rcos[0], step)
    return SteerablePyramid(highpass=highpass, bands=bands)
