"""Bad input never ends in a traceback, a wrong picture or a lost file.

One test per failure class: the malformed inputs are built here, tiny, and nothing giant is
ever allocated (decompression bombs are crafted headers, stopped by the pixel limit before any
decoder runs; huge outputs are stopped by the memory estimate before any buffer exists).
"""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from _hang_guard import HANG_GUARD_S
from _train_fixtures import TinyPairs, make_store, one_thread, tiny_config  # noqa: F401
from PIL import Image
from typer.testing import CliRunner

from spsr.data.image_io import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, read_image, write_image
from spsr.errors import (
    CheckpointError,
    ConfigError,
    ImageReadError,
    ImageTooLargeError,
    user_message,
)
from spsr_cli.app import app

RUNNER = CliRunner()


def _run(*args: object) -> tuple[int, str]:
    result = RUNNER.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def _chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))


def png_bomb(path: Path, side: int = 20000, bit_depth: int = 16) -> Path:
    """A few hundred bytes whose header claims ``side × side`` RGB (what a decompression bomb says)."""
    ihdr = struct.pack(">IIBBBBB", side, side, bit_depth, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))
    return path


def tiff_bomb(path: Path, side: int = 30000) -> Path:
    """A small deflate TIFF whose ImageWidth/ImageLength tags are patched to ``side``."""
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((4, 4, 3), np.uint8), compression="zlib")
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        for name in ("ImageWidth", "ImageLength"):
            tag = tif.pages.first.tags[name]
            fmt = "<H" if tag.dtype == 3 else "<I"
            data[tag.valueoffset:tag.valueoffset + struct.calcsize(fmt)] = struct.pack(fmt, side)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture()
def photo(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[100:116, 180:200])  # 16×20 RGB


# ------------------------------------------------------------------------- decompression bombs


def test_every_reader_checks_the_pixel_limit_from_the_header(tmp_path: Path, monkeypatch) -> None:
    for path in (png_bomb(tmp_path / "b16.png"), png_bomb(tmp_path / "b8.png", bit_depth=8),
                 tiff_bomb(tmp_path / "b.tif")):
        with pytest.raises(ImageTooLargeError, match=MAX_PIXELS_ENV) as info:
            read_image(path)
        assert f"{DEFAULT_MAX_PIXELS:,}" in str(info.value)
    # A real image of 20×16 = 320 pixels, for each decoder: refused under a limit of 300,
    # read as usual at 320 or with the limit off (0).
    img = np.zeros((16, 20, 3), np.uint8)
    files = [tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "a.bmp", tmp_path / "a.webp"]
    for f in files:
        write_image(f, img)
    write_image(tmp_path / "a16.png", img.astype(np.uint16))
    write_image(tmp_path / "a16.tif", img.astype(np.uint16))
    files += [tmp_path / "a16.png", tmp_path / "a16.tif"]
    for value, ok in (("300", False), ("320", True), ("0", True)):
        monkeypatch.setenv(MAX_PIXELS_ENV, value)
        for f in files:
            if ok:
                assert read_image(f).pixels.shape[:2] == (16, 20)
            else:
                with pytest.raises(ImageTooLargeError, match=f"{MAX_PIXELS_ENV}=320"):
                    read_image(f)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ConfigError, match=MAX_PIXELS_ENV):
        read_image(files[0])


def test_a_bomb_in_a_folder_is_reported_and_the_rest_is_upscaled(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path
) -> None:
    src = tmp_path / "in"
    png_bomb(src / "a_bomb.png")
    tiff_bomb(src / "b_bomb.tif")
    write_image(src / "c_good.png", photo)
    code, out = _run("upscale", src, tmp_path / "out", "--weights", tiny_spsr_weights)
    assert code == 1 and "Traceback" not in out
    assert "2 file(s) could not be upscaled" in out and MAX_PIXELS_ENV in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c_good.png"]


