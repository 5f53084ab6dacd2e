"""NIQE (Mittal, Soundararajan, Bovik, IEEE SPL 2013), as the MATLAB release computes it.

The image (Y, 0..255) is cropped to whole 96x96 blocks. At two scales (the second a MATLAB bicubic
half-size copy) the mean-subtracted contrast-normalised (MSCN) map is computed with the 7x7 Gaussian
window and replicate padding; per block an AGGD is fitted to the MSCN values and to the products of
horizontally, vertically and diagonally neighbouring values (18 features per scale). The score is the
Mahalanobis-like distance between the multivariate Gaussian of the block features and the pristine
model: ``sqrt((mu_p - mu)^T pinv((S_p + S) / 2) (mu_p - mu))``.

The pristine model ships as ``spsr/assets/niqe_pris_params.npz`` (see the attribution file next to
it). Everything is vectorised over blocks; a 512x512 image takes well under a second.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

from spsr.metrics._blas import single_threaded_blas
from spsr.metrics.conventions import MetricInputError, luminance, shave
from spsr.metrics.distribution_fits import fit_aggd
from spsr.ops import imresize_np

BLOCK_SIZE = 96
PARAMS_FILE = "niqe_pris_params.npz"
# Neighbour offsets of the pairwise products (MATLAB circshift shifts within each block).
_PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@functools.lru_cache(maxsize=1)
def load_niqe_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bundled pristine model.

    Returns:
        ``(mu_pris (36,), cov_pris (36, 36), gaussian_window (7, 7))``.
    """
    ref = resources.files("spsr") / "assets" / PARAMS_FILE
    with resources.as_file(ref) as path, np.load(path) as data:
        mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(-1)
        cov = np.asarray(data["cov_pris_param"], dtype=np.float64)
        window = np.asarray(data["gaussian_window"], dtype=np.float64)
    return mu, cov, window


def _block_features(mscn: np.ndarray, block: int) -> np.ndarray:
    """18 AGGD features of every ``block x block`` tile of the MSCN map → ``(n_blocks, 18)``."""
    rows, cols = mscn.shape[0] // block, mscn.shape[1] // block
    tiles = mscn[: rows * block, : cols * block].reshape(rows, block, cols, block)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(rows * cols, block, block)
    alpha, beta_l, beta_r = fit_aggd(tiles.reshape(len(tiles), -1))
    feats = [alpha, (beta_l + beta_r) / 2.0]
    for shift in _PAIR_SHIFTS:
        pairs = tiles * np.roll(tiles, shift, axis=(1, 2))
        alpha, beta_l, beta_r = fit_aggd(pairs.reshape(len(tiles), -1))
        mean = (beta_r - beta_l) * (gamma(2.0 / alpha) / gamma(1.0 / alpha))
        feats += [alpha, mean, beta_l, beta_r]
    return np.stack(feats, axis=1)


def _mscn(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    mu = correlate(img, window, mode="nearest")
    sigma = np.sqrt(np.abs(correlate(img * img, window, mode="nearest") - mu * mu))
    return (img - mu) / (sigma + 1.0)


def niqe_features(y: np.ndarray) -> np.ndarray:
    """Block features of a Y image: ``(n_blocks, 36)`` (18 at full scale, 18 at half scale).

    Args:
        y: ``(H, W)`` float64 in 0..255, at least 96x96.
    """
    _, _, window = load_niqe_params()
    rows, cols = y.shape[0] // BLOCK_SIZE, y.shape[1] // BLOCK_SIZE
    if rows == 0 or cols == 0:
        raise MetricInputError(
            f"NIQE needs at least {BLOCK_SIZE}x{BLOCK_SIZE} pixels, got {y.shape[0]}x{y.shape[1]}"
        )
    img = y[: rows * BLOCK_SIZE, : cols * BLOCK_SIZE].astype(np.float64)
    full = _block_features(_mscn(img, window), BLOCK_SIZE)
    half_img = imresize_np(img, 0.5)
    half = _block_features(_mscn(half_img, window), BLOCK_SIZE // 2)
    return np.concatenate([full, half], axis=1)


def _nan_mean_cov(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``nanmean`` and ``nancov`` (rows with any NaN dropped; one row → zero covariance)."""
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(feats, axis=0)
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) <= 1:
        return mean, np.zeros((feats.shape[1], feats.shape[1]))
    return mean, np.cov(complete, rowvar=False, ddof=1)


def niqe_of_y(y: np.ndarray) -> float:
    """NIQE of a Y image (float 0..255), no border handling: the MATLAB ``computequality``.

    Args:
        y: ``(H, W)`` array, at least 96x96.

    Returns:
        The NIQE score (lower is better).
    """
    mu_pris, cov_pris, _ = load_niqe_params()
    with single_threaded_blas():
        mu, cov = _nan_mean_cov(niqe_features(np.asarray(y, dtype=np.float64)))
        diff = mu_pris - mu
        inv = np.linalg.pinv((cov_pris + cov) / 2.0)
    return float(np.sqrt(diff @ inv @ diff))


def calculate_niqe(img: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """NIQE of an 8-bit image in the papers' convention.

    Args:
        img: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1]).
        crop_border: pixels shaved from every side first (PI protocol: 4).
        y_channel: use the evaluation Y (papers); False uses MATLAB ``rgb2gray`` weights instead.

    Returns:
        The NIQE score (lower is better).
    """
    return niqe_of_y(shave(luminance(img, y_channel), crop_border))

