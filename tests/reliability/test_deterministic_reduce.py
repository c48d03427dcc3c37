"""The same store and options give the same model bit for bit on any scheduler (issue 18, item 7).

Two sources of scheduler dependence were found and are pinned here:

* how a task's inputs arrive: distributed deserializes arrays from network frames at offsets that
  are not always 8-byte aligned; numpy copies unaligned operands before a ``matmul``, which then
  runs BLAS instead of its strided loop (other roundings: the ECM weights differed by ~5e-9
  relative between runs on a LocalCluster). :func:`transport_get` reproduces that in one process:
  it runs the tasks in a shuffled order and hands every task unaligned copies of its arrays.
* the BLAS thread count inside tasks: overlapping ``threadpool_limits(1)`` contexts restored
  2 threads while another task was still running (:func:`test_one_blas_thread_while_any_task_runs`).

and the saved model held the ECM's run time (every save differed).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from pathlib import Path

import dask
import distributed
import numpy as np
import pytest
import zarr
from dask._task_spec import convert_legacy_graph
from threadpoolctl import threadpool_info, threadpool_limits

from romdask.hifi import solve
from romdask.materials import law_to_json
from romdask.offline import pod
from romdask import threads as _blas
from romdask.threads import one_blas_thread
from romdask.offline.reduce import ReduceOptions, reduce
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_snapshots

FIELDS = ("displacement", "stress", "state")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    """Two plate runs in a store of 3 subdomains (small: ~2 s to write)."""
    path = tmp_path_factory.mktemp("det") / "s.zarr"
    problems = [plate_problem(n=3, n_cycles=0.5, amplitude=a) for a in (0.006, 0.004)]
    store = create_store(path, problems[0].mesh, n_subdomains=3)
    for name, problem in zip(("a", "b"), problems):
        meta = {"loads": describe_loads(problem), "material": law_to_json(problem.material)}
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta, fields=FIELDS,
                              allow_nan=("state",))
        solve(problem, writer=writer, fields=FIELDS)
    return path


# ---- a scheduler that shuffles the task order and moves inputs like a network would -------


def _unaligned(x):
    """An array (or the arrays in a tuple / list / dict) copied to an address that is 4 bytes off
    an 8-byte boundary, as distributed may hand them to a task after a transfer."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc" and x.size:
        buf = np.empty(x.nbytes + 16, np.uint8)
        start = (-buf.ctypes.data) % 8 + 4
        out = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
        out[...] = x
        return out
    if isinstance(x, (tuple, list)):
        return type(x)(_unaligned(v) for v in x)
    if isinstance(x, dict):
        return {k: _unaligned(v) for k, v in x.items()}
    return x


def _pack(keys, results):
    if isinstance(keys, list):
        return [_pack(k, results) for k in keys]
    return results[keys]


def _flatten(keys):
    if isinstance(keys, list):
        for k in keys:
            yield from _flatten(k)
    else:
        yield keys


def transport_get(seed: int):
    """A Dask scheduler (``get``) that runs the ready tasks in a random order (``seed``) and gives
    every task unaligned copies of its inputs: completion order and input memory both differ
    from the threaded scheduler's."""

    def get(dsk, keys, **kwargs):
        if not isinstance(dsk, Mapping):
            dsk = dsk.__dask_graph__()
        graph = convert_legacy_graph(dict(dsk))
        rng = random.Random(seed)
        deps = {k: set(node.dependencies) for k, node in graph.items()}
        waiting = {k: set(d) for k, d in deps.items()}
        ready = sorted((k for k, d in waiting.items() if not d), key=str)
        dependents: dict = {k: [] for k in graph}
        for k, d in deps.items():
            for dep in d:
                dependents[dep].append(k)
        results = {}
        while ready:
            key = ready.pop(rng.randrange(len(ready)))
            node = graph[key]
            results[key] = node({d: _unaligned(results[d]) for d in deps[key]})
            for child in sorted(dependents[key], key=str):
                waiting[child].discard(key)
                if not waiting[child]:
                    ready.append(child)
        missing = [k for k in _flatten(keys) if k not in results]
        assert not missing, f"tasks not run: {missing[:3]}"
        return _pack(keys, results)

    return get


# ---- comparisons ------------------------------------------------------------------------


