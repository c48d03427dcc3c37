"""The plate, specimen and cube reference problems: meshes, sets, loads, times."""

import importlib.util

import numpy as np
import pytest

from romdask.problem.loads import Dirichlet, Pressure
from romdask.problem import Problem
from romdask.problems import (
    boundary_faces,
    cube_mesh,
    cube_problem,
    cyclic_times,
    face_nodes,
    plate_mesh,
    plate_mesh_for_nodes,
    plate_n_for_nodes,
    plate_node_count,
    plate_problem,
    specimen_mesh,
    specimen_problem,
)
from romdask.problem.loads import cyclic

# geometric helpers shared with the sibling test module (loaded by path: tests/ is no package)
_spec = importlib.util.spec_from_file_location("_romdask_test_meshing", __file__.replace("test_reference_problems.py", "test_meshing.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
element_volumes, face_areas, face_keys = _helpers.element_volumes, _helpers.face_areas, _helpers.face_keys

W, R, T = 10.0, 2.0, 1.0


@pytest.mark.parametrize("n, n_z", [(2, 1), (4, 2), (8, None), (5, 3)])
def test_plate_counts(n, n_z):
    mesh = plate_mesh(n, n_z)
    m = int(1.5 * n + 0.5)
    layers = int(n / 2 + 0.5) if n_z is None else n_z
    assert mesh.n_nodes == (2 * n + 1) * (m + 1) * (layers + 1) == plate_node_count(n, n_z)
    assert mesh.n_elements == 2 * n * m * layers
    assert plate_mesh(8).n_nodes == 1105  # the CalculiX reference mesh size


@pytest.mark.parametrize("target", [1000, 10000, 50000])
def test_plate_mesh_for_nodes(target):
    n = plate_n_for_nodes(target)
    assert abs(plate_node_count(n) - target) <= 0.15 * target
    if target <= 10000:
        mesh = plate_mesh_for_nodes(target)
        assert mesh.n_nodes == plate_node_count(n)


@pytest.mark.parametrize("element", ["C3D8", "C3D20R", "C3D4", "C3D10"])
def test_plate_orientation_conformity_sets(element):
    mesh = plate_mesh(4, element=element)
    assert np.all(element_volumes(mesh) > 0)
    _, counts = np.unique(face_keys(mesh), axis=0, return_counts=True)
    assert counts.max() == 2
    assert len(np.unique(np.round(mesh.nodes, 9), axis=0)) == mesh.n_nodes
    x = mesh.nodes
    tol = 1e-12
    expected = {
        "xsym": np.abs(x[:, 0]) < tol,
        "ysym": np.abs(x[:, 1]) < tol,
        "zsym": np.abs(x[:, 2]) < tol,
        "right": np.abs(x[:, 0] - W) < tol,
        "top": np.abs(x[:, 1] - W) < tol,
        "hole": np.abs(np.hypot(x[:, 0], x[:, 1]) - R) < 1e-9,
    }
    for name, flag in expected.items():
        assert np.array_equal(np.sort(mesh.node_sets[name]), np.flatnonzero(flag)), name
    # surfaces: nodes on the right plane, areas exact for the flat faces
    for name, axis, value, area in (("top", 1, W, W * T), ("right", 0, W, W * T),
                                    ("xsym", 0, 0.0, (W - R) * T), ("ysym", 1, 0.0, (W - R) * T)):
        faces = mesh.surfaces[name]
        assert np.allclose(x[face_nodes(mesh, faces)][..., axis], value, atol=1e-12, rtol=0)
        assert abs(face_areas(mesh, faces).sum() - area) < 1e-12, name
    hole = x[face_nodes(mesh, mesh.surfaces["hole"])]
    assert np.allclose(np.hypot(hole[..., 0], hole[..., 1]), R)
    # every boundary face is in one named surface or on the free face z = T
    bf = boundary_faces(mesh)
    named = np.concatenate([mesh.surfaces[s] for s in ("xsym", "ysym", "zsym", "right", "top", "hole")])
    assert len(np.unique(named, axis=0)) == len(named)
    free = bf[~(bf[:, None, :] == named[None, :, :]).all(axis=2).any(axis=1)]
    assert len(free) == len(bf) - len(named)
    assert np.allclose(x[face_nodes(mesh, free)][..., 2], T)


def test_plate_volume_and_hole_area_converge():
    vol_err, hole_err = [], []
    for n in (2, 4, 8, 16):
        mesh = plate_mesh(n, n_z=1)
        polygon = 2 * n * 0.5 * R**2 * np.sin(np.pi / (4 * n))  # inscribed polygon of the quarter hole
        volume = element_volumes(mesh).sum()
        assert abs(volume - (W**2 - polygon) * T) < 1e-10  # straight-sided hexes: exact polygon
        vol_err.append(abs(volume - (W**2 - np.pi * R**2 / 4) * T))
        hole_err.append(abs(face_areas(mesh, mesh.surfaces["hole"]).sum() - np.pi * R / 2 * T))
    assert np.all(np.diff(vol_err) < 0) and np.all(np.diff(hole_err) < 0)
    assert vol_err[-1] / vol_err[-2] < 0.3 and hole_err[-1] / hole_err[-2] < 0.3  # O(n^-2)
    assert vol_err[-1] < 1e-3 * W**2 * T


def test_plate_quadratic_hole_nodes_on_circle():
    mesh = plate_mesh(3, element="C3D20R")
    hole = mesh.node_sets["hole"]
    assert len(hole) == (4 * 3 + 1) * (2 * 2 + 1) - 2 * 3 * 2  # corners + midside on the hole face
    assert np.allclose(np.hypot(mesh.nodes[hole, 0], mesh.nodes[hole, 1]), R)


def test_specimen_mesh():
    mesh = specimen_mesh()
    assert mesh.blocks[0].type == "C3D10"
    assert 2000 <= mesh.n_nodes <= 8000
    assert np.all(element_volumes(mesh) > 0)
    _, counts = np.unique(face_keys(mesh), axis=0, return_counts=True)
    assert counts.max() == 2
    x = mesh.nodes
    assert np.allclose(x[mesh.node_sets["top"], 1], 10.0) and np.allclose(x[mesh.node_sets["right"], 0], 5.0)
    hole = mesh.node_sets["hole"]
    assert np.allclose(np.hypot(x[hole, 0], x[hole, 1]), 1.5)
    assert abs(face_areas(mesh, mesh.surfaces["top"]).sum() - 5.0 * 1.0) < 1e-12


def test_cyclic_times_reversals_on_increments():
    table = cyclic(10.0, 2)
    times = cyclic_times(table, 10.0, 2, 40)
    assert len(times) == 81 and times[-1] == pytest.approx(20.0)
    assert np.all(np.min(np.abs(table.breakpoints()[:, None] - times[None, :]), axis=1) < 1e-12)
    with pytest.raises(ValueError, match="multiple of 4"):
        cyclic_times(cyclic(10.0, 1), 10.0, 1, 42)


@pytest.mark.parametrize("factory", [plate_problem, specimen_problem, cube_problem])
@pytest.mark.parametrize("loading", ["displacement", "pressure"])
def test_problems_build_with_any_material(factory, loading):
    law = object()  # Problem does not inspect the law: checks loads and times on their own
    problem = factory(loading=loading, n_cycles=2, period=5.0, material=law, n=2)
    assert isinstance(problem, Problem) and problem.material is law
    assert len(problem.times) == 2 * 40 + 1 and problem.times[-1] == pytest.approx(10.0)
    meta = problem.metadata
    assert set(meta["scenario_parameters"]) == {"amplitude", "n_cycles", "period"}
    assert meta["loading"] == loading
    homogeneous = [bc for bc in problem.dirichlet if bc.value == 0.0]
    assert len(homogeneous) == 3 and {bc.components for bc in homogeneous} == {(0,), (1,), (2,)}
    if loading == "displacement":
        (loaded,) = [bc for bc in problem.dirichlet if bc.value != 0.0]
        assert isinstance(loaded, Dirichlet) and loaded.value == meta["amplitude"] > 0
        table = loaded.amplitude
    else:
        (load,) = problem.loads
        assert isinstance(load, Pressure) and load.value == -meta["amplitude"] < 0  # tension
        table = load.amplitude
    reversal = table.breakpoints()
    assert np.all(np.isclose(reversal[:, None], problem.times[None, :], atol=1e-12).any(axis=1))
    assert table(1.25) == pytest.approx(1.0) and table(3.75) == pytest.approx(-1.0)


def test_symmetry_sets_of_problems():
    problem = plate_problem(material=object(), n=2)
    by_name = {bc.name: bc for bc in problem.dirichlet}
    mesh = problem.mesh
    assert np.array_equal(by_name["xsym"].nodes, np.sort(mesh.node_sets["xsym"]))
    assert by_name["xsym"].components == (0,) and by_name["ysym"].components == (1,)
    assert by_name["top_displacement"].components == (1,)
    cube = cube_problem(material=object(), n=2)
    assert np.allclose(cube.mesh.nodes[cube.dirichlet[-1].nodes, 2], 1.0)
    assert cube_mesh(3).n_nodes == 64


def test_problems_build_with_default_materials():
    from romdask.materials import CalculixViscoplastic, Chaboche

    plate = plate_problem(n=2)
    assert isinstance(plate.material, CalculixViscoplastic)
    assert plate.material.young == 200000.0
    assert isinstance(specimen_problem(n=2).material, CalculixViscoplastic)
    assert isinstance(cube_problem().material, Chaboche)


def test_default_plate_material_rate_effect():
    """Norton overstress of a few tens of MPa at 1e-3 /s (q = (rate / A)^(1/n))."""
    law = plate_problem(n=1, n_z=1).material
    a, n, _ = law.norton
    overstress = (1e-3 / a) ** (1 / n)
    assert 10.0 < overstress < 60.0


def _tet10_shape(p):
    L = np.array([1 - p.sum(), p[0], p[1], p[2]])
    corner = L * (2 * L - 1)
    mid = [4 * L[a] * L[b] for a, b in [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]]
    return np.concatenate([corner, mid])


def _hex20_shape(p):
    from romdask.problems.meshing import HEX_EDGES

    ref = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], float)
    ref = np.vstack([ref, ref[HEX_EDGES].mean(axis=1)])
    n = np.empty(20)
    for i, r in enumerate(ref):
        lin = np.prod([1 + p[a] * r[a] if r[a] else 1 - p[a] ** 2 for a in range(3)])
        n[i] = lin * (p @ r - 2) / 8 if i < 8 else lin / 4
    return n


