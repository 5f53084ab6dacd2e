"""Training crops for the NSE pretext tasks: square HR crops from a patch store or image files.

The NSE sees HR images only (no LR). Its tasks want large crops (420×420 for contrastive
prediction, TPAMI 2021 §5.1), larger than the 128-pixel patches of a default ``spsr prepare-data``
store, so the data can be either

* a patch store made with large patches (``spsr prepare-data DIV2K/ -o nse.h5 --patch 480``):
  one item per stored HR patch, a random crop of it; or
* image files (a folder, an image, or a text file listing images, as ``prepare-data`` takes):
  one item per image, a random crop of the decoded image (slower: an image is decoded per item).

Randomness comes from torch's global generator, which the engine's batch stream seeds per sample,
so a resumed run sees the same crops.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from spsr.data.image_io import read_rgb, to_tensor
from spsr.data.store import PatchStore
from spsr.errors import ConfigError, ImageReadError
from spsr.nse import NSE_AUGMENTS

STORE_SUFFIXES = (".h5", ".hdf5")


def _image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the file header, or None when it cannot be read or is over the
    decode pixel limit (``SPSR_MAX_IMAGE_PIXELS``), so such a file is skipped, not trained on."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from spsr.data.image_io import max_image_pixels

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    limit = max_image_pixels()
    return None if limit is not None and w * h > limit else (h, w)


class NSECropDataset(Dataset[dict[str, torch.Tensor]]):
    """Square crops for the pretext tasks, ``{"image": (3, crop, crop)}`` float in [0, 1].

    Args:
        source: a patch store (``.h5``), a folder of images, an image, or a list file.
        crop: crop side in pixels.
        augment: ``flips`` (default): random left-right and up-down flips, the four symmetries
            that keep the horizontal and vertical axes, so horizontal neighbours stay horizontal;
            ``dihedral``: those and 90° rotations (all eight symmetries, which turn horizontal
            neighbours into vertical ones and make the ``horizontal`` and ``vertical``
            contrastive tasks one objective); ``none``.
        crops_per_image: items per image (or stored patch) in an epoch, each a new random crop.

    Raises:
        ConfigError: no usable image, or store patches smaller than the crop.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        crop: int,
        augment: str = "flips",
        crops_per_image: int = 1,
    ) -> None:
        if crops_per_image < 1:
            raise ConfigError("crops per image must be at least 1")
        check_augment(augment)
        self.source = Path(source)
        self.crop = crop
        self.augment = augment
        self.crops_per_image = crops_per_image
        self.skipped: list[Path] = []
        self._store: PatchStore | None = None  # opened lazily, once per process
        self._store_pid = -1
        self._is_store = self.source.suffix.lower() in STORE_SUFFIXES and self.source.is_file()
        self._images: list[Path] = []
        if self._is_store:
            with PatchStore(self.source) as store:
                patch, self.length = store.patch, len(store)
            if patch < crop:
                raise ConfigError(
                    f"{self.source} holds {patch}-pixel patches, smaller than the {crop}-pixel "
                    "crops: make a store with larger patches (spsr prepare-data --patch 480), "
                    "give the image folder, or lower --crop"
                )
        else:
            from spsr.data.sources import expand_sources

            for path in expand_sources([self.source]).images:
                size = _image_size(path)
                if size is not None and min(size) >= crop:
                    self._images.append(path)
                else:
                    self.skipped.append(path)
            if not self._images:
                raise ConfigError(f"no image of at least {crop}×{crop} pixels in {self.source}")
            self.length = len(self._images)

    def __len__(self) -> int:
        return self.length * self.crops_per_image

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_store"], state["_store_pid"] = None, -1  # an h5py handle must not cross processes
        return state

    def _pixels(self, index: int) -> np.ndarray:
        if self._is_store:
            if self._store is None or self._store_pid != os.getpid():
                self._store, self._store_pid = PatchStore(self.source), os.getpid()
            return self._store.read_patch(index)[1]
        try:
            return read_rgb(self._images[index])
        except ImageReadError as exc:
            raise ImageReadError(f"cannot read training image: {exc}") from None

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        pixels = self._pixels(int(index) // self.crops_per_image)
        height, width = pixels.shape[:2]
        top = int(torch.randint(0, height - self.crop + 1, (1,)))
        left = int(torch.randint(0, width - self.crop + 1, (1,)))
        crop = pixels[top : top + self.crop, left : left + self.crop]
        if self.augment != "none":
            flip_lr, flip_ud = torch.randint(0, 2, (2,)).tolist()
            crop = crop[::-1] if flip_ud else crop
            crop = crop[:, ::-1] if flip_lr else crop
            if self.augment == "dihedral":
                crop = np.rot90(crop, int(torch.randint(0, 4, (1,))))
        return {"image": to_tensor(np.ascontiguousarray(crop))}


def check_augment(augment: str) -> None:
    """Raise :class:`ConfigError` unless ``augment`` is one of :data:`spsr.nse.NSE_AUGMENTS`."""
    if augment not in NSE_AUGMENTS:
        raise ConfigError(f"unknown NSE augmentation {augment!r}; choose {', '.join(NSE_AUGMENTS)}")


def load_images(source: str | os.PathLike[str], limit: int = 0) -> list[torch.Tensor]:
    """Whole images of a folder / file / list (or a store's HR patches) as 3×H×W uint8 tensors.

    uint8 keeps evaluation sets and re-fitting images small in memory; crops are converted to
    float by :func:`spsr.nse.sampling.random_crops` and
    :func:`~spsr.nse.sampling.dense_crops`.

    Args:
        source: folder, image, list file, or patch store.
        limit: at most this many images (evenly spaced over the sorted list; 0: all).

    Raises:
        ConfigError: no image found.
    """
    source = Path(source)
    if source.suffix.lower() in STORE_SUFFIXES and source.is_file():
        with PatchStore(source) as store:
            picks = _spread(len(store), limit)
            arrays = [store.read_patch(i)[1] for i in picks]
    else:
        from spsr.data.sources import expand_sources

        paths = expand_sources([source]).images
        arrays = [read_rgb(paths[i]) for i in _spread(len(paths), limit)]
    if not arrays:
        raise ConfigError(f"no image found in {source}")
    return [torch.from_numpy(np.array(a)).permute(2, 0, 1).contiguous() for a in arrays]


def _spread(count: int, limit: int) -> list[int]:
    if limit <= 0 or limit >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / max(limit - 1, 1)) for i in range(limit)})
