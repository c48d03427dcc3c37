"""One BLAS thread inside Dask block tasks (see :mod:`romdask.offline.pod`).

The BLAS thread count is a process-wide setting, and ``threadpool_limits`` restores the count
it found on exit. Tasks of the threaded scheduler overlap: with a plain ``threadpool_limits(1)``
per task, a task that ends can restore 2 threads while another is still running (its products
then use 2 threads), and a task that started inside another's limit restores 1 when it ends
(the driver's later factorizations then use 1). Either way the thread count of a product, hence
its rounding, depended on the task order. Here the first task in sets one thread and the last
one out restores the count: while any task runs, BLAS has exactly one thread. :func:`reduce`
and :func:`pod` hold it in the calling thread for the whole run (the driver's factorizations
included): a count set or restored from a Dask worker thread was seen not to take effect in
this OpenBLAS build (0.3.30/0.3.31), one set from the calling thread does.

:func:`aligned` is the other half: a task's arrays may arrive unaligned (distributed
deserializes them from network frames at any byte offset), and numpy then copies them before a
product, sometimes into another layout that takes another BLAS routine or its own loop (other
roundings). Tasks that make model arrays pass their inputs through :func:`aligned` first.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["aligned", "blas_single_thread", "one_blas_thread"]

_lock = threading.Lock()
_active = 0
_limits: Any = None


@contextmanager
def blas_single_thread() -> Iterator[None]:
    """One BLAS thread in this process while any caller is inside (re-entrant, thread-safe)."""
    global _active, _limits
    with _lock:
        if _active == 0:
            _limits = threadpool_limits(1)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                limits, _limits = _limits, None
                limits.restore_original_limits()


def one_blas_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run under :func:`blas_single_thread`: Dask already runs one task per worker thread,
    and a fixed BLAS thread count makes the sums (hence the results) independent of the
    scheduler, bit for bit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with blas_single_thread():
            return fn(*args, **kwargs)

    return wrapper


def aligned(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """``x`` as an aligned C-contiguous array of ``dtype`` (copied only when it is not one).

    numpy computes the same bytes for any aligned address (measured for 8-byte offsets from a
    64-byte boundary) but not for unaligned inputs, which it copies first.
    """
    return np.require(x, dtype, ["C_CONTIGUOUS", "ALIGNED"])
