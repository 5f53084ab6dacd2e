""":class:`WarmUpscaler`: ``spsr upscale``'s upscaler for a warm start, on NumPy, without PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from spsr.data.image_io import LoadedImage
from spsr.errors import SpsrError
from spsr.lite.image import upscale_decoded
from spsr.lite.runners import (
    EmptyOutput,
    OnnxRuntimeModel,
    OpenVinoModel,
    compile_note,
    engine_version,
    first_line,
)
from spsr.lite.tiles import TileCallback, run_tiled
from spsr.lite.warm import WarmRecord, onnxruntime_optimized, openvino_blobs


class WarmUnavailable(SpsrError):
    """The recorded model cannot run warm here (another engine version, a file the engine rejects)."""


class ImageUpscaler(Protocol):
    """What ``spsr upscale`` needs of an upscaler: :class:`spsr.api.Upscaler` or :class:`WarmUpscaler`."""

    scale: int

    def compile_note(self) -> str | None: ...

    def upscale_image(self, image: LoadedImage, outscale: float | None = None,
                      on_tiles: TileCallback | None = None) -> np.ndarray: ...


class WarmUpscaler:
    """The model a full run recorded (:mod:`spsr.lite.warm`), run by its engine on NumPy arrays.

    Args:
        record: what the full run ran.
        tile: tile side in LR pixels, as the request gave it (0: whole images).
        overlap: context and blending band in LR pixels.
        batch: tiles per call of the engine.
        fallback: builds the full upscaler (:class:`spsr.api.Upscaler`, which loads PyTorch) if
            the engine fails on an image; it then runs that image and every later one.
        on_note: receives the one-line note of such a fallback.

    Raises:
        WarmUnavailable: another version of the engine is installed, or it cannot load the file.
    """

    device = "cpu"

    def __init__(self, record: WarmRecord, tile: int, overlap: int, batch: int,
                 fallback: Callable[[], ImageUpscaler], on_note: Callable[[str], None] | None = None) -> None:
        try:
            installed = engine_version(record.engine)
        except ImportError as exc:
            raise WarmUnavailable(f"{record.engine} cannot be imported ({first_line(exc)})") from None
        if installed != record.engine_version:
            raise WarmUnavailable(f"{record.engine} {installed} is installed, {record.engine_version} ran")
        self.record = record
        self.scale = record.scale
        self.tile, self.overlap, self.batch = tile, overlap, batch
        self._fallback, self._on_note = fallback, on_note
        self._full: ImageUpscaler | None = None
        try:
            converted = Path(record.converted)
            self.model: Any = (
                OpenVinoModel(converted, record.precision, record.threads, openvino_blobs())
                if record.engine == "openvino"
                else OnnxRuntimeModel(converted, record.threads, onnxruntime_optimized()))
        except Exception as exc:  # noqa: BLE001 - the engines raise their own exception types
            raise WarmUnavailable(f"{record.engine} cannot load {record.converted} ({first_line(exc)})") from None

    @property
    def full(self) -> ImageUpscaler | None:
        """The full upscaler this one fell back to, or None."""
        return self._full

    @property
    def model_description(self) -> str:
        """The model as ``spsr upscale`` describes it (``SPSR-G x4 (...)``)."""
        return self.record.model

    def describe_engine(self) -> str:
        """``engine precision``, e.g. ``openvino fp32``."""
        return f"{self.record.engine} {self.record.precision}"

    def compile_note(self) -> str | None:
        """What compiling tile shapes cost this run, where it was noticeable
        (:func:`spsr.lite.runners.compile_note`)."""
        return compile_note(self.model, openvino_blobs())

    def _run(self, x: np.ndarray, on_tiles: TileCallback | None) -> np.ndarray:
        return run_tiled(x, self.model, self.scale, self.tile, self.overlap, self.batch, on_tiles)

    def upscale_image(self, image: LoadedImage, outscale: float | None = None,
                      on_tiles: TileCallback | None = None) -> np.ndarray:
        """A decoded image upscaled as :meth:`spsr.api.Upscaler.upscale_image` does."""
        if self._full is None:
            try:
                return upscale_decoded(image, self._run, self.scale, self.tile, outscale, on_tiles)
            except (EmptyOutput, RuntimeError) as exc:  # the engine failed on this input
                if self._on_note is not None:
                    self._on_note(f"the cached {self.record.engine} model failed ({first_line(exc)}); "
                                  "PyTorch runs")
                self._full = self._fallback()
        return self._full.upscale_image(image, outscale, on_tiles)
