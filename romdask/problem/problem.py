"""A quasi-static boundary-value problem: mesh, laws, Dirichlet conditions, loads, output times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.problem.loads import Dirichlet, NodalForce, Pressure

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
    loads : tuple of NodalForce / Pressure
    times : array of float, shape (n_steps + 1,)
        Output times, starting at 0, strictly increasing: one increment per interval (the solver
        may cut an increment into sub-increments but reports only these times).
    name : str
    """

    mesh: Mesh
    material: "Material | Mapping[str, Material]"
    dirichlet: tuple[Dirichlet, ...]
    times: np.ndarray
    loads: tuple[NodalForce | Pressure, ...] = ()
    name: str = "problem"
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = np.array(self.times, np.float64)
        if t.ndim != 1 or len(t) < 2 or t[0] != 0.0 or np.any(np.diff(t) <= 0):
            raise ValueError(f"{self.name}: times must start at 0 and increase strictly; got {t[:5]}...")
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
        self.material_elements()  # validates coverage

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
