"""CalculiX 2.20's small-strain (visco)plastic law, reproduced operation by operation.

Source: ``src/incplas_lin.f`` of CalculiX (GitHub ``Dhondtguido/CalculiX``; the algorithm is
unchanged between the 2.20 release and 2.23, only the argument ``elas`` was renamed ``stiff``),
called from ``mechmodel.f`` for material codes -51 (``*PLASTIC``) and -52 (``*PLASTIC`` +
``*CREEP,LAW=NORTON``) when NLGEOM is off. Hardening tables are copied by ``plcopy.f``
(<= 200 rows are used verbatim) and searched with ``ident.f``.

Temperature (``materialdata_me.f``, at the end-of-increment temperature T1 of the point):
E, nu, A, n, m are interpolated in the ``*ELASTIC`` temperatures (``creeps.f`` resamples the
``*CREEP`` rows there when the deck is read: done in ``__post_init__``); the hardening curves
of the two temperatures around T1 are merged by ``plmix.f`` (precomputed per pair of
neighbouring curves as rows (ep1, ep2, s1, s2), so the kernel only evaluates
``a + ratio (b - a)`` and allocates nothing for it); the thermal strain of ``*EXPANSION`` is
taken off the normal strains (``calcmechstrain.f``).

Differences that are intentional (none change the numbers):
- strain in engineering shear, converted to CalculiX's tensor shear on entry;
- a failed local Newton (CalculiX: ``pnewdt=0.25`` -> increment cut) returns the trial stress,
  elastic tangent and the old state, counted in the kernel's return value;
- ``state[13]`` (viscoplastic rate, SDV14) keeps its old value when the point is elastic or the
  law is rate independent, as CalculiX leaves ``xstate(14)`` untouched then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np
from numba import njit, prange

from romdask.materials.base import Material
from romdask.materials.registry import register_law
from romdask.materials.elastic import check_elastic_rows
from romdask.materials.thermal import check_expansion, check_rows, pack_expansion, row_interval, row_value, thermal_strain

__all__ = ["CalculixViscoplastic", "calculix_point", "calculix_kernel"]

_MAX_ROWS = 200  # plcopy.f / plmix.f resample longer tables; we refuse them instead

# packed parameter layout (see CalculixViscoplastic.params)
_NEL, _VISCO, _NAL, _ZERO, _OFF_EL, _OFF_AL, _OFF_ISO, _OFF_KIN, _RTOL, _HEAD = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
_EL_STRIDE = 6  # rows (T, E, nu, A, n, m): *ELASTIC with *CREEP interpolated at its temperatures
_CALCULIX_RTOL = 1.0e-4  # incplas_lin.f line 352: |dcop| < 1e-4 cop


@njit(cache=True)
def _x(params, o, n, r, k):
    """Plastic strain of row k of a hardening table (plmix.f: ep1 + ratio (ep2 - ep1))."""
    return params[o + k] + r * (params[o + n + k] - params[o + k])


@njit(cache=True)
def _y(params, o, n, r, k):
    """Stress of row k of a hardening table (plmix.f: s1 + ratio (s2 - s1))."""
    return params[o + 2 * n + k] + r * (params[o + 3 * n + k] - params[o + 2 * n + k])


@njit(cache=True)
def _ident(params, o, n, r, px):
    """ident.f on the table's plastic strains: 1-based id with x(id) <= px < x(id+1)."""
    idx = 0
    if n == 0:
        return 0
    n2 = n + 1
    while True:
        m = (n2 + idx) // 2
        if px >= _x(params, o, n, r, m - 1):
            idx = m
        else:
            n2 = m
        if n2 - idx == 1:
            return idx


@njit(cache=True)
def _lookup(params, o, n, r, ep):
    """Piecewise-linear table value and slope as in incplas_lin.f lines 264-302."""
    idx = _ident(params, o, n, r, ep)
    if idx == 0:
        return _y(params, o, n, r, 0), 0.0
    if idx == n:
        return _y(params, o, n, r, n - 1), 0.0
    x0 = _x(params, o, n, r, idx - 1)
    x1 = _x(params, o, n, r, idx)
    y0 = _y(params, o, n, r, idx - 1)
    y1 = _y(params, o, n, r, idx)
    slope = (y1 - y0) / (x1 - x0)
    return y0 + slope * (ep - x0), slope


