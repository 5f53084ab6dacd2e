"""NSE training-crop augmentation (#28 item 1): by default only the flips that keep the horizontal
and vertical axes, so the ``horizontal`` and ``vertical`` contrastive tasks stay different
objectives; the eight symmetries of the square only when ``dihedral`` is asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spsr.data.image_io import write_image
from spsr.errors import ConfigError
from spsr.nse.data import NSECropDataset
from spsr.train.stages.nse import NSEConfig, check_nse_config


def _symmetries(image: np.ndarray) -> dict[str, np.ndarray]:
    flips = {"id": image, "lr": image[:, ::-1], "ud": image[::-1], "rot180": image[::-1, ::-1]}
    transposed = {f"T{k}": np.swapaxes(v, 0, 1) for k, v in flips.items()}
    return {**flips, **transposed}


@pytest.fixture
def distinct(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 6×6 image whose eight symmetric images all differ (crop = the whole image)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", image)
    return tmp_path, image


def _seen(dataset: NSECropDataset, image: np.ndarray, draws: int = 200) -> set[str]:
    names = _symmetries(image)
    seen = set()
    torch.manual_seed(0)
    for _ in range(draws):
        crop = (dataset[0]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        match = [k for k, v in names.items() if np.array_equal(crop, v)]
        assert len(match) == 1
        seen.add(match[0])
    return seen


def test_default_flips_keep_the_axes(distinct: tuple[Path, np.ndarray]) -> None:
    folder, image = distinct
    assert _seen(NSECropDataset(folder, crop=6), image) == {"id", "lr", "ud", "rot180"}


def test_dihedral_adds_the_transposing_rotations(distinct: tuple[Path, np.ndarray]) -> None:
    folder, image = distinct
    assert len(_seen(NSECropDataset(folder, crop=6, augment="dihedral"), image)) == 8


def test_none_leaves_the_crop_alone(distinct: tuple[Path, np.ndarray]) -> None:
    folder, image = distinct
    assert _seen(NSECropDataset(folder, crop=6, augment="none"), image, draws=20) == {"id"}


def test_unknown_augmentation_is_a_config_error(distinct: tuple[Path, np.ndarray]) -> None:
    folder, _ = distinct
    with pytest.raises(ConfigError, match="unknown NSE augmentation 'rot90'"):
        NSECropDataset(folder, crop=6, augment="rot90")
    with pytest.raises(ConfigError, match="unknown NSE augmentation"):
        check_nse_config(NSEConfig(augment="yes"))
    assert NSEConfig().augment == "flips"


def test_data_augment_false_turns_the_nse_augmentation_off(tmp_path: Path) -> None:
    from spsr.train.config import TrainConfig
    from spsr.train.stages.nse import EpochSchedule

    write_image(tmp_path / "a.png", np.zeros((90, 90, 3), np.uint8))
    cfg = TrainConfig.from_dict({"stage": "nse", "data": {"path": str(tmp_path)},
                                 "nse": {"task": "jigsaw", "crop": 84, "augment": "dihedral"}})
    assert EpochSchedule().dataset_for(cfg).augment == "dihedral"
    cfg.data.augment = False
    assert EpochSchedule().dataset_for(cfg).augment == "none"
