"""Building the static study folder and its key."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from typer.testing import CliRunner

from spsr.data.image_io import read_image, write_image
from spsr.errors import ConfigError
from spsr.user_study import CropBox, build_study, load_key, parse_crop
from spsr.user_study.crops import default_crop_size, most_structured_window
from spsr_cli.cmd_user_study_sheet import app

METHODS = ("SecretMethodOne", "SecretMethodTwo", "SecretMethodThree")
STEMS = ("alpha", "beta", "gamma")


def _make_inputs(root: Path, size: tuple[int, int] = (36, 44)) -> dict[str, dict[str, np.ndarray]]:
    """HR images and three methods' outputs (distinct pixels per method); returns the arrays."""
    rng = np.random.default_rng(0)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for stem in STEMS:
        hr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        write_image(root / "hr" / f"{stem}.png", hr)
        arrays[stem] = {"hr": hr}
        for index, method in enumerate(METHODS):
            out = np.clip(hr.astype(int) + 20 * (index + 1), 0, 255).astype(np.uint8)
            write_image(root / method / f"{stem}_x4_{method}.png", out)
            arrays[stem][method] = out
    return arrays


def _page_data(folder: Path) -> dict:
    html = (folder / "index.html").read_text(encoding="utf-8")
    match = re.search(
        r'<script id="study-data" type="application/json">(.*?)</script>', html, re.DOTALL
    )
    assert match is not None
    return json.loads(match.group(1))


def _methods(root: Path) -> list[tuple[str, Path]]:
    return [(m, root / m) for m in METHODS]


def test_build_writes_blind_page_images_in_slot_order_and_a_key_outside(tmp_path: Path) -> None:
    arrays = _make_inputs(tmp_path)
    built = build_study(
        tmp_path / "hr",
        _methods(tmp_path),
        tmp_path / "site",
        seed=11,
        crop="auto",
        crop_size=12,
        slot_rng=random.Random(1),
        title="</script><b>Study</b>",
    )
    assert built.key_path == tmp_path / "site-key.json" and built.key_path.is_file()
    key = load_key(built.key_path)
    assert key == built.key
    assert (
        key.methods == METHODS
        and key.seed == 11
        and [img.stem for img in key.images] == list(STEMS)
    )

    # Nothing in the served folder names a method or a source file.
    for path in built.folder.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert all(m.encode() not in content for m in METHODS), path
            assert b"_x4_" not in content, path
            assert not any(m in str(path) for m in METHODS)
    data = _page_data(built.folder)
    assert data["title"] == "</script><b>Study</b>" and data["k"] == 3 and data["seed"] == 11
    assert data["study_id"] == key.study_id and len(data["images"]) == 3

    for index, (stem, entry) in enumerate(zip(STEMS, data["images"], strict=True)):
        assert np.array_equal(read_image(built.folder / entry["ref"]).pixels, arrays[stem]["hr"])
        box = CropBox(*key.images[index].crop)  # type: ignore[misc]
        assert (box.w, box.h) == (12, 12)
        for slot, src in enumerate(entry["results"]):
            method = METHODS[key.method_of_slot(index, slot)]
            shown = read_image(built.folder / src).pixels
            assert np.array_equal(shown, arrays[stem][method])
            crop = read_image(built.folder / entry["crops"][slot]).pixels
            assert np.array_equal(
                crop, arrays[stem][method][box.y : box.y + box.h, box.x : box.x + box.w]
            )
    # The secret slot order differs between images (so the page's order reveals nothing).
    assert len({img.slots for img in key.images}) > 1


