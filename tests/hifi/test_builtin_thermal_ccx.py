"""The built-in solver's body forces and temperatures against ccx 2.20 on the same mesh.

The decks are romdask's (``write_deck``) with the thermal and body-force cards added as text
(``*DENSITY``, ``*DLOAD`` ``CENTRIF`` / ``GRAV``, ``*INITIAL CONDITIONS,TYPE=TEMPERATURE``,
``*TEMPERATURE``), so that this checks the solver independently of the deck writer.
"""

import shutil

import numpy as np
import pytest

from romdask.hifi import SolverOptions, solve
from romdask.hifi.calculix import run_ccx, write_deck
from romdask.io.calculix import read_frd
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.problem import Amplitude, Centrifugal, Dirichlet, Gravity, Problem, Temperature, ramp
from romdask.problems.meshing import box, map_nodes

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")
ELEMENTS = ["C3D4", "C3D8", "C3D10", "C3D20R"]


def annulus(element):
    mesh = box((2, 3, 1), (0.8, np.pi / 2, 0.1), (0.2, 0.0, 0.0), element=element)
    return map_nodes(mesh, lambda x: np.column_stack([x[:, 0] * np.cos(x[:, 1]), x[:, 0] * np.sin(x[:, 1]), x[:, 2]]))


def bcs(mesh):
    return (Dirichlet(mesh.node_sets["ymin"], (1,), name="theta0"), Dirichlet(mesh.node_sets["ymax"], (0,), name="theta90"),
            Dirichlet(mesh.node_sets["zmin"], (2,), name="midplane"))


def ccx_displacement(problem, path, model_cards="", step_cards="", material_cards=""):
    """ccx's displacement at the end, in the order of the problem's nodes."""
    text = write_deck(problem, path, outputs=("U",)).read_text()
    text = text.replace("*ELASTIC", material_cards + "*ELASTIC", 1)
    k = text.index("*STEP")
    text = text[:k] + model_cards + text[k:]
    k = text.rindex("*END STEP")
    path.write_text(text[:k] + step_cards + text[k:])
    _, ids, u = list(read_frd(run_ccx(path).frd).frames())[-1]
    out = np.zeros((problem.mesh.n_nodes, 3))
    out[problem.mesh.node_index(ids)] = u
    return out


@needs_ccx
@pytest.mark.parametrize("element", ELEMENTS)
def test_body_forces_agree_with_ccx(tmp_path, element):
    """Rotation about a tilted axis off the origin plus gravity, linear elastic: the same
    displacements as ccx to round-off (measured 5e-15 .. 2.1e-14): CalculiX's rule (element
    stiffness points, undeformed coordinates, force density rho omega^2 r_perp)."""
    mesh = annulus(element)
    law = LinearElastic(200000.0, 0.3)
    rho, omega2, g = 7.8e-9, 1.0e6, 9810.0
    spin = Centrifugal(np.arange(mesh.n_elements), omega2, [0.3, -0.2, 0.0], [0.0, 0.6, 0.8], rho, ramp(), name="spin")
    weight = Gravity(np.arange(mesh.n_elements), g, [0.0, 0.6, -0.8], rho, ramp(), name="weight")
    reference = ccx_displacement(
        Problem(mesh, law, bcs(mesh), [0.0, 1.0], name="spin"), tmp_path / "spin.inp", material_cards=f"*DENSITY\n{rho!r}\n",
        step_cards=f"*DLOAD\nEALL, CENTRIF, {omega2!r}, 0.3, -0.2, 0., 0., 0.6, 0.8\nEALL, GRAV, {g!r}, 0., 0.6, -0.8\n")
    u = solve(Problem(mesh, law, bcs(mesh), [0.0, 1.0], (spin, weight))).displacement[-1].reshape(-1, 3)
    assert np.abs(reference).max() > 0
    assert np.abs(u - reference).max() <= 1e-12 * np.abs(reference).max()


def _lines(ids, values):
    return "".join(f"{int(i)}, {float(v)!r}\n" for i, v in zip(ids, values))


