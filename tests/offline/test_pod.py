"""Snapshot POD on subdomain blocks (romdask.offline.pod)."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.linalg

from romdask.fem.quadrature import mass_matrix
from romdask.offline import POD, combine, gram, inner, mass_product, pod, pod_update, strains
from romdask.offline.pod import tsqr_r
from romdask.problems.plate import plate_mesh
from romdask.store import SnapshotStore, create_store, open_snapshots

N_RUNS, N_STEPS = 3, 20  # 60 snapshots



def _snapshots(mesh, decay=0.7, seed=0):
    """(n_snap, n_dofs) snapshots in ``mesh``'s numbering with singular values decay**i."""
    rng = np.random.default_rng(seed)
    n_snap = N_RUNS * N_STEPS
    X, _ = np.linalg.qr(rng.standard_normal((n_snap, n_snap)))
    Y, _ = np.linalg.qr(rng.standard_normal((mesh.n_dofs, n_snap)))
    return (X * decay ** np.arange(n_snap)) @ Y.T


def _make_store(path, n_subdomains, data, mesh):
    store = create_store(path, mesh, n_subdomains=n_subdomains)
    for r in range(N_RUNS):
        with store.writer(f"run{r}", mesh=mesh, times=np.arange(N_STEPS) * 1.0) as w:
            for t in range(N_STEPS):
                w.write(t, float(t), {"displacement": data[r * N_STEPS + t].reshape(-1, 3)})
    return SnapshotStore.open(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Stores of the same snapshots with 1, 2 and 4 subdomains: {K: (store, U, reorder)}.

    ``reorder`` maps store dof order to the mesh's (by node id), for comparisons across stores.
    """
    mesh = plate_mesh(3)
    data = _snapshots(mesh)
    out = {}
    for K in (1, 2, 4):
        store = _make_store(tmp_path_factory.mktemp(f"k{K}") / "s.zarr", K, data, mesh)
        lay = store.layout
        perm = mesh.node_index(lay.mesh.node_ids)  # store node i = mesh node perm[i]
        to_mesh = np.argsort((3 * perm[:, None] + np.arange(3)).ravel())
        U = open_snapshots(store.path).displacement.data
        out[K] = (store, U, to_mesh)
    return mesh, data, out


def _orthonormality(Phi, M=None):
    G = Phi @ Phi.T if M is None else Phi @ (M @ Phi.T)
    return float(np.abs(G - np.eye(len(Phi))).max())


def _sines(A, B, M=None):
    """Sines of the principal angles between the row spaces of A and B (in the M product)."""
    if M is not None:
        L = np.linalg.cholesky(M.toarray())
        A, B = A @ L, B @ L
    return np.sin(scipy.linalg.subspace_angles(A.T, B.T))


@pytest.mark.parametrize("method", ["snapshots", "tsqr", "randomized"])
def test_modes_orthonormal_euclidean(stores, method):
    _, _, by_k = stores
    store, U, _ = by_k[4]
    res = pod(U, method=method, tol=1e-3, rank=30)
    Phi = res.modes.compute()
    assert res.n_modes == int(np.count_nonzero(0.7 ** np.arange(60) > 1e-3))
    assert _orthonormality(Phi) < 1e-10


@pytest.mark.parametrize("method", ["snapshots", "tsqr", "randomized"])
def test_modes_orthonormal_l2(stores, method):
    _, _, by_k = stores
    store, U, _ = by_k[4]
    M = mass_matrix(store.layout.mesh)
    res = pod(U, product="l2", layout=store.layout, method=method, tol=1e-3, rank=30)
    assert _orthonormality(res.modes.compute(), M) < 1e-10
    # the refined snapshot modes stay orthonormal for deeper truncations too
    deep = pod(U, product=mass_product(store.layout), tol=1e-6, reorthonormalize=True)
    assert deep.n_modes > 30 and _orthonormality(deep.modes.compute(), M) < 1e-10


def test_gram_matches_dense(stores):
    _, _, by_k = stores
    store, U, _ = by_k[4]
    Un = U.compute()
    M = mass_matrix(store.layout.mesh)
    np.testing.assert_allclose(gram(U).compute(), Un @ Un.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gram(U, "l2", layout=store.layout).compute(), Un @ (M @ Un.T), rtol=1e-12,
                               atol=1e-14 * np.abs(Un @ (M @ Un.T)).max())


@pytest.mark.parametrize("l2", [False, True])
def test_projection_error_is_the_truncation_bound(stores, l2):
    _, _, by_k = stores
    store, U, _ = by_k[2]
    Un = U.compute()
    M = mass_matrix(store.layout.mesh) if l2 else None
    res = pod(U, product="l2" if l2 else None, layout=store.layout, tol=1e-3)
    Phi = res.modes.compute()
    coef = Un @ Phi.T if M is None else Un @ (M @ Phi.T)
    E = Un - coef @ Phi
    err = np.sqrt(np.sum(E * E) if M is None else np.sum(E * (M @ E.T).T))
    bound = np.sqrt(np.sum(res.singular_values[res.n_modes:] ** 2))
    assert res.truncation_error == pytest.approx(bound)
    # round-off of the Gram eigenvalues: ~ eps * s_0^2 each (m of them)
    # the Gram eigenvalues (hence the bound) carry errors ~ eps s_0^2: about 1e-7 relative here
    assert err == pytest.approx(bound, rel=1e-6)
    if not l2:  # R-only TSQR: singular values accurate to eps * s_0
        exact = pod(U, method="tsqr", tol=1e-3)
        assert exact.n_modes == res.n_modes
        Phi = exact.modes.compute()
        E = Un - (Un @ Phi.T) @ Phi
        assert np.sqrt(np.sum(E * E)) == pytest.approx(exact.truncation_error, rel=1e-10)


def test_mass_weighted_tsqr_is_accurate_for_deep_modes(stores):
    """M-weighted TSQR (element mass Cholesky factors) against a dense reference, down to
    s_i / s_0 ~ 1e-6 where the Gram method has lost about half its digits."""
    _, _, by_k = stores
    store, U, _ = by_k[4]
    M = mass_matrix(store.layout.mesh)
    Un = U.compute()
    s_ref = np.linalg.svd(Un @ np.linalg.cholesky(M.toarray()), compute_uv=False)
    res = pod(U, product="l2", layout=store.layout, method="tsqr", tol=1e-6)
    assert res.singular_values[res.n_modes - 1] / res.singular_values[0] < 2e-6
    np.testing.assert_allclose(res.singular_values[: res.n_modes], s_ref[: res.n_modes], rtol=1e-10)
    np.testing.assert_allclose(res.singular_values, s_ref, rtol=0, atol=1e-14 * s_ref[0])


def test_energy_and_n_modes_truncation(stores):
    _, _, by_k = stores
    _, U, _ = by_k[1]
    res = pod(U, energy=1e-4)
    s2 = res.singular_values ** 2
    n = res.n_modes
    assert s2[:n].sum() / s2.sum() >= 1 - 1e-4 > s2[: n - 1].sum() / s2.sum()
    assert pod(U, n_modes=7).n_modes == 7


def test_same_pod_for_1_2_4_subdomains_and_all_methods(stores):
    mesh, data, by_k = stores
    s_ref = np.linalg.svd(data, compute_uv=False)
    _, _, Vt_ref = np.linalg.svd(data, full_matrices=False)
    n_keep = 10
    for K, (store, U, to_mesh) in by_k.items():
        for method, kw in [("snapshots", {}), ("tsqr", {}), ("randomized", {"power_iterations": 2})]:
            res = pod(U, method=method, n_modes=n_keep, **kw)
            np.testing.assert_allclose(res.singular_values[:n_keep], s_ref[:n_keep], rtol=1e-6,
                                       err_msg=f"{K} subdomains, {method}")
            Phi = res.modes.compute()[:, to_mesh]
            assert _sines(Phi, Vt_ref[:n_keep]).max() < 1e-6, (K, method)
        # exact methods agree much more tightly
        s_tsqr = pod(U, method="tsqr", n_modes=n_keep).singular_values
        np.testing.assert_allclose(s_tsqr, s_ref, rtol=1e-10, atol=1e-14 * s_ref[0])


def test_randomized_needs_power_iterations(stores):
    mesh, data, by_k = stores
    _, U, to_mesh = by_k[2]
    s_ref = np.linalg.svd(data, compute_uv=False)
    _, _, Vt_ref = np.linalg.svd(data, full_matrices=False)
    errors = {}
    for p in (0, 2):
        res = pod(U, method="randomized", n_modes=10, oversampling=10, power_iterations=p)
        rel = np.abs(res.singular_values[:10] - s_ref[:10]) / s_ref[:10]
        angle = _sines(res.modes.compute()[:, to_mesh], Vt_ref[:10]).max()
        errors[p] = (rel.max(), angle)
    assert errors[2][0] < 1e-6 and errors[2][1] < 1e-6
    assert errors[0][0] > 100 * errors[2][0] and errors[0][1] > 100 * errors[2][1]
    assert errors[0][1] > 1e-4  # p = 0: the subspace is visibly wrong


@pytest.mark.parametrize("l2", [False, True])
def test_pod_update_equals_pod_on_all_snapshots(stores, l2):
    _, _, by_k = stores
    store, U, _ = by_k[4]
    product = mass_product(store.layout) if l2 else None
    first = pod(U[:40], product=product, tol=1e-4)
    assert first.gram is not None
    updated = pod_update(first, U[40:])
    full = pod(U, product=product, tol=1e-4)
    assert updated.n_modes == full.n_modes
    s0 = full.singular_values[0]
    # same Gram up to summation order: eigenvalues equal to eps * s_0^2
    np.testing.assert_allclose(updated.eigenvalues, full.eigenvalues, rtol=0, atol=100 * np.finfo(float).eps * s0 ** 2)
    np.testing.assert_allclose(updated.singular_values[: full.n_modes], full.singular_values[: full.n_modes], rtol=1e-7)
    M = mass_matrix(store.layout.mesh) if l2 else None
    assert _sines(updated.modes.compute(), full.modes.compute(), M).max() < 1e-8


def test_pod_update_after_a_gram_free_method(stores):
    _, _, by_k = stores
    _, U, _ = by_k[2]
    first = pod(U[:30], method="tsqr", tol=1e-4)
    assert first.gram is None
    updated = pod_update(first, U[30:])
    full = pod(U, tol=1e-4)
    assert updated.n_modes == full.n_modes
    np.testing.assert_allclose(updated.singular_values[: full.n_modes], full.singular_values[: full.n_modes], rtol=1e-7)


def test_accepts_the_store_dataarray(stores):
    _, _, by_k = stores
    store, U, _ = by_k[2]
    ds = open_snapshots(store.path)
    a, b = pod(ds.displacement, tol=1e-3), pod(U, tol=1e-3)
    np.testing.assert_array_equal(a.singular_values, b.singular_values)


def test_blas_pinned_to_one_thread_in_block_tasks(stores, monkeypatch):
    import importlib

    blas_module = importlib.import_module("romdask.threads")

    calls = []
    real = blas_module._limit

    def recording(group):
        calls.append(group)
        return real(group)

    monkeypatch.setattr(blas_module, "_limit", recording)
    _, _, by_k = stores
    store, U, _ = by_k[4]
    gram(U).compute(scheduler="sync")  # one limit per block task (sequential: none overlap)
    gram(U, mass_product(store.layout)).compute(scheduler="sync")
    pod(U, method="tsqr", n_modes=3).modes.compute(scheduler="sync")  # pod holds one for its run
    assert calls.count("openblas") >= 2 * 4 + 1 and calls.count("other") == calls.count("openblas")
    assert not any(blas_module._holders.values())


def test_graph_building_computes_nothing(stores, raise_on_compute):
    _, _, by_k = stores
    store, U, _ = by_k[4]
    res = pod(U, tol=1e-3)
    P = mass_product(store.layout)
    with raise_on_compute():
        g1 = gram(U)
        g2 = gram(U, P)
        c = inner(U[:5], U, P)
        modes = combine(np.ones((3, U.shape[0])), U)
        again = res.modes + 0
    assert g1.shape == g2.shape == (60, 60) and c.shape == (5, 60)
    assert modes.chunks[1] == U.chunks[1] and again.chunks[1] == U.chunks[1]
    # the modes of a POD are lazy: building them computed nothing beyond the Gram
    assert isinstance(res.modes, da.Array) and isinstance(res, POD)


def test_input_errors(stores):
    _, _, by_k = stores
    store, U, _ = by_k[2]
    P = mass_product(store.layout)
    bare = type(P)(P.halos, tuple(P.matrix(k) for k in range(2)), P.dof_offsets, "custom")
    with pytest.raises(ValueError, match="needs the Euclidean product or a mass product"):
        pod(U, product=bare, method="tsqr")
    # a product given by assembled matrices works with the other methods
    np.testing.assert_allclose(gram(U, bare).compute(), gram(U, P).compute(), rtol=1e-13, atol=1e-16)
    with pytest.raises(ValueError, match="needs the store layout"):
        pod(U, product="l2")
    with pytest.raises(ValueError, match="one chunk per subdomain"):
        gram(U.rechunk({1: 100}), mass_product(store.layout))
    with pytest.raises(ValueError, match="method must be"):
        pod(U, method="svd")


def _large_store(path, n_runs=4, n_steps=45, shape=(46, 46, 46), rank=8, n_subdomains=32):
    """A ~450 MB uncompressed store of rank-``rank`` snapshots; returns (store, expected s)."""
    from romdask.problems.meshing import box

    mesh = box(shape)
    store = create_store(path, mesh, n_subdomains=n_subdomains, compression=None)
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((rank, mesh.n_dofs))
    C = rng.standard_normal((n_runs * n_steps, rank)) * 0.5 ** np.arange(rank)
    for r in range(n_runs):
        with store.writer(f"run{r}", mesh=mesh, times=np.arange(n_steps) * 1.0) as w:
            for t in range(n_steps):
                w.write(t, float(t), {"displacement": (C[r * n_steps + t] @ Y).reshape(-1, 3)})
    expected = np.sqrt(np.clip(np.linalg.eigvalsh(C @ (Y @ Y.T) @ C.T)[::-1], 0, None))
    return SnapshotStore.open(path), expected


@pytest.mark.parametrize("row_chunks", ["run", "subdomain"])
def test_pod_out_of_core_on_a_small_memory_cluster(tmp_path, row_chunks):
    """POD of a store larger than each worker's memory limit, on 2 worker processes.

    A worker process holds ~225 MB once romdask, numba, zarr and dask are imported (measured
    here), so the limit is 350 MB (pausing disabled: it would trigger on the imports alone) and
    the store ~450 MB; each task holds one subdomain column (~15 MB).
    """
    import distributed  # a core dependency: its absence must fail
    store, expected = _large_store(tmp_path / "big.zarr")
    U = open_snapshots(store.path, row_chunks=row_chunks).displacement.data
    limit = 350e6
    assert U.nbytes > 1.2 * limit
    config = {"distributed.worker.memory.pause": False, "distributed.worker.memory.target": False,
              "distributed.worker.memory.spill": False}
    with dask.config.set(config), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=limit, processes=True,
            dashboard_address=None) as cluster, distributed.Client(cluster):
        t0 = time.perf_counter()
        res = pod(U, n_modes=8)
        modes = res.modes.compute()
        elapsed = time.perf_counter() - t0
    np.testing.assert_allclose(res.singular_values[:8], expected[:8], rtol=1e-9)
    assert _orthonormality(modes) < 1e-10
    assert elapsed < 60


# ---- one block per subdomain (open_snapshots(row_chunks="subdomain")) and embed-free graphs ----


def test_subdomain_blocks_give_the_same_pod(stores):
    """One block per subdomain (no row-chunk merge): the same Gram, singular values and modes as
    the per-run chunks, and the numpy SVD's singular values to the method's precision
    (snapshots: eps (s_0/s_i)^2 value by value; TSQR: eps)."""
    mesh, data, by_k = stores
    store, U_run, to_mesh = by_k[4]
    U = open_snapshots(store.path, row_chunks="subdomain").displacement.data
    assert U.numblocks == (1, 4)
    s_ref = np.linalg.svd(data, compute_uv=False)
    _, _, Vt_ref = np.linalg.svd(data, full_matrices=False)
    eps = np.finfo(float).eps
    for product in (None, mass_product(store.path)):
        np.testing.assert_allclose(gram(U, product).compute(), gram(U_run, product).compute(), rtol=1e-13,
                                   atol=1e-15 * np.abs(gram(U_run, product).compute()).max())
    res = pod(U, tol=1e-6)
    s = res.singular_values
    kept = s_ref / s_ref[0] > 1e-6
    rel = np.abs(s[kept] - s_ref[kept]) / s_ref[kept]
    assert np.all(rel <= 100 * eps * (s_ref[0] / s_ref[kept]) ** 2 + 1e-14), rel.max()
    assert res.n_modes == int(kept.sum())
    n = 20  # s_i / s_0 = 0.7^19 ~ 1e-3: modes accurate to ~eps (s_0/s_i)^2 / gap
    Phi = res.modes.compute()[:n, to_mesh]
    assert _sines(Phi, Vt_ref[:n]).max() < 1e-8
    exact = pod(U, method="tsqr", tol=1e-6)
    np.testing.assert_allclose(exact.singular_values, s_ref, rtol=0, atol=1e-14 * s_ref[0])
    assert _orthonormality(exact.modes.compute()) < 1e-10
    M = mass_matrix(store.layout.mesh)
    l2 = pod(U, product="l2", layout=store.path, tol=1e-3)
    l2_run = pod(U_run, product="l2", layout=store.layout, tol=1e-3)
    np.testing.assert_allclose(l2.singular_values[: l2.n_modes], l2_run.singular_values[: l2.n_modes], rtol=1e-12)
    assert _orthonormality(l2.modes.compute(), M) < 1e-10
    assert _sines(l2.modes.compute(), l2_run.modes.compute(), M).max() < 1e-8
    wtsqr = pod(U, product=mass_product(store), method="tsqr", tol=1e-3)
    np.testing.assert_allclose(wtsqr.singular_values[: l2.n_modes], l2.singular_values[: l2.n_modes], rtol=1e-8)


def test_store_mass_product_equals_the_global_mass_matrix(stores):
    """Sub-meshes read inside the tasks (store path) give the same products as the layout's."""
    _, _, by_k = stores
    store, U, _ = by_k[4]
    Un = U.compute()
    M = mass_matrix(store.layout.mesh)
    P = mass_product(store.path)
    assert P.embed_free and not mass_product(store.layout).embed_free
    ref = Un @ (M @ Un.T)
    np.testing.assert_allclose(gram(U, P).compute(), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    np.testing.assert_allclose(inner(U[:7], U, P).compute(), ref[:7], rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    for k in range(4):  # the assembled matrices agree too
        A, B = P.matrix(k), mass_product(store.layout).matrix(k)
        assert abs(A - B).max() <= 1e-14 * abs(B).max()
    R = tsqr_r(U, P).compute()
    np.testing.assert_allclose(R.T @ R, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_graph_building_with_store_references_computes_nothing(stores, raise_on_compute):
    _, _, by_k = stores
    store, _, _ = by_k[4]
    with raise_on_compute():
        U = open_snapshots(store.path, row_chunks="subdomain").displacement.data
        P = mass_product(store.path)
        graphs = [gram(U), gram(U, P), inner(U[:3], U, P), tsqr_r(U), tsqr_r(U, P), strains(U, store.path),
                  combine(np.ones((2, U.shape[0])), U)]
        with pytest.raises(RuntimeError, match="computed something"):
            gram(U).compute()
    assert [g.shape for g in graphs[:5]] == [(60, 60), (60, 60), (3, 60), (60, 60), (60, 60)]


def _graph_bytes(*arrays) -> int:
    import cloudpickle

    graph = {}
    for a in arrays:
        graph.update(dict(a.__dask_graph__()))
    return len(cloudpickle.dumps(graph))


def test_graph_size_does_not_grow_with_the_mesh(tmp_path, raise_on_compute):
    """With the store given (path), graphs carry references, not sub-meshes. A 2.06x larger
    mesh: the Euclidean POD graph keeps its size; the L2 / strain graphs grow only by their halo
    index arrays (interface-sized, ~ nodes^(2/3) = 1.62x), and stay far below the graphs that
    embed the sub-meshes (layout only), which grow like the mesh."""
    from romdask.problems.meshing import box

    sizes, euclid, embedded = {}, {}, {}
    for n in (10, 13):  # 1,331 and 2,744 nodes
        mesh = box((n, n, n))
        path = tmp_path / f"b{n}.zarr"
        store = create_store(path, mesh, n_subdomains=4, compression=None)
        for r in range(2):
            with store.writer(f"run{r}", mesh=mesh, times=np.arange(3.0)) as w:
                for t in range(3):
                    w.write(t, float(t), {"displacement": np.full((mesh.n_nodes, 3), r + t + 1.0)})
        U = open_snapshots(path, row_chunks="subdomain").displacement.data
        with raise_on_compute():
            euclid[n] = _graph_bytes(gram(U), tsqr_r(U))
            sizes[n] = _graph_bytes(gram(U, mass_product(path)), tsqr_r(U, mass_product(path)), strains(U, path))
            lay = SnapshotStore.open(path).layout
            embedded[n] = _graph_bytes(gram(U, mass_product(lay)), strains(U, lay))
    assert euclid[13] < 1.05 * euclid[10], euclid
    assert sizes[13] < (2744 / 1331) ** (2 / 3) * sizes[10] and sizes[13] < 0.05 * embedded[13], (sizes, embedded)
    assert embedded[13] > 1.8 * embedded[10], embedded
