"""``romdask hifi``: training runs of a reference problem, by CalculiX or the built-in solver."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from romdask.cli.common import finite_float, positive_float, positive_int, writable_folder

__all__ = ["register"]


def register(sub) -> None:
    hifi = sub.add_parser("hifi", help="run a training plan (one run per amplitude) with CalculiX or the "
                                       "built-in solver into a snapshot store")
    hifi.add_argument("--solver", choices=("calculix", "builtin"), default="calculix",
                      help="high-fidelity solver (default calculix: the ccx binary)")
    hifi.add_argument("--problem", choices=("plate",), default="plate", help="reference problem (default plate)")
    hifi.add_argument("--amplitudes", type=finite_float, nargs="+", required=True,
                      help="prescribed top displacements [mm], one run each")
    hifi.add_argument("--cycles", type=positive_float, default=1, help="load cycles per run (default 1)")
    hifi.add_argument("--nodes", type=positive_int, default=1000, help="approximate mesh size (default 1000)")
    hifi.add_argument("--store", required=True, help="snapshot store folder (created if absent)")
    hifi.add_argument("--workdir", default="romdask-hifi", help="folder of the CalculiX decks and results "
                                                               "(default ./romdask-hifi)")
    hifi.add_argument("--threads", type=positive_int, default=1, help="ccx threads per run (default 1)")
    hifi.add_argument("--subdomains", type=positive_int, default=None,
                      help="subdomains of a new store (default: romdask.fem.default_subdomains, 1 below 40,000 dofs)")
    hifi.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Training plan (one run per amplitude) on a reference problem, solved and stored."""
    from romdask.problem.patterns import run_metadata
    from romdask.problems.plate import plate_n_for_nodes, plate_problem

    writable_folder(args.store, "--store")
    if args.solver == "calculix":
        writable_folder(args.workdir, "--workdir")
    problems = [plate_problem(amplitude=a, n_cycles=args.cycles, n=plate_n_for_nodes(args.nodes))
                for a in args.amplitudes]
    names = [f"amp-{a:g}" for a in args.amplitudes]
    mesh = problems[0].mesh
    print(f"romdask hifi: {args.problem}, {mesh.n_nodes:,} nodes, {len(problems)} run(s) "
          f"({', '.join(names)}), {args.cycles:g} cycle(s), solver {args.solver}")
    start = time.perf_counter()
    if args.solver == "calculix":
        from romdask.hifi.calculix import run_many

        status = run_many(problems, args.store, args.workdir, names=names, threads=args.threads,
                          n_subdomains=args.subdomains, overwrite=True)
    else:
        from romdask.hifi import solve
        from romdask.store import SnapshotStore, create_store

        path = Path(args.store)
        store = (SnapshotStore.open(path) if path.exists() and any(path.iterdir())
                 else create_store(path, mesh, n_subdomains=args.subdomains))
        status = {}
        for name, problem in zip(names, problems):
            writer = store.writer(name, mesh=problem.mesh, times=problem.times, solver="romdask",
                                  metadata=run_metadata(problem), overwrite=True)
            result = solve(problem, writer=writer)
            status[name] = {"status": "written", "wall_time": result.wall_time}
    for name, info in status.items():
        print(f"  {name}: {info['status']}")
    print(f"store: {args.store} ({time.perf_counter() - start:.1f} s)")
    return 0
