"""Snapshot stores of the small plate (n=3) written with the built-in solver, shared by the online
tests: training runs and high-fidelity references of unseen scenarios, in the store's order."""

from __future__ import annotations

import numpy as np
import pytest

from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_snapshots

FIELDS = ("displacement", "stress", "state")
INCREMENTS = 16  # per cycle; a multiple of 4 (reversals on increment ends)
#: name -> (loading, amplitude, n_cycles); "train_*" runs train the models, "ref_*" are references
RUNS = {
    "displacement": {
        "train_a": ("displacement", 0.006, 1), "train_b": ("displacement", 0.004, 1),
        "ref_mid": ("displacement", 0.005, 2), "ref_far": ("displacement", 0.012, 1),
    },
    "pressure": {"train_a": ("pressure", 120.0, 0.5), "train_b": ("pressure", 80.0, 0.5)},
}


def problem(loading: str, amplitude: float, n_cycles: float):
    return plate_problem(amplitude=amplitude, n=3, n_cycles=n_cycles, increments_per_cycle=INCREMENTS,
                         loading=loading)


class Training:
    """A store with its runs, the law, the problems and helpers to read a run in store order."""

    def __init__(self, path, loading: str) -> None:
        self.runs = RUNS[loading]
        self.problems = {name: problem(*spec) for name, spec in self.runs.items()}
        first = next(iter(self.problems.values()))
        self.law = first.material
        self.store = create_store(path, first.mesh, n_subdomains=2)
        for name, pb in self.problems.items():
            writer = self.store.writer(name, mesh=pb.mesh, times=pb.times, fields=FIELDS,
                                       metadata={"loads": describe_loads(pb)}, allow_nan=("state",))
            # tight Newton tolerance: the HF residual is round-off, the reference is exact
            solve(pb, writer=writer, fields=FIELDS, options=SolverOptions(rtol=1e-12))
        self.path = self.store.path
        self.train = sorted(n for n in self.runs if n.startswith("train"))

    def run(self, name: str) -> dict[str, np.ndarray]:
        ds = open_snapshots(self.path, runs=[name])
        return {f: ds[f].values for f in FIELDS}


@pytest.fixture(scope="session")
def training(tmp_path_factory):
    cache: dict[str, Training] = {}

    def get(loading: str) -> Training:
        if loading not in cache:
            cache[loading] = Training(tmp_path_factory.mktemp(loading) / "s.zarr", loading)
        return cache[loading]

    return get
