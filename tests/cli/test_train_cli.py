"""`spsr pretrain-psnr` and `spsr train` end to end on a real (tiny) patch store: the run folder the
docs (formats.md) describe, validation numbers equal to `spsr eval`'s, SIGTERM + resume, one-line errors."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _hang_guard import HANG_GUARD_S, default_stop_signals
from _text import flat
from _train_fixtures import PYTHON, REPO, make_store, one_thread, subprocess_env  # noqa: F401
from typer.testing import CliRunner

from spsr.infer import load_model
from spsr.train.log import read_log
from spsr.train.state import load_state
from spsr_cli.app import app

RUNNER = CliRunner()
TINY_FLAGS = ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--batch-size", "2", "--amp", "off",
              "--no-channels-last", "--workers", "0", "--device", "cpu", "--quiet"]


def _run(*args: object):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("data"))


def _readme_run_files() -> list[str]:
    """The files the docs' "Run folder" table lists (docs/formats.md)."""
    text = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    section = text.split("## Run folder", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def test_pretrain_then_train_gives_the_run_folder_the_readme_describes(store: Path, tmp_path: Path) -> None:
    psnr = tmp_path / "psnr"
    r = _run("pretrain-psnr", store, "-o", psnr, "--iterations", 3, *TINY_FLAGS)
    assert r.exit_code == 0, r.output
    assert load_model(psnr).spec.arch == "rrdb"

    val_dir = store.parent  # the PNGs the store was made from
    run = tmp_path / "g"
    r = _run("train", store, "--variant", "g", "-o", run, "--init", psnr, "--iterations", 4,
             "--checkpoint-every", 2, "--val", val_dir, "--val-every", 2, "--val-limit", 2,
             "--set", "loss.perceptual_net=vgg_random", "--set", "loss.perceptual_layer=conv1_2",
             "--set", "d.nf=4", "--set", "run.keep_states=2", "--set", "run.log_every=1", *TINY_FLAGS)
    assert r.exit_code == 0, r.output

    files = _readme_run_files()
    assert {"config.toml", "log.jsonl", "model.safetensors", "best.safetensors", "state/last.pt"} <= set(files)
    for name in files:
        if "NNNN" in name:
            assert sorted(p.name for p in (run / "state").glob("iter_*.pt")) == [
                "iter_00000002.pt", "iter_00000004.pt"]
        else:
            assert (run / name).is_file(), name
    kinds = {rec["kind"] for rec in read_log(run)}
    assert {"start", "train", "val", "checkpoint", "end"} <= kinds
    assert "variant = \"g\"" in (run / "config.toml").read_text()
    assert load_model(run).spec.arch == "spsr"
    state = load_state(run / "state" / "last.pt")
    assert state["iteration"] == 4 and set(state["networks"]) == {"G", "D", "D_grad"}

    # Validation scores best.safetensors exactly as `spsr eval` scores it.
    best_val = max(read_log(run, "val"), key=lambda rec: rec["psnr"])
    evaluated = _eval_json(run / "best.safetensors", val_dir)
    assert evaluated["psnr"] == pytest.approx(best_val["psnr"], abs=1e-9)
    assert evaluated["ssim"] == pytest.approx(best_val["ssim"], abs=1e-9)


def _eval_json(weights: Path, hr_dir: Path) -> dict[str, float]:
    limited = hr_dir.parent / "val_two"
    limited.mkdir(exist_ok=True)
    for png in sorted(hr_dir.glob("*.png"))[:2]:
        (limited / png.name).write_bytes(png.read_bytes())
    r = _run("eval", "--weights", weights, limited, "--metrics", "psnr,ssim", "--json", "-",
             "--device", "cpu")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout[r.stdout.index("{"):])
    (dataset,) = payload["datasets"].values()
    (model,) = [m for name, m in dataset["models"].items() if name != "bicubic"] or list(dataset["models"].values())
    return model["mean"]


def test_sigterm_saves_a_resumable_state_and_resume_finishes(store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [PYTHON, "-m", "spsr_cli.app", "pretrain-psnr", str(store), "-o", str(run),
         "--iterations", "100000", "--set", "run.log_every=1", *TINY_FLAGS],
        env=subprocess_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_stop_signals,
    )
    log = run / "log.jsonl"
    deadline = time.monotonic() + HANG_GUARD_S  # a hang guard: the signal waits for the log line
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and '"kind": "train"' in log.read_text():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert f"Resume with: spsr pretrain-psnr --resume -o {shlex.quote(str(run))}" in " ".join(err.split())
    stopped = load_state(run / "state" / "last.pt")["iteration"]
    assert 1 <= stopped < 100000
    assert read_log(run, "end")[-1]["reason"] == "SIGTERM"

    r = _run("pretrain-psnr", "--resume", "-o", run, "--iterations", stopped + 2, "--quiet")
    assert r.exit_code == 0, r.output
    assert load_state(run / "state" / "last.pt")["iteration"] == stopped + 2


def test_user_errors_are_one_line_and_non_zero(store: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    r = _run("train", store, "--variant", "g", "-o", tmp_path / "vgg", *TINY_FLAGS)
    assert r.exit_code == 1
    assert "VGG19 ImageNet weights" in flat(r.output) and "--perceptual none" in flat(r.output)
    assert "Traceback" not in r.output

    r = _run("train", store, "--variant", "nope", "-o", tmp_path / "x", *TINY_FLAGS)
    assert r.exit_code == 1 and "unknown variant 'nope'" in r.output
    r = _run("train", "--resume", "-o", tmp_path / "nothing")
    assert r.exit_code == 1 and "nothing to resume" in r.output
    r = _run("train", store, "-o", tmp_path / "y", "--set", "loss.pixle=1", *TINY_FLAGS)
    assert r.exit_code == 1 and "did you mean 'loss.pixel'" in r.output
    r = _run("train", tmp_path / "missing.h5", "-o", tmp_path / "z", *TINY_FLAGS)
    assert r.exit_code == 1 and "missing.h5" in r.output

    done = tmp_path / "done"
    assert _run("pretrain-psnr", store, "-o", done, "--iterations", 1, *TINY_FLAGS).exit_code == 0
    r = _run("pretrain-psnr", store, "-o", done, "--iterations", 1, *TINY_FLAGS)
    assert r.exit_code == 1 and "already holds a run" in r.output
    r = _run("pretrain-psnr", "--resume", "-o", done, "--nf", "16")
    assert r.exit_code == 1 and "model.nf cannot change when resuming" in r.output
