"""One BLAS thread inside Dask block tasks (see :mod:`romdask.offline.pod`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_limits


def one_blas_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run under ``threadpool_limits(1)``: Dask already runs one task per worker thread,
    and a fixed BLAS thread count makes the sums (hence the results) independent of the
    scheduler, bit for bit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(1):
            return fn(*args, **kwargs)

    return wrapper