def _quadratic_jacobians(mesh, shape, points):
    """det J at reference points, with shape-function derivatives by central differences."""
    x = mesh.nodes[mesh.blocks[0].connectivity]
    out, h = [], 1e-6
    for p in points:
        dN = np.stack([(shape(p + h * e) - shape(p - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
        out.append(np.linalg.det(np.einsum("eki,ka->eia", x, dN)))
    return np.array(out)


@pytest.mark.parametrize("mesh_factory", [lambda: specimen_mesh(2), lambda: plate_mesh(2, element="C3D10")])
def test_tet10_jacobian_positive_at_integration_points_and_corners(mesh_factory):
    a, b = 0.1381966, 0.5854102
    points = np.array([[a, a, a], [b, a, a], [a, b, a], [a, a, b], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert np.all(_quadratic_jacobians(mesh_factory(), _tet10_shape, points) > 0)


def test_hex20_jacobian_positive_with_snapped_hole_nodes():
    g = 1 / np.sqrt(3)
    points = np.array(np.meshgrid([-g, g], [-g, g], [-g, g])).reshape(3, -1).T
    points = np.vstack([points, np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T])
    assert np.all(_quadratic_jacobians(plate_mesh(2, element="C3D20R"), _hex20_shape, points) > 0)
    # the serendipity functions form a partition of unity
    assert _hex20_shape(np.array([0.3, -0.2, 0.7])).sum() == pytest.approx(1.0)
