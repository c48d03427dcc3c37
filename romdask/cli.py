"""The ``romdask`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("romdask")


def _progress_bar(label: str):
    """A one-line text progress bar on stderr (a callback for the built-in solver)."""
    start = time.perf_counter()

    def progress(step: int, n_steps: int, info: dict) -> None:
        width = 30
        done = int(width * step / max(n_steps, 1))
        elapsed = time.perf_counter() - start
        its = info.get("iterations", "")
        sys.stderr.write(
            f"\r{label} [{'#' * done}{'.' * (width - done)}] {step}/{n_steps} "
            f"t={info.get('time', 0.0):.4g} newton={its} {elapsed:6.1f}s"
        )
        if step == n_steps:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return progress


def _demo(args: argparse.Namespace) -> int:
    from romdask.hifi import solve
    from romdask.io.vtu import write_vtu_series
    from romdask.problems.plate import plate_mesh_for_nodes, plate_problem

    mesh = plate_mesh_for_nodes(args.nodes)
    problem = plate_problem(mesh=mesh, amplitude=args.amplitude, n_cycles=args.cycles)
    print(
        f"romdask demo: quarter plate with a hole, {mesh.n_nodes} nodes, {mesh.n_elements} "
        f"{'/'.join(b.type for b in mesh.blocks)} elements, {len(problem.times) - 1} increments, "
        f"{args.cycles} cycle(s) of prescribed displacement (built-in solver)"
    )
    t0 = time.perf_counter()
    result = solve(problem, fields=("displacement", "stress", "state"), progress=_progress_bar("solve"))
    wall = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pvd = write_vtu_series(out / "plate", problem, result)
    table = result.summary()
    width = max(len(k) for k in table)
    for key, value in table.items():
        print(f"  {key:<{width}}  {value}")
    print(f"  {'wall time [s]':<{width}}  {wall:.2f}")
    print(f"fields written to {pvd} (open in ParaView)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="romdask", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the built-in solver on the default reference problem (quarter plate with a hole)",
    )
    demo.add_argument("--nodes", type=int, default=1000, help="approximate mesh size (default 1000)")
    demo.add_argument("--cycles", type=float, default=1, help="number of load cycles (default 1)")
    demo.add_argument("--amplitude", type=float, default=None, help="displacement amplitude [mm]")
    demo.add_argument("--out", default="romdask-demo", help="output folder (default ./romdask-demo)")
    demo.set_defaults(func=_demo)

    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
