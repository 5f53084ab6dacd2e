"""Paired augmentation keeps LR and HR aligned: crops, flips and rot90 act identically on both."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from spsr.data.augment import (
    ALL_TRANSFORMS,
    apply_transform,
    paired_crop,
    paired_transform,
    random_paired_augment,
    random_transform,
)
from spsr.ops import imresize_np


def _block_pair(scale: int, h: int = 9, w: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A random LR image and its nearest-neighbour HR: HR block (y, x) equals LR pixel (y, x)."""
    lr = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return lr, np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


def _is_block_of(lr: np.ndarray, hr: np.ndarray, scale: int) -> bool:
    return hr.shape == (lr.shape[0] * scale, lr.shape[1] * scale, 3) and np.array_equal(
        hr, np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
    )


def test_transforms_are_the_eight_distinct_symmetries() -> None:
    img = np.arange(12).reshape(3, 4)
    results = {
        apply_transform(img, t).tobytes() + bytes(apply_transform(img, t).shape)
        for t in ALL_TRANSFORMS
    }
    assert len(results) == 8
    t = ALL_TRANSFORMS[1]  # rot90 only: counter-clockwise, as np.rot90
    assert t.rot90 == 1 and not t.hflip and not t.vflip
    np.testing.assert_array_equal(
        apply_transform(img, t), np.array([[3, 7, 11], [2, 6, 10], [1, 5, 9], [0, 4, 8]])
    )


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_transform_and_crop_keeps_blocks_aligned(scale: int) -> None:
    lr, hr = _block_pair(scale)
    for t in ALL_TRANSFORMS:
        lr_t, hr_t = paired_transform(lr, hr, t)
        assert _is_block_of(lr_t, hr_t, scale), t
    for top, left, size in [(0, 0, 5), (4, 2, 5), (2, 1, 6)]:
        lr_c, hr_c = paired_crop(lr, hr, top, left, size, scale)
        np.testing.assert_array_equal(lr_c, lr[top : top + size, left : left + size])
        assert _is_block_of(lr_c, hr_c, scale)


def test_random_augment_keeps_blocks_aligned_and_covers_all_transforms() -> None:
    lr, hr = _block_pair(4)
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        lr_a, hr_a = random_paired_augment(lr, hr, 4, crop=5, generator=gen)
        assert lr_a.shape == (5, 5, 3) and lr_a.flags.c_contiguous and hr_a.flags.c_contiguous
        assert _is_block_of(lr_a, hr_a, 4)
        seen.add(lr_a.tobytes())
    assert len(seen) > 50  # crops at different offsets under different transforms
    kinds = {random_transform(gen) for _ in range(200)}
    assert kinds == set(ALL_TRANSFORMS)


def test_bicubic_relation_survives_flips_and_rot90() -> None:
    """LR = bicubic(HR) still holds after augmentation (float bicubic is exactly equivariant)."""
    hr = skdata.astronaut()[100:164, 200:256].astype(np.float64) / 255  # 64 x 56
    lr = imresize_np(hr, 0.25)
    for t in ALL_TRANSFORMS:
        lr_t, hr_t = paired_transform(lr, hr, t)
        np.testing.assert_allclose(imresize_np(hr_t, 0.25), lr_t, atol=1e-12, err_msg=str(t))
    # Misalignment would show: an LR flipped without its HR is not bicubic of that HR.
    assert np.abs(imresize_np(hr, 0.25) - lr[::-1]).max() > 0.1


def test_crop_larger_than_patch_is_rejected() -> None:
    lr, hr = _block_pair(2, 4, 4)
    with pytest.raises(ValueError, match="larger than the LR patch"):
        random_paired_augment(lr, hr, 2, crop=5)
