"""TensorBoard (and W&B) run monitors: the event files read back with tensorboard's own readers,
one file per run without duplicated steps after a hard kill and --resume, the CLI switches."""

from __future__ import annotations

import struct
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _train_fixtures import TinyPairs, make_store, one_thread, tiny_config  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from spsr.train.engine import Trainer
from spsr.train.monitor import (
    EVENT_GLOB,
    TensorBoardMonitor,
    WandbMonitor,
    make_monitors,
    scalar_values,
)
from spsr.train.validate import ValImage
from spsr_cli.app import app

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    SCALARS,
    EventAccumulator,
)
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


class _HardKill(Exception):
    """Stands for a process killed without a chance to checkpoint (power cut, kill -9)."""


def _kill_at(iteration: int):
    def callback(trainer: Trainer) -> None:
        if trainer.iteration == iteration:
            raise _HardKill
    return callback


def _val_images() -> list[ValImage]:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    lr = hr.reshape(8, 4, 10, 4, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    return [ValImage("one", hr, lr), ValImage("two", hr[::-1].copy(), lr[::-1].copy())]


def _scalar_steps(path: Path) -> Counter[tuple[str, int]]:
    """(tag, step) → how often it occurs in an event file (raw, nothing purged)."""
    seen: Counter[tuple[str, int]] = Counter()
    for event in EventFileLoader(str(path)).Load():
        if event.HasField("summary"):
            for value in event.summary.value:
                seen[(value.tag, event.step)] += 1
    return seen


def test_event_files_hold_losses_rates_speed_scores_and_pictures_once_after_a_resume(tmp_path) -> None:
    cfg = tiny_config("g", **{"run.iterations": 8, "run.checkpoint_every": 4, "run.log_every": 2,
                              "data.val_every": 4, "model.nb": 1, "run.checkpoint_minutes": 0})
    run = tmp_path / "run"
    data, val = TinyPairs(n=6), _val_images()
    with pytest.raises(_HardKill):  # killed in 7: step 6 was logged, the state is at 4
        Trainer(cfg, run, dataset=data, val_images=val, callbacks=[_kill_at(7)],
                monitors=[TensorBoardMonitor()]).run()
    (events,) = run.glob(EVENT_GLOB)
    first = _scalar_steps(events)
    assert first[("g/pixel", 6)] == 1  # what the resumed run repeats
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    header = struct.pack("<Q", 64)
    with open(events, "ab") as fh:  # and a record torn by the kill: its header, part of its data
        fh.write(header + struct.pack("<I", masked_crc32c(header)) + b"\x08\x01")
    Trainer(cfg, run, resume=True, dataset=data, val_images=val, monitors=[TensorBoardMonitor()]).run()

    files = sorted(run.glob(EVENT_GLOB))
    assert files == [events]  # the same file, continued
    counts = _scalar_steps(files[0])
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert sorted(s for t, s in counts if t == "g/pixel") == [2, 4, 6, 8]
    assert sorted(s for t, s in counts if t == "val/psnr") == [4, 8]

    acc = EventAccumulator(str(run), size_guidance={SCALARS: 0, IMAGES: 0}).Reload()
    tags = acc.Tags()
    assert {"g/pixel", "g/grad_pixel", "lr/G", "lr/D", "speed/it_per_s", "val/psnr", "val/ssim",
            "val/seconds"} <= set(tags["scalars"])
    assert set(tags["images"]) == {"val/one", "val/two", "gradient/one", "gradient/two"}
    assert [e.step for e in acc.Images("val/one")] == [4, 8]
    lr_crop = acc.Images("val/one")[0]
    assert (lr_crop.height, lr_crop.width) == (32, 3 * 32)  # LR↑ | SR | HR of the 8×8 centre
    grad = acc.Images("gradient/two")[-1]
    assert grad.width == 4 * 32  # M(LR)↑ | branch | M(SR) | M(HR)
    psnr = [e.value for e in acc.Scalars("val/psnr")]
    from spsr.train.log import read_log

    assert psnr == pytest.approx([r["psnr"] for r in read_log(run, "val")], rel=1e-6)


def test_a_fresh_run_drops_event_files_left_by_one_that_never_checkpointed(tmp_path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 2, "run.checkpoint_every": 2})
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.out.tfevents.1.old.1.0").write_bytes(b"")
    Trainer(cfg, run, dataset=TinyPairs(n=4), monitors=[TensorBoardMonitor()]).run()
    files = list(run.glob(EVENT_GLOB))
    assert len(files) == 1 and not files[0].name.endswith(".old.1.0")
    assert sorted(s for t, s in _scalar_steps(files[0]) if t == "g/pixel") == [1, 2]


def test_scalar_tags_of_records() -> None:
    train = {"kind": "train", "iteration": 3, "time": 1.0, "g/pixel": 0.5, "lr/G": 1e-4,
             "it_per_s": 2.0, "eta_s": 9.0, "skipped": 0, "epoch": 1}
    assert scalar_values(train) == {"g/pixel": 0.5, "lr/G": 1e-4, "speed/it_per_s": 2.0,
                                    "train/skipped": 0.0}
    val = {"kind": "val", "iteration": 3, "psnr": 30.0, "ssim": 0.9, "protocol": "spsr x4",
           "images": 2, "best": True, "seconds": 1.5}
    assert scalar_values(val) == {"val/psnr": 30.0, "val/ssim": 0.9, "val/seconds": 1.5}
    assert scalar_values({"kind": "checkpoint", "iteration": 3}) == {}


