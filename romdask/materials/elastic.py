"""Isotropic linear elasticity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from romdask.materials.base import Material, point_loop
from romdask.materials.registry import register_law

__all__ = ["LinearElastic", "elastic_point", "elastic_kernel", "check_elastic_constants"]


def check_elastic_constants(young: float, poisson: float) -> None:
    """Raise ValueError unless ``young > 0`` and ``-1 < poisson < 0.5``."""
    if not np.isfinite(young) or young <= 0.0:
        raise ValueError(f"young must be a finite positive modulus; got {young}.")
    if not np.isfinite(poisson) or not -1.0 < poisson < 0.5:
        raise ValueError(f"poisson must satisfy -1 < poisson < 0.5; got {poisson}.")


@njit(cache=True)
def elastic_point(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):
    """One point: stress = D strain (engineering shear in, tensor stress out)."""
    young = params[0]
    nu = params[1]
    mu = young / (2.0 * (1.0 + nu))
    lam = 2.0 * mu * nu / (1.0 - 2.0 * nu)
    tr = strain[0] + strain[1] + strain[2]
    for i in range(3):
        stress[i] = 2.0 * mu * strain[i] + lam * tr
        stress[i + 3] = mu * strain[i + 3]
    for i in range(6):
        for j in range(6):
            tangent[i, j] = 0.0
    for i in range(3):
        for j in range(3):
            tangent[i, j] = lam
        tangent[i, i] += 2.0 * mu
        tangent[i + 3, i + 3] = mu
    return 0



#: parallel kernel of the law (see :mod:`romdask.materials.base`)
elastic_kernel = point_loop(elastic_point)

@register_law
@dataclass(frozen=True)
class LinearElastic(Material):
    """Isotropic linear elasticity (CalculiX ``*ELASTIC``).

    Parameters
    ----------
    young : Young's modulus (> 0).
    poisson : Poisson's ratio (-1 < poisson < 0.5).

    Notes
    -----
    Stateless: ``n_state == 0`` and state arrays have shape ``(n, 0)``.
    """

    young: float
    poisson: float

    state_names: ClassVar[tuple[str, ...]] = ()
    symmetric_tangent: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_elastic_constants(self.young, self.poisson)

    @property
    def params(self) -> np.ndarray:
        return np.array([self.young, self.poisson], np.float64)

    @property
    def kernel(self) -> Any:
        return elastic_kernel
