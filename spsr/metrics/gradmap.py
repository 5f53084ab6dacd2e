"""The gradient-map error ‖M(SR) − M(HR)‖₁: how far the SR image's structure is from the HR's.

M(·) is the gradient operator of SPSR (CVPR 2020 §3.2.1, eq. 2; TPAMI 2021 §3.2, eq. 2;
:func:`spsr.ops.gradient.gradient_map`): central differences per colour channel,
``M = sqrt(Ix² + Iy² + 1e-6)``, padding 1 (the papers' form, same size as the image). The papers'
structural claim is that the gradient branch and the gradient losses bring M(SR) closer to M(HR);
this metric is that distance in one number (lower is better).

Conventions (also written into results files, see :mod:`spsr.metrics.builtin.gradmap_l1`):

* 8-bit images (a float image is quantised first, like every metric), then scaled to [0, 1];
* on RGB, as the papers' M works per colour channel (a grayscale image counts as R = G = B, which
  gives the same number as its one channel); not switched to Y by ``--y-channel/--rgb``, which is a
  PSNR/SSIM convention;
* M on the whole image (zero padding), *then* the PSNR/SSIM border (``crop_border``, the scale)
  shaved from both maps, which also removes the artificial edges the zero padding makes;
* the mean absolute difference over every remaining pixel and channel.
"""

from __future__ import annotations

import numpy as np

from spsr.metrics.conventions import MetricInputError, as_uint8_image, shave


def gradient_map_np(img: np.ndarray) -> np.ndarray:
    """M(·) with padding 1 of an 8-bit image scaled to [0, 1].

    Args:
        img: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1], quantised first).

    Returns:
        ``(H, W, 3)`` float64: the gradient magnitude per colour channel.
    """
    import torch

    from spsr.ops.gradient import gradient_map

    u8 = as_uint8_image(img)
    rgb = u8 if u8.ndim == 3 else np.repeat(u8[:, :, None], 3, axis=2)
    x = torch.from_numpy(rgb.astype(np.float64) / 255.0).permute(2, 0, 1)[None]
    return gradient_map(x, padding=1)[0].permute(1, 2, 0).numpy()


def calculate_gradmap_l1(sr: np.ndarray, hr: np.ndarray, crop_border: int) -> float:
    """‖M(SR) − M(HR)‖₁ as a mean over pixels and channels (images in [0, 1]).

    Args:
        sr: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1]).
        hr: the reference, same size.
        crop_border: pixels shaved from every side of both gradient maps (the scale, as PSNR's).

    Returns:
        The mean absolute difference; 0 for identical images.

    Raises:
        MetricInputError: the sizes differ, or the image is too small for the border.
    """
    a, b = np.asarray(sr), np.asarray(hr)
    if a.shape[:2] != b.shape[:2]:
        raise MetricInputError(
            f"SR is {a.shape[0]}x{a.shape[1]} but HR is {b.shape[0]}x{b.shape[1]}"
        )
    ma = shave(gradient_map_np(a), crop_border)
    mb = shave(gradient_map_np(b), crop_border)
    return float(np.mean(np.abs(ma - mb)))
