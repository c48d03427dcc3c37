"""The online solver's numba kernels against their formulas (einsum)."""

from __future__ import annotations

import numpy as np

from romdask.online.kernels import internal_forces, tangent_times, total_strain


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
