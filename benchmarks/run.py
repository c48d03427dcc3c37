"""Benchmark runner: writes ``benchmarks/results.json``; ``benchmarks/table.py`` makes the docs table.

Usage::

    python benchmarks/run.py builtin_solver [--nodes 1000 10000 50000] [--cycles 1]
    python benchmarks/run.py ingest [--nodes 10000] [--runs 2]

Each case runs in a fresh subprocess so that its peak memory (ru_maxrss) is its own.
No wall-clock threshold is asserted anywhere: the figures are recorded, compared by ratio and
published in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def _builtin_solver_case(nodes: int, cycles: float) -> dict:
    """Run in the child process: one plate solve, return its figures."""
    from romdask.hifi import solve
    from romdask.problems.plate import plate_n_for_nodes, plate_problem

    problem = plate_problem(n=plate_n_for_nodes(nodes), n_cycles=cycles)
    mesh = problem.mesh
    # warm the numba caches so the figure is the solve, not the compilation
    solve(plate_problem(n=2, n_cycles=0.5))
    t0 = time.perf_counter()
    result = solve(problem)
    wall = time.perf_counter() - t0
    return {
        "nodes": mesh.n_nodes,
        "elements": mesh.n_elements,
        "dofs": mesh.n_dofs,
        "increments": len(problem.times) - 1,
        "cycles": cycles,
        "newton_iterations": int(sum(result.newton_iterations)),
        "wall_s": wall,
        "factorizations": int(result.n_factorizations),
        "timings_s": result.timings,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_builtin_solver(args) -> list[dict]:
    rows = []
    for nodes in args.nodes:
        cmd = [sys.executable, __file__, "_child", "builtin_solver", str(nodes), str(args.cycles)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _ingest_case(nodes: int, n_runs: int) -> dict:
    """Run in the child process: ingest solver-made runs into a snapshot store.

    One plate solve (displacement, stress, state), saved as plain .npy files (the "source");
    ``n_runs`` runs are made from it by scaling (so the bytes differ between runs). Measures a
    plain frame-by-frame read of the sources, the ingest into an lz4-compressed and an
    uncompressed store, and one full read of each store through ``open_snapshots``.
    Sources are fresh in the page cache (the figures are not disk-bound).
    """
    import os
    import shutil
    import tempfile

    import dask
    import numpy as np

    from romdask.hifi import solve
    from romdask.io.run import FieldSpec, Frame, Run
    from romdask.problems.plate import plate_n_for_nodes, plate_problem
    from romdask.store import ingest, open_snapshots

    problem = plate_problem(n=plate_n_for_nodes(nodes), n_cycles=1)
    mesh = problem.mesh
    fields = ("displacement", "stress", "state")
    t0 = time.perf_counter()
    result = solve(problem, fields=fields)
    solve_s = time.perf_counter() - t0
    n_steps = len(result.times)
    arrays = {
        "displacement": result.displacement.reshape(n_steps, -1, 3),
        "stress": result.fields["stress"],
        "state": np.nan_to_num(result.fields["state"]),  # NaN padding is not a snapshot value
    }
    specs = {
        "displacement": FieldSpec("node", ("x", "y", "z")),
        "stress": FieldSpec("ip", ("xx", "yy", "zz", "xy", "xz", "yz")),
        "state": FieldSpec("ip", tuple(f"s{i}" for i in range(arrays["state"].shape[2]))),
    }
    work = Path(tempfile.mkdtemp(prefix="romdask-bench-ingest-"))
    try:
        sources = []
        for r in range(n_runs):
            files = {}
            for name, a in arrays.items():
                files[name] = work / f"run{r}_{name}.npy"
                np.save(files[name], a * (1.0 + 0.1 * r))
            sources.append(files)
        del result, arrays
        source_bytes = sum(f.stat().st_size for files in sources for f in files.values())

        def make_run(r: int, files: dict) -> Run:
            def frames():
                maps = {k: np.load(f, mmap_mode="r") for k, f in files.items()}
                for k in range(n_steps):
                    yield Frame(k, problem.times[k], {name: np.array(m[k]) for name, m in maps.items()})

            return Run(f"run{r}", mesh, problem.times, specs, frames, solver="romdask-builtin",
                       sources=tuple(files.values()))

        t0 = time.perf_counter()
        for r, files in enumerate(sources):
            for frame in make_run(r, files).frames():
                pass
        plain_s = time.perf_counter() - t0
        row = {"nodes": mesh.n_nodes, "dofs": mesh.n_dofs, "runs": n_runs, "steps": n_steps,
               "source_mb": source_bytes / 1e6, "solve_s": solve_s, "plain_read_s": plain_s,
               "plain_read_mb_s": source_bytes / 1e6 / plain_s}
        subdomains = 4
        for label, compression in (("lz4", "lz4"), ("none", None)):
            path = work / f"{label}.zarr"
            t0 = time.perf_counter()
            ingest([make_run(r, f) for r, f in enumerate(sources)], path, n_subdomains=subdomains,
                   compression=compression)
            wall = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in (path / "runs").rglob("*") if f.is_file())
            for field in specs:
                field_bytes = sum(f.stat().st_size for f in (path / "runs").glob(f"*/{field}/**/*") if f.is_file())
                field_source = sum(files[field].stat().st_size for files in sources)
                row[f"ratio_{label}_{field}"] = field_source / field_bytes
            ds = open_snapshots(path)
            t0 = time.perf_counter()
            with dask.config.set(scheduler="threads"):
                dask.compute(*(ds[v].data.sum() for v in ds.data_vars))
            read_s = time.perf_counter() - t0
            row.update({f"ingest_{label}_s": wall, f"ingest_{label}_mb_s": source_bytes / 1e6 / wall,
                        f"store_{label}_mb": size / 1e6, f"ratio_{label}": source_bytes / size,
                        f"read_{label}_s": read_s, f"read_{label}_mb_s": source_bytes / 1e6 / read_s})
        row["subdomains"] = subdomains
        row["cores"] = len(os.sched_getaffinity(0))
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_ingest(args) -> list[dict]:
    rows = []
    for nodes in args.nodes:
        cmd = [sys.executable, __file__, "_child", "ingest", str(nodes), str(args.runs)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _record(name: str, rows: list[dict]) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores",
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        _, name, nodes, extra = argv
        if name == "ingest":
            print(json.dumps(_ingest_case(int(nodes), int(extra))))
        else:
            print(json.dumps({"builtin_solver": _builtin_solver_case}[name](int(nodes), float(extra))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("benchmark", choices=["builtin_solver", "ingest"])
    parser.add_argument("--nodes", type=int, nargs="+", default=None,
                        help="mesh sizes (default 1000 10000 50000; ingest: 10000)")
    parser.add_argument("--cycles", type=float, default=1)
    parser.add_argument("--runs", type=int, default=2, help="ingest: number of runs (default 2)")
    args = parser.parse_args(argv)
    if args.nodes is None:
        args.nodes = [10000] if args.benchmark == "ingest" else [1000, 10000, 50000]
    rows = {"builtin_solver": run_builtin_solver, "ingest": run_ingest}[args.benchmark](args)
    _record(args.benchmark, rows)
    print(f"results in {RESULTS}; run benchmarks/table.py to refresh docs/benchmarks.md")


if __name__ == "__main__":
    main()
