"""Paired augmentation of LR/HR training patches: aligned random crops, flips and rot90.

Every function takes an LR array ``(h, w, C)`` and its HR array ``(h*s, w*s, C)`` and applies the
same geometric change to both, so LR pixel ``(y, x)`` keeps covering HR block
``[s*y:s*y+s, s*x:s*x+s]``. Arrays are numpy ``HWC``; randomness comes from a ``torch.Generator``
(or torch's global generator), which the DataLoader seeds per worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Transform:
    """One of the 8 symmetries of the square: optional flips, then ``rot90`` quarter turns.

    Attributes:
        hflip: mirror left-right.
        vflip: mirror top-bottom.
        rot90: number of counter-clockwise quarter turns (0 or 1).
    """

    hflip: bool = False
    vflip: bool = False
    rot90: int = 0


ALL_TRANSFORMS = tuple(
    Transform(h, v, r) for h in (False, True) for v in (False, True) for r in (0, 1)
)


def apply_transform(img: np.ndarray, t: Transform) -> np.ndarray:
    """Apply a ``Transform`` to an ``(H, W[, C])`` array (a view; call ``np.ascontiguousarray``)."""
    if t.hflip:
        img = img[:, ::-1]
    if t.vflip:
        img = img[::-1, :]
    if t.rot90:
        img = np.rot90(img, t.rot90, axes=(0, 1))
    return img


def paired_transform(lr: np.ndarray, hr: np.ndarray, t: Transform) -> tuple[np.ndarray, np.ndarray]:
    """Apply the same ``Transform`` to LR and HR; returns contiguous arrays."""
    return (
        np.ascontiguousarray(apply_transform(lr, t)),
        np.ascontiguousarray(apply_transform(hr, t)),
    )


def random_transform(
    generator: torch.Generator | None = None, flips: bool = True, rot90: bool = True
) -> Transform:
    """Draw one of the 8 square symmetries uniformly (or fewer when flips/rot90 are off)."""
    bits = int(torch.randint(0, 8, (1,), generator=generator).item())
    return Transform(
        hflip=flips and bool(bits & 1),
        vflip=flips and bool(bits & 2),
        rot90=int(bool(bits & 4)) if rot90 else 0,
    )


def crop_offsets(
    lr_hw: tuple[int, int], size: int, generator: torch.Generator | None = None
) -> tuple[int, int]:
    """A uniformly random top-left ``(y, x)`` of a ``size``×``size`` window inside ``lr_hw``."""
    h, w = lr_hw
    if size > h or size > w:
        raise ValueError(f"crop {size} is larger than the LR patch {h}x{w}")
    y = int(torch.randint(0, h - size + 1, (1,), generator=generator).item())
    x = int(torch.randint(0, w - size + 1, (1,), generator=generator).item())
    return y, x


def paired_crop(
    lr: np.ndarray, hr: np.ndarray, top: int, left: int, size: int, scale: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the LR window ``[top:top+size, left:left+size]`` and the HR window it covers.

    Args:
        lr: ``(h, w, C)`` LR array.
        hr: ``(h*scale, w*scale, C)`` HR array.
        top, left: LR coordinates of the window.
        size: LR window size; the HR window is ``size*scale``.
        scale: the scale factor between the two.

    Returns:
        ``(lr_crop, hr_crop)`` views.
    """
    if hr.shape[0] != lr.shape[0] * scale or hr.shape[1] != lr.shape[1] * scale:
        raise ValueError(f"HR {hr.shape[:2]} is not LR {lr.shape[:2]} times {scale}")
    hs = size * scale
    return (
        lr[top : top + size, left : left + size],
        hr[top * scale : top * scale + hs, left * scale : left * scale + hs],
    )


def random_paired_crop(
    lr: np.ndarray, hr: np.ndarray, size: int, scale: int, generator: torch.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A random aligned crop: LR ``size``×``size`` and the HR ``size*scale`` square it covers."""
    top, left = crop_offsets((lr.shape[0], lr.shape[1]), size, generator)
    return paired_crop(lr, hr, top, left, size, scale)


def random_paired_augment(
    lr: np.ndarray,
    hr: np.ndarray,
    scale: int,
    crop: int | None = None,
    flips: bool = True,
    rot90: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The training augmentation: an aligned random crop, then a random flip/rot90 of both.

    Args:
        lr: ``(h, w, C)`` LR patch.
        hr: ``(h*scale, w*scale, C)`` HR patch.
        scale: the scale factor.
        crop: LR crop size (None: keep the whole patch).
        flips: allow horizontal/vertical flips.
        rot90: allow a quarter turn.
        generator: torch RNG (None: torch's global one).

    Returns:
        Contiguous ``(lr, hr)`` arrays.
    """
    if crop is not None and (crop != lr.shape[0] or crop != lr.shape[1]):
        lr, hr = random_paired_crop(lr, hr, crop, scale, generator)
    if flips or rot90:
        return paired_transform(lr, hr, random_transform(generator, flips, rot90))
    return np.ascontiguousarray(lr), np.ascontiguousarray(hr)
