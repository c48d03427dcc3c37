"""The thread policy (romdask.threads, docs/conventions.md#threads): the solvers run on one BLAS
thread, the law kernels serially below PARALLEL_POINTS reduced points, Dask tasks on one numba
thread; every count is restored afterwards and numba's is per thread.

The counts are read inside the solves through their ``progress`` callback. On a machine with one
core every count is 1 anyway: those tests are skipped there, saying so."""

from __future__ import annotations

import threading

import numba
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from romdask import threads
from romdask.hifi import solve as hf_solve
from romdask.offline import ReduceOptions, reduce
from romdask.online import ReducedModel, Scenario
from romdask.online.solver import solve as online_solve
from romdask.problems.plate import plate_problem
from romdask.threads import law_threads, numba_threads, one_blas_thread

multicore = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                               reason="one CPU: numba and BLAS have one thread whatever the policy")


def problem(amplitude: float, n_cycles: float):
    return plate_problem(amplitude=amplitude, n=3, n_cycles=n_cycles, increments_per_cycle=16)


def _blas_threads(api: str = "blas") -> set[int]:
    return {info["num_threads"] for info in threadpool_info() if api in (info["user_api"], info["internal_api"])}


class _Counts:
    """``progress`` callback recording (numba threads, BLAS threads) at every output time."""

    def __init__(self, api: str = "blas") -> None:
        self.api = api
        self.seen: set[tuple[int, frozenset[int]]] = set()

    def __call__(self, step, n_steps, info) -> None:
        self.seen.add((numba.get_num_threads(), frozenset(_blas_threads(self.api))))


@pytest.fixture(scope="module")
def model(training, tmp_path_factory):
    t = training("displacement")
    path = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5)).save(
        tmp_path_factory.mktemp("threads") / "m.zarr")
    return ReducedModel.open(path)


@multicore
@pytest.mark.parametrize("parallel_points, expected", [(10**9, 1), (0, None)])
def test_online_solve_threads(model, monkeypatch, parallel_points, expected):
    """Below the threshold the laws run on one numba thread, above it on all; every BLAS library on
    one; all counts restored after the solve. Before the policy the solve ran on every numba thread
    and on whatever BLAS had (2 here: set below where the library lets it be raised; an OpenBLAS
    first set to 1 from another thread was seen to stay at 1 in a full test run)."""
    monkeypatch.setattr(threads, "PARALLEL_POINTS", parallel_points)
    counts = _Counts()
    scenario = Scenario.from_problem(problem(0.005, 1))
    with threadpool_limits(2, user_api="blas"):
        before = (numba.get_num_threads(), _blas_threads())
        assert before[0] == numba.config.NUMBA_NUM_THREADS and 2 in before[1]
        online_solve(model, scenario, progress=counts)
        assert (numba.get_num_threads(), _blas_threads()) == before
    assert counts.seen == {(expected or numba.config.NUMBA_NUM_THREADS, frozenset({1}))}


@multicore
def test_hf_solve_threads():
    """The built-in solver: one OpenBLAS thread (numba's kernels call it), MKL's pardiso on its own
    threads (not spinning: KMP_BLOCKTIME), numba on every thread; counts restored after."""
    counts = _Counts("openblas")
    with threadpool_limits(2, user_api="blas"):
        before = (numba.get_num_threads(), _blas_threads("openblas"))
        hf_solve(problem(0.005, 0.25), progress=counts)
        assert (numba.get_num_threads(), _blas_threads("openblas")) == before
    assert counts.seen == {(numba.config.NUMBA_NUM_THREADS, frozenset({1}))}


def test_law_threads_threshold(monkeypatch):
    monkeypatch.setattr(threads, "PARALLEL_POINTS", 100)
    assert law_threads(99) == 1
    assert law_threads(100) == law_threads(None) == numba.get_num_threads()
    with numba_threads(1):
        assert law_threads(10**6) == 1  # never more than the caller allows


@multicore
def test_numba_threads_is_per_thread_and_restored():
    """A Dask task (one_blas_thread) runs on one numba thread; the thread that runs it gets its count
    back and the others never see it."""
    full = numba.config.NUMBA_NUM_THREADS
    gate, inside, other = threading.Event(), {}, {}

    @one_blas_thread
    def task():
        inside["numba"], inside["blas"] = numba.get_num_threads(), _blas_threads()
        gate.set()
        other_thread.join()

    def look():
        gate.wait()
        other["numba"] = numba.get_num_threads()

    other_thread = threading.Thread(target=look)
    other_thread.start()
    worker = threading.Thread(target=task)
    worker.start()
    worker.join()
    assert inside == {"numba": 1, "blas": {1}}
    assert other["numba"] == full
    assert numba.get_num_threads() == full
    with numba_threads(10 * full):  # never above the count it had
        assert numba.get_num_threads() == full


@multicore
def test_overlapping_solver_threads_restore_blas():
    """Two holders overlapping, not nested (as in two threads: the HF solver's, OpenBLAS only, and
    another's, every BLAS), the first leaving first: OpenBLAS keeps one thread while either holds it
    and gets its count back after both. With a plain limit for the HF solver the second restored
    the 1 it had found: OpenBLAS stayed at one thread for the rest of a full test run. (Entered
    and left from this thread: this OpenBLAS build ignores counts set from another thread.)"""
    with threadpool_limits(2, user_api="blas"):
        start = _blas_threads("openblas")
        assert start == {2}
        hf, other = threads.solver_threads(sparse=True), threads.blas_single_thread()
        hf.__enter__()
        other.__enter__()
        assert _blas_threads("openblas") == {1}
        hf.__exit__(None, None, None)
        assert _blas_threads("openblas") == {1}  # the other holder still runs
        other.__exit__(None, None, None)
        assert _blas_threads("openblas") == start
        assert not any(threads._holders.values())
