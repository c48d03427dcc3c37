"""Empirical Cubature Method: tolerance, positivity, exactness, determinism, subdomains, laziness."""

import importlib
import dask
import dask.array as da
import numpy as np
import pytest

from romdask.offline.ecm import ECMResult, ecm, ecm_subdomains, ecm_subdomains_graph, integrand_matrix


def gauss_1d(n_el=200, n_gp=3):
    xg, wg = np.polynomial.legendre.leggauss(n_gp)
    edges = np.linspace(0.0, 2.0, n_el + 1)
    h = np.diff(edges)
    x = (edges[:-1, None] + h[:, None] * (xg + 1) / 2).ravel()
    w = (h[:, None] * wg / 2).ravel()
    return x, w


def gauss_3d(n_el=6):
    """2x2x2 Gauss points of an n_el^3 hex grid on the unit cube."""
    x1, w1 = gauss_1d(n_el, 2)
    x1, w1 = x1 / 2, w1 / 2
    X = np.stack(np.meshgrid(x1, x1, x1, indexing="ij"), -1).reshape(-1, 3)
    W = np.einsum("i,j,k->ijk", w1, w1, w1).ravel()
    return X, W


@pytest.fixture(scope="module")
def smooth_1d():
    x, w = gauss_1d()
    J = np.array([np.sin(np.pi * a * x) * x**p + 0.3 * p for a in range(1, 7) for p in range(4)])
    return J, w


@pytest.fixture(scope="module")
def smooth_3d():
    X, W = gauss_3d()
    x, y, z = X.T
    rows = [x**a * y**b * np.cos(np.pi * c * z) + np.sin(np.pi * (a + 1) * x * y)
            for a in range(3) for b in range(3) for c in range(3)]
    return np.array(rows), W


@pytest.fixture(scope="module")
def plate():
    """Integrands of a real elastoviscoplastic run: stress snapshots x strains of POD modes."""
    from romdask.fem.quadrature import quadrature, strain
    from romdask.hifi import solve
    from romdask.problems.plate import plate_problem

    problem = plate_problem(n=3, n_cycles=0.5)
    result = solve(problem, fields=("displacement", "stress"))
    quad = quadrature(problem.mesh)
    _, s, vt = np.linalg.svd(result.displacement[1:], full_matrices=False)
    modes = vt[: int(np.sum(s > 1e-8 * s[0]))]
    mode_strains = np.stack([strain(quad, m) for m in modes])
    stress = result.fields["stress"][1:]
    return stress, mode_strains, quad.weights


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def check(result, J, w, tol):
    b = J @ w
    assert isinstance(result, ECMResult)
    assert result.residual <= tol
    assert rel(J[:, result.points] @ result.weights, b) == pytest.approx(result.residual, rel=1e-6, abs=1e-14)
    assert np.all(result.weights > 0)
    assert result.points.dtype == np.int64 and np.all(np.diff(result.points) > 0)
    assert abs(result.weights.sum() - w.sum()) <= tol * w.sum()  # volume


@pytest.mark.parametrize("case", ["smooth_1d", "smooth_3d"])
def test_tolerance_met_and_points_grow(case, request):
    J, w = request.getfixturevalue(case)
    counts = []
    for tol in (1e-3, 1e-5, 1e-8):
        r = ecm(J, w, tol=tol)
        check(r, J, w, tol)
        counts.append(r.n_points)
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert counts[-1] < J.shape[1] / 10  # a real reduction


def test_exact_when_tolerance_vanishes(smooth_3d):
    J, w = smooth_3d
    r = ecm(J, w, tol=1e-12)
    check(r, J, w, 1e-12)
    np.testing.assert_allclose(J[:, r.points] @ r.weights, J @ w, rtol=1e-10, atol=1e-12 * np.abs(J @ w).max())