def _arrays(group: zarr.Group, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for name, node in group.members():
        if isinstance(node, zarr.Group):
            out.update(_arrays(node, f"{prefix}{name}/"))
        else:
            out[prefix + name] = node[...]
    return out


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return np.inf
    if a.dtype.kind not in "fc":
        return float(np.any(a != b))
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    return float(np.abs(a - b).max(initial=0.0)) / scale


def assert_same_model(a: Path, b: Path) -> None:
    """Every array and attribute of two saved models equal, bit for bit (and so the checksums)."""
    ga, gb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    xa, xb = _arrays(ga), _arrays(gb)
    assert sorted(xa) == sorted(xb)
    differ = {k: _max_rel(xa[k], xb[k]) for k in xa
              if xa[k].shape != xb[k].shape or xa[k].tobytes() != xb[k].tobytes()}
    assert not differ, f"arrays differ (max relative difference): {differ}"
    attrs_a, attrs_b = ga.attrs.asdict(), gb.attrs.asdict()
    report_a, report_b = attrs_a["metadata"]["reduce"], attrs_b["metadata"]["reduce"]
    differ = sorted(k for k in set(report_a) | set(report_b) if report_a.get(k) != report_b.get(k))
    assert not differ, f"report entries differ: {differ}"
    assert attrs_a == attrs_b
    assert attrs_a["checksum"]["sha256"] == attrs_b["checksum"]["sha256"]


def _reduce_and_save(store_path: Path, out: Path, options: ReduceOptions | None = None) -> Path:
    reduce(store_path, options=options).save(out)
    return out


# ---- tests ------------------------------------------------------------------------------


def test_two_threaded_runs_save_the_same_bytes(store_path, tmp_path):
    with threadpool_limits(2, user_api="blas"):
        before = _blas_threads()
        with dask.config.set(scheduler="threads"):
            first = _reduce_and_save(store_path, tmp_path / "a.zarr")
            second = _reduce_and_save(store_path, tmp_path / "b.zarr")
        assert _blas_threads() == before  # reduce() gives the process its BLAS threads back
    assert_same_model(first, second)


def test_shuffled_order_and_moved_inputs_save_the_same_bytes(store_path, tmp_path):
    """The reduction (ECM over 3 subdomains, Gappy, POD) under two shuffled task orders with
    unaligned inputs gives the threaded scheduler's bytes."""
    with dask.config.set(scheduler="threads"):
        reference = _reduce_and_save(store_path, tmp_path / "threads.zarr")
    for seed in (1, 2):
        with dask.config.set(scheduler=transport_get(seed)):
            shuffled = _reduce_and_save(store_path, tmp_path / f"shuffled{seed}.zarr")
        assert_same_model(shuffled, reference)


POD_CASES = {
    "snapshots-euclidean": dict(method="snapshots", product=None),
    "snapshots-l2": dict(method="snapshots", product="l2"),
    "tsqr-euclidean": dict(method="tsqr", product=None),
    "tsqr-l2": dict(method="tsqr", product="l2"),
    "randomized-l2": dict(method="randomized", product="l2", n_modes=4),
}


@pytest.mark.parametrize("case", sorted(POD_CASES))
def test_pod_bytes_do_not_depend_on_the_task_order(store_path, case):
    """Singular values, right vectors and modes of each POD method: the same bytes on the
    threaded scheduler and on two shuffled orders with unaligned inputs."""
    kwargs = dict(POD_CASES[case])
    U = open_snapshots(store_path).displacement
    results = []
    for scheduler in ("threads", transport_get(1), transport_get(2)):
        with dask.config.set(scheduler=scheduler):
            basis = pod(U, layout=store_path, tol=1e-6, **kwargs)
            modes = basis.modes.compute()
        results.append((basis.singular_values, basis.right_vectors, modes))
    for other in results[1:]:
        for name, x, y in zip(("singular values", "right vectors", "modes"), other, results[0]):
            assert x.tobytes() == y.tobytes(), f"{case}: {name} differ by {_max_rel(x, y):.3g} (relative)"


def test_threads_and_two_worker_processes_save_the_same_bytes(store_path, tmp_path):
    with dask.config.set(scheduler="threads"):
        reference = _reduce_and_save(store_path, tmp_path / "threads.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
            distributed.Client(cluster):
        on_workers = _reduce_and_save(store_path, tmp_path / "workers.zarr")
    assert_same_model(on_workers, reference)


def _blas_threads() -> int:
    """Threads of numpy's and scipy's BLAS (not of MKL, loaded by the HF solver's PARDISO)."""
    pools = [p for p in threadpool_info() if p["user_api"] == "blas" and ("numpy" in p["filepath"] or "scipy" in p["filepath"])]
    return max(int(p["num_threads"]) for p in pools)


def test_one_blas_thread_while_any_task_runs():
    """Task A (here the main thread) enters, task B (another thread) enters, A leaves while B
    still runs: B keeps one BLAS thread, and the process gets its count back once both have left
    (the threaded scheduler overlaps tasks like this; reduce() is task A)."""
    with threadpool_limits(2, user_api="blas"):  # whatever earlier tests left
        if _blas_threads() < 2:
            pytest.skip("BLAS cannot run 2 threads here")
        b_in, a_out = threading.Event(), threading.Event()
        seen = {}

        @one_blas_thread
        def task_b():
            b_in.set()
            a_out.wait(10)
            seen["b after a left"] = _blas_threads()

        @one_blas_thread
        def task_a():
            seen["a"] = _blas_threads()
            tb.start()
            b_in.wait(10)

        tb = threading.Thread(target=task_b)
        task_a()
        a_out.set()
        tb.join(10)
        assert seen["a"] == 1
        assert seen["b after a left"] == 1
        assert not any(_blas._holders.values())  # the last one out restored the count (from its own thread)
