"""Pairing HR references with method outputs by stem."""

from __future__ import annotations

from pathlib import Path

import pytest

from spsr.errors import ConfigError
from spsr.user_study.pairing import canonical_hr_stem, match_hr_stem, pair_images


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_canonical_hr_stem_strips_hr_and_gt_suffixes() -> None:
    assert canonical_hr_stem("baboon_HR") == "baboon"
    assert canonical_hr_stem("img_001_GT") == "img_001"
    assert canonical_hr_stem("baboon") == "baboon"
    assert canonical_hr_stem("HR") == "HR"


def test_match_prefers_the_longest_stem_followed_by_a_separator() -> None:
    stems = ["img_1", "img_10", "baboon"]
    assert match_hr_stem("img_10_x4", stems) == "img_10"
    assert match_hr_stem("img_1_x4_SR", stems) == "img_1"
    assert match_hr_stem("Baboon-rlt", stems) == "baboon"
    assert match_hr_stem("baboon", stems) == "baboon"
    assert match_hr_stem("baboonx4", stems) is None
    assert match_hr_stem("img_100", stems) is None


def test_pair_images_handles_suffixes_missing_and_unmatched(tmp_path: Path) -> None:
    _touch(tmp_path / "hr", "baby_HR.png", "bird.png", "img_1.png", "img_10.png", "notes.txt")
    _touch(
        tmp_path / "a",
        "baby_x4.png",
        "bird_x4.png",
        "img_1_x4.png",
        "img_10_x4.png",
        "zebra_x4.png",
    )
    _touch(tmp_path / "b", "baby_SR.jpg", "img_1_SR.png", "img_10_SR.png")
    pairing = pair_images(tmp_path / "hr", [("A", tmp_path / "a"), ("B", tmp_path / "b")])
    assert [img.stem for img in pairing.images] == ["baby", "img_1", "img_10"]
    assert [p.name for p in pairing.images[2].results] == ["img_10_x4.png", "img_10_SR.png"]
    assert pairing.images[0].hr.name == "baby_HR.png"
    assert pairing.missing == (("bird", "B"),)
    assert [(m, p.name) for m, p in pairing.unmatched] == [("A", "zebra_x4.png")]


def test_two_outputs_for_one_image_is_an_error_unless_one_is_exact(tmp_path: Path) -> None:
    _touch(tmp_path / "hr", "bird.png")
    _touch(tmp_path / "a", "bird.png", "bird_x4.png")
    _touch(tmp_path / "b", "bird_x4.png", "bird_x8.png")
    pairing = pair_images(tmp_path / "hr", [("A", tmp_path / "a"), ("A2", tmp_path / "a")])
    assert pairing.images[0].results[0].name == "bird.png"
    with pytest.raises(ConfigError, match="both match HR image bird"):
        pair_images(tmp_path / "hr", [("A", tmp_path / "a"), ("B", tmp_path / "b")])


def test_missing_or_empty_folders_are_errors(tmp_path: Path) -> None:
    _touch(tmp_path / "hr", "bird.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a folder"):
        pair_images(tmp_path / "nope", [("A", tmp_path / "hr")])
    with pytest.raises(ConfigError, match="no images found"):
        pair_images(tmp_path / "hr", [("A", tmp_path / "empty")])
    _touch(tmp_path / "hr", "bird_GT.png")
    with pytest.raises(ConfigError, match="same stem"):
        pair_images(tmp_path / "hr", [("A", tmp_path / "hr")])
