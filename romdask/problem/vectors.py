"""The unit-coefficient force vector of any load pattern: one definition for the built-in solver
and the offline reduction (``value * amplitude(t)`` times this vector is the pattern's force)."""

from __future__ import annotations

import dataclasses

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.fem.quadrature import body_force_vector, nodal_force_vector, pressure_vector
from romdask.problem.loads import Centrifugal, Gravity, NodalForce, Pressure

__all__ = ["unit_load_vector"]


def unit_load_vector(mesh: Mesh, load: NodalForce | Pressure | Centrifugal | Gravity) -> np.ndarray:
    """The force vector of ``load`` for a unit coefficient: its force at time t is
    ``load.scale(t) * load.value * unit_load_vector(mesh, load)``.

    Parameters
    ----------
    mesh : Mesh the load's node / element indices refer to
    load : NodalForce, Pressure, Centrifugal or Gravity

    Returns
    -------
    ndarray, shape (n_dofs,)
        NodalForce: 1 on dof ``3 node + component`` of its nodes; Pressure: the consistent
        forces of a unit pressure (:func:`~romdask.fem.quadrature.pressure_vector`);
        Centrifugal / Gravity: the consistent forces of ``density`` x (omega^2 = 1 or g = 1)
        (:func:`~romdask.fem.quadrature.body_force_vector`), i.e. the density is part of the
        unit vector and ``value`` is the coefficient (as a pressure's value is).

    Raises
    ------
    TypeError
        Another kind of load (Temperature patterns are not forces).
    """
    if isinstance(load, NodalForce):
        return nodal_force_vector(mesh.n_dofs, load.nodes, load.component, 1.0)
    if isinstance(load, Pressure):
        return pressure_vector(mesh, load.faces, 1.0)
    if isinstance(load, (Centrifugal, Gravity)):
        return body_force_vector(mesh, _unit(load))
    raise TypeError(f"unsupported load {type(load).__name__} ({load!r}); expected NodalForce, Pressure, "
                    "Centrifugal or Gravity")


def _unit(load: Centrifugal | Gravity) -> Centrifugal | Gravity:
    """The same body force with value 1 (the density stays)."""
    return dataclasses.replace(load, value=1.0)
