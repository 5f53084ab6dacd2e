"""``spsr prepare-data`` end to end: store, --info, one-line errors, a killed run that re-runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer
from _hang_guard import HANG_GUARD_S
from _text import flat
from _train_fixtures import astronaut_crops
from typer.testing import CliRunner

from spsr.data.store import PatchStore, StoreOptions, partial_path, write_store
from spsr_cli.cmd_prepare_data import prepare_data

# The command alone, as `spsr prepare-data` runs it (the full app registers the same function).
_APP = typer.Typer(pretty_exceptions_enable=False)
_APP.command()(prepare_data)
_RUN_CLI = (
    "import typer; from spsr_cli.cmd_prepare_data import prepare_data; "
    "app = typer.Typer(pretty_exceptions_enable=False); app.command()(prepare_data); app()"
)


_images = astronaut_crops


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(_APP, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _one_line_error(code: int, stderr: str, needle: str) -> None:
    """Exit 1, exactly one error line (the last; progress lines may precede it), no traceback."""
    assert code == 1
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]] and needle in lines[-1] and "Traceback" not in stderr, stderr


def test_prepare_and_info(tmp_path: Path) -> None:
    _images(tmp_path / "in", 3, 60)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    out = tmp_path / "train.h5"
    code, stdout, stderr = _invoke(
        tmp_path / "in",
        "-o",
        out,
        "--scale",
        "2",
        "--patch",
        "32",
        "--val",
        "1",
        "-j",
        "0",
        "--json",
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["images"] == 2 and summary["val_images"] == 1
    assert [s["path"] for s in summary["skipped"]] == [
        str((tmp_path / "in" / "broken.jpg").resolve())
    ]
    assert summary["patches"] == 2 * 3 * 3  # 60 px, patch 32, step 16: windows at 0, 16, 28
    assert not partial_path(out).exists()
    with PatchStore(out) as store:
        assert len(store) == 18 and store.scale == 2
    code, stdout, _ = _invoke("--info", out, "--json")
    info = json.loads(stdout)
    assert code == 0 and info["num_patches"] == 18 and info["num_skipped"] == 1
    assert info["creation_args"]["sources"] == [str(tmp_path / "in")]
    code, stdout, _ = _invoke("--info", out)
    assert code == 0 and "patches" in flat(stdout) and "18" in flat(stdout)
    # The corrupt file is listed as skipped, and the run still succeeds.
    code, _, stderr = _invoke(
        tmp_path / "in", "-o", tmp_path / "b.h5", "-s", "2", "--patch", "32", "-j", "0"
    )
    assert code == 0 and "skipped:" in flat(stderr) and "broken.jpg" in flat(stderr)


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    _images(tmp_path / "in", 1, 40)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "s.h5"
    _one_line_error(*_invoke(tmp_path / "empty", "-o", out)[::2], "no images found")
    _one_line_error(
        *_invoke(tmp_path / "in", "-o", out, "--patch", "130")[::2],
        "--patch 130 is not a multiple of --scale 4",
    )
    _one_line_error(*_invoke(tmp_path / "in", "-o", out, "--scale", "5")[::2], "--scale 5")
    _one_line_error(*_invoke(tmp_path / "missing", "-o", out)[::2], "no such file or folder")
    _one_line_error(
        *_invoke(tmp_path / "in", "-o", out, "--patch", "64", "-s", "2", "-j", "0")[::2],
        "smaller than the 64px patch",
    )
    _one_line_error(*_invoke("-o", out)[::2], "give at least one SRC")
    _one_line_error(*_invoke("--info", tmp_path / "in" / "img_00.png")[::2], "not an HDF5 file")
    assert not out.exists() and not partial_path(out).exists()
    out.write_text("precious")
    _one_line_error(
        *_invoke(tmp_path / "in", "-o", out, "-s", "2", "--patch", "32")[::2], "--overwrite"
    )
    assert out.read_text() == "precious"


def _content(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in ("hr", "lr", "source", "coords")}
        out["paths"] = f["sources"]["path"][()]
        out["attrs"] = np.array(json.dumps({k: str(v) for k, v in f.attrs.items()}, sort_keys=True))
    return out


def test_killed_run_leaves_no_store_and_a_rerun_completes(tmp_path: Path) -> None:
    """Kill the command (and its worker processes) mid-way; re-running gives the full store."""
    paths = _images(tmp_path / "in", 30, 80)
    out = tmp_path / "s.h5"
    args = [
        sys.executable,
        "-c",
        _RUN_CLI,
        str(tmp_path / "in"),
        "-o",
        str(out),
        "-s",
        "2",
        "--patch",
        "16",
        "--step",
        "4",
        "-j",
        "2",
    ]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # plain progress lines, as stderr is not a terminal
            if line.startswith("prepare-data: ") and "/30 images" in line:  # after the first image
                os.killpg(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail("no progress line seen")
    finally:
        proc.wait(timeout=HANG_GUARD_S)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and partial_path(out).exists()

    rerun = subprocess.run(args, check=False, capture_output=True, text=True, env=env, timeout=HANG_GUARD_S)
    assert rerun.returncode == 0, rerun.stderr
    assert (
        "resuming an interrupted run" in flat(rerun.stderr)
        or "discarded an interrupted run" in flat(rerun.stderr)
    )
    assert out.exists() and not partial_path(out).exists()
    reference = tmp_path / "ref.h5"
    write_store(
        paths,
        reference,
        StoreOptions.make(scale=2, patch=16, step=4),
        creation_args={
            "sources": [str(tmp_path / "in")],
            **StoreOptions.make(scale=2, patch=16, step=4).to_dict(),
        },
    )
    got, want = _content(out), _content(reference)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert len(want["hr"]) == 30 * 17 * 17
