"""PSNR / SSIM in the papers' conventions: known values, equivalences, ssim.m's downsampling worked
out by hand, and the published bicubic numbers under both protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import structural_similarity

from spsr.data.image_io import read_rgb
from spsr.metrics import MetricInputError, calculate_psnr, calculate_ssim, psnr_batch, ssim_batch
from spsr.metrics.conventions import y_levels
from spsr.metrics.psnr_ssim import (
    mean_filter_same,
    ssim_downsample_factor,
    ssim_map,
    wang_downsample,
)
from spsr.metrics.registry import EvalSettings, MetricSuite
from spsr.ops import bicubic_degrade, imresize_np, rgb_to_y_np


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


def test_ssim_downsample_factor_rounds_like_matlab():
    assert ssim_downsample_factor(383, 1000) == 1  # 1.496 -> 1
    assert ssim_downsample_factor(384, 400) == 2  # 1.5 -> 2 (MATLAB rounds halves away)
    assert ssim_downsample_factor(1000, 640) == 3  # 2.5 -> 3, where np.round gives 2
    assert ssim_downsample_factor(100, 100) == 1


def test_mean_filter_f2_by_hand():
    # f = 2: imfilter's origin is element floor((2 + 1) / 2) = 1 of the kernel, so output (i, j)
    # averages input rows i, i+1 and columns j, j+1; past the last row/column the edge pixel is
    # repeated ('symmetric' mirrors with the edge).
    x = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0], [64.0, 128.0, 256.0]])
    expected = np.array(
        [
            [(1 + 2 + 8 + 16) / 4, (2 + 4 + 16 + 32) / 4, (4 + 4 + 32 + 32) / 4],
            [(8 + 16 + 64 + 128) / 4, (16 + 32 + 128 + 256) / 4, (32 + 32 + 256 + 256) / 4],
            [(64 + 128 + 64 + 128) / 4, (128 + 256 + 128 + 256) / 4, (256 * 4) / 4],
        ]
    )
    assert np.allclose(mean_filter_same(x, 2), expected, rtol=0, atol=1e-12)


def test_mean_filter_f3_by_hand():
    # f = 3: centred; before the first row/column the edge pixel is repeated.
    x = np.arange(16, dtype=np.float64).reshape(4, 4) ** 2
    padded = np.empty((6, 6))
    padded[1:5, 1:5] = x
    padded[0, 1:5], padded[5, 1:5] = x[0], x[3]  # mirror including the edge: row -1 = row 0
    padded[:, 0], padded[:, 5] = padded[:, 1], padded[:, 4]
    expected = np.array(
        [[padded[i : i + 3, j : j + 3].mean() for j in range(4)] for i in range(4)]
    )
    assert expected[0, 0] == pytest.approx((4 * 0 + 2 * 1 + 2 * 16 + 25) / 9)  # corner by hand
    assert np.allclose(mean_filter_same(x, 3), expected, rtol=0, atol=1e-9)


def test_wang_downsample_keeps_every_fth_pixel_from_the_first():
    # 512x520 -> f = 2: the filtered image at rows/cols 0, 2, 4, ... (MATLAB's 1:f:end).
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (2, 512, 520))
    out = wang_downsample(x)
    assert out.shape == (2, 256, 260)
    # out[.., 1, 1] is the mean of input rows 2..3 and columns 2..3 (origin at the window's start).
    assert out[0, 1, 1] == pytest.approx(x[0, 2:4, 2:4].mean(), abs=1e-12)
    assert out[1, 255, 259] == pytest.approx(x[1, 510:512, 518:520].mean(), abs=1e-12)
    small = rng.uniform(0, 255, (300, 900))
    assert wang_downsample(small) is small  # f = 1: untouched


def test_ssim_with_downsampling_is_ssim_of_the_downsampled_images():
    hr = skdata.astronaut()
    sr = _noisy(hr, amount=30)
    a = y_levels(sr)[4:-4, 4:-4]
    b = y_levels(hr)[4:-4, 4:-4]  # 504x504 -> f = 2
    by_hand = ssim_map(mean_filter_same(a, 2)[::2, ::2], mean_filter_same(b, 2)[::2, ::2]).mean()
    assert calculate_ssim(sr, hr, 4) == pytest.approx(by_hand, abs=1e-12)
    assert calculate_ssim(sr, hr, 4, downsample=False) == pytest.approx(ssim_map(a, b).mean(), abs=1e-12)
    assert calculate_ssim(sr, hr, 4) > calculate_ssim(sr, hr, 4, downsample=False)  # noise averaged
    t = torch.from_numpy(np.stack([sr, hr]).transpose(0, 3, 1, 2).copy()).float() / 255
    assert ssim_batch(t[:1], t[1:], 4)[0].item() == pytest.approx(by_hand, abs=1e-12)


def _bicubic_means(folder, protocol: str) -> dict[str, float]:
    suite = MetricSuite(EvalSettings.for_protocol(("psnr", "ssim"), 4, protocol))
    scores = []
    for path in sorted(folder.glob("*.png")):
        hr, lr = bicubic_degrade(read_rgb(path), 4)
        scores.append(suite.score(imresize_np(lr, 4), hr))
    return {m: float(np.mean([s[m] for s in scores])) for m in ("psnr", "ssim")}


@pytest.mark.shared
def test_bicubic_x4_set5_reproduces_the_spsr_papers_table(set5_hr):
    means = _bicubic_means(set5_hr, "spsr")
    assert means["psnr"] == pytest.approx(28.42, abs=0.01)  # TPAMI 2021 Table 1: 28.42 / 0.8245
    assert means["ssim"] == pytest.approx(0.8245, abs=0.001)


@pytest.mark.shared
def test_bicubic_x4_set14_reproduces_the_spsr_papers_table(set14_hr):
    means = _bicubic_means(set14_hr, "spsr")
    assert means["psnr"] == pytest.approx(26.09, abs=0.03)
    assert means["ssim"] == pytest.approx(0.7850, abs=0.001)  # TPAMI 2021 Table 1


@pytest.mark.shared
def test_bicubic_x4_set5_under_basicsr_is_the_full_resolution_ssim(set5_hr):
    means = _bicubic_means(set5_hr, "basicsr")
    assert means["psnr"] == pytest.approx(28.42, abs=0.01)
    assert means["ssim"] == pytest.approx(0.8101, abs=0.001)  # EDSR/RCAN-style tables print 0.8104
