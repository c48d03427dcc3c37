"""read_problem / write_deck on thermomechanical decks written by hand (no ccx needed).

The expected temperatures are what ccx 2.20 printed (``NT``) for the same decks; the ccx runs
are in tests/hifi/test_calculix_thermal.py (``test_temperature_rules_match_ccx``).
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from romdask.fem.mesh import Mesh
from romdask.hifi.calculix import write_deck
from romdask.io.calculix import read_inp, read_problem, write_frd
from romdask.io.calculix.cards import deck_cards
from romdask.io.run import ReaderError
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.problem import Problem
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Gravity, Temperature, ramp
from romdask.problems.meshing import box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from thermal_decks import (  # noqa: E402
    CUBE, CUBE_1_8, FILE_AMPLITUDES, FILE_STEPS, MATERIAL, MATERIAL_1_8, NT_STATIC, NT_VISCO, RULES, TIMES, VISCO,
)


def _deck(tmp_path, text, name="deck.inp"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _temperatures(problem, nodes=(0, 2, 4)):
    return np.array([problem.nodal_temperature(t)[list(nodes)] for t in problem.times[1:]])


@pytest.mark.parametrize("proc, step, expected", [
    (VISCO, "*STEP", NT_VISCO), ("*STATIC, DIRECT", "*STEP", NT_STATIC), (VISCO, "*STEP, AMPLITUDE=RAMP", NT_STATIC),
])  # fmt: skip
def test_temperature_rules_of_ccx(tmp_path, proc, step, expected):
    deck = CUBE + MATERIAL + RULES.format(proc=proc).replace("*STEP\n", step + "\n")
    p = read_problem(_deck(tmp_path, deck))
    np.testing.assert_allclose(p.times[1:], TIMES)
    np.testing.assert_allclose(_temperatures(p), expected, rtol=0, atol=1e-12)
    assert p.nodal_temperature(0.0).tolist() == [20.0] * 8  # the first increment starts from T0
    assert {n for t in p.temperatures for n in t.nodes.tolist()} == {0, 1, 2, 3, 4}
    assert {t.name.split("@")[0] for t in p.temperatures} == {"A", "B", "45"}


def _heat_frd(tmp_path, mesh):
    """A heat-transfer results file: NDTEMP in 2 steps of 2 increments (node i: 100 k + i)."""
    temps = np.array([100.0 * k + np.arange(mesh.n_nodes) for k in range(1, 5)])
    disp = np.zeros((4, mesh.n_nodes, 3))
    return write_frd(tmp_path / "heat.frd", mesh, [0.5, 1.0, 1.5, 2.0], {"DISP": disp, "NDTEMP": temps},
                     steps=[1, 1, 2, 2], encoding="float32")


@pytest.mark.parametrize("proc", [VISCO, "*STATIC, DIRECT"])
def test_temperature_file_takes_the_last_increment_of_bstep(tmp_path, proc):
    """FILE=: the last NDTEMP block of step BSTEP (default 1), at once in *VISCO, ramped in
    *STATIC, as ccx 2.20 does (test_temperature_rules_match_ccx runs the same rules)."""
    path = _deck(tmp_path, CUBE + MATERIAL + FILE_STEPS.format(proc=proc))
    mesh = read_inp(_deck(tmp_path, CUBE, "mesh.inp"))
    _heat_frd(tmp_path, mesh)
    p = read_problem(path)
    i = np.arange(8)
    got = np.array([p.nodal_temperature(t) for t in p.times])
    step2, step1 = 400.0 + i, 200.0 + i
    if proc == VISCO:
        expected = [20 + 0 * i, step2, step2, step2, step2, step1, step1]
    else:
        expected = [20 + 0 * i, (20 + step2) / 2, step2, step2, step2, (step2 + step1) / 2, step1]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert all(t.name.startswith("heat.frd") for t in p.temperatures)


def test_temperature_errors_name_the_deck_and_line(tmp_path):
    start = CUBE + MATERIAL
    n = len(start.splitlines())
    cases = [
        ("*STEP\n*STATIC\n*TEMPERATURE\nA, 10.\n*END STEP\n",
         rf"line {n + 3}: \*TEMPERATURE without \*INITIAL CONDITIONS,TYPE=TEMPERATURE"),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nA, 20.\n*STEP\n*STATIC\n*END STEP\n",
         r"6 node\(s\) of elements have no initial temperature .*marker 1.2357111317"),
        ("*INITIAL CONDITIONS, TYPE=STRESS\nEALL, 1., 1., 1., 0., 0., 0.\n*STEP\n*STATIC\n*END STEP\n",
         r"\*INITIAL CONDITIONS option\(s\) TYPE=STRESS"),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*STEP\n*STATIC\n*TEMPERATURE, OP=NEW\nA, 10.\n*END STEP\n",
         "OP=NEW"),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*STEP\n*STATIC\n*TEMPERATURE, FILE=heat.frd, BSTEP=1, "
         "ESTEP=1\n*END STEP\n", "CalculiX 2.20 ignores ESTEP="),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*STEP\n*STATIC\n*TEMPERATURE, FILE=missing.frd\n"
         "*END STEP\n", rf"line {n + 5}: \*TEMPERATURE,FILE=missing.frd: no such results file"),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*STEP\n*STATIC\n*TEMPERATURE\nNOSET, 10.\n*END STEP\n",
         rf"line {n + 6}: unknown node set 'NOSET'"),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*STEP\n*STATIC\n*TEMPERATURE, AMPLITUDE=NONE\nA, 1.\n"
         "*END STEP\n", "unknown amplitude NONE"),
        ("*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*TEMPERATURE\nA, 1.\n*STEP\n*STATIC\n*END STEP\n",
         r"\*TEMPERATURE outside a \*STEP"),
    ]
    for steps, message in cases:
        path = _deck(tmp_path, start + steps, "bad.inp")
        with pytest.raises(ReaderError, match=message) as err:
            read_problem(path)
        assert str(path) in str(err.value)


def test_thermal_law_without_initial_temperature_is_refused(tmp_path):
    path = _deck(tmp_path, CUBE + MATERIAL + "*STEP\n*VISCO, DIRECT, CETOL=1e6\n0.5, 1.\n*END STEP\n")
    with pytest.raises(ReaderError, match="no \\*INITIAL CONDITIONS,TYPE=TEMPERATURE: CalculiX would run it "
                                          "athermally"):
        read_problem(path)


BODY = """*NODE, NSET=NALL
1, 0, 0, 0
3, 1, 0, 0
5, 1, 1, 0
7, 0, 1, 0
9, 0, 0, 1
11, 1, 0, 1
13, 1, 1, 1
15, 0, 1, 1
17, 2, 0, 0
19, 2, 1, 0
21, 2, 0, 1
23, 2, 1, 1
*ELEMENT, TYPE=C3D8, ELSET=EALL
10, 1, 3, 5, 7, 9, 11, 13, 15
20, 3, 17, 19, 5, 11, 21, 23, 13
*ELSET, ELSET=E10
10
*ELSET, ELSET=E20
20
*NSET, NSET=LEFT
1, 7, 9, 15
*MATERIAL, NAME=STEEL
*ELASTIC
210000., 0.3
*DENSITY
7.8e-9
*MATERIAL, NAME=ALU
*DENSITY
2.7e-9
*ELASTIC
70000., 0.33
*SOLID SECTION, ELSET=E10, MATERIAL=STEEL
*SOLID SECTION, ELSET=E20, MATERIAL=ALU
*AMPLITUDE, NAME=SPIN, TIME=TOTAL TIME
0., 0., 1., 1., 2., 0.25
*BOUNDARY
LEFT, 1, 3
*STEP
*STATIC, DIRECT
0.5, 1.
** romdask name=rotor
*DLOAD, AMPLITUDE=SPIN
EALL, CENTRIF, 1e6, 0., 0., 0., 0., 0., 2.
*DLOAD
E20, GRAV, 9810., 0., -3., 4.
*END STEP
*STEP
*STATIC, DIRECT
0.5, 1.
*END STEP
"""


def test_body_forces_take_the_density_of_their_material(tmp_path):
    p = read_problem(_deck(tmp_path, BODY))
    loads = {ld.name: ld for ld in p.loads}
    assert sorted(loads) == ["E20", "rotor", "rotor_rho2"]  # one pattern per density
    alu, steel = loads["rotor"], loads["rotor_rho2"]  # densities in increasing order
    assert isinstance(alu, Centrifugal) and alu.density == 2.7e-9 and alu.elements.tolist() == [1]
    assert steel.density == 7.8e-9 and steel.elements.tolist() == [0]
    np.testing.assert_array_equal(alu.axis, [0, 0, 1])  # normalized, as CalculiX does
    for load in (alu, steel):
        np.testing.assert_allclose([load.scale(t) * load.value for t in p.times], [0, 5e5, 1e6, 6.25e5, 2.5e5])
    grav = loads["E20"]
    assert isinstance(grav, Gravity) and grav.density == 2.7e-9 and grav.elements.tolist() == [1]
    np.testing.assert_allclose(grav.direction, [0, -0.6, 0.8])
    np.testing.assert_allclose([grav.scale(t) * grav.value for t in p.times], [0, 4905, 9810, 9810, 9810])
    text = BODY.replace("*DENSITY\n2.7e-9\n", "")
    bad = _deck(tmp_path, text, "bad.inp")
    n = text.splitlines().index("EALL, CENTRIF, 1e6, 0., 0., 0., 0., 0., 2.") + 1
    with pytest.raises(ReaderError, match=rf"bad.inp: line {n}: rotor: \*DLOAD CENTRIF on elements without "
                                          r"\*DENSITY in their material \(ids \[20\]\)"):
        read_problem(bad)
    bad.write_text(BODY.replace("E20, GRAV, 9810., 0., -3., 4.", "E20, GRAV, 9810., 0., -3."))
    with pytest.raises(ReaderError, match=r"\*DLOAD GRAV lines are 'element set, GRAV, g, dx, dy, dz'"):
        read_problem(bad)


def _thermal_problem(mesh, temperatures, loads=(), law=None):
    law = law or LinearElastic(elastic=[(2e5, 0.3, 20.0), (1.6e5, 0.32, 600.0)], expansion=1.2e-5)
    return Problem(mesh, law, [Dirichlet(mesh.node_sets["xmin"], (0, 1, 2), name="clamp")],
                   np.linspace(0.0, 2.0, 5), loads=loads, initial_temperature=20.0 + mesh.nodes[:, 1],
                   temperatures=temperatures, name="thermal")


def test_write_deck_read_back(tmp_path):
    """write_deck -> read_problem gives the same temperatures at every time, the patterns with
    their names and tables, the body forces with their densities and amplitudes."""
    mesh = box((2, 2, 1), (2.0, 2.0, 1.0))
    up = Amplitude([0.0, 1.0, 2.0], [1.0, 3.0, 2.0])
    right = mesh.node_sets["xmax"]
    hot = Temperature(right, 20.0 + mesh.nodes[right, 1], up, name="hot")
    spin = Centrifugal(np.arange(mesh.n_elements), 4e6, (0, 0, 0), (0, 1, 0), 7.8e-9, ramp(2.0), name="spin")
    grav = Gravity([0, 1], 9810.0, (0, 0, -1), 7.8e-9, up, name="g")
    problem = _thermal_problem(mesh, (hot,), (spin, grav))
    deck = write_deck(problem, tmp_path / "t.inp")
    text = deck.read_text()
    assert "*INITIAL CONDITIONS, TYPE=TEMPERATURE" in text and "*DENSITY\n7.8e-09" in text and "U, NT" in text
    back = read_problem(deck)
    for t in back.times:
        np.testing.assert_allclose(back.nodal_temperature(t), problem.nodal_temperature(t), rtol=0, atol=1e-12)
    (pattern,) = back.temperatures
    assert pattern.name == "hot" and np.array_equal(pattern.amplitude.values, up.values)
    np.testing.assert_array_equal(back.initial_temperature, problem.initial_temperature)
    loads = {ld.name: ld for ld in back.loads}
    assert loads["spin"].density == 7.8e-9 and loads["spin"].value == 4e6
    np.testing.assert_array_equal(loads["g"].elements, [0, 1])
    for t in back.times:
        assert loads["g"].scale(t) == grav.scale(t) and loads["spin"].scale(t) == spin.scale(t)
    # uniform initial temperature: one line on an all-node set
    uniform = Problem(mesh, problem.material, problem.dirichlet, problem.times, initial_temperature=20.0,
                      temperatures=(hot,))
    cards = deck_cards(write_deck(uniform, tmp_path / "u.inp"))
    (ic,) = [c for c in cards if c.keyword == "*INITIAL CONDITIONS"]
    assert len(ic.rows) == 1 and ic.rows[0][1] == ["N_ALL", "20.0"]


def test_write_deck_patterns_sharing_nodes(tmp_path):
    mesh = box((2, 1, 1), (2.0, 1.0, 1.0))
    everywhere = np.arange(mesh.n_nodes)
    a = Temperature(everywhere, 20.0, ramp(2.0), name="base")
    b = Temperature(mesh.node_sets["xmax"], 100.0, ramp(2.0), name="extra")
    problem = _thermal_problem(mesh, (a, b))
    back = read_problem(write_deck(problem, tmp_path / "sum.inp"))  # equal amplitudes: one card of the sums
    # (T(0) = 0 is not T0: ccx starts from T0, so the deck's table is not the read problem's)
    assert {t.name.split("@")[0] for t in back.temperatures} == {"base+extra"}
    np.testing.assert_array_equal(back.nodal_temperature(0.0), problem.initial_temperature)
    for t in back.times[1:]:
        np.testing.assert_allclose(back.nodal_temperature(t), problem.nodal_temperature(t), rtol=0, atol=1e-12)
    c = Temperature(mesh.node_sets["xmax"], 100.0, Amplitude([0.0, 2.0], [1.0, 0.0]), name="other")
    with pytest.raises(ValueError, match=r"temperature patterns \['base', 'other'\] share nodes .* different "
                                         "amplitudes; CalculiX's \\*TEMPERATURE replaces"):
        write_deck(_thermal_problem(mesh, (a, c)), tmp_path / "bad.inp")
    spin_a = Centrifugal([0], 1e6, (0, 0, 0), (0, 0, 1), 7.8e-9, name="a")
    spin_b = Gravity([0, 1], 1e4, (0, 0, 1), 2.7e-9, name="b")
    with pytest.raises(ValueError, match=r"body forces with different densities \[2.7e-09, 7.8e-09\]"):
        write_deck(_thermal_problem(mesh, (a,), (spin_a, spin_b)), tmp_path / "bad.inp")


def test_include_and_gapped_sets_with_a_viscoplastic_table_law(tmp_path):
    """Mesh and sets in an *INCLUDE, node sets with gapped ids, per-node temperature lines, the
    viscoplastic law with temperature tables: the problem's law and temperatures."""
    (tmp_path / "mesh.inc").write_text(CUBE)
    deck = ("*INCLUDE, INPUT=mesh.inc\n*MATERIAL, NAME=HOT\n*ELASTIC\n200000., 0.3, 20.\n170000., 0.32, 400.\n"
            "*PLASTIC\n200., 0., 20.\n120., 0., 400.\n*CREEP, LAW=NORTON\n1e-12, 4., 0., 20.\n1e-10, 4., 0., 400.\n"
            "*EXPANSION, ZERO=20.\n1.2e-5, 20.\n1.5e-5, 400.\n*SOLID SECTION, ELSET=EALL, MATERIAL=HOT\n"
            "*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n45, 25.\n*STEP\n" + VISCO + "\n0.5, 1.\n"
            "*TEMPERATURE\n1, 300.\nB, 200.\n12, 250.\n*END STEP\n")
    p = read_problem(_deck(tmp_path, deck))
    assert isinstance(p.material, CalculixViscoplastic) and p.material.thermal
    assert p.initial_temperature.tolist() == [20.0] * 4 + [25.0] + [20.0] * 3
    np.testing.assert_allclose(p.nodal_temperature(0.5), [300, 250, 200, 200, 25, 20, 20, 20])
    np.testing.assert_allclose(p.nodal_temperature(0.0), p.initial_temperature)