def test_bombs_in_gradmap_prepare_data_and_eval_are_one_line(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path
) -> None:
    bomb = png_bomb(tmp_path / "in" / "bomb.png")
    write_image(tmp_path / "in" / "good.png", np.repeat(np.repeat(photo, 4, 0), 4, 1))
    code, out = _run("gradmap", bomb, tmp_path / "g.png")
    assert code == 1 and out.startswith("error:") and MAX_PIXELS_ENV in out and not (tmp_path / "g.png").exists()
    code, out = _run("gradmap", tmp_path / "in", tmp_path / "g")
    assert code == 1 and (tmp_path / "g" / "good_grad.png").exists() and MAX_PIXELS_ENV in out

    code, out = _run("prepare-data", tmp_path / "in", "-o", tmp_path / "s.h5", "--patch", "32", "-j", "0", "--json")
    assert code == 0 and (tmp_path / "s.h5").exists()
    assert "bomb.png" in out and "over the limit" in out

    code, out = _run("eval", "--hr", tmp_path / "in", tmp_path / "in", "--metrics", "psnr")
    assert code == 1 and "Traceback" not in out and MAX_PIXELS_ENV in out


def test_pretext_training_folders_skip_images_over_the_limit(tmp_path: Path, monkeypatch) -> None:
    from spsr.nse.data import NSECropDataset

    write_image(tmp_path / "big.png", np.zeros((40, 40, 3), np.uint8))
    write_image(tmp_path / "ok.png", np.zeros((20, 20, 3), np.uint8))
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    data = NSECropDataset(tmp_path, crop=16)
    assert [p.name for p in data.skipped] == ["big.png"] and len(data) >= 1


# ------------------------------------------------------------------ outputs that cannot fit


