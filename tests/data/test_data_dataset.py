"""The training Dataset over a patch store: aligned random crops, lazy opening, DataLoader, DDP."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata
from torch.utils.data import DataLoader, DistributedSampler

from spsr.data.augment import ALL_TRANSFORMS, apply_transform
from spsr.data.dataset import (
    PAPERS_LR_CROP,
    PatchDataset,
    ValImageDataset,
    iter_val_pairs,
    training_lr_crop,
)
from spsr.data.image_io import write_image
from spsr.data.store import PatchStore, StoreOptions, write_store
from spsr.errors import ConfigError
from spsr.ops import imresize_np

SCALE = 2


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    coffee = skdata.coffee()
    paths = []
    for i in range(4):
        path = root / f"c{i}.png"
        write_image(path, np.ascontiguousarray(coffee[60 * i : 60 * i + 60, 90 * i : 90 * i + 66]))
        paths.append(path)
    out = root / "s.h5"
    write_store(paths, out, StoreOptions.make(scale=SCALE, patch=24, step=12, threshold=0, val=1))
    return out


def _u8(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_items_without_augmentation_are_the_stored_patches(store: Path) -> None:
    ds = PatchDataset(store, augment=False)
    with PatchStore(store) as s:
        assert len(ds) == len(s) > 10
        for i in (0, len(ds) - 1):
            item = ds[i]
            assert item["lr"].dtype == torch.float32 and item["lr"].shape == (3, 12, 12)
            assert item["hr"].shape == (3, 24, 24)
            assert float(item["hr"].min()) >= 0 and float(item["hr"].max()) <= 1
            lr, hr = s.read_patch(i)
            np.testing.assert_array_equal(_u8(item["lr"]), lr)
            np.testing.assert_array_equal(_u8(item["hr"]), hr)


def _find_aligned(lr_out: np.ndarray, hr_out: np.ndarray, lr: np.ndarray, hr: np.ndarray) -> bool:
    """Is there a transform t and LR offset (y, x) with lr_out = t(lr)[y.., x..] and HR aligned?"""
    c = lr_out.shape[0]
    for t in ALL_TRANSFORMS:
        lr_t, hr_t = apply_transform(lr, t), apply_transform(hr, t)
        for y in range(lr_t.shape[0] - c + 1):
            for x in range(lr_t.shape[1] - c + 1):
                hr_window = hr_t[SCALE * y : SCALE * (y + c), SCALE * x : SCALE * (x + c)]
                if np.array_equal(lr_t[y : y + c, x : x + c], lr_out) and np.array_equal(
                    hr_window, hr_out
                ):
                    return True
    return False


def test_random_crops_and_flips_keep_hr_aligned(store: Path) -> None:
    torch.manual_seed(0)
    ds = PatchDataset(store, lr_crop=7)
    with PatchStore(store) as s:
        for i in range(0, len(ds), max(1, len(ds) // 6)):
            item = ds[i]
            assert item["lr"].shape == (3, 7, 7) and item["hr"].shape == (3, 14, 14)
            lr, hr = s.read_patch(i)
            assert _find_aligned(_u8(item["lr"]), _u8(item["hr"]), lr, hr)
            # A one-pixel HR shift breaks the check, so it can fail.
            assert not _find_aligned(_u8(item["lr"]), np.roll(_u8(item["hr"]), 1, axis=1), lr, hr)


def test_crop_must_fit_the_stored_patch(store: Path) -> None:
    with pytest.raises(ConfigError, match="LR crop 13 does not fit the stored LR patch 12"):
        PatchDataset(store, lr_crop=13)


def test_opens_lazily_and_pickles_without_a_handle(store: Path) -> None:
    ds = PatchDataset(store, lr_crop=8)
    assert ds._store._store is None  # nothing open in the main process before workers fork
    ds[0]
    assert ds._store._store is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._store._store is None
    assert clone[1]["lr"].shape == (3, 8, 8)


def test_dataloader_workers_with_distributed_sampler(store: Path) -> None:
    ds = PatchDataset(store, lr_crop=8)
    seen: list[int] = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        seen += list(sampler)
        if rank == 0:
            loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2, drop_last=True)
            batches = list(loader)
            assert len(batches) == len(sampler) // 4
            assert batches[0]["lr"].shape == (4, 3, 8, 8) and batches[0]["hr"].shape == (
                4,
                3,
                16,
                16,
            )
    assert set(seen) == set(range(len(ds)))  # the two ranks together cover the store


def test_val_images_are_whole_bicubic_pairs(store: Path) -> None:
    val = ValImageDataset(store)
    assert len(val) == 1
    item = val[0]
    assert item["name"] == "c2"  # the 4 images hold out the evenly spaced index 2
    hr = _u8(item["hr"])
    assert hr.shape == (60, 66, 3)
    np.testing.assert_array_equal(_u8(item["lr"]), imresize_np(hr, 1 / SCALE))
    assert [p["name"] for p in iter_val_pairs(store)] == ["c2"]
    with pytest.raises(IndexError):
        val[1]


def test_training_crops_32_lr_at_random_positions_inside_larger_stored_patches(
    tmp_path: Path, store: Path
) -> None:
    path = tmp_path / "big.png"
    write_image(path, np.ascontiguousarray(skdata.coffee()[:100, :100]))
    big = tmp_path / "big.h5"
    write_store([path], big, StoreOptions.make(scale=SCALE, patch=80, step=20, threshold=0))
    assert training_lr_crop(big) == PAPERS_LR_CROP == 32  # stored LR patches are 40×40
    assert training_lr_crop(store) is None  # 12×12 stored LR patches are used whole
    assert training_lr_crop(store, 7) == 7  # an explicit crop is kept

    ds = PatchDataset(big, lr_crop=training_lr_crop(big), augment=False)
    with PatchStore(big) as s:
        lr, _ = s.read_patch(0)
    offsets = set()
    torch.manual_seed(0)
    for _ in range(12):
        crop = _u8(ds[0]["lr"])
        found = [(y, x) for y in range(9) for x in range(9)
                 if np.array_equal(lr[y:y + 32, x:x + 32], crop)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 6  # anywhere inside the sub-image, not on a fixed grid