def test_plate_reduced_internal_forces(plate):
    stress, mode_strains, w = plate
    J, b = integrand_matrix(stress, mode_strains, w)
    counts = []
    for tol in (1e-3, 1e-5, 1e-8):
        r = ecm(J, w, tol=tol)
        check(r, J, w, tol)
        counts.append(r.n_points)
        # reduced internal forces of every training snapshot: sum_k w_k E_k^T sigma_k
        f_full = np.einsum("k,skc,jkc->sj", w, stress, mode_strains)
        pts = r.points
        f_red = np.einsum("k,skc,jkc->sj", r.weights, stress[:, pts], mode_strains[:, pts])
        assert rel(f_red, f_full) <= tol
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_integrand_matrix_definition_and_compression(plate):
    stress, mode_strains, w = plate
    J, b = integrand_matrix(stress, mode_strains, w)
    n_s, n_m = stress.shape[0], mode_strains.shape[0]
    assert J.shape == (n_s * n_m, w.size)
    s, j, k = 3, n_m - 1, 17
    assert J[s * n_m + j, k] == pytest.approx(stress[s, k] @ mode_strains[j, k])
    np.testing.assert_allclose(b, J @ w)
    Jc, bc = integrand_matrix(stress, mode_strains, w, compress_tol=1e-6)
    assert Jc.shape[0] < J.shape[0] and Jc.shape[0] % n_m == 0
    assert np.linalg.norm(bc) == pytest.approx(np.linalg.norm(b), rel=1e-5)  # isometric rows
    r = ecm(Jc, w, tol=1e-5)
    assert rel(J[:, r.points] @ r.weights, b) <= 1e-4  # guarantee up to the compression error
    assert integrand_matrix(stress, mode_strains)[1] is None


def test_deterministic_and_row_permutation_invariant(smooth_3d):
    J, w = smooth_3d
    r1, r2 = ecm(J, w, tol=1e-6), ecm(J, w, tol=1e-6)
    np.testing.assert_array_equal(r1.points, r2.points)
    np.testing.assert_array_equal(r1.weights, r2.weights)
    perm = np.random.default_rng(1).permutation(J.shape[0])
    r3 = ecm(J[perm], w, tol=1e-6)
    np.testing.assert_array_equal(r1.points, r3.points)
    np.testing.assert_allclose(r1.weights, r3.weights, rtol=1e-8)


def test_warm_start_candidates_max_points(smooth_3d):
    J, w = smooth_3d
    coarse = ecm(J, w, tol=1e-3)
    cold = ecm(J, w, tol=1e-7)
    warm = ecm(J, w, tol=1e-7, initial=coarse.points)
    check(warm, J, w, 1e-7)
    assert warm.n_iterations < cold.n_iterations
    allowed = np.arange(0, w.size, 2)
    r = ecm(J, w, tol=1e-5, candidates=allowed)
    check(r, J, w, 1e-5)
    assert np.all(r.points % 2 == 0)
    capped = ecm(J, w, tol=1e-12, max_points=5)
    assert capped.n_points <= 5 and np.all(capped.weights > 0)


def test_warm_start_with_more_points_than_the_basis(smooth_3d):
    """A warm start larger than the integrands' basis (an enriched model's previous points, more
    than the new rows' rank): it used to fail in the block QR (shapes (r,) and (k,)); the points
    are then factored one by one, dependent ones skipped, and the tolerance is met."""
    J, w = smooth_3d
    few = J[:4]
    initial = np.arange(0, w.size, 7)[:40]
    r = ecm(few, w, tol=1e-6, initial=initial)
    check(r, few, w, 1e-6)
    assert r.n_points <= 4 + 1  # at most the basis size (4 rows and the constant)


def test_input_errors(smooth_1d):
    J, w = smooth_1d
    with pytest.raises(ValueError, match="positive"):
        ecm(J, -w, tol=1e-3)
    with pytest.raises(ValueError, match="shape"):
        ecm(J, w[:-1])
    with pytest.raises(ValueError, match="same integration points"):
        integrand_matrix(np.zeros((2, 5, 6)), np.zeros((3, 4, 6)))


