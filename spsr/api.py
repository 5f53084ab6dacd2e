"""The Python API: ``Upscaler``, what ``spsr upscale`` runs, on arrays, PIL images and files.

    >>> from spsr import Upscaler
    >>> up = Upscaler("default", engine="auto", precision="auto", tile=256, device="auto")
    >>> out = up(image)                  # H×W×C uint8/uint16 NumPy array or PIL image, same kind back
    >>> up.upscale_file("in.png", "out.png")
    >>> sr, grad = up.with_gradient(image)  # SPSR models: the gradient branch's output too
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spsr.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from spsr.data.image_io import LoadedImage
    from spsr.engines import NoteCallback
    from spsr.infer.tiled import TileCallback
    from spsr.lite.warm import WarmRecord


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """A PIL image as ``spsr upscale`` reads a file: gray, gray+alpha, RGB, RGBA; 16-bit kept."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(im).astype(np.uint16)
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    return np.asarray(im)


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    from PIL import Image

    if arr.dtype == np.uint16:
        if arr.shape[2] != 1:
            raise ConfigError("PIL has no 16-bit colour images; pass a NumPy array for 16-bit colour")
        return Image.fromarray(arr[:, :, 0], mode="I;16")
    modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode=modes[arr.shape[2]])


def _as_loaded(arr: np.ndarray) -> LoadedImage:
    from spsr.data.image_io import LoadedImage, _split_channels

    if arr.dtype not in (np.uint8, np.uint16):
        raise ConfigError(f"images must be uint8 or uint16, not {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)) or min(arr.shape[:2]) < 1:
        raise ConfigError(f"images must be H×W or H×W×C with C = 1, 2, 3 or 4, not shape {arr.shape}")
    pixels, alpha = _split_channels(arr)
    return LoadedImage(np.ascontiguousarray(pixels), alpha, None, Path("<array>"))


class Upscaler:
    """Load a model once and upscale images with it, as ``spsr upscale`` does.

    Args:
        weights: a weights file (``.safetensors``/``.pth``), a run folder, or a built-in name
            (``default``, ``psnr``).
        engine: ``auto`` (PyTorch on GPUs, OpenVINO on CPUs with native bf16, on other CPUs the
            engine measured fastest for this model: :mod:`spsr.engines.autotune`), ``torch``,
            ``openvino`` or ``onnxruntime``; one that cannot run falls back to PyTorch with a note.
        precision: ``auto`` (bf16 where the hardware has it natively, else fp32), ``fp32``,
            ``bf16`` or ``fp16`` (CUDA only).
        tile: tile size in input pixels (0: the whole image at once).
        device: ``auto`` (a CUDA GPU if there is one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        tile_overlap: context and blending band between tiles, input pixels.
        batch: tiles per forward pass (None: 1 on the CPU, where batches gain no speed and hold more
            memory, 4 on a GPU).
        model_scale: the scale the weights are for, where their keys cannot tell.
        on_note: receives one-line notes (engine fallback, first-run conversion, ``auto``'s
            measurement, guessed sizes); default: they are kept in :attr:`notes`.
        engine_retune: with ``engine="auto"`` on a CPU without native bf16, measure the engines
            again instead of using the choice cached for this machine and model.

    Attributes:
        scale: the model's upscaling factor.
        loaded: the model and what its file said (:class:`spsr.infer.LoadedModel`).
        notes: the notes given so far, when no ``on_note`` was passed.

    Raises:
        CheckpointError: the weights cannot be read.
        ConfigError: an unknown engine or precision, a bad tile setting.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] = "default",
        engine: str = "auto",
        precision: str = "auto",
        tile: int = 256,
        device: str = "auto",
        *,
        tile_overlap: int = 16,
        batch: int | None = None,
        model_scale: int | None = None,
        on_note: NoteCallback | None = None,
        engine_retune: bool = False,
    ) -> None:
        from spsr.devices import resolve_device
        from spsr.infer import TiledUpscaler, load_model

        self.notes: list[str] = []
        note = on_note or self.notes.append
        self.device = resolve_device(device)
        self.loaded = load_model(weights, device=self.device, model_scale=model_scale)
        for line in self.loaded.warnings:
            note(line)
        self.scale = self.loaded.spec.scale
        self.tiled = TiledUpscaler(self.loaded.model, self.scale, tile=tile, overlap=tile_overlap, batch=batch,
                                   device=self.device, precision=precision, engine=engine, on_note=note,
                                   engine_retune=engine_retune)

    def describe(self) -> str:
        """What runs: ``SPSR-G x4 (...) on cpu, openvino bf16``."""
        return f"{self.model_description} on {self.device}, {self.describe_engine()}"

    @property
    def model_description(self) -> str:
        """The model, e.g. ``SPSR-G x4 (23 RRDB, 64 ch)``."""
        return self.loaded.spec.describe()

    def describe_engine(self) -> str:
        """The engine and precision that run, e.g. ``openvino bf16``."""
        return self.tiled.describe()

    def compile_note(self) -> str | None:
        """What OpenVINO's compilation of tile shapes cost so far, where it was noticeable
        (:func:`spsr.lite.runners.compile_note`); None for other engines."""
        from spsr.lite.runners import compile_note
        from spsr.lite.warm import openvino_blobs

        return compile_note(getattr(self.tiled.prepared_runner(), "model", None), openvino_blobs())

    def warm_record(self) -> WarmRecord | None:
        """What a later ``spsr upscale`` needs to run this model again without PyTorch
        (:mod:`spsr.lite.warm`): None unless OpenVINO or ONNX Runtime has run the SR image of
        a model loaded from a weights file."""
        from spsr.engines import get_engine
        from spsr.lite.warm import WarmRecord

        runner = self.tiled.prepared_runner()
        if runner is None or runner.source_file is None or runner.threads is None or self.loaded.source is None:
            return None
        return WarmRecord.of_conversion(
            engine=runner.engine, engine_version=get_engine(runner.engine).version(), precision=runner.precision,
            threads=runner.threads, scale=self.scale, model=self.model_description,
            weights_file=self.loaded.source, converted=runner.source_file)

    def upscale_image(self, image: LoadedImage, outscale: float | None = None,
                      on_tiles: TileCallback | None = None) -> np.ndarray:
        """A decoded image (:func:`spsr.data.image_io.read_image`) upscaled, as an array of its
        dtype with its channels (gray stays gray, alpha is upscaled apart and kept)."""
        from spsr.infer.upscale import upscale_loaded

        return upscale_loaded(image, self.tiled, outscale, on_tiles)

    def __call__(self, image: np.ndarray | Image.Image, outscale: float | None = None) -> Any:
        """Upscale an ``H×W×C`` (or ``H×W``) uint8/uint16 array or a PIL image.

        Returns:
            The same kind: an array of the input's dtype and channels, or a PIL image of its mode
            family (L, LA, RGB, RGBA, I;16).

        Raises:
            ConfigError: an array of another dtype or shape.
            NonFiniteOutputError: the model gave NaN or infinite values.
        """
        if isinstance(image, np.ndarray):
            out = self.upscale_image(_as_loaded(image), outscale)
            return out[:, :, 0] if image.ndim == 2 else out
        from PIL import Image

        if not isinstance(image, Image.Image):
            raise ConfigError(f"expected a NumPy array or a PIL image, not {type(image).__name__}")
        return _array_to_pil(self.upscale_image(_as_loaded(_pil_to_array(image)), outscale))

    def upscale_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                     outscale: float | None = None) -> Path:
        """Read ``src``, upscale it and write ``dst`` atomically (format from its suffix; the ICC
        profile kept). Returns ``dst``."""
        from spsr.data.image_io import read_image, write_image

        image = read_image(src)
        write_image(dst, self.upscale_image(image, outscale), icc_profile=image.icc_profile)
        return Path(dst)

    def with_gradient(self, image: np.ndarray | Image.Image) -> tuple[Any, np.ndarray]:
        """The upscaled image (as :meth:`__call__`, without ``outscale``) and the gradient
        branch's output, an ``H×W×3`` float32 array at the output size (SPSR models only).

        Raises:
            ConfigError: the model has no gradient branch.
        """
        from spsr.data.image_io import from_tensor, to_tensor

        pil = not isinstance(image, np.ndarray)
        arr = image if isinstance(image, np.ndarray) else _pil_to_array(image)
        loaded = _as_loaded(arr)
        x = to_tensor(loaded.pixels)
        x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        sr, grad = self.tiled.with_gradient(x)
        if loaded.alpha is not None or loaded.is_gray:  # gray / alpha handled as __call__ does
            out = self.upscale_image(loaded)
        else:
            out = from_tensor(sr, loaded.pixels.dtype)
        if not pil and arr.ndim == 2:
            out = out[:, :, 0]
        result = _array_to_pil(out) if pil else out
        return result, grad.permute(1, 2, 0).numpy().astype(np.float32)
