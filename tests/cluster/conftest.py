"""A small snapshot store shared by the cluster tests (the idiom of tests/offline/test_cli_reduce)."""

import pytest

from romdask.hifi import solve
from romdask.materials import law_to_json
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store

FIELDS = ("displacement", "stress", "state")


def make_store(path, n=3, n_subdomains=2):
    """Two runs of the plate with a hole (amplitudes 0.006 and 0.004 mm, half a cycle), with
    their load patterns and law in the run metadata; returns the law."""
    problems = [plate_problem(n=n, n_cycles=0.5, amplitude=a) for a in (0.006, 0.004)]
    store = create_store(path, problems[0].mesh, n_subdomains=n_subdomains)
    for name, problem in zip(("a", "b"), problems):
        meta = {"loads": describe_loads(problem), "material": law_to_json(problem.material)}
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta,
                              fields=FIELDS, allow_nan=("state",))
        solve(problem, writer=writer, fields=FIELDS)
    return problems[0].material


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """(store path, law) of a 2-subdomain store of the smallest plate."""
    path = tmp_path_factory.mktemp("cluster-store") / "s.zarr"
    law = make_store(path)
    return path, law