def test_build_converts_16bit_gray_and_tiff_inputs_to_8bit_rgb_png(tmp_path: Path) -> None:
    gray16 = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40, 1) * 50
    write_image(tmp_path / "hr" / "pic.png", gray16)
    write_image(tmp_path / "m1" / "pic.tif", gray16)
    write_image(tmp_path / "m2" / "pic_SR.png", np.zeros((30, 40, 3), np.uint8))
    built = build_study(
        tmp_path / "hr", [("a", tmp_path / "m1"), ("b", tmp_path / "m2")], tmp_path / "s", seed=1
    )
    ref = read_image(built.folder / "images/0000/ref.png").pixels
    assert ref.dtype == np.uint8 and ref.shape == (30, 40, 3)
    expected = ((gray16[..., 0].astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    assert np.array_equal(ref[..., 1], expected)
    assert sorted(p.name for p in (built.folder / "images/0000").iterdir()) == [
        "0.png",
        "1.png",
        "ref.png",
    ]


def test_fixed_crop_must_fit_and_parse_crop_validates(tmp_path: Path) -> None:
    _make_inputs(tmp_path)
    built = build_study(
        tmp_path / "hr", _methods(tmp_path), tmp_path / "a", seed=2, crop=parse_crop("4, 5, 10, 8")
    )
    assert all(img.crop == (4, 5, 10, 8) for img in built.key.images)
    with pytest.raises(ConfigError, match="does not fit image alpha"):
        build_study(
            tmp_path / "hr", _methods(tmp_path), tmp_path / "b", crop=CropBox(40, 0, 10, 10)
        )
    assert not (tmp_path / "b").exists() and not (tmp_path / "b-key.json").exists()
    assert not list(tmp_path.glob(".b.*"))  # the temporary folder is gone
    for bad in ("1,2,3", "a,b,c,d", "1,2,0,4", "-1,2,3,4"):
        with pytest.raises(ConfigError):
            parse_crop(bad)


def test_auto_crop_finds_the_structured_region() -> None:
    image = np.full((64, 80, 3), 128, np.uint8)
    checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
    image[30:46, 50:66] = checker[..., None]
    box = most_structured_window(image, 16)
    assert abs(box.x - 50) <= 1 and abs(box.y - 30) <= 1 and (box.w, box.h) == (16, 16)
    assert (
        default_crop_size(64, 80) == 32
        and default_crop_size(2000, 3000) == 128
        and default_crop_size(20, 30) == 20
    )


def test_results_at_another_scale_are_rejected(tmp_path: Path) -> None:
    _make_inputs(tmp_path)
    write_image(tmp_path / "lr" / "alpha.png", np.zeros((9, 11, 3), np.uint8))
    for stem in ("beta", "gamma"):
        write_image(tmp_path / "lr" / f"{stem}.png", np.zeros((36, 44, 3), np.uint8))
    with pytest.raises(
        ConfigError, match=r"alpha.png is 11x9 but its HR reference alpha.png is 44x36"
    ):
        build_study(
            tmp_path / "hr", [("a", tmp_path / METHODS[0]), ("lr", tmp_path / "lr")], tmp_path / "s"
        )


def test_a_result_a_few_pixels_smaller_is_accepted(tmp_path: Path) -> None:
    _make_inputs(tmp_path)
    for stem in STEMS:
        write_image(tmp_path / "cropped" / f"{stem}.png", np.zeros((32, 44, 3), np.uint8))
    built = build_study(
        tmp_path / "hr",
        [("a", tmp_path / METHODS[0]), ("c", tmp_path / "cropped")],
        tmp_path / "s",
        crop="auto",
    )
    assert all(img.crop[1] + img.crop[3] <= 32 for img in built.key.images)  # type: ignore[index]


def test_incomplete_images_error_or_are_skipped_and_max_images(tmp_path: Path) -> None:
    _make_inputs(tmp_path)
    (tmp_path / METHODS[1] / f"beta_x4_{METHODS[1]}.png").unlink()
    with pytest.raises(ConfigError, match=rf"no output for: beta \({METHODS[1]}\)"):
        build_study(tmp_path / "hr", _methods(tmp_path), tmp_path / "s")
    built = build_study(
        tmp_path / "hr",
        _methods(tmp_path),
        tmp_path / "s",
        skip_incomplete=True,
        max_images=1,
        seed=4,
    )
    assert len(built.key.images) == 1 and built.key.images[0].stem in ("alpha", "gamma")
    assert any("beta" in w for w in built.warnings)


def test_existing_folder_and_key_need_overwrite_and_key_must_be_outside(tmp_path: Path) -> None:
    _make_inputs(tmp_path)
    first = build_study(tmp_path / "hr", _methods(tmp_path), tmp_path / "s", seed=1)
    with pytest.raises(ConfigError, match="already exists"):
        build_study(tmp_path / "hr", _methods(tmp_path), tmp_path / "s", seed=2)
    assert load_key(first.key_path).study_id == first.key.study_id  # untouched
    second = build_study(
        tmp_path / "hr", _methods(tmp_path), tmp_path / "s", seed=2, overwrite=True
    )
    assert (
        load_key(second.key_path).seed == 2
        and _page_data(second.folder)["study_id"] == second.key.study_id
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".s", "s"))) == [
        "s",
        "s-key.json",
    ]
    with pytest.raises(ConfigError, match="must not be inside the study folder"):
        build_study(
            tmp_path / "hr",
            _methods(tmp_path),
            tmp_path / "t",
            key_path=tmp_path / "t" / "key.json",
        )
    with pytest.raises(ConfigError, match="at least two methods"):
        build_study(tmp_path / "hr", _methods(tmp_path)[:1], tmp_path / "u")
    with pytest.raises(ConfigError, match="seed"):
        build_study(tmp_path / "hr", _methods(tmp_path), tmp_path / "u", seed=2**32)


def test_cli_build_reports_and_fails_with_one_line(tmp_path: Path) -> None:
    _make_inputs(tmp_path)
    runner = CliRunner()
    args = [
        "build",
        "--hr",
        str(tmp_path / "hr"),
        "-o",
        str(tmp_path / "site"),
        "--seed",
        "5",
        "--crop",
        "auto",
        "-q",
    ]
    for method in METHODS:
        args += ["--method", f"{method}={tmp_path / method}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 images × 3 methods" in flat(result.stdout) and "site-key.json" in flat(result.stdout)
    assert (tmp_path / "site" / "index.html").is_file()

    again = runner.invoke(app, args)
    assert (
        again.exit_code == 1
        and "already exists" in flat(again.output)
        and "Traceback" not in again.output
    )
    bad_method = runner.invoke(
        app,
        [
            "build",
            "--hr",
            str(tmp_path / "hr"),
            "-o",
            str(tmp_path / "x"),
            "--method",
            "nodir",
            "--method",
            f"b={tmp_path / METHODS[0]}",
        ],
    )
    assert bad_method.exit_code == 1 and "expected NAME=DIR" in bad_method.output
    bad_crop = runner.invoke(app, [*args, "--crop", "1,2", "--force"])
    assert bad_crop.exit_code == 1 and "x,y,w,h" in bad_crop.output
