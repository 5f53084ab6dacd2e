"""Training stopped the way clusters stop jobs: a signal to the whole process group (DataLoader
workers included) saves a resumable state, and the resumed run ends bit for bit where an
uninterrupted one does; timed checkpoints bound what a hard kill loses."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from _hang_guard import HANG_GUARD_S, default_stop_signals, python_sigint
from _train_fixtures import PYTHON, TinyPairs, make_store, one_thread, subprocess_env, tiny_config  # noqa: F401
from safetensors.torch import load_file
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.errors import ConfigError
from spsr.train.config import validate
from spsr.train.engine import Trainer
from spsr.train.log import read_log
from spsr.train.signals import STOP_SIGNALS, StopSignals
from spsr.train.state import load_state
from spsr_cli.app import app

RUNNER = CliRunner()
DEVICE = ["--amp", "off", "--no-channels-last", "--device", "cpu", "--quiet"]
# Each command's tiny flags (workers are given per run).
COMMANDS = {
    "pretrain-psnr": ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--batch-size", "2"],
    "train": ["--variant", "esrgan", "--nf", "8", "--nb", "1", "--set", "model.gc=4",
              "--batch-size", "2", "--set", "loss.perceptual_net=vgg_random",
              "--set", "loss.perceptual_layer=conv1_2", "--set", "d.nf=4"],
    "pretrain-nse": ["--task", "jigsaw", "--crop", "96", "--set", "nse.mid_channels=8",
                     "--set", "nse.head_hidden=16", "--batch-size", "2"],
}
WEIGHTS = {"pretrain-psnr": "model.safetensors", "train": "model.safetensors",
           "pretrain-nse": "nse.safetensors"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A patch store (PSNR / GAN) and a folder of photographs (NSE)."""
    from skimage import data as skdata

    root = tmp_path_factory.mktemp("signal_data")
    photos = root / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        write_image(photos / f"{name}.png", getattr(skdata, name)()[40:200, 40:200])
    return {"store": make_store(root / "store"), "photos": photos}


def _invoke(*args: object):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _train_records(run: Path) -> int:
    try:
        return (run / "log.jsonl").read_text(encoding="utf-8").count('"kind": "train"')
    except OSError:
        return 0


def _start_and_signal(argv: list[str], run: Path, sig: signal.Signals, cwd: Path,
                      after: int = 2) -> subprocess.CompletedProcess[str]:
    """Start ``argv`` in a session of its own, wait for ``after`` logged iterations, send ``sig``
    to its whole process group (as a scheduler does) and wait for it to end.

    The signal goes out once the log shows the iterations, however long that takes; the child
    starts with the stop signals at their defaults (a background ``pytest &`` ignores SIGINT)."""
    proc = subprocess.Popen(argv, env=subprocess_env(), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_stop_signals)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while proc.poll() is None and _train_records(run) < after and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        assert _train_records(run) >= after, "hang guard: no training iteration was logged"
        for pgid in _process_groups(proc.pid):
            os.killpg(pgid, sig)
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _process_groups(pid: int) -> list[int]:
    """``pid``'s process group and those of its descendants (torchrun starts each rank in a
    session of its own; SLURM signals every process of the job, whatever its group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    groups, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            group = os.getpgid(p)
        except ProcessLookupError:
            continue
        if group not in groups:
            groups.append(group)
        todo.extend(children.get(p, []))
    return groups


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ the real command line


@pytest.mark.slow
@pytest.mark.parametrize(("command", "sig", "code"), [
    ("pretrain-psnr", signal.SIGTERM, 143),
    ("train", signal.SIGINT, 130),
    ("pretrain-nse", signal.SIGUSR1, 143),
], ids=["pretrain-psnr-SIGTERM", "train-SIGINT", "pretrain-nse-SIGUSR1"])
def test_a_signal_to_the_process_group_saves_and_the_resume_is_bit_exact(
    data: dict[str, Path], tmp_path: Path, command: str, sig: signal.Signals, code: int
) -> None:
    source = data["photos"] if command == "pretrain-nse" else data["store"]
    flags = COMMANDS[command]
    run = tmp_path / "run"
    stopped = _start_and_signal(
        [PYTHON, "-m", "spsr_cli.app", command, str(source), "-o", str(run), "--iterations",
         "100000", "--set", "run.log_every=1", "--workers", "2", *flags, *DEVICE],
        run, sig, tmp_path)
    err = " ".join(stopped.stderr.split())
    assert stopped.returncode == code, stopped.stderr[-3000:]
    assert "Traceback" not in err and "DataLoader worker" not in err
    assert f"stopped by {sig.name}" in err
    assert f"Resume with: spsr {command} --resume -o {shlex.quote(str(run))}" in err
    at = load_state(run / "state" / "last.pt")["iteration"]
    assert at >= 2 and read_log(run, "end")[-1] == {
        **read_log(run, "end")[-1], "reason": sig.name, "iteration": at}

    r = _invoke(command, "--resume", "-o", run, "--iterations", at + 2, "--workers", 0, "--quiet")
    assert r.exit_code == 0, r.output
    straight = tmp_path / "straight"
    r = _invoke(command, source, "-o", straight, "--iterations", at + 2, "--set",
                "run.log_every=1", "--workers", 0, *flags, *DEVICE)
    assert r.exit_code == 0, r.output
    name = WEIGHTS[command]
    assert _same_tensors(load_file(run / name), load_file(straight / name))
    a, b = (load_state(p / "state" / "last.pt") for p in (run, straight))
    assert a["iteration"] == b["iteration"] == at + 2
    for net in a["networks"]:
        assert _same_tensors(a["networks"][net], b["networks"][net]), net
    assert [r["iteration"] for r in read_log(run, "start")] == [0, at]


# ------------------------------------------------------------------ timed checkpoints


class FakeClock:
    """A clock that a callback advances by ``step`` seconds per iteration."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        return self.now

    def tick(self, trainer: Trainer) -> None:
        self.now += self.step


