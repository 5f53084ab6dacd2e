"""NIQE: bundled pristine model, values of the official MATLAB code, vectorised fits vs loops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import gamma
from skimage import data as skdata

from spsr.data.image_io import read_rgb
from spsr.metrics import MetricInputError, calculate_niqe, niqe_of_y
from spsr.metrics.distribution_fits import fit_aggd
from spsr.metrics.niqe import load_niqe_params

BENCHMARK = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "benchmark"


def pirm_y(rgb: np.ndarray, shave: int = 4) -> np.ndarray:
    """Y exactly as MATLAB rgb2ycbcr evaluates it for uint8 (imlincomb order, round half up),
    shaved: the input the official scripts see."""
    x = rgb.astype(np.float64)
    y = 65.481 / 255 * x[..., 0] + 128.553 / 255 * x[..., 1] + 24.966 / 255 * x[..., 2] + 16
    return np.clip(np.floor(y + 0.5), 0, 255)[shave:-shave, shave:-shave]


def test_bundled_pristine_parameters_have_the_official_shapes():
    mu, cov, window = load_niqe_params()
    assert mu.shape == (36,) and cov.shape == (36, 36) and window.shape == (7, 7)
    assert np.allclose(cov, cov.T)
    assert window.sum() == pytest.approx(1.0)
    g = np.exp(-(np.arange(-3, 4) ** 2) / (2 * (7 / 6) ** 2))
    assert np.allclose(window, np.outer(g, g) / np.outer(g, g).sum())  # fspecial('gaussian', 7, 7/6)


# Outputs of the official NIQE release (computequality.m) on these PIRM-style inputs, as published
# with the reference data of github.com/mxzhuang/parallel-perceptual-index (Octave + MATLAB shims).
@pytest.mark.parametrize(
    "name, expected", [("coffee", 4.0796603536373235), ("chelsea", 2.6893130155949425)]
)
def test_niqe_equals_the_official_code(name, expected):
    assert niqe_of_y(pirm_y(getattr(skdata, name)())) == pytest.approx(expected, abs=1e-9)


@pytest.mark.shared
def test_niqe_of_set14_baboon_matches_matlab():
    path = BENCHMARK / "Set14" / "HR" / "baboon.png"
    if not path.is_file():
        pytest.skip(f"{path} is absent (needs ../shared/datasets)")
    assert calculate_niqe(read_rgb(path)) == pytest.approx(5.7296, abs=0.02)


def test_calculate_niqe_uses_the_evaluation_y_and_the_border():
    img = np.ascontiguousarray(skdata.astronaut()[:200, :230])
    from spsr.metrics.conventions import y_levels

    assert calculate_niqe(img, crop_border=4) == niqe_of_y(y_levels(img)[4:-4, 4:-4])
    assert calculate_niqe(img[:, :, 0]) == niqe_of_y(y_levels(img[:, :, 0]))


def test_niqe_needs_one_whole_block():
    with pytest.raises(MetricInputError, match="at least 96x96"):
        niqe_of_y(np.zeros((95, 300)))


def _aggd_by_loop(x: np.ndarray) -> tuple[float, float, float]:
    shapes = np.arange(0.2, 10.0005, 0.001)
    r_gam = gamma(2 / shapes) ** 2 / (gamma(1 / shapes) * gamma(3 / shapes))
    left = np.sqrt(np.mean(x[x < 0] ** 2))
    right = np.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = shapes[np.argmin((r_gam - r_norm) ** 2)]
    f = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * f, right * f


def test_vectorised_aggd_fit_equals_a_per_row_fit():
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.laplace(0.1, 1.0, (3, 500)), rng.normal(-0.2, 2.0, (2, 500))])
    alpha, bl, br = fit_aggd(rows)
    for i, row in enumerate(rows):
        a, left, right = _aggd_by_loop(row)
        assert alpha[i] == pytest.approx(a, abs=1e-12)
        assert bl[i] == pytest.approx(left, rel=1e-12) and br[i] == pytest.approx(right, rel=1e-12)
    # A row with no negative sample has no left spread: NaN, as in MATLAB.
    alpha, bl, _ = fit_aggd(np.abs(rows[:1]))
    assert np.isnan(bl[0])
