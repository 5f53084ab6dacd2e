"""Full disks, read-only folders, quotas and file-size limits: one line naming the path and the
cause, a non-zero exit, nothing half-written under a final name, nothing computed thrown away.

The failures are injected at the write calls (monkeypatch), or made real with ``RLIMIT_FSIZE`` in
a subprocess where a real short write matters (HDF5). Nothing is mounted, and nothing depends on
file permissions, so every test runs the same as root and as a normal user.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
import typer
from _text import flat
from _train_fixtures import astronaut_crops, make_store, one_thread, subprocess_env  # noqa: F401
from typer.testing import CliRunner

from spsr import atomic
from spsr.atomic import atomic_path, check_writable, write_text_atomic
from spsr.data import store as store_module
from spsr.data.store import PatchStore, StoreOptions, partial_path, write_store
from spsr.errors import DataStoreError, WriteError, as_write_error, write_errno
from spsr.train.state import load_state
from spsr_cli._common import guarded
from spsr_cli.app import app

RUNNER = CliRunner()

# `spsr prepare-data` in a process whose files may not grow past argv[1] bytes (a real EFBIG after a
# real short write, as on a full disk); SIGXFSZ ignored so the write fails instead of killing.
_LIMITED_PREPARE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
import typer
from spsr_cli.cmd_prepare_data import prepare_data
app = typer.Typer(pretty_exceptions_enable=False)
app.command()(prepare_data)
app()
"""


def _run(*args: object):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(code: int, stderr: str, *needles: str) -> str:
    """Exit 1, exactly one error line (the last), no traceback; returns that line unwrapped."""
    assert code == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    text = flat(stderr)
    assert text.count("error:") == 1, stderr
    line = text[text.index("error:"):]
    for needle in needles:
        assert needle in line, line
    return line


_images = astronaut_crops


def _enospc(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ------------------------------------------------------------------------------- the helpers


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (errno.ENOSPC, "no space left on device (ENOSPC)"),
        (errno.EDQUOT, "disk quota exceeded (EDQUOT)"),
        (errno.EROFS, "read-only file system (EROFS)"),
        (errno.EACCES, "permission denied (EACCES)"),
        (errno.EFBIG, "file too large"),
    ],
)
def test_atomic_write_failure_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, cause: str
) -> None:
    target = tmp_path / "scores.json"
    target.write_text("old\n")

    def failing_replace(*_args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(WriteError) as info:
        write_text_atomic(target, "new\n")
    assert str(info.value).startswith(f"cannot write {target}: {cause}")
    assert info.value.errno == code and "\n" not in str(info.value)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]  # no temporary left


def test_a_wrapped_failure_is_found_behind_torch_and_hdf5_errors(tmp_path: Path) -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:  # what torch.save does when its file object fails
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")  # noqa: B904
    except RuntimeError as exc:
        wrapped = exc
    assert write_errno(wrapped) == errno.ENOSPC
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("said already") from None
    except RuntimeError as exc:
        assert write_errno(exc) is None  # a context the raiser suppressed is not looked into
    hdf5 = RuntimeError("Unable to flush raw data (file write failed: errno = 27, error message = 'x')")
    assert write_errno(hdf5) == errno.EFBIG
    assert write_errno(RuntimeError("errno = 2")) is None  # not a write failure
    assert write_errno(OSError(errno.ENOENT, "missing")) is None
    failed = as_write_error(hdf5, tmp_path / "x.h5")
    assert failed is not None and str(failed).startswith(f"cannot write {tmp_path / 'x.h5'}: file too large")


