"""The online solver's numba kernels against their formulas (einsum, numpy's solve)."""

from __future__ import annotations

import numpy as np

import pytest

from romdask.online.kernels import (
    internal_forces,
    lu_solve,
    norm,
    predictor_rhs,
    residual,
    stiffness,
    tangent_times,
    total_strain,
)


def test_kernels_match_their_formulas():
    rng = np.random.default_rng(0)
    r, n, n_l = 7, 5, 2
    E, L = rng.standard_normal((r, 6, n)), rng.standard_normal((r, 6, n_l))
    gamma, a, w = rng.standard_normal(n), rng.standard_normal(n_l), rng.uniform(size=r)
    w[3] = 0.0
    tangent = rng.standard_normal((r, 6, 6))
    tangent[1] = np.diag(np.arange(1.0, 7.0))  # sparse rows (an elastic-like tangent)

    strain = np.empty((r, 6))
    total_strain(E, gamma, L, a, strain)
    np.testing.assert_allclose(strain, np.einsum("kcj,j->kc", E, gamma) + np.einsum("kci,i->kc", L, a),
                               rtol=1e-13, atol=1e-14)
    for A in (E, L):
        DA = np.empty_like(A)
        tangent_times(tangent, A, DA)
        np.testing.assert_allclose(DA, np.einsum("kil,klj->kij", tangent, A), rtol=1e-13, atol=1e-14)
    f, f_abs = np.empty(n), np.empty(n)
    internal_forces(E, w, strain, f, f_abs)
    terms = w[:, None] * np.einsum("kcj,kc->kj", E, strain)
    np.testing.assert_allclose(f, terms.sum(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(f_abs, np.abs(terms).sum(axis=0), rtol=1e-13)
    K, WEt = np.empty((n, n)), np.ascontiguousarray((w[:, None, None] * E).reshape(6 * r, n).T)
    DE = np.empty_like(E)
    stiffness(WEt, tangent, E, DE, K)
    np.testing.assert_allclose(K, np.einsum("k,kci,kcd,kdj->ij", w, E, tangent, E), rtol=1e-12, atol=1e-12)
    K_L = np.empty((n, n_l))
    stiffness(WEt, tangent, L, np.empty_like(L), K_L)
    np.testing.assert_allclose(K_L, np.einsum("k,kci,kcd,kdj->ij", w, E, tangent, L), rtol=1e-12, atol=1e-12)
    stiffness(WEt, tangent, E[:, :, :0], DE[:, :, :0], np.empty((n, 0)))  # no lifting: nothing to do

    f_ext, out = rng.standard_normal(n), np.empty(n)
    assert residual(f_ext, f, out) == pytest.approx(np.linalg.norm(f_ext - f), rel=1e-14)
    np.testing.assert_array_equal(out, f_ext - f)
    assert norm(f) == pytest.approx(np.linalg.norm(f), rel=1e-14) and norm(np.zeros(0)) == 0.0
    a_n = rng.standard_normal(n_l)
    assert predictor_rhs(f_ext, f, K_L, a, a_n, out)
    np.testing.assert_allclose(out, f_ext - f - K_L @ (a - a_n), rtol=1e-13, atol=1e-13)
    assert not predictor_rhs(f, f, K_L, a, a, out) and not np.any(out)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_lu_solve_matches_numpy(n):
    """Pivoting needed (a zero diagonal, rows of very different sizes); agreement to the
    condition number times the rounding."""
    rng = np.random.default_rng(n)
    K = rng.standard_normal((n, n)) * np.logspace(0, 6, n)[:, None]
    K[0, 0] = 0.0 if n > 1 else K[0, 0]
    b = rng.standard_normal(n)
    lu, x = np.empty((n, n)), np.empty(n)
    assert lu_solve(K, b, lu, x) == 0
    expected = np.linalg.solve(K, b)
    assert np.abs(x - expected).max() <= 1e-15 * np.linalg.cond(K) * np.abs(expected).max()


def test_lu_solve_reports_the_zero_pivot():
    """As LAPACK's info: the 1-based column where elimination meets an exactly zero pivot."""
    K = np.array([[2.0, 1.0, 0.0], [4.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # column 2 is eliminated to 0
    x = np.empty(3)
    assert lu_solve(K, np.ones(3), np.empty((3, 3)), x) == 2
    assert lu_solve(np.zeros((2, 2)), np.ones(2), np.empty((2, 2)), np.empty(2)) == 1
