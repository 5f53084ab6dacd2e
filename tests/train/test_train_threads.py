"""The trainer's CPU thread plan: the main process on the cores, data workers single-threaded."""

from __future__ import annotations

import pytest
import torch
from _train_fixtures import TinyPairs, one_thread, tiny_config  # noqa: F401 (autouse fixture)

from spsr.train.engine import Trainer
from spsr.train.log import Reporter, read_log
from spsr.train.threads import plan_threads, single_threaded_worker


def test_plan_takes_the_free_share_of_the_cores() -> None:
    env: dict[str, str] = {}
    assert plan_threads(2, environ=env, cores=8, busy=0).main == 8
    assert plan_threads(2, processes=4, environ=env, cores=8, busy=0).main == 2  # torchrun share
    assert plan_threads(0, environ=env, cores=8, busy=5).main == 3  # others use 5 cores now
    assert plan_threads(0, environ=env, cores=2, busy=6).main == 1  # loaded: at least one
    resumed = plan_threads(0, environ=env, cores=8, busy=7, previous=4)
    assert resumed.main == 4 and resumed.resumed  # a resumed run keeps its count


def test_omp_num_threads_is_obeyed() -> None:
    plan = plan_threads(2, environ={"OMP_NUM_THREADS": "1"}, cores=8, busy=0)
    assert plan.from_env and plan.main == torch.get_num_threads()
    assert "OMP_NUM_THREADS" in plan.describe()


def test_description_says_what_was_chosen_and_why() -> None:
    text = plan_threads(2, environ={}, cores=2, busy=1).describe()
    assert text.startswith("CPU threads: 1 for training") and "2 usable cores" in text
    assert "1 busy with other processes" in text and "2 data worker(s) with 1 thread each" in text
    assert "\n" not in text


def test_worker_init_makes_a_process_single_threaded() -> None:
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        single_threaded_worker(0)
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    finally:
        from threadpoolctl import threadpool_limits

        threadpool_limits(None)  # back to the defaults for the rest of this test process
        torch.set_num_threads(before)


class _Notes(Reporter):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_trainer_applies_logs_and_says_the_plan(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("spsr.train.threads.usable_cores", lambda: 3)
    monkeypatch.setattr("spsr.train.threads.busy_cores", lambda: 1)
    cfg = tiny_config("psnr", **{"run.iterations": 1, "data.workers": 0, "data.batch_size": 2,
                                 "run.checkpoint_every": 1})
    notes = _Notes()
    Trainer(cfg, tmp_path / "run", dataset=TinyPairs(), reporter=notes).run()
    assert torch.get_num_threads() == 2  # 3 cores, 1 busy
    (start,) = read_log(tmp_path / "run", "start")
    assert start["threads"] == 2 and start["data_workers"] == 0
    said = ("CPU threads: 2 for training (of 3 usable cores, 1 busy with other processes; "
            "set OMP_NUM_THREADS to choose), no data workers")
    assert notes.notes == [said]