def test_huge_outscale_is_refused_before_allocating(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    write_image(tmp_path / "p.png", photo)
    code, out = _run("upscale", tmp_path / "p.png", tmp_path / "o.png", "--weights", tiny_spsr_weights,
                     "--outscale", "100000")
    assert code == 1 and "GiB of memory" in out and "smaller --outscale" in out
    assert not (tmp_path / "o.png").exists()


def test_eval_of_an_hr_image_smaller_than_the_scale(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    write_image(tmp_path / "hr" / "tiny.png", np.zeros((3, 3, 3), np.uint8))
    code, out = _run("eval", "--weights", tiny_spsr_weights, tmp_path / "hr", "--metrics", "psnr")
    assert code == 1 and "smaller than the scale x4" in out and "Traceback" not in out


# ------------------------------------------------------------------------- animated images


def test_animated_gif_and_apng_are_refused_not_reduced_to_a_frame(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue", "green")]
    (tmp_path / "in").mkdir()
    for name in ("a.gif", "b.png", "c.webp"):  # a.gif and a.png would both be written as a.png
        frames[0].save(tmp_path / "in" / name, save_all=True, append_images=frames[1:])
        with pytest.raises(ImageReadError, match="animated image with 3 frames"):
            read_image(tmp_path / "in" / name)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "in" / "still.gif")  # one frame: fine
    # A camera's multi-picture JPEG (a preview or depth map after the photo) is its primary picture.
    frames[0].resize((12, 10)).save(tmp_path / "cam.jpg", format="MPO", save_all=True, append_images=frames[1:2])
    assert read_image(tmp_path / "cam.jpg").pixels.shape == (10, 12, 3)
    code, out = _run("upscale", tmp_path / "in", tmp_path / "out", "--weights", tiny_spsr_weights)
    assert code == 1 and "3 file(s) could not be upscaled" in out and "animated" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["still.png"]  # GIF is read, not written


# ------------------------------------------------------------------------------ files at risk


def test_suffix_cannot_leave_the_output_folder(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    write_image(tmp_path / "in" / "a.png", photo)
    for bad in ("/../../escaped", "_x4/..", "..", "a\\b"):
        code, out = _run("upscale", tmp_path / "in", tmp_path / "out", "--weights", tiny_spsr_weights, "--suffix", bad)
        assert code == 1 and "--suffix" in out and "no path separators" in out
        code, out = _run("gradmap", tmp_path / "in", tmp_path / "g", "--suffix", bad)
        assert code == 1 and "--suffix" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_an_input_is_never_replaced(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    a = tmp_path / "a.png"
    write_image(a, photo)
    before = a.read_bytes()
    for cmd in (["upscale", a, a, "--weights", tiny_spsr_weights, "--overwrite"], ["gradmap", a, a, "--overwrite"],
                ["upscale", a, tmp_path / "." / "a.png", "--weights", tiny_spsr_weights]):
        code, out = _run(*cmd)
        assert code == 1 and "is the input itself" in out
    assert a.read_bytes() == before


def test_upscaling_into_the_input_folder_twice(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    d = tmp_path / "same"
    write_image(d / "a.png", photo)
    original = (d / "a.png").read_bytes()
    # No --suffix: outputs get the model's scale as suffix instead of replacing the inputs.
    code, out = _run("upscale", d, d, "--weights", tiny_spsr_weights, "--overwrite")
    assert code == 0 and "suffix _x4" in out
    assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_x4.png"] and (d / "a.png").read_bytes() == original
    # A second run (with or without the explicit suffix) does not upscale its own outputs.
    for extra in ((), ("--suffix", "_x4"), ("--suffix", "_x4", "--overwrite")):
        code, out = _run("upscale", d, d, "--weights", tiny_spsr_weights, *extra)
        assert code == 0 and "outputs of an earlier run" in out and "a_x4.png" in out
        assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_x4.png"]
    assert read_image(d / "a_x4.png").pixels.shape == (64, 80, 3)
    # An output folder inside the input folder: its files are not inputs of the next run.
    code, _ = _run("upscale", d, d / "up", "--weights", tiny_spsr_weights, "-r", "--suffix", "_s")
    code, out = _run("upscale", d, d / "up", "--weights", tiny_spsr_weights, "-r", "--suffix", "_s")
    assert code == 0 and not list((d / "up").rglob("*_s_s*")) and not (d / "up" / "up").exists()


def test_a_folder_in_the_way_and_an_output_that_is_a_file(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path
) -> None:
    write_image(tmp_path / "in" / "a.png", photo)
    write_image(tmp_path / "in" / "b.png", photo)
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    code, out = _run("upscale", tmp_path / "in", tmp_path / "out", "--weights", tiny_spsr_weights)
    assert code == 1 and "is a folder" in out and "already done" in out and "0 already done" in out
    assert (tmp_path / "out" / "b.png").is_file() and (tmp_path / "out" / "a.png").is_dir()
    (tmp_path / "file").write_text("x")
    code, out = _run("upscale", tmp_path / "in", tmp_path / "file", "--weights", tiny_spsr_weights)
    assert code == 1 and out.count("exists and is not a folder") == 1
    assert (tmp_path / "file").read_text() == "x"


def test_gradmap_name_clash_fails_up_front_naming_both_and_the_option_that_separates_them(
    tmp_path: Path, photo: np.ndarray
) -> None:
    write_image(tmp_path / "in" / "a.png", photo)
    write_image(tmp_path / "in" / "a.jpg", photo)
    write_image(tmp_path / "in" / "b.png", photo)
    code, out = _run("gradmap", tmp_path / "in", tmp_path / "g")
    assert code == 1 and out.count("error:") == 1 and "Traceback" not in out
    assert (f"output name conflict: {tmp_path / 'in' / 'a.jpg'} and {tmp_path / 'in' / 'a.png'} would both "
            f"be written to {tmp_path / 'g' / 'a_grad.png'}; pass --name-with-ext") in out
    assert not (tmp_path / "g").exists()  # nothing written, nothing dropped
    code, out = _run("gradmap", tmp_path / "in", tmp_path / "g", "--name-with-ext")
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == [
        "a_jpg_grad.png", "a_png_grad.png", "b_png_grad.png"]
    code, out = _run("gradmap", tmp_path / "in" / "a.jpg", tmp_path / "g", "--suffix", "_jpg", "--ext", "tif")
    assert code == 0 and read_image(tmp_path / "g" / "a_jpg.tif").pixels.shape == (16, 20, 1)


def test_upscale_name_clash_with_ext_advises_leaving_it_out(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path
) -> None:
    write_image(tmp_path / "in" / "a.png", photo)
    write_image(tmp_path / "in" / "a.jpg", photo)
    code, out = _run("upscale", tmp_path / "in", tmp_path / "up", "--weights", tiny_spsr_weights,
                     "--ext", "png")
    assert code == 1 and "output name conflict" in out and "leave out --ext" in out
    assert "--name-with-ext" in out and not (tmp_path / "up").exists()
    code, out = _run("upscale", tmp_path / "in", tmp_path / "up", "--weights", tiny_spsr_weights)
    assert code == 0 and sorted(p.name for p in (tmp_path / "up").iterdir()) == ["a.jpg", "a.png"]


def test_dangling_links_are_listed_and_make_the_exit_non_zero(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path
) -> None:
    write_image(tmp_path / "in" / "a.png", photo)
    (tmp_path / "in" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    code, out = _run("gradmap", tmp_path / "in", tmp_path / "g")
    assert code == 1 and f"{tmp_path / 'in' / 'gone.png'}: dangling symbolic link" in out
    assert "1 failed" in out and (tmp_path / "g" / "a_grad.png").is_file()
    code, out = _run("upscale", tmp_path / "in", tmp_path / "up", "--weights", tiny_spsr_weights)
    assert code == 1 and "dangling symbolic link" in out and "1 failed" in out
    assert (tmp_path / "up" / "a.png").is_file()


def test_folders_take_images_only_and_a_named_non_image_is_one_clean_line(
    tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path
) -> None:
    write_image(tmp_path / "in" / "a.png", photo)
    (tmp_path / "in" / "notes.txt").write_text("hello")
    (tmp_path / "in" / "data.csv").write_text("1,2")
    code, out = _run("upscale", tmp_path / "in", tmp_path / "out", "--weights", tiny_spsr_weights)
    assert code == 0 and "skipped 2 non-image file(s): data.csv, notes.txt" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    fake = tmp_path / "in" / "fake.png"
    fake.write_text("not a picture")
    code, out = _run("upscale", fake, tmp_path / "f.png", "--weights", tiny_spsr_weights)
    assert code == 1 and "not an image file" in out and "0x" not in out and "BytesIO" not in out
    code, out = _run("upscale", tmp_path / "in" / "notes.txt", tmp_path / "o", "--weights", tiny_spsr_weights)
    assert code == 1 and "notes.txt: not an image file" in out


# ---------------------------------------------------------------------- stores, config, device


def _damaged_gzip_store(tmp_path: Path) -> Path:
    import h5py
    from skimage import data as skdata

    from spsr.data.store import StoreOptions, write_store

    write_image(tmp_path / "src" / "a.png", np.ascontiguousarray(skdata.astronaut()[:64, :64]))
    store = tmp_path / "z.h5"
    write_store([tmp_path / "src" / "a.png"], store, StoreOptions.make(scale=4, patch=32, step=16, compression="gzip"))
    with h5py.File(store) as f:
        spans = [(c.byte_offset, c.size) for ds in (f["hr"], f["lr"])
                 for c in (ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks()))]
    data = bytearray(store.read_bytes())
    for offset, size in spans:
        data[offset + 4:offset + size - 4] = b"\x13" * (size - 8)
    store.write_bytes(bytes(data))
    return store


@pytest.mark.parametrize("workers", ["0", "1"])
def test_damaged_hdf5_chunks_are_one_line(tmp_path: Path, workers: str) -> None:
    store = _damaged_gzip_store(tmp_path)
    code, out = _run("pretrain-psnr", store, "-o", tmp_path / "run", "--iterations", "1", "--nf", "8", "--nb", "2",
                     "--set", "model.gc=4", "--batch-size", "1", "--amp", "off", "--workers", workers,
                     "--device", "cpu", "--quiet")
    assert code == 1 and "damaged patch store" in out and "prepare-data" in out
    assert "Traceback" not in out and "DataLoader" not in out


def test_worker_wrapped_error_message_is_its_last_line() -> None:
    wrapped = ("Caught DataStoreError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\nspsr.errors.DataStoreError: s.h5: damaged patch store\n')
    assert user_message(ConfigError(wrapped)) == "s.h5: damaged patch store"
    assert user_message(ConfigError("plain: text")) == "plain: text"


def test_non_utf8_config_and_unknown_device(tmp_path: Path, photo: np.ndarray, tiny_spsr_weights: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[run]\nseed = 1\nname = "\xff\xfe"\n')
    code, out = _run("train", tmp_path / "x.h5", "--config", bad, "-o", tmp_path / "r")
    assert code == 1 and "not UTF-8" in out and "Traceback" not in out
    write_image(tmp_path / "p.png", photo)
    for cmd in (["upscale", tmp_path / "p.png", tmp_path / "o.png", "--weights", tiny_spsr_weights],
                ["gradmap", tmp_path / "p.png", tmp_path / "g.png", "--weights", tiny_spsr_weights],
                ["eval", "--weights", tiny_spsr_weights, tmp_path, "--metrics", "psnr"]):
        code, out = _run(*cmd, "--device", "tpu")
        assert code == 1 and "unknown device 'tpu'" in out, (cmd, out)
    assert not (tmp_path / "o.png").exists()


# --------------------------------------------------------------------------------- dead ends


def test_a_run_that_failed_before_its_first_checkpoint_is_no_dead_end(tmp_path: Path) -> None:
    from spsr.train.engine import Trainer

    run = tmp_path / "run"
    failing = tiny_config("psnr", **{"run.iterations": 1, "data.val_dir": str(tmp_path / "nonexistent")})
    with pytest.raises(ConfigError, match="validation folder not found"):
        Trainer(failing, run, dataset=TinyPairs()).run()
    with pytest.raises(CheckpointError, match="before its first checkpoint"):
        Trainer(failing, run, resume=True, dataset=TinyPairs()).run()
    # kill -9 during the first checkpoint leaves a config, a log and a temporary state file.
    (run / "state").mkdir(parents=True, exist_ok=True)
    (run / "config.toml").write_text("stale")
    (run / "log.jsonl").write_text('{"kind": "start", "iteration": 0}\n')
    (run / "state" / ".last.pt.k9x.tmp").write_bytes(b"\x00" * 1000)
    ok = tiny_config("psnr", **{"run.iterations": 1})
    Trainer(ok, run, dataset=TinyPairs()).run()
    assert not list(run.rglob("*.tmp")) and (run / "state" / "last.pt").is_file()
    kinds = [line for line in (run / "log.jsonl").read_text().splitlines() if '"start"' in line]
    assert len(kinds) == 1  # the dead run's log was replaced, not continued


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_prepare_data_workers_die_with_their_parent(tmp_path: Path, astronaut: np.ndarray) -> None:
    for i in range(40):
        write_image(tmp_path / "in" / f"{i:02d}.png", np.ascontiguousarray(np.roll(astronaut, i, 0)[:256, :256]))
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spsr_cli.app", "prepare-data", str(tmp_path / "in"),
                             "-o", str(tmp_path / "s.h5"), "-j", "2", "--patch", "16", "--step", "4", "-s", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + HANG_GUARD_S  # a hang guard: waits for the workers to show
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert len(workers) >= 2, "the workers never started"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=HANG_GUARD_S)
    deadline = time.monotonic() + HANG_GUARD_S
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
