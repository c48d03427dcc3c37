"""Subdomain halos and local (owned + halo) snapshot arrays (romdask.offline.halo)."""

from __future__ import annotations

from dask.core import get_dependencies
import numpy as np
import pytest

from romdask.offline import local_snapshots, subdomain_halos, submesh
from romdask.problems.plate import plate_mesh
from romdask.store import SnapshotStore, create_store, open_snapshots



def _random_store(path, n_subdomains: int, n_runs: int = 2, n_steps: int = 5):
    mesh = plate_mesh(3)
    store = create_store(path, mesh, n_subdomains=n_subdomains)
    rng = np.random.default_rng(n_subdomains)
    for r in range(n_runs):
        with store.writer(f"run{r}", mesh=mesh, times=np.arange(n_steps) * 1.0) as w:
            for t in range(n_steps):
                w.write(t, float(t), {"displacement": rng.standard_normal((mesh.n_nodes, 3))})
    return SnapshotStore.open(path)


@pytest.mark.parametrize("n_subdomains", [1, 2, 4])
def test_local_arrays_are_global_slices(tmp_path, n_subdomains, raise_on_compute):
    store = _random_store(tmp_path / "s.zarr", n_subdomains)
    layout = store.layout
    U = open_snapshots(store.path).displacement.data
    assert U.numblocks == (2, n_subdomains)  # one block per (run, subdomain)
    halos = subdomain_halos(layout)
    with raise_on_compute():
        L = local_snapshots(U, halos)
    U_np = U.compute(scheduler="sync")
    L_np = L.compute(scheduler="sync")
    start = 0
    for h in halos:
        n = h.n_local_dofs
        np.testing.assert_array_equal(L_np[:, start : start + n], U_np[:, h.dofs])
        start += n


@pytest.mark.parametrize("n_subdomains", [2, 4])
def test_halo_structure(tmp_path, n_subdomains):
    layout = _random_store(tmp_path / "s.zarr", n_subdomains, n_runs=1, n_steps=1).layout
    halos = subdomain_halos(layout)
    mesh = layout.mesh
    # elements partitioned; local nodes = nodes of the subdomain's elements
    all_el = np.sort(np.concatenate([h.elements for h in halos]))
    np.testing.assert_array_equal(all_el, np.arange(mesh.n_elements))
    conn = np.concatenate([b.connectivity for b in mesh.blocks])
    n_halo = 0
    for h in halos:
        np.testing.assert_array_equal(h.nodes, np.unique(conn[h.elements]))
        assert np.all(np.diff(h.dofs) > 0)
        # the sources rebuild the local dofs in local order
        rebuilt = np.concatenate([
            layout.dof_offsets[l] + (np.arange(layout.dof_offsets[l + 1] - layout.dof_offsets[l]) if p is None else p)
            for l, p in h.sources
        ])
        np.testing.assert_array_equal(rebuilt, h.dofs)
        owners = layout.node_subdomain[h.nodes]
        assert set(h.neighbors) == set(np.unique(owners).tolist()) - {h.subdomain}
        n_halo += int(np.count_nonzero(owners != h.subdomain))
        # the sub-mesh's points come in the store's order for the subdomain
        sm = submesh(layout, h)
        assert sm.n_elements == len(h.elements)
        np.testing.assert_array_equal(np.concatenate([b.ids for b in sm.blocks]), mesh.element_ids[h.elements])
    assert n_halo > 0  # a real halo exists


def test_graph_has_one_task_per_subdomain_with_neighbor_edges(tmp_path):
    store = _random_store(tmp_path / "s.zarr", 4, n_runs=1)
    U = open_snapshots(store.path).displacement.data
    halos = subdomain_halos(store.layout)
    L = local_snapshots(U, halos)
    graph = dict(L.__dask_graph__())
    local_keys = [k for k in graph if isinstance(k, tuple) and k[0] == L.name]
    assert len(local_keys) == 4  # one task per subdomain (one snapshot chunk)
    for k, h in enumerate(halos):
        # k's own block, and per neighbor a slicing task reading that neighbor's block only
        blocks = set()
        for d in get_dependencies(graph, (L.name, 0, k)):
            if d[0] == U.name:
                blocks.add(d[2])
            else:
                (dd,) = get_dependencies(graph, d)
                assert dd[0] == U.name and d[-1] == dd[2]
                blocks.add(dd[2])
        assert blocks == {l for l, _ in h.sources}


def test_wrong_chunks_is_an_error(tmp_path):
    store = _random_store(tmp_path / "s.zarr", 2, n_runs=1, n_steps=2)
    U = open_snapshots(store.path).displacement.data.rechunk({1: 50})
    with pytest.raises(ValueError, match="one chunk per subdomain"):
        local_snapshots(U, subdomain_halos(store.layout))
