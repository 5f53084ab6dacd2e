"""Device rules that need no GPU to check: device names, the cuDNN settings a CUDA training
makes (and undoes), one-process ``torchrun`` joining a process group, per-device RNG state."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.errors import ConfigError
from spsr.train import distributed as D
from spsr.train.engine import _KernelSettings
from spsr.train.state import capture_rng, restore_rng
from spsr_cli.app import app


def test_device_names_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert D.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        D.resolve_device("gpu")
    with pytest.raises(ConfigError, match="unsupported device"):
        D.resolve_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        D.resolve_device("cuda")
    # A machine with one GPU: cuda, cuda:0 and auto name it (auto: the process's LOCAL_RANK);
    # cuda:1 is a clear error, not a CUDA "invalid device ordinal" traceback later.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert D.resolve_device("cuda") == D.resolve_device("auto") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match=r"cuda:1: this machine has 1 CUDA"):
        D.resolve_device("cuda:1")
    with pytest.raises(ConfigError, match=r"cuda:3: this machine has 1 CUDA"):
        D.resolve_device("auto", local_rank=3)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert D.resolve_device("auto", local_rank=3) == torch.device("cuda:3")


def test_upscale_on_a_missing_gpu_is_one_line(tmp_path: Path, tiny_spsr_weights: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    result = CliRunner().invoke(app, ["upscale", str(tmp_path / "a.png"), str(tmp_path / "out"),
                                      "--weights", str(tiny_spsr_weights), "--device", "cuda"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no CUDA GPU is available" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


@pytest.fixture()
def restore_kernel_flags():
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    yield before
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[:2]
    torch.use_deterministic_algorithms(before[2], warn_only=before[3])


def test_cuda_training_autotunes_cudnn_or_runs_deterministic_and_undoes_it(restore_kernel_flags) -> None:
    before = restore_kernel_flags
    untouched = _KernelSettings.apply(torch.device("cpu"), deterministic=True)
    assert not untouched.changed and torch.backends.cudnn.benchmark == before[0]
    assert torch.are_deterministic_algorithms_enabled() == before[2]

    fast = _KernelSettings.apply(torch.device("cuda:0"), deterministic=False)
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    fast.restore()
    assert torch.backends.cudnn.benchmark == before[0]

    exact = _KernelSettings.apply(torch.device("cuda:0"), deterministic=True)
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    exact.restore()
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled()) == (before[0], before[1], before[2])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_ONE_PROCESS_GROUP = """
import os
import torch
from spsr.train import distributed as D

for name in ("TORCHELASTIC_RUN_ID", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
    os.environ.pop(name, None)
plain = D.init_distributed("cpu")
assert (plain.backend, plain.distributed) == ("none", False)

os.environ.update(TORCHELASTIC_RUN_ID="test", WORLD_SIZE="1", RANK="0", LOCAL_RANK="0",
                  MASTER_ADDR="127.0.0.1")  # what torchrun --nproc_per_node 1 sets
ctx = D.init_distributed("cpu")
try:
    assert (ctx.backend, ctx.world_size, ctx.distributed) == ("gloo", 1, True)
    assert torch.distributed.is_initialized()
    assert D.all_true(ctx, True) and not D.all_true(ctx, False)
    assert D.mean_dict(ctx, {"a": 2.0}) == {"a": 2.0}
    assert D.broadcast_object(ctx, {"x": 1}) == {"x": 1}
finally:
    D.shutdown(ctx)
assert not torch.distributed.is_initialized()
print("ok")
"""


def test_one_process_under_torchrun_joins_a_group_and_a_plain_run_does_not() -> None:
    """In a process of its own: a gloo group (its store server and threads) is no state to leave
    in the test runner's process, which later forks DataLoader workers."""
    import subprocess
    import sys

    from _hang_guard import HANG_GUARD_S
    from _train_fixtures import subprocess_env

    env = {**subprocess_env(), "MASTER_PORT": str(_free_port())}
    proc = subprocess.run([sys.executable, "-c", _ONE_PROCESS_GROUP], env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_rng_state_holds_only_this_process_device() -> None:
    state = capture_rng(torch.device("cpu"))
    assert state["cuda"] == []
    torch.manual_seed(3)
    saved = capture_rng(torch.device("cpu"))
    a = torch.rand(4)
    restore_rng(saved, torch.device("cpu"))
    assert torch.equal(torch.rand(4), a)


def test_out_of_gpu_memory_is_one_line_and_other_errors_pass(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from spsr_cli._common import guarded

    @guarded
    def oom() -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.\nmore")

    with pytest.raises(typer.Exit) as exit_info:
        oom()
    assert exit_info.value.exit_code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "out of GPU memory (CUDA out of memory. Tried to allocate 2.00 GiB.)" in err
    assert "lower --batch-size" in err and "more" not in err

    @guarded
    def bug() -> None:
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="a real bug"):
        bug()
