"""Thermal laws for the solver tests, until romdask.materials has its own: CalculiX's thermal
strain ``alpha(T) (T - T_init)`` (``*EXPANSION,ZERO=T_init``, secant alpha, linear in T here)
subtracted from the total strain before an athermal law."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from romdask.materials import CalculixViscoplastic, Material
from romdask.materials.base import point_loop
from romdask.materials.calculix import calculix_point
from romdask.materials.elastic import elastic_point


@njit(cache=True)
def thermal_strain(temperature, params):
    """alpha(T) (T - T_init) with alpha(T) = params[0] + params[1] (T - T_init)."""
    dT = temperature[2] - temperature[0]
    return (params[0] + params[1] * dT) * dT


@njit(cache=True)
def _mechanical(strain, temperature, params):
    mech = strain.copy()
    th = thermal_strain(temperature, params)
    for i in range(3):
        mech[i] -= th
    return mech


@njit(cache=True)
def thermoelastic_point(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):
    return elastic_point(_mechanical(strain, temperature, params), state_old, dt, time, temperature, params[2:],
                         stress, tangent, state_new)


@njit(cache=True)
def thermoviscoplastic_point(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):
    return calculix_point(_mechanical(strain, temperature, params), state_old, dt, time, temperature, params[2:],
                          stress, tangent, state_new)


_thermoelastic_kernel = point_loop(thermoelastic_point)
_thermoviscoplastic_kernel = point_loop(thermoviscoplastic_point)


@dataclass(frozen=True)
class ThermoElastic(Material):
    young: float
    poisson: float
    alpha: float
    alpha_slope: float = 0.0

    thermal: ClassVar[bool] = True
    symmetric_tangent: ClassVar[bool] = True

    @property
    def params(self) -> np.ndarray:
        return np.array([self.alpha, self.alpha_slope, self.young, self.poisson])

    @property
    def kernel(self) -> Any:
        return _thermoelastic_kernel


@dataclass(frozen=True)
class ThermoViscoplastic(Material):
    """CalculiX's (visco)plastic law of the given ``base`` with a thermal strain."""

    base: CalculixViscoplastic
    alpha: float
    alpha_slope: float = 0.0

    thermal: ClassVar[bool] = True

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.base.state_names

    @property
    def symmetric_tangent(self) -> bool:  # type: ignore[override]
        return self.base.symmetric_tangent

    @property
    def params(self) -> np.ndarray:
        return np.concatenate([[self.alpha, self.alpha_slope], self.base.params])

    @property
    def kernel(self) -> Any:
        return _thermoviscoplastic_kernel
