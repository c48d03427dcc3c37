"""A quasi-static boundary-value problem: mesh, laws, Dirichlet conditions, loads, output times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.problem.loads import Centrifugal, Dirichlet, Gravity, NodalForce, Pressure, Temperature

if TYPE_CHECKING:
    from romdask.materials import Material

__all__ = ["Problem"]


@dataclass(frozen=True, eq=False)
class Problem:
    """What a high-fidelity solver needs for one run.

    Parameters
    ----------
    mesh : Mesh
    material : Material or mapping of element-set name -> Material
        One law for every element, or one per element set; the sets must cover every element
        exactly once.
    dirichlet : tuple of Dirichlet
    loads : tuple of NodalForce / Pressure / Centrifugal / Gravity
    times : array of float, shape (n_steps + 1,)
        Output times, starting at 0, strictly increasing: one increment per interval (the solver
        may cut an increment into sub-increments but reports only these times). A later start
        (``times[0] > 0``) is the rest of a loading history, solved from a given state at
        ``times[0]`` (the built-in solver's ``solve(problem, initial=...)``; e.g.
        ``dataclasses.replace(problem, times=problem.times[k:])``: amplitudes are functions of
        the absolute time).
    name : str
    initial_temperature : None, float or array (n_nodes,)
        None: an athermal problem (every law gets temperature 0). Otherwise the initial nodal
        temperature (CalculiX ``*INITIAL CONDITIONS,TYPE=TEMPERATURE``), the reference of the
        thermal strains, and the temperature of every node that no pattern covers.
    temperatures : tuple of Temperature
        Nodal temperature patterns x amplitudes (see :meth:`nodal_temperature`); they need an
        ``initial_temperature``.
    """

    mesh: Mesh
    material: "Material | Mapping[str, Material]"
    dirichlet: tuple[Dirichlet, ...]
    times: np.ndarray
    loads: tuple[NodalForce | Pressure | Centrifugal | Gravity, ...] = ()
    name: str = "problem"
    metadata: Mapping[str, object] = field(default_factory=dict)
    initial_temperature: float | np.ndarray | None = None
    temperatures: tuple[Temperature, ...] = ()

    def __post_init__(self) -> None:
        t = np.array(self.times, np.float64)
        if t.ndim != 1 or len(t) < 2 or not np.all(np.isfinite(t)) or t[0] < 0.0 or np.any(np.diff(t) <= 0):
            raise ValueError(f"{self.name}: times must be finite, start at 0 (or later for a restart) and increase "
                             f"strictly; got {t[:5]}...")
        t.setflags(write=False)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "dirichlet", tuple(self.dirichlet))
        object.__setattr__(self, "loads", tuple(self.loads))
        n = self.mesh.n_nodes
        for bc in self.dirichlet:
            if bc.nodes.max() >= n:
                raise ValueError(f"{self.name}: Dirichlet condition {bc.name!r} names nodes beyond {n - 1}")
        for load in self.loads:
            if isinstance(load, NodalForce) and load.nodes.max() >= n:
                raise ValueError(f"{self.name}: nodal force {load.name!r} names nodes beyond {n - 1}")
            if isinstance(load, Pressure) and load.faces[:, 0].max() >= self.mesh.n_elements:
                raise ValueError(f"{self.name}: pressure {load.name!r} names elements beyond the mesh")
            if isinstance(load, (Centrifugal, Gravity)) and load.elements.max() >= self.mesh.n_elements:
                raise ValueError(f"{self.name}: body force {load.name!r} names elements beyond the mesh")
        self._check_temperatures()
        self.material_elements()  # validates coverage

    def _check_temperatures(self) -> None:
        object.__setattr__(self, "temperatures", tuple(self.temperatures))
        n = self.mesh.n_nodes
        if self.initial_temperature is None:
            if self.temperatures:
                raise ValueError(f"{self.name}: temperature patterns need an initial_temperature "
                                 "(CalculiX: *INITIAL CONDITIONS,TYPE=TEMPERATURE)")
            laws = self.material.values() if isinstance(self.material, Mapping) else (self.material,)
            thermal = [type(law).__name__ for law in laws if getattr(law, "thermal", False)]
            if thermal:
                raise ValueError(
                    f"{self.name}: the law(s) {sorted(set(thermal))} have a temperature behaviour but the problem "
                    "is athermal; give Problem(initial_temperature=...) (the reference of the thermal strains; "
                    "CalculiX: *INITIAL CONDITIONS,TYPE=TEMPERATURE)"
                )
            return
        t0 = np.array(np.broadcast_to(np.asarray(self.initial_temperature, np.float64), (n,)))
        if not np.all(np.isfinite(t0)):
            raise ValueError(f"{self.name}: the initial temperature has non-finite values")
        t0.setflags(write=False)
        object.__setattr__(self, "initial_temperature", t0)
        for pattern in self.temperatures:
            if not isinstance(pattern, Temperature):
                raise TypeError(f"{self.name}: temperatures must be Temperature patterns; got {type(pattern).__name__}")
            if pattern.nodes[-1] >= n:
                raise ValueError(f"{self.name}: temperature pattern {pattern.name!r} names nodes beyond {n - 1}")

    @property
    def thermal(self) -> bool:
        """True when the problem has temperatures (an ``initial_temperature``)."""
        return self.initial_temperature is not None

    def nodal_temperature(self, t: float) -> np.ndarray:
        """The nodal temperature at time ``t``, shape (n_nodes,).

        A node covered by no pattern keeps its initial temperature; a covered node has the sum
        over the patterns covering it of ``values * amplitude(t)`` (CalculiX: a node's
        ``*TEMPERATURE`` replaces its initial value). Zeros for an athermal problem.
        """
        n = self.mesh.n_nodes
        if self.initial_temperature is None:
            return np.zeros(n)
        out = np.array(self.initial_temperature, np.float64)
        if not self.temperatures:
            return out
        covered = np.zeros(n, bool)
        for pattern in self.temperatures:
            covered[pattern.nodes] = True
        out[covered] = 0.0
        for pattern in self.temperatures:
            s = pattern.scale(t)
            if s != 0.0:
                out[pattern.nodes] += s * pattern.values
        return out

    def material_elements(self) -> list[tuple["Material", np.ndarray]]:
        """(law, sorted global element indices) pairs covering every element exactly once."""
        n_el = self.mesh.n_elements
        if not isinstance(self.material, Mapping):
            return [(self.material, np.arange(n_el))]
        count = np.zeros(n_el, np.int64)
        pairs = []
        for set_name, law in self.material.items():
            if set_name not in self.mesh.element_sets:
                raise ValueError(f"{self.name}: material assigned to unknown element set {set_name!r}")
            elements = np.unique(self.mesh.element_sets[set_name])
            count[elements] += 1
            pairs.append((law, elements))
        if np.any(count != 1):
            bad = np.flatnonzero(count != 1)[:10]
            raise ValueError(
                f"{self.name}: element sets of the materials must cover every element exactly once; "
                f"elements {self.mesh.element_ids[bad].tolist()} are covered {count[bad].tolist()} times"
            )
        return pairs
