"""``build``: a self-contained static HTML study folder plus an answer key kept outside it.

Folder layout (serve it or open ``index.html`` straight from disk; nothing is fetched from the
network)::

    study/
      index.html              page, inline CSS + JS, the study data inline (no method names)
      images/0000/ref.png     HR reference of image 0
      images/0000/ref-crop.png
      images/0000/0.png …     results in secret slot order (see spsr.user_study.key)
      images/0000/0-crop.png …
    study-key.json            the answer key, next to the folder, never inside it

Every image is re-encoded as 8-bit PNG (ICC profile kept, other metadata dropped): browsers cannot
show TIFF, and a file's format, name or metadata (``Software``, text chunks) could give a method
away.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np

from spsr.atomic import folder_mode
from spsr.data.image_io import encode_image, read_image
from spsr.errors import ConfigError, raise_write_failure
from spsr.user_study.crops import CropBox, default_crop_size, most_structured_window
from spsr.user_study.key import KeyImage, StudyKey, write_key
from spsr.user_study.pairing import PairedImage, pair_images

PAGE_FORMAT = "spsr-user-study-page"
MAX_SEED = 2**32 - 1
DEFAULT_TITLE = "Super-resolution user study"
DEFAULT_INSTRUCTIONS = (
    "For each image you will see the high-resolution reference and several super-resolved results "
    "in a random order. Rank the results from 1 (best) to worst by their perceptual quality: how "
    "natural, sharp and faithful to the reference they look. Each rank is used once."
)


@dataclass(frozen=True)
class StudyBuild:
    """What ``build_study`` wrote.

    Attributes:
        folder: the study folder (serve it, or open its ``index.html``).
        key_path: the answer key, outside the folder.
        key: the key's content.
        warnings: things the user should know (unmatched files, images left out).
    """

    folder: Path
    key_path: Path
    key: StudyKey
    warnings: tuple[str, ...]


def default_key_path(folder: Path) -> Path:
    """Where the key goes by default: ``<folder>-key.json`` next to the folder.

    Args:
        folder: the study folder.

    Returns:
        the key path.
    """
    folder = Path(folder)
    return folder.parent / f"{folder.name}-key.json"


def _display_rgb(path: Path) -> tuple[np.ndarray, bytes | None]:
    """An image as 8-bit RGB (gray → RGB, alpha dropped, 16-bit scaled) and its ICC profile."""
    loaded = read_image(path)
    pixels = loaded.pixels
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels), loaded.icc_profile


def _check_sizes(
    image: PairedImage, methods: Sequence[str], hr: np.ndarray, results: list[np.ndarray]
) -> None:
    """Results may be a few pixels smaller or larger (mod-crop), never another scale."""
    height, width = hr.shape[:2]
    for name, result, path in zip(methods, results, image.results, strict=True):
        rh, rw = result.shape[:2]
        tol_h, tol_w = max(8, height // 50), max(8, width // 50)
        if abs(rh - height) > tol_h or abs(rw - width) > tol_w:
            raise ConfigError(
                f"method {name}: {path.name} is {rw}x{rh} but its HR reference {image.hr.name} is "
                f"{width}x{height} (results must be at HR resolution)"
            )


def _write_png(path: Path, pixels: np.ndarray, icc: bytes | None) -> None:
    path.write_bytes(encode_image(pixels, ".png", icc))


def _crop(pixels: np.ndarray, box: CropBox) -> np.ndarray:
    return np.ascontiguousarray(pixels[box.y : box.y + box.h, box.x : box.x + box.w])


def _page_html(data: dict) -> str:
    template = (
        resources.files("spsr").joinpath("assets/study/page.html").read_text(encoding="utf-8")
    )
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Inside <script>, "<" must not open a tag ("</script>"); \u003c is the same JSON string.
    payload = (
        payload.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )
    return template.replace("__STUDY_DATA__", payload)


def _parse_methods(methods: Sequence[tuple[str, Path]]) -> list[tuple[str, Path]]:
    parsed = [(str(name).strip(), Path(folder)) for name, folder in methods]
    if len(parsed) < 2:
        raise ConfigError(
            "a ranking study needs at least two methods (--method NAME=DIR, repeated)"
        )
    names = [name for name, _ in parsed]
    if any(not name for name in names):
        raise ConfigError("a method name is empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"method name given twice: {', '.join(dupes)}")
    return parsed


def build_study(
    hr_dir: Path,
    methods: Sequence[tuple[str, Path]],
    folder: Path,
    *,
    key_path: Path | None = None,
    seed: int | None = None,
    crop: CropBox | str | None = None,
    crop_size: int | None = None,
    max_images: int | None = None,
    skip_incomplete: bool = False,
    title: str = DEFAULT_TITLE,
    instructions: str = DEFAULT_INSTRUCTIONS,
    overwrite: bool = False,
    slot_rng: random.Random | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> StudyBuild:
    """Build the static study folder and its answer key.

    Args:
        hr_dir: folder of HR reference images.
        methods: ``(name, folder)`` per method; outputs are paired with HR images by stem.
        folder: the study folder to create.
        key_path: where to write the answer key; default ``<folder>-key.json`` next to the folder.
            Must lie outside the folder.
        seed: seed of the per-rater, per-image orders (0 … 2**32-1); random when None.
        crop: a fixed ``CropBox`` in HR pixels, ``"auto"`` (the most structured window of each HR
            image), or None for no zoomed crops.
        crop_size: side of the automatic crop; default a quarter of the shorter side (32…128).
        max_images: keep at most this many images, chosen at random with ``seed``.
        skip_incomplete: leave out HR images some method has no output for (else an error).
        title: page title.
        instructions: text shown to raters before they start.
        overwrite: replace an existing folder and key.
        slot_rng: randomness for the secret slot order; default the OS's secure generator.
        on_image: called with ``(done, total)`` after each image is written.

    Returns:
        what was written.

    Raises:
        ConfigError: bad options, unpairable files, results at the wrong size, an existing folder or
            key without ``overwrite``.
        ImageReadError: an unreadable image.
    """
    folder = Path(folder).absolute()
    key_path = Path(key_path).absolute() if key_path is not None else default_key_path(folder)
    parsed = _parse_methods(methods)
    names = [name for name, _ in parsed]
    if key_path == folder or folder in key_path.parents:
        raise ConfigError(
            f"the key {key_path} must not be inside the study folder {folder}: raters would see it"
        )
    if folder.exists() and not overwrite and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{folder} already exists; pass overwrite (--force) to replace it")
    if key_path.exists() and not overwrite:
        raise ConfigError(f"{key_path} already exists; pass overwrite (--force) to replace it")
    if seed is None:
        seed = secrets.randbelow(2**31)
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed {seed}: must be between 0 and {MAX_SEED}")
    if isinstance(crop, str) and crop != "auto":
        raise ConfigError(f"crop {crop!r}: expected a CropBox, 'auto' or None")
    if crop_size is not None and crop_size < 1:
        raise ConfigError("crop size must be positive")
    if max_images is not None and max_images < 1:
        raise ConfigError("max images must be at least 1")

    pairing = pair_images(Path(hr_dir), parsed)
    warnings: list[str] = []
    if pairing.missing:
        listing = ", ".join(f"{stem} ({method})" for stem, method in pairing.missing[:6])
        more = f" and {len(pairing.missing) - 6} more" if len(pairing.missing) > 6 else ""
        if not skip_incomplete:
            raise ConfigError(f"no output for: {listing}{more}; add them or pass --skip-incomplete")
        warnings.append(f"left out images without every method's output: {listing}{more}")
    for method, path in pairing.unmatched:
        warnings.append(f"method {method}: {path.name} matches no HR image; ignored")
    images = list(pairing.images)
    if not images:
        raise ConfigError("no HR image has an output from every method")
    if max_images is not None and len(images) > max_images:
        chosen = sorted(random.Random(seed).sample(range(len(images)), max_images))
        images = [images[i] for i in chosen]
    slot_rng = slot_rng or random.SystemRandom()

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    tmp.chmod(folder_mode())  # mkdtemp makes it private; a web server must be able to read the study
    try:
        key_images, page_images = [], []
        for index, image in enumerate(images):
            hr, hr_icc = _display_rgb(image.hr)
            loaded = [_display_rgb(path) for path in image.results]
            results = [pixels for pixels, _ in loaded]
            _check_sizes(image, names, hr, results)
            common_h = min(p.shape[0] for p in [hr, *results])
            common_w = min(p.shape[1] for p in [hr, *results])
            box: CropBox | None = None
            if crop == "auto":
                size = crop_size or default_crop_size(common_h, common_w)
                box = most_structured_window(hr[:common_h, :common_w], size)
            elif isinstance(crop, CropBox):
                if not crop.fits(common_h, common_w):
                    raise ConfigError(
                        f"crop {crop.x},{crop.y},{crop.w},{crop.h} does not fit image {image.stem} "
                        f"({common_w}x{common_h} shared by the HR and every result)"
                    )
                box = crop
            slots = list(range(len(names)))
            slot_rng.shuffle(slots)  # slots[slot] = method index
            sub = tmp / "images" / f"{index:04d}"
            sub.mkdir(parents=True)
            rel = f"images/{index:04d}"
            _write_png(sub / "ref.png", hr, hr_icc)
            entry: dict = {
                "ref": f"{rel}/ref.png",
                "results": [],
                "width": int(hr.shape[1]),
                "height": int(hr.shape[0]),
            }
            if box is not None:
                _write_png(sub / "ref-crop.png", _crop(hr, box), hr_icc)
                entry["ref_crop"] = f"{rel}/ref-crop.png"
                entry["crops"] = []
            for slot, method_index in enumerate(slots):
                pixels, icc = loaded[method_index]
                _write_png(sub / f"{slot}.png", pixels, icc)
                entry["results"].append(f"{rel}/{slot}.png")
                if box is not None:
                    _write_png(sub / f"{slot}-crop.png", _crop(pixels, box), icc)
                    entry["crops"].append(f"{rel}/{slot}-crop.png")
            page_images.append(entry)
            key_images.append(
                KeyImage(
                    stem=image.stem,
                    slots=tuple(slots),
                    sources=tuple(str(p.absolute()) for p in image.results),
                    hr=str(image.hr.absolute()),
                    crop=(box.x, box.y, box.w, box.h) if box else None,
                )
            )
            if on_image is not None:
                on_image(index + 1, len(images))

        study_id = secrets.token_hex(8)
        page = {
            "format": PAGE_FORMAT,
            "version": 1,
            "study_id": study_id,
            "seed": seed,
            "k": len(names),
            "title": title,
            "instructions": instructions,
            "images": page_images,
        }
        (tmp / "index.html").write_text(_page_html(page), encoding="utf-8")
        key = StudyKey(
            study_id=study_id,
            seed=seed,
            methods=tuple(names),
            images=tuple(key_images),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            folder=str(folder),
        )
        _install(tmp, folder, key, key_path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise_write_failure(exc, folder, "nothing of the new study was kept")
        raise
    return StudyBuild(folder=folder, key_path=key_path, key=key, warnings=tuple(warnings))


def _install(tmp: Path, folder: Path, key: StudyKey, key_path: Path) -> None:
    """Move the finished folder into place and write the key; an old folder is removed last."""
    old: Path | None = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.rmdir(old)
        os.replace(folder, old)
    moved = False
    try:
        os.replace(tmp, folder)
        moved = True
        write_key(key, key_path)
    except BaseException:
        if moved:
            shutil.rmtree(folder, ignore_errors=True)
        if old is not None:
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
