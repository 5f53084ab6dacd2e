"""Pairing HR references with each method's outputs by file stem.

SR outputs are usually named after their HR image plus a suffix (``baboon_x4.png``,
``baboon_SPSR.png``, ``baboon_x4_SR.png``, ``baboon-rlt.png``); HR files sometimes carry one too
(``baboon_HR.png``, ``baboon_GT.png``). A result belongs to the HR image that
:func:`spsr.data.pairing.match_stem` names (the rules ``spsr eval`` pairs by): the same stem, or
the longest HR stem it starts with followed by a separator (``img_10_x4`` → ``img_10``, not
``img_1``), ignoring case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spsr.data.image_io import is_image_file
from spsr.data.pairing import canonical_reference_stem, match_stem
from spsr.errors import ConfigError


@dataclass(frozen=True)
class PairedImage:
    """One study image: its HR reference and one result per method (in method order).

    Attributes:
        stem: the HR image's stem without an ``_HR``/``_GT`` suffix.
        hr: path of the HR reference.
        results: path of each method's output, in the order the methods were given.
    """

    stem: str
    hr: Path
    results: tuple[Path, ...]


@dataclass(frozen=True)
class Pairing:
    """The outcome of pairing: complete images, and what could not be paired.

    Attributes:
        images: images that every method has a result for, sorted by stem.
        missing: ``(stem, method)`` for each HR image a method has no result for.
        unmatched: ``(method, path)`` for each result file that matches no HR image.
    """

    images: tuple[PairedImage, ...]
    missing: tuple[tuple[str, str], ...]
    unmatched: tuple[tuple[str, Path], ...]


def canonical_hr_stem(stem: str) -> str:
    """Strip ``_HR`` / ``_GT`` style suffixes from an HR file stem
    (:func:`spsr.data.pairing.canonical_reference_stem`)."""
    return canonical_reference_stem(stem)


def match_hr_stem(result_stem: str, hr_stems: list[str]) -> str | None:
    """The HR stem a result file belongs to (:func:`spsr.data.pairing.match_stem`), or None."""
    return match_stem(result_stem, hr_stems)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside a folder (hidden files skipped), sorted by name.

    Args:
        folder: the folder.

    Returns:
        the image paths.

    Raises:
        ConfigError: the folder does not exist or is not a folder.
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and is_image_file(p)
    )


def pair_images(hr_dir: Path, methods: list[tuple[str, Path]]) -> Pairing:
    """Pair every HR image with one output of each method.

    Args:
        hr_dir: folder of HR reference images.
        methods: ``(name, folder)`` per method, in the order they should be keyed.

    Returns:
        the pairing; images missing from any method are left out of ``images`` and listed in
        ``missing``.

    Raises:
        ConfigError: a folder is missing or empty, two HR files share a stem, or a method has two
            files for one HR image (neither named exactly like it).
    """
    hr_files = list_images(hr_dir)
    if not hr_files:
        raise ConfigError(f"{hr_dir}: no images found")
    hr_by_stem: dict[str, Path] = {}
    for path in hr_files:
        stem = canonical_hr_stem(path.stem)
        clash = next((s for s in hr_by_stem if s.casefold() == stem.casefold()), None)
        if clash is not None:
            raise ConfigError(
                f"{hr_dir}: {hr_by_stem[clash].name} and {path.name} have the same stem"
            )
        hr_by_stem[stem] = path
    stems = list(hr_by_stem)

    per_method: list[dict[str, Path]] = []
    unmatched: list[tuple[str, Path]] = []
    for name, folder in methods:
        files = list_images(folder)
        if not files:
            raise ConfigError(f"method {name}: no images found in {folder}")
        found: dict[str, Path] = {}
        for path in files:
            hr_stem = match_hr_stem(path.stem, stems)
            if hr_stem is None:
                unmatched.append((name, path))
                continue
            if hr_stem in found:
                exact = [p for p in (found[hr_stem], path) if p.stem.casefold() == hr_stem.casefold()]
                if len(exact) != 1:
                    raise ConfigError(
                        f"method {name}: {found[hr_stem].name} and {path.name} "
                        f"both match HR image {hr_stem}"
                    )
                found[hr_stem] = exact[0]
                continue
            found[hr_stem] = path
        per_method.append(found)

    images: list[PairedImage] = []
    missing: list[tuple[str, str]] = []
    for stem in sorted(stems, key=str.casefold):
        absent = [
            name for (name, _), found in zip(methods, per_method, strict=True) if stem not in found
        ]
        missing.extend((stem, name) for name in absent)
        if not absent:
            images.append(
                PairedImage(stem, hr_by_stem[stem], tuple(found[stem] for found in per_method))
            )
    return Pairing(tuple(images), tuple(missing), tuple(unmatched))
