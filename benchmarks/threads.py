"""Benchmark: the thread policy (issue 13, target 3; romdask.threads, docs/conventions.md#threads).

Usage::

    python3 benchmarks/threads.py [--smoke] [--out figures.json] [--workdir DIR] [--keep]

The plate with a hole (``plate_problem``, built-in solver, n = 8: 1,105 nodes, 40 increments per
cycle), models reduced from one cycle at 0.004 and 0.008 mm with 2, 3 and 4 training runs (ECM,
``reduce`` defaults) and one without hyper-reduction (every point), predicting 0.016 mm. Each
online solve is timed, median of :data:`REPEATS`, and the HF solve of the case on that plate and
on a finer one (n = 16: 7,425 nodes), median of 2, each policy in its own process:

* ``before``: the threads every library picks by itself (romdask before the policy: the
  solvers' ``solver_threads`` replaced by a no-op), OpenBLAS / MKL and numba on every core, MKL's
  threads spinning 200 ms after each call (its default, ``KMP_BLOCKTIME=200``);
* ``policy``: :func:`romdask.threads.solver_threads` (one BLAS thread, numba serial below
  ``PARALLEL_POINTS`` reduced points; the HF solver: one OpenBLAS thread, MKL's own without
  spinning);
* ``serial`` / ``parallel``: the policy with the law kernels forced on one / every numba thread
  (where the ``PARALLEL_POINTS`` threshold comes from);

each on a quiet machine and beside a second busy process (a numpy matrix-product loop on every
core, :data:`BUSY`). The figure of the issue: the slowdown busy / quiet of each policy.
Prints one JSON dict and writes it to ``--out``. ``--smoke``: n = 4, 20 increments, 2 repeats.
No threshold is asserted; the ratios are of one run on one machine.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from script import script_main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ["PYTHONPATH"] = str(HERE.parent) + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")

#: timed solves per configuration (the median is reported)
REPEATS = 7
#: the second process: matrix products on every core (numpy's default BLAS threads) until killed
BUSY = "import numpy as np\na = np.random.rand(1500, 1500)\nwhile True:\n    a @ a\n"
POLICIES = ("before", "policy", "serial", "parallel")
#: an HF timing in its own process (MKL's OpenMP reads KMP_BLOCKTIME once, when it starts):
#: argv = plate n, increments, policy, repeats; prints the times (JSON)
HF_CHILD = """
import contextlib, json, sys, time
import romdask.hifi.builtin as builtin
from romdask.hifi import solve
from romdask.problems.plate import plate_problem
n, increments, policy, repeats = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if policy == "before":
    builtin.solver_threads = lambda n_points=None, sparse=False: contextlib.nullcontext()
solve(plate_problem(amplitude=0.016, n=2, increments_per_cycle=8))  # numba's caches loaded
problem = plate_problem(amplitude=0.016, n=n, increments_per_cycle=increments)
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    solve(problem)
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


@contextlib.contextmanager
def _busy(on: bool):
    if not on:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", BUSY])
    time.sleep(1.0)  # its BLAS threads up
    try:
        yield
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _policy(name: str):
    """The thread rules of ``name`` in the solvers (module attributes patched, restored on exit)."""
    import romdask.hifi.builtin as builtin
    import romdask.online.solver as online
    import romdask.threads as threads

    saved = (online.solver_threads, builtin.solver_threads, threads.PARALLEL_POINTS)
    if name == "before":
        online.solver_threads = builtin.solver_threads = lambda n_points=None, sparse=False: contextlib.nullcontext()
    elif name in ("serial", "parallel"):
        threads.PARALLEL_POINTS = 10**12 if name == "serial" else 0
    try:
        yield
    finally:
        online.solver_threads, builtin.solver_threads, threads.PARALLEL_POINTS = saved


def _hf_times(n: int, increments: int, policy: str, repeats: int) -> list[float]:
    """The HF solve of the case on plate ``n`` in a child process: ``before`` with MKL's default
    spinning (KMP_BLOCKTIME=200 ms) and no thread rules, ``policy`` as romdask runs it."""
    env = {k: v for k, v in os.environ.items() if k != "KMP_BLOCKTIME"}
    if policy == "before":
        env["KMP_BLOCKTIME"] = "200"
    out = subprocess.run([sys.executable, "-c", HF_CHILD, str(n), str(increments), policy, str(repeats)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm: numba loads, buffers
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def benchmark(smoke: bool, workdir: Path) -> dict:
    import numba

    from romdask.demo import FIELDS
    from romdask.hifi import solve
    from romdask.offline import ReduceOptions, reduce
    from romdask.online import ReducedModel, Scenario
    from romdask.online.solver import TrainingEnvelopeWarning
    from romdask.problem.patterns import run_metadata
    from romdask.problems.plate import plate_problem
    from romdask.store import create_store
    from romdask.threads import PARALLEL_POINTS

    warnings.simplefilter("ignore", TrainingEnvelopeWarning)  # 0.016 mm leaves the envelope on purpose
    n, increments, repeats = (4, 20, 2) if smoke else (8, 40, REPEATS)

    def problem(amplitude):
        return plate_problem(amplitude=amplitude, n=n, increments_per_cycle=increments)

    train = {f"amp-{a:g}": problem(a) for a in (0.004, 0.008, 0.012, 0.006)}
    mesh = next(iter(train.values())).mesh
    store = create_store(workdir / "store.zarr", mesh, n_subdomains=2, overwrite=True)
    for name, p in train.items():
        writer = store.writer(name, mesh=p.mesh, times=p.times, fields=FIELDS, solver="romdask",
                              metadata=run_metadata(p), overwrite=True, allow_nan=("state",))
        solve(p, writer=writer, fields=FIELDS)
    names = list(train)
    models = {}
    for label, runs, options in (("2 runs", names[:2], ReduceOptions()), ("3 runs", names[:3], ReduceOptions()),
                                 ("4 runs", names, ReduceOptions()), ("no ECM", names[:2], ReduceOptions(ecm=False))):
        models[label] = reduce(store.path, runs=runs, options=options).save(workdir / f"{label}.zarr", overwrite=True)
    case = problem(0.016)
    scenario = Scenario.from_problem(case)

    rows = []
    jobs = [(label, (lambda m=ReducedModel.open(path): m.solve(scenario)), ReducedModel.open(path))
            for label, path in models.items()]
    for plate_n in (n, 6 if smoke else 16):
        nodes = plate_problem(n=plate_n).mesh.n_nodes
        jobs.append((f"{nodes:,} nodes", functools.partial(_hf_times, plate_n, increments), None))
    for label, fn, model in jobs:
        for load in ("quiet", "busy"):
            with _busy(load == "busy"):
                for policy in POLICIES if model is not None else ("before", "policy"):
                    if model is None:
                        times = fn(policy, 2)
                        median = statistics.median(times)
                    else:
                        with _policy(policy):
                            median, times = _median_time(fn, repeats)
                    row = {"solve": "online" if model is not None else "HF", "model": label, "load": load,
                           "policy": policy, "s": median, "times": times,
                           "points": model.n_points if model is not None else None,
                           "modes": model.n_modes if model is not None else None}
                    rows.append(row)
                    print(f"{label} {load} {policy}: {median * 1e3:.0f} ms", file=sys.stderr, flush=True)
    return {"nodes": mesh.n_nodes, "increments": increments, "cpu_count": os.cpu_count(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "parallel_points": PARALLEL_POINTS, "rows": rows}


if __name__ == "__main__":
    script_main(benchmark, "the thread policy: online and HF solves, quiet and beside a busy process",
                "n = 4, 20 increments, 2 repeats", "threads")
