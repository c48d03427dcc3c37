"""The Newton iterations of one sub-increment of the reduced solver, compiled whole.

:func:`newton` runs the predictor and the Newton loop of :class:`romdask.online.solver._Solver`
in one numba call: the law kernel, the internal force, the reduced tangent, the residual test and
the dense solve, with no Python between them. The built-in laws are called by number
(:data:`LAW_IDS`: numba caches a compiled function on disk only if it takes no function as an
argument, and a first-class function argument costs ~60 us per call to unbox); a model with several
laws or a law of its own runs the same function in the interpreter with ``python_law`` (the
solver's ``_Laws.evaluate``), calling the same numba kernels, so both give the same bits.

Measured (ccx-trained 10,360-node plate, one cycle, 40 increments, warm, medians of interleaved
runs): 81 reduced points 5.2 -> 3.7 ms per solve against the former Python loop (dgesv, numpy
norms, K at every iterate), 229 points 13.4 -> 9.2 ms; of that, running this function compiled
rather than interpreted is ~10 % at 81 points and ~2 % at 229 (5.1 vs 5.6 ms, 8.7 vs 8.9 ms): most
of the gain is forming K only where it is used (Newton corrections and commits: 71 instead of 111
products per solve), the small LU and norms without wrappers and a faster coefficient lookup.
"""

from __future__ import annotations

import math
from typing import Any

import numba

from romdask.materials.calculix import calculix_kernel
from romdask.materials.chaboche import chaboche_kernel
from romdask.materials.elastic import elastic_kernel
from romdask.online.kernels import (
    internal_forces,
    lu_solve,
    norm,
    predictor_rhs,
    residual,
    stiffness,
    total_strain,
)

__all__ = ["FAILURES", "LAW_IDS", "newton"]

#: the kernels :func:`newton` calls compiled, by number
LAW_IDS: dict[Any, int] = {elastic_kernel: 0, calculix_kernel: 1, chaboche_kernel: 2}

#: status -> what failed (status 0: converged); ``{detail}``: failed points or the zero pivot
FAILURES = {
    1: "local integration failed at {detail} reduced point(s)",
    2: "non-finite residual",
    3: "no convergence in {detail} iterations",
    4: "residual growing",
    5: "singular reduced tangent (zero pivot {detail})",
    6: "non-finite internal force at the thermal predictor",
}


@numba.njit(cache=True)
def _builtin_law(law, strain, state, dt, t, temperature, params, stress, tangent, trial):  # pragma: no cover
    if law == 0:
        return elastic_kernel(strain, state, dt, t, temperature, params, stress, tangent, trial)
    if law == 1:
        return calculix_kernel(strain, state, dt, t, temperature, params, stress, tangent, trial)
    return chaboche_kernel(strain, state, dt, t, temperature, params, stress, tangent, trial)


def _newton(law, python_law, params, state, trial, E, L, w, WEt, gamma, a, a_n, f_ext, f_int_n, K_n, K_L, strain,
            stress, tangent, temperature, f_int, f_abs, K, DE, rhs, x, lu, history, dt, t, rtol, atol, force_scale,
            max_iterations, predictor, thermal):  # pragma: no cover - compiled (and run by the tests interpreted)
    """One sub-increment ``t - dt -> t`` from the committed state; returns ``(status,
    linear_solves, n_history, force_scale, detail)``, status 0 when converged (:data:`FAILURES`).

    ``law`` / ``python_law``: a :data:`LAW_IDS` number and None (compiled), or any and the
    interpreted ``python_law(strain, dt, t) -> n_failed``. The law's committed state ``state`` and
    ``trial`` (the new one) go to the built-in kernel with ``params`` and ``temperature``.
    Reads the modes' strains ``E``, the liftings' ``L``, weights ``w``, ``WEt``, the lifting
    values ``a`` (t) and ``a_n``, ``f_ext`` (t), the committed internal force ``f_int_n`` and
    tangents ``K_n``, ``K_L``; updates ``gamma`` (the committed one on entry) and writes
    ``strain``, ``stress``, ``tangent``, ``f_int``, ``f_abs``, ``K`` (the tangent of an iterate,
    not of the converged state: 40 % fewer of these products), ``DE``, ``rhs``, ``x``, ``lu`` and
    the relative residual of every iteration into ``history`` (max_iterations + 1).
    ``predictor``: the tangent predictor (else Newton starts at gamma); ``thermal``: its internal
    force is that of the committed strain under the new temperatures (one law evaluation).
    """
    n_solves = 0
    if predictor and gamma.size:
        f_start = f_int_n
        if thermal:
            total_strain(E, gamma, L, a_n, strain)
            if python_law is None:
                failed = _builtin_law(law, strain, state, dt, t, temperature, params, stress, tangent, trial)
            else:
                failed = python_law(strain, dt, t)
            if failed:
                return 1, 0, 0, force_scale, failed
            internal_forces(E, w, stress, f_int, f_abs)
            if not math.isfinite(norm(f_int)):
                return 6, 0, 0, force_scale, 0
            f_start = f_int
        if predictor_rhs(f_ext, f_start, K_L, a, a_n, rhs):
            info = lu_solve(K_n, rhs, lu, x)
            if info:
                return 5, 0, 0, force_scale, info
            gamma += x
            n_solves = 1
    ext = norm(f_ext)  # the loads of t: fixed over the iterations
    n_history = 0
    last = before = math.inf  # the two previous residual norms
    while True:
        total_strain(E, gamma, L, a, strain)
        if python_law is None:
            failed = _builtin_law(law, strain, state, dt, t, temperature, params, stress, tangent, trial)
        else:
            failed = python_law(strain, dt, t)
        if failed:
            return 1, n_solves, n_history, force_scale, failed
        internal_forces(E, w, stress, f_int, f_abs)
        size = residual(f_ext, f_int, rhs)
        scale = max(ext, norm(f_abs), force_scale)
        history[n_history] = size / scale if scale > 0 else size
        n_history += 1
        if not math.isfinite(size):
            return 2, n_solves, n_history, force_scale, 0
        if size <= rtol * scale or size <= atol:
            return 0, n_solves, n_history, max(force_scale, scale), 0
        if n_solves >= max_iterations:
            return 3, n_solves, n_history, force_scale, max_iterations
        if size > last > before:
            return 4, n_solves, n_history, force_scale, 0
        before, last = last, size
        stiffness(WEt, tangent, E, DE, K)  # the iterate's (a converged state's is formed at the commit)
        info = lu_solve(K, rhs, lu, x)
        if info:
            return 5, n_solves, n_history, force_scale, info
        gamma += x
        n_solves += 1


newton = numba.njit(cache=True)(_newton)
newton.__doc__ = _newton.__doc__
