"""CPU thread counts for training: the main process on the cores, data workers single-threaded.

PyTorch starts one intra-op thread per core in every process. A training process and its data
workers would then all compete for the same cores, and on a machine that other heavy processes
already keep busy, threads that wait for each other at every operation can make training several
times slower than one thread would. The plan:

* ``OMP_NUM_THREADS`` set: it is obeyed (PyTorch reads it at start) and nothing is changed;
* otherwise the training process gets its share of the usable cores (the cores this process may
  run on, divided among the training processes of this machine under torchrun), less the cores
  that other processes are using right now (runnable tasks in ``/proc/loadavg``), at least one;
* a resumed run keeps the count its run started with, so it continues exactly as it would have
  (CPU kernels may round differently with another thread count);
* data-loader workers always run with one thread (PyTorch's and the BLAS / OpenMP pools'), since
  the main process does the heavy work and each worker only cuts and flips patches.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ThreadPlan:
    """What training runs with.

    Attributes:
        main: intra-op threads of this training process.
        cores: usable cores of this process.
        processes: training processes sharing them on this machine.
        busy: cores other processes were using when training started.
        workers: data-loader worker processes (each single-threaded).
        from_env: ``main`` comes from ``OMP_NUM_THREADS``.
        resumed: ``main`` is the count the resumed run started with.
    """

    main: int
    cores: int
    processes: int
    busy: int
    workers: int
    from_env: bool
    resumed: bool = False

    def describe(self) -> str:
        """One line for the log: what was chosen and why."""
        if self.from_env:
            why = "as OMP_NUM_THREADS asks"
        elif self.resumed:
            why = "as when the run started, so it continues exactly; set OMP_NUM_THREADS to choose"
        else:
            share = f"{self.cores} usable cores" + (
                f" shared by {self.processes} training processes" if self.processes > 1 else ""
            )
            why = f"of {share}" + (f", {self.busy} busy with other processes" if self.busy else "")
            why += "; set OMP_NUM_THREADS to choose"
        workers = (
            f"{self.workers} data worker(s) with 1 thread each" if self.workers else "no data workers"
        )
        return f"CPU threads: {self.main} for training ({why}), {workers}"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), or the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores(samples: int = 5, interval: float = 0.01) -> int:
    """Cores other processes are using now: runnable tasks in ``/proc/loadavg`` less this one.

    The median of a few quick readings, so one momentary spike does not count. 0 where
    ``/proc/loadavg`` cannot be read.
    """
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = fh.read().split()[3].split("/")[0]
            counts.append(int(running))
        except (OSError, IndexError, ValueError):
            return 0
        if i + 1 < samples:
            time.sleep(interval)
    return max(0, int(statistics.median(counts)) - 1)


def plan_threads(
    workers: int,
    processes: int = 1,
    environ: Mapping[str, str] | None = None,
    cores: int | None = None,
    busy: int | None = None,
    previous: int | None = None,
) -> ThreadPlan:
    """Choose the training process's thread count (see the module docstring).

    Args:
        workers: data-loader worker processes of this training process.
        processes: training processes on this machine (``LOCAL_WORLD_SIZE`` under torchrun).
        environ: the environment (default ``os.environ``).
        cores: usable cores (default: :func:`usable_cores`).
        busy: cores in use by others (default: :func:`busy_cores`).
        previous: the count a resumed run started with (kept).
    """
    environ = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    processes = max(1, processes)
    if environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        return ThreadPlan(torch.get_num_threads(), cores, processes, 0, workers, True)
    if previous is not None and previous > 0:
        return ThreadPlan(previous, cores, processes, 0, workers, False, resumed=True)
    busy = busy_cores() if busy is None else busy
    share = max(1, cores // processes)
    main = max(1, min(share, cores - busy))
    return ThreadPlan(main, cores, processes, min(busy, cores), workers, False)


def apply_plan(plan: ThreadPlan) -> None:
    """Set this process's intra-op threads to the plan's (nothing when the environment decided)."""
    if not plan.from_env:
        torch.set_num_threads(plan.main)


def single_threaded_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the training data loaders: one thread for PyTorch and BLAS/OpenMP."""
    del worker_id
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
