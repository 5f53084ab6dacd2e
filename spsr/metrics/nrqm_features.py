"""The three feature groups of Ma et al.'s no-reference SR metric (CVIU 2017, ``feature_all.m``).

Written from the MIT-licensed MATLAB reference (github chaoma99/sr-metric) and vectorised:

* **f1, local frequency (18)**: on a 3-level Gaussian pyramid of the image in [0, 1] (3x3 Gaussian,
  sigma 0.5, zero padding, keep every second pixel), 7x7 DCTs of overlapping blocks on a stride of 3
  (``blkproc(im, [3 3], [2 2])``, zeros outside). Per block: the GGD shape of the AC coefficients,
  their coefficient of variation, and the variance across three orientation groups of the
  coefficients' coefficient of variation. Per level: mean of the lowest 10 % and of all shapes, mean
  of the highest 10 % and of all variations, the same for the orientation statistic.
* **f2, global GSM wavelet statistics (45)**: a 2-scale, 6-orientation steerable pyramid of the
  0..255 image, each band divisively normalised by its 3x3 neighbourhood, parent and sibling bands
  (``norm_sender_normalized``). GGD shapes of the 12 normalised bands and of the 6 cross-scale pairs,
  the SSIM contrast-structure term between every raw band (upsampled) and the high-pass residual
  (12), and between every pair of first-scale normalised bands (15).
* **f3, spatial PCA (75)**: singular values of the matrix of distinct 5x5 patches (zero padded) at
  each pyramid level (25 per level).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.fft import dct
from scipy.ndimage import correlate

from spsr.metrics._blas import single_threaded_blas
from spsr.metrics.conventions import MetricInputError
from spsr.metrics.distribution_fits import fit_ggd_shape
from spsr.metrics.psnr_ssim import _filter_valid, gaussian_kernel_1d
from spsr.metrics.steerable_pyramid import SteerablePyramid, build_steerable_pyramid
from spsr.ops import imresize_np

MIN_SIZE = 32  # the 2-level pyramid, the 32-pixel guard band and SSIM's 11x11 window need this much
_DCT_SIZE = 7
_DCT_STRIDE = 3
_GUARD_BAND = 16
_SSIM_C2 = (0.03 * 255.0) ** 2

# Orientation groups of a 7x7 DCT block as (row, col): upper right, diagonal, lower left.
_ORIENTATION_1 = [(0, c) for c in range(1, 7)] + [(1, c) for c in range(2, 7)] + [
    (2, 4), (2, 5), (2, 6), (3, 5), (3, 6)
]
_ORIENTATION_2 = [(1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 3), (4, 4), (4, 5), (4, 6),
                  (5, 4), (5, 5), (5, 6), (6, 4), (6, 5), (6, 6)]
_ORIENTATION_3 = [(r, c) for (c, r) in _ORIENTATION_1]


@functools.lru_cache(maxsize=1)
def _dct2_matrix() -> np.ndarray:
    """``(49, 49)`` matrix ``M`` with ``block.ravel() @ M == dct2(block).ravel()`` (orthonormal)."""
    basis = dct(np.eye(_DCT_SIZE), axis=0, norm="ortho")  # columns: DCT of unit vectors
    return np.kron(basis, basis).T


def _flat_indices(pairs: list[tuple[int, int]]) -> np.ndarray:
    return np.array([r * _DCT_SIZE + c for r, c in pairs])


@functools.lru_cache(maxsize=1)
def _gauss3() -> np.ndarray:
    g = np.exp(-(np.arange(-1, 2, dtype=np.float64) ** 2) / (2 * 0.5**2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


def spatial_pyramid(y: np.ndarray) -> list[np.ndarray]:
    """Three levels of the image in [0, 1]: full, half, quarter (``feature_all.m``)."""
    levels = [y / 255.0]
    for _ in range(2):
        smoothed = correlate(levels[-1], _gauss3(), mode="constant", cval=0.0)
        levels.append(smoothed[1::2, 1::2])
    return levels


def _std_over_mean(x: np.ndarray, eps: float) -> np.ndarray:
    return x.std(-1, ddof=1) / (x.mean(-1) + eps)


def block_dct_features(level: np.ndarray) -> np.ndarray:
    """The 6 local-frequency features of one pyramid level (``block_dct.m``)."""
    rows, cols = level.shape
    n_r, n_c = math.ceil(rows / _DCT_STRIDE), math.ceil(cols / _DCT_STRIDE)
    padded = np.zeros((_DCT_STRIDE * n_r + 4, _DCT_STRIDE * n_c + 4))
    padded[2 : 2 + rows, 2 : 2 + cols] = level
    windows = np.lib.stride_tricks.sliding_window_view(padded, (_DCT_SIZE, _DCT_SIZE))
    windows = windows[::_DCT_STRIDE, ::_DCT_STRIDE][:n_r, :n_c].reshape(-1, _DCT_SIZE**2)
    flat = windows @ _dct2_matrix()  # row-major flattened 7x7 DCT-II of every block at once
    ac = flat[:, 1:]
    shape = np.sort(fit_ggd_shape(ac))
    variation = np.sort(_std_over_mean(np.abs(ac), 1e-7))
    groups = [
        _std_over_mean(np.abs(flat[:, _flat_indices(g)]), 1e-8)
        for g in (_ORIENTATION_1, _ORIENTATION_2, _ORIENTATION_3)
    ]
    orientation = np.sort(np.var(np.stack(groups, axis=1), axis=1, ddof=1))
    n = len(flat)
    low10 = math.ceil(n * 0.1)
    high10 = math.trunc(n * 0.9) - 1  # MATLAB sorted(fix(0.9 * end):end), 1-based
    return np.array([
        shape[:low10].mean(), shape.mean(),
        variation[high10:].mean(), variation.mean(),
        orientation[high10:].mean(), orientation.mean(),
    ])


def patch_singular_values(level: np.ndarray) -> np.ndarray:
    """Singular values of the 25 x n matrix of distinct 5x5 patches, zero padded (25 values)."""
    rows, cols = level.shape
    n_r, n_c = math.ceil(rows / 5), math.ceil(cols / 5)
    padded = np.zeros((5 * n_r, 5 * n_c))
    padded[:rows, :cols] = level
    patches = padded.reshape(n_r, 5, n_c, 5).transpose(1, 3, 0, 2).reshape(25, -1)
    return np.linalg.svd(patches, compute_uv=False)


def _upsampled_coarse_bands(pyr: SteerablePyramid) -> list[np.ndarray]:
    """Second-level bands resized x2 (MATLAB ``imresize(band, 2)``, bicubic)."""
    return [imresize_np(b, 2.0) for b in pyr.bands[1]] if len(pyr.bands) > 1 else []


def _normalized_subbands(pyr: SteerablePyramid, parents_x2: list[np.ndarray]) -> list[np.ndarray]:
    """Divisive normalisation of every oriented band (``norm_sender_normalized`` with 3x3
    neighbourhood, parent and siblings), guard band removed, zero mean; order: level, orientation.

    Args:
        pyr: the pyramid.
        parents_x2: :func:`_upsampled_coarse_bands` of it.
    """
    levels, orientations = len(pyr.bands), len(pyr.bands[0])
    out = []
    for level in range(levels):
        for o in range(orientations):
            band = pyr.bands[level][o]
            h, w = band.shape
            inner = (slice(1, h - 1), slice(1, w - 1))
            # As in the reference, only bands 2..6 of the first level (not the last orientation)
            # get their parent; the divisor counts the 9 neighbours and the parent, not siblings.
            has_parent = level == 0 and o < orientations - 1 and levels > 1
            siblings = [s for s in range(orientations) if s != o]
            n_cols = 9 + int(has_parent) + len(siblings)
            neigh = np.empty((n_cols, h - 2, w - 2))  # one row per neighbour: contiguous copies
            k = 0
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    neigh[k] = band[1 - dy : h - 1 - dy, 1 - dx : w - 1 - dx]
                    k += 1
            if has_parent:
                neigh[k] = parents_x2[o][:h, :w][inner]
                k += 1
            for s in siblings:
                neigh[k] = pyr.bands[level][s][inner]
                k += 1
            rows = neigh.reshape(n_cols, -1)
            cov = rows @ rows.T / rows.shape[1]
            eigval, eigvec = np.linalg.eigh(cov)
            positive = eigval * (eigval > 0)
            total_pos = positive.sum()
            eigval = positive * eigval.sum() / (total_pos + (total_pos == 0))
            cov = (eigvec * eigval) @ eigvec.T
            divisor = 9 + int(has_parent)
            z = np.sqrt(np.einsum("ij,ij->j", np.linalg.pinv(cov) @ rows, rows) / divisor)
            if np.any(z == 0):
                raise MetricInputError("flat image: Ma's divisive normalisation is undefined")
            centre = neigh[4]  # the (0, 0) neighbour is the band itself
            g = (centre - centre.mean()) / z.reshape(h - 2, w - 2)
            gb = _GUARD_BAND >> level
            g = g[gb : g.shape[0] - gb, gb : g.shape[1] - gb]
            out.append(g - g.mean())
    return out


def _local_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-window local mean and variance (SSIM's window, valid region)."""
    k = gaussian_kernel_1d()
    mu, e2 = _filter_valid(np.stack([x, x * x]), k)
    return mu, e2 - mu * mu


