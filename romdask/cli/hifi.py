"""``romdask hifi``: training runs of a reference problem, by CalculiX or the built-in solver."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from romdask.cli.common import (
    PROGRESS_INTERVAL,
    HelpFormatter,
    finite_float,
    positive_float,
    positive_int,
    solver_progress,
    writable_folder,
)

__all__ = ["register"]

#: --problem: what each reference problem is and what --nodes sets
PROBLEMS = {
    "plate": "quarter plate with a hole, C3D8 (--nodes: closest ring mesh)",
    "specimen": "holed strip specimen, one eighth, C3D10 (--nodes: closest mesh)",
    "cube": "1 mm cube, homogeneous uniaxial state, C3D8 (--nodes: (n + 1)^3 for n cells per side)",
}


def register(sub) -> None:
    hifi = sub.add_parser(
        "hifi", formatter_class=HelpFormatter,
        help="run a training plan (one run per amplitude) with CalculiX or the built-in solver into a snapshot store",
        description="Reference problems in mm, N, s, MPa (recorded in the store): "
                    + "; ".join(f"{k}: {v}" for k, v in PROBLEMS.items())
                    + ". Each is loaded by a fully reversed triangular cycle of the top face's displacement, period "
                      "10 s, 40 increments per cycle; the law is the viscoplastic steel of CalculiX's *PLASTIC + "
                      "*CREEP (E 200 GPa, yield 200 MPa, Norton creep) for all three.")
    hifi.add_argument("--solver", choices=("calculix", "builtin"), default="calculix",
                      help="high-fidelity solver: calculix (the ccx binary) or romdask's built-in solver")
    hifi.add_argument("--problem", choices=tuple(PROBLEMS), default="plate", help="reference problem")
    hifi.add_argument("--amplitudes", type=finite_float, nargs="+", required=True,
                      help="peak prescribed displacement of the loaded face [mm], one run each (e.g. 0.004 0.008)")
    hifi.add_argument("--cycles", type=positive_float, default=1, help="load cycles per run (period 10 s)")
    hifi.add_argument("--nodes", type=positive_int, default=None,
                      help="approximate mesh size [nodes] (default: the mesh of the problem's Python constructor, "
                           "plate_problem(): 1,105 nodes, specimen_problem(), cube_problem())")
    hifi.add_argument("--store", required=True, help="snapshot store folder (created if absent)")
    hifi.add_argument("--workdir", default="romdask-hifi", help="calculix: folder of the decks and results")
    hifi.add_argument("--threads", type=positive_int, default=None, help="calculix: ccx threads per run (default: 1)")
    hifi.add_argument("--subdomains", type=positive_int, default=None,
                      help="subdomains of a new store (default: romdask.fem.default_subdomains, 1 below 40,000 dofs)")
    hifi.set_defaults(func=run)


def _problems(args: argparse.Namespace) -> list:
    """One problem of ``args.problem`` per amplitude, the mesh closest to ``args.nodes``."""
    from romdask.problems import (
        cube_problem,
        default_plate_material,
        plate_n_for_nodes,
        plate_problem,
        specimen_problem,
    )

    law = default_plate_material()
    if args.problem == "plate":
        mesh = {} if args.nodes is None else {"n": plate_n_for_nodes(args.nodes)}
        return [plate_problem(amplitude=a, n_cycles=args.cycles, material=law, **mesh) for a in args.amplitudes]
    if args.problem == "specimen":  # the ring mesh of the plate, in C3D10: the same node counts
        mesh = {} if args.nodes is None else {"n": plate_n_for_nodes(args.nodes, element="C3D10")}
        return [specimen_problem(amplitude=a, n_cycles=args.cycles, material=law, **mesh) for a in args.amplitudes]
    mesh = {} if args.nodes is None else {"n": max(1, round(args.nodes ** (1 / 3)) - 1)}
    return [cube_problem(amplitude=a, n_cycles=args.cycles, material=law, **mesh) for a in args.amplitudes]


def _last_increment(sta: Path) -> tuple[int, float, int] | None:
    """(increments done, total time, iterations of the last) from a CalculiX .sta file, if any."""
    try:
        rows = [line.split() for line in sta.read_text(errors="replace").splitlines()[2:]]
    except OSError:
        return None
    rows = [r for r in rows if len(r) >= 7 and r[0].isdigit()]
    if not rows:
        return None
    try:
        return len(rows), float(rows[-1][4]), int(rows[-1][3])
    except ValueError:
        return None


@contextlib.contextmanager
def _watch_calculix(runs: dict[str, Path], n_increments: int, t_end: float,
                    interval: float = PROGRESS_INTERVAL) -> Iterator[None]:
    """While ccx runs: a line per run whose .sta grew, every ``interval`` seconds, on stderr."""
    stop = threading.Event()
    shown: dict[str, tuple] = {}

    def poll() -> None:
        while not stop.wait(min(interval, 1.0) if not shown else interval):
            for name, sta in runs.items():
                state = _last_increment(sta)
                if state is None or shown.get(name) == state:
                    continue
                shown[name] = state
                done, t, iterations = state
                print(f"run {name}: increment {done}/{n_increments}, t = {t:.4g} s of {t_end:g} s, "
                      f"{iterations} Newton iterations", file=sys.stderr, flush=True)

    thread = threading.Thread(target=poll, name="romdask-ccx-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run(args: argparse.Namespace) -> int:
    """Training plan (one run per amplitude) on a reference problem, solved and stored."""
    from romdask.online.envelope import REFERENCE_UNITS
    from romdask.problem.patterns import run_metadata
    from romdask.store import SnapshotStore, create_store

    if args.solver == "builtin" and args.threads is not None:
        raise ValueError("--threads sets ccx's threads: it applies to --solver calculix only")
    writable_folder(args.store, "--store")
    if args.solver == "calculix":
        writable_folder(args.workdir, "--workdir")
    problems = _problems(args)
    names = [f"amp-{a:g}" for a in args.amplitudes]
    mesh = problems[0].mesh
    times = problems[0].times
    print(f"romdask hifi: {args.problem}, {mesh.n_nodes:,} nodes, {len(problems)} run(s) "
          f"({', '.join(names)}: peak displacement {', '.join(f'{a:g}' for a in args.amplitudes)} mm), "
          f"{args.cycles:g} cycle(s) of 10 s in {times.size - 1} increments, solver {args.solver}", flush=True)
    start = time.perf_counter()
    path = Path(args.store)
    if path.exists() and any(path.iterdir()):
        store = SnapshotStore.open(path)
        store.check_mesh(mesh, f"--problem {args.problem} --nodes {args.nodes or mesh.n_nodes}")
    else:  # the reference problems' unit system, recorded for info, reduce and predict
        store = create_store(path, mesh, n_subdomains=args.subdomains, units=REFERENCE_UNITS)
    if args.solver == "calculix":
        from romdask.hifi.calculix import run_many
        from romdask.hifi.calculix.solve import _safe_name

        workdir = Path(args.workdir)
        sta = {n: workdir / _safe_name(n) / f"{_safe_name(n)}.sta" for n in names}
        with _watch_calculix(sta, times.size - 1, float(times[-1])):
            status = run_many(problems, args.store, args.workdir, names=names, threads=args.threads or 1,
                              n_subdomains=args.subdomains, overwrite=True)
    else:
        from romdask.hifi import solve

        status = {}
        for name, problem in zip(names, problems):
            print(f"run {name}: started, {problem.times.size - 1} increments to t = {problem.times[-1]:g} s",
                  file=sys.stderr, flush=True)
            writer = store.writer(name, mesh=problem.mesh, times=problem.times, solver="romdask",
                                  metadata=run_metadata(problem), overwrite=True)
            result = solve(problem, writer=writer, progress=solver_progress(f"run {name}"))
            status[name] = {"status": "written", "wall_time": result.wall_time}
    for name, info in status.items():
        print(f"  {name}: {info['status']}")
    print(f"store: {args.store} ({time.perf_counter() - start:.1f} s)")
    return 0
