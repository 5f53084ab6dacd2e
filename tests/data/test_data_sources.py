"""Expanding SRC arguments: folders recursively, image files, text files listing images."""

from __future__ import annotations

from pathlib import Path

import pytest

from spsr.data.sources import expand_sources
from spsr.errors import ConfigError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_recursive_images_only_sorted_unique(tmp_path: Path) -> None:
    b = _touch(tmp_path / "d" / "b.PNG")
    a = _touch(tmp_path / "d" / "sub" / "a.jpg")
    _touch(tmp_path / "d" / "notes.txt")
    _touch(tmp_path / "d" / ".hidden.png")
    _touch(tmp_path / "d" / ".cache" / "c.png")
    z = _touch(tmp_path / "z.webp")
    (tmp_path / "d" / "sub" / "loop").symlink_to(tmp_path / "d")  # followed once, not forever
    found = expand_sources([z, tmp_path / "d", b])  # b twice: once in the folder, once by name
    assert found.images == sorted([a.resolve(), b.resolve(), z.resolve()], key=str)
    assert found.missing == []


def test_list_file_relative_absolute_folders_and_missing(tmp_path: Path) -> None:
    a = _touch(tmp_path / "imgs" / "a.png")
    b = _touch(tmp_path / "other" / "b.tif")
    c = _touch(tmp_path / "folder" / "deep" / "c.bmp")
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text(f"# training images\n../imgs/a.png\n\n{b}\n../folder\n../imgs/gone.png\n")
    found = expand_sources([listing])
    assert found.images == sorted([a.resolve(), b.resolve(), c.resolve()], key=str)
    assert found.missing == [tmp_path / "lists" / ".." / "imgs" / "gone.png"]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or folder"):
        expand_sources([tmp_path / "nope"])
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigError, match="nor a UTF-8 text file listing images"):
        expand_sources([binary])
    assert expand_sources([_touch(tmp_path / "empty" / "readme.md").parent]).images == []
