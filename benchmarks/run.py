"""Benchmark runner: writes ``benchmarks/results.json``; ``benchmarks/table.py`` makes the docs table.

Usage::

    python benchmarks/run.py builtin_solver [--nodes 1000 10000 50000] [--cycles 1]

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
        _, name, nodes, cycles = argv
        print(json.dumps({"builtin_solver": _builtin_solver_case}[name](int(nodes), float(cycles))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("benchmark", choices=["builtin_solver"])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--cycles", type=float, default=1)
    args = parser.parse_args(argv)
    rows = {"builtin_solver": run_builtin_solver}[args.benchmark](args)
    _record(args.benchmark, rows)
    print(f"results in {RESULTS}; run benchmarks/table.py to refresh docs/benchmarks.md")


if __name__ == "__main__":
    main()
