"""Stop signals: how a training (or a grid of trainings) is asked to stop at a resumable state.

A cluster stops a job by signalling every process of it at once: SLURM at the time limit, ``scancel``,
``systemctl stop``, ``docker stop`` and Kubernetes send SIGTERM to the whole process group; a
terminal's Ctrl-C sends SIGINT to the foreground group; SLURM's ``--signal=USR1@120`` sends SIGUSR1
ahead of a pre-emption or the time limit. :class:`StopSignals` turns each of them, in the main
process, into a request the training loop reads after the current iteration (it then saves its
state and returns); :func:`ignore_stop_signals` makes a DataLoader worker leave them to the main
process, so the workers are still there to be shut down cleanly.

A second Ctrl-C stops at once (KeyboardInterrupt; every file written is atomic). A second SIGTERM
or SIGUSR1 changes nothing: ``torchrun``'s agent forwards the signal it got to every rank, which
may already have had it from the scheduler.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from spsr.processes import die_with_parent

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)



class StopSignals:
    """Records the first stop signal while installed (``with StopSignals() as stop: ...``).

    Only the main thread can install handlers; elsewhere the object still takes
    :meth:`request` calls. A signal whose disposition is "ignore" when the block starts (``nohup``,
    a shell's background job) stays ignored.

    Attributes:
        reason: None, or what asked to stop first (``SIGTERM``, ``SIGINT``, ``SIGUSR1``, or the
            reason given to :meth:`request`).
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old: dict[int, Any] = {}

    def request(self, reason: str) -> None:
        """Ask to stop, as a signal would (the first reason is kept)."""
        if self.reason is None:
            self.reason = reason

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is None:
            self.reason = signal.Signals(signum).name
        elif signum == signal.SIGINT:  # a second Ctrl-C: stop now
            self.restore()
            raise KeyboardInterrupt


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: ignore the stop signals and die with the main process.

    The main process receives the same signal and shuts its workers down itself. Because the
    worker now ignores SIGTERM, it is also asked (Linux) to be killed when its parent ends, and
    it exits at once if the main process is already gone.

    Args:
        worker_id: the DataLoader's worker index (unused).
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    die_with_parent(parent.pid if parent is not None and parent.pid else os.getppid())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Hold the stop signals back in this thread (delivered on exit).

    Around the start of DataLoader workers: a forked worker inherits the blocked mask, so a
    signal to the process group in the instant between its start and :func:`ignore_stop_signals`
    stays pending there, and is then discarded.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