def test_heat_file_node_ids_must_be_the_decks(tmp_path):
    mesh = box((1, 1, 1))
    write_frd(tmp_path / "heat.frd", mesh, [1.0], {"DISP": np.zeros((1, 8, 3)), "NDTEMP": np.ones((1, 8))})
    path = _deck(tmp_path, CUBE + MATERIAL + "*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, 20.\n*STEP\n*STATIC\n"
                 "*TEMPERATURE, FILE=heat.frd\n*END STEP\n")
    with pytest.raises(ReaderError, match="node ids of the results file not in the deck"):
        read_problem(path)
    assert Path(tmp_path / "heat.frd").is_file()


def test_amplitude_breakpoints_between_output_times_are_not_knots(tmp_path):
    """ccx evaluates a temperature at the increments' ends only: a breakpoint at t = 0.3 between
    the output times 0.25 and 0.5 is not a knot (the built-in solver would cut there)."""
    deck = CUBE + MATERIAL + """*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 0.
*AMPLITUDE, NAME=PEAK, TIME=TOTAL TIME
0., 0., 0.3, 1., 1., 0.
*STEP
*VISCO, DIRECT, CETOL=1e6
0.25, 1.
*TEMPERATURE, AMPLITUDE=PEAK
A, 100.
*END STEP
"""
    p = read_problem(_deck(tmp_path, deck))
    (pattern,) = p.temperatures
    assert set(pattern.amplitude.times.tolist()) <= set(p.times.tolist())
    peak = Amplitude([0.0, 0.3, 1.0], [0.0, 1.0, 0.0])
    for t in p.times:
        np.testing.assert_allclose(p.nodal_temperature(t)[[0, 1]], 100.0 * peak(t), rtol=1e-14)


