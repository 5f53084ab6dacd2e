"""Geometry of the NSE pretext tasks: receptive fields, neighbours and negatives (TPAMI 2021 §4.2).

Feature (i, j) of the NSE sees pixels [4i-15, 4i+15] × [4j-15, 4j+15]. Two such windows are
disjoint exactly when the positions are at least ``separation = ceil(31/4) = 8`` apart along one
axis (Chebyshev distance ≥ 8), which is the neighbour offset used by every sampling strategy.
Targets, inputs and jigsaw tiles are taken where the window lies wholly inside the image (so no
position can be recognised by the zero padding); negatives come from the whole map (a 420×420
crop gives ≈ 10 500 negatives, a 200×200 crop ≈ 2 000, the paper's counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, cast

import torch

from spsr.errors import ConfigError
from spsr.nse import SAMPLINGS
from spsr.nse.extractor import NSE_RECEPTIVE_FIELD, NSE_STRIDE

Sampling = Literal["horizontal", "vertical", "cross"]


def separation(receptive_field: int = NSE_RECEPTIVE_FIELD, stride: int = NSE_STRIDE) -> int:
    """Smallest distance, in feature positions, at which two receptive fields do not overlap."""
    return math.ceil(receptive_field / stride)


def receptive_field_box(
    position: tuple[int, int], receptive_field: int = NSE_RECEPTIVE_FIELD, stride: int = NSE_STRIDE
) -> tuple[int, int, int, int]:
    """Pixel window (top, left, bottom, right), inclusive, that feature ``position`` sees."""
    half = receptive_field // 2
    i, j = position
    return (stride * i - half, stride * j - half, stride * i + half, stride * j + half)


def receptive_fields_overlap(
    a: tuple[int, int],
    b: tuple[int, int],
    receptive_field: int = NSE_RECEPTIVE_FIELD,
    stride: int = NSE_STRIDE,
) -> bool:
    """Whether the pixel windows of feature positions ``a`` and ``b`` share a pixel."""
    at, al, ab, ar = receptive_field_box(a, receptive_field, stride)
    bt, bl, bb, br = receptive_field_box(b, receptive_field, stride)
    return at <= bb and bt <= ab and al <= br and bl <= ar


def sampling_offsets(sampling: str, distance: int) -> tuple[tuple[int, int], ...]:
    """Offsets (di, dj) of the input positions from the target for a sampling strategy.

    Args:
        sampling: 'horizontal', 'vertical' or 'cross' (TPAMI 2021 Fig. 13).
        distance: offset in feature positions, normally :func:`separation`.

    Returns:
        M offsets: 2 for horizontal / vertical, 4 for cross.
    """
    if sampling == "horizontal":
        return ((0, -distance), (0, distance))
    if sampling == "vertical":
        return ((-distance, 0), (distance, 0))
    if sampling == "cross":
        return ((-distance, 0), (0, -distance), (0, distance), (distance, 0))
    raise ConfigError(f"unknown sampling {sampling!r}: choose one of {', '.join(SAMPLINGS)}")


def inside_range(
    image_size: int, receptive_field: int = NSE_RECEPTIVE_FIELD, stride: int = NSE_STRIDE
) -> tuple[int, int]:
    """First and last feature index whose window lies wholly inside an image side of this size."""
    half = receptive_field // 2
    return math.ceil(half / stride), (image_size - 1 - half) // stride


def negative_mask(
    height: int,
    width: int,
    occupied: torch.Tensor,
    distance: int,
) -> torch.Tensor:
    """Positions of a feature map that may serve as negatives.

    Args:
        height: feature map rows.
        width: feature map columns.
        occupied: ... × P × 2 (row, column) positions of the target and its inputs.
        distance: :func:`separation`; a position is a negative when it is at least this far
            (Chebyshev distance) from every occupied position.

    Returns:
        Boolean ... × (height·width) mask over the row-major flattened map.
    """
    # A position is excluded when it is near some occupied position along both axes: the count of
    # such positions is a (rows × P) @ (P × cols) product of the per-axis nearness indicators.
    lead = occupied.shape[:-2]
    points = occupied.reshape(-1, occupied.shape[-2], 2)
    rows = torch.arange(height, device=occupied.device)
    cols = torch.arange(width, device=occupied.device)
    near_row = ((rows[None, :, None] - points[:, None, :, 0]).abs() < distance).float()
    near_col = ((cols[None, None, :] - points[:, :, 1:2]).abs() < distance).float()
    excluded = torch.bmm(near_row, near_col) > 0  # B × H × W
    return ~excluded.reshape(*lead, height * width)


def negative_positions(
    height: int,
    width: int,
    target: tuple[int, int],
    inputs: Sequence[tuple[int, int]],
    receptive_field: int = NSE_RECEPTIVE_FIELD,
    stride: int = NSE_STRIDE,
) -> list[tuple[int, int]]:
    """Every negative position of one anchor, as (row, column) pairs.

    Raises:
        ConfigError: when the inputs overlap the target or each other.
    """
    occupied = cast(list[tuple[int, int]], [tuple(target), *map(tuple, inputs)])
    for a in range(len(occupied)):
        for b in range(a + 1, len(occupied)):
            if receptive_fields_overlap(occupied[a], occupied[b], receptive_field, stride):
                raise ConfigError(f"positions {occupied[a]} and {occupied[b]} overlap")
    mask = negative_mask(
        height, width, torch.tensor(occupied), separation(receptive_field, stride)
    )
    flat = mask.nonzero().flatten().tolist()
    return [(k // width, k % width) for k in flat]


def sample_positions(
    count: tuple[int, ...],
    low: tuple[int, int],
    high: tuple[int, int],
    generator: torch.Generator | None,
) -> torch.Tensor:
    """count × 2 positions uniform in [low, high] (inclusive) per axis."""
    rows = torch.randint(low[0], high[0] + 1, count, generator=generator)
    cols = torch.randint(low[1], high[1] + 1, count, generator=generator)
    return torch.stack([rows, cols], dim=-1)


def anchor_bounds(
    image_hw: Sequence[int], offsets: Sequence[tuple[int, int]], what: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Bounds for an anchor so that anchor + every offset has its window inside the image.

    ``image_hw`` is ``(H, W)``, e.g. ``images.shape[-2:]``.
    """
    (lo_r, hi_r), (lo_c, hi_c) = inside_range(image_hw[0]), inside_range(image_hw[1])
    low = (lo_r - min(o[0] for o in offsets), lo_c - min(o[1] for o in offsets))
    high = (hi_r - max(o[0] for o in offsets), hi_c - max(o[1] for o in offsets))
    if low[0] > high[0] or low[1] > high[1]:
        raise ConfigError(
            f"crops of {image_hw[0]}×{image_hw[1]} are too small for {what}: use larger crops"
        )
    return low, high


def check_crop(crop: int, task: str, sampling: str = "horizontal") -> None:
    """Raise :class:`ConfigError` when crop×crop images cannot hold the task's positions."""
    if task == "jigsaw":
        step = separation()
        anchor_bounds((crop, crop), ((0, 0), (step, step)), "a 2×2 jigsaw")
    else:
        offsets = sampling_offsets(sampling, separation())
        anchor_bounds((crop, crop), offsets, f"{sampling} sampling")


def gather_features(flat: torch.Tensor, positions: torch.Tensor, width: int) -> torch.Tensor:
    """flat N×HW×C, positions N×...×2 → N×...×C."""
    n = flat.shape[0]
    index = (positions[..., 0] * width + positions[..., 1]).reshape(n, -1)
    picked = torch.gather(flat, 1, index.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))
    return picked.reshape(*positions.shape[:-1], flat.shape[-1])
