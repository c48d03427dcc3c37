"""Quarter of a square plate with a central circular hole: the main reference problem.

The quarter plate [0, W]^2 minus the disc of radius R, thickness T, is meshed as the classic
O-grid: two mapped hex blocks meeting on the 45 degree diagonal, each with ``n`` elements along
its half of the quarter arc, ``m = round(radial_factor n)`` elements from the hole to the outer
edge (geometric grading towards the hole) and ``n_z`` layers through the thickness. Both blocks are
stored as one structured grid of ``2 n x m x n_z`` hexes (the diagonal is a grid line), so the
generic converters of :mod:`romdask.problems.meshing` apply to it.

Node counts (C3D8, radial_factor 1.5, n_z = round(n / 2)):

====  =====  ======  ===========
n     m      n_z     nodes
====  =====  ======  ===========
4     6      2       189
7     11     4       900
8     12     4       1,105 (as the CalculiX reference)
12    18     6       3,325
18    27     9       10,360
24    36     12      23,569
31    47     16      51,408
====  =====  ======  ===========
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import brentq

from romdask.fem.mesh import Mesh
from romdask.problem.loads import Amplitude, Dirichlet, Pressure, cyclic
from romdask.problem import Problem
from romdask.problems.meshing import boundary_faces, box, box_node_count, convert, map_nodes, nodes_where, surface_where

if TYPE_CHECKING:
    from romdask.materials import Material

__all__ = [
    "cyclic_problem",
    "cyclic_times",
    "default_plate_material",
    "plate_mesh",
    "plate_mesh_for_nodes",
    "plate_n_for_nodes",
    "plate_node_count",
    "plate_problem",
    "plate_traction_problem",
    "radial_grading",
    "ring_counts",
    "ring_mesh",
]

logger = logging.getLogger(__name__)

#: Default displacement amplitude of the quarter plate (mm) and pressure amplitude (MPa).
PLATE_DISPLACEMENT = 0.006
PLATE_PRESSURE = 120.0


def ring_counts(n: int, n_z: int | None, radial_factor: float) -> tuple[int, int, int]:
    """Elements (per half arc, radial, through the thickness) of a ring mesh from ``n``."""
    if int(n) < 1:
        raise ValueError(f"n (elements along each half of the quarter arc) must be >= 1; got {n}")
    n = int(n)
    m = max(1, int(radial_factor * n + 0.5))
    n_z = max(1, int(n / 2 + 0.5)) if n_z is None else int(n_z)
    if n_z < 1:
        raise ValueError(f"n_z (layers through the thickness) must be >= 1; got {n_z}")
    return n, m, n_z


def radial_grading(width: float, radius: float, n: int, m: int) -> float:
    """Exponent beta of the radial grading g(r) = (e^{beta r} - 1) / (e^beta - 1) making the first
    radial element on the x axis as long as the tangential element size on the hole."""
    target = np.pi * radius / 4 / n
    ligament = width - radius
    if ligament / m <= target:
        return 0.0

    def first(beta: float) -> float:
        return ligament * np.expm1(beta / m) / np.expm1(beta) - target

    return float(brentq(first, 1e-9, 50.0))


def ring_mesh(
    shape: tuple[int, int, int],
    width: float,
    height: float,
    radius: float,
    thickness: float,
    element: str = "C3D8",
    grading: float = 0.0,
    snap_hole: bool = True,
) -> Mesh:
    """O-grid of the quarter rectangle [0, width] x [0, height] minus the disc of ``radius``.

    ``shape`` = (2 n, m, n_z): tangential cells (quarter arc, split at 45 degrees, the first half
    going to the edge x = width, the second to y = height), radial cells, layers. The hexes are
    those of ``box((m, 2 n, n_z))`` in the parameter space (radial, tangential, thickness), which
    keeps a right-handed local frame (e_r, e_theta, e_z). Node sets
    xsym, ysym, zsym, hole, right (x = width), top (y = height); surfaces hole, right, top,
    xsym, ysym, zsym; element set all. Quadratic midside nodes on the hole are moved onto the
    circle when ``snap_hole``.
    """
    if not 0 < radius < min(width, height):
        raise ValueError(f"the hole radius must lie in (0, min(width, height)); got {radius}, {width}, {height}")
    if shape[0] % 2:
        raise ValueError(f"the tangential cell count must be even (two blocks); got {shape[0]}")
    param = box((shape[1], shape[0], shape[2]), lengths=(1.0, 2.0, 1.0))

    def to_plate(p: np.ndarray) -> np.ndarray:
        r, s, zeta = p[:, 0], p[:, 1], p[:, 2]
        theta = s * np.pi / 4
        inner = radius * np.column_stack([np.cos(theta), np.sin(theta)])
        outer = np.where(
            (s <= 1.0)[:, None],
            np.column_stack([np.full_like(s, width), s * height]),
            np.column_stack([(2.0 - s) * width, np.full_like(s, height)]),
        )
        g = r if grading == 0.0 else np.expm1(grading * r) / np.expm1(grading)
        xy = inner + g[:, None] * (outer - inner)
        # exact values on the boundary lines (no round-off on the symmetry planes and edges)
        xy[s == 0.0, 1] = 0.0
        xy[s == 2.0, 0] = 0.0
        xy[(r == 1.0) & (s <= 1.0), 0] = width
        xy[(r == 1.0) & (s >= 1.0), 1] = height
        return np.column_stack([xy, zeta * thickness])

    hexes = map_nodes(param, to_plate)
    tol = 1e-9 * max(width, height, thickness)
    planes = {
        "xsym": lambda p: np.abs(p[:, 0]) <= tol,
        "ysym": lambda p: np.abs(p[:, 1]) <= tol,
        "zsym": lambda p: np.abs(p[:, 2]) <= tol,
        "right": lambda p: np.abs(p[:, 0] - width) <= tol,
        "top": lambda p: np.abs(p[:, 1] - height) <= tol,
    }
    node_sets = {name: nodes_where(hexes, f) for name, f in planes.items()}
    boundary = boundary_faces(hexes)
    surfaces = {name: surface_where(hexes, f, boundary) for name, f in planes.items()}
    node_sets["hole"] = param.node_sets["xmin"]
    surfaces["hole"] = param.surfaces["xmin"]
    hexes = Mesh(hexes.nodes, hexes.blocks, None, node_sets, {"all": np.arange(hexes.n_elements)}, surfaces)
    mesh = convert(hexes, element)
    if snap_hole and element not in ("C3D8", "C3D4"):
        hole = mesh.node_sets["hole"]
        nodes = np.array(mesh.nodes)
        nodes[hole, :2] *= radius / np.hypot(nodes[hole, 0], nodes[hole, 1])[:, None]
        mesh = Mesh(nodes, mesh.blocks, mesh.node_ids, mesh.node_sets, mesh.element_sets, mesh.surfaces)
    return mesh


def plate_mesh(
    n: int = 8,
    n_z: int | None = None,
    element: str = "C3D8",
    *,
    width: float = 10.0,
    radius: float = 2.0,
    thickness: float = 1.0,
    radial_factor: float = 1.5,
    grading: float | None = None,
) -> Mesh:
    """Structured mesh of the quarter plate with a hole (mm).

    Parameters
    ----------
    n : elements along each half (0-45 and 45-90 degrees) of the quarter arc
    n_z : layers through the thickness (default round(n / 2): near-cubic elements at the hole)
    element : C3D8 (default), C3D20, C3D20R, C3D4 or C3D10 (via the generic converters)
    width, radius, thickness : half-width W of the square plate, hole radius R, thickness T
    radial_factor : radial elements m = round(radial_factor n)
    grading : exponent of the radial grading; None chooses it so that the elements on the hole
        along the x axis are as long radially as tangentially

    Returns
    -------
    Mesh with node sets xsym (x=0), ysym (y=0), zsym (z=0), top (y=W), right (x=W), hole;
    surfaces top, right, hole (and the symmetry planes); element set all.

    Notes
    -----
    Nodes (C3D8): (2n + 1)(m + 1)(n_z + 1); see :func:`plate_node_count`. Volume W^2 T - pi R^2 T/4
    up to the polygonal hole, error O(n^-2).
    """
    n, m, n_z = ring_counts(n, n_z, radial_factor)
    beta = radial_grading(width, radius, n, m) if grading is None else float(grading)
    return ring_mesh((2 * n, m, n_z), width, width, radius, thickness, element, beta)


def plate_node_count(n: int, n_z: int | None = None, element: str = "C3D8", radial_factor: float = 1.5) -> int:
    """Exact node count of :func:`plate_mesh` (without building it)."""
    n, m, n_z = ring_counts(n, n_z, radial_factor)
    return box_node_count((2 * n, m, n_z), element)


def plate_n_for_nodes(target: int, element: str = "C3D8", n_z: int | None = None, radial_factor: float = 1.5) -> int:
    """The ``n`` of :func:`plate_mesh` whose node count is closest to ``target``."""
    if target < 1:
        raise ValueError(f"target node count must be positive; got {target}")
    candidates = np.arange(1, 1001)
    counts = np.array([plate_node_count(int(n), n_z, element, radial_factor) for n in candidates])
    return int(candidates[np.argmin(np.abs(counts - target))])


def plate_mesh_for_nodes(target: int, element: str = "C3D8", **kwargs) -> Mesh:
    """:func:`plate_mesh` with the ``n`` giving the node count closest to ``target``
    (1,000 -> n = 7: 900 nodes, n = 8 gives 1,105; 10,000 -> n = 18: 10,360; 50,000 -> n = 31: 51,408 in C3D8)."""
    n = plate_n_for_nodes(target, element, kwargs.get("n_z"), kwargs.get("radial_factor", 1.5))
    return plate_mesh(n, element=element, **kwargs)


def cyclic_times(amplitude: Amplitude, period: float, n_cycles: float, increments_per_cycle: int) -> np.ndarray:
    """Uniform output times over ``n_cycles`` periods, checking every breakpoint of ``amplitude``
    (the load reversals) falls on an increment boundary."""
    if increments_per_cycle < 1:
        raise ValueError(f"increments_per_cycle must be >= 1; got {increments_per_cycle}")
    n_inc = n_cycles * increments_per_cycle
    if abs(n_inc - round(n_inc)) > 1e-9 or round(n_inc) < 1:
        raise ValueError(f"n_cycles * increments_per_cycle must be a positive integer; got {n_inc}")
    times = np.arange(round(n_inc) + 1) * (period / increments_per_cycle)
    dt = period / increments_per_cycle
    for t in amplitude.breakpoints():
        k = t / dt
        if abs(k - round(k)) > 1e-9:
            raise ValueError(
                f"load reversal at t={t:g} falls inside an increment of {dt:g}; "
                "use increments_per_cycle a multiple of 4"
            )
    return times


def default_plate_material() -> "Material":
    """Viscoplastic steel at high temperature (CalculiX's *PLASTIC + *CREEP,LAW=NORTON law).

    E = 200 GPa, nu = 0.3, yield 200 MPa with piecewise-linear isotropic hardening
    (260 MPa at 0.5 %, 300 MPa at 2 %, 340 MPa at 10 % plastic strain), Norton A = 4e-11
    (MPa^-5 s^-1), n = 5, m = 0: overstress 30 MPa at 1e-3 /s, 19 MPa at 1e-4 /s.
    """
    from romdask.materials import CalculixViscoplastic

    plastic = np.array([[200.0, 0.0], [260.0, 0.005], [300.0, 0.02], [340.0, 0.1]])
    return CalculixViscoplastic(200000.0, 0.3, plastic, hardening="isotropic", norton=(4e-11, 5.0, 0.0))


def plate_problem(
    amplitude: float | None = None,
    n_cycles: float = 1,
    period: float = 10.0,
    increments_per_cycle: int = 40,
    loading: str = "displacement",
    n: int = 8,
    material: "Material | None" = None,
    element: str = "C3D8",
    r_ratio: float = -1.0,
    **mesh_options,
) -> Problem:
    """Cyclic loading of the quarter plate with a hole.

    Parameters
    ----------
    amplitude : peak of the triangular, fully reversed cycle: prescribed uy (mm) on ``top``
        when loading="displacement" (default 0.006 mm), or tensile traction (MPa) on the top
        surface when loading="pressure" (default 120 MPa, applied as Pressure(-amplitude)).
    n_cycles, period : number of cycles (s) and period (s, default 10 s)
    increments_per_cycle : uniform increments per cycle; a multiple of 4 so that the reversals at
        period/4 and 3 period/4 fall on increment ends (40 as in the CalculiX runs)
    n, element, mesh_options : passed to :func:`plate_mesh`
    material : a law; default :func:`default_plate_material`
    r_ratio : load ratio of the cycles (:func:`romdask.problem.loads.cyclic`): -1 fully
        reversed (default), 0 from zero to the peak and back; increments_per_cycle a multiple
        of 2 when 0

    Notes
    -----
    Defaults: aimed at a gross stress of 0.6 of yield (120 MPa from E u / W) so that, with the
    elastic concentration factor of about 3.1 (R / W = 0.2), the elastic peak at the hole
    (about 1.7 x yield) plastifies a zone reaching about 0.4 R into the ligament (some 10 % of
    W - R) while the net-section stress (0.75 x yield) stays elastic. Measured with romdask's
    solver on n = 8: the elastic reaction gives 110 MPa gross and 337 MPa peak (integration
    points); with the default material one cycle plastifies 5 % of the integration points
    (max p 1.7e-3); the 120 MPa traction variant 9 % (max p 3.3e-3).
    Symmetry: ux = 0 on xsym, uy = 0 on ysym, uz = 0 on zsym.
    """
    if loading not in ("displacement", "pressure"):
        raise ValueError(f"loading must be 'displacement' or 'pressure'; got {loading!r}")
    if amplitude is None:
        amplitude = PLATE_DISPLACEMENT if loading == "displacement" else PLATE_PRESSURE
    mesh = plate_mesh(n, element=element, **mesh_options)
    return cyclic_problem(
        "plate", mesh, amplitude, n_cycles, period, increments_per_cycle, loading,
        material if material is not None else default_plate_material(),
        {"xsym": 0, "ysym": 1, "zsym": 2}, ("top", 1), {"n": n, "element": element, **mesh_options},
        r_ratio=r_ratio,
    )


def plate_traction_problem(
    top: float,
    right: float,
    n_cycles: float = 1,
    period: float = 10.0,
    r_ratio: float = -1.0,
    increments_per_cycle: int = 40,
    n: int = 8,
    material: "Material | None" = None,
    element: str = "C3D8",
    **mesh_options,
) -> Problem:
    """The quarter plate under two traction patterns: ``top`` (MPa, along y on the top face) and
    ``right`` (MPa, along x on the right face), both following the same triangular cycles.

    A reference problem whose loading varies in kind, not only in amplitude: tension along y
    concentrates the stress at the hole's point on the x axis, tension along x at its point on
    the y axis, so the two families of runs have different plastic zones and reduced bases (the
    local ROMs of :func:`romdask.offline.reduce_local`). Both patterns are always present (named
    ``top_traction`` and ``right_traction``), a value of 0 switches one off, so that every run
    shares the patterns a reduction needs.

    Parameters
    ----------
    top, right : peak tractions (MPa, tensile > 0); 150 MPa plastifies the hole with the
        default material (gross stress 0.75 of yield)
    n_cycles, period, r_ratio : triangular cycles (:func:`romdask.problem.loads.cyclic`)
    increments_per_cycle : a multiple of 4 (of 2 when ``r_ratio`` is 0)
    n, element, mesh_options : passed to :func:`plate_mesh`; material as :func:`plate_problem`
    """
    if period <= 0 or n_cycles <= 0:
        raise ValueError(f"period and n_cycles must be positive; got {period}, {n_cycles}")
    mesh = plate_mesh(n, element=element, **mesh_options)
    table = cyclic(period, n_cycles, r_ratio=r_ratio)
    times = cyclic_times(table, period, n_cycles, increments_per_cycle)
    dirichlet = tuple(Dirichlet(mesh.node_sets[s], (c,), name=s) for s, c in (("xsym", 0), ("ysym", 1), ("zsym", 2)))
    loads = (Pressure(mesh.surfaces["top"], -float(top), table, name="top_traction"),
             Pressure(mesh.surfaces["right"], -float(right), table, name="right_traction"))
    metadata = {
        "scenario_parameters": ("top", "right", "n_cycles", "period", "r_ratio"),
        "top": float(top), "right": float(right), "amplitude_unit": "MPa", "n_cycles": n_cycles,
        "period": float(period), "r_ratio": float(r_ratio), "increments_per_cycle": int(increments_per_cycle),
        "loading": "pressure", "mesh": {"n": n, "element": element, **mesh_options},
    }
    return Problem(mesh, material if material is not None else default_plate_material(), dirichlet, times, loads,
                   name="plate_tractions", metadata=metadata)


def cyclic_problem(name, mesh, amplitude, n_cycles, period, increments_per_cycle, loading, material,
                   symmetry, loaded, mesh_metadata, r_ratio: float = -1.0) -> Problem:
    """Symmetry conditions (node set -> fixed component) + a cyclic prescribed displacement or
    traction on one face (``loaded`` = (node set / surface, component)): the reference problems'
    common form. ``r_ratio`` (:func:`romdask.problem.loads.cyclic`) is recorded in the metadata
    when it is not -1 (fully reversed)."""
    if loading not in ("displacement", "pressure"):
        raise ValueError(f"loading must be 'displacement' or 'pressure'; got {loading!r}")
    if period <= 0 or n_cycles <= 0:
        raise ValueError(f"period and n_cycles must be positive; got {period}, {n_cycles}")
    table = cyclic(period, n_cycles, r_ratio=r_ratio)
    times = cyclic_times(table, period, n_cycles, increments_per_cycle)
    face, component = loaded
    dirichlet = [Dirichlet(mesh.node_sets[s], (c,), name=s) for s, c in symmetry.items()]
    loads = []
    if loading == "displacement":
        dirichlet.append(Dirichlet(mesh.node_sets[face], (component,), float(amplitude), table, name=f"{face}_displacement"))
    else:
        loads.append(Pressure(mesh.surfaces[face], -float(amplitude), table, name=f"{face}_traction"))
    metadata = {
        "scenario_parameters": ("amplitude", "n_cycles", "period"),
        "amplitude": float(amplitude),
        "amplitude_unit": "mm" if loading == "displacement" else "MPa",
        "n_cycles": n_cycles,
        "period": float(period),
        "increments_per_cycle": int(increments_per_cycle),
        "loading": loading,
        "load_pattern": f"{face}_{'displacement' if loading == 'displacement' else 'traction'}",
        "mesh": mesh_metadata,
    }
    if r_ratio != -1.0:
        metadata["scenario_parameters"] += ("r_ratio",)
        metadata["r_ratio"] = float(r_ratio)
    return Problem(mesh, material, tuple(dirichlet), times, tuple(loads), name=f"{name}_{loading}", metadata=metadata)
