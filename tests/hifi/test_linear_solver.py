"""Sparse direct solver wrapper (romdask.hifi.linear)."""

import numpy as np
import pytest
import scipy.sparse as sp

from romdask.hifi.linear import LinearSolver, SingularMatrixError, have_pardiso

BACKENDS = ["superlu"] + (["pardiso"] if have_pardiso() else [])


def laplacian(n, shift=0.0):
    main = np.full(n, 2.0 + shift)
    return sp.diags([-np.ones(n - 1), main, -np.ones(n - 1)], [-1, 0, 1], format="csr")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_solves_and_reuses_analysis(backend, symmetric):
    n = 200
    rng = np.random.default_rng(0)
    solver = LinearSolver(symmetric=symmetric, backend=backend)
    base = laplacian(n, 0.1)
    for k in range(3):
        a = (base + sp.diags(rng.uniform(0, 1, n), 0)).tocsr()
        if not symmetric:
            a = (a + sp.diags(0.3 * np.ones(n - 1), 1)).tocsr()
        a.sort_indices()
        stored = sp.triu(a, format="csr") if symmetric else a
        if k == 0:
            indptr, indices = stored.indptr, stored.indices
        else:  # same pattern arrays, new values (as the Newton loop does)
            stored = sp.csr_matrix((stored.data, indices, indptr), shape=a.shape)
        b = rng.standard_normal(n)
        solver.factorize(stored)
        x = solver.solve(b)
        np.testing.assert_allclose(a @ x, b, rtol=0, atol=1e-10 * np.abs(b).max())
    if backend == "pardiso":
        assert solver.n_analyses == 1 and solver.n_factorizations == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_singular_matrix_raises(backend, symmetric):
    n = 50
    a = laplacian(n).tolil()
    a[0, 0] = 1.0  # Neumann ends: constant vector in the kernel
    a[n - 1, n - 1] = 1.0
    a = a.tocsr()
    stored = sp.triu(a, format="csr") if symmetric else a
    solver = LinearSolver(symmetric=symmetric, backend=backend)
    with pytest.raises(SingularMatrixError):
        solver.factorize(stored)
        solver.solve(np.arange(n, dtype=float))


def test_bad_backend():
    with pytest.raises(ValueError, match="backend"):
        LinearSolver(backend="mumps")
