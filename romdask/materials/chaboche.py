"""Chaboche viscoplasticity: Norton flow, isotropic (Voce) and Armstrong-Frederick hardening."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
from numba import njit, prange

from romdask.materials.base import Material
from romdask.materials.registry import register_law
from romdask.materials.elastic import check_elastic_constants
from romdask.materials.thermal import check_expansion, check_rows, pack_expansion, row_interval, row_value, thermal_strain

__all__ = ["Chaboche", "chaboche_point", "chaboche_kernel"]

_MAX_IT = 100
_NAMES = ("young", "poisson", "r0", "q", "b", "k", "n", "c", "d")
# packed layout: [9 constants, n_rows, n_alpha, zero, (T, 9 constants) * n_rows, (T, alpha) * n_alpha]
_NROW, _NAL, _ZERO, _ROWS, _STRIDE = 9, 10, 11, 12, 10


@njit(cache=True)
def _constants_at(params, t1, out):
    """The 9 constants at temperature t1 into ``out`` (the scalars without table rows)."""
    n = int(params[_NROW])
    if n == 0:
        for i in range(9):
            out[i] = params[i]
        return
    idx = row_interval(params, _ROWS, n, _STRIDE, t1)
    for i in range(9):
        out[i] = row_value(params, _ROWS, n, _STRIDE, i + 1, idx, t1)


@njit(cache=True)
def _ddot(a, b):
    """Double contraction of two symmetric tensors stored as tensor-Voigt 6-vectors."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + 2.0 * (a[3] * b[3] + a[4] * b[4] + a[5] * b[5])


@njit(cache=True)
def _residual(dp, s_tr, xb, p_n, dt, prm, mu):
    """F(dp) = J(z) - (3 mu + c theta) dp - R(p) - k (dp/dt)^(1/n) and dF/ddp; z in xb[6:]."""
    r0, q, b, k, n, c, d = prm[2], prm[3], prm[4], prm[5], prm[6], prm[7], prm[8]
    theta = 1.0 / (1.0 + d * dp)
    z = xb[6:12]
    for i in range(6):
        z[i] = s_tr[i] - theta * xb[i]
    jz = np.sqrt(1.5 * _ddot(z, z))
    e = np.exp(-b * (p_n + dp))
    visc = k * (dp / dt) ** (1.0 / n) if dp > 0.0 else 0.0
    f = jz - (3.0 * mu + c * theta) * dp - (r0 + q * (1.0 - e)) - visc
    # derivative: dJz/ddp = nz : (d theta^2 X_n), nz = 1.5 z / jz
    dvisc = visc / (n * dp) if dp > 0.0 else np.inf
    zx = 1.5 * _ddot(z, xb[0:6]) / jz if jz > 0.0 else 0.0
    df = d * theta * theta * zx - 3.0 * mu - c * theta + c * d * theta * theta * dp - q * b * e - dvisc
    return f, df, jz, theta