def blocks(J, w, n_sub, chunks=None):
    cuts = np.linspace(0, w.size, n_sub + 1).astype(int)
    J_blocks = [da.from_array(J[:, a:b], chunks=chunks or (J.shape[0], b - a))
                for a, b in zip(cuts[:-1], cuts[1:])]
    w_blocks = [da.from_array(w[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    return J_blocks, w_blocks


@pytest.mark.parametrize("n_sub", [1, 2, 4])
def test_subdomains_meet_global_tolerance(smooth_3d, n_sub):
    J, w = smooth_3d
    tol = 1e-5
    J_blocks, w_blocks = blocks(J, w, n_sub)
    with dask.config.set(scheduler="sync"):
        r = ecm_subdomains(J_blocks, w_blocks, tol=tol)
    check(r, J, w, tol)
    assert len(r.points_per_subdomain) == n_sub and sum(r.points_per_subdomain) == r.n_points
    # the local ECMs meet the target (default local_tol), the greedy correction keeps it
    assert r.history[0] <= tol and r.history[-1] <= tol
    with dask.config.set(scheduler="sync"):
        union = ecm_subdomains(J_blocks, w_blocks, tol=tol, global_correction=False)
    assert r.n_points <= union.n_points and set(r.points) <= set(union.points)
    if len(r.history) > 1:  # the correction dropped points
        assert r.n_points < union.n_points
    # loose local tolerance: the global NNLS correction never makes things worse
    with dask.config.set(scheduler="sync"):
        loose = ecm_subdomains(J_blocks, w_blocks, tol=tol, local_tol=1e-3)
    assert loose.history[-1] <= loose.history[0] and np.all(loose.weights > 0)
    assert rel(J[:, loose.points] @ loose.weights, J @ w) == pytest.approx(loose.residual, rel=1e-6)


def test_subdomain_graph_is_lazy(smooth_3d):
    J, w = smooth_3d
    J_blocks, w_blocks = blocks(J, w, 2, chunks=(J.shape[0], 200))

    def fail(*args, **kwargs):
        raise AssertionError("the graph builder triggered a compute")

    with dask.config.set(scheduler=fail):
        graph = ecm_subdomains_graph(J_blocks, w_blocks, tol=1e-5)
        again = ecm_subdomains_graph(J_blocks, w_blocks, tol=1e-5)
    assert graph.key == again.key  # deterministic task names
    r = graph.compute(scheduler="sync")
    check(r, J, w, 1e-5)


def test_subdomain_input_errors(smooth_3d):
    J, w = smooth_3d
    J_blocks, w_blocks = blocks(J, w, 2)
    with pytest.raises(ValueError, match="weight block"):
        ecm_subdomains_graph(J_blocks, w_blocks[:1])
    with pytest.raises(ValueError, match="weight block 1"):
        ecm_subdomains_graph(J_blocks, [w_blocks[0], w_blocks[1][:-1]])


def test_gram_svd_path_for_large_problems(smooth_3d, monkeypatch):
    """Large J go through the Gram matrix (faster SVD): same guarantees."""
    ecm_module = importlib.import_module("romdask.offline.ecm")  # the package attribute "ecm" is the function

    J, w = smooth_3d
    exact = ecm(J, w, tol=1e-6)
    monkeypatch.setattr(ecm_module, "_EXACT_SVD_MAX_FLOPS", 0)
    for tol in (1e-3, 1e-6):
        r = ecm(J, w, tol=tol)
        check(r, J, w, tol)
    assert abs(r.n_points - exact.n_points) <= 3


def test_row_basis_extended_per_stage(monkeypatch):
    """A later stage's larger rank extends the right singular vectors (both SVD paths): the rows
    already there stay as they are, the whole is orthonormal and equals the rows computed at once."""
    ecm_module = importlib.import_module("romdask.offline.ecm")
    rng = np.random.default_rng(5)
    A = (rng.standard_normal((60, 60)) * np.logspace(0, -6, 60)) @ rng.standard_normal((60, 400))
    for max_flops in (ecm_module._EXACT_SVD_MAX_FLOPS, 0):  # QR path, Gram path
        monkeypatch.setattr(ecm_module, "_EXACT_SVD_MAX_FLOPS", max_flops)
        _, rows = ecm_module._weighted_svd(A.copy())
        first = rows(30)[:-1].copy()
        extended = rows(50)[:-1]
        _, at_once = ecm_module._weighted_svd(A.copy())
        np.testing.assert_array_equal(extended[:30], first)
        np.testing.assert_allclose(extended @ extended.T, np.eye(50), atol=1e-13)
        np.testing.assert_allclose(extended, at_once(50)[:-1], atol=1e-12)


def test_tall_integrand_matrix(plate):
    """More rows than points (the QR path of the SVD): same guarantees."""
    stress, mode_strains, w = plate
    J, _ = integrand_matrix(stress, mode_strains, w)
    cols = np.arange(0, w.size, max(1, w.size // (J.shape[0] // 2)))
    J, w = J[:, cols], w[cols]
    assert J.shape[0] > J.shape[1]
    r = ecm(J, w, tol=1e-6)
    check(r, J, w, 1e-6)
    # the residual is verified on J: the last history entry is the returned residual
    assert r.history and r.history[-1] == pytest.approx(r.residual, rel=1e-12)


def test_subdomains_accept_delayed_blocks(smooth_3d):
    """J blocks may be Delayed objects (built on the workers); the shapes come from the weights."""
    J, w = smooth_3d
    cuts = [0, 700, w.size]
    J_blocks = [dask.delayed(np.ascontiguousarray)(J[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    w_blocks = [w[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    r = ecm_subdomains_graph(J_blocks, w_blocks, tol=1e-5).compute(scheduler="sync")
    check(r, J, w, 1e-5)
    assert r.points_per_subdomain[0] == np.count_nonzero(r.points < 700)


def test_warm_started_nnls_is_the_nnls():
    """After each added point the weights solve the NNLS on the selected set (warm-started
    Lawson-Hanson inner loop with a KKT check, Givens drops; scipy's NNLS otherwise)."""
    from scipy.optimize import nnls

    from romdask.offline.ecm import _Greedy, _solve_weights

    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.standard_normal((300, 40)))[0].T  # orthonormal rows
    sqrt_w = rng.uniform(0.5, 1.5, 300)
    g = basis @ sqrt_w
    greedy = _Greedy(basis, sqrt_w, g)
    x, n_drops = np.empty(0), 0
    for k in rng.permutation(300)[:60]:
        before = list(greedy.points) + [int(k)]
        if not greedy.add(int(k)):
            continue
        x = _solve_weights(greedy, x if x.size == len(before) - 1 else None)
        n_drops += len(before) - len(greedy.points)
        assert np.all(x > 0) and len(x) == len(greedy.points)
        optimum = nnls(greedy.columns(before), g)[1]
        fit = np.linalg.norm(greedy.columns(greedy.points) @ x - g)
        assert fit == pytest.approx(optimum, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(greedy.Q.T @ greedy.Q, np.eye(len(x)), atol=1e-10)
    assert n_drops > 0  # the drop paths were exercised


# ------------------------------------------------------------------ point elimination after the ECM
@pytest.mark.parametrize("case", ["smooth_3d", "plate"])
def test_elimination_keeps_the_tolerance_with_fewer_points(case, request):
    """Backward elimination (``eliminate=True``): fewer points than the greedy selection, never
    more, every remaining point a subset of it, the tolerance (integrals and volume) still met."""
    if case == "plate":
        stress, mode_strains, w = request.getfixturevalue("plate")
        J, _ = integrand_matrix(stress, mode_strains, w)
    else:
        J, w = request.getfixturevalue(case)
    fewer = 0
    for tol in (1e-2, 1e-3, 1e-5):
        greedy = ecm(J, w, tol=tol)
        pruned = ecm(J, w, tol=tol, eliminate=True)
        check(pruned, J, w, tol)
        assert set(pruned.points) <= set(greedy.points) and pruned.n_points <= greedy.n_points
        fewer += greedy.n_points - pruned.n_points
    assert fewer > 0  # the greedy picks that later picks made redundant are dropped


def test_eliminate_points_drops_what_the_others_integrate():
    """Columns that repeat others' integrands: their weight can move onto the others."""
    from romdask.offline.ecm import eliminate_points

    rng = np.random.default_rng(0)
    base = rng.random((6, 5))
    cols = np.hstack([base, base[:, :3]])  # columns 5-7 repeat columns 0-2
    x = np.full(8, 0.5)
    b = cols @ x
    kept = eliminate_points(cols, b, x, x.sum(), 1e-12)
    assert np.count_nonzero(kept) == 5 and np.all(kept >= 0)
    assert np.linalg.norm(cols @ kept - b) <= 1e-12 * np.linalg.norm(b)
    assert kept.sum() == pytest.approx(x.sum(), rel=1e-12)
    # nothing to drop: independent columns that each carry part of the integral
    assert np.count_nonzero(eliminate_points(base, base @ x[:5], x[:5], 2.5, 1e-12)) == 5