@njit(cache=True)
def _curve_at(params, d, t):
    """(offset, rows, ratio) of the hardening table at temperature t (materialdata_me.f):
    plcopy.f of the first / last curve outside the temperatures, else plmix.f of the curves
    around t (a node temperature starts the interval above it, with ratio 0)."""
    if d < 0:
        return 0, 0, 0.0
    nt = int(params[d])
    temps = d + 1
    curves = temps + nt
    idx = 1
    if nt > 1:
        idx = row_interval(params, temps, nt, 1, t)
    if nt == 1 or idx == 0 or idx == nt:
        k = curves + 2 * (max(idx, 1) - 1)
        return int(params[k]), int(params[k + 1]), 0.0
    ratio = (t - params[temps + idx - 1]) / (params[temps + idx] - params[temps + idx - 1])
    k = curves + 2 * nt + 2 * (idx - 1)
    return int(params[k]), int(params[k + 1]), ratio


@njit(cache=True)
def _hardening(params, iso, kin, ep):
    """fiso, dfiso, fkin, dfkin at ep (incplas_lin.f lines 264-302); iso, kin from _curve_at."""
    io, niso, ri = iso
    ko, nkin, rk = kin
    if niso != 0:
        fiso, dfiso = _lookup(params, io, niso, ri, ep)
    elif nkin != 0:
        fiso, dfiso = _y(params, ko, nkin, rk, 0), 0.0
    else:
        fiso, dfiso = 0.0, 0.0
    if nkin != 0:
        fkin, dfkin = _lookup(params, ko, nkin, rk, ep)
    elif niso != 0:
        fkin, dfkin = _y(params, io, niso, ri, 0), 0.0
    else:
        fkin, dfkin = 0.0, 0.0
    return fiso, dfiso, fkin, dfkin


@njit(cache=True)
def _elastic_out(emec, epl, um2, al, um, stress, tangent):
    el0 = emec[0] - epl[0]
    el1 = emec[1] - epl[1]
    el2 = emec[2] - epl[2]
    tracee = el0 + el1 + el2
    stress[0] = um2 * el0 + al * tracee
    stress[1] = um2 * el1 + al * tracee
    stress[2] = um2 * el2 + al * tracee
    for i in range(3, 6):
        stress[i] = um2 * (emec[i] - epl[i])
    for i in range(6):
        for j in range(6):
            tangent[i, j] = 0.0
    for i in range(3):
        for j in range(3):
            tangent[i, j] = al
        tangent[i, i] = al + um2
        tangent[i + 3, i + 3] = um