@njit(cache=True)
def chaboche_point(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):
    """One point, backward Euler; state = [p, eps_p (6, tensor shear), X (6)].

    Returns 1 (and the trial stress, elastic tangent, old state) if the local solve fails.
    """
    # work: [X_n (6), z (6), s_tr (6), elastic strain (6), constants at T1 (9)]
    work = np.empty(33)
    prm = work[24:33]
    _constants_at(params, temperature[2], prm)
    start = _ROWS + _STRIDE * int(params[_NROW])
    eth = thermal_strain(params, start, int(params[_NAL]), params[_ZERO], temperature[0], temperature[2])
    young, nu = prm[0], prm[1]
    q, b, k, n, c, d = prm[3], prm[4], prm[5], prm[6], prm[7], prm[8]
    mu = young / (2.0 * (1.0 + nu))
    lam = 2.0 * mu * nu / (1.0 - 2.0 * nu)
    p_n = state_old[0]
    for i in range(13):
        state_new[i] = state_old[i]
    eps_p = state_new[1:7]
    back = state_new[7:13]
    for i in range(6):
        work[i] = back[i]
    s_tr = work[12:18]
    el = work[18:24]
    for i in range(3):
        el[i] = strain[i] - eth - eps_p[i]
        el[i + 3] = 0.5 * strain[i + 3] - eps_p[i + 3]
    tr = el[0] + el[1] + el[2]
    for i in range(6):
        s_tr[i] = 2.0 * mu * el[i]
    for i in range(3):
        s_tr[i] -= 2.0 * mu * tr / 3.0
    # elastic output first (kept if elastic or failed)
    for i in range(3):
        stress[i] = 2.0 * mu * el[i] + lam * tr
        stress[i + 3] = 2.0 * mu * el[i + 3]
    for i in range(6):
        for j in range(6):
            tangent[i, j] = 0.0
    for i in range(3):
        for j in range(3):
            tangent[i, j] = lam
        tangent[i, i] += 2.0 * mu
        tangent[i + 3, i + 3] = mu
    f0, _, _, _ = _residual(0.0, s_tr, work, p_n, dt, prm, mu)
    if f0 <= 0.0 or dt <= 0.0:
        return 0
    # bracket: F(0) > 0; F(hi) < 0 since J(z) <= J(s_tr) + J(X_n)
    hi = (np.sqrt(1.5 * _ddot(s_tr, s_tr)) + np.sqrt(1.5 * _ddot(back, back))) / (3.0 * mu)
    lo = 0.0
    # start below the rate-independent estimate and the explicit Norton estimate dt (f0/k)^n
    # (both exceed the root when F decreases), then Newton in log(dp), safeguarded by the bracket
    dp = min(f0 / (3.0 * mu + c + q * b), 0.5 * hi)
    expl = dt * (f0 / k) ** n
    if expl < dp:
        dp = expl
    converged = False
    for _ in range(_MAX_IT):
        f, df, jz, theta = _residual(dp, s_tr, work, p_n, dt, prm, mu)
        if f > 0.0:
            lo = dp
        else:
            hi = dp
        if f == 0.0:
            converged = True
            break
        dlog = -f / (dp * df)
        if dlog > 30.0:
            dlog = 30.0
        new = dp * np.exp(dlog)
        if not (lo < new < hi):  # safeguard: bisect (geometrically when the bracket is wide)
            if lo > 0.0 and hi > 4.0 * lo:
                new = np.sqrt(lo * hi)
            elif lo == 0.0:
                new = 1.0e-3 * hi
            else:
                new = 0.5 * (lo + hi)
        if abs(new - dp) <= 1.0e-14 * new or hi - lo <= 1.0e-15 * hi:
            dp = new
            converged = True
            break
        dp = new
    if not converged or not dp > 0.0:
        return 1
    f, df, jz, theta = _residual(dp, s_tr, work, p_n, dt, prm, mu)
    if not (jz > 0.0 and df < 0.0):
        return 1
    z = work[6:12]
    # nz = 1.5 z / jz: deps_p = dp nz
    for i in range(6):
        nz = 1.5 * z[i] / jz
        eps_p[i] += dp * nz
        back[i] = theta * (work[i] + 2.0 / 3.0 * c * dp * nz)
        el[i] -= dp * nz
    state_new[0] = p_n + dp
    tr = el[0] + el[1] + el[2]
    for i in range(3):
        stress[i] = 2.0 * mu * el[i] + lam * tr
        stress[i + 3] = 2.0 * mu * el[i + 3]
    # consistent tangent, column by column (engineering-shear strain direction j):
    # ds_tr = 2 mu dev(de); ddp = -(nz : ds_tr) / F'; dz = ds_tr + d theta^2 X_n ddp;
    # dnz = 1.5/jz (dz - 2/3 nz (nz : dz)); deps_p = ddp nz + dp dnz (deviatoric)
    dt2x = d * theta * theta
    for j in range(6):
        scale = 1.0 if j < 3 else 0.5
        # nz : ds_tr with ds_tr = 2 mu dev(e_j scale); nz deviatoric -> nz : (2 mu e_j scale)
        w = 2.0 if j >= 3 else 1.0
        nz_ds = 1.5 * z[j] / jz * 2.0 * mu * scale * w
        ddp = -nz_ds / df
        # dz components and nz : dz
        nz_dz = 0.0
        for i in range(6):
            ds = 0.0
            if i == j:
                ds = 2.0 * mu * scale
            if i < 3 and j < 3:
                ds -= 2.0 * mu / 3.0
            dzi = ds + dt2x * work[i] * ddp
            s_tr[i] = dzi  # reuse s_tr storage for dz
            nz_dz += (1.5 * z[i] / jz) * dzi * (2.0 if i >= 3 else 1.0)
        for i in range(6):
            nz = 1.5 * z[i] / jz
            dep = ddp * nz + dp * 1.5 / jz * (s_tr[i] - 2.0 / 3.0 * nz * nz_dz)
            de = (scale if i == j else 0.0)
            tangent[i, j] = 2.0 * mu * (de - dep)
        if j < 3:
            for i in range(3):
                tangent[i, j] += lam
    return 0



@njit(parallel=True, cache=True)
def chaboche_kernel(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):  # pragma: no cover
    """The parallel kernel of the law (see :mod:`romdask.materials.base`): :func:`chaboche_point`
    at every point, the loop of :func:`~romdask.materials.base.point_loop` written out here so
    that numba's disk cache serves it in every process."""
    n_failed = 0
    for i in prange(strain.shape[0]):
        n_failed += chaboche_point(strain[i], state_old[i], dt, time, temperature[i], params, stress[i], tangent[i],
                                state_new[i])
    return n_failed

def _check_constants(young, poisson, r0, q, b, k, n, c, d, where: str) -> None:
    try:
        check_elastic_constants(young, poisson)
    except ValueError as exc:
        raise ValueError(f"{exc}{where}") from None
    for name, v in (("r0", r0), ("q", q), ("b", b), ("c", c), ("d", d)):
        if not np.isfinite(v) or v < 0.0:
            raise ValueError(f"{name} must be finite and >= 0; got {v}{where}.")
    if not np.isfinite(k) or k <= 0.0:
        raise ValueError(f"k (Norton drag stress) must be > 0; got {k}{where}.")
    if not np.isfinite(n) or n < 1.0:
        raise ValueError(f"n (Norton exponent) must be >= 1; got {n}{where}.")


