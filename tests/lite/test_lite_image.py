"""One image through spsr.lite (NumPy) and through spsr.infer (PyTorch) with the same network:
colour, grayscale and 16-bit images come out identical; alpha and ``outscale``, which spsr.lite
resamples with the NumPy MATLAB bicubic, within one level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spsr.archs import ArchSpec, build_model
from spsr.data.image_io import LoadedImage
from spsr.engines.base import RunSpec
from spsr.engines.torch_engine import TorchRunner
from spsr.errors import NonFiniteOutputError, OutOfMemoryEstimate
from spsr.infer import TiledUpscaler
from spsr.infer.upscale import upscale_loaded
from spsr.lite import image as lite_image
from spsr.lite.image import upscale_decoded
from spsr.lite.tiles import TileCallback, run_tiled


@pytest.fixture(scope="module")
def pair() -> tuple[TiledUpscaler, TorchRunner]:
    torch.manual_seed(1)
    model = build_model(ArchSpec("spsr", 4, nf=8, nb=1, gc=4)).eval()
    runner = TorchRunner(RunSpec(model, False, torch.float32, torch.device("cpu")))
    up = TiledUpscaler(model, 4, tile=16, overlap=4, batch=2, precision="fp32", engine="torch")
    up._runners[False] = runner
    return up, runner


def _lite(image: LoadedImage, runner: TorchRunner, outscale: float | None = None) -> np.ndarray:
    def run(x: np.ndarray, on_tiles: TileCallback | None) -> np.ndarray:
        return run_tiled(x, lambda b: runner(torch.from_numpy(b)).numpy(), 4, 16, 4, 2, on_tiles)

    return upscale_decoded(image, run, 4, 16, outscale)


def _image(channels: int, dtype: type, alpha: bool = False) -> LoadedImage:
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    pixels = rng.integers(0, top + 1, (21, 26, channels)).astype(dtype)
    a = None
    if alpha:
        a = np.full((21, 26), top, dtype=dtype)
        a[:, :8] = 0  # a transparent band, filled from its neighbours before the network
    return LoadedImage(pixels, a, None, Path("x.png"))


@pytest.mark.parametrize(("channels", "dtype"), [(3, np.uint8), (1, np.uint8), (3, np.uint16), (1, np.uint16)])
def test_colour_gray_and_16_bit_equal_the_torch_path(pair: tuple[TiledUpscaler, TorchRunner], channels: int,
                                                      dtype: type) -> None:
    up, runner = pair
    image = _image(channels, dtype)
    out = _lite(image, runner)
    assert out.dtype == dtype and out.shape == (84, 104, channels)
    np.testing.assert_array_equal(out, upscale_loaded(image, up))


@pytest.mark.parametrize(("alpha", "outscale"), [(True, None), (False, 2.5), (True, 3.0)])
def test_alpha_and_outscale_equal_the_torch_path(pair: tuple[TiledUpscaler, TorchRunner], alpha: bool,
                                                 outscale: float | None) -> None:
    # Both paths resample with the NumPy MATLAB bicubic (spsr.ops.resize.imresize_np), so the
    # tiled network is the only difference, and it blends bit for bit.
    up, runner = pair
    image = _image(3, np.uint8, alpha)
    out, ref = _lite(image, runner, outscale), upscale_loaded(image, up, outscale)
    assert out.shape == ref.shape == (round(21 * (outscale or 4)), round(26 * (outscale or 4)), 4 if alpha else 3)
    np.testing.assert_array_equal(out, ref)


def test_non_finite_output_and_memory_are_refused() -> None:
    image = _image(3, np.uint8)
    with pytest.raises(NonFiniteOutputError):
        upscale_decoded(image, lambda x, cb: np.full((3, 84, 104), np.nan, np.float32), 4, 0)


def test_memory_is_checked_before_the_network_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lite_image, "available_memory", lambda: 1000)
    ran: list[int] = []

    def run(x: np.ndarray, on_tiles: TileCallback | None) -> np.ndarray:
        ran.append(1)
        return np.zeros((3, 84, 104), np.float32)

    with pytest.raises(OutOfMemoryEstimate, match="needs about"):
        upscale_decoded(_image(3, np.uint8), run, 4, 0)
    assert not ran


def test_in_place_conversion_equals_the_copying_one() -> None:
    from spsr.lite.image import all_finite, from_float

    x = np.random.default_rng(3).random((3, 20, 30), dtype=np.float32) * 1.2 - 0.1
    for dtype in (np.uint8, np.uint16):
        expected = from_float(x, dtype)
        mine = x.copy()
        assert np.array_equal(from_float(mine, dtype, overwrite=True), expected)
        assert not np.array_equal(mine, x)  # it did overwrite
    assert all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 5, 7] = bad
        assert not all_finite(y)
    assert all_finite(np.full((4, 4), np.finfo(np.float32).max, dtype=np.float32))  # no fp32 overflow
