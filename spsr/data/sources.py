"""Expanding the SRC arguments of ``spsr prepare-data`` into a sorted list of image files.

A SRC is a folder (searched recursively for image files), an image file, or a text file listing
images (one path per line, relative to the text file's folder; blank lines and ``#`` comments
ignored; a listed folder is expanded like a folder argument). The result is sorted and free of
duplicates, so the same arguments always give the same list in the same order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from spsr.data.image_io import is_image_file
from spsr.errors import ConfigError


@dataclass
class SourceList:
    """The images found for a set of SRC arguments.

    Attributes:
        images: existing image files, absolute, sorted by their path string, unique.
        missing: paths listed in text files that do not exist (reported and skipped).
    """

    images: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


def _images_in_folder(folder: Path) -> list[Path]:
    found: list[Path] = []
    visited: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a symlink loop, or a folder reached twice
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(
            Path(root) / name
            for name in files
            if not name.startswith(".") and is_image_file(Path(name))
        )
    return found


def _read_list_file(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not an image (by its extension) nor a UTF-8 text file listing images"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not an image (by its extension) nor a text file listing images")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def expand_sources(args: list[Path] | tuple[Path, ...]) -> SourceList:
    """Expand folders, image files and list files into a sorted, unique list of images.

    Args:
        args: the SRC arguments as given by the user.

    Returns:
        A ``SourceList``; ``images`` may be empty (the caller decides how to report that).

    Raises:
        ConfigError: a SRC argument that does not exist or is neither a folder, an image nor a
            text file.
    """
    result = SourceList()
    found: list[Path] = []
    for arg in args:
        arg = Path(arg)
        if not arg.exists():
            raise ConfigError(f"{arg}: no such file or folder")
        if arg.is_dir():
            found.extend(_images_in_folder(arg))
        elif is_image_file(arg):
            found.append(arg)
        else:
            for line in _read_list_file(arg):
                listed = Path(line).expanduser()
                if not listed.is_absolute():
                    listed = arg.parent / listed
                if listed.is_dir():
                    found.extend(_images_in_folder(listed))
                elif listed.exists():
                    found.append(listed)
                else:
                    result.missing.append(listed)
    unique = {str(p.resolve()): p.resolve() for p in found}
    result.images = [unique[key] for key in sorted(unique)]
    return result
