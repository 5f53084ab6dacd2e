"""The HDF5 patch store: window geometry, exact degradation, schema, reader errors, resume."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from skimage import data as skdata

from spsr.data.image_io import write_image
from spsr.data.store import (
    FORMAT_VERSION,
    PatchStore,
    StoreOptions,
    WriteProgress,
    count_windows,
    partial_path,
    patch_count,
    store_info,
    val_indices,
    window_starts,
    write_store,
)
from spsr.errors import ConfigError, DataStoreError
from spsr.ops import imresize_np


def _images(folder: Path, count: int = 4, size: int = 70) -> list[Path]:
    """Small RGB PNGs cut from skimage's astronaut, of slightly different sizes (not mod-2/4)."""
    folder.mkdir(parents=True, exist_ok=True)
    astro = skdata.astronaut()
    paths = []
    for i in range(count):
        crop = astro[37 * i : 37 * i + size + i, 50 * i : 50 * i + size + 2 * i]
        path = folder / f"img_{i:02d}.png"
        write_image(path, np.ascontiguousarray(crop))
        paths.append(path)
    return paths


def _content(path: Path) -> dict[str, object]:
    """Every dataset and attribute of an HDF5 file, for equality checks."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        out["/attrs"] = {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()
        }

        def visit(name: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
            out[name + "/attrs"] = dict(obj.attrs.items())

        f.visititems(visit)
    return out


def _assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, b[key], err_msg=key)
        else:
            assert value == b[key], key


# ------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "length, patch, step, threshold, expected",
    [
        (100, 32, 16, 0, [0, 16, 32, 48, 64, 68]),  # 4 px left over > 0: a flush window at 68
        (100, 32, 16, 4, [0, 16, 32, 48, 64]),  # 4 px left over, not > 4: none
        (96, 32, 16, 0, [0, 16, 32, 48, 64]),  # exact fit
        (32, 32, 16, 0, [0]),
        (31, 32, 16, 0, []),  # smaller than a patch
        (1020, 128, 64, 16, [*list(range(0, 893, 64)), 892]),  # 60 px left over > 16
    ],
)
def test_window_starts_known_values(
    length: int, patch: int, step: int, threshold: int, expected: list[int]
) -> None:
    assert window_starts(length, patch, step, threshold) == expected
    assert count_windows(length, patch, step, threshold) == len(expected)


def test_count_windows_formula_matches_enumeration() -> None:
    for length in range(0, 300, 7):
        for patch, step, threshold in [(32, 16, 0), (32, 8, 5), (48, 48, 6), (16, 12, 11)]:
            starts = window_starts(length, patch, step, threshold)
            assert count_windows(length, patch, step, threshold) == len(starts)
            assert all(s + patch <= length for s in starts)
            if starts:  # no window is missing: at most `threshold` pixels stay uncovered
                assert length - (starts[-1] + patch) <= threshold


def test_patch_count_counts_after_mod_crop() -> None:
    opts = StoreOptions.make(scale=4, patch=32, step=16, threshold=0)
    # 103 → 100 after mod-crop: 6 windows; 98 → 96: 5 windows.
    assert patch_count(103, 98, opts) == 6 * 5


def test_options_defaults_and_errors() -> None:
    opts = StoreOptions.make(scale=4)
    assert (opts.patch, opts.lr_patch, opts.step, opts.threshold) == (480, 120, 240, 48)
    assert StoreOptions.make(scale=3).lr_patch == 160
    with pytest.raises(ConfigError, match="--patch 130 is not a multiple of --scale 4"):
        StoreOptions.make(scale=4, patch=130)
    with pytest.raises(ConfigError, match="--step 6"):
        StoreOptions.make(scale=4, patch=64, step=6)
    with pytest.raises(ConfigError, match="--scale 5"):
        StoreOptions.make(scale=5)
    with pytest.raises(ConfigError, match="compression"):
        StoreOptions.make(compression="zstd")


def test_val_indices_are_spread_and_distinct() -> None:
    assert val_indices(10, 0) == []
    assert val_indices(10, 2) == [2, 7]
    assert len(val_indices(7, 7)) == 7


# ----------------------------------------------------------------------------- exact degradation


def test_lr_patches_are_matlab_bicubic_of_whole_hr(tmp_path: Path) -> None:
    chelsea = skdata.chelsea()  # 300 x 451: width not a multiple of 4
    src = tmp_path / "chelsea.png"
    write_image(src, chelsea)
    opts = StoreOptions.make(scale=4, patch=64, step=48, threshold=8)
    out = tmp_path / "s.h5"
    summary = write_store([src], out, opts)
    hr_full = chelsea[:300, :448]
    lr_full = imresize_np(hr_full, 0.25)
    assert lr_full.shape == (75, 112, 3)
    with PatchStore(out) as store:
        assert len(store) == summary.patches == patch_count(300, 451, opts) == 6 * 9
        coords = set()
        for i in range(len(store)):
            lr, hr = store.read_patch(i)
            path, y, x = store.patch_origin(i)
            assert path == str(src.resolve())
            np.testing.assert_array_equal(hr, hr_full[y : y + 64, x : x + 64])
            np.testing.assert_array_equal(lr, lr_full[y // 4 : y // 4 + 16, x // 4 : x // 4 + 16])
            coords.add((y, x))
        assert (236, 384) in coords  # the flush window at the bottom-right


def test_conversions_16bit_gray_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    v16 = rng.integers(0, 65536, (40, 40, 3), dtype=np.uint16)
    gray = rng.integers(0, 256, (40, 40, 1), dtype=np.uint8)
    rgba = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
    paths = [tmp_path / "a16.png", tmp_path / "b_gray.png", tmp_path / "c_rgba.png"]
    for path, arr in zip(paths, (v16, gray, rgba), strict=True):
        write_image(path, arr)
    opts = StoreOptions.make(scale=2, patch=40, step=40)
    summary = write_store(paths, tmp_path / "s.h5", opts)
    assert summary.notes == {
        "16-bit, scaled to 8-bit": [str(paths[0].resolve())],
        "grayscale, converted to RGB": [str(paths[1].resolve())],
        "alpha channel dropped": [str(paths[2].resolve())],
    }
    with PatchStore(tmp_path / "s.h5") as store:
        expected8 = ((v16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        np.testing.assert_array_equal(store.read_patch(0)[1], expected8)
        np.testing.assert_array_equal(store.read_patch(1)[1], np.repeat(gray, 3, axis=2))
        np.testing.assert_array_equal(store.read_patch(2)[1], rgba[:, :, :3])


# ---------------------------------------------------------------------------------------- schema


def test_schema(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", count=5)
    opts = StoreOptions.make(scale=2, patch=32, step=16, threshold=0, compression="lzf", val=1)
    out = tmp_path / "s.h5"
    summary = write_store(paths, out, opts, creation_args={"sources": ["in"], **opts.to_dict()})
    with h5py.File(out, "r") as f:
        assert set(f.keys()) == {"hr", "lr", "source", "coords", "sources", "val"}
        n = f.attrs["num_patches"]
        assert n == summary.patches > 0
        assert f["hr"].shape == (n, 32, 32, 3) and f["hr"].dtype == np.uint8
        assert f["lr"].shape == (n, 16, 16, 3) and f["lr"].dtype == np.uint8
        assert f["hr"].chunks == (1, 32, 32, 3) and f["lr"].chunks == (1, 16, 16, 3)
        assert f["hr"].compression == "lzf"
        assert f["source"].shape == (n,) and f["coords"].shape == (n, 2)
        assert set(f["sources"].keys()) == {"path", "sha256", "size"}
        assert f["sources"]["path"].shape == (5,)
        import hashlib

        hashes = [h.decode() for h in f["sources"]["sha256"][:]]
        used = [Path(p.decode()) for p in f["sources"]["path"][:]]
        assert hashes == [hashlib.sha256(p.read_bytes()).hexdigest() for p in used]
        assert list(f["val"].keys()) == ["00000"]
        g = f["val"]["00000"]
        row = int(g.attrs["source"])
        assert used[row] == paths[val_indices(5, 1)[0]].resolve()
        h, w = f["sources"]["size"][row]
        assert g["hr"].shape == (h, w, 3) and g["lr"].shape == (h // 2, w // 2, 3)
        np.testing.assert_array_equal(g["lr"][()], imresize_np(g["hr"][()], 0.5))
        assert row not in set(f["source"][:].tolist())  # held-out images give no patches
        a = dict(f.attrs)
        assert a["format"] == "spsr-patch-store" and a["format_version"] == FORMAT_VERSION
        assert bool(a["complete"]) and (a["scale"], a["patch"], a["lr_patch"], a["step"]) == (
            2,
            32,
            16,
            16,
        )
        assert "bicubic" in a["degradation"] and a["spsr_version"]
        assert json.loads(a["creation_args"])["sources"] == ["in"]
        assert (a["num_images"], a["num_val"], a["num_sources"]) == (4, 1, 5)
        assert not any(k.startswith("progress") or k == "fingerprint" for k in a)
    info = store_info(out)
    assert (info.num_patches, info.num_images, info.num_val, info.compression) == (n, 4, 1, "lzf")


def _break(path: Path, how: str) -> None:
    with h5py.File(path, "r+") as f:
        if how == "version":
            f.attrs["format_version"] = FORMAT_VERSION + 1
        elif how == "incomplete":
            f.attrs["complete"] = False
        elif how == "missing":
            del f["lr"]
        elif how == "shape":
            f["hr"].resize(f["hr"].shape[0] - 1, axis=0)


@pytest.mark.parametrize(
    "how, message",
    [
        ("version", "format version 2, this spsr reads version 1"),
        ("incomplete", "incomplete"),
        ("missing", "broken patch store: missing"),
        ("shape", "broken patch store: /hr"),
    ],
)
def test_reader_rejects_broken_stores(tmp_path: Path, how: str, message: str) -> None:
    out = tmp_path / "s.h5"
    write_store(_images(tmp_path / "in", count=2), out, StoreOptions.make(scale=2, patch=32))
    _break(out, how)
    with pytest.raises(DataStoreError, match=message):
        PatchStore(out)


def test_reader_rejects_non_stores(tmp_path: Path) -> None:
    with pytest.raises(DataStoreError, match="no such patch store"):
        PatchStore(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataStoreError, match="not an HDF5 file"):
        PatchStore(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DataStoreError, match="not an spsr patch store"):
        PatchStore(tmp_path / "other.h5")


# ------------------------------------------------------------------------ robustness and resume


def test_same_input_same_store_any_worker_count(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", count=4)
    opts = StoreOptions.make(scale=2, patch=32, step=12, val=1)
    write_store(paths, tmp_path / "a.h5", opts, workers=0)
    write_store(paths, tmp_path / "b.h5", opts, workers=2)
    _assert_same(_content(tmp_path / "a.h5"), _content(tmp_path / "b.h5"))


def test_interrupted_write_resumes_to_the_same_store(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", count=5)
    (tmp_path / "in" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    paths = sorted([*paths, tmp_path / "in" / "corrupt.png"])
    opts = StoreOptions.make(scale=2, patch=32, step=16, val=1)
    out = tmp_path / "s.h5"

    def interrupt(p: WriteProgress) -> None:
        if p.images_done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_store(paths, out, opts, on_progress=interrupt)
    assert not out.exists() and partial_path(out).exists()
    events: list[WriteProgress] = []
    summary = write_store(paths, out, opts, on_progress=events.append)
    assert events[0].resumed_from == 3 and events[0].restarted is None and summary.resumed_from == 3
    assert not partial_path(out).exists()
    write_store(paths, tmp_path / "fresh.h5", opts)
    _assert_same(_content(out), _content(tmp_path / "fresh.h5"))
    assert summary.skipped == [
        (str(paths[0].resolve()), summary.skipped[0][1])
    ]  # corrupt.png sorts first
    assert "not a readable image" in summary.skipped[0][1]


def test_unusable_partial_is_restarted(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", count=2)
    out = tmp_path / "s.h5"
    partial_path(out).write_bytes(b"killed mid-write")
    events: list[WriteProgress] = []
    write_store(paths, out, StoreOptions.make(scale=2, patch=32), on_progress=events.append)
    assert events[0].restarted and "unreadable" in events[0].restarted

    # A partial made with other options is discarded too.
    def interrupt(p: WriteProgress) -> None:
        if p.images_done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_store(
            paths, tmp_path / "t.h5", StoreOptions.make(scale=2, patch=32), on_progress=interrupt
        )
    events.clear()
    write_store(
        paths, tmp_path / "t.h5", StoreOptions.make(scale=2, patch=16), on_progress=events.append
    )
    assert events[0].restarted == "made with other options or other images"


def test_bad_inputs(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", count=2, size=40)
    opts = StoreOptions.make(scale=2, patch=64)
    with pytest.raises(DataStoreError, match=r"no training patches.*smaller than the 64px patch"):
        write_store(paths, tmp_path / "s.h5", opts)
    assert not (tmp_path / "s.h5").exists() and not partial_path(tmp_path / "s.h5").exists()
    with pytest.raises(DataStoreError, match="no images found"):
        write_store([], tmp_path / "s.h5", opts)
    with pytest.raises(ConfigError, match="--val 2 leaves no training image"):
        write_store(paths, tmp_path / "s.h5", StoreOptions.make(scale=2, patch=32, val=2))
    (tmp_path / "s.h5").write_text("keep me")
    with pytest.raises(DataStoreError, match="already exists"):
        write_store(paths, tmp_path / "s.h5", StoreOptions.make(scale=2, patch=32))
    assert (tmp_path / "s.h5").read_text() == "keep me"


def test_too_small_images_are_skipped_and_counted(tmp_path: Path) -> None:
    big = _images(tmp_path / "big", count=1, size=70)
    small = _images(tmp_path / "small", count=1, size=20)
    summary = write_store(big + small, tmp_path / "s.h5", StoreOptions.make(scale=2, patch=32))
    assert summary.images == 1 and len(summary.skipped) == 1
    assert (
        summary.skipped[0][0] == str(small[0].resolve())
        and "smaller than the patch" in summary.skipped[0][1]
    )
    assert store_info(tmp_path / "s.h5").num_skipped == 1


def test_partial_that_opens_but_fails_to_write_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # HDF5 files killed mid-write can open fine and then fail on the next write ("bad heap
    # index"); the writer must then discard the partial and build the store from the start.
    import spsr.data.store as store_mod

    paths = _images(tmp_path / "in", count=3)
    opts = StoreOptions.make(scale=2, patch=32, step=16)
    out = tmp_path / "s.h5"

    def interrupt(p: WriteProgress) -> None:
        if p.images_done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_store(paths, out, opts, on_progress=interrupt)
    real = store_mod._write_patches
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("Can't synchronously write data (bad heap index)")
        return real(*args, **kwargs)

    monkeypatch.setattr(store_mod, "_write_patches", flaky)
    events: list[WriteProgress] = []
    summary = write_store(paths, out, opts, on_progress=events.append)
    assert any(e.restarted and "damaged by the interruption" in e.restarted for e in events)
    assert summary.resumed_from == 0
    monkeypatch.setattr(store_mod, "_write_patches", real)
    write_store(paths, tmp_path / "fresh.h5", opts)
    _assert_same(_content(out), _content(tmp_path / "fresh.h5"))
