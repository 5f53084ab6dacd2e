"""Reading and writing images at the I/O edge: bit depth, alpha, EXIF orientation, ICC profiles.

Inside the library images are float tensors in [0, 1]; here they are ``uint8``/``uint16`` arrays.
Bit depth is decided by the file's sample type, never by pixel values. 8-bit images go through
Pillow; 16-bit PNG through pypng (Pillow cannot hold 16-bit RGB) and 16-bit TIFF through tifffile.
Writes are atomic: a temporary file in the same folder, then a rename.

Every reader checks the pixel count from the file's header before decoding anything, so a
small file claiming a huge size (a decompression bomb) is refused in one line instead of
allocating gigabytes. The limit is ``DEFAULT_MAX_PIXELS`` and can be raised with the
``SPSR_MAX_IMAGE_PIXELS`` environment variable (a number of pixels; ``0`` = no limit).
Animated images (GIF, APNG, WebP, multi-page TIFF) are refused rather than silently reduced to
their first frame; a multi-picture camera JPEG (MPO) is read as its primary picture.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spsr.atomic import write_bytes_atomic
from spsr.errors import ConfigError, ImageReadError, ImageTooLargeError

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""Formats spsr writes (and reads)."""
READ_EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif")
"""Formats spsr reads: also still GIFs (their outputs are written as PNG)."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image decoded by default: 100 megapixels (10000×10000; ~600 MB as 16-bit RGB)."""
MAX_PIXELS_ENV = "SPSR_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int | None:
    """The decode-time pixel limit: ``SPSR_MAX_IMAGE_PIXELS`` if set, else the default; None = off."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise ConfigError(f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels") from None
    if value < 0:
        raise ConfigError(f"{MAX_PIXELS_ENV} must be >= 0 (0 = no limit), not {value}")
    return value or None


def check_pixel_limit(path: Path, width: int, height: int) -> None:
    """Raise ``ImageTooLargeError`` when a header's ``width × height`` is over the limit."""
    limit = max_image_pixels()
    if limit is not None and width * height > limit:
        raise ImageTooLargeError(
            f"{path}: {width}×{height} ({width * height:,} pixels) is over the limit of {limit:,} pixels "
            f"(a decompression bomb?); to decode it anyway set "
            f"{MAX_PIXELS_ENV}={width * height}"
        )


@dataclass
class LoadedImage:
    """An image as read from disk.

    Attributes:
        pixels: ``(H, W, C)`` array, C = 1 (grayscale) or 3 (RGB), ``uint8`` or ``uint16``.
        alpha: ``(H, W)`` alpha channel of the same dtype, or None.
        icc_profile: the embedded ICC profile, or None.
        path: where it came from.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    icc_profile: bytes | None
    path: Path

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def is_gray(self) -> bool:
        return self.pixels.shape[2] == 1


def is_image_file(path: Path) -> bool:
    """Whether a file name has an extension spsr reads (see ``READ_EXTENSIONS``)."""
    return path.suffix.lower() in READ_EXTENSIONS


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's chunks before the image data say: size, bit depth, animation frames."""

    width: int
    height: int
    bit_depth: int
    frames: int


def _png_header(data: bytes) -> PngHeader | None:
    """Parse IHDR (and an APNG ``acTL`` if present) without decoding; None if not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    frames = 1
    pos = 8
    while pos + 8 <= len(data):
        length, name = struct.unpack(">I4s", data[pos:pos + 8])
        if name == b"acTL" and length >= 8:
            frames = struct.unpack(">I", data[pos + 8:pos + 12])[0]
        if name in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return PngHeader(width, height, data[24], frames)


def _refuse_animated(path: Path, frames: int) -> None:
    if frames > 1:
        raise ImageReadError(
            f"{path}: animated image with {frames} frames; spsr upscales still images only "
            "(extract the frame you want first, e.g. with ffmpeg or Pillow)"
        )


def _split_channels(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if arr.ndim == 2:
        return arr[:, :, None], None
    c = arr.shape[2]
    if c == 1:
        return arr, None
    if c == 2:
        return arr[:, :, :1], arr[:, :, 1]
    if c == 3:
        return arr, None
    return arr[:, :, :3], arr[:, :, 3]


def _read_png16(data: bytes, path: Path) -> LoadedImage:
    import png

    reader = png.Reader(bytes=data)
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    icc = None
    for name, chunk in png.Reader(bytes=data).chunks():
        if name == b"iCCP":
            sep = chunk.index(b"\x00")
            icc = zlib.decompress(chunk[sep + 2 :])
    pixels, alpha = _split_channels(arr)
    return LoadedImage(np.ascontiguousarray(pixels), alpha, icc, path)


def _read_tiff(path: Path) -> LoadedImage:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        check_pixel_limit(path, int(page.imagewidth), int(page.imagelength))
        frames = sum(1 for p in tif.pages if not getattr(p, "is_reduced", False))
        _refuse_animated(path, frames)
        if page.dtype not in (np.uint8, np.uint16):
            raise ImageReadError(f"{path}: unsupported TIFF sample type {page.dtype}")
        arr = page.asarray()
        tag = page.tags.get(34675)
        icc = bytes(tag.value) if tag is not None else None
    pixels, alpha = _split_channels(arr)
    return LoadedImage(np.ascontiguousarray(pixels), alpha, icc, path)


def _read_pillow(data: bytes, path: Path) -> LoadedImage:
    from PIL import Image, ImageOps

    limit = max_image_pixels()
    with warnings.catch_warnings():
        # Pillow's own bomb check follows our limit (it errors only at twice MAX_IMAGE_PIXELS).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        opened: Image.Image | None
        try:
            opened = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            opened = None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
        if opened is None:  # over twice the limit: ask the header for the numbers of the message
            width, height = _header_size_unchecked(data)
            check_pixel_limit(path, width, height)
            raise ImageReadError(f"{path}: image too large to decode")  # pragma: no cover
    with opened as im:
        check_pixel_limit(path, im.size[0], im.size[1])
        if im.format != "MPO":  # a camera JPEG's extra pictures (previews, depth) are no animation
            _refuse_animated(path, int(getattr(im, "n_frames", 1)))
        im.load()
        icc = im.info.get("icc_profile")
        im = ImageOps.exif_transpose(im)
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im).astype(np.uint16)
        elif mode in ("1", "L", "P", "LA", "PA", "RGBA", "RGB", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
            if mode in ("1", "L"):
                im = im.convert("L")
            elif mode == "LA":
                pass
            elif mode in ("P", "PA"):
                im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
            elif mode != "RGBA":
                im = im.convert("RGB")
            arr = np.asarray(im)
        else:
            raise ImageReadError(f"{path}: unsupported image mode {mode}")
    pixels, alpha = _split_channels(arr)
    return LoadedImage(np.ascontiguousarray(pixels), alpha, icc or None, path)


def _header_size_unchecked(data: bytes) -> tuple[int, int]:
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read an image file.

    Raises:
        ImageReadError: a non-image, corrupt or animated file.
        ImageTooLargeError: the header claims more pixels than ``max_image_pixels()`` allows.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        png_head = _png_header(data)
        if png_head is not None:
            check_pixel_limit(path, png_head.width, png_head.height)
            _refuse_animated(path, png_head.frames)
            if png_head.bit_depth == 16:
                return _read_png16(data, path)
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _read_tiff(path)
        return _read_pillow(data, path)
    except (ImageReadError, ConfigError):
        raise
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types for corrupt data
        raise ImageReadError(f"{path}: {_describe_decode_error(exc)}") from None


def _describe_decode_error(exc: Exception) -> str:
    """A short reason for a decoder failure, without object reprs such as ``<_io.BytesIO …>``."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image file (unknown format)"
    text = " ".join(str(exc).split())
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the file", text)
    return f"not a readable image ({exc.__class__.__name__}: {text})" if text else \
        f"not a readable image ({exc.__class__.__name__})"