@njit(cache=True)
def calculix_point(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):
    """One integration point of incplas_lin.f; returns 1 if the local Newton failed, else 0.

    ``state = [p, eps_p (6, tensor shear), back stress (6), viscoplastic rate]`` (CalculiX SDV).
    """
    t1 = temperature[2]
    ne = int(params[_NEL])
    oel = int(params[_OFF_EL])
    row = row_interval(params, oel, ne, _EL_STRIDE, t1)
    ee = row_value(params, oel, ne, _EL_STRIDE, 1, row, t1)
    un = row_value(params, oel, ne, _EL_STRIDE, 2, row, t1)
    um2 = ee / (1.0 + un)
    al = um2 * un / (1.0 - 2.0 * un)
    um = um2 / 2.0
    visco = params[_VISCO] > 0.5
    epini = state_old[0]
    a1 = 0.0
    xxn = 1.0
    if visco:
        xxa = row_value(params, oel, ne, _EL_STRIDE, 3, row, t1) * time ** row_value(params, oel, ne, _EL_STRIDE, 5, row, t1)
        if xxa < 1.0e-20:
            xxa = 1.0e-20
        xxn = row_value(params, oel, ne, _EL_STRIDE, 4, row, t1)
        a1 = xxa * dt
    iso = _curve_at(params, int(params[_OFF_ISO]), t1)
    kin = _curve_at(params, int(params[_OFF_KIN]), t1)
    niso = iso[1]
    rtol = params[_RTOL]
    eth = thermal_strain(params, int(params[_OFF_AL]), int(params[_NAL]), params[_ZERO], temperature[0], t1)
    # mechanical strain (minus the thermal strain) in tensor shear, plastic strain, back stress
    emec = np.empty(6)
    for i in range(3):
        emec[i] = strain[i] - eth
        emec[i + 3] = 0.5 * strain[i + 3]
    for i in range(14):
        state_new[i] = state_old[i]
    epl = state_new[1:7]
    stbl = state_new[7:13]
    # trial stress, deviator, radius vector
    _elastic_out(emec, epl, um2, al, um, stress, tangent)
    traces = (stress[0] + stress[1] + stress[2]) / 3.0
    xitril = np.empty(6)
    for i in range(3):
        xitril[i] = (stress[i] - traces) - stbl[i]
    for i in range(3, 6):
        xitril[i] = stress[i] - stbl[i]
    dxitril = 0.0
    for i in range(3):
        dxitril = dxitril + xitril[i] * xitril[i]
    for i in range(3, 6):
        dxitril = dxitril + 2.0 * xitril[i] * xitril[i]
    dxitril = np.sqrt(dxitril)
    # pure creep (zero yield table) is elastic in a rate-independent step
    ielastic = False
    if not visco and niso == 2:
        if abs(_y(params, iso[0], 2, iso[2], 0)) < 1.0e-10 and abs(_y(params, iso[0], 2, iso[2], 1)) < 1.0e-10:
            ielastic = True
    fiso, dfiso, fkin, dfkin = _hardening(params, iso, kin, epini)
    c1 = 2.0 / 3.0
    c2 = np.sqrt(c1)
    ftrial = dxitril - c2 * fiso
    if ftrial <= 1.0e-10 or ielastic or dt < 1.0e-30:
        return 0
    # local Newton on the consistency parameter cop
    iloop = 0
    cop = 0.0
    fiso0 = 0.0
    fkin0 = 0.0
    decra1 = 0.0
    decra5 = 1.0
    while True:
        iloop = iloop + 1
        ep = epini + c2 * cop
        fiso, dfiso, fkin, dfkin = _hardening(params, iso, kin, ep)
        if abs(cop) < 1.0e-10:
            fiso0 = fiso
            fkin0 = fkin
        if not visco:
            dcop = (dxitril - c2 * (fiso + fkin - fkin0) - um2 * cop) / (
                um2 + c1 * (dfiso + dfkin)
            )
        else:
            qtild = (dxitril - um2 * cop) / c2 - fiso - (fkin - fkin0)
            if qtild < 1.0e-10:
                qtild = 1.0e-10
            decra1 = a1 * qtild**xxn
            decra5 = xxn * decra1 / qtild
            dcop = (decra1 - c2 * cop) / (c2 * (decra5 * (dfiso + um * (3.0 + dfkin / um)) + 1.0))
        cop = cop + dcop
        if abs(dcop) < cop * rtol or abs(dcop) < 1.0e-10:
            break
        if iloop > 15 or cop <= 0.0:
            for i in range(14):
                state_new[i] = state_old[i]
            return 1
    ep = epini + c2 * cop
    # back stress (with fkin of the last iteration, as in CalculiX) and plastic strain
    c7 = c2 * (fkin - fkin0) / dxitril
    for i in range(6):
        stbl[i] = stbl[i] - c7 * xitril[i]
    c7 = cop / dxitril
    for i in range(6):
        epl[i] = epl[i] + c7 * xitril[i]
    _elastic_out(emec, epl, um2, al, um, stress, tangent)
    # consistent tangent (incplas_lin.f lines 401-433)
    c7 = um2**2 * cop / dxitril
    if not visco:
        c8 = um2**2 / (um2 + c1 * (dfiso + dfkin))
    else:
        c8 = um2**2 / (um2 + c1 * (dfiso + dfkin + 1.0 / decra5))
    d1 = um - c7 / 2.0
    d2 = al + c7 / 3.0
    d3 = (c7 - c8) / (dxitril**2)
    for i in range(6):
        for j in range(6):
            tangent[i, j] = d3 * xitril[i] * xitril[j]
    for i in range(3):
        for j in range(3):
            tangent[i, j] += d2
        tangent[i, i] += 2.0 * d1
        tangent[i + 3, i + 3] += d1
    state_new[0] = ep
    if visco:
        state_new[13] = decra1 / dt
    return 0



