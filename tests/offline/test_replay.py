"""Nonintrusive strains and constitutive-law replay (romdask.offline.replay)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from romdask.fem.quadrature import quadrature, strain
from romdask.hifi.builtin import solve
from romdask.offline import replay, strains
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_run, open_snapshots

FIELDS = ("displacement", "stress", "state")



class _Tee:
    """Writer protocol fanning out to several writers."""

    def __init__(self, *writers):
        self.writers = writers

    def write(self, step, time, fields):
        for w in self.writers:
            w.write(step, time, fields)

    def close(self):
        for w in self.writers:
            w.close()


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """One built-in solve (plastic plate, half a cycle) written to stores with 1 and 4
    subdomains as run "ref" (displacement, stress, state) and "bare" (displacement only)."""
    problem = plate_problem(n=3, n_cycles=0.5)
    stores = {}
    writers = []
    for K in (1, 4):
        store = create_store(tmp_path_factory.mktemp(f"k{K}") / "s.zarr", problem.mesh, n_subdomains=K)
        writers.append(store.writer("ref", mesh=problem.mesh, times=problem.times, fields=FIELDS))
        writers.append(store.writer("bare", mesh=problem.mesh, times=problem.times, fields=("displacement",)))
        stores[K] = store
    result = solve(problem, writer=_Tee(*writers), fields=FIELDS)
    # replay is exact only when the solver used one increment per output interval
    assert np.all(result.n_subincrements == 1)
    return problem, stores


@pytest.mark.parametrize("K", [1, 4])
def test_strains_equal_global_strain(solved, K, raise_on_compute):
    problem, stores = solved
    store = stores[K]
    layout = store.layout
    U = open_snapshots(store.path, runs=["ref"]).displacement.data
    with raise_on_compute():
        eps = strains(U, layout)
    assert eps.shape == (U.shape[0], layout.n_points, 6)
    assert eps.chunks[1] == tuple(np.diff(layout.ip_offsets))
    quad = quadrature(layout.mesh)
    U_np = U.compute()
    expected = np.stack([strain(quad, u) for u in U_np])[:, layout.ip_points]
    got = eps.compute()
    assert np.abs(got).max() > 0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("K", [1, 4])
def test_lazy_replay_equals_the_solver_output(solved, K, raise_on_compute):
    problem, stores = solved
    store = stores[K]
    with raise_on_compute():
        out = replay(store.path, problem.material, runs=["ref"], write=False)
    ref = open_run(store.path, "ref")
    stress, state = out["ref"]["stress"].compute(), out["ref"]["state"].compute()
    s_ref, x_ref = ref.stress.values, ref.state.values
    assert x_ref[..., 0].max() > 1e-5  # plastic flow happened: a real test of the replay
    np.testing.assert_allclose(stress, s_ref, rtol=0, atol=1e-9 * np.abs(s_ref).max())
    np.testing.assert_allclose(state, x_ref, rtol=0, atol=1e-9 * np.abs(x_ref).max())
    # the lazy arrays compose with other dask operations (slicing, concatenation)
    p = da.concatenate([out["ref"]["state"][:, :, 0], out["ref"]["state"][:1, :, 0]], axis=0).compute()
    np.testing.assert_array_equal(p[:-1], state[..., 0])


def test_replay_writes_fields_into_complete_runs(solved):
    problem, stores = solved
    store = stores[4]
    status = replay(store.path, problem.material)
    assert status == {"bare": "written", "ref": "skipped"}
    bare, ref = open_run(store.path, "bare"), open_run(store.path, "ref")
    for f in ("stress", "state"):
        expected = ref[f].values
        np.testing.assert_allclose(bare[f].values, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    assert list(bare.component_state.values) == list(ref.component_state.values)
    # both runs now have both fields: open_snapshots shows them
    ds = open_snapshots(store.path)
    assert "stress" in ds and "state" in ds and ds.stress.shape[0] == 2 * len(problem.times)
    assert replay(store.path, problem.material) == {"bare": "skipped", "ref": "skipped"}


def test_replay_unknown_run(solved):
    problem, stores = solved
    with pytest.raises(ValueError, match="no complete run"):
        replay(stores[1].path, problem.material, runs=["nope"], write=False)


def test_strains_from_the_store_path_read_submeshes_in_tasks(solved, raise_on_compute):
    """strains(U, path): sub-meshes read inside the tasks (tiny graph), same values as with the
    layout (sub-meshes embedded); also on one block per subdomain."""
    _, stores = solved
    store = stores[4]
    U = open_snapshots(store.path, runs=["ref"], row_chunks="subdomain").displacement.data
    with raise_on_compute():
        a, b = strains(U, store.path), strains(U, store.layout)
    assert not any("submesh" in str(k) for k in dict(a.__dask_graph__()))
    np.testing.assert_array_equal(a.compute(), b.compute())