@needs_ccx
@pytest.mark.parametrize("element", ELEMENTS)
def test_temperatures_agree_with_ccx(tmp_path, element):
    """Non-uniform initial and final nodal temperatures, E(T), nu(T) and a secant alpha(T) with
    ZERO = 0: the same displacements as ccx to its equilibrium tolerance (controls 1e-9;
    measured 5.0e-10 .. 8.4e-10), which checks the point temperatures (element mean on C3D8,
    shape functions elsewhere) and the thermal strain's reference."""
    mesh = annulus(element)
    law = LinearElastic(elastic=[(200000.0, 0.3, 20.0), (150000.0, 0.32, 600.0)],
                        expansion=[(1.2e-5, 20.0), (1.6e-5, 600.0)], expansion_zero=0.0)
    x = mesh.nodes
    t_initial = 20.0 + 10.0 * x[:, 0]
    t_final = 20.0 + 300.0 * x[:, 0] ** 2 + 2000.0 * x[:, 1] * x[:, 2]
    ids = mesh.node_ids
    reference = ccx_displacement(
        Problem(mesh, law, bcs(mesh), [0.0, 1.0], name="heat", initial_temperature=t_initial), tmp_path / "heat.inp",
        model_cards="*INITIAL CONDITIONS, TYPE=TEMPERATURE\n" + _lines(ids, t_initial),
        step_cards="*TEMPERATURE\n" + _lines(ids, t_final))
    heat = Temperature(np.arange(mesh.n_nodes), t_final, name="heat")
    problem = Problem(mesh, law, bcs(mesh), [0.0, 1.0], initial_temperature=t_initial, temperatures=(heat,))
    u = solve(problem).displacement[-1].reshape(-1, 3)
    assert np.abs(u - reference).max() <= 5e-9 * np.abs(reference).max()


@needs_ccx
@pytest.mark.parametrize("element", ["C3D8", "C3D20R"])
def test_viscoplastic_heating_and_cooling_agrees_with_ccx(tmp_path, element):
    """A bar clamped axially, T = (320 + 100 x) a(t) heated from 20 and cooled back within one
    *VISCO step of 16 fixed increments (Norton law, E(T), alpha(T)): it yields in compression,
    then in tension; every output displacement equals ccx's to 2e-8 (measured 8.3e-10 on C3D8,
    4.2e-9 on C3D20R: ccx's equilibrium tolerance and its local Newton)."""
    t0 = 20.0
    law = CalculixViscoplastic(plastic=[[200.0, 0.0], [260.0, 0.005], [300.0, 0.02], [340.0, 0.1]],
                               hardening="isotropic", norton=(4e-11, 5.0, 0.0),
                               elastic=[(200000.0, 0.3, t0), (160000.0, 0.3, 620.0)],
                               expansion=[(1.2e-5, t0), (1.8e-5, 620.0)], expansion_zero=t0)
    mesh = box((2, 1, 1), (2.0, 1.0, 1.0), element=element)
    clamp = (Dirichlet(mesh.node_sets["xmin"], (0,), name="xmin"), Dirichlet(mesh.node_sets["ymin"], (1,), name="ymin"),
             Dirichlet(mesh.node_sets["zmin"], (2,), name="zmin"), Dirichlet(mesh.node_sets["xmax"], (0,), name="xmax"))
    times = np.linspace(0.0, 2.0, 17)
    values = 320.0 + 100.0 * mesh.nodes[:, 0]
    amplitude = Amplitude([0.0, 1.0, 2.0], [t0 / 320.0, 1.0, t0 / 320.0])
    path = tmp_path / "bar.inp"
    text = write_deck(Problem(mesh, law, clamp, times, name="bar", initial_temperature=t0), path, outputs=("U",)).read_text()
    k = text.index("*STEP")
    text = (text[:k] + f"*AMPLITUDE, NAME=AT, TIME=TOTAL TIME\n0., {t0 / 320.0!r}, 1., 1., 2., {t0 / 320.0!r}\n"
            + "*INITIAL CONDITIONS, TYPE=TEMPERATURE\n" + _lines(mesh.node_ids, np.full(mesh.n_nodes, t0)) + text[k:])
    k = text.rindex("*END STEP")
    path.write_text(text[:k] + "*TEMPERATURE, AMPLITUDE=AT\n" + _lines(mesh.node_ids, values) + text[k:])
    frames = list(read_frd(run_ccx(path).frd).frames())
    assert [f[0].time for f in frames] == pytest.approx(times[1:], abs=1e-12)
    reference = np.zeros((len(frames), mesh.n_nodes, 3))
    for k, (_, ids, u) in enumerate(frames):
        reference[k, mesh.node_index(ids)] = u
    heat = Temperature(np.arange(mesh.n_nodes), values, amplitude, name="heat")
    problem = Problem(mesh, law, clamp, times, initial_temperature=t0, temperatures=(heat,))
    res = solve(problem, fields=("displacement", "state"), options=SolverOptions(rtol=1e-12, ctol=1e-8))
    u = res.displacement[1:].reshape(reference.shape)
    assert np.abs(u - reference).max() <= 2e-8 * np.abs(reference).max()
    assert res.fields["state"][8][:, 0].max() > 1e-3  # plastic by the peak temperature