def _check_table(name: str, table: Any) -> tuple[tuple[float, float], ...]:
    arr = np.array(table, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"{name} must be a table of rows (von Mises stress, equivalent plastic strain) "
            f"as in the CalculiX card; got shape {arr.shape}."
        )
    if arr.shape[0] > _MAX_ROWS:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows; CalculiX resamples tables above {_MAX_ROWS} rows "
            "(plcopy.f), which is not reproduced: give at most 200 rows."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers.")
    if np.any(arr[:, 1] < 0.0) or np.any(np.diff(arr[:, 1]) <= 0.0):
        raise ValueError(
            f"{name}: the equivalent plastic strains (second column) must be >= 0 and strictly "
            f"increasing; got {arr[:, 1].tolist()}."
        )
    if np.any(arr[:, 0] < 0.0):
        raise ValueError(f"{name}: stresses (first column) must be >= 0.")
    return tuple((float(s), float(e)) for s, e in arr)


def _curves(name: str, table: Any) -> tuple[tuple, tuple[tuple[float, tuple], ...]]:
    """The checked table (rows as given) and its curves ``(T, rows (stress, eps_p))``: rows
    ``(stress, eps_p)`` are one curve at T = 0; rows ``(stress, eps_p, T)`` are grouped by
    consecutive equal T as plastics.f does (T strictly increasing from curve to curve)."""
    arr = np.array(table, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 2:
        rows = _check_table(name, arr)
        return rows, ((0.0, rows),)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be rows (von Mises stress, equivalent plastic strain[, temperature]) "
                         f"as in the CalculiX card; got shape {arr.shape}.")
    cut = np.flatnonzero(np.diff(arr[:, 2]) != 0.0) + 1
    groups = np.split(arr, cut)
    temps = [g[0, 2] for g in groups]
    if np.any(np.diff(temps) <= 0.0):
        raise ValueError(f"{name}: the temperatures (third column) must increase from curve to curve "
                         f"(rows of one temperature together); got the sequence {temps}.")
    curves = tuple((float(t), _check_table(f"{name} at temperature {t}", g[:, :2])) for t, g in zip(temps, groups))
    return tuple(tuple(float(v) for v in r) for r in arr), curves


def _plinterpol(curve: tuple, ep: float) -> float:
    """plinterpol.f: the stress of a curve (stress, eps_p) at ep, constant outside."""
    j = next((k for k, (_, e) in enumerate(curve) if ep < e), len(curve))
    if j == 0:
        return curve[0][0]
    if j == len(curve):
        return curve[-1][0]
    (s0, e0), (s1, e1) = curve[j - 1], curve[j]
    df = (s1 - s0) / (e1 - e0)
    return s0 + df * (ep - e0)


def _plmix_rows(c1: tuple, c2: tuple, where: str) -> list[tuple[float, float, float, float]]:
    """The rows (ep1, ep2, s1, s2) of plmix.f merging two curves: at temperature ratio r the
    merged table is (ep1 + r (ep2 - ep1), s1 + r (s2 - s1)); ep1 == ep2 but at the last row."""
    n1, n2 = len(c1), len(c2)
    k1 = k2 = 0
    if c1[0][1] > c2[0][1]:
        k2 = next((k for k in range(n2) if c2[k][1] > c1[0][1]), n2)
    elif c2[0][1] > c1[0][1]:
        k1 = next((k for k in range(n1) if c1[k][1] > c2[0][1]), n1)
    if k1 == n1 or k2 == n2:
        raise ValueError(f"{where}: the hardening curves of two neighbouring temperatures have disjoint "
                         "plastic strain ranges (CalculiX stops: plmix.f).")
    rows = []
    while True:
        (s1, ep1), (s2, ep2) = c1[k1], c2[k2]
        if abs(ep1 - ep2) < 1.0e-10:
            if k2 < n2 - 1:
                k2 += 1
            elif k1 < n1 - 1:
                k1 += 1
            else:
                rows.append((ep1, ep2, s1, s2))
                return rows
        elif ep1 < ep2:
            rows.append((ep1, ep1, s1, _plinterpol(c2, ep1)))
            if k1 == n1 - 1:
                return rows
            k1 += 1
        else:
            rows.append((ep2, ep2, _plinterpol(c1, ep2), s2))
            if k2 == n2 - 1:
                return rows
            k2 += 1


