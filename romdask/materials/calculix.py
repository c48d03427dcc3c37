"""CalculiX 2.20's small-strain (visco)plastic law, reproduced operation by operation.

Source: ``src/incplas_lin.f`` of CalculiX (GitHub ``Dhondtguido/CalculiX``; the algorithm is
unchanged between the 2.20 release and 2.23, only the argument ``elas`` was renamed ``stiff``),
called from ``mechmodel.f`` for material codes -51 (``*PLASTIC``) and -52 (``*PLASTIC`` +
``*CREEP,LAW=NORTON``) when NLGEOM is off. Hardening tables are copied by ``plcopy.f``
(<= 200 rows are used verbatim) and searched with ``ident.f``.

Differences that are intentional (none change the numbers):
- strain in engineering shear, converted to CalculiX's tensor shear on entry;
- a failed local Newton (CalculiX: ``pnewdt=0.25`` -> increment cut) returns the trial stress,
  elastic tangent and the old state, counted in the kernel's return value;
- ``state[13]`` (viscoplastic rate, SDV14) keeps its old value when the point is elastic or the
  law is rate independent, as CalculiX leaves ``xstate(14)`` untouched then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numba import njit

from romdask.materials.base import Material, point_loop
from romdask.materials.registry import register_law
from romdask.materials.elastic import check_elastic_constants

__all__ = ["CalculixViscoplastic", "calculix_point", "calculix_kernel"]

_MAX_ROWS = 200  # plcopy.f resamples longer tables; we refuse them instead

# packed parameter layout
_E, _NU, _VISCO, _A, _N, _M, _NISO, _NKIN, _RTOL, _TABLES = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
_CALCULIX_RTOL = 1.0e-4  # incplas_lin.f line 352: |dcop| < 1e-4 cop


@njit(cache=True)
def _ident(params, start, n, px):
    """ident.f: 1-based id with x(id) <= px < x(id+1); 0 below the table, n above."""
    idx = 0
    if n == 0:
        return 0
    n2 = n + 1
    while True:
        m = (n2 + idx) // 2
        if px >= params[start + m - 1]:
            idx = m
        else:
            n2 = m
        if n2 - idx == 1:
            return idx


@njit(cache=True)
def _lookup(params, xs, ys, n, ep):
    """Piecewise-linear table value and slope as in incplas_lin.f lines 264-302."""
    idx = _ident(params, xs, n, ep)
    if idx == 0:
        return params[ys], 0.0
    if idx == n:
        return params[ys + n - 1], 0.0
    x0 = params[xs + idx - 1]
    x1 = params[xs + idx]
    y0 = params[ys + idx - 1]
    y1 = params[ys + idx]
    slope = (y1 - y0) / (x1 - x0)
    return y0 + slope * (ep - x0), slope


@njit(cache=True)
def _hardening(params, ep):
    """fiso, dfiso, fkin, dfkin at ep (incplas_lin.f lines 264-302)."""
    niso = int(params[_NISO])
    nkin = int(params[_NKIN])
    xi_ = _TABLES
    yi_ = xi_ + niso
    xk_ = yi_ + niso
    yk_ = xk_ + nkin
    if niso != 0:
        fiso, dfiso = _lookup(params, xi_, yi_, niso, ep)
    elif nkin != 0:
        fiso, dfiso = params[yk_], 0.0
    else:
        fiso, dfiso = 0.0, 0.0
    if nkin != 0:
        fkin, dfkin = _lookup(params, xk_, yk_, nkin, ep)
    elif niso != 0:
        fkin, dfkin = params[yi_], 0.0
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
    ee = params[_E]
    un = params[_NU]
    um2 = ee / (1.0 + un)
    al = um2 * un / (1.0 - 2.0 * un)
    um = um2 / 2.0
    visco = params[_VISCO] > 0.5
    epini = state_old[0]
    a1 = 0.0
    xxn = 1.0
    if visco:
        xxa = params[_A] * time ** params[_M]
        if xxa < 1.0e-20:
            xxa = 1.0e-20
        xxn = params[_N]
        a1 = xxa * dt
    niso = int(params[_NISO])
    rtol = params[_RTOL]
    # mechanical strain in tensor shear, plastic strain, back stress
    emec = np.empty(6)
    for i in range(3):
        emec[i] = strain[i]
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
        if abs(params[_TABLES + 2]) < 1.0e-10 and abs(params[_TABLES + 3]) < 1.0e-10:
            ielastic = True
    fiso, dfiso, fkin, dfkin = _hardening(params, epini)
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
        fiso, dfiso, fkin, dfkin = _hardening(params, ep)
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


#: parallel kernel of the law (see :mod:`romdask.materials.base`)
calculix_kernel = point_loop(calculix_point)

@register_law
@dataclass(frozen=True)
class CalculixViscoplastic(Material):
    """CalculiX 2.20's small-strain law: ``*ELASTIC`` + ``*PLASTIC`` (+ ``*CREEP,LAW=NORTON``).

    Parameters
    ----------
    young, poisson : isotropic elasticity.
    plastic : rows ``(von Mises stress, equivalent plastic strain)`` of the ``*PLASTIC`` card,
        plastic strains strictly increasing; constant outside the table. ``None`` only with
        ``norton`` (pure creep: CalculiX then uses a zero yield stress, creeps.f).
    hardening : ``"isotropic"``, ``"kinematic"`` or ``"combined"`` (``*PLASTIC,HARDENING=``).
        For ``"combined"`` the ``plastic`` table is the kinematic part and the isotropic part
        is ``cyclic_hardening`` (the ``*CYCLIC HARDENING`` card).
    norton : ``(A, n, m)`` of ``*CREEP,LAW=NORTON``: p_dot = A q^n t^m with t the total time at
        the end of the increment. ``None``: rate independent (``*STATIC``, or no ``*CREEP``).
    cyclic_hardening : rows ``(stress, plastic strain)``, required for ``"combined"`` only.

    Notes
    -----
    State (CalculiX SDV, 14 values): ``p``, plastic strain (6, tensor shear, xx yy zz xy xz
    yz), back stress (6), viscoplastic rate ``dp/dt`` of the last plastic increment (see
    ``state_names``). About 50-100 flops per elastic point plus a few per Newton iteration.

    References
    ----------
    G. Dhondt, The Finite Element Method for Three-Dimensional Thermomechanical Applications,
    Wiley 2004, Section 5.3; CalculiX source ``incplas_lin.f``.
    """

    young: float
    poisson: float
    plastic: Any = None
    hardening: str = "isotropic"
    norton: Any = None
    cyclic_hardening: Any = None
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
        check_elastic_constants(self.young, self.poisson)
        if self.hardening not in ("isotropic", "kinematic", "combined"):
            raise ValueError(
                f"hardening must be 'isotropic', 'kinematic' or 'combined'; got {self.hardening!r}."
            )
        norton = self.norton
        if norton is not None:
            norton = tuple(float(v) for v in norton)
            if len(norton) != 3 or not all(np.isfinite(norton)):
                raise ValueError(f"norton must be (A, n, m); got {self.norton!r}.")
            if norton[0] <= 0.0 or norton[1] <= 0.0:
                raise ValueError(f"norton A and n must be > 0; got A={norton[0]}, n={norton[1]}.")
            object.__setattr__(self, "norton", norton)
        if self.plastic is None:
            if norton is None:
                raise ValueError("plastic is required unless norton creep is given (pure creep).")
            if self.hardening != "isotropic":
                raise ValueError("pure creep (plastic=None) needs hardening='isotropic'.")
            plastic = ((0.0, 0.0), (0.0, 1.0e11))  # creeps.f: zero yield stress
        else:
            plastic = _check_table("plastic", self.plastic)
        object.__setattr__(self, "plastic", plastic)
        cyc = None
        if self.hardening == "combined":
            if self.cyclic_hardening is None:
                raise ValueError("hardening='combined' needs the cyclic_hardening table.")
            cyc = _check_table("cyclic_hardening", self.cyclic_hardening)
        elif self.cyclic_hardening is not None:
            raise ValueError("cyclic_hardening is only used with hardening='combined'.")
        object.__setattr__(self, "cyclic_hardening", cyc)
        if self.hardening == "isotropic":
            iso, kin = plastic, ()
        elif self.hardening == "kinematic":
            iso, kin = (), plastic
        else:
            iso, kin = cyc, plastic
        a, n, m = norton if norton is not None else (0.0, 1.0, 0.0)
        head = [self.young, self.poisson, float(norton is not None), a, n, m, len(iso), len(kin)]
        head.append(_CALCULIX_RTOL)
        iso_a = np.array(iso, np.float64).reshape(-1, 2)
        kin_a = np.array(kin, np.float64).reshape(-1, 2)
        packed = np.concatenate(
            [np.array(head), iso_a[:, 1], iso_a[:, 0], kin_a[:, 1], kin_a[:, 0]]
        ).astype(np.float64)
        packed.setflags(write=False)
        object.__setattr__(self, "_params", packed)

    @property
    def params(self) -> np.ndarray:
        """``[E, nu, visco, A, n, m, niso, nkin, rtol, eps_iso.., sig_iso.., eps_kin.., sig_kin..]``.

        ``rtol`` = 1e-4 is CalculiX's relative Newton tolerance (tests tighten it to check the
        tangent formula).
        """
        return self._params

    @property
    def kernel(self) -> Any:
        return calculix_kernel
