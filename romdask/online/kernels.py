"""Small serial numba kernels of the reduced Newton solver (no allocation; outputs preallocated).

Shapes: ``r`` reduced points, ``n`` modes, ``n_l`` liftings; ``E (r, 6, n)`` and
``L (r, 6, n_l)`` the strains of the modes / lifting vectors at the reduced points (engineering
shear), ``w (r,)`` the weights, ``stress (r, 6)``, ``tangent (r, 6, 6)``.
"""

from __future__ import annotations

import numba

__all__ = ["total_strain", "internal_forces", "tangent_times", "gather", "scatter"]


@numba.njit(cache=True)
def total_strain(E, gamma, L, a, out):  # pragma: no cover - compiled
    """``out[k] = E_k gamma + L_k a`` (r, 6). Cost ``6 r (n + n_l)``."""
    r, _, n = E.shape
    n_l = L.shape[2]
    for k in range(r):
        for c in range(6):
            s = 0.0
            for j in range(n):
                s += E[k, c, j] * gamma[j]
            for i in range(n_l):
                s += L[k, c, i] * a[i]
            out[k, c] = s


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
    modes by ``out`` seen as ``(6 r, m)`` (BLAS). Cost ``36 r m``.
    """
    r, _, m = A.shape
    for k in range(r):
        for i in range(6):
            for j in range(m):
                out[k, i, j] = 0.0
            for l in range(6):
                d = tangent[k, i, l]
                if d != 0.0:
                    for j in range(m):
                        out[k, i, j] += d * A[k, l, j]


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

