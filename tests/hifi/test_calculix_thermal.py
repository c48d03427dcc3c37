"""Thermomechanics against the CalculiX 2.20 binary: decks, temperatures, agreement.

Each agreement test writes a deck (``write_deck``, or by hand as a user would), runs ccx, reads
the deck back with ``read_problem`` and solves THAT problem with the built-in solver: the
displacements agree to 1e-5 of the largest one (measured: 1e-11 and below, see the prints).

(a) temperature-dependent elasticity + expansion, a heating front moving along a clamped bar
    (one temperature pattern per node layer, each with its amplitude), C3D8 and C3D10;
(b) the viscoplastic law with temperature tables (elastic, plastic, creep, expansion) over a
    heat-up / hold / cool-down cycle of a pulled bar, deck written by hand (mesh in an
    ``*INCLUDE``, gapped ids, per-node ``*TEMPERATURE`` lines under a step-time amplitude,
    then without amplitude, then ramped by ``*STEP,AMPLITUDE=RAMP``), C3D8 and C3D10;
(c) a centrifugal load with an amplitude (reversals) and gravity on a bar about the z axis,
    linear elastic C3D8 and viscoplastic C3D10.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
from romdask.hifi.calculix import run_ccx, write_deck
from romdask.io.calculix import read_calculix, read_problem, read_frd
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.problem import Problem
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Gravity, Temperature, ramp
from romdask.problems.meshing import box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thermal_decks import (  # noqa: E402
    BODY_RULES, CUBE, CUBE_1_8, FILE_AMPLITUDES, FILE_STEPS, MATERIAL, MATERIAL_1_8, RULES, VISCO,
)
from numbering import gmsh_like  # noqa: E402

pytestmark = pytest.mark.skipif(__import__("shutil").which("ccx") is None,
                                reason="ccx (apt package calculix-ccx) not installed")

ROOT = Path(__file__).resolve().parents[2]
TIGHT = SolverOptions(rtol=1e-12, ctol=1e-10)
CONTROLS = "*CONTROLS, PARAMETERS=FIELD\n1e-9, 1e-9, , , 1e-9, 1e-9\n"
TOLERANCE = 1e-5


def _agreement(deck: Path, fields=("displacement",)) -> tuple[float, Problem, object]:
    """ccx on ``deck``, the built-in solver on ``read_problem(deck)``: the worst relative
    displacement difference (ccx's float64 .frd, its output times)."""
    run_ccx(deck, timeout=120)
    run = read_calculix(deck, problem_metadata=False)
    problem = read_problem(deck)
    np.testing.assert_allclose(problem.times[1:], run.times, rtol=1e-12)
    res = solve(problem, fields=fields, options=TIGHT)
    frames = list(run.frames())
    u_ccx = np.array([f.data["displacement"] for f in frames]).reshape(len(frames), -1)
    worst = np.abs(res.displacement[1:] - u_ccx).max() / np.abs(u_ccx).max()
    if "temperature" in run.fields:  # ccx's NT: the read problem's temperatures, exactly
        used = np.unique(np.concatenate([b.connectivity.ravel() for b in problem.mesh.blocks]))
        for frame in frames:
            np.testing.assert_allclose(frame.data["temperature"][used, 0],
                                       problem.nodal_temperature(frame.time)[used], rtol=1e-14, atol=1e-12)
    return worst, problem, res


# ---- what ccx does with the temperature cards --------------------------------------------------


def _nt(frd: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    results = read_frd(frd)
    blocks = results.select("NDTEMP")
    ids = results.read(blocks[0])[0]
    return ids, np.array([b.time for b in blocks]), np.array([results.read(b)[1][:, 0] for b in blocks])


def _check_nt(deck: Path) -> None:
    run_ccx(deck, timeout=60)
    ids, times, nt = _nt(deck.with_suffix(".frd"))
    problem = read_problem(deck)
    np.testing.assert_allclose(times, problem.times[1:], rtol=1e-12)
    index = problem.mesh.node_index(ids)
    for t, row in zip(times, nt):
        np.testing.assert_allclose(row, problem.nodal_temperature(t)[index], rtol=1e-14, atol=1e-12)


@pytest.mark.parametrize("proc, step", [(VISCO, "*STEP"), ("*STATIC, DIRECT", "*STEP"),
                                        (VISCO, "*STEP, AMPLITUDE=RAMP")])
def test_temperature_rules_match_ccx(tmp_path, proc, step):
    """The rules of romdask.io.calculix.thermal (no amplitude: at once in *VISCO, ramped in
    *STATIC or with AMPLITUDE=RAMP; step-time amplitudes kept in later steps; total time)."""
    output = "*NODE OUTPUT, DOUBLE\nNT\n*END STEP\n"
    deck = tmp_path / "rules.inp"
    deck.write_text(CUBE + MATERIAL + RULES.format(proc=proc).replace("*STEP\n", step + "\n")
                    .replace("*END STEP\n", output, 1))
    _check_nt(deck)


HEAT = """*MATERIAL, NAME=H
*CONDUCTIVITY
50.
*SPECIFIC HEAT
5e8
*DENSITY
7.8e-9
*SOLID SECTION, ELSET=EALL, MATERIAL=H
*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*STEP
*HEAT TRANSFER, DIRECT
0.5, 1.
*BOUNDARY
A, 11, 11, 100.
*NODE FILE
NT
*END STEP
*STEP
*HEAT TRANSFER, DIRECT
0.5, 1.
*BOUNDARY
A, 11, 11, 300.
*END STEP
"""


@pytest.mark.parametrize("proc", [VISCO, "*STATIC, DIRECT"])
def test_temperature_file_matches_ccx(tmp_path, proc):
    """*TEMPERATURE,FILE= of a ccx heat-transfer run (ASCII NDTEMP, 2 steps x 2 increments)."""
    (tmp_path / "heat.inp").write_text(CUBE + HEAT)
    run_ccx(tmp_path / "heat.inp", timeout=60)
    deck = tmp_path / "mech.inp"
    deck.write_text(CUBE + MATERIAL + FILE_STEPS.format(proc=proc).replace("*END STEP\n", "*NODE OUTPUT, DOUBLE\nNT\n"
                                                                           "*END STEP\n", 1))
    _check_nt(deck)


@pytest.mark.parametrize("proc", [VISCO, "*STATIC, DIRECT"])
def test_body_load_rules_match_ccx(tmp_path, proc):
    """*DLOAD GRAV / CENTRIF step after step follow the rules of the pressures (a step-time
    amplitude dropped in later steps, at once in *VISCO, ramped in *STATIC, replaced)."""
    deck = tmp_path / "body.inp"
    deck.write_text(BODY_RULES.replace("{proc}", proc))
    worst, problem, _ = _agreement(deck)
    spin = next(ld for ld in problem.loads if isinstance(ld, Centrifugal))
    expected = [1e8] * 7 + [3e8] * 2 if proc == VISCO else [0, 2.5e7, 5e7, 7.5e7, 1e8, 1e8, 1e8, 2e8, 3e8]
    np.testing.assert_allclose([spin.value * spin.scale(t) for t in problem.times], expected, rtol=1e-15)
    assert worst < 1e-12, worst


@pytest.mark.parametrize("body", ["", "*DLOAD\nEALL, GRAV, 1., 0., 0., -1.\n"])
def test_temperature_file_amplitudes_and_the_reset_node_match_ccx(tmp_path, body):
    """FILE= keeps each node's amplitude; ccx 2.20 drops a step-time amplitude after a step for
    node 3 nbody + 2 only (node 2, or node 5 with one body load): read_problem does the same."""
    (tmp_path / "heat.inp").write_text(CUBE_1_8 + HEAT)
    run_ccx(tmp_path / "heat.inp", timeout=60)
    deck = tmp_path / "mech.inp"
    deck.write_text(CUBE_1_8 + MATERIAL_1_8 + FILE_AMPLITUDES.format(proc=VISCO, body=body).replace(
        "*END STEP\n", "*NODE OUTPUT, DOUBLE\nNT\n*END STEP\n", 1))
    _check_nt(deck)
    _, times, nt = _nt(deck.with_suffix(".frd"))
    reset = 1 if not body else 4
    k = int(np.argmin(np.abs(times - 2.5)))
    others = [i for i in range(8) if i != reset]
    assert np.all(nt[k, others] < nt[k + 1, others]) and nt[k, reset] == nt[k + 1, reset]  # UP kept / dropped


def test_temperature_file_after_lines_in_one_step_matches_ccx(tmp_path):
    """*STEP,AMPLITUDE=STEP in *STATIC: the lines' nodes (A) get the STEP amplitude (at once),
    a FILE= card after them keeps it for A and ramps the other nodes (no amplitude)."""
    (tmp_path / "heat.inp").write_text(CUBE + HEAT)
    run_ccx(tmp_path / "heat.inp", timeout=60)
    deck = tmp_path / "mech.inp"
    deck.write_text(CUBE + MATERIAL + """*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*STEP, AMPLITUDE=STEP
*STATIC, DIRECT
0.25, 1.
*TEMPERATURE
A, 120.
*TEMPERATURE, FILE=heat.frd, BSTEP=2
*NODE OUTPUT, DOUBLE
NT
*END STEP
*STEP
*STATIC, DIRECT
0.5, 1.
*TEMPERATURE
A, 20.
*END STEP
""")
    _check_nt(deck)


def test_temperature_encodings(tmp_path):
    """NDTEMP in ASCII, float32 and float64 .frd files: read_calculix's node field "temperature"."""
    mesh = box((2, 1, 1), (2.0, 1.0, 1.0))
    law = LinearElastic(2e5, 0.3, expansion=1.2e-5)
    hot = Temperature(np.arange(mesh.n_nodes), 20.0 + 123.456789 * mesh.nodes[:, 0] + 0.1, ramp(1.0), name="hot")
    problem = Problem(mesh, law, [Dirichlet(mesh.node_sets["xmin"], (0, 1, 2))], [0.0, 0.5, 1.0],
                      initial_temperature=0.0, temperatures=(hot,), name="enc")
    deck = write_deck(problem, tmp_path / "enc.inp")
    text = deck.read_text()
    got = {}
    for enc, card in (("float64", "*NODE OUTPUT, DOUBLE"), ("float32", "*NODE OUTPUT"), ("ascii", "*NODE FILE")):
        deck.write_text(text.replace("*NODE OUTPUT, DOUBLE", card))
        run_ccx(deck, timeout=60)
        run = read_calculix(deck, problem_metadata=False)
        assert run.fields["temperature"].location == "node" and run.fields["temperature"].components == ("T",)
        assert run.metadata["frd_encoding"] == enc
        got[enc] = np.array([f.data["temperature"][:, 0] for f in run.frames()])
    exact = np.array([problem.nodal_temperature(t) for t in (0.5, 1.0)])
    np.testing.assert_array_equal(got["float64"], exact)
    assert np.all(np.abs(got["float32"] - exact) <= 2.0**-24 * np.abs(exact))
    assert np.all(np.abs(got["ascii"] - exact) <= 5e-6 * np.abs(exact)) and not np.array_equal(got["ascii"], exact)


# ---- (a) temperature-dependent elasticity + expansion, transient nonuniform temperature ------------


def _heating_front(element: str, viscoplastic: bool = False) -> Problem:
    mesh = box((3, 2, 2), (30.0, 10.0, 10.0), element=element)
    tables = {"elastic": [(2e5, 0.3, 20.0), (1.5e5, 0.33, 620.0)], "expansion": [(1.2e-5, 20.0), (1.7e-5, 620.0)],
              "expansion_zero": 20.0}
    law = LinearElastic(**tables) if not viscoplastic else CalculixViscoplastic(
        plastic=[(250.0, 0.0, 20.0), (300.0, 0.02, 20.0), (120.0, 0.0, 620.0), (150.0, 0.02, 620.0)],
        norton=[(1e-12, 4.0, 0.0, 20.0), (1e-9, 4.0, 0.0, 620.0)], **tables)
    x = mesh.nodes[:, 0]
    layers = np.unique(x)
    temperatures = []
    for i, xi in enumerate(layers):  # CalculiX replaces a node's temperature: one pattern per node layer
        delay = 0.5 * np.floor(3 * i / (len(layers) - 1))  # the front reaches x = 30 at t = 1.5
        peak = 600.0 - 8.0 * xi
        amp = Amplitude([0.0, delay, delay + 1.0, 4.0], [20.0 / peak, 20.0 / peak, 1.0, 0.6])
        temperatures.append(Temperature(np.flatnonzero(x == xi), peak, amp, name=f"layer{i}"))
    fix = [Dirichlet(mesh.node_sets["xmin"], (0, 1, 2), name="clamp"),
           Dirichlet(mesh.node_sets["xmax"], (0,), name="wall")]
    return Problem(mesh, law, fix, np.linspace(0.0, 4.0, 9), initial_temperature=20.0,
                   temperatures=tuple(temperatures), name=f"front_{element}")


@pytest.mark.parametrize("element, law", [("C3D8", "elastic"), ("C3D10", "elastic"), ("C3D8", "viscoplastic")])
def test_heating_front_agrees_with_calculix(tmp_path, element, law):
    """write_deck's deck: one step per output interval for the elastic law (ccx solves a linear
    step in one increment), steps cut at the temperature amplitudes' breakpoints (*VISCO)."""
    start = time.perf_counter()
    problem = _heating_front(element, law == "viscoplastic")
    deck = write_deck(problem, tmp_path / f"{problem.name}.inp")
    n_steps = deck.read_text().count("*END STEP")
    assert n_steps == (8 if law == "elastic" else 6), n_steps  # breakpoints 0.5, 1, 1.5, 2, 2.5
    worst, back, res = _agreement(deck, ("displacement", "state") if law == "viscoplastic" else ("displacement",))
    if law == "viscoplastic":
        assert res.fields["state"][:, :, 0].max() > 1e-3
    for t in problem.times:
        np.testing.assert_allclose(back.nodal_temperature(t), problem.nodal_temperature(t), rtol=0, atol=1e-12)
    assert np.abs(res.displacement).max() > 0.05
    print(f"(a) {element} {law} heating front, tables in T: worst relative displacement difference vs ccx {worst:.2e} "
          f"({time.perf_counter() - start:.1f} s)")
    assert worst < TOLERANCE, worst


# ---- (b) viscoplastic law with temperature tables over a thermal cycle, deck by hand ----------------


def _rows(ids, per=8):
    ids = [str(i) for i in ids]
    return [", ".join(ids[i : i + per]) + "," for i in range(0, len(ids), per)]


def _cycle_deck(folder: Path, element: str) -> Path:
    mesh = box((4, 2, 2), (40.0, 10.0, 10.0), element=element)
    if element == "C3D10":
        mesh = gmsh_like(mesh, seed=5, n_unused=0)
    else:  # ids decreasing with gaps
        blocks = tuple(CellBlock(b.type, b.connectivity, 5 * np.arange(len(b)) + 2) for b in mesh.blocks)
        mesh = Mesh(mesh.nodes, blocks, 1000 - 7 * np.arange(mesh.n_nodes), mesh.node_sets, mesh.element_sets,
                    mesh.surfaces)
    lines = ["*NODE, NSET=NALL"] + [f"{i}, {x!r}, {y!r}, {z!r}" for i, (x, y, z) in zip(mesh.node_ids,
                                                                                       mesh.nodes.tolist())]
    lines.append(f"*ELEMENT, TYPE={element}, ELSET=BAR")
    for b in mesh.blocks:
        lines += [", ".join(map(str, [eid, *row])) for eid, row in zip(b.ids, mesh.node_ids[b.connectivity])]
    lines += ["*NSET, NSET=CLAMP"] + _rows(mesh.node_ids[mesh.node_sets["xmin"]])
    lines += ["*NSET, NSET=PULLED"] + _rows(mesh.node_ids[mesh.node_sets["xmax"]])
    (folder / "mesh.inc").write_text("\n".join(lines) + "\n")
    hot = "\n".join(f"{i}, {float(20.0 + 30.0 * y)!r}" for i, y in zip(mesh.node_ids, mesh.nodes[:, 1]))
    output = f"{CONTROLS}*NODE OUTPUT, DOUBLE\nU, NT\n*END STEP"
    deck = folder / "cycle.inp"
    deck.write_text(f"""*HEADING
thermal cycle of a pulled bar, written by hand
*INCLUDE, INPUT=mesh.inc
*MATERIAL, NAME=ALLOY
*ELASTIC
200000., 0.3, 20.
170000., 0.32, 400.
*PLASTIC, HARDENING=ISOTROPIC
200., 0., 20.
280., 0.01, 20.
120., 0., 400.
160., 0.02, 400.
*CREEP, LAW=NORTON
1e-12, 4., 0., 20.
1e-10, 4., 0., 400.
*EXPANSION, ZERO=20.
1.2e-5, 20.
1.5e-5, 400.
*SOLID SECTION, ELSET=BAR, MATERIAL=ALLOY
*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*AMPLITUDE, NAME=UP
0., 0.0666666666666667, 1., 1.
*AMPLITUDE, NAME=PULL, TIME=TOTAL TIME
0., 0., 1., 1., 3., 1., 4., 0.2
*BOUNDARY
CLAMP, 1, 3
** heat-up: per-node temperatures (20 + 30 y) times a step-time amplitude, the bar pulled
*STEP, INC=1000
{VISCO}
0.25, 1.
*TEMPERATURE, AMPLITUDE=UP
{hot}
*BOUNDARY, AMPLITUDE=PULL
PULLED, 1, 1, 0.1
{output}
** hold: the same values without amplitude (at once in *VISCO; without this card UP would
** ramp them again on the step time)
*STEP, INC=1000
{VISCO}
0.5, 2.
*TEMPERATURE
{hot}
{output}
** cool-down: ramped back to 20 over the step (AMPLITUDE=RAMP), the bar released
*STEP, INC=1000, AMPLITUDE=RAMP
{VISCO}
0.25, 1.
*TEMPERATURE
NALL, 20.
{output}
""")
    return deck


@pytest.mark.parametrize("element", ["C3D8", "C3D10"])
def test_viscoplastic_thermal_cycle_agrees_with_calculix(tmp_path, element):
    start = time.perf_counter()
    worst, problem, res = _agreement(_cycle_deck(tmp_path, element), fields=("displacement", "state"))
    law = problem.material
    assert isinstance(law, CalculixViscoplastic) and law.thermal and law.norton is not None
    assert res.fields["state"][:, :, 0].max() > 1e-3  # plastic and creeping
    print(f"(b) {element} viscoplastic thermal cycle: worst relative displacement difference vs ccx {worst:.2e} "
          f"({time.perf_counter() - start:.1f} s)")
    assert worst < TOLERANCE, worst


# ---- (c) centrifugal load with an amplitude, and gravity ---------------------------------------------


@pytest.mark.parametrize("element, law", [("C3D8", "elastic"), ("C3D10", "plastic")])
def test_centrifugal_and_gravity_agree_with_calculix(tmp_path, element, law):
    start = time.perf_counter()
    mesh = box((4, 2, 1), (40.0, 10.0, 5.0), origin=(20.0, -5.0, 0.0), element=element)
    material = LinearElastic(2e5, 0.3) if law == "elastic" else CalculixViscoplastic(2e5, 0.3, [(150.0, 0.0),
                                                                                              (250.0, 0.05)])
    spin = Centrifugal(np.arange(mesh.n_elements), 1e6 if law == "elastic" else 1.6e7, (0.0, 0.0, 0.0),
                       (0.0, 0.0, 2.0), 7.8e-9, Amplitude([0, 1, 2, 3], [0, 1, 0.2, 0.6]), name="spin")
    grav = Gravity(mesh.element_sets["all"], 9.81e3, (0.0, -3.0, 0.0), 7.8e-9, ramp(1.0), name="g")
    problem = Problem(mesh, material, [Dirichlet(mesh.node_sets["xmin"], (0, 1, 2), name="hub")],
                      np.linspace(0.0, 3.0, 7), loads=(spin, grav), name=f"spin_{element}")
    deck = write_deck(problem, tmp_path / f"{problem.name}.inp")
    fields = ("displacement",) if law == "elastic" else ("displacement", "state")
    worst, back, res = _agreement(deck, fields)
    loads = {ld.name: ld for ld in back.loads}
    assert loads["spin"].density == 7.8e-9 and loads["g"].value == 9.81e3
    if law == "plastic":
        assert res.fields["state"][:, :, 0].max() > 1e-3
    print(f"(c) {element} {law} centrifugal + gravity: worst relative displacement difference vs ccx {worst:.2e} "
          f"({time.perf_counter() - start:.1f} s)")
    assert worst < TOLERANCE, worst


def test_ingest_stores_the_temperature(tmp_path):
    """``romdask ingest`` of a thermal ccx run keeps the node field "temperature" (T)."""
    problem = _heating_front("C3D8")
    deck = write_deck(problem, tmp_path / "front.inp")
    run_ccx(deck, timeout=60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "romdask.cli", "ingest", str(deck), str(deck.with_suffix(".frd")),
                           "--store", str(tmp_path / "store.zarr")], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    from romdask.store.view import open_run

    ds = open_run(tmp_path / "store.zarr", "front")
    assert ds["temperature"].dims == ("step", "node", "component_temperature")
    assert ds["component_temperature"].values.tolist() == ["T"]
    index = problem.mesh.node_index(ds["node"].values)
    for k, t in enumerate(ds["time"].values):
        np.testing.assert_allclose(ds["temperature"].values[k, :, 0], problem.nodal_temperature(t)[index], rtol=1e-14)
    # the run's description rebuilds the deck's temperatures (read_problem's patterns)
    from romdask.problem.thermal import temperatures_from_description

    initial, patterns = temperatures_from_description(problem.mesh, ds.attrs["metadata"]["loads"])
    rebuilt = Problem(problem.mesh, problem.material, problem.dirichlet, problem.times, initial_temperature=initial,
                      temperatures=patterns)
    assert [p.name for p in patterns] == [p.name for p in problem.temperatures]
    for t in problem.times:
        np.testing.assert_array_equal(rebuilt.nodal_temperature(t), problem.nodal_temperature(t))


def test_solve_calculix_temperature_field(tmp_path):
    """solve_calculix(fields=(..., "temperature")): ccx's NT, the initial temperature in the zero
    frame, the problem's temperature at a node of no element (ccx does not write it)."""
    from romdask.hifi.calculix import solve_calculix

    cube = box((1, 1, 1))
    mesh = Mesh(np.vstack([cube.nodes, [[5.0, 5.0, 5.0]]]), cube.blocks, np.r_[cube.node_ids, 99],
                cube.node_sets, cube.element_sets, cube.surfaces)
    t0 = 20.0 + np.arange(9.0)
    hot = Temperature(np.arange(9), t0, Amplitude([0.0, 1.0], [1.0, 3.0]), name="hot")
    problem = Problem(mesh, LinearElastic(2e5, 0.3, expansion=1e-5), [Dirichlet(mesh.node_sets["xmin"], (0, 1, 2))],
                      [0.0, 0.5, 1.0], initial_temperature=t0, temperatures=(hot,), name="unused")
    res = solve_calculix(problem, tmp_path, fields=("displacement", "temperature"))
    np.testing.assert_array_equal(res.times, problem.times)
    expected = np.array([problem.nodal_temperature(t) for t in problem.times])
    np.testing.assert_allclose(res.fields["temperature"][:, :, 0], expected, rtol=1e-14)
    assert res.fields["temperature"][0, 8, 0] == 28.0 and res.fields["temperature"][2, 8, 0] == 84.0
