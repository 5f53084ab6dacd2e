"""Shared helpers of the training tests: tiny data, tiny configurations (CPU, seconds)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from spsr.train.config import TrainConfig, apply_overrides
from spsr.train.variants import preset

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch):
    """One intra-op thread: on a shared 2-core machine two OpenMP threads per process can be
    ~10× slower than one (they spin-wait for each other). ``OMP_NUM_THREADS=1`` tells the
    trainer's thread plan (spsr.train.threads) to keep it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


# A tiny generator / discriminator / VGG so one GAN iteration takes well under a second on CPU.
TINY = {
    "model.nf": 8, "model.nb": 2, "model.gc": 4, "d.nf": 4, "d.hidden": 8,
    "loss.perceptual_net": "vgg_random", "loss.perceptual_layer": "conv2_2",
    "run.amp": "off", "run.device": "cpu", "run.channels_last": "off",
    "data.batch_size": 2, "data.workers": 0, "run.log_every": 1,
}


class TinyPairs(Dataset):
    """Random HR crops and their 4× average-pooled LR, randomly rotated with torch's global RNG
    (like the real dataset's augmentation) so reproducibility is exercised."""

    scale = 4

    def __init__(self, n: int = 8, lr_size: int = 8, seed: int = 1) -> None:
        g = torch.Generator().manual_seed(seed)
        self.hr = torch.rand(n, 3, lr_size * 4, lr_size * 4, generator=g)
        self.lr = torch.nn.functional.avg_pool2d(self.hr, 4)

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k = int(torch.randint(0, 4, (1,)).item())
        return {"lr": torch.rot90(self.lr[i], k, (1, 2)).contiguous(),
                "hr": torch.rot90(self.hr[i], k, (1, 2)).contiguous()}


def tiny_config(variant: str, **overrides: object) -> TrainConfig:
    """The variant's preset at a tiny size, fp32 on CPU, plus ``overrides`` (dotted keys)."""
    cfg = preset(variant)
    apply_overrides(cfg, TINY)
    apply_overrides(cfg, overrides)
    return cfg


def make_store(folder: Path, n_images: int = 3, size: int = 64, val: int = 1) -> Path:
    """A real patch store (``spsr prepare-data``'s library side) from skimage's sample images."""
    from skimage import data as skdata

    from spsr.data.image_io import write_image
    from spsr.data.store import StoreOptions, write_store
    from spsr.ops import imresize_np

    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i, name in enumerate(["astronaut", "chelsea", "coffee", "rocket"][:n_images]):
        img = getattr(skdata, name)()
        small = imresize_np(img, size=(size, size))
        path = folder / f"{i}_{name}.png"
        write_image(path, np.clip(small, 0, 255).astype(np.uint8))
        images.append(path)
    out = folder / "store.h5"
    write_store(images, out, StoreOptions.make(scale=4, patch=32, step=16, val=val))
    return out


def subprocess_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one thread each, the repo importable."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    return env


PYTHON = sys.executable


def assert_identical(a: Any, b: Any, where: str = "state") -> None:
    """Bit-for-bit equality of nested states (tensors with their dtypes, dicts, lists, values),
    naming the first place that differs."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def astronaut_crops(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` different ``size``×``size`` crops of scikit-image's astronaut written as PNGs
    ``img_00.png``… into ``folder`` (real photo content for data and failure tests)."""
    from skimage import data as skdata

    from spsr.data.image_io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    astro = skdata.astronaut()
    paths = []
    for i in range(count):
        y, x = (i * 53) % (512 - size), (i * 97) % (512 - size)
        paths.append(folder / f"img_{i:02d}.png")
        write_image(paths[-1], np.ascontiguousarray(astro[y : y + size, x : x + size]))
    return paths
