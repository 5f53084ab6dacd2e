"""Zoomed crops for the study page: a fixed box, or the most structured window of the HR image."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from spsr.errors import ConfigError
from spsr.ops.color import rgb_to_y_np


@dataclass(frozen=True)
class CropBox:
    """A crop rectangle in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    def fits(self, height: int, width: int) -> bool:
        """Whether the box lies inside an image of ``height`` × ``width``."""
        return (
            self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height
        )

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def parse_crop(text: str) -> CropBox:
    """Parse ``"x,y,w,h"`` (non-negative integers, positive size).

    Args:
        text: the option value.

    Returns:
        the crop box.

    Raises:
        ConfigError: the text is not four integers with a positive width and height.
    """
    match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError(f"crop {text!r}: expected x,y,w,h (four non-negative integers) or 'auto'")
    box = CropBox(*(int(v) for v in match.groups()))
    if box.w == 0 or box.h == 0:
        raise ConfigError(f"crop {text!r}: width and height must be positive")
    return box


def default_crop_size(height: int, width: int) -> int:
    """The automatic crop's side: a quarter of the shorter side, between 32 and 128 pixels.

    Args:
        height: image height.
        width: image width.

    Returns:
        the side length, never larger than the image.
    """
    return min(max(32, min(height, width) // 4), 128, height, width)


def most_structured_window(rgb: np.ndarray, size: int) -> CropBox:
    """The square window with the largest total gradient magnitude of the luma.

    Args:
        rgb: ``(H, W, 3)`` ``uint8`` image (the HR reference).
        size: side of the square window (clipped to the image).

    Returns:
        the window; ties go to the top-left-most.
    """
    height, width = rgb.shape[:2]
    size = max(1, min(size, height, width))
    luma = rgb_to_y_np(rgb).astype(np.float64)
    gx = np.zeros_like(luma)
    gy = np.zeros_like(luma)
    gx[:, 1:-1] = luma[:, 2:] - luma[:, :-2]
    gy[1:-1, :] = luma[2:, :] - luma[:-2, :]
    magnitude = np.sqrt(gx * gx + gy * gy)
    integral = np.zeros((height + 1, width + 1))
    integral[1:, 1:] = magnitude.cumsum(0).cumsum(1)
    sums = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return CropBox(int(x), int(y), size, size)
