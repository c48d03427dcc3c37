"""Small serial numba kernels of the reduced Newton solver (no allocation; outputs preallocated).

Shapes: ``r`` reduced points, ``n`` modes, ``n_l`` liftings; ``E (r, 6, n)`` and
``L (r, 6, n_l)`` the strains of the modes / lifting vectors at the reduced points (engineering
shear), ``w (r,)`` the weights, ``stress (r, 6)``, ``tangent (r, 6, 6)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["total_strain", "internal_forces", "tangent_times", "stiffness", "residual", "norm", "predictor_rhs",
           "lu_solve", "gather", "scatter"]


@numba.njit(cache=True)
def total_strain(E, gamma, L, a, out):  # pragma: no cover - compiled
    """``out[k] = E_k gamma + L_k a`` (r, 6). Cost ``6 r (n + n_l)``: the six components of a
    point summed side by side along the contiguous modes (2x faster than one at a time)."""
    r, _, n = E.shape
    n_l = L.shape[2]
    for k in range(r):
        s0 = s1 = s2 = s3 = s4 = s5 = 0.0
        for j in range(n):
            g = gamma[j]
            s0 += E[k, 0, j] * g
            s1 += E[k, 1, j] * g
            s2 += E[k, 2, j] * g
            s3 += E[k, 3, j] * g
            s4 += E[k, 4, j] * g
            s5 += E[k, 5, j] * g
        for i in range(n_l):
            g = a[i]
            s0 += L[k, 0, i] * g
            s1 += L[k, 1, i] * g
            s2 += L[k, 2, i] * g
            s3 += L[k, 3, i] * g
            s4 += L[k, 4, i] * g
            s5 += L[k, 5, i] * g
        out[k, 0], out[k, 1], out[k, 2] = s0, s1, s2
        out[k, 3], out[k, 4], out[k, 5] = s3, s4, s5


@numba.njit(cache=True)
def internal_forces(E, w, stress, f, f_abs):  # pragma: no cover - compiled
    """``f = sum_k w_k E_k^T sigma_k`` and ``f_abs = sum_k |w_k E_k^T sigma_k|`` (per row).

    ``f_abs`` is the no-cancellation scale of ``f`` (its size when the contributions of the
    points do not cancel), the reference of the relative convergence test. Cost ``12 r n``.
    """
    r, _, n = E.shape
    f[:] = 0.0
    f_abs[:] = 0.0
    for k in range(r):
        wk = w[k]
        if wk == 0.0:
            continue
        for j in range(n):
            s = 0.0
            for c in range(6):
                s += E[k, c, j] * stress[k, c]
            s *= wk
            f[j] += s
            f_abs[j] += abs(s)


@numba.njit(cache=True)
def tangent_times(tangent, A, out):  # pragma: no cover - compiled
    """``out[k] = D_k A_k`` (r, 6, m) with ``A (r, 6, m)`` (the modes E or the liftings L).

    The reduced tangent is then one product ``K = (w E)^T (D A)`` of the ``(n, 6 r)`` weighted
    modes by ``out`` seen as ``(6 r, m)`` (BLAS). Cost ``36 r m``: a row of ``D_k`` held in six
    scalars, the loop over ``m`` without branches (vectorized; 3x faster than skipping zeros).
    """
    r, _, m = A.shape
    for k in range(r):
        for i in range(6):
            d0, d1, d2 = tangent[k, i, 0], tangent[k, i, 1], tangent[k, i, 2]
            d3, d4, d5 = tangent[k, i, 3], tangent[k, i, 4], tangent[k, i, 5]
            for j in range(m):
                out[k, i, j] = (d0 * A[k, 0, j] + d1 * A[k, 1, j] + d2 * A[k, 2, j]
                                + d3 * A[k, 3, j] + d4 * A[k, 4, j] + d5 * A[k, 5, j])


@numba.njit(cache=True)
def stiffness(WEt, tangent, A, DA, out):  # pragma: no cover - compiled
    """``out = sum_k w_k E_k^T D_k A_k`` (n, m): :func:`tangent_times` into ``DA (r, 6, m)``, then
    one BLAS product ``WEt (n, 6 r) x DA (6 r, m)`` (``WEt`` the weighted modes, transposed).
    Cost ``36 r m + 12 r n m``; nothing when ``n`` or ``m`` is 0."""
    r, _, m = A.shape
    if m == 0 or WEt.shape[0] == 0:
        out[:] = 0.0
        return
    tangent_times(tangent, A, DA)
    np.dot(WEt, DA.reshape((6 * r, m)), out)


@numba.njit(cache=True)
def norm(v):  # pragma: no cover - compiled
    """Euclidean norm of a 1-D vector, summed in order."""
    s = 0.0
    for i in range(v.size):
        s += v[i] * v[i]
    return math.sqrt(s)


@numba.njit(cache=True)
def residual(f_ext, f_int, out):  # pragma: no cover - compiled
    """``out = f_ext - f_int``; returns its Euclidean norm."""
    for i in range(out.size):
        out[i] = f_ext[i] - f_int[i]
    return norm(out)


@numba.njit(cache=True)
def predictor_rhs(f_ext, f_int, K_L, a, a_n, out):  # pragma: no cover - compiled
    """``out = f_ext - f_int - K_L (a - a_n)``, the right-hand side of the tangent predictor;
    returns whether any entry is nonzero."""
    nonzero = False
    for i in range(out.size):
        s = 0.0
        for j in range(a.size):
            s += K_L[i, j] * (a[j] - a_n[j])
        out[i] = (f_ext[i] - f_int[i]) - s
        nonzero = nonzero or out[i] != 0.0
    return nonzero


@numba.njit(cache=True)
def lu_solve(K, b, lu, x):  # pragma: no cover - compiled
    """``x = K^-1 b`` by Gaussian elimination with partial pivoting (LAPACK dgetf2's algorithm,
    unblocked: the reduced systems have tens of unknowns) in the work array ``lu (n, n)``.

    Returns 0, or the 1-based column of an exactly zero pivot (as dgesv's ``info``; ``x`` is then
    meaningless). Cost ``2 n^3 / 3``; no allocation.
    """
    n = b.size
    for i in range(n):
        x[i] = b[i]
        for j in range(n):
            lu[i, j] = K[i, j]
    for j in range(n):
        p = j
        largest = abs(lu[j, j])
        for i in range(j + 1, n):
            if abs(lu[i, j]) > largest:
                largest = abs(lu[i, j])
                p = i
        if largest == 0.0:
            return j + 1
        if p != j:
            for k in range(n):
                lu[j, k], lu[p, k] = lu[p, k], lu[j, k]
            x[j], x[p] = x[p], x[j]
        pivot = lu[j, j]
        for i in range(j + 1, n):
            f = lu[i, j] / pivot
            if f != 0.0:
                for k in range(j + 1, n):
                    lu[i, k] -= f * lu[j, k]
                x[i] -= f * x[j]
    for i in range(n - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, n):
            s -= lu[i, k] * x[k]
        x[i] = s / lu[i, i]
    return 0


@numba.njit(cache=True)
def gather(source, index, out):  # pragma: no cover - compiled
    """``out[i] = source[index[i]]`` along the first axis."""
    for i in range(index.size):
        out[i] = source[index[i]]


@numba.njit(cache=True)
def scatter(source, index, out):  # pragma: no cover - compiled
    """``out[index[i]] = source[i]`` along the first axis."""
    for i in range(index.size):
        out[index[i]] = source[i]
