"""Q-DEIM selection and Gappy-POD fit, reconstruction and error indicator."""

import numpy as np
import pytest

from romdask.offline.gappy import GappyPOD, gappy_pod, point_rows, qdeim, qdeim_points


def orthonormal(n, r, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, r)))
    return q


def smooth_basis(n_points, r, n_components=1):
    """Orthonormal basis of smooth fields (cosines) at n_points, n_components per point."""
    x = np.linspace(0, 1, n_points)
    cols = [np.cos(np.pi * (j + 1) * x[:, None] * (1 + np.arange(n_components)) / n_components).ravel()
            for j in range(r)]
    q, _ = np.linalg.qr(np.array(cols).T)
    return q


def test_qdeim_identity_like_basis():
    rng = np.random.default_rng(3)
    n, r = 50, 6
    rows = np.array([4, 11, 17, 30, 41, 49])
    basis = 1e-3 * rng.normal(size=(n, r))
    basis[rows, rng.permutation(r)] = 1.0
    np.testing.assert_array_equal(qdeim(basis), rows)


def test_qdeim_better_conditioned_than_random():
    n, r = 400, 12
    basis = smooth_basis(n, r)
    idx = qdeim(basis)
    assert idx.dtype == np.int64 and idx.size == r and np.unique(idx).size == r
    cond = np.linalg.cond(basis[idx])
    rng = np.random.default_rng(0)
    random_conds = [np.linalg.cond(basis[rng.choice(n, r, replace=False)]) for _ in range(50)]
    assert cond < np.median(random_conds)
    assert np.linalg.norm(np.linalg.inv(basis[idx]), 2) <= np.sqrt(n * r)  # practical Q-DEIM bound


def test_qdeim_points_keep_all_components():
    n_points, n_c, r = 120, 6, 8
    basis = smooth_basis(n_points, r, n_c)
    pts = qdeim_points(basis, n_c)
    assert pts.size <= r and np.all(np.diff(pts) > 0)
    rows = point_rows(pts, n_c)
    assert set(qdeim(basis)) <= set(rows.tolist())
    assert np.linalg.matrix_rank(basis[rows]) == r
    with pytest.raises(ValueError, match="multiple of n_components"):
        qdeim_points(basis[:-1], n_c)


def test_qdeim_by_blocks_a_tournament_as_good_as_the_global_selection():
    """Blocks (subdomains): each block's first r pivots, then the pivoted QR of those rows. One block
    is the plain selection; with several, the first pick is the global one (the row of largest
    norm), the rows are distinct, and the interpolation matrix is as well conditioned (within 2x on
    a smooth and a random basis) as the global selection's."""
    for basis in (smooth_basis(3000, 12), orthonormal(3000, 12)):
        whole = qdeim(basis)
        np.testing.assert_array_equal(qdeim(basis, [0, 3000]), whole)
        blocks = qdeim(basis, [0, 700, 1500, 1501, 3000])  # a one-row block too
        assert blocks.dtype == np.int64 and np.unique(blocks).size == 12
        assert np.argmax(np.linalg.norm(basis, axis=1)) in blocks
        norms = [np.linalg.norm(np.linalg.inv(basis[idx]), 2) for idx in (blocks, whole)]
        assert norms[0] <= 2 * norms[1], norms
    assert np.all(np.diff(qdeim_points(smooth_basis(500, 4, 6), 6, [0, 1200, 3000])) > 0)
    for bad in ([0, 2000], [1, 3000], [0, 2000, 2000, 3000]):
        with pytest.raises(ValueError, match="blocks must rise strictly"):
            qdeim(basis, bad)


@pytest.fixture
def gappy_setup():
    n_points, n_c, r = 200, 6, 5
    basis = smooth_basis(n_points, r, n_c)
    pts = np.union1d(qdeim_points(basis, n_c), [3, 50, 77])  # e.g. ECM points + Q-DEIM points
    return basis, point_rows(pts, n_c)


def test_gappy_exact_in_span(gappy_setup):
    basis, rows = gappy_setup
    g = np.array([1.0, -2.0, 0.5, 3.0, 0.1])
    field = basis @ g
    gp = gappy_pod(basis, rows)
    assert isinstance(gp, GappyPOD) and gp.condition < 1e3
    np.testing.assert_allclose(gp.fit(field[rows]), g, atol=1e-12)
    np.testing.assert_allclose(gp.reconstruct(gp.fit(field[rows]), basis), field, atol=1e-12)
    assert gp.residual(field[rows]) < 1e-13
    # several time steps at once
    G = np.stack([g, 2 * g, -g], axis=1)
    np.testing.assert_allclose(gp.fit((basis @ G)[rows]), G, atol=1e-12)
    assert np.all(gp.residual((basis @ G)[rows]) < 1e-13)


def test_gappy_residual_grows_outside_span(gappy_setup):
    basis, rows = gappy_setup
    gp = gappy_pod(basis, rows)
    field = basis @ np.ones(basis.shape[1])
    outside = np.random.default_rng(1).normal(size=basis.shape[0])
    outside -= basis @ (basis.T @ outside)
    residuals = [gp.residual((field + eps * outside)[rows]) for eps in (0.0, 1e-3, 1e-2, 1e-1)]
    assert residuals[0] < 1e-13
    assert all(a < b for a, b in zip(residuals, residuals[1:]))
    assert gp.residual(np.zeros(rows.size)) == 0.0


def test_gappy_input_errors(gappy_setup):
    basis, rows = gappy_setup
    with pytest.raises(ValueError, match="Q-DEIM"):
        gappy_pod(basis, rows[:3])
    with pytest.raises(ValueError, match="rank deficient"):
        gappy_pod(basis, np.repeat(rows[:1], 10))
    gp = gappy_pod(basis, rows)
    with pytest.raises(ValueError, match="one per sampled row"):
        gp.fit(np.zeros(rows.size + 1))