def _png_chunk(name: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(name + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", crc)


def _encode_png16(arr: np.ndarray, icc: bytes | None) -> bytes:
    import png

    h, w, c = arr.shape
    buf = io.BytesIO()
    writer = png.Writer(width=w, height=h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16)
    writer.write(buf, arr.reshape(h, w * c))
    data = buf.getvalue()
    if icc:
        ihdr_end = 8 + 25
        chunk = _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
        data = data[:ihdr_end] + chunk + data[ihdr_end:]
    return data


def encode_image(arr: np.ndarray, ext: str, icc_profile: bytes | None = None, quality: int = 95) -> bytes:
    """Encode an ``(H, W, C)`` ``uint8``/``uint16`` array (C in 1..4) for a file extension."""
    from PIL import Image

    ext = ext.lower()
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype == np.uint16:
        if ext == ".png":
            return _encode_png16(arr, icc_profile)
        if ext in (".tif", ".tiff"):
            import tifffile

            buf = io.BytesIO()
            extratags = [(34675, "B", len(icc_profile), icc_profile, True)] if icc_profile else []
            photometric = "minisblack" if arr.shape[2] in (1, 2) else "rgb"
            tifffile.imwrite(buf, arr.squeeze(2) if arr.shape[2] == 1 else arr,
                             photometric=photometric, extratags=extratags)
            return buf.getvalue()
        arr = (arr.astype(np.uint32) * 255 + 32767) // 65535  # to 8 bits for 8-bit-only formats
        arr = arr.astype(np.uint8)
    c = arr.shape[2]
    image = Image.fromarray(arr.squeeze(2) if c == 1 else arr, mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(ext)
    if fmt is None:
        raise ImageReadError(f"unsupported output format {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if fmt in ("JPEG", "BMP") and c in (2, 4):
        image = image.convert("L" if c == 2 else "RGB")
    kwargs: dict[str, object] = {}
    if icc_profile and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = icc_profile
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def write_image(
    path: str | os.PathLike[str], arr: np.ndarray, icc_profile: bytes | None = None, quality: int = 95
) -> None:
    """Write an ``(H, W, C)`` array atomically; the format follows the extension."""
    path = Path(path)
    write_bytes_atomic(path, encode_image(arr, path.suffix, icc_profile, quality))


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` uint8/uint16 array → float32 ``(C, H, W)`` tensor in [0, 1]."""
    import torch

    if arr.ndim == 2:
        arr = arr[:, :, None]
    scale = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
    t = torch.from_numpy(np.array(arr.transpose(2, 0, 1), dtype=np.float32))
    return t / scale


def from_tensor(t: torch.Tensor, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Float ``(C, H, W)`` tensor in [0, 1] → ``(H, W, C)`` array of ``dtype``, rounded and clipped."""
    maxval = float(np.iinfo(dtype).max)
    arr = (t.detach().float().clamp(0, 1) * maxval).round().cpu().numpy().transpose(1, 2, 0)
    return arr.astype(dtype)


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` 8-bit RGB: gray → R=G=B, alpha dropped, 16-bit scaled down."""
    img = read_image(path)
    px = img.pixels
    if px.dtype == np.uint16:
        px = ((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    return np.ascontiguousarray(px)