def _structure_mean(
    a: np.ndarray, b: np.ndarray, stats_a: tuple[np.ndarray, np.ndarray],
    stats_b: tuple[np.ndarray, np.ndarray],
) -> float:
    """Mean SSIM contrast-structure term ``(2 s_ab + C2) / (s_a + s_b + C2)`` of two maps whose
    local statistics are already known (each map's own statistics are shared by its pairs)."""
    cov = _filter_valid(a * b, gaussian_kernel_1d()) - stats_a[0] * stats_b[0]
    return float(((2.0 * cov + _SSIM_C2) / (stats_a[1] + stats_b[1] + _SSIM_C2)).mean())


def global_gsm_features(y: np.ndarray) -> np.ndarray:
    """The 45 global wavelet features of a 0..255 image (``global_gsm.m``)."""
    pyr = build_steerable_pyramid(y, levels=2, orientations=6)
    coarse_x2 = _upsampled_coarse_bands(pyr)
    subbands = _normalized_subbands(pyr, coarse_x2)
    n_or = len(pyr.bands[0])
    shapes = [fit_ggd_shape(s.reshape(-1)) for s in subbands]
    cross = [
        fit_ggd_shape(np.concatenate([subbands[i].reshape(-1), subbands[i + n_or].reshape(-1)]))
        for i in range(n_or)
    ]
    hp = pyr.highpass
    hp_stats = _local_stats(hp)
    to_highpass = []
    for level in pyr.bands:
        for o, band in enumerate(level):
            if band.shape != hp.shape:
                up = coarse_x2[o]
                band = up if up.shape == hp.shape else imresize_np(band, size=hp.shape)
            to_highpass.append(_structure_mean(band, hp, _local_stats(band), hp_stats))
    first = subbands[:n_or]
    first_stats = [_local_stats(s) for s in first]
    between = [
        _structure_mean(first[i], first[j], first_stats[i], first_stats[j])
        for i in range(n_or) for j in range(i + 1, n_or)
    ]
    return np.array(shapes + cross + to_highpass + between, dtype=np.float64)


def nrqm_features(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ma et al.'s three feature vectors of a Y image.

    Args:
        y: ``(H, W)`` float64 in 0..255 (the rounded evaluation Y, border already shaved).

    Returns:
        ``(f1 (18,), f2 (45,), f3 (75,))``.
    """
    y = np.asarray(y, dtype=np.float64)
    if min(y.shape) < MIN_SIZE:
        raise MetricInputError(
            f"Ma's metric needs at least {MIN_SIZE}x{MIN_SIZE} pixels, got {y.shape[0]}x{y.shape[1]}"
        )
    with single_threaded_blas():
        levels = spatial_pyramid(y)
        f1 = np.concatenate([block_dct_features(level) for level in levels])
        f2 = global_gsm_features(y)
        f3 = np.concatenate([patch_singular_values(level) for level in levels])
    return f1, f2, f3
