"""The warm start's runners against the full path, engine by engine, in this process (where the
engines may load): the same image out, bit for bit; a failing engine falls back with one note."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spsr.api import Upscaler
from spsr.data.image_io import LoadedImage
from spsr.lite.upscaler import WarmUnavailable, WarmUpscaler

ENGINES = [e for e in ("openvino", "onnxruntime") if importlib.util.find_spec(e) is not None]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Conversions go to a cache of this test session, never the user's."""
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path_factory.getbasetemp() / "engine cache"))


def _image(channels: int) -> LoadedImage:
    pixels = np.random.default_rng(channels).integers(0, 256, (23, 29, channels), dtype=np.uint8)
    return LoadedImage(pixels, None, None, Path("x.png"))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_warm_runner_writes_what_the_full_path_writes(engine: str, tiny_spsr_weights: Path) -> None:
    full = Upscaler(str(tiny_spsr_weights), engine=engine, precision="fp32", tile=16, device="cpu",
                    tile_overlap=4, batch=3)
    refs = {c: full.upscale_image(_image(c)) for c in (1, 3)}
    record = full.warm_record()
    assert record is not None and record.engine == engine and record.precision == "fp32"
    assert record.weights_file == str(tiny_spsr_weights) and Path(record.converted).is_file()
    warm = WarmUpscaler(record, 16, 4, 3, fallback=lambda: full)
    assert warm.scale == 4 and warm.describe_engine() == f"{engine} fp32"
    assert warm.model_description == full.model_description
    for channels, ref in refs.items():
        np.testing.assert_array_equal(warm.upscale_image(_image(channels)), ref)
    assert warm.full is None and warm.compile_note() is None  # a tiny model compiles quickly


@pytest.mark.parametrize("engine", ENGINES)
def test_another_engine_version_or_a_failing_engine_goes_to_the_full_path(engine: str,
                                                                          tiny_spsr_weights: Path) -> None:
    from dataclasses import replace

    full = Upscaler(str(tiny_spsr_weights), engine=engine, precision="fp32", tile=16, device="cpu", tile_overlap=4)
    ref = full.upscale_image(_image(3))
    record = full.warm_record()
    assert record is not None
    with pytest.raises(WarmUnavailable, match="is installed"):
        WarmUpscaler(replace(record, engine_version="0.0"), 16, 4, 4, fallback=lambda: full)

    notes: list[str] = []
    warm = WarmUpscaler(record, 16, 4, 4, fallback=lambda: full, on_note=notes.append)

    def broken(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("cannot compile this shape\nmore detail")

    warm.model = broken
    np.testing.assert_array_equal(warm.upscale_image(_image(3)), ref)
    assert warm.full is full
    assert notes == [f"the cached {engine} model failed (RuntimeError: cannot compile this shape); PyTorch runs"]
