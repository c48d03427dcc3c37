"""A cube of material under cyclic tension-compression (homogeneous state: a material-point check)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from romdask.fem.mesh import Mesh
from romdask.problem import Problem
from romdask.problems.meshing import box
from romdask.problems.plate import cyclic_problem

if TYPE_CHECKING:
    from romdask.materials import Material

__all__ = ["cube_mesh", "cube_problem", "default_cube_material"]

#: Default amplitudes: displacement of the face z = length (mm; 0.5 % strain on the 1 mm cube),
#: traction (MPa).
CUBE_DISPLACEMENT = 0.005
CUBE_PRESSURE = 300.0


def cube_mesh(n: int = 2, element: str = "C3D8", length: float = 1.0) -> Mesh:
    """The cube [0, length]^3 (mm) with n cells per side; sets and surfaces as :func:`box`
    (xmin, xmax, ymin, ymax, zmin, zmax, element set all)."""
    if int(n) < 1:
        raise ValueError(f"cube_mesh needs n >= 1 cells per side; got {n}")
    return box((n, n, n), (length, length, length), element=element)


def default_cube_material() -> "Material":
    """:class:`romdask.materials.Chaboche` with its defaults (the paper's cube example)."""
    from romdask.materials import Chaboche

    return Chaboche()


def cube_problem(
    amplitude: float | None = None,
    n_cycles: float = 1,
    period: float = 10.0,
    increments_per_cycle: int = 40,
    loading: str = "displacement",
    n: int = 2,
    material: "Material | None" = None,
    element: str = "C3D8",
    length: float = 1.0,
) -> Problem:
    """Fully reversed cyclic loading along z of the cube.

    ux = 0 on xmin, uy = 0 on ymin, uz = 0 on zmin (free lateral contraction, homogeneous
    uniaxial stress); uz = amplitude x cyclic on zmax (default 0.005 mm = 0.5 % strain) or a
    tensile traction amplitude x cyclic on the zmax surface (default 300 MPa).
    """
    if loading not in ("displacement", "pressure"):
        raise ValueError(f"loading must be 'displacement' or 'pressure'; got {loading!r}")
    if amplitude is None:
        amplitude = CUBE_DISPLACEMENT if loading == "displacement" else CUBE_PRESSURE
    mesh = cube_mesh(n, element, length)
    return cyclic_problem(
        "cube", mesh, amplitude, n_cycles, period, increments_per_cycle, loading,
        material if material is not None else default_cube_material(),
        {"xmin": 0, "ymin": 1, "zmin": 2}, ("zmax", 2), {"n": n, "element": element, "length": length},
    )
