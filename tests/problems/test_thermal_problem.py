"""The thermomechanical reference problem: the spinning blade under flight cycles."""

import importlib.util
import shutil
import subprocess

import numpy as np
import pytest

from romdask.hifi.builtin import _check_rigid_modes, constrained_dofs
from romdask.materials import LinearElastic
from romdask.problem.loads import Centrifugal
from romdask.problems import (
    blade_mesh,
    blade_n_for_nodes,
    blade_node_count,
    flight_cycle,
    thermal_problem,
)
from romdask.problems.thermal import BLADE, FLIGHT_BREAKPOINTS

_spec = importlib.util.spec_from_file_location(
    "_romdask_test_meshing", __file__.replace("test_thermal_problem.py", "test_meshing.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
element_volumes, face_keys = _helpers.element_volumes, _helpers.face_keys

R0, L, C, H, E = (BLADE[k] for k in ("root_radius", "span", "half_chord", "half_thickness", "edge_ratio"))
LAW = LinearElastic(200000.0, 0.3)  # any law: the generator does not look at it


def half_thickness(y):
    return H * (1.0 - (1.0 - E) * (y / C) ** 2)


@pytest.mark.parametrize("n, nodes", [(4, 255), (8, 1188), (19, 10780)])
def test_blade_counts(n, nodes):
    assert blade_node_count(n) == nodes
    if n <= 8:
        mesh = blade_mesh(n)
        assert mesh.n_nodes == nodes and mesh.n_elements == 4 * n * n * max(2, round(n / 3))
    assert blade_node_count(4, "C3D10") == blade_mesh(4, "C3D10").n_nodes == 1485
    assert blade_node_count(blade_n_for_nodes(1200)) == 1188


@pytest.mark.parametrize("element", ["C3D8", "C3D10"])
def test_blade_geometry_and_sets(element):
    mesh = blade_mesh(4, element)
    x = mesh.nodes
    assert np.all(element_volumes(mesh) > 0)
    _, counts = np.unique(face_keys(mesh), axis=0, return_counts=True)
    assert counts.max() == 2  # conforming
    y = np.linspace(0.0, C, 5)  # the corners' section is the polygon through h at the 4 chord cells
    polygon = L * np.sum(np.diff(y) * (half_thickness(y[1:]) + half_thickness(y[:-1])) / 2)
    assert element_volumes(mesh).sum() == pytest.approx(polygon, rel=1e-12)
    exact = L * H * (C - (1.0 - E) * C / 3.0)  # L * integral of h(y) over [0, C]
    assert polygon == pytest.approx(exact, rel=(1.0 - E) / 4**2)
    sets = mesh.node_sets
    np.testing.assert_allclose(x[sets["root"], 0], R0)
    np.testing.assert_allclose(x[sets["tip"], 0], R0 + L)
    np.testing.assert_allclose(x[sets["ysym"], 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(x[sets["edge"], 1], C)
    np.testing.assert_allclose(x[sets["zsym"], 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(x[sets["skin"], 2], half_thickness(x[sets["skin"], 1]), rtol=1e-12)
    assert np.all(x[:, 2] <= half_thickness(x[:, 1]) + 1e-12)
    # the sets hold every boundary node of their plane, nothing else
    assert len(sets["root"]) == np.count_nonzero(np.isclose(x[:, 0], R0))
    for name in ("root", "tip", "ysym", "edge", "zsym", "skin"):
        assert len(mesh.surfaces[name]) > 0


def test_conditions_remove_the_rigid_modes_only():
    problem = thermal_problem(4, material=LAW)
    dofs, _ = constrained_dofs(problem)
    _check_rigid_modes(problem.mesh, dofs)  # raises if a rigid mode is free
    # symmetry planes and the root: each condition fixes one component of its plane's nodes
    assert [(bc.name, bc.components, bc.value) for bc in problem.dirichlet] == [
        ("root", (0,), 0.0), ("ysym", (1,), 0.0), ("zsym", (2,), 0.0)]


def test_flight_cycle_amplitudes():
    amps = flight_cycle(100.0, 2)
    for name, a in amps.items():
        np.testing.assert_allclose(a.times[:len(FLIGHT_BREAKPOINTS)], 100.0 * np.asarray(FLIGHT_BREAKPOINTS))
        assert a(0.0) == 0.0 and a(100.0) == 0.0 and a(200.0) == 0.0, name
        np.testing.assert_allclose(a(np.linspace(0, 100, 41)), a(np.linspace(100, 200, 41)))  # identical cycles
        assert a(40.0) == 1.0 and a(90.0) == 0.0, name  # hold, rest
    assert amps["core"](10.0) == 0.5 and amps["edge"](10.0) == 0.75  # the edges lead the heat-up
    assert amps["core"](70.0) == 0.5 and amps["edge"](70.0) == 0.0  # and the cool-down
    with pytest.raises(ValueError, match="whole number"):
        flight_cycle(100.0, 1.5)


@pytest.mark.parametrize("element", ["C3D8", "C3D10"])
def test_temperature_field_range_and_shape(element):
    problem = thermal_problem(4, n_cycles=2, peak_temperature=900.0, element=element, material=LAW)
    mesh, x = problem.mesh, problem.mesh.nodes
    assert len(problem.times) == 81 and problem.times[-1] == 200.0
    # one pattern per row of equal y, every node in exactly one (CalculiX: one *TEMPERATURE a node)
    covered = np.concatenate([p.nodes for p in problem.temperatures])
    np.testing.assert_array_equal(np.sort(covered), np.arange(mesh.n_nodes))
    for p in problem.temperatures:
        assert np.ptp(x[p.nodes, 1]) < 1e-9
    assert len(problem.temperatures) == (5 if element == "C3D8" else 9)
    T = np.array([problem.nodal_temperature(t) for t in problem.times])
    np.testing.assert_allclose(problem.initial_temperature, 0.0)
    np.testing.assert_allclose(T[0], 0.0)  # starts at the initial (reference) temperature
    np.testing.assert_allclose(T[[40, 80]], 0.0, atol=1e-12)  # and comes back at the end of each cycle
    np.testing.assert_allclose(T[:, mesh.node_sets["root"]], 0.0)  # the root stays cold
    assert T.min() >= 0.0 and T.max() == pytest.approx(900.0)
    s, w = (x[:, 0] - R0) / L, (x[:, 1] / C) ** 2
    profile = 900.0 * s * (2.0 - s) * (1.0 - 0.2 * w)  # the edges run 20 % cooler than the core
    for k in (8, 12, 16, 24, 48, 56, 64):  # hold (t = 20..60 s, 120..160 s): steady, hot tip
        np.testing.assert_allclose(T[k], profile, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(T[4], profile * (0.5 + 0.25 * w), rtol=1e-12)  # t = 10 s: edges lead
    np.testing.assert_allclose(T[28], profile * (0.5 - 0.5 * w), rtol=1e-12)  # t = 70 s: edges cooled
    tip = mesh.node_sets["tip"]
    tip_edge, tip_core = tip[np.isclose(x[tip, 1], C)], tip[np.isclose(x[tip, 1], 0.0)]
    np.testing.assert_allclose(T[4, tip_edge], 0.8 * 900.0 * 0.75)  # ahead of the core's 0.5 x 900
    np.testing.assert_allclose(T[4, tip_core], 450.0)
    np.testing.assert_allclose(T[28, tip_edge], 0.0, atol=1e-12)


def test_rotation_load():
    problem = thermal_problem(4, omega=1000.0, material=LAW)
    (rotation,) = problem.loads
    assert isinstance(rotation, Centrifugal) and rotation.name == "rotation"
    assert rotation.value == 1.0e6 and len(rotation.elements) == problem.mesh.n_elements
    np.testing.assert_allclose(rotation.axis, (0.0, 1.0, 0.0))
    assert rotation.density == BLADE["density"]
    assert rotation.scale(0.0) == 0.0 and rotation.scale(50.0) == 1.0 and rotation.scale(90.0) == 0.0


def test_deterministic_and_checked():
    a, b = thermal_problem(4, material=LAW), thermal_problem(4, material=LAW)
    np.testing.assert_array_equal(a.mesh.nodes, b.mesh.nodes)
    for t in (10.0, 20.0, 70.0):
        np.testing.assert_array_equal(a.nodal_temperature(t), b.nodal_temperature(t))
    assert [p.name for p in a.temperatures] == [f"row_{k:02d}" for k in range(5)]
    assert a.metadata == b.metadata and a.metadata["peak_temperature"] == 950.0
    with pytest.raises(ValueError, match="multiple of 10"):
        thermal_problem(4, increments_per_cycle=25, material=LAW)
    with pytest.raises(ValueError, match="peak_temperature"):
        thermal_problem(4, peak_temperature=-10.0, material=LAW)
    with pytest.raises(ValueError, match="whole number"):
        thermal_problem(4, n_cycles=0, material=LAW)


@pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")
def test_builtin_solver_agrees_with_ccx_on_the_c3d10_blade(tmp_path):
    """The C3D10 variant of the reference problem (875 nodes, one flight at 975 C / 1450 rad/s):
    the built-in solver against ccx on the user's deck of tests/thermal_deck.py. Measured
    (2026-12): 9.6e-7, the 6 digits of the .frd; 14 % of the points plastified."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from thermal_deck import write_blade

    from romdask.hifi import solve
    from romdask.io.calculix import read_frd

    write_blade(tmp_path, {"flight": (975.0, 1450.0, 1)}, size=3, element="C3D10")
    subprocess.run(["ccx", "-i", "flight"], cwd=tmp_path, check=True, capture_output=True)
    frd = read_frd(tmp_path / "flight.frd")
    blocks = frd.select("DISP")
    ids = frd.read(blocks[0])[0]
    u_ccx = np.array([frd.read(b)[1] for b in blocks])
    problem = thermal_problem(3, 1, 975.0, 1450.0, element="C3D10")
    result = solve(problem, fields=("displacement", "state"))
    u = result.displacement.reshape(len(problem.times), -1, 3)[1:][:, ids - 1]  # deck ids are 1..n
    assert np.linalg.norm(u - u_ccx) / np.linalg.norm(u_ccx) < 1e-5
    assert np.mean(result.fields["state"][-1, :, 0] > 0) > 0.05  # plastifies