def test_timed_checkpoints_follow_the_clock_and_change_nothing(tmp_path: Path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 8, "run.checkpoint_every": 100,
                                 "run.checkpoint_minutes": 1, "run.keep_states": 5,
                                 "optim.lr_g": 1e-3})
    data = TinyPairs(n=6)
    clock = FakeClock(25.0)  # 25 s an iteration: a minute has passed after 3, 6 iterations
    crash = tmp_path / "crash"

    def kill_at_seven(trainer: Trainer) -> None:  # a SIGKILL: only what is on disk survives
        if trainer.iteration == 7:
            shutil.copytree(trainer.run_dir, crash)

    Trainer(cfg, tmp_path / "timed", dataset=data, clock=clock,
            callbacks=[clock.tick, kill_at_seven]).run()
    assert [r["iteration"] for r in read_log(tmp_path / "timed", "checkpoint")] == [3, 6, 8]
    # Timed checkpoints update last.pt only; numbered states stay on the iteration grid.
    assert [p.name for p in (tmp_path / "timed" / "state").glob("iter_*.pt")] == ["iter_00000008.pt"]

    cfg.run.checkpoint_minutes = 0
    off = FakeClock(25.0)
    Trainer(cfg, tmp_path / "off", dataset=data, clock=off, callbacks=[off.tick]).run()
    assert [r["iteration"] for r in read_log(tmp_path / "off", "checkpoint")] == [8]
    weights = load_file(tmp_path / "off" / "model.safetensors")
    assert _same_tensors(load_file(tmp_path / "timed" / "model.safetensors"), weights)

    assert load_state(crash / "state" / "last.pt")["iteration"] == 6  # one iteration lost
    result = Trainer(cfg, crash, resume=True, dataset=data).run()
    assert (result.reason, result.iteration) == ("finished", 8)
    assert _same_tensors(load_file(crash / "model.safetensors"), weights)


def test_the_clock_restarts_at_every_checkpoint_and_session(tmp_path: Path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 6, "run.checkpoint_every": 2,
                                 "run.checkpoint_minutes": 1.5})
    clock = FakeClock(40.0)  # 80 s between iteration checkpoints: never a minute and a half
    Trainer(cfg, tmp_path / "run", dataset=TinyPairs(n=6), clock=clock,
            callbacks=[clock.tick]).run()
    assert [r["iteration"] for r in read_log(tmp_path / "run", "checkpoint")] == [2, 4, 6]
    for bad in (-1.0, float("nan")):
        cfg.run.checkpoint_minutes = bad
        with pytest.raises(ConfigError, match="checkpoint_minutes"):
            validate(cfg)


# ------------------------------------------------------------------ the signal helpers


def test_stop_signals_record_the_first_and_restore_the_handlers() -> None:
    with python_sigint():  # also when pytest runs in the background, with SIGINT ignored
        before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        with StopSignals() as stop:
            signal.raise_signal(signal.SIGUSR1)
            signal.raise_signal(signal.SIGTERM)  # torchrun's agent forwarding: changes nothing
            assert stop.reason == "SIGUSR1"
            with pytest.raises(KeyboardInterrupt):  # a Ctrl-C after that: stop now
                signal.raise_signal(signal.SIGINT)
        assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before