def test_torch_save_past_a_real_size_limit_keeps_the_previous_state(tmp_path: Path) -> None:
    """A real short write (RLIMIT_FSIZE) inside torch.save: the previous state survives whole."""
    state = tmp_path / "state" / "last.pt"
    script = f"""
import resource, signal, torch
from spsr.train.state import save_state
from spsr.errors import WriteError
save_state({str(state)!r}, {{"iteration": 1, "w": torch.zeros(10)}})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
try:
    save_state({str(state)!r}, {{"iteration": 2, "w": torch.zeros(100_000)}})
except WriteError as exc:
    print(exc)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=subprocess_env(), timeout=600, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith(f"cannot write {state}: file too large"), proc.stdout
    assert load_state(state)["iteration"] == 1
    assert sorted(p.name for p in state.parent.iterdir()) == ["last.pt"]


def test_check_writable_fails_before_any_work_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_writable(tmp_path / "not" / "yet")  # tried in the nearest existing folder
    assert list(tmp_path.iterdir()) == []

    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    with pytest.raises(WriteError, match=r"cannot write .*out: read-only file system \(EROFS\)"):
        check_writable(tmp_path / "out")
    with pytest.raises(WriteError, match="read-only file system"), atomic_path(tmp_path / "f.txt"):
        pass


def test_guarded_turns_a_raw_write_error_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    @guarded
    def command() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out.png")

    with pytest.raises(typer.Exit) as info:
        command()
    assert info.value.exit_code == 1
    err = flat(capsys.readouterr().err)
    assert "cannot write /data/out.png: no space left on device (ENOSPC)" in err
    assert "free some space" in err

    @guarded
    def reading() -> None:  # EACCES may come from an input: not called a write
        raise PermissionError(errno.EACCES, "Permission denied", "/data/in.png")

    with pytest.raises(typer.Exit):
        reading()
    assert "cannot access /data/in.png: permission denied" in flat(capsys.readouterr().err)


# -------------------------------------------------------------------------------- patch store


def test_prepare_data_past_a_real_size_limit_leaves_no_store_and_a_rerun_builds_it(
    tmp_path: Path,
) -> None:
    """The case of a 3 MB file system: HDF5 fails a real short write mid-store. One line, exit 1,
    no segmentation fault, no store under any name; without the limit the same command builds it."""
    _images(tmp_path / "in", 6, 120)
    out = tmp_path / "s.h5"
    args = [str(tmp_path / "in"), "-o", str(out), "-s", "2", "--patch", "16", "--step", "4", "-j", "0"]
    proc = subprocess.run([sys.executable, "-c", _LIMITED_PREPARE, "300000", *args],
                          capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path,
                          timeout=600, check=False)
    _one_error_line(proc.returncode, proc.stderr, f"cannot write {partial_path(out)}", "(EFBIG)",
                    "was removed", "not written")
    assert not out.exists() and not partial_path(out).exists()

    rerun = subprocess.run([sys.executable, "-c", _LIMITED_PREPARE, str(2**40), *args],
                           capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path,
                           timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr
    with PatchStore(out) as store:
        assert len(store) == 6 * 27 * 27 and store.attrs["complete"]


@pytest.mark.parametrize("failing_write", [1, 5, 40])
def test_a_failed_write_at_any_point_never_publishes_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_write: int
) -> None:
    """ENOSPC at the n-th write HDF5 makes: WriteError, no store, no partial file, no HDF5 noise."""
    paths = _images(tmp_path / "in", 4, 64)
    out = tmp_path / "s.h5"
    calls = {"n": 0}
    original = store_module._GuardedFile._write_raw

    def write(self: store_module._GuardedFile, data: memoryview) -> int | None:
        calls["n"] += 1
        if calls["n"] == failing_write:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, data)

    monkeypatch.setattr(store_module._GuardedFile, "_write_raw", write)
    with pytest.raises(WriteError, match=r"no space left on device \(ENOSPC\).*was removed"):
        write_store(paths, out, StoreOptions.make(scale=2, patch=16, step=8))
    assert calls["n"] >= failing_write
    assert not out.exists() and not partial_path(out).exists()
    monkeypatch.undo()
    summary = write_store(paths, out, StoreOptions.make(scale=2, patch=16, step=8))
    assert summary.patches > 0 and PatchStore(out).attrs["complete"]


def test_complete_is_set_only_after_the_data_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _images(tmp_path / "in", 3, 64)
    out = tmp_path / "s.h5"
    seen: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        with h5py.File(partial_path(out), "r", locking=False) as f:
            seen.append(bool(f.attrs.get("complete", False)))
        if len(seen) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    with pytest.raises(WriteError, match="input/output error"):
        write_store(paths, out, StoreOptions.make(scale=2, patch=16, step=8))
    assert seen == [False] and not out.exists() and not partial_path(out).exists()
    write_store(paths, out, StoreOptions.make(scale=2, patch=16, step=8))
    assert seen == [False, False, True]  # data synced, then the "complete" flag synced


def test_prepare_data_checks_its_output_folder_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _images(tmp_path / "in", 2, 64)

    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("decoded an image before checking the output")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(store_module, "_decoded_in_order", no_decoding)
    r = _run("prepare-data", tmp_path / "in", "-o", tmp_path / "ro" / "s.h5", "-s", "2",
             "--patch", "16")
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'ro'}",
                    "read-only file system (EROFS)", "writable folder")


# -------------------------------------------------------------------------------------- eval


def test_eval_prints_the_scores_when_it_cannot_save_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hr = tmp_path / "HR"
    _images(hr, 2, 48)
    sr = tmp_path / "SR"
    sr.mkdir()
    for path in hr.iterdir():
        (sr / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(atomic.os, "replace", _enospc)
    r = _run("eval", sr, "--hr", hr, "--metrics", "psnr", "--json", tmp_path / "scores.json", "-q")
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'scores.json'}",
                    "no space left on device (ENOSPC)")
    assert "PSNR" in r.stdout and "inf" in r.stdout  # the table, before the failure
    assert not (tmp_path / "scores.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["HR", "SR"]

    r = _run("eval", sr, "--hr", hr, "--metrics", "psnr", "--csv", tmp_path / "s.csv", "--json", "-")
    assert r.exit_code == 1 and json.loads(r.stdout)["datasets"], r.stdout  # JSON still printed


def test_eval_checks_its_outputs_before_scoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spsr.metrics import score_folders as evaluate

    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def no_scoring(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("scored before checking the output")

    hr = tmp_path / "HR"
    _images(hr, 1, 48)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(evaluate, "score_pairs", no_scoring)
    r = _run("eval", hr, "--hr", hr, "--metrics", "psnr", "--csv", tmp_path / "o" / "s.csv")
    _one_error_line(r.exit_code, r.stderr, "read-only file system (EROFS)")


# ---------------------------------------------------------------------------------- training

TINY_FLAGS = ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--batch-size", "2", "--amp", "off",
              "--no-channels-last", "--workers", "0", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("data"))


def test_a_failed_checkpoint_keeps_the_previous_one_and_resume_continues(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spsr.train import state as state_module

    run = tmp_path / "run"
    real_save = torch.save
    saves = {"n": 0}

    def save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        saves["n"] += 1
        if saves["n"] == 2:  # the checkpoint of iteration 4
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(state_module.torch, "save", save)
    monkeypatch.setattr(sys, "argv", ["spsr", "pretrain-psnr"])  # what the resume hint repeats
    r = _run("pretrain-psnr", store, "-o", run, "--iterations", 6, "--checkpoint-every", 2,
             *TINY_FLAGS)
    line = _one_error_line(r.exit_code, r.stderr, f"cannot write {run / 'state' / 'last.pt'}",
                           "no space left on device (ENOSPC)", "iteration 4",
                           "last saved state", "is intact",
                           "free some space, then continue with: spsr pretrain-psnr --resume -o "
                           + shlex.quote(str(run)))
    assert "\n" not in line.strip()
    assert load_state(run / "state" / "last.pt")["iteration"] == 2
    assert not [p for p in (run / "state").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    r = _run("pretrain-psnr", "--resume", "-o", run, "--iterations", 6, "--quiet")
    assert r.exit_code == 0, r.output
    assert load_state(run / "state" / "last.pt")["iteration"] == 6


def test_training_checks_its_run_folder_before_building_anything(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    r = _run("pretrain-psnr", store, "-o", tmp_path / "run", "--iterations", 2, *TINY_FLAGS)
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'run'}", "(EROFS)")
    assert not (tmp_path / "run").exists()



# --------------------------------------------------------------------------- upscale, gradmap


@pytest.mark.parametrize("command", ["upscale", "gradmap"])
def test_a_full_disk_stops_a_batch_at_once_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_spsr_weights: Path, command: str
) -> None:
    _images(tmp_path / "in", 3, 24)
    calls = {"n": 0}
    real_replace = atomic.os.replace

    def replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    extra = ["--weights", tiny_spsr_weights] if command == "upscale" else []
    r = _run(command, tmp_path / "in", tmp_path / "out", *extra)
    line = _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'out'}",
                           "no space left on device (ENOSPC)", "1 of 3", "written before")
    assert "img_01" in line and calls["n"] == 2  # the third image was not tried
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "img_00.png" if command == "upscale" else "img_00_grad.png"]


def test_upscale_checks_its_output_folder_before_any_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_spsr_weights: Path
) -> None:
    from spsr.data import image_io

    _images(tmp_path / "in", 1, 24)

    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def no_reading(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("read an image before checking the output")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(image_io, "read_image", no_reading)
    for command, extra in (("upscale", ["--weights", tiny_spsr_weights]), ("gradmap", [])):
        r = _run(command, tmp_path / "in", tmp_path / "out", *extra)
        _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'out'}",
                        "read-only file system (EROFS)")


# ------------------------------------------------------------------------------- user study


def test_tally_prints_the_results_when_the_chart_cannot_be_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _votes import METHODS, write_votes

    from spsr.user_study import load_key
    from spsr.user_study.key import KeyImage, StudyKey, write_key

    key_path = tmp_path / "study-key.json"
    write_key(StudyKey(study_id="abc", seed=7, methods=METHODS,
                       images=(KeyImage(stem="a", slots=(0, 1, 2)),)), key_path)
    write_votes(tmp_path / "v" / "ann.json", load_key(key_path), "ann", {0: [1, 2, 3]})
    monkeypatch.setattr(atomic.os, "replace", _enospc)
    r = _run("user-study-sheet", "tally", tmp_path / "v", "--key", key_path)
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'study-ranks.png'}",
                    "(ENOSPC)", "the tally above is complete")
    assert "1 votes from 1 raters" in flat(r.stdout) or "1 vote" in flat(r.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study-key.json", "v"]


def test_study_build_checks_its_folders_first_and_keeps_nothing_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spsr.user_study import sheet

    _images(tmp_path / "hr", 2, 32)
    for method in ("a", "b"):
        _images(tmp_path / method, 2, 32)
    args = ["user-study-sheet", "build", "--hr", tmp_path / "hr", "--method", f"A={tmp_path / 'a'}",
            "--method", f"B={tmp_path / 'b'}", "-o", tmp_path / "study", "--key", tmp_path / "k.json"]
    real_png = sheet._write_png
    calls = {"n": 0}

    def write_png(*a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_png(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(sheet, "_write_png", write_png)
    r = _run(*args)
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'study'}", "(ENOSPC)",
                    "nothing of the new study was kept")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "hr"]


def test_ablate_checks_its_folder_before_the_first_run(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    r = _run("ablate", store, "--preset", "g-components", "--iterations", 2, "--hr", store.parent,
             "-o", tmp_path / "abl")
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'abl'}", "(EROFS)")
    assert not (tmp_path / "abl").exists()


def test_a_second_prepare_data_on_the_same_store_never_touches_the_running_ones_file(
    tmp_path: Path,
) -> None:
    import fcntl

    paths = _images(tmp_path / "in", 2, 64)
    out = tmp_path / "s.h5"
    partial = partial_path(out)
    partial.write_bytes(b"the running command's data")
    with open(partial, "r+b") as running:
        fcntl.flock(running.fileno(), fcntl.LOCK_EX)  # as the running command holds it
        with pytest.raises(DataStoreError, match="is being written by another spsr prepare-data"):
            write_store(paths, out, StoreOptions.make(scale=2, patch=16, step=8))
    assert partial.read_bytes() == b"the running command's data" and not out.exists()


def test_eval_save_sr_on_a_full_disk_prints_the_finished_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _images(tmp_path / "SetA", 2, 48)
    _images(tmp_path / "SetB", 2, 48)
    calls = {"n": 0}
    real_replace = atomic.os.replace

    def replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the first SR image of the second dataset
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    r = _run("eval", "--model", "bicubic", tmp_path / "SetA", tmp_path / "SetB", "--metrics", "psnr",
             "--save-sr", tmp_path / "sr", "-q")
    _one_error_line(r.exit_code, r.stderr, f"cannot write {tmp_path / 'sr'}", "(ENOSPC)",
                    "the scores of 1 finished model/dataset pair(s) are printed above")
    assert "SetA" in r.stdout and "PSNR" in r.stdout