@register_law
@dataclass(frozen=True)
class Chaboche(Material):
    """Chaboche unified viscoplasticity (von Mises, Norton, Voce + Armstrong-Frederick).

    f = J2(sigma - X) - R(p), R = r0 + q (1 - exp(-b p)), p_dot = <f / k>^n,
    eps_p_dot = 3/2 p_dot (s - X) / J2(s - X), X_dot = 2/3 c eps_p_dot - d X p_dot.

    Parameters
    ----------
    young, poisson : isotropic elasticity.
    r0 : initial yield radius (>= 0); q, b : Voce isotropic hardening (>= 0).
    k, n : Norton drag stress (> 0) and exponent (>= 1).
    c, d : Armstrong-Frederick kinematic modulus and recall (>= 0).
    table : rows ``(young, poisson, r0, q, b, k, n, c, d, T)``, T strictly increasing: every
        constant at the end-of-increment temperature, linear between rows, constant outside
        (CalculiX's rule for its material tables); the scalar constants then stay at their
        defaults.
    expansion : secant expansion coefficient alpha or rows ``(alpha, T)``; ``expansion_zero``
        its reference temperature (as CalculiX's ``*EXPANSION,ZERO=``).

    Notes
    -----
    Backward Euler; the AF update X = (X_n + 2/3 c deps_p) / (1 + d dp) reduces the system to
    one scalar equation J(z(dp)) - (3 mu + c theta) dp - R(p_n + dp) = k (dp/dt)^(1/n)
    (theta = 1/(1 + d dp), z = s_trial - theta X_n), solved by Newton safeguarded with a
    bracket, in log(dp) (the inverse Norton form stays well conditioned for n = 30). Consistent
    tangent.
    State: ``p``, plastic strain (6, tensor shear), back stress X (6). ``time`` is unused.
    Defaults are the cube example of Casenave et al. (2018).

    References
    ----------
    J. Lemaitre, J.-L. Chaboche, Mechanics of Solid Materials, 1990.
    F. Casenave, N. Akkari, F. Bordeu, C. Rey, D. Ryckelynck, A nonintrusive distributed
    reduced-order modeling framework for nonlinear structural mechanics, IJNME 2020.
    """

    young: float = 200000.0
    poisson: float = 0.3
    r0: float = 10.0
    q: float = 0.0
    b: float = 0.0
    k: float = 300.0
    n: float = 30.0
    c: float = 1.0e5
    d: float = 1.0e3
    table: Any = None
    expansion: Any = None
    expansion_zero: float = 0.0
    _params: np.ndarray = field(init=False, repr=False, compare=False)

    state_names: ClassVar[tuple[str, ...]] = (
        "p",
        "eps_p_xx", "eps_p_yy", "eps_p_zz", "eps_p_xy", "eps_p_xz", "eps_p_yz",
        "back_xx", "back_yy", "back_zz", "back_xy", "back_xz", "back_yz",
    )  # fmt: skip

    def __post_init__(self) -> None:
        table = None
        if self.table is not None:
            defaults = {f.name: f.default for f in fields(self) if f.name in _NAMES}
            changed = [name for name in _NAMES if getattr(self, name) != defaults[name]]
            if changed:
                raise ValueError(f"with table rows, leave the scalar constants at their defaults; got {changed} "
                                 "(the rows give every constant at each temperature).")
            table = check_rows("table", self.table, _NAMES + ("temperature",))
            for row in table:
                _check_constants(*row[:9], where=f" (table row at temperature {row[9]})")
        else:
            _check_constants(*(getattr(self, name) for name in _NAMES), where="")
        object.__setattr__(self, "table", table)
        expansion, zero = check_expansion(self.expansion, self.expansion_zero)
        object.__setattr__(self, "expansion", expansion)
        object.__setattr__(self, "expansion_zero", zero)
        scalars = [getattr(self, name) for name in _NAMES]
        rows = np.array([row[9:] + row[:9] for row in table or ()], np.float64).ravel()
        head = scalars + [len(table or ()), 0 if expansion is None else len(expansion), zero]
        packed = np.concatenate([np.array(head, np.float64), rows, pack_expansion(expansion)])
        packed.setflags(write=False)
        object.__setattr__(self, "_params", packed)

    @property
    def thermal(self) -> bool:
        """True with table rows or thermal expansion."""
        return self.table is not None or self.expansion is not None

    @property
    def params(self) -> np.ndarray:
        """``[young, poisson, r0, q, b, k, n, c, d, n_rows, n_alpha, alpha_zero,
        (T, young, ..., d) * n_rows, (T, alpha) * n_alpha]``."""
        return self._params

    @property
    def kernel(self) -> Any:
        return chaboche_kernel
