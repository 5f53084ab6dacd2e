"""Image crops for the NSE pretext tasks: random crops for fitting, dense crops for evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from spsr.errors import ConfigError


def as_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 images (how evaluation sets are kept in memory) → float in [0, 1]."""
    return image.float() / 255 if image.dtype == torch.uint8 else image


def random_crops(
    images: Sequence[torch.Tensor], size: int, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``count`` random size×size crops from randomly chosen images.

    Args:
        images: 3×H×W tensors, float in [0, 1] or uint8; those smaller than the crop are skipped.
        size: crop side.
        count: crops to return.
        generator: CPU generator.

    Returns:
        count×3×size×size, float in [0, 1].
    """
    usable = [im for im in images if im.shape[-2] >= size and im.shape[-1] >= size]
    if not usable:
        raise ConfigError(f"no image is at least {size}×{size} pixels")
    picks = torch.randint(0, len(usable), (count,), generator=generator).tolist()
    crops = []
    for p in picks:
        im = usable[p]
        top = int(torch.randint(0, im.shape[-2] - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, im.shape[-1] - size + 1, (1,), generator=generator))
        crops.append(as_float(im[..., top : top + size, left : left + size]))
    return torch.stack(crops)


def dense_crops(
    images: Sequence[torch.Tensor], size: int, stride: int | None = None
) -> torch.Tensor:
    """Every size×size crop on a regular grid of each image (TPAMI 2021 §5.2: "densely sample").

    Args:
        images: 3×H×W tensors, float in [0, 1] or uint8.
        size: crop side.
        stride: grid step (default ``size``: crops side by side, not overlapping).

    Returns:
        K×3×size×size float (K may be 0 when every image is smaller than the crop).
    """
    step = stride or size
    crops = [
        as_float(im[..., top : top + size, left : left + size])
        for im in images
        for top in range(0, im.shape[-2] - size + 1, step)
        for left in range(0, im.shape[-1] - size + 1, step)
    ]
    if not crops:
        return torch.empty(0, 3, size, size)
    return torch.stack(crops)


CropSource = Sequence[torch.Tensor] | Dataset


def draw_crops(
    source: CropSource, size: int, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A batch of random crops from images in memory or from a dataset of ``{"image"}`` crops.

    Args:
        source: 3×H×W tensors (see :func:`random_crops`), or a dataset such as
            :class:`spsr.nse.data.NSECropDataset` whose crops are size×size.
        size: crop side.
        count: crops to return.
        generator: CPU generator (it also seeds the dataset's own random cropping).
    """
    if isinstance(source, Dataset):
        length = len(source)  # type: ignore[arg-type]
        picks = torch.randint(0, length, (count,), generator=generator).tolist()
        seed = int(torch.randint(0, 1 << 62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            crops = torch.stack([source[i]["image"] for i in picks])
        if crops.shape[-1] != size or crops.shape[-2] != size:
            raise ConfigError(f"the dataset gives {crops.shape[-1]}-pixel crops, not {size}")
        return crops
    return random_crops(source, size, count, generator)
