"""``spsr upscale`` and ``spsr gradmap`` end to end on a tiny random model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from PIL import Image
from typer.testing import CliRunner

from spsr.data.image_io import read_image, write_image
from spsr.infer import plan_tiles
from spsr_cli.app import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture()
def photo(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[100:124, 180:212])  # 24×32 RGB


def test_version_and_help() -> None:
    code, out = _run("--version")
    assert code == 0 and out.startswith("spsr ")
    code, out = _run("upscale", "--help")
    assert code == 0 and "Usage: spsr upscale" in flat(out)
    # Which options the help lists, read from the command itself: the rendered help is fitted to
    # the terminal's width (at 40 columns rich shortens long option names).
    import typer.main

    options = {o for p in typer.main.get_command(app).commands["upscale"].params for o in p.opts}
    assert {"--tile", "--outscale", "--json"} <= options


def test_bit_depth_gray_and_formats(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "rgb8.png", photo)
    write_image(src / "rgb16.png", photo.astype(np.uint16) * 257)
    write_image(src / "tif16.tif", photo.astype(np.uint16) * 257)
    write_image(src / "gray.png", photo[:, :, :1])
    write_image(src / "pic.jpg", photo)
    write_image(src / "pic.webp", photo)
    write_image(src / "pic.bmp", photo)
    code, out = _run(
        "upscale", src, tmp_path / "out", "--weights", tiny_spsr_weights, "--tile", "16", "--tile-overlap", "4"
    )
    assert code == 0, out
    res = {p.name: read_image(p) for p in (tmp_path / "out").iterdir()}
    assert res["rgb8.png"].pixels.dtype == np.uint8 and res["rgb8.png"].pixels.shape == (96, 128, 3)
    assert res["rgb16.png"].pixels.dtype == np.uint16 and res["rgb16.png"].pixels.shape == (96, 128, 3)
    assert res["tif16.tif"].pixels.dtype == np.uint16
    assert res["gray.png"].pixels.shape == (96, 128, 1)
    assert {"pic.jpg", "pic.webp", "pic.bmp"} <= set(res)
    # 16-bit output is the same picture at finer precision, not a rescaled one.
    a = res["rgb8.png"].pixels.astype(np.float64) / 255
    b = res["rgb16.png"].pixels.astype(np.float64) / 65535
    assert np.abs(a - b).max() < 2 / 255


def test_dark_16bit_image_is_still_16bit(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    dark = np.full((16, 16, 3), 200, np.uint16)  # max value < 256: decided by dtype, not pixel values
    write_image(tmp_path / "dark.png", dark)
    code, out = _run("upscale", tmp_path / "dark.png", tmp_path / "dark_x4.png", "--weights", tiny_spsr_weights)
    assert code == 0, out
    assert read_image(tmp_path / "dark_x4.png").pixels.dtype == np.uint16


def test_alpha_has_no_dark_fringe(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    # A red disk on fully transparent *black*: the upscaled visible edge must stay red.
    from spsr.infer import load_model
    from spsr.infer.tiled import TiledUpscaler
    from spsr.infer.upscale import upscale_loaded

    yy, xx = np.mgrid[:32, :32]
    inside = (yy - 16) ** 2 + (xx - 16) ** 2 < 100
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[inside] = (220, 30, 30, 255)
    write_image(tmp_path / "disk.png", rgba)
    loaded = load_model(tiny_spsr_weights)
    img = read_image(tmp_path / "disk.png")
    out = upscale_loaded(img, TiledUpscaler(loaded.model, 4, tile=0, precision="fp32"))
    assert out.shape == (128, 128, 4)
    # With the transparent-colour fill the model sees a flat red field, so the visible edge
    # keeps the colour of the flat interior; without it, black bleeds into the edge.
    visible = out[:, :, 3] > 25
    interior = out[64, 64, :3].astype(int)
    assert np.abs(out[visible][:, :3].astype(int) - interior).max() <= 12
    code, _ = _run("upscale", tmp_path / "disk.png", tmp_path / "o", "--weights", tiny_spsr_weights)
    assert code == 0 and read_image(tmp_path / "o" / "disk.png").alpha is not None


def test_exif_orientation_icc_and_non_ascii_names(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    im = Image.fromarray(photo)  # 32 wide, 24 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    icc = b"\x00\x00\x00\x10fake-icc-profile"
    name = tmp_path / "in" / "Ŝtraße 東京.jpg"
    name.parent.mkdir()
    im.save(name, exif=exif.tobytes(), icc_profile=icc, quality=95)
    code, out = _run("upscale", name.parent, tmp_path / "out", "--weights", tiny_spsr_weights, "--ext", "png")
    assert code == 0, out
    result = read_image(tmp_path / "out" / "Ŝtraße 東京.png")
    assert result.pixels.shape[:2] == (128, 96)  # displayed upright: width and height swapped, ×4
    assert result.icc_profile == icc


def test_resume_skip_overwrite_and_bad_files(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.png", photo)
    write_image(src / "b.png", photo)
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "out"
    code, text = _run("upscale", src, out, "--weights", tiny_spsr_weights)
    assert code == 1
    flat = " ".join(text.split())
    assert "1 file(s) could not be upscaled" in flat and "broken.png" in flat
    assert "skipped 1 non-image file(s): notes.txt" in flat and "0x" not in flat
    assert (out / "a.png").exists() and (out / "b.png").exists()
    assert not list(out.glob(".*tmp"))
    stamp = (out / "a.png").stat().st_mtime_ns
    (src / "notes.txt").unlink()
    (src / "broken.png").unlink()
    code, text = _run("upscale", src, out, "--weights", tiny_spsr_weights)
    assert code == 0 and "2 skipped as existing" in " ".join(text.split())
    assert (out / "a.png").stat().st_mtime_ns == stamp
    code, text = _run("upscale", src, out, "--weights", tiny_spsr_weights, "--overwrite")
    assert code == 0 and (out / "a.png").stat().st_mtime_ns != stamp


def test_outscale_suffix_glob_and_errors(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    write_image(tmp_path / "p1.png", photo)
    write_image(tmp_path / "p2.png", photo)
    code, out = _run("upscale", str(tmp_path / "p*.png"), tmp_path / "o", "--weights", tiny_spsr_weights,
                     "--outscale", "2", "--suffix", "_x2")
    assert code == 0, out
    assert read_image(tmp_path / "o" / "p1_x2.png").pixels.shape == (48, 64, 3)
    code, out = _run("upscale", tmp_path / "missing", tmp_path / "o", "--weights", tiny_spsr_weights)
    assert code == 1 and "no such file" in out and "Traceback" not in out
    code, out = _run("upscale", tmp_path / "p1.png", tmp_path / "o", "--weights", tmp_path / "nope.pth")
    assert code == 1 and "no such weights" in out
    code, out = _run(
        "upscale", tmp_path / "p1.png", tmp_path / "o", "--weights", tiny_spsr_weights,
        "--precision", "fp16", "--device", "cpu",
    )
    assert code == 1 and "fp16 runs only on CUDA" in out


def test_samples_with_the_default_model(tmp_path: Path) -> None:
    code, out = _run("upscale", "--samples", tmp_path / "out")
    assert code == 0, out
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert read_image(tmp_path / "out" / "astronaut.png").pixels.shape == (512, 512, 3)


def test_gradmap_pictures_and_panels(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    write_image(tmp_path / "lr" / "img.png", photo)
    write_image(tmp_path / "hr" / "img.png", np.repeat(np.repeat(photo, 4, 0), 4, 1))
    code, out = _run("gradmap", tmp_path / "lr", tmp_path / "g")
    assert code == 0, out
    pic = read_image(tmp_path / "g" / "img_grad.png").pixels
    assert pic.shape == (24, 32, 1) and pic.max() > 100
    code, out = _run(
        "gradmap", tmp_path / "lr", tmp_path / "p", "--weights", tiny_spsr_weights, "--hr", tmp_path / "hr"
    )
    assert code == 0, out
    panel = read_image(tmp_path / "p" / "img_panel.png").pixels
    assert panel.shape == (96 + 20, 4 * 128, 3)
    code, out = _run("gradmap", tmp_path / "lr", tmp_path / "q", "--padding", "3")
    assert code == 1 and "--padding" in out


def test_json_has_one_record_per_file(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    src = tmp_path / "in"
    write_image(src / "a.png", photo)
    write_image(src / "b.png", photo[:16, :20])
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    write_image(out / "b.png", photo)  # an existing output: skipped
    result = runner.invoke(app, ["upscale", str(src), str(out), "--weights", str(tiny_spsr_weights), "--json"])
    assert result.exit_code == 1  # one file failed
    records = {Path(r["input"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {"a.png", "b.png", "broken.png"}
    a = records["a.png"]
    assert a["status"] == "done" and a["input_size"] == [32, 24] and a["output_size"] == [128, 96]
    assert a["output"] == str(out / "a.png") and a["seconds"] > 0
    assert read_image(out / "a.png").pixels.shape == (96, 128, 3)
    assert records["b.png"]["status"] == "skipped" and records["b.png"]["output_size"] is None
    assert records["broken.png"]["status"] == "failed" and records["broken.png"]["reason"]


def test_plain_tile_progress_and_throughput(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spsr_cli._common as cmd

    monkeypatch.setattr(cmd, "TILE_PROGRESS_AFTER", 0.0)  # as if every image were slow
    monkeypatch.setattr(cmd, "PLAIN_TILE_EVERY", 0.0)
    write_image(tmp_path / "p.png", photo)
    result = runner.invoke(app, ["upscale", str(tmp_path / "p.png"), str(tmp_path / "o"),
                                 "--weights", str(tiny_spsr_weights), "--tile", "16", "--tile-overlap", "4",
                                 "--batch", "1"])
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stderr.splitlines()]
    tile_lines = [line for line in lines if line.startswith("p.png: tiles")]
    total = len(plan_tiles(24, 32, 16, 4))
    assert [line.split()[2].split(",")[0] for line in tile_lines] == [f"{i}/{total}" for i in range(total)]
    assert all("tiles/s" in line and "ETA" in line for line in tile_lines[1:])
    # 128×96 output pixels: a rate with an SI prefix that keeps three digits (kP/s here, MP/s on a
    # fast machine, plain P/s past 12 s on a very busy one), never "0.00 MP/s"
    assert any(line.startswith("[1/1]") and re.search(r"\(\d+\.\d s, [1-9][\d.]* [kM]?P/s\)", line)
               for line in lines), lines
    assert re.search(r"\([1-9][\d.]* [kM]?P/s output\)", flat(result.stdout))
