"""Temperature tables of law parameters and the thermal strain, as CalculiX evaluates them.

CalculiX (``materialdata_me.f``) evaluates every material constant at the integration point's
temperature at the end of the increment, T1: linear between two rows of a table, the first
(last) row below (above) the table; the row is found by ``ident2.f`` (a row whose temperature
equals T1 starts the interval above it). The thermal strain of ``*EXPANSION,ZERO=T0`` with a
secant coefficient alpha(T) is isotropic::

    eth = alpha(T1) (T1 - T0) - alpha(Tinit) (Tinit - T0)

with Tinit the initial temperature (``*INITIAL CONDITIONS,TYPE=TEMPERATURE``).

Packed tables (inside a law's ``params``) are rows ``[T, value_1, ..., value_k]`` of ``stride =
k + 1`` numbers; :func:`row_interval` and :func:`row_value` read them in numba kernels, operation
by operation as CalculiX does (the same bits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = [
    "check_expansion",
    "check_rows",
    "pack_expansion",
    "row_interval",
    "row_value",
    "thermal_strain",
]


@njit(cache=True)
def row_interval(params, start, n, stride, t):
    """ident2.f: 1-based row ``id`` with ``T_id <= t < T_id+1``; 0 below the table, n above."""
    idx = 0
    if n == 0:
        return 0
    n2 = n + 1
    while True:
        m = (n2 + idx) // 2
        if t >= params[start + stride * (m - 1)]:
            idx = m
        else:
            n2 = m
        if n2 - idx == 1:
            return idx


@njit(cache=True)
def row_value(params, start, n, stride, col, idx, t):
    """Column ``col`` (1..stride-1) of the table at ``t`` given ``idx = row_interval(...)``:
    ``c_id + (c_id+1 - c_id) (t - T_id) / (T_id+1 - T_id)`` (materialdata_me.f)."""
    if n == 1 or idx == 0:
        return params[start + col]
    if idx == n:
        return params[start + stride * (n - 1) + col]
    r0 = start + stride * (idx - 1)
    r1 = r0 + stride
    return params[r0 + col] + (params[r1 + col] - params[r0 + col]) * (t - params[r0]) / (params[r1] - params[r0])


@njit(cache=True)
def _alpha_dt(params, start, n, zero, t):
    idx = row_interval(params, start, n, 2, t)
    return row_value(params, start, n, 2, 1, idx, t) * (t - zero)


@njit(cache=True)
def thermal_strain(params, start, n, zero, t_init, t1):
    """Isotropic thermal strain ``alpha(t1) (t1 - zero) - alpha(t_init) (t_init - zero)`` of the
    packed ``(T, alpha)`` rows at ``params[start:start + 2 n]``; 0 when ``n == 0``."""
    if n == 0:
        return 0.0
    return _alpha_dt(params, start, n, zero, t1) - _alpha_dt(params, start, n, zero, t_init)


def check_rows(name: str, rows: Any, columns: tuple[str, ...]) -> tuple[tuple[float, ...], ...]:
    """Rows ``(value_1, ..., value_k, T)`` with finite numbers and strictly increasing T."""
    arr = np.array(rows, dtype=np.float64)
    k = len(columns)
    if arr.ndim != 2 or arr.shape[1] != k or arr.shape[0] < 1:
        raise ValueError(f"{name} must be rows ({', '.join(columns)}); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers.")
    if np.any(np.diff(arr[:, -1]) <= 0.0):
        raise ValueError(f"{name}: the temperatures (last column) must be strictly increasing; "
                         f"got {arr[:, -1].tolist()}.")
    return tuple(tuple(float(v) for v in row) for row in arr)


def check_expansion(expansion: Any, zero: Any) -> tuple[tuple[tuple[float, float], ...] | None, float]:
    """``expansion``: None, a secant coefficient alpha, or rows ``(alpha, T)``; ``zero``: the
    reference temperature of the secant coefficient (``*EXPANSION,ZERO=``)."""
    zero = float(zero)
    if not np.isfinite(zero):
        raise ValueError(f"expansion_zero must be finite; got {zero}.")
    if expansion is None:
        if zero != 0.0:
            raise ValueError("expansion_zero is given without expansion.")
        return None, zero
    if np.ndim(expansion) == 0:
        expansion = [[float(expansion), 0.0]]  # CalculiX: a row without temperature has T = 0
    return check_rows("expansion", expansion, ("alpha", "temperature")), zero  # type: ignore[return-value]


def pack_expansion(expansion: tuple[tuple[float, float], ...] | None) -> np.ndarray:
    """Packed ``(T, alpha)`` rows of :func:`thermal_strain` (empty without expansion)."""
    if expansion is None:
        return np.zeros(0)
    return np.array([(t, a) for a, t in expansion], np.float64).ravel()
