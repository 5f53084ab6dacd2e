"""PSNR and SSIM exactly as the papers compute them (MATLAB conventions, see ``conventions``).

Two entry points share one implementation:

* :func:`calculate_psnr` / :func:`calculate_ssim` on one pair of 8-bit ``(H, W[, 3])`` arrays;
* :func:`psnr_batch` / :func:`ssim_batch` on ``(N, 3, H, W)`` float tensors in [0, 1] (quantised to
  8 bits first, so they give the numbers of the saved images), vectorised over the batch.

SSIM is Wang et al. (2004): Gaussian window 11x11, sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``,
``L = 255``, statistics over the *valid* region (no padding), mean of the SSIM map; with ``--rgb``
the mean over the three channels. With ``downsample`` (the ``spsr`` protocol, the scorer of the
CVPR 2020 and TPAMI 2021 tables) the images first go through the automatic downsampling of Wang's
reference ``ssim.m`` (:func:`wang_downsample`); without it (``basicsr``) SSIM runs at full
resolution.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.ndimage import correlate1d

from spsr.metrics.conventions import MetricInputError, metric_channels, shave
from spsr.ops import rgb_to_y_np
from spsr.ops.rounding import round_half_away

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


@functools.lru_cache(maxsize=4)
def gaussian_kernel_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is MATLAB ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim_downsample_factor(height: int, width: int) -> int:
    """``ssim.m``'s shrink factor ``f = max(1, round(min(M, N) / 256))``, with MATLAB's rounding
    (``min = 640`` gives 3, not 2)."""
    return max(1, int(round_half_away(min(height, width) / 256.0)))


def mean_filter_same(x: np.ndarray, f: int) -> np.ndarray:
    """MATLAB ``imfilter(x, ones(f, f) / f^2, 'symmetric', 'same')`` over the last two axes.

    ``imfilter`` correlates with the kernel's origin at ``floor((f + 1) / 2)`` (1-based), so the
    window of output pixel ``i`` (0-based) covers input pixels ``i - (f - 1) // 2 .. i + f // 2``:
    centred for odd ``f``, one more pixel after than before for even ``f`` (``f = 2``: ``i, i + 1``).
    'symmetric' pads by mirroring *with* the edge pixel (``... b a | a b ...``), as numpy's
    ``'symmetric'`` does.
    """
    if f <= 1:
        return x
    before, after = (f - 1) // 2, f // 2
    pad = [(0, 0)] * (x.ndim - 2) + [(before, after), (before, after)]
    padded = np.pad(x, pad, mode="symmetric")
    height, width = x.shape[-2], x.shape[-1]
    rows = np.zeros((*padded.shape[:-2], height, padded.shape[-1]))
    for k in range(f):
        rows += padded[..., k : k + height, :]
    total = np.zeros(x.shape)
    for k in range(f):
        total += rows[..., :, k : k + width]
    return total / float(f * f)


def wang_downsample(x: np.ndarray) -> np.ndarray:
    """The automatic downsampling of Wang's ``ssim.m`` over the last two axes.

    ``f = max(1, round(min(M, N) / 256))``; if ``f > 1``, the f×f mean filter of
    :func:`mean_filter_same`, then every f-th pixel from the first (MATLAB ``img(1:f:end, 1:f:end)``,
    index 0 here). Images under 384 pixels on their short side are returned as they are.
    """
    f = ssim_downsample_factor(x.shape[-2], x.shape[-1])
    if f == 1:
        return x
    return mean_filter_same(x, f)[..., ::f, ::f]


def _filter_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation over the last two axes, keeping the valid region only."""
    half = len(kernel) // 2
    out = correlate1d(x, kernel, axis=-2, mode="constant")[..., half:-half, :]
    return correlate1d(out, kernel, axis=-1, mode="constant")[..., half:-half]


def ssim_map(a: np.ndarray, b: np.ndarray, structure_only: bool = False) -> np.ndarray:
    """The SSIM (or contrast-structure) map of two float64 images in 0..255.

    Args:
        a: ``(..., H, W)`` float64.
        b: same shape.
        structure_only: return the contrast-structure term ``(2 s_ab + C2) / (s_a + s_b + C2)``
            (Ma et al.'s features use it) instead of full SSIM.

    Returns:
        ``(..., H - 10, W - 10)`` map.
    """
    if a.shape[-1] < SSIM_WINDOW or a.shape[-2] < SSIM_WINDOW:
        raise MetricInputError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after shaving, "
            f"got {a.shape[-2]}x{a.shape[-1]}"
        )
    g = gaussian_kernel_1d()
    stacked = np.stack([a, b, a * a, b * b, a * b])
    mu_a, mu_b, e_aa, e_bb, e_ab = _filter_valid(stacked, g)
    var_a = e_aa - mu_a * mu_a
    var_b = e_bb - mu_b * mu_b
    cov = e_ab - mu_a * mu_b
    cs = (2.0 * cov + _C2) / (var_a + var_b + _C2)
    if structure_only:
        return cs
    return cs * (2.0 * mu_a * mu_b + _C1) / (mu_a * mu_a + mu_b * mu_b + _C1)


