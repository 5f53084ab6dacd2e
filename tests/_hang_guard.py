"""What keeps the tests independent of the machine's speed and of how pytest was started.

* Waits end on an observable state (a log line, a file, a process); their timeouts are only hang
  guards, set far above what a machine three times slower than a quiet 2-core one needs.
* A shell starts background jobs (``pytest -q > log &``) with SIGINT ignored, and a process keeps
  an ignored signal ignored (so does spsr's :class:`~spsr.train.signals.StopSignals`, on purpose,
  for ``nohup``). Tests that send SIGINT give it its default disposition first.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

#: The longest any single wait in a test may take before the test says it hung.
HANG_GUARD_S = 1800.0


def default_stop_signals() -> None:
    """A ``preexec_fn``: the child starts with SIGINT / SIGTERM / SIGUSR1 at their defaults, as
    from an interactive shell, whatever the test runner inherited."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)


@contextlib.contextmanager
def python_sigint() -> Iterator[None]:
    """Within the block SIGINT raises KeyboardInterrupt (Python's default), even when the test
    runner was started with it ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
