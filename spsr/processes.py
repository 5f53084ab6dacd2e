"""Worker processes that end with the process that started them.

Used by ``prepare-data``'s decoding pool and by the training DataLoader workers: both ignore the
stop signals (the main process handles them), so they must not outlive a main process that was
killed outright (``kill -9``, a lost node).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` (the pid that started it) dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``), and a
    parent that died before that took effect ends this process at once; elsewhere a daemon thread
    polls the parent id once a second.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != parent:
                    os._exit(1)
                return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="spsr-parent-watch", daemon=True).start()