def _check_pair(sr: np.ndarray, hr: np.ndarray) -> None:
    if sr.shape[:2] != hr.shape[:2]:
        raise MetricInputError(
            f"SR is {sr.shape[0]}x{sr.shape[1]} but HR is {hr.shape[0]}x{hr.shape[1]}"
        )


def _psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(mse == 0, np.inf, 10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-300)))


def calculate_psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True) -> float:
    """PSNR in dB of an SR image against its HR image, in the papers' convention.

    Args:
        sr: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1]).
        hr: the reference, same size.
        crop_border: pixels shaved from every side (the scale, in the papers).
        y_channel: compare the Y of ``rgb2ycbcr`` (papers) instead of RGB.

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    _check_pair(np.asarray(sr), np.asarray(hr))
    a = metric_channels(sr, y_channel, crop_border)
    b = metric_channels(hr, y_channel, crop_border)
    return float(_psnr_from_mse(np.mean((a - b) ** 2)))


def calculate_ssim(
    sr: np.ndarray,
    hr: np.ndarray,
    crop_border: int,
    y_channel: bool = True,
    downsample: bool = True,
) -> float:
    """SSIM (Wang et al.) of an SR image against its HR image, in the papers' convention.

    Args:
        sr: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1]).
        hr: the reference, same size.
        crop_border: pixels shaved from every side.
        y_channel: compare the Y channel (papers); False averages SSIM over R, G, B.
        downsample: ``ssim.m``'s automatic downsampling of the shaved images first
            (:func:`wang_downsample`; the ``spsr`` protocol); False: full resolution (``basicsr``).

    Returns:
        Mean SSIM in [-1, 1].
    """
    _check_pair(np.asarray(sr), np.asarray(hr))
    a = np.moveaxis(metric_channels(sr, y_channel, crop_border), -1, 0)
    b = np.moveaxis(metric_channels(hr, y_channel, crop_border), -1, 0)
    if downsample:
        a, b = wang_downsample(a), wang_downsample(b)
    return float(ssim_map(a, b).mean())


def _batch_channels(x: torch.Tensor, y_channel: bool, crop_border: int) -> np.ndarray:
    """``(N, C, H, W)`` float [0, 1] → float64 ``(N, C', H', W')`` with the evaluation convention."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise MetricInputError(f"expected an (N, 3, H, W) tensor, got {tuple(x.shape)}")
    u8 = torch.round(x.detach().float().clamp(0, 1) * 255.0).to(torch.uint8).cpu().numpy()
    if u8.shape[1] == 1:
        u8 = np.repeat(u8, 3, axis=1)
    nhwc = np.ascontiguousarray(u8.transpose(0, 2, 3, 1))
    if y_channel:
        chans = rgb_to_y_np(nhwc).astype(np.float64)[:, None]
    else:
        chans = u8.astype(np.float64)
    # shave() works on the first two axes: move H, W there and back.
    return np.moveaxis(shave(np.moveaxis(chans, (2, 3), (0, 1)), crop_border), (0, 1), (2, 3))


def _check_batch(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if sr.shape != hr.shape:
        raise MetricInputError(f"SR batch {tuple(sr.shape)} and HR batch {tuple(hr.shape)} differ")


def psnr_batch(
    sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool = True
) -> torch.Tensor:
    """Per-image PSNR of two ``(N, 3, H, W)`` batches in [0, 1]; same numbers as :func:`calculate_psnr`
    on the 8-bit images.

    Returns:
        float64 tensor ``(N,)``.
    """
    _check_batch(sr, hr)
    a = _batch_channels(sr, y_channel, crop_border)
    b = _batch_channels(hr, y_channel, crop_border)
    mse = ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)
    return torch.from_numpy(_psnr_from_mse(mse))


def ssim_batch(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int,
    y_channel: bool = True,
    downsample: bool = True,
) -> torch.Tensor:
    """Per-image SSIM of two ``(N, 3, H, W)`` batches in [0, 1]; same numbers as
    :func:`calculate_ssim` on the 8-bit images (``downsample`` as there).

    Returns:
        float64 tensor ``(N,)``.
    """
    _check_batch(sr, hr)
    a = _batch_channels(sr, y_channel, crop_border)
    b = _batch_channels(hr, y_channel, crop_border)
    if downsample:
        a, b = wang_downsample(a), wang_downsample(b)
    return torch.from_numpy(ssim_map(a, b).mean(axis=(1, 2, 3)))