def _table_block(rows: list[tuple[float, float, float, float]]) -> np.ndarray:
    """[ep1 (n), ep2 (n), s1 (n), s2 (n)] of a hardening table (see _x, _y)."""
    return np.array(rows, np.float64).T.ravel()


def _hardening_block(curves: tuple, base: int, name: str) -> np.ndarray:
    """Directory + tables of one hardening kind at absolute offset ``base``:
    ``[nt, T (nt), (offset, rows) per curve, (offset, rows) per neighbour pair, tables...]``."""
    nt = len(curves)
    tables = [[(e, e, s, s) for s, e in rows] for _, rows in curves]
    for (ta, a), (tb, b) in pairwise(curves):
        merged = _plmix_rows(a, b, f"{name} between temperatures {ta} and {tb}")
        if len(merged) > _MAX_ROWS:
            raise ValueError(f"{name}: merging the curves of temperatures {ta} and {tb} gives {len(merged)} rows; "
                             f"CalculiX resamples above {_MAX_ROWS} (plmix.f), which is not reproduced.")
        tables.append(merged)
    offset = base + 1 + nt + 2 * len(tables)
    directory = []
    for t in tables:
        directory += [offset, len(t)]
        offset += 4 * len(t)
    head = np.array([nt] + [t for t, _ in curves] + directory, np.float64)
    return np.concatenate([head] + [_table_block(t) for t in tables])


def _check_norton(norton: Any) -> tuple | None:
    """``(A, n, m)`` or rows ``(A, n, m, T)`` (``*CREEP,LAW=NORTON`` with temperatures)."""
    if norton is None:
        return None
    if np.ndim(norton) == 2:
        rows = check_rows("norton", norton, ("A", "n", "m", "temperature"))
    else:
        values = tuple(float(v) for v in norton)
        if len(values) != 3 or not all(np.isfinite(values)):
            raise ValueError(f"norton must be (A, n, m) or rows (A, n, m, temperature); got {norton!r}.")
        rows = (values + (0.0,),)
    for a, n, _, t in rows:
        if a <= 0.0 or n <= 0.0:
            raise ValueError(f"norton A and n must be > 0; got A={a}, n={n} (temperature {t}).")
    return rows if np.ndim(norton) == 2 else rows[0][:3]


def _elastic_creep_rows(young, poisson, elastic, norton) -> np.ndarray:
    """Rows (T, E, nu, A, n, m) at the *ELASTIC temperatures, the Norton constants interpolated
    there as creeps.f does (constant outside the *CREEP temperatures)."""
    el = elastic if elastic is not None else ((young, poisson, 0.0),)
    if norton is None:
        creep = ((0.0, 1.0, 0.0, 0.0),)
    elif np.ndim(norton) == 1:
        creep = (tuple(norton) + (0.0,),)
    else:
        if elastic is None:
            raise ValueError("norton rows with temperatures need elastic rows (E, nu, temperature): CalculiX "
                             "evaluates the creep constants at the *ELASTIC temperatures only (creeps.f).")
        creep = norton
    temps = np.array([c[3] for c in creep])
    out = []
    for e, nu, t in el:
        k = int(np.searchsorted(temps, t, side="right"))  # ident2.f
        if len(creep) == 1 or k == 0 or k == len(creep):
            abc = creep[max(k, 1) - 1][:3]
        else:
            lo, hi = creep[k - 1], creep[k]
            abc = tuple(lo[i] + (hi[i] - lo[i]) * (t - lo[3]) / (hi[3] - lo[3]) for i in range(3))
        out.append((t, e, nu) + tuple(abc))
    return np.array(out, np.float64)


