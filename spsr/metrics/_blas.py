"""Run small dense linear algebra single-threaded.

The no-reference features do many small or skinny BLAS/LAPACK calls (15x15 covariances over a few
hundred thousand pixels, SVDs of 25-row matrices). Multi-threaded OpenBLAS gains nothing on them and
loses a lot when the cores are shared (a 25 x 10000 SVD measured 0.01 s on one thread and 0.4 s on
two on a busy 2-core machine), so those sections pin BLAS to one thread and restore it afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS/LAPACK to one thread inside the block (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency; stay usable without it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
