"""Moment-matching fits of (asymmetric) generalised Gaussian distributions, vectorised over rows.

NIQE fits an asymmetric GGD (AGGD) to normalised luminance and its pairwise products; Ma et al.'s
metric fits a symmetric GGD to DCT coefficients and wavelet subbands. Both pick the shape from a
table on a 0.001 grid, as the MATLAB references do, so the shapes land on the same grid values.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import gamma


@functools.lru_cache(maxsize=1)
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    shapes = 0.2 + 0.001 * np.arange(9801)  # MATLAB 0.2:0.001:10
    ratio = gamma(2.0 / shapes) ** 2 / (gamma(1.0 / shapes) * gamma(3.0 / shapes))
    return shapes, ratio


@functools.lru_cache(maxsize=1)
def _ggd_table() -> tuple[np.ndarray, np.ndarray]:
    shapes = 0.03 + 0.001 * np.arange(9971)  # MATLAB 0.03:0.001:10
    ratio = gamma(1.0 / shapes) * gamma(3.0 / shapes) / gamma(2.0 / shapes) ** 2
    if not np.all(np.diff(ratio) < 0):  # the nearest-value search below relies on it
        raise AssertionError("GGD moment ratio table is not decreasing")
    return shapes, ratio


def fit_aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit an AGGD to each row of ``x`` (NIQE's ``estimateaggdparam``).

    Args:
        x: ``(..., n)`` float64 samples.

    Returns:
        ``(alpha, beta_left, beta_right)``, each of shape ``x.shape[:-1]``. Rows without negative
        (or positive) samples give NaN betas, as in MATLAB.
    """
    shapes, ratio = _aggd_table()
    neg = x < 0
    pos = x > 0
    sq = x * x
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((sq * neg).sum(-1) / neg.sum(-1))
        right_std = np.sqrt((sq * pos).sum(-1) / pos.sum(-1))
        gamma_hat = left_std / right_std
        r_hat = np.abs(x).mean(-1) ** 2 / sq.mean(-1)
        r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    # MATLAB min((r_gam - r).^2): first minimum; an all-NaN row gives the first shape.
    flat = r_hat_norm.reshape(-1)
    idx = np.argmin((ratio[None, :] - flat[:, None]) ** 2, axis=1)
    idx = np.where(np.isnan(flat), 0, idx)
    alpha = shapes[idx].reshape(r_hat_norm.shape)
    scale = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, left_std * scale, right_std * scale


def ggd_shape_from_ratio(rho: np.ndarray) -> np.ndarray:
    """GGD shape whose moment ratio ``var / E|x - mu|^2`` is nearest to ``rho`` (ties: smaller)."""
    shapes, ratio = _ggd_table()
    rho = np.asarray(rho, dtype=np.float64)
    n = ratio.size
    # ratio is decreasing: the first index with ratio <= rho, found on the reversed (increasing) table.
    first_le = n - np.searchsorted(ratio[::-1], rho, side="right")
    lo = np.clip(first_le - 1, 0, n - 1)
    hi = np.clip(first_le, 0, n - 1)
    pick_hi = np.abs(ratio[hi] - rho) < np.abs(ratio[lo] - rho)
    idx = np.where(pick_hi, hi, lo)
    idx = np.where(first_le == 0, 0, idx)
    idx = np.where(first_le >= n, n - 1, idx)
    idx = np.where(np.isnan(rho), 0, idx)
    return shapes[idx]


def fit_ggd_shape(x: np.ndarray) -> np.ndarray:
    """GGD shape of each row of ``x`` (Ma et al.'s / BLIINDS ``gama_gen_gauss``).

    Args:
        x: ``(..., n)`` float64 samples.

    Returns:
        Shapes of shape ``x.shape[:-1]``.
    """
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, ddof=1)
    mean_abs = np.abs(x - mean).mean(-1) ** 2
    return ggd_shape_from_ratio(var / (mean_abs + 1e-7))
