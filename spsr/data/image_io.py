"""Reading and writing images at the I/O edge: bit depth, alpha, EXIF orientation, ICC profiles.

Inside the library images are float tensors in [0, 1]; here they are ``uint8``/``uint16`` arrays.
Bit depth is decided by the file's sample type, never by pixel values. 8-bit images go through
Pillow; 16-bit PNG through pypng (Pillow cannot hold 16-bit RGB) and 16-bit TIFF through tifffile.
Writes are atomic: a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spsr.atomic import write_bytes_atomic
from spsr.errors import ImageReadError

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


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
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _png_bit_depth(data: bytes) -> int | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 29:
        return None
    return data[24]


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


def _read_tiff(path: Path) -> LoadedImage | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if page.dtype not in (np.uint8, np.uint16):
            raise ImageReadError(f"{path}: unsupported TIFF sample type {page.dtype}")
        arr = page.asarray()
        tag = page.tags.get(34675)
        icc = bytes(tag.value) if tag is not None else None
    pixels, alpha = _split_channels(arr)
    return LoadedImage(np.ascontiguousarray(pixels), alpha, icc, path)


def _read_pillow(data: bytes, path: Path) -> LoadedImage:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
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


def read_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read an image file. Raises ``ImageReadError`` for a non-image or corrupt file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if _png_bit_depth(data) == 16:
            return _read_png16(data, path)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _read_tiff(path)
        return _read_pillow(data, path)
    except ImageReadError:
        raise
    except Exception as exc:  # decoders raise many types for corrupt data
        raise ImageReadError(f"{path}: not a readable image ({exc.__class__.__name__}: {exc})") from None


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