def test_write_deck_densities_per_material(tmp_path):
    """A body force over two materials: *DENSITY in both; read back as one pattern."""
    cubes = box((2, 1, 1), (2.0, 1.0, 1.0))
    mesh = Mesh(cubes.nodes, cubes.blocks, cubes.node_ids, cubes.node_sets,
                {"left": np.array([0]), "right": np.array([1])}, cubes.surfaces)
    spin = Centrifugal([0, 1], 1e6, (0, 0, 0), (0, 0, 1), 7.8e-9, ramp(1.0), name="spin")
    problem = Problem(mesh, {"left": LinearElastic(2e5, 0.3), "right": LinearElastic(7e4, 0.33)},
                      [Dirichlet(mesh.node_sets["xmin"], (0, 1, 2))], [0.0, 1.0], loads=(spin,))
    deck = write_deck(problem, tmp_path / "two.inp")
    assert deck.read_text().count("*DENSITY\n7.8e-09") == 2
    (load,) = read_problem(deck).loads
    assert load.name == "spin" and load.elements.tolist() == [0, 1] and load.density == 7.8e-9


@pytest.mark.parametrize("body", ["", "*DLOAD\nEALL, GRAV, 1., 0., 0., -1.\n"])
def test_file_keeps_amplitudes_and_ccx_resets_one_node(tmp_path, body):
    """FILE= sets the values and keeps each node's amplitude (iamt1); *STEP,AMPLITUDE=RAMP does
    not ramp a FILE= field (its nodes have no amplitude); after a step, ccx 2.20 drops the
    step-time amplitude of node 3 nbody + 2 only (tests/hifi: the same deck run by ccx)."""
    path = _deck(tmp_path, CUBE_1_8 + MATERIAL_1_8 + FILE_AMPLITUDES.format(proc=VISCO, body=body))
    _heat_frd(tmp_path, read_inp(_deck(tmp_path, CUBE_1_8, "mesh.inp")))
    p = read_problem(path)
    i = np.arange(8.0)
    got = {t: p.nodal_temperature(t) for t in p.times}
    np.testing.assert_allclose(got[0.25], 200 + i)  # BSTEP=1 at once despite AMPLITUDE=RAMP
    np.testing.assert_allclose(got[1.25], 12.5 + 0 * i)  # UP on the step time
    reset = 1 if not body else 4  # node 2 (index 1), or node 5 (index 4) with one body load
    expected = (400 + i) * 0.5
    expected[reset] = 400 + reset  # no amplitude any more: at once in *VISCO
    np.testing.assert_allclose(got[2.5], expected)
    np.testing.assert_allclose(got[3.0], 400 + i)