def test_an_ignored_signal_stays_ignored() -> None:
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # as nohup does for SIGHUP
    try:
        with StopSignals() as stop:
            assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
            signal.raise_signal(signal.SIGUSR1)
            assert stop.reason is None
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_workers_ignore_stop_signals_and_die_with_their_parent(tmp_path: Path) -> None:
    """A worker that outlives its main process (here: one that hangs in ``__getitem__``) is
    killed with it, although it ignores SIGTERM."""
    script = tmp_path / "orphan.py"
    script.write_text(
        "import os, sys, time, torch\n"
        "from torch.utils.data import DataLoader, Dataset\n"
        "from spsr.train.signals import ignore_stop_signals\n"
        "class Slow(Dataset):\n"
        "    def __len__(self): return 4\n"
        "    def __getitem__(self, i):\n"
        "        print(os.getpid(), flush=True); time.sleep(600); return i\n"
        "it = iter(DataLoader(Slow(), num_workers=1, worker_init_fn=ignore_stop_signals))\n"
        "time.sleep(600)\n", encoding="utf-8")
    proc = subprocess.Popen([PYTHON, str(script)], env=subprocess_env(), stdout=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=default_stop_signals)
    worker = 0
    try:
        worker = int(proc.stdout.readline())  # type: ignore[union-attr]
        # Ignored (the main process decides): the kernel drops an ignored signal when it is
        # sent, so the worker is alive right after, with no wait to guess.
        status = Path(f"/proc/{worker}/status").read_text().splitlines()
        ignored = int(next(line for line in status if line.startswith("SigIgn:")).split()[1], 16)
        assert all(ignored >> (sig - 1) & 1 for sig in (signal.SIGTERM, signal.SIGINT))
        os.kill(worker, signal.SIGTERM)
        os.kill(worker, signal.SIGINT)
        assert _alive(worker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=HANG_GUARD_S)
        deadline = time.monotonic() + HANG_GUARD_S
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        for pid in (proc.pid, worker):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=HANG_GUARD_S)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ------------------------------------------------------------------ torchrun


TORCHRUN = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.slow
def test_processes_agree_on_the_stop_and_on_timed_checkpoints(tmp_path: Path) -> None:
    worker = Path(__file__).resolve().parents[1] / "_train_ddp_stop_worker.py"
    proc = subprocess.run([*TORCHRUN, str(worker), str(tmp_path)], env=subprocess_env(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((tmp_path / "results.json").read_text()) == [[3, "SIGUSR1"]] * 2
    run = tmp_path / "run"
    assert [r["iteration"] for r in read_log(run, "checkpoint")] == [2, 3]  # 80 s, then the stop
    assert read_log(run, "end")[-1]["reason"] == "SIGUSR1"
    assert len(load_state(run / "state" / "last.pt")["rng"]) == 2


@pytest.mark.slow
def test_sigterm_to_a_torchrun_job_saves_one_state_and_resumes_bit_exact(
    data: dict[str, Path], tmp_path: Path
) -> None:
    flags = [*COMMANDS["pretrain-psnr"][:-2], "--batch-size", "4", "--set", "run.log_every=1",
             *DEVICE]
    cli = ["-m", "spsr_cli.app", "pretrain-psnr"]
    run = tmp_path / "run"
    stopped = _start_and_signal(
        [*TORCHRUN, *cli, str(data["store"]), "-o", str(run), "--iterations", "100000",
         "--workers", "1", *flags], run, signal.SIGTERM, tmp_path)
    err = " ".join(stopped.stderr.split())
    assert "DataLoader worker" not in err
    assert f"Resume with: spsr pretrain-psnr --resume -o {shlex.quote(str(run))} (under the same torchrun" in err
    state = load_state(run / "state" / "last.pt")
    at = state["iteration"]
    assert at >= 2 and len(state["rng"]) == 2
    assert read_log(run, "end")[-1]["reason"] == "SIGTERM"

    for args in (["--resume", "-o", str(run)], [str(data["store"]), "-o", str(tmp_path / "straight")]):
        proc = subprocess.run([*TORCHRUN, *cli, *args, "--iterations", str(at + 2), "--workers",
                               "0", *flags], env=subprocess_env(), cwd=tmp_path,
                              capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
        assert proc.returncode == 0, proc.stderr[-4000:]
    assert _same_tensors(load_file(run / "model.safetensors"),
                         load_file(tmp_path / "straight" / "model.safetensors"))
