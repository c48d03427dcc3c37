"""A small snapshot store of the plate for the docs' pages that start from one (tests/test_docs.py,
`<!-- docs-test: setup "python $REPO/tests/docs/make_store.py store.zarr" -->`): built-in solver
runs, one cycle each, with displacement, stress and state and the runs' metadata, as
docs/user-guide.md section 1 writes them.

    python make_store.py PATH [--n 4] [--amplitudes 0.004 0.008] [--subdomains 2]
"""

from __future__ import annotations

import argparse

from romdask.hifi import solve
from romdask.problem.patterns import run_metadata
from romdask.problems.plate import plate_problem
from romdask.store import create_store


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("path")
    args.add_argument("--n", type=int, default=4)
    args.add_argument("--amplitudes", type=float, nargs="+", default=[0.004, 0.008])
    args.add_argument("--subdomains", type=int, default=2)
    a = args.parse_args()
    fields = ("displacement", "stress", "state")
    store = create_store(a.path, plate_problem(n=a.n).mesh, n_subdomains=a.subdomains, overwrite=True)
    for amplitude in a.amplitudes:
        problem = plate_problem(amplitude=amplitude, n_cycles=1, n=a.n)
        writer = store.writer(f"train-{amplitude}", mesh=problem.mesh, times=problem.times, fields=fields,
                              allow_nan=("state",), metadata=run_metadata(problem))
        solve(problem, writer=writer, fields=fields)


if __name__ == "__main__":
    main()
