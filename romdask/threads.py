"""The thread policy: numba, BLAS and Dask threads never multiply (docs/conventions.md#threads).

Three thread pools meet in romdask: Dask's (one task per worker thread), BLAS/LAPACK's
(OpenBLAS, MKL with pardiso) and numba's (the law kernels, the assembly). Each is sized for
the whole machine by default, and on top of each other they oversubscribe it: OpenBLAS and MKL
threads spin-wait after a call while numba's threads need the cores. Measured on the 2-core
machine (``python benchmarks/run.py threads``, docs/benchmarks.md), the online solve of an
enriched plate model (31 modes, 1,009 points, 40 increments) took 1.2 s with the default
threads and 0.17 s with one BLAS thread. The rules:

* **Dask tasks** (:func:`one_blas_thread`): one BLAS thread and one numba thread. Worker
  processes get the same from their environment (:data:`romdask.cluster.BLAS_ENV`).
* **Solvers** (:func:`solver_threads`: the online solve, the built-in HF solve, the law
  replays): one BLAS thread (their dense products are small: ``r x r`` systems, ``(n, 6 r)``
  products; numba's kernels call OpenBLAS too), numba threads for the law kernels only where
  they may pay: serial below :data:`PARALLEL_POINTS` points, else the thread's current count
  (``NUMBA_NUM_THREADS``, or a caller's lower setting). The built-in HF solver keeps MKL's
  threads for pardiso's factorization (one thread made it 1.4x slower on 7,425 nodes) and makes
  them idle without spinning (``KMP_BLOCKTIME=0``): 37.7 s -> 30.5 s a cycle on that plate.

The BLAS count is a process-wide setting, and ``threadpool_limits`` restores the count
it found on exit. Tasks of the threaded scheduler overlap: with a plain ``threadpool_limits(1)``
per task, a task that ends can restore 2 threads while another is still running (its products
then use 2 threads), and a task that started inside another's limit restores 1 when it ends
(the driver's later factorizations then use 1). Either way the thread count of a product, hence
its rounding, depended on the task order. Here the first task in sets one thread and the last
one out restores the count: while any task runs, BLAS has exactly one thread. The same holds
between the HF solver (OpenBLAS only) and the others: two overlapping HF solves with plain
contexts left OpenBLAS at one thread for the rest of the process (a full test run). :func:`reduce`
and :func:`pod` hold it in the calling thread for the whole run (the driver's factorizations
included): a count set or restored from a Dask worker thread was seen not to take effect in
this OpenBLAS build (0.3.30/0.3.31), one set from the calling thread does. numba's count is
per thread (``numba.set_num_threads`` sets the calling thread's), so tasks set and restore their
own.

:func:`aligned` is the other half of reproducible tasks: a task's arrays may arrive unaligned
(distributed deserializes them from network frames at any byte offset), and numpy then copies
them before a product, sometimes into another layout that takes another BLAS routine or its own
loop (other roundings). Tasks that make model arrays pass their inputs through :func:`aligned`
first.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["PARALLEL_POINTS", "aligned", "blas_single_thread", "law_threads", "numba_threads", "one_blas_thread",
           "solver_threads"]

#: law kernels on fewer points run on one numba thread (measured: docs/conventions.md#threads)
PARALLEL_POINTS = 500

_lock = threading.Lock()
#: the thread pools limited together: OpenBLAS (numpy, scipy, numba's np.dot) and the others (MKL,
#: BLIS, FlexiBLAS, the OpenMP runtimes); each group is held by a count, so that overlapping holders
#: of either kind never restore a count under another (see the module's notes)
_GROUPS = {"openblas": ["openblas"], "other": ["mkl", "blis", "flexiblas", "openmp"]}
_holders = {group: 0 for group in _GROUPS}
_limiters: dict[str, Any] = {}
_controller: tuple[int, ThreadpoolController] | None = None


def _controller_now() -> ThreadpoolController:
    """A controller kept while no module was imported since: finding the loaded thread pools costs
    ~1 ms (a small online solve: 6-30 ms), and a library that brings its own comes with an import."""
    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1]


def _limit(group: str) -> Any:
    """One thread for the pools of ``group``; the limiter restores what they had."""
    return _controller_now().select(internal_api=_GROUPS[group]).limit(limits=1)


@contextmanager
def _single_thread(groups: tuple[str, ...]) -> Iterator[None]:
    """One thread in the pools of ``groups`` while any caller is inside (re-entrant, thread-safe):
    the first holder of a group limits it, the last one out restores it."""
    with _lock:
        for group in groups:
            if _holders[group] == 0:
                _limiters[group] = _limit(group)
            _holders[group] += 1
    try:
        yield
    finally:
        with _lock:
            for group in groups:
                _holders[group] -= 1
                if _holders[group] == 0:
                    _limiters.pop(group).restore_original_limits()


def blas_single_thread() -> Any:
    """One BLAS (and OpenMP) thread in this process while any caller is inside (re-entrant,
    thread-safe)."""
    return _single_thread(("openblas", "other"))


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """At most ``n`` numba threads in the calling thread while inside (never more than it had)."""
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), old)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


def law_threads(n_points: int | None) -> int:
    """numba threads for law kernels on ``n_points`` points: 1 below :data:`PARALLEL_POINTS`,
    else the calling thread's current count (all points: None)."""
    return 1 if n_points is not None and n_points < PARALLEL_POINTS else numba.get_num_threads()


@contextmanager
def solver_threads(n_points: int | None = None, *, sparse: bool = False) -> Iterator[None]:
    """A solver's threads (the module's rules): one BLAS thread, :func:`law_threads` numba ones.

    ``sparse``: the built-in HF solver's rule: OpenBLAS on one thread, MKL (pardiso's
    factorization) on its own threads, which do not spin between calls (``KMP_BLOCKTIME=0``,
    set by :mod:`romdask.hifi.linear` unless the environment says otherwise)."""
    blas = _single_thread(("openblas",)) if sparse else blas_single_thread()
    with blas, numba_threads(law_threads(n_points)):
        yield


def one_blas_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run under :func:`blas_single_thread` and on one numba thread: Dask already runs one
    task per worker thread, and a fixed BLAS thread count makes the sums (hence the results)
    independent of the scheduler, bit for bit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with blas_single_thread(), numba_threads(1):
            return fn(*args, **kwargs)

    return wrapper


def aligned(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """``x`` as an aligned C-contiguous array of ``dtype`` (copied only when it is not one).

    numpy computes the same bytes for any aligned address (measured for 8-byte offsets from a
    64-byte boundary) but not for unaligned inputs, which it copies first.
    """
    return np.require(x, dtype, ["C_CONTIGUOUS", "ALIGNED"])
