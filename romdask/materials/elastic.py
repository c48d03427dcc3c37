"""Isotropic linear elasticity, with optional temperature tables and thermal expansion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numba import njit, prange

from romdask.materials.base import Material
from romdask.materials.registry import register_law
from romdask.materials.thermal import check_expansion, check_rows, pack_expansion, row_interval, row_value, thermal_strain

__all__ = ["LinearElastic", "elastic_point", "elastic_kernel", "check_elastic_constants", "check_elastic_rows"]

# packed parameter layout: [E, nu, n_elastic_rows, n_expansion_rows, expansion_zero, rows...]
_NEL, _NAL, _ZERO, _ROWS = 2, 3, 4, 5


def check_elastic_constants(young: float, poisson: float) -> None:
    """Raise ValueError unless ``young > 0`` and ``-1 < poisson < 0.5``."""
    if not np.isfinite(young) or young <= 0.0:
        raise ValueError(f"young must be a finite positive modulus; got {young}.")
    if not np.isfinite(poisson) or not -1.0 < poisson < 0.5:
        raise ValueError(f"poisson must satisfy -1 < poisson < 0.5; got {poisson}.")


def check_elastic_rows(young: Any, poisson: Any, elastic: Any) -> tuple[tuple[float, float, float], ...] | None:
    """Validate either scalar ``young, poisson`` or ``elastic`` rows ``(E, nu, T)`` (the
    ``*ELASTIC`` card with temperatures); returns the checked rows (None for scalars)."""
    if elastic is None:
        if young is None or poisson is None:
            raise ValueError("give young and poisson, or elastic rows (E, nu, temperature).")
        check_elastic_constants(young, poisson)
        return None
    if young is not None or poisson is not None:
        raise ValueError("give either young and poisson or elastic rows (E, nu, temperature), not both.")
    rows = check_rows("elastic", elastic, ("young", "poisson", "temperature"))
    for e, nu, t in rows:
        try:
            check_elastic_constants(e, nu)
        except ValueError as exc:
            raise ValueError(f"elastic row at temperature {t}: {exc}") from None
    return rows  # type: ignore[return-value]


def pack_elastic(young: Any, poisson: Any, elastic: Any, expansion: Any, zero: float) -> np.ndarray:
    """``[E, nu, n_el, n_alpha, zero, (T, E, nu) * n_el, (T, alpha) * n_alpha]``."""
    el = np.array([(t, e, nu) for e, nu, t in elastic], np.float64).ravel() if elastic is not None else np.zeros(0)
    head = [young or 0.0, poisson or 0.0, len(el) // 3, 0 if expansion is None else len(expansion), zero]
    packed = np.concatenate([np.array(head, np.float64), el, pack_expansion(expansion)])
    packed.setflags(write=False)
    return packed


@njit(cache=True)
def elastic_constants(params, t1):
    """(E, nu) at temperature ``t1`` of a packed elastic law (scalars without rows)."""
    n = int(params[_NEL])
    if n == 0:
        return params[0], params[1]
    idx = row_interval(params, _ROWS, n, 3, t1)
    return row_value(params, _ROWS, n, 3, 1, idx, t1), row_value(params, _ROWS, n, 3, 2, idx, t1)


@njit(cache=True)
def elastic_thermal_strain(params, temperature):
    """Thermal strain of a packed elastic law at ``temperature = (Tinit, Tn, Tn+1)``."""
    start = _ROWS + 3 * int(params[_NEL])
    return thermal_strain(params, start, int(params[_NAL]), params[_ZERO], temperature[0], temperature[2])


@njit(cache=True)
def elastic_point(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):
    """One point: stress = D (strain - eth) (engineering shear in, tensor stress out)."""
    young, nu = elastic_constants(params, temperature[2])
    eth = elastic_thermal_strain(params, temperature)
    mu = young / (2.0 * (1.0 + nu))
    lam = 2.0 * mu * nu / (1.0 - 2.0 * nu)
    e0 = strain[0] - eth
    e1 = strain[1] - eth
    e2 = strain[2] - eth
    tr = e0 + e1 + e2
    stress[0] = 2.0 * mu * e0 + lam * tr
    stress[1] = 2.0 * mu * e1 + lam * tr
    stress[2] = 2.0 * mu * e2 + lam * tr
    for i in range(3, 6):
        stress[i] = mu * strain[i]
    for i in range(6):
        for j in range(6):
            tangent[i, j] = 0.0
    for i in range(3):
        for j in range(3):
            tangent[i, j] = lam
        tangent[i, i] += 2.0 * mu
        tangent[i + 3, i + 3] = mu
    return 0


@njit(parallel=True, cache=True)
def elastic_kernel(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):  # pragma: no cover
    """The parallel kernel of the law (see :mod:`romdask.materials.base`): :func:`elastic_point`
    at every point, the loop of :func:`~romdask.materials.base.point_loop` written out here so
    that numba's disk cache serves it in every process."""
    n_failed = 0
    for i in prange(strain.shape[0]):
        n_failed += elastic_point(strain[i], state_old[i], dt, time, temperature[i], params, stress[i], tangent[i],
                                state_new[i])
    return n_failed


@register_law
@dataclass(frozen=True)
class LinearElastic(Material):
    """Isotropic linear elasticity (CalculiX ``*ELASTIC``, optionally ``*EXPANSION``).

    Parameters
    ----------
    young : Young's modulus (> 0); None with ``elastic`` rows.
    poisson : Poisson's ratio (-1 < poisson < 0.5); None with ``elastic`` rows.
    elastic : rows ``(E, nu, T)`` (the ``*ELASTIC`` card with temperatures, T increasing):
        E and nu at the end-of-increment temperature, linear in T between rows, constant outside.
    expansion : secant thermal expansion coefficient alpha, or rows ``(alpha, T)``
        (``*EXPANSION``); None: no thermal strain.
    expansion_zero : reference temperature of alpha (``*EXPANSION,ZERO=``).

    Notes
    -----
    Stateless: ``n_state == 0`` and state arrays have shape ``(n, 0)``. The thermal strain is
    ``alpha(T1) (T1 - zero) - alpha(Tinit) (Tinit - zero)`` (see :mod:`romdask.materials.thermal`).
    """

    young: float | None = None
    poisson: float | None = None
    elastic: Any = None
    expansion: Any = None
    expansion_zero: float = 0.0
    _params: np.ndarray = field(init=False, repr=False, compare=False)

    state_names: ClassVar[tuple[str, ...]] = ()
    symmetric_tangent: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "elastic", check_elastic_rows(self.young, self.poisson, self.elastic))
        expansion, zero = check_expansion(self.expansion, self.expansion_zero)
        object.__setattr__(self, "expansion", expansion)
        object.__setattr__(self, "expansion_zero", zero)
        packed = pack_elastic(self.young, self.poisson, self.elastic, expansion, zero)
        object.__setattr__(self, "_params", packed)

    @property
    def thermal(self) -> bool:
        """True with temperature rows or thermal expansion."""
        return self.elastic is not None or self.expansion is not None

    @property
    def params(self) -> np.ndarray:
        """``[E, nu, n_el, n_alpha, zero, (T, E, nu) * n_el, (T, alpha) * n_alpha]``."""
        return self._params

    @property
    def kernel(self) -> Any:
        return elastic_kernel