@njit(parallel=True, cache=True)
def calculix_kernel(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):  # pragma: no cover
    """The parallel kernel of the law (see :mod:`romdask.materials.base`): :func:`calculix_point`
    at every point, the loop of :func:`~romdask.materials.base.point_loop` written out here so
    that numba's disk cache serves it in every process."""
    n_failed = 0
    for i in prange(strain.shape[0]):
        n_failed += calculix_point(strain[i], state_old[i], dt, time, temperature[i], params, stress[i], tangent[i],
                                state_new[i])
    return n_failed

@register_law
@dataclass(frozen=True)
class CalculixViscoplastic(Material):
    """CalculiX 2.20's small-strain law: ``*ELASTIC`` + ``*PLASTIC`` (+ ``*CREEP,LAW=NORTON``),
    optionally with temperature tables and ``*EXPANSION``.

    Parameters
    ----------
    young, poisson : isotropic elasticity; None when ``elastic`` rows are given.
    plastic : rows ``(von Mises stress, equivalent plastic strain)`` of the ``*PLASTIC`` card,
        plastic strains strictly increasing; constant outside the table. Rows
        ``(stress, plastic strain, T)``: one curve per temperature (rows of a temperature
        together, temperatures increasing), as in the card. ``None`` only with ``norton`` (pure
        creep: CalculiX then uses a zero yield stress, creeps.f).
    hardening : ``"isotropic"``, ``"kinematic"`` or ``"combined"`` (``*PLASTIC,HARDENING=``).
        For ``"combined"`` the ``plastic`` table is the kinematic part and the isotropic part
        is ``cyclic_hardening`` (the ``*CYCLIC HARDENING`` card).
    norton : ``(A, n, m)`` of ``*CREEP,LAW=NORTON``: p_dot = A q^n t^m with t the total time at
        the end of the increment; or rows ``(A, n, m, T)`` (needs ``elastic`` rows: CalculiX
        interpolates the creep constants at the ``*ELASTIC`` temperatures, creeps.f).
        ``None``: rate independent (``*STATIC``, or no ``*CREEP``).
    cyclic_hardening : rows ``(stress, plastic strain[, T])``, for ``"combined"`` only.
    elastic : rows ``(E, nu, T)`` of ``*ELASTIC`` with temperatures (replaces young, poisson).
    expansion : secant expansion coefficient alpha or rows ``(alpha, T)`` (``*EXPANSION``).
    expansion_zero : reference temperature of alpha (``*EXPANSION,ZERO=``, default 0).

    Notes
    -----
    Every constant is taken at the end-of-increment temperature T1 (``temperature[:, 2]``),
    linear between table rows and constant outside (materialdata_me.f); hardening curves of two
    temperatures are merged by plmix.f (stresses and strains interpolated on the union of both
    curves' strains, cut to their common strain range), outside the temperatures the first or
    last curve is used (plcopy.f). The thermal strain ``alpha(T1)(T1 - zero) - alpha(Tinit)
    (Tinit - zero)`` is taken off the normal strains. State (CalculiX SDV, 14 values): ``p``,
    plastic strain (6, tensor shear, xx yy zz xy xz yz), back stress (6), viscoplastic rate
    ``dp/dt`` of the last plastic increment (see ``state_names``). About 50-100 flops per
    elastic point plus a few per Newton iteration and per table lookup.

    References
    ----------
    G. Dhondt, The Finite Element Method for Three-Dimensional Thermomechanical Applications,
    Wiley 2004, Section 5.3; CalculiX source ``incplas_lin.f``, ``materialdata_me.f``,
    ``plmix.f``, ``creeps.f``.
    """

    young: float | None = None
    poisson: float | None = None
    plastic: Any = None
    hardening: str = "isotropic"
    norton: Any = None
    cyclic_hardening: Any = None
    elastic: Any = None
    expansion: Any = None
    expansion_zero: float = 0.0
    _params: np.ndarray = field(init=False, repr=False, compare=False)

    state_names: ClassVar[tuple[str, ...]] = (
        "p",
        "eps_p_xx", "eps_p_yy", "eps_p_zz", "eps_p_xy", "eps_p_xz", "eps_p_yz",
        "back_xx", "back_yy", "back_zz", "back_xy", "back_xz", "back_yz",
        "rate",
    )  # fmt: skip
    #: associative von Mises flow with linear hardening segments: symmetric consistent tangent
    symmetric_tangent: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "elastic", check_elastic_rows(self.young, self.poisson, self.elastic))
        if self.hardening not in ("isotropic", "kinematic", "combined"):
            raise ValueError(
                f"hardening must be 'isotropic', 'kinematic' or 'combined'; got {self.hardening!r}."
            )
        norton = _check_norton(self.norton)
        object.__setattr__(self, "norton", norton)
        if self.plastic is None:
            if norton is None:
                raise ValueError("plastic is required unless norton creep is given (pure creep).")
            if self.hardening != "isotropic":
                raise ValueError("pure creep (plastic=None) needs hardening='isotropic'.")
            plastic, curves = _curves("plastic", ((0.0, 0.0), (0.0, 1.0e11)))  # creeps.f: zero yield stress
        else:
            plastic, curves = _curves("plastic", self.plastic)
        object.__setattr__(self, "plastic", plastic)
        cyc = None
        if self.hardening == "combined":
            if self.cyclic_hardening is None:
                raise ValueError("hardening='combined' needs the cyclic_hardening table.")
            cyc, cyc_curves = _curves("cyclic_hardening", self.cyclic_hardening)
        elif self.cyclic_hardening is not None:
            raise ValueError("cyclic_hardening is only used with hardening='combined'.")
        object.__setattr__(self, "cyclic_hardening", cyc)
        expansion, zero = check_expansion(self.expansion, self.expansion_zero)
        object.__setattr__(self, "expansion", expansion)
        object.__setattr__(self, "expansion_zero", zero)
        iso = {"isotropic": curves, "kinematic": None, "combined": cyc_curves if cyc else None}[self.hardening]
        kin = curves if self.hardening != "isotropic" else None
        self._pack(_elastic_creep_rows(self.young, self.poisson, self.elastic, norton), iso, kin)

    def _pack(self, el: np.ndarray, iso: tuple | None, kin: tuple | None) -> None:
        alpha = pack_expansion(self.expansion)
        head = np.zeros(_HEAD)
        head[[_NEL, _VISCO, _NAL, _ZERO, _RTOL]] = len(el), float(self.norton is not None), len(alpha) // 2, \
            self.expansion_zero, _CALCULIX_RTOL
        head[_OFF_EL] = _HEAD
        head[_OFF_AL] = _HEAD + el.size
        blocks = [head, el.ravel(), alpha]
        size = _HEAD + el.size + alpha.size
        for slot, curves, name in ((_OFF_ISO, iso, "isotropic hardening"), (_OFF_KIN, kin, "kinematic hardening")):
            head[slot] = -1.0
            if curves is not None:
                head[slot] = size
                blocks.append(_hardening_block(curves, size, name))
                size += blocks[-1].size
        packed = np.concatenate(blocks).astype(np.float64)
        packed.setflags(write=False)
        object.__setattr__(self, "_params", packed)

    @property
    def thermal(self) -> bool:
        """True with any temperature column (elastic, plastic, cyclic, norton rows) or expansion."""
        columns = np.shape(self.plastic)[1] == 3 or (self.cyclic_hardening is not None
                                                     and np.shape(self.cyclic_hardening)[1] == 3)
        return bool(self.elastic is not None or self.expansion is not None or columns
                    or (self.norton is not None and np.ndim(self.norton) == 2))

    @property
    def params(self) -> np.ndarray:
        """``[n_el, visco, n_alpha, alpha_zero, off_el, off_alpha, off_iso, off_kin, rtol,
        (T, E, nu, A, n, m) * n_el, (T, alpha) * n_alpha, isotropic block, kinematic block]``;
        a hardening block (offset -1: none) is ``[nt, T (nt), (offset, rows) per curve and per
        neighbour pair, tables (ep1 (n), ep2 (n), s1 (n), s2 (n))]``.

        ``rtol`` = 1e-4 (slot 8) is CalculiX's relative Newton tolerance (tests tighten it to
        check the tangent formula).
        """
        return self._params

    @property
    def kernel(self) -> Any:
        return calculix_kernel
