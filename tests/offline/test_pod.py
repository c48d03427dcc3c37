"""Snapshot POD on subdomain blocks (romdask.offline.pod)."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.linalg

from romdask.fem.quadrature import mass_matrix
from romdask.offline import POD, combine, gram, inner, mass_product, pod, pod_update
from romdask.problems.plate import plate_mesh
from romdask.store import SnapshotStore, create_store, open_snapshots

N_RUNS, N_STEPS = 3, 20  # 60 snapshots


def _raise_on_compute(*args, **kwargs):
    raise RuntimeError("a graph-building function computed something")


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


@pytest.mark.parametrize("method", ["snapshots", "randomized"])
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


def test_graph_building_computes_nothing(stores):
    _, _, by_k = stores
    store, U, _ = by_k[4]
    res = pod(U, tol=1e-3)
    P = mass_product(store.layout)
    with dask.config.set(scheduler=_raise_on_compute):
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
    with pytest.raises(ValueError, match="Euclidean product only"):
        pod(U, product="l2", layout=store.layout, method="tsqr")
    with pytest.raises(ValueError, match="needs the store layout"):
        pod(U, product="l2")
    with pytest.raises(ValueError, match="one chunk per subdomain"):
        gram(U.rechunk({1: 100}), mass_product(store.layout))
    with pytest.raises(ValueError, match="method must be"):
        pod(U, method="svd")
