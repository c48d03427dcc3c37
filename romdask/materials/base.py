"""The constitutive-law interface shared by every material of :mod:`romdask.materials`.

A law is a frozen dataclass deriving from :class:`Material`, registered with
:func:`~romdask.materials.registry.register_law` (its name, JSON form and whitelisting). It owns
its parameters (validated in ``__post_init__``), packs them into a 1-D float64 array
(:attr:`Material.params`) and exposes a numba kernel that integrates many integration points at
once::

    n_failed = kernel(strain, state_old, dt, time, temperature, params, stress, tangent, state_new)

with ``strain (n, 6)`` the total strain at t_{n+1} (Voigt ``xx yy zz xy xz yz``, engineering
shear), ``state_old (n, n_state)`` at t_n, ``dt`` the increment length, ``time`` = t_{n+1} and
``temperature (n, 3)`` the temperature of each point: initial (the reference of the thermal
strain, CalculiX's ``*INITIAL CONDITIONS,TYPE=TEMPERATURE``), at t_n and at t_{n+1} (laws
without thermal behaviour ignore it; CalculiX's law uses the initial and the end temperature). Outputs are written into ``stress (n, 6)`` (tensor components),
``tangent (n, 6, 6)`` with ``tangent[i, j] = d stress_i / d strain_j`` (engineering-shear
columns) and ``state_new (n, n_state)``. The return value counts the points whose local
integration failed (the caller cuts the increment); a failed point gets the elastic trial
stress, the elastic tangent and ``state_new = state_old``.

A law writes one scalar ``point(strain, state_old, dt, time, temperature, params, stress,
tangent, state_new) -> 0 | 1`` function for one integration point (1-D views) and the loop of
:func:`point_loop` over it as a module-level ``@njit(parallel=True, cache=True)`` function (as
the built-in laws do), so that numba's disk cache serves the kernel in every process;
``point_loop(point)`` builds the same kernel as a closure, compiled again in every process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from numba import njit, prange

__all__ = ["Material", "point_loop", "von_mises"]


def point_loop(point: Any) -> Any:
    """The parallel kernel of a law from its one-point function (see the module docstring).

    Parameters
    ----------
    point : a ``numba.njit`` function ``point(strain, state_old, dt, time, temperature, params,
        stress, tangent, state_new) -> int`` on the 1-D rows of one integration point.

    Returns
    -------
    ``kernel(strain, state_old, dt, time, temperature, params, stress, tangent, state_new)
    -> n_failed``, ``@njit(parallel=True, cache=True)``, one ``prange`` iteration per point.

    Notes
    -----
    Points are independent (no reduction but the failure count), so the kernel gives the same
    bits as a serial loop over ``point``. numba does NOT reuse this kernel from its disk cache in
    another process: the cache key hashes the pickled closure, which holds the point function's
    dispatcher and its per-process uuid (numba 0.68), so every process compiles it again
    (~1 s for CalculiX's law) and adds an entry to the cache index. The built-in laws write
    this loop out at module level instead (e.g. :func:`romdask.materials.calculix.calculix_kernel`).
    """

    @njit(parallel=True, cache=True)
    def kernel(strain, state_old, dt, time, temperature, params, stress, tangent, state_new):  # pragma: no cover
        n_failed = 0
        for i in prange(strain.shape[0]):
            n_failed += point(strain[i], state_old[i], dt, time, temperature[i], params, stress[i], tangent[i],
                              state_new[i])
        return n_failed

    return kernel


class Material(ABC):
    """Base class of constitutive laws (subclasses are frozen dataclasses).

    Subclasses define ``state_names`` (class attribute), :attr:`params` and :attr:`kernel`, and
    set ``symmetric_tangent = True`` when their consistent tangent is always symmetric (solvers
    then use a symmetric factorization; an unsymmetric tangent met at run time still switches
    the built-in solver to the unsymmetric one).
    """

    state_names: ClassVar[tuple[str, ...]] = ()
    symmetric_tangent: ClassVar[bool] = False

    @property
    def thermal(self) -> bool:
        """True when the law depends on temperature (temperature tables or thermal expansion):
        solvers refuse such a law in a problem without temperatures. Default False."""
        return False

    @property
    def n_state(self) -> int:
        """Number of internal state variables per integration point."""
        return len(self.state_names)

    @property
    @abstractmethod
    def params(self) -> np.ndarray:
        """Packed parameters passed to :attr:`kernel` (1-D float64)."""

    @property
    @abstractmethod
    def kernel(self) -> Any:
        """The numba kernel ``kernel(strain, state_old, dt, time, temperature, params, stress,
        tangent, state_new) -> n_failed`` (see the module docstring)."""

    def initial_state(self, n_points: int) -> np.ndarray:
        """Virgin state of ``n_points`` integration points, shape ``(n_points, n_state)``."""
        if n_points < 0:
            raise ValueError(f"n_points must be >= 0; got {n_points}.")
        return np.zeros((int(n_points), self.n_state), np.float64)

    def integrate(
        self,
        strain: np.ndarray,
        state_old: np.ndarray,
        dt: float,
        time: float,
        *,
        temperature: np.ndarray | None = None,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Integrate the law over one increment at every point.

        Parameters
        ----------
        strain : (n, 6) total strain at the end of the increment (engineering shear).
        state_old : (n, n_state) state at the start of the increment.
        dt : increment length.
        time : time at the end of the increment.
        temperature : optional (n, 3) temperature: initial, at the start and at the end of the
            increment (default 0; laws without thermal behaviour ignore it).
        out : optional preallocated ``(stress (n, 6), tangent (n, 6, 6), state_new (n, n_state))``
            float64 C-contiguous arrays.

        Returns
        -------
        stress, tangent, state_new, n_failed

        Notes
        -----
        Runs the parallel numba kernel; no allocation when ``out`` is given (inputs that are not
        C-contiguous float64 are copied once).
        """
        strain = np.ascontiguousarray(strain, dtype=np.float64)
        state_old = np.ascontiguousarray(state_old, dtype=np.float64)
        if strain.ndim != 2 or strain.shape[1] != 6:
            raise ValueError(f"strain must have shape (n, 6); got {strain.shape}.")
        n = strain.shape[0]
        if state_old.shape != (n, self.n_state):
            raise ValueError(
                f"state_old must have shape ({n}, {self.n_state}) for {type(self).__name__}; "
                f"got {state_old.shape}. Use initial_state(n) for a virgin state."
            )
        if temperature is None:
            temperature = np.zeros((n, 3))
        temperature = np.ascontiguousarray(temperature, dtype=np.float64)
        if temperature.shape != (n, 3):
            raise ValueError(f"temperature must have shape ({n}, 3) (initial, start and end of the increment); "
                             f"got {temperature.shape}.")
        if out is None:
            stress = np.empty((n, 6))
            tangent = np.empty((n, 6, 6))
            state_new = np.empty((n, self.n_state))
        else:
            stress, tangent, state_new = out
            for name, arr, shape in (
                ("stress", stress, (n, 6)),
                ("tangent", tangent, (n, 6, 6)),
                ("state_new", state_new, (n, self.n_state)),
            ):
                if arr.shape != shape or arr.dtype != np.float64 or not arr.flags.c_contiguous:
                    raise ValueError(
                        f"out {name} must be a C-contiguous float64 array of shape {shape}; "
                        f"got {arr.dtype} {arr.shape}."
                    )
        n_failed = self.kernel(
            strain, state_old, float(dt), float(time), temperature, self.params, stress, tangent, state_new
        )
        return stress, tangent, state_new, int(n_failed)


def von_mises(stress: np.ndarray) -> np.ndarray:
    """Von Mises equivalent stress of stresses ``(..., 6)`` (Voigt xx yy zz xy xz yz, tensor
    components): ``sqrt(3/2 s:s)`` with ``s`` the deviator."""
    stress = np.asarray(stress, np.float64)
    if stress.shape[-1] != 6:
        raise ValueError(f"stress must have 6 components in its last axis; got shape {stress.shape}")
    sxx, syy, szz, sxy, sxz, syz = np.moveaxis(stress, -1, 0)
    return np.sqrt(
        0.5 * ((sxx - syy) ** 2 + (syy - szz) ** 2 + (szz - sxx) ** 2) + 3.0 * (sxy**2 + sxz**2 + syz**2)
    )
