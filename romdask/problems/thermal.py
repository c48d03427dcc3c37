"""A rotating turbine-blade-like plate under flight cycles: the thermomechanical reference problem.

The part is a straight blade of span L (radial, x from the root radius R0 to R0 + L), chord 2 C
(y) and a lenticular section (thickness 2 h(y) = 2 h_mid (1 - (1 - edge ratio) (y / C)^2): thin
leading and trailing edges), spinning about the engine axis (the y axis through the origin).
One quarter is modelled (x in [R0, R0 + L], y in [0, C], z in [0, h(y)]) with the symmetry
planes of the chord (y = 0) and of the section (z = 0). Mapped hex grid of ``4 n x n x n_z``
cells (n along the half chord, 4 n along the span, ``n_z = max(2, round(n / 3))`` through the
half thickness).

Loads, one flight cycle per ``period``:

- temperature: ``T(x, y, t) = T_peak S(s) (1 - c w) [(1 - w) a_core(t) + w a_edge(t)]`` with
  s = (x - R0) / L, S(s) = s (2 - s) (cold root, hot tip), w = (y / C)^2 and c = 0.2 (the
  film-cooled edges run 20 % cooler than the core during the hold): the core heats up over
  0-0.2 period, holds, cools down over 0.6-0.8; the thin edges respond faster (3/4 of the way
  at 0.1 where the core is half way; back to 0 at 0.7 where the core is half way down). The
  field starts and ends at the initial temperature 0 and peaks at ``T_peak`` at the tip's core
  during the hold.
- ``rotation``: centrifugal load (``*DLOAD`` ``CENTRIF``) with omega^2 and the spin amplitude
  0 -> 1 (take-off, 0-0.1) -> 1 -> 0 (landing, 0.7-0.8).

Why the initial temperature is 0 and the field is written per chord row: CalculiX's
``*TEMPERATURE,AMPLITUDE=a`` makes a node's temperature ``value x a(t)`` (it replaces, not adds
to, the initial one) and a node has one such line. The field is therefore one
:class:`~romdask.problem.loads.Temperature` pattern per row of nodes of equal y (``row_00``,
``row_01``, ...: values T_peak S(s), amplitude (1 - w) a_core + w a_edge), every node in exactly
one pattern, so that a CalculiX deck writes it as it is; and ``value x a(0)`` equals the initial
temperature at every node only for an initial temperature of 0 (with a(0) = 0).

Boundary conditions: ux = 0 on the root face (the blade rests on its root, free to slide and
to expand thermally in y and z), uy = 0 on y = 0, uz = 0 on z = 0. They remove the rigid modes
and prescribe nothing that a symmetric blade on a sliding root would not do (no clamped edges:
no spurious stress singularity). The root stays at the initial temperature (S(0) = 0).

Node counts (C3D8): n = 4: 255; n = 6: 525; n = 8: 1,188; n = 10: 1,804; n = 12: 3,185;
n = 18: 9,709; n = 19: 10,780; n = 20: 13,608. C3D10 (the same grid split into 6 tets per hex,
midside nodes added): n = 3: 875; n = 4: 1,485.

Units: mm, s, MPa, tonne / mm^3, degrees Celsius.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.problem import Problem
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Temperature
from romdask.problems.meshing import box, box_node_count, convert, map_nodes

if TYPE_CHECKING:
    from romdask.materials import Material

__all__ = [
    "BLADE",
    "EDGE_COOLING",
    "FLIGHT_BREAKPOINTS",
    "MATERIAL_TABLES",
    "blade_counts",
    "blade_mesh",
    "blade_n_for_nodes",
    "blade_node_count",
    "blade_temperature",
    "default_thermal_material",
    "flight_cycle",
    "flight_times",
    "spanwise_profile",
    "thermal_problem",
]

#: Geometry (mm) and mass density (tonne / mm^3, a nickel superalloy) of the blade.
BLADE = {"root_radius": 240.0, "span": 60.0, "half_chord": 15.0, "half_thickness": 2.0, "edge_ratio": 0.35,
         "density": 8.2e-9}
#: Breakpoints of one flight cycle as fractions of the period: every amplitude is linear between them.
FLIGHT_BREAKPOINTS = (0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 1.0)
#: Default peak (tip, hold) temperature (degrees C); the initial temperature is 0.
PEAK_TEMPERATURE = 950.0
#: How much cooler the (film-cooled) edges run than the core during the hold: T = T_peak S(s) (1 - c w).
EDGE_COOLING = 0.2
#: Default rotation speed (rad/s): ~13,400 rpm.
OMEGA = 1400.0

#: The default law's temperature tables, as the CalculiX cards write them (MPa, s, degrees C):
#: ``*ELASTIC`` rows (E, nu, T); ``*PLASTIC`` rows (von Mises stress, plastic strain, T),
#: isotropic hardening, the same plastic strains at every temperature; ``*CREEP,LAW=NORTON``
#: rows (A, n, m, T) at the ``*ELASTIC`` temperatures (CalculiX interpolates them there);
#: ``*EXPANSION,ZERO=0`` rows (secant alpha, T).
MATERIAL_TABLES = {
    "elastic": ((205000.0, 0.3, 0.0), (190000.0, 0.3, 400.0), (170000.0, 0.3, 700.0), (150000.0, 0.3, 1000.0)),
    "plastic": ((550.0, 0.0, 0.0), (620.0, 0.01, 0.0), (680.0, 0.1, 0.0),
                (450.0, 0.0, 600.0), (520.0, 0.01, 600.0), (580.0, 0.1, 600.0),
                (260.0, 0.0, 800.0), (320.0, 0.01, 800.0), (370.0, 0.1, 800.0),
                (100.0, 0.0, 1000.0), (140.0, 0.01, 1000.0), (180.0, 0.1, 1000.0)),
    "norton": ((4.0e-11, 5.0, 0.0, 0.0), (4.0e-11, 5.0, 0.0, 400.0), (1.3e-10, 5.0, 0.0, 700.0),
               (4.0e-10, 5.0, 0.0, 1000.0)),
    "expansion": ((1.2e-5, 0.0), (1.4e-5, 500.0), (1.6e-5, 1000.0)),
}


def blade_counts(n: int, n_z: int | None = None) -> tuple[int, int, int]:
    """Cells (span, half chord, half thickness) of the blade grid for size ``n``."""
    if int(n) < 1:
        raise ValueError(f"the blade size n (cells along the half chord) must be >= 1; got {n}")
    n = int(n)
    n_z = max(2, int(n / 3 + 0.5)) if n_z is None else int(n_z)
    if n_z < 1:
        raise ValueError(f"n_z (layers through the half thickness) must be >= 1; got {n_z}")
    return 4 * n, n, n_z


def blade_mesh(n: int = 8, element: str = "C3D8", *, n_z: int | None = None, root_radius: float = BLADE["root_radius"],
               span: float = BLADE["span"], half_chord: float = BLADE["half_chord"],
               half_thickness: float = BLADE["half_thickness"], edge_ratio: float = BLADE["edge_ratio"]) -> Mesh:
    """Structured mesh of one quarter of the blade (mm).

    Parameters
    ----------
    n : cells along the half chord (4 n along the span)
    element : C3D8 (default), C3D20R, C3D4 or C3D10 (:func:`romdask.problems.meshing.convert`;
        C3D20 is allowed here but CalculiX's temperature rule on it is not reproduced)
    n_z : layers through the half thickness (default max(2, round(n / 3)))
    root_radius, span, half_chord, half_thickness : R0, L, C, h_mid
    edge_ratio : half thickness at the edges (y = C) over h_mid

    Returns
    -------
    Mesh with node sets ``root`` (x = R0), ``tip`` (x = R0 + L), ``ysym`` (y = 0), ``zsym``
    (z = 0), ``edge`` (y = C), ``skin`` (the curved outer face); the same surfaces; element set
    ``all``.

    Notes
    -----
    Nodes (C3D8): (4 n + 1)(n + 1)(n_z + 1), :func:`blade_node_count`. The grid is mapped from
    the box [0, 1]^3: x = R0 + L u, y = C v, z = h(y) w.
    """
    if not (0.0 < edge_ratio <= 1.0):
        raise ValueError(f"edge_ratio must lie in (0, 1]; got {edge_ratio}")
    if min(root_radius, span, half_chord, half_thickness) <= 0:
        raise ValueError("root_radius, span, half_chord and half_thickness must be positive")
    shape = blade_counts(n, n_z)
    param = box(shape, (1.0, 1.0, 1.0), element="C3D8")

    def to_blade(p: np.ndarray) -> np.ndarray:
        u, v, w = p[:, 0], p[:, 1], p[:, 2]
        h = half_thickness * (1.0 - (1.0 - edge_ratio) * v**2)
        return np.column_stack([root_radius + span * u, half_chord * v, h * w])

    hexes = map_nodes(param, to_blade)
    planes = {"root": "xmin", "tip": "xmax", "ysym": "ymin", "edge": "ymax", "zsym": "zmin", "skin": "zmax"}
    hexes = Mesh(hexes.nodes, hexes.blocks, None, {k: param.node_sets[v] for k, v in planes.items()},
                 {"all": np.arange(hexes.n_elements)}, {k: param.surfaces[v] for k, v in planes.items()})
    mesh = convert(hexes, element)
    if element != "C3D8":  # midside nodes of the curved skin back onto it
        nodes = np.array(mesh.nodes)
        v = nodes[:, 1] / half_chord
        skin = mesh.node_sets["skin"]
        nodes[skin, 2] = half_thickness * (1.0 - (1.0 - edge_ratio) * v[skin] ** 2)
        mesh = Mesh(nodes, mesh.blocks, mesh.node_ids, mesh.node_sets, mesh.element_sets, mesh.surfaces)
    return mesh


def blade_node_count(n: int, element: str = "C3D8", n_z: int | None = None) -> int:
    """Exact node count of :func:`blade_mesh` (without building it)."""
    return box_node_count(blade_counts(n, n_z), element)


def blade_n_for_nodes(target: int, element: str = "C3D8") -> int:
    """The size ``n`` of :func:`blade_mesh` whose node count is closest to ``target``."""
    if target < 1:
        raise ValueError(f"target node count must be positive; got {target}")
    candidates = np.arange(1, 200)
    counts = np.array([blade_node_count(int(n), element) for n in candidates])
    return int(candidates[np.argmin(np.abs(counts - target))])


def flight_cycle(period: float = 100.0, n_cycles: int = 1) -> dict[str, Amplitude]:
    """The amplitudes of ``n_cycles`` identical flight cycles of ``period`` seconds.

    Returns
    -------
    dict with ``spin`` (multiplies omega^2: up over 0-0.1 period, held to 0.7, down by 0.8),
    ``core`` (heat-up over 0-0.2, hold to 0.6, cool-down by 0.8) and ``edge`` (3/4 at 0.1, 1
    at 0.2, held to 0.6, 0 at 0.7), then rest to the end of the period. Breakpoints:
    :data:`FLIGHT_BREAKPOINTS`.
    """
    if period <= 0 or int(n_cycles) != n_cycles or n_cycles < 1:
        raise ValueError(f"flight_cycle needs period > 0 and a whole number of cycles >= 1; got {period}, {n_cycles}")
    one = {
        "spin": (0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0),
        "core": (0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0),
        "edge": (0.0, 0.75, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0),
    }
    frac = np.asarray(FLIGHT_BREAKPOINTS)
    times = np.concatenate([[0.0]] + [(c + frac[1:]) * period for c in range(int(n_cycles))])
    return {name: Amplitude(times, np.concatenate([[v[0]]] + [np.asarray(v[1:])] * int(n_cycles)))
            for name, v in one.items()}


def flight_times(period: float, n_cycles: int, increments_per_cycle: int) -> np.ndarray:
    """Uniform output times over the cycles, every breakpoint of :data:`FLIGHT_BREAKPOINTS` on
    an increment boundary (``increments_per_cycle`` a multiple of 10)."""
    if increments_per_cycle < 1 or increments_per_cycle % 10:
        raise ValueError(f"increments_per_cycle must be a positive multiple of 10 (the flight cycle's "
                         f"breakpoints fall on tenths of the period); got {increments_per_cycle}")
    return np.arange(int(n_cycles) * increments_per_cycle + 1) * (period / increments_per_cycle)


def spanwise_profile(mesh: Mesh, root_radius: float = BLADE["root_radius"], span: float = BLADE["span"]) -> np.ndarray:
    """S(s) = s (2 - s) at every node, s = (x - R0) / L: 0 at the root, 1 at the tip."""
    s = np.clip((mesh.nodes[:, 0] - root_radius) / span, 0.0, 1.0)
    return s * (2.0 - s)


def default_thermal_material() -> Material:
    """A nickel-superalloy-like viscoplastic law with temperature tables: CalculiX's
    ``*ELASTIC`` / ``*PLASTIC`` / ``*CREEP,LAW=NORTON`` / ``*EXPANSION,ZERO=0`` with temperature
    columns (:data:`MATERIAL_TABLES`).

    E from 205 GPa (0 C) to 150 GPa (1000 C); initial yield 550 MPa (0 C), 450 (600 C), 260
    (800 C), 100 (1000 C), isotropic hardening of 60-70 MPa at 1 % and 120-130 MPa at 10 %
    plastic strain; Norton overstress A q^5 with A = 4e-11 up to 400 C, 4e-10 at 1000 C (an
    overstress of 19 MPa at 1e-4 /s cold, 12 MPa hot); secant expansion 1.2e-5 to 1.6e-5 /K.
    Softer than a real superalloy, so that the blade's cheap runs plastify.
    """
    from romdask.materials import CalculixViscoplastic

    t = MATERIAL_TABLES
    return CalculixViscoplastic(elastic=t["elastic"], plastic=t["plastic"], hardening="isotropic", norton=t["norton"],
                                expansion=t["expansion"], expansion_zero=0.0)


def blade_temperature(mesh: Mesh, peak_temperature: float, amplitudes: dict[str, Amplitude], *,
                      root_radius: float = BLADE["root_radius"], span: float = BLADE["span"],
                      half_chord: float = BLADE["half_chord"]) -> tuple[Temperature, ...]:
    """The blade's temperature as one pattern per row of nodes of equal y (module docstring).

    Row k (``row_00`` at y = 0, ...) holds the values ``peak_temperature * S(s) (1 - c w)`` of
    its nodes, amplitude ``(1 - w) core + w edge`` with w = (y / C)^2, c = :data:`EDGE_COOLING`
    (``amplitudes`` from :func:`flight_cycle`).
    """
    y = np.round(mesh.nodes[:, 1] / half_chord, 12)
    rows, row_of = np.unique(y, return_inverse=True)
    w = (mesh.nodes[:, 1] / half_chord) ** 2
    chord = (1.0 - EDGE_COOLING * w) / max(1.0, 1.0 - EDGE_COOLING)
    values = float(peak_temperature) * spanwise_profile(mesh, root_radius, span) * chord
    core, edge = amplitudes["core"], amplitudes["edge"]
    patterns = []
    for k, v in enumerate(rows):
        w = float(v) ** 2
        history = Amplitude(core.times, (1.0 - w) * core.values + w * edge.values)
        nodes = np.flatnonzero(row_of == k)
        patterns.append(Temperature(nodes, values[nodes], history, name=f"row_{k:02d}"))
    return tuple(patterns)


def thermal_problem(size: int = 8, n_cycles: int = 1, peak_temperature: float = PEAK_TEMPERATURE,
                    omega: float = OMEGA, *, period: float = 100.0, increments_per_cycle: int = 40,
                    element: str = "C3D8", material: Material | None = None, **mesh_options) -> Problem:
    """The spinning blade under ``n_cycles`` flight cycles.

    Parameters
    ----------
    size : ``n`` of :func:`blade_mesh` (cells along the half chord): 8 gives 1,188 nodes,
        19 gives 10,780 (C3D8)
    n_cycles : identical flight cycles (:func:`flight_cycle`)
    peak_temperature : tip temperature during the hold (degrees C; the initial temperature is 0)
    omega : rotation speed during the hold (rad/s); the load is omega^2 x the spin amplitude
    period, increments_per_cycle : cycle length (s) and uniform increments per cycle (a
        multiple of 10)
    element, mesh_options : passed to :func:`blade_mesh`
    material : a law; default :func:`default_thermal_material`

    Returns
    -------
    Problem with ``initial_temperature = 0``, the temperature patterns of
    :func:`blade_temperature` and the centrifugal load ``rotation`` (module docstring);
    ``metadata`` holds the parameters.

    Notes
    -----
    The temperature stays within [0, peak_temperature]: 0 at the root at all times and
    everywhere at the start and the end of each cycle; ``peak_temperature`` at the tip's core
    from 0.2 to 0.6 period, 0.8 of it at the tip's edge.

    With the default law, one flight cycle on the default mesh (n = 6..8, 40 increments)
    plastifies the hot zone near the tip in compression during the heat-up and the hold, and
    the edges in tension during the cool-down (CalculiX 2.20: 8 % of the integration points at
    900 C / 1300 rad/s, max p 1e-3; 17 % at 1000 C / 1500 rad/s, max p 1.7e-3; the second
    cycle adds little: the blade shakes down).
    """
    if peak_temperature <= 0:
        raise ValueError(f"peak_temperature must be > 0 (degrees C above the initial 0); got {peak_temperature}")
    if omega < 0:
        raise ValueError(f"omega must be >= 0 (rad/s); got {omega}")
    mesh = blade_mesh(size, element, **mesh_options)
    amplitudes = flight_cycle(period, n_cycles)
    times = flight_times(period, n_cycles, increments_per_cycle)
    geometry = {k: mesh_options.get(k, BLADE[k]) for k in ("root_radius", "span", "half_chord")}
    temperatures = blade_temperature(mesh, peak_temperature, amplitudes, **geometry)
    dirichlet = (Dirichlet(mesh.node_sets["root"], (0,), name="root"),
                 Dirichlet(mesh.node_sets["ysym"], (1,), name="ysym"),
                 Dirichlet(mesh.node_sets["zsym"], (2,), name="zsym"))
    rotation = Centrifugal(np.arange(mesh.n_elements), float(omega) ** 2, (0.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                           BLADE["density"], amplitudes["spin"], name="rotation")
    metadata = {
        "scenario_parameters": ("peak_temperature", "omega", "n_cycles", "period"),
        "peak_temperature": float(peak_temperature), "omega": float(omega), "n_cycles": int(n_cycles),
        "period": float(period), "increments_per_cycle": int(increments_per_cycle),
        "mesh": {"size": int(size), "element": element, **mesh_options},
    }
    law = material if material is not None else default_thermal_material()
    return Problem(mesh, law, dirichlet, times, (rotation,), name="blade_thermal", metadata=metadata,
                   initial_temperature=0.0, temperatures=temperatures)
