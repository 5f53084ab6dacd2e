"""Torch datasets over a patch store: augmented training pairs and whole validation images.

The HDF5 file is opened lazily, once per process, on the first item read: an ``h5py`` handle must
not cross a ``fork``, so the dataset can be built in the main process and handed to DataLoader
workers (or pickled to spawned ones). Each item is read with one per-index chunk read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from spsr.data.augment import random_paired_augment
from spsr.data.image_io import to_tensor
from spsr.data.store import PatchStore
from spsr.errors import ConfigError


class _LazyStore:
    """A ``PatchStore`` opened on first use in each process; validated once when created."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with PatchStore(self.path) as store:
            self.scale = store.scale
            self.lr_patch = store.lr_patch
            self.length = len(store)
            self.num_val = store.num_val
        self._store: PatchStore | None = None
        self._pid = -1

    def get(self) -> PatchStore:
        if self._store is None or self._pid != os.getpid():
            self._store = PatchStore(self.path)
            self._pid = os.getpid()
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"], state["_pid"] = None, -1
        return state


#: The papers' LR training crop (32×32 LR, 128×128 HR at ×4; CVPR 2020 §4.1, TPAMI 2021 §5.1).
PAPERS_LR_CROP = 32


def training_lr_crop(path: str | os.PathLike[str], lr_patch: int = 0) -> int | None:
    """The LR crop a training run takes from the store at ``path`` (``data.lr_patch``).

    Args:
        path: the patch store.
        lr_patch: the requested crop side; 0 (the default) chooses: the papers' 32 at a random
            position inside each stored patch when the store's LR patches are larger (the 480×480
            HR sub-images of ``prepare-data``'s defaults: 120 LR at ×4), else the whole stored patch.

    Returns:
        What :class:`PatchDataset` takes as ``lr_crop`` (None: the whole patch).
    """
    if lr_patch > 0:
        return lr_patch
    with PatchStore(Path(path)) as store:
        stored = store.lr_patch
    return PAPERS_LR_CROP if stored > PAPERS_LR_CROP else None


class PatchDataset(Dataset[dict[str, torch.Tensor]]):
    """Training pairs from a patch store, randomly cropped, flipped and rotated.

    Works with any sampler, including ``DistributedSampler``, and with DataLoader workers.

    Args:
        path: the ``.h5`` store made by ``spsr prepare-data``.
        lr_crop: LR crop size (≤ the stored LR patch); the HR crop (``lr_crop * scale``) is aligned.
            None: the whole stored patch.
        augment: random flips and rot90 (identical for LR and HR); off for deterministic reads.

    Items are ``{"lr": (3, h, w), "hr": (3, h*s, w*s)}`` float32 tensors in [0, 1].
    """

    def __init__(
        self, path: str | os.PathLike[str], lr_crop: int | None = None, augment: bool = True
    ) -> None:
        self._store = _LazyStore(path)
        if lr_crop is not None and not 1 <= lr_crop <= self._store.lr_patch:
            raise ConfigError(
                f"LR crop {lr_crop} does not fit the stored LR patch {self._store.lr_patch} "
                f"of {path} "
                f"(HR patch {self._store.lr_patch * self._store.scale})"
            )
        self.lr_crop = lr_crop
        self.augment = augment

    @property
    def scale(self) -> int:
        return self._store.scale

    @property
    def path(self) -> Path:
        return self._store.path

    def __len__(self) -> int:
        return self._store.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        lr, hr = self._store.get().read_patch(int(index))
        lr, hr = random_paired_augment(
            lr, hr, self.scale, crop=self.lr_crop, flips=self.augment, rot90=self.augment
        )
        return {"lr": to_tensor(lr), "hr": to_tensor(hr)}


class ValImageDataset(Dataset[dict[str, Any]]):
    """The whole held-out images of a store's ``val`` group (use batch size 1: sizes differ).

    Items are ``{"lr": (3, h, w), "hr": (3, h*s, w*s), "name": str}``, float32 in [0, 1].
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._store = _LazyStore(path)

    def __len__(self) -> int:
        return self._store.num_val

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        lr, hr, name = self._store.get().read_val(int(index))
        return {"lr": to_tensor(lr), "hr": to_tensor(hr), "name": name}


def iter_val_pairs(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the ``val`` group's whole images one by one, as ``ValImageDataset`` items."""
    data = ValImageDataset(path)
    for i in range(len(data)):
        yield data[i]