def test_make_monitors_follows_the_switches(monkeypatch) -> None:
    assert [type(m) for m in make_monitors(None, None)] == [TensorBoardMonitor]
    assert make_monitors(False, None) == []
    monkeypatch.setattr("spsr.train.monitor.tensorboard_available", lambda: False)
    assert make_monitors(None, None) == []  # default: on only where the package is there
    from spsr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"pip install 'spsr\[tensorboard\]'"):
        make_monitors(True, None)


class _FakeWandbRun:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def log(self, values: dict, step: int) -> None:
        self.calls.append(("log", step, sorted(values)))

    def finish(self) -> None:
        self.calls.append(("finish",))


def test_wandb_is_offline_unless_asked_and_logs_by_iteration(tmp_path, monkeypatch) -> None:
    calls: list = []
    fake = types.ModuleType("wandb")
    fake.__spec__ = types.SimpleNamespace(name="wandb")  # type: ignore[assignment]

    def init(**kwargs):
        calls.append(("init", kwargs["mode"], kwargs["project"], kwargs["dir"]))
        return _FakeWandbRun(calls)

    fake.init = init  # type: ignore[attr-defined]
    fake.Image = lambda array: ("image", array.shape)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object())
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monitor = WandbMonitor("proj")
    monitor.open(tmp_path, 0, False, {"stage": "psnr"})
    monitor.record({"kind": "train", "iteration": 2, "g/pixel": 0.1})
    monitor.record({"kind": "checkpoint", "iteration": 2, "path": "x"})
    monitor.images(2, {"val/a": np.zeros((4, 4, 3), np.uint8)})
    monitor.close()
    assert calls == [("init", "offline", "proj", str(tmp_path)), ("log", 2, ["g/pixel"]),
                     ("log", 2, ["val/a"]), ("finish",)]


RUNNER = CliRunner()
TINY_FLAGS = ["--nf", "8", "--nb", "1", "--set", "model.gc=4", "--batch-size", "2", "--amp", "off",
              "--no-channels-last", "--workers", "0", "--device", "cpu", "--quiet", "--iterations", "2"]


def test_cli_writes_event_files_by_default_and_none_with_no_tensorboard(tmp_path) -> None:
    store = make_store(tmp_path / "data", n_images=2)
    on = tmp_path / "on"
    r = RUNNER.invoke(app, ["pretrain-psnr", str(store), "-o", str(on), *TINY_FLAGS])
    assert r.exit_code == 0, r.output
    assert len(list(on.glob(EVENT_GLOB))) == 1
    off = tmp_path / "off"
    r = RUNNER.invoke(app, ["pretrain-psnr", str(store), "-o", str(off), "--no-tensorboard", *TINY_FLAGS])
    assert r.exit_code == 0, r.output
    assert list(off.glob(EVENT_GLOB)) == []


def test_cli_wandb_without_the_package_is_one_line_before_any_work(tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    run = tmp_path / "run"
    r = RUNNER.invoke(app, ["pretrain-psnr", str(tmp_path / "none.h5"), "-o", str(run),
                            "--wandb", "proj", *TINY_FLAGS])
    assert r.exit_code == 1
    assert "pip install wandb" in r.output and "Traceback" not in r.output
    assert not run.exists()


def test_ablate_rows_get_the_monitors_the_switches_ask_for() -> None:
    from spsr.ablation.hooks import AblationHooks
    from spsr_cli.cmd_ablate import _ConsoleHooks

    planned = object()
    assert AblationHooks().monitors(planned) == []  # the library default: none
    assert [type(m) for m in _ConsoleHooks(True).monitors(planned)] == [TensorBoardMonitor]
    assert _ConsoleHooks(True, tensorboard=False).monitors(planned) == []


@pytest.mark.parametrize("extra", [{}, {"desubpixel_head": True}, {"image_skip": True}])
def test_validation_pictures_of_spsr_generators_and_a_plain_one(extra: dict) -> None:
    import torch

    from spsr.archs import ArchSpec, build_model
    from spsr.train.validate import validation_pictures

    torch.manual_seed(0)
    model = build_model(ArchSpec("spsr", 4, nf=8, nb=1, gc=4, extra=extra)).train()
    pictures = validation_pictures(model, _val_images(), 4, "cpu", count=1)
    assert set(pictures) == {"val/one", "gradient/one"}
    assert pictures["val/one"].shape == (32, 96, 3) and pictures["val/one"].dtype == np.uint8
    assert model.training  # its mode is given back
    plain = build_model(ArchSpec("rrdb", 4, nf=8, nb=1, gc=4))
    assert set(validation_pictures(plain, _val_images(), 4, "cpu")) == {"val/one", "val/two"}


def test_a_run_stopped_by_a_signal_resumes_by_appending_so_a_running_tensorboard_follows(tmp_path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 6, "run.checkpoint_every": 4, "run.log_every": 1,
                                 "run.checkpoint_minutes": 0})
    run = tmp_path / "run"

    def stop_at_3(trainer: Trainer) -> None:
        if trainer.iteration == 3:
            trainer.request_stop("SIGTERM")  # as a SLURM pre-emption: a checkpoint at 3

    result = Trainer(cfg, run, dataset=TinyPairs(n=4), callbacks=[stop_at_3],
                     monitors=[TensorBoardMonitor()]).run()
    assert result.reason == "SIGTERM"
    (events,) = run.glob(EVENT_GLOB)
    before = events.read_bytes()
    Trainer(cfg, run, resume=True, dataset=TinyPairs(n=4), monitors=[TensorBoardMonitor()]).run()
    after = events.read_bytes()
    assert after.startswith(before) and len(after) > len(before)  # nothing cut: only appended
    assert sorted(s for t, s in _scalar_steps(events) if t == "g/pixel") == [1, 2, 3, 4, 5, 6]
