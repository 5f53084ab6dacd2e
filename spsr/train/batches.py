"""A resumable, reproducible stream of training batches.

The order of samples is a function of ``(seed, epoch)`` only, and every sample's random
augmentation is drawn under a seed that is a function of ``(seed, epoch, position)`` only, so:

* the data position is two integers (``epoch``, ``batches consumed in the epoch``) and a resumed
  run sees exactly the batches an uninterrupted run would have seen;
* the *global* batch is the same whatever the number of processes: process ``r`` of ``W`` takes
  rows ``r·b .. (r+1)·b`` of each global batch of ``W·b`` samples, so 2 processes × 8 see the
  same 16 samples, with the same augmentations, as 1 process × 16;
* worker processes (``workers > 0``) change nothing; they ignore SIGINT / SIGTERM / SIGUSR1, which
  a signal to the process group also brings them, and leave the stop to the main process
  (:mod:`spsr.train.signals`);
* no wait is unbounded: a worker that raises stops the stream at once with its one-line reason
  (the workers are shut down before the error leaves, each joined for at most a few seconds, then
  terminated), a worker that dies without a word stops it within ``WORKER_POLL_S``, and one that
  hangs after ``timeout_s``; PyTorch's asynchronous SIGCHLD handler is removed
  (:func:`drop_torch_sigchld_handler`).

The per-sample seed is applied to Python's ``random``, NumPy's global generator and torch's CPU
generator around ``dataset[index]`` and the previous states are restored afterwards, so a dataset
that augments with any of those global generators is reproducible without knowing about it.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from spsr.errors import ConfigError, DataStoreError, SpsrError, user_message
from spsr.train.signals import ignore_stop_signals, stop_signals_blocked
from spsr.train.threads import single_threaded_worker

#: Longest wait for one batch from the worker processes: a hang guard, far above any real batch.
DATA_TIMEOUT_S = 600.0
#: How often, in seconds, a wait for a batch checks that every data worker is still alive.
WORKER_POLL_S = 5.0


def drop_torch_sigchld_handler() -> None:
    """Put back the default SIGCHLD handling where PyTorch's DataLoader installed its own.

    PyTorch's handler (installed once per process, by the first multi-process DataLoader) raises
    "DataLoader worker ... killed" wherever the main thread happens to be when any child process
    ends: inside HDF5 or other native code, in an unrelated subprocess call, long after the
    loader. :class:`BatchStream` finds a dead worker synchronously instead, by the DataLoader's own
    liveness check after each short wait (:data:`WORKER_POLL_S`)."""
    if not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGCHLD)
    if callable(current) and getattr(current, "__module__", "").startswith("torch.utils.data"):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


class _Stuck(Exception):
    """No batch within ``timeout_s`` while every worker is alive (a hung worker)."""


_MASK = (1 << 63) - 1
# A position no sample has: the seed of the epoch's shuffling.
_ORDER_POSITION = 1 << 40


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for one sample of one epoch (SplitMix64-style mixing)."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + position * 0x94D049BB133111EB) & ((1 << 64) - 1)
    x ^= x >> 31
    x = (x * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    x ^= x >> 29
    return x & _MASK


@contextlib.contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch (CPU) global generators; restore their states on exit."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is ``dataset[index]`` under ``seed``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded_global_rngs(seed):
            return self.dataset[index]


def _init_worker(worker_id: int) -> None:
    """Each data worker: leaves the stop signals to the main process and runs single-threaded."""
    ignore_stop_signals(worker_id)
    single_threaded_worker(worker_id)


class BatchStream:
    """Endless iterator over this process's share of reproducible global batches.

    Args:
        dataset: map-style dataset of dicts of tensors (e.g. ``{"lr": ..., "hr": ...}``).
        global_batch: samples per step over all processes.
        seed: base seed of order and augmentation.
        rank: this process's rank.
        world_size: number of processes (must divide ``global_batch``).
        workers: DataLoader worker processes (0: load in this process).
        pin_memory: pin batches (for CUDA).
        timeout_s: longest wait for one batch from the workers (a hang guard).
    """

    def __init__(
        self,
        dataset: Dataset,
        global_batch: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        pin_memory: bool = False,
        timeout_s: float = DATA_TIMEOUT_S,
    ) -> None:
        if global_batch % world_size:
            raise ConfigError(
                f"batch size {global_batch} does not split evenly over {world_size} processes"
            )
        n = len(dataset)  # type: ignore[arg-type]
        if n < global_batch:
            raise ConfigError(f"the training set has {n} samples, fewer than one batch of {global_batch}")
        self.dataset = SeededSamples(dataset)
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.workers = workers
        self.pin_memory = pin_memory
        self.timeout_s = timeout_s
        self.batches_per_epoch = n // global_batch
        self.epoch = 0
        self.position = 0  # batches consumed in the current epoch
        self._iterator: Iterator[Any] | None = None

    def state_dict(self) -> dict[str, int]:
        """The data position: ``epoch`` and batches consumed in it."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a saved position (drops any batches already prefetched)."""
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._iterator = None

    def _order(self, epoch: int) -> list[int]:
        g = torch.Generator()
        g.manual_seed(sample_seed(self.seed, epoch, _ORDER_POSITION))
        return torch.randperm(len(self.dataset), generator=g).tolist()

    def _local_keys(self, epoch: int, start: int) -> list[list[tuple[int, int]]]:
        order = self._order(epoch)
        batches = []
        for b in range(start, self.batches_per_epoch):
            first = b * self.global_batch + self.rank * self.local_batch
            rows = range(first, first + self.local_batch)
            batches.append([(order[p], sample_seed(self.seed, epoch, p)) for p in rows])
        return batches

    def _start_epoch(self) -> None:
        loader = DataLoader(
            self.dataset,
            batch_sampler=self._local_keys(self.epoch, self.position),
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            # A private generator: creating an iterator must not draw from torch's global RNG
            # (a resumed run creates one more iterator than an uninterrupted run).
            generator=torch.Generator().manual_seed(self.seed),
            worker_init_fn=_init_worker if self.workers > 0 else None,
            # Short waits, each ending in the DataLoader's own check for dead workers; __next__
            # adds them up to timeout_s (a worker alive but stuck).
            timeout=min(WORKER_POLL_S, self.timeout_s) if self.workers > 0 else 0,
        )
        with stop_signals_blocked():  # the workers start with them blocked, until they ignore them
            self._iterator = iter(loader)
        drop_torch_sigchld_handler()

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self.position >= self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._iterator = None
        if self._iterator is None:
            self._start_epoch()
        assert self._iterator is not None
        try:
            batch = self._next_batch()
        except BaseException as exc:
            dead = [w.pid for w in getattr(self._iterator, "_workers", []) if not w.is_alive()]
            self.close()  # the other workers stop now, not at garbage collection or exit
            if isinstance(exc, SpsrError) or not isinstance(exc, Exception):
                raise
            if self.workers > 0 and isinstance(exc, (ConnectionError, EOFError)):
                # a worker that died while the batch it had made was being handed over (its
                # tensors travel through a connection to that process)
                who = f"(pid(s) {', '.join(map(str, dead))}) " if dead else ""
                raise DataStoreError(
                    f"a data worker failed: DataLoader worker {who}ended while handing over a "
                    f"batch ({type(exc).__name__})"
                ) from None
            text = str(exc)
            if isinstance(exc, _Stuck):
                raise DataStoreError(
                    f"no batch from the {self.workers} data worker process(es) in "
                    f"{self.timeout_s:g} s (a worker hung); try --workers 0 to see where the "
                    "data loading stops"
                ) from None
            if "\nOriginal Traceback" in text or "DataLoader worker" in text:
                # a worker's exception (its traceback in the text), or a worker that died
                first = (user_message(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DataStoreError(f"a data worker failed: {first}") from None
            raise
        self.position += 1
        return batch

    def _next_batch(self) -> Any:
        """The next batch, waiting at most ``timeout_s`` in polls of ``WORKER_POLL_S`` (each poll
        that finds a dead worker raises the DataLoader's "exited unexpectedly" error)."""
        assert self._iterator is not None
        if self.workers == 0:
            return next(self._iterator)
        waited = 0.0
        while True:
            try:
                return next(self._iterator)
            except RuntimeError as exc:
                if "DataLoader timed out after" not in str(exc):
                    raise
                waited += min(WORKER_POLL_S, self.timeout_s)
                if waited >= self.timeout_s:
                    raise _Stuck() from None

    def close(self) -> None:
        """Stop worker processes: asked to exit, joined for a few seconds each, then killed.

        PyTorch ends a worker that does not exit with SIGTERM, which ours ignore (the stop is the
        main process's, :mod:`spsr.train.signals`), and multiprocessing then joins it at exit
        without a timeout: a hung worker would keep the process alive for ever. So SIGKILL."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        for worker in getattr(iterator, "_workers", []):
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=10)
