"""The one place that decides how an image becomes the numbers a metric sees.

The papers' tables only compare under these conventions (CVPR 2020 §4.1, TPAMI 2021 §5.1):

* 8-bit images. A float image in [0, 1] is first quantised to 8 bits (``round(x * 255)``), as if it
  had been saved, so a tensor and the file written from it score the same.
* Y channel of MATLAB ``rgb2ycbcr`` on the 8-bit image, *rounded to 8 bits* as MATLAB returns it for
  ``uint8`` input (:func:`spsr.ops.rgb_to_y_np`). Chosen by experiment: bicubic x4 gives Set5
  28.416 dB / 0.8101 and Set14 26.084 dB / 0.7041 with the rounded Y, against 28.429 / 0.8111 and
  26.088 / 0.7048 unrounded; the papers print 28.42 / 0.8104 and 26.09 / 0.704.
* Grayscale images count as R = G = B (their Y is ``16 + 219 v / 255``, rounded).
* A border of ``crop_border`` pixels (default: the scale) is shaved from every side.
"""

from __future__ import annotations

import numpy as np

from spsr.errors import SpsrError
from spsr.ops import rgb_to_y_np


class MetricInputError(SpsrError):
    """Images a metric cannot score: wrong dtype, mismatched sizes, too small after shaving."""


#: Written into ``spsr eval --json`` so a result file says how its numbers were made.
CONVENTIONS: dict[str, str] = {
    "y_channel": "Y of MATLAB rgb2ycbcr (BT.601 studio swing, 16-235) on 8-bit RGB, rounded to "
    "8 bits as MATLAB returns it for uint8 images",
    "grayscale": "R = G = B",
    "float_input": "quantised to 8 bits first: round(x * 255)",
    "crop_border": "pixels shaved from every side before PSNR and SSIM; default = the scale",
    "pi_border": "pixels shaved from every side before NIQE, Ma and PI; default 4 (PIRM)",
    "psnr": "10 log10(255^2 / MSE) over all pixels (and channels with --rgb)",
    "ssim": "Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255, valid "
    "region, mean of the map (per channel, averaged, with --rgb)",
    "lpips": "lpips package v0.1, AlexNet, the full RGB image (no shave) mapped to [-1, 1]",
    "niqe": "Mittal et al. 2013, official pristine parameters, 96x96 blocks, on Y, pi_border "
    "shaved",
    "ma": "Ma et al. 2017 (NRQM), the authors' model.mat, on Y, pi_border shaved",
    "pi": "((10 - Ma) + NIQE) / 2, both on Y with the same border shaved",
    "degradation": "HR mod-cropped to a multiple of the scale, LR = MATLAB imresize bicubic "
    "(antialiased), rounded to 8 bits",
}


def as_uint8_image(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Bring an image to 8-bit ``(H, W, 3)`` or ``(H, W)``.

    Args:
        img: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; ``uint8``, or float in [0, 1].
        name: how error messages call the image.

    Returns:
        ``uint8`` array; ``(H, W, 1)`` becomes ``(H, W)``.

    Raises:
        MetricInputError: another dtype or shape.
    """
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise MetricInputError(f"{name}: expected an (H, W) or (H, W, 3) image, got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    raise MetricInputError(f"{name}: expected uint8 or float in [0, 1], got {arr.dtype}")


def shave(arr: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from every side of the first two axes."""
    if border < 0:
        raise MetricInputError(f"crop border must be >= 0, got {border}")
    if border == 0:
        return arr
    if arr.shape[0] <= 2 * border or arr.shape[1] <= 2 * border:
        raise MetricInputError(
            f"image {arr.shape[0]}x{arr.shape[1]} is too small to shave a {border}-pixel border"
        )
    return arr[border:-border, border:-border]


def y_levels(img: np.ndarray) -> np.ndarray:
    """The evaluation Y channel: rounded MATLAB ``rgb2ycbcr`` Y of the 8-bit image, as float64.

    Args:
        img: ``(H, W)`` or ``(H, W, 3)`` ``uint8`` (or float in [0, 1], quantised first).

    Returns:
        ``(H, W)`` float64 with integer values in [16, 235].
    """
    return rgb_to_y_np(as_uint8_image(img)).astype(np.float64)


def gray_levels(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of the 8-bit image, rounded, as float64 ``(H, W)`` (the no-reference
    metrics' alternative to Y with ``--rgb``)."""
    u8 = as_uint8_image(img)
    if u8.ndim == 2:
        return u8.astype(np.float64)
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.clip(np.round(u8.astype(np.float64) @ weights), 0, 255)


def luminance(img: np.ndarray, y_channel: bool = True) -> np.ndarray:
    """The single channel the no-reference metrics (NIQE, Ma, PI) score: the evaluation Y, or the
    MATLAB gray level when ``y_channel`` is False."""
    return y_levels(img) if y_channel else gray_levels(img)


def metric_channels(img: np.ndarray, y_channel: bool, crop_border: int) -> np.ndarray:
    """The float64 ``(H, W, C)`` array in 0..255 that PSNR/SSIM compare.

    Args:
        img: 8-bit image (or float in [0, 1]).
        y_channel: True → C = 1 (the evaluation Y); False → C = 3 (RGB, gray repeated).
        crop_border: border to shave.
    """
    u8 = as_uint8_image(img)
    if y_channel:
        out = rgb_to_y_np(u8).astype(np.float64)[:, :, None]
    else:
        rgb = u8 if u8.ndim == 3 else np.repeat(u8[:, :, None], 3, axis=2)
        out = rgb.astype(np.float64)
    return shave(out, crop_border)
