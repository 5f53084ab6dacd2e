"""PSNR / SSIM in the papers' conventions: known values, equivalences, and the papers' bicubic numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import structural_similarity

from spsr.data.image_io import read_rgb
from spsr.metrics import MetricInputError, calculate_psnr, calculate_ssim, psnr_batch, ssim_batch
from spsr.metrics.conventions import y_levels
from spsr.ops import bicubic_degrade, imresize_np, rgb_to_y_np

BENCHMARK = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "benchmark"


def _crop(size: int = 64) -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[100 : 100 + size, 150 : 150 + size])


def _noisy(img: np.ndarray, seed: int = 0, amount: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(int) + rng.integers(-amount, amount + 1, img.shape), 0, 255).astype(np.uint8)


def test_psnr_of_identical_images_is_infinite_and_ssim_is_one():
    img = _crop()
    assert calculate_psnr(img, img, crop_border=4) == math.inf
    assert calculate_ssim(img, img, crop_border=4) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_gray_images_uses_the_rounded_studio_swing_y():
    # Gray 100 → Y round(16 + 219 * 100 / 255) = 102; gray 110 → round(110.47) = 110: every pixel off by 8.
    a = np.full((20, 20), 100, np.uint8)
    b = np.full((20, 20), 110, np.uint8)
    assert calculate_psnr(a, b, crop_border=2) == pytest.approx(20 * math.log10(255 / 8), abs=1e-12)
    # RGB mode compares the raw levels: off by 10 everywhere.
    assert calculate_psnr(a, b, crop_border=2, y_channel=False) == pytest.approx(
        20 * math.log10(255 / 10), abs=1e-12
    )


def test_psnr_matches_a_hand_computation_on_rounded_y():
    hr, sr = _crop(), _noisy(_crop())
    ya = rgb_to_y_np(sr).astype(float)[4:-4, 4:-4]
    yb = rgb_to_y_np(hr).astype(float)[4:-4, 4:-4]
    expected = 10 * math.log10(255**2 / np.mean((ya - yb) ** 2))
    assert calculate_psnr(sr, hr, crop_border=4) == pytest.approx(expected, abs=1e-10)


def test_only_border_differences_vanish_after_shaving():
    hr = _crop()
    sr = hr.copy()
    sr[:3] = 0
    sr[:, -3:] = 255
    assert calculate_psnr(sr, hr, crop_border=3) == math.inf
    assert calculate_psnr(sr, hr, crop_border=2) < 40


def test_ssim_equals_scikit_image_gaussian_ssim_on_y():
    hr, sr = _crop(80), _noisy(_crop(80), seed=3)
    ya, yb = y_levels(sr)[4:-4, 4:-4], y_levels(hr)[4:-4, 4:-4]
    expected = structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert calculate_ssim(sr, hr, crop_border=4) == pytest.approx(expected, abs=1e-10)


def test_rgb_ssim_is_the_mean_over_channels():
    hr, sr = _crop(), _noisy(_crop(), seed=5)
    per_channel = [
        calculate_ssim(sr[:, :, c], hr[:, :, c], crop_border=0, y_channel=False) for c in range(3)
    ]
    assert calculate_ssim(sr, hr, crop_border=0, y_channel=False) == pytest.approx(
        np.mean(per_channel), abs=1e-12
    )


def test_grayscale_counts_as_r_equals_g_equals_b():
    gray = _crop()[:, :, 1]
    noisy = _noisy(gray, seed=2)
    rgb, rgb_noisy = (np.repeat(g[:, :, None], 3, axis=2) for g in (gray, noisy))
    assert calculate_psnr(noisy, gray, 4) == calculate_psnr(rgb_noisy, rgb, 4)
    assert calculate_ssim(noisy, gray, 4) == calculate_ssim(rgb_noisy, rgb, 4)
    assert calculate_psnr(noisy[:, :, None], gray[:, :, None], 4) == calculate_psnr(noisy, gray, 4)


def test_float_images_are_quantised_like_saved_files():
    hr, sr = _crop(), _noisy(_crop())
    assert calculate_psnr(sr / 255.0, hr / 255.0, 4) == calculate_psnr(sr, hr, 4)
    assert calculate_ssim(sr.astype(np.float32) / 255, hr, 4) == calculate_ssim(sr, hr, 4)


@pytest.mark.parametrize("y_channel", [True, False])
def test_batched_torch_versions_equal_the_single_image_ones(y_channel):
    hrs = [_crop(48), np.ascontiguousarray(skdata.chelsea()[:48, :48])]
    srs = [_noisy(h, seed=i) for i, h in enumerate(hrs)]

    def stack(imgs):
        return torch.stack([torch.from_numpy(i.transpose(2, 0, 1).copy()).float() / 255 for i in imgs])

    psnr = psnr_batch(stack(srs), stack(hrs), crop_border=4, y_channel=y_channel)
    ssim = ssim_batch(stack(srs), stack(hrs), crop_border=4, y_channel=y_channel)
    for i in range(2):
        assert psnr[i].item() == pytest.approx(calculate_psnr(srs[i], hrs[i], 4, y_channel), abs=1e-10)
        assert ssim[i].item() == pytest.approx(calculate_ssim(srs[i], hrs[i], 4, y_channel), abs=1e-12)


def test_bad_inputs_raise_one_clear_error():
    img = _crop()
    with pytest.raises(MetricInputError, match="SR is 64x64 but HR is 32x32"):
        calculate_psnr(img, img[:32, :32], 4)
    with pytest.raises(MetricInputError, match="too small"):
        calculate_ssim(img[:8, :8], img[:8, :8], 4)
    with pytest.raises(MetricInputError, match="at least 11x11"):
        calculate_ssim(img[:18, :18], img[:18, :18], 4)
    with pytest.raises(MetricInputError, match="uint8"):
        calculate_psnr(img.astype(np.int32), img.astype(np.int32), 4)
    with pytest.raises(MetricInputError, match="differ"):
        psnr_batch(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 8), 2)


def _bicubic_scores(name: str) -> tuple[float, float]:
    folder = BENCHMARK / name / "HR"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (needs ../shared/datasets)")
    psnr, ssim = [], []
    for path in sorted(folder.glob("*.png")):
        hr, lr = bicubic_degrade(read_rgb(path), 4)
        sr = imresize_np(lr, 4)
        psnr.append(calculate_psnr(sr, hr, crop_border=4))
        ssim.append(calculate_ssim(sr, hr, crop_border=4))
    return float(np.mean(psnr)), float(np.mean(ssim))


@pytest.mark.shared
def test_bicubic_x4_set5_reproduces_the_papers():
    psnr, ssim = _bicubic_scores("Set5")
    assert psnr == pytest.approx(28.42, abs=0.01)
    assert ssim == pytest.approx(0.8104, abs=0.001)


@pytest.mark.shared
def test_bicubic_x4_set14_reproduces_the_papers():
    psnr, ssim = _bicubic_scores("Set14")
    assert psnr == pytest.approx(26.09, abs=0.03)
    assert ssim == pytest.approx(0.704, abs=0.002)
