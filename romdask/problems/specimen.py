"""Holed strip specimen in quadratic tets (C3D10), built without gmsh.

One eighth of a strip of width 2 W, length 2 L and thickness 2 T with a central hole of radius R
(symmetry planes x = 0, y = 0, z = 0): the O-grid of :func:`romdask.problems.plate.ring_mesh`
on [0, W] x [0, L], split into 6 Kuhn tets per hex, midside nodes added and those on the hole
moved onto the circle.

Node counts (C3D10, radial_factor 1.5, n_z = round(n / 2)): n = 4: 1,105; n = 5: 2,499;
n = 6: 3,325 (default); n = 7: 6,003.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from romdask.fem.mesh import Mesh
from romdask.problem import Problem
from romdask.problems.plate import ring_counts, cyclic_problem, radial_grading, default_plate_material, ring_mesh

if TYPE_CHECKING:
    from romdask.materials import Material

__all__ = ["specimen_mesh", "specimen_problem"]

#: Default amplitudes: prescribed displacement of the end (mm), traction (MPa).
SPECIMEN_DISPLACEMENT = 0.005
SPECIMEN_PRESSURE = 100.0


def specimen_mesh(
    n: int = 6,
    n_z: int | None = None,
    element: str = "C3D10",
    *,
    half_width: float = 5.0,
    half_length: float = 10.0,
    radius: float = 1.5,
    half_thickness: float = 1.0,
    radial_factor: float = 1.5,
    grading: float | None = None,
) -> Mesh:
    """Mesh of one eighth of the holed strip (mm).

    Parameters
    ----------
    n : elements along each half of the quarter arc; m = round(radial_factor n) radially
    n_z : layers through the half thickness (default round(n / 2))
    element : C3D10 (default) or any type of :func:`romdask.problems.meshing.box`
    half_width, half_length, radius, half_thickness : W, L, R, T (strip 10 x 20 x 2 mm with a
        3 mm hole by default: net-section ratio 2R / 2W = 0.3)

    Returns
    -------
    Mesh with node sets xsym, ysym, zsym, hole, right (free edge x = W), top (loaded end y = L);
    surfaces of the same names; element set all.

    Notes
    -----
    Node count: :func:`romdask.problems.meshing.box_node_count` ((2n, m, n_z), element).
    """
    n, m, n_z = ring_counts(n, n_z, radial_factor)
    beta = radial_grading(half_width, radius, n, m) if grading is None else float(grading)
    return ring_mesh((2 * n, m, n_z), half_width, half_length, radius, half_thickness, element, beta)


def specimen_problem(
    amplitude: float | None = None,
    n_cycles: float = 1,
    period: float = 10.0,
    increments_per_cycle: int = 40,
    loading: str = "displacement",
    n: int = 6,
    material: "Material | None" = None,
    element: str = "C3D10",
    **mesh_options,
) -> Problem:
    """Cyclic tension-compression of the holed strip.

    Parameters
    ----------
    amplitude : peak uy (mm) prescribed on ``top`` (y = L, default 0.005 mm: nominal strain
        5e-4, gross stress about 100 MPa, net-section stress 143 MPa = 0.7 of yield, elastic
        peak at the hole about 3.4 x 100 MPa) or peak tensile traction (MPa, default 100) on
        the top surface for loading="pressure"
    n_cycles, period, increments_per_cycle : as in :func:`romdask.problems.plate.plate_problem`
    material : default :func:`romdask.problems.plate.default_plate_material`

    Notes
    -----
    Symmetry: ux = 0 on xsym, uy = 0 on ysym, uz = 0 on zsym.
    """
    if loading not in ("displacement", "pressure"):
        raise ValueError(f"loading must be 'displacement' or 'pressure'; got {loading!r}")
    if amplitude is None:
        amplitude = SPECIMEN_DISPLACEMENT if loading == "displacement" else SPECIMEN_PRESSURE
    mesh = specimen_mesh(n, element=element, **mesh_options)
    return cyclic_problem(
        "specimen", mesh, amplitude, n_cycles, period, increments_per_cycle, loading,
        material if material is not None else default_plate_material(),
        {"xsym": 0, "ysym": 1, "zsym": 2}, ("top", 1), {"n": n, "element": element, **mesh_options},
    )
