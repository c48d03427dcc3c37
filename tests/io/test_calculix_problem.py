"""read_problem / read_calculix on decks written by hand as users write them (no ccx needed).

The ccx runs of such decks are in tests/hifi/test_calculix_user_decks.py.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from romdask.io.calculix import read_calculix, read_inp
from romdask.io.calculix.cards import deck_lines, keyword, parameters, tokens
from romdask.io.calculix.problem import read_problem
from romdask.io.run import ReaderError
from romdask.materials import CalculixViscoplastic
from romdask.problem.patterns import describe_loads, loads_from_description

DATA = Path(__file__).parent / "data" / "calculix"

# two unit cubes along x, C3D8, ids with gaps; element 10 at x in [0, 1], 20 at [1, 2]
CUBES = """*NODE, NSET=NALL
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
*NSET, NSET=LEFT
1, 7, 9, 15
*NSET, NSET=RIGHT
17, 19, 21, 23
*ELSET, ELSET=E20
20
"""
MATERIAL = """*MATERIAL, NAME=STEEL
*ELASTIC
210000., 0.3
*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL
*BOUNDARY
LEFT, 1, 3
"""


def _deck(tmp_path, text, name="deck.inp"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cards_read_as_calculix_reads_them(tmp_path):
    path = _deck(tmp_path, "** top\n*Node File , Frequency = 2\nu\n  **  comment\n*amplitude,name = a1, time=total time\n"
                           "0., 0.,\n1.D0 , 2.5\n")
    lines = list(deck_lines(path))
    assert [ln.number for ln in lines] == [2, 3, 5, 6, 7]
    assert keyword(lines[0].text) == "*NODE FILE" and parameters(lines[0]) == {"FREQUENCY": "2"}
    assert keyword(lines[2].text) == "*AMPLITUDE"
    assert parameters(lines[2]) == {"NAME": "A1", "TIME": "TOTALTIME"}
    assert tokens(lines[3]) == ["0.", "0."] and tokens(lines[4]) == ["1.D0", "2.5"]


def test_named_surface_pressure_forms(tmp_path):
    """*DLOAD / *DSLOAD 'surface, P, value' on a named element-face surface (by element set and
    by element id) give the faces of 'element, P<n>, value'."""
    steps = """*STEP
*STATIC, DIRECT
0.5, 1.
*DLOAD
LOAD, P, 16.
*DSLOAD
load2, p, 8.
*DLOAD
20, P5, 4.
E20, P6, 2.
E20, P6, 1.
*END STEP
"""
    surfaces = "*SURFACE, NAME=LOAD, TYPE=ELEMENT\nE20, S4\n*Surface, name=Load2\n20, S3\n10,S6\n"
    p = read_problem(_deck(tmp_path, CUBES + surfaces + MATERIAL + steps))
    by_name = {load.name: load for load in p.loads}
    assert sorted(by_name) == ["20", "E20", "LOAD", "LOAD2"]
    np.testing.assert_array_equal(by_name["LOAD"].faces, [[1, 3]])
    np.testing.assert_array_equal(by_name["LOAD2"].faces, [[1, 2], [0, 5]])
    np.testing.assert_array_equal(by_name["20"].faces, [[1, 4]])
    np.testing.assert_array_equal(by_name["E20"].faces, [[1, 5]])
    assert by_name["LOAD"].value == 16.0 and by_name["LOAD"].scale(0.5) == 0.5  # ramped (*STATIC)
    assert by_name["E20"].value == 3.0  # loads on one face in one step add up, as in CalculiX
    bad = _deck(tmp_path, CUBES + MATERIAL + steps.replace("LOAD, P, 16.", "E20, P, 16."), "bad.inp")
    with pytest.raises(ReaderError, match=r"bad.inp: line \d+: pressure label 'P' on element set E20: use P1..P6"):
        read_problem(bad)
    bad.write_text(CUBES + MATERIAL + steps.replace("LOAD, P, 16.", "LOAD, TRVEC, 16.,1,0,0"))
    with pytest.raises(ReaderError, match="only pressures P, P1..P6 and body forces CENTRIF, GRAV are supported"):
        read_problem(bad)


def test_boundary_and_cload_forms(tmp_path):
    """*BOUNDARY 'node, first, last, value', 'node, dof', 'set, first, last'; *CLOAD on a set and
    on a node id; dofs merged per node set and split per direction for forces."""
    steps = """*STEP
*STATIC
1., 1.
*BOUNDARY
17, 1, 1, 0.01
19, 2
RIGHT, 3, 3
*CLOAD
RIGHT, 2, 5.
23, 1, -2.
*END STEP
"""
    p = read_problem(_deck(tmp_path, CUBES + MATERIAL + steps))
    d = {bc.name: bc for bc in p.dirichlet}
    assert sorted(d) == ["17", "19", "LEFT", "RIGHT"]
    assert d["17"].components == (0,) and d["17"].value == 0.01 and d["17"].scale(1.0) == 0.01
    assert d["19"].components == (1,) and d["19"].value == 0.0
    assert d["LEFT"].components == (0, 1, 2) and len(d["LEFT"].nodes) == 4
    forces = {(f.name, f.component): f for f in p.loads}
    assert sorted(forces) == [("23", 0), ("RIGHT_2", 1)]  # names are unique across all patterns
    assert forces[("23", 0)].value == -2.0 and len(forces[("RIGHT_2", 1)].nodes) == 4
    bad = _deck(tmp_path, CUBES + MATERIAL + steps.replace("19, 2", "19, 5"), "bad.inp")
    with pytest.raises(ReaderError, match=r"line \d+: \*BOUNDARY dofs 5..5: only displacements 1..3"):
        read_problem(bad)
    bad.write_text(CUBES + MATERIAL + steps.replace("23, 1, -2.", "24, 1, -2."))
    with pytest.raises(ReaderError, match="unknown node id 24"):
        read_problem(bad)
    bad.write_text(CUBES + MATERIAL + "*CLOAD\nRIGHT, 1, 1.\n" + steps)
    with pytest.raises(ReaderError, match=r"\*CLOAD outside a \*STEP \(CalculiX accepts it only within a step\)"):
        read_problem(bad)


def test_deck_syntax_users_write(tmp_path):
    """Any case, blanks around '=' and commas, '**' comments inside data blocks, a C3D20 element
    over three lines, nested *INCLUDE (relative to the deck's folder and to the including file),
    harmless output cards, a dot in the file name."""
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "nodes.inc").write_text(
        "".join(f"{100 + 2 * i}, {x}, {y}, {z}\n** a comment between nodes\n"
                for i, (x, y, z) in enumerate(_hex20_nodes())))
    (tmp_path / "mesh" / "part.inp").write_text(
        "*node, nset = nall\n*include, input = nodes.inc\n"  # relative to this file
        "*Element , Type = C3D20R , Elset = Eall\n7, 100, 102, 104, 106, 108, 110, 112,\n"
        "** comment inside the element's lines\n114, 116, 118, 120, 122, 124, 126,\n"
        "128, 130, 132, 134, 136, 138\n")
    left = [100 + 2 * i for i, x in enumerate(_hex20_nodes()) if x[0] == 0.0]
    deck = ("*Heading\n anything, even *stars\n*INCLUDE, INPUT=mesh/part.inp\n"  # relative to the deck's folder
            "*nset, nset=Left\n" + ",\n".join(str(n) for n in left) + ",\n"
            "*Surface, Name = Pull\nEall, s2\n"
            "*material, name=steel\n*density\n7.8e-9\n*elastic\n2.1D5 , 0.3\n*plastic, hardening = kinematic\n"
            "300., 0.\n400., 0.1\n*creep, law = norton\n1e-12, 4.\n"
            "*solid section, elset = eall, material = STEEL\n"
            "*amplitude , name = Up , time = total time\n0., 0., 1., 1.\n"
            "*boundary\nleft, 1, 3\n*Step, Inc = 100\n*Visco, Direct, CETOL = 1e6\n0.25, 1.\n"
            "*dsload, amplitude = up\npull, P, -10.\n*node file, frequency = 2\nU\n*el file\nS\n*output, frequency=1\n"
            "*file format, ascii\n*section print, surface=pull, name=sp1\nSOF\n*time points, name=tp\n0.5\n"
            "*controls, parameters = field\n1e-9,1e-9,,,1e-9,1e-9\n*end step\n")
    path = _deck(tmp_path, deck, "beam_a0.05.inp")
    p = read_problem(path)
    assert p.name == "beam_a0.05"
    assert [b.type for b in p.mesh.blocks] == ["C3D20R"] and p.mesh.n_nodes == 20
    assert isinstance(p.material, CalculixViscoplastic) and p.material.young == 2.1e5
    assert p.material.hardening == "kinematic" and p.material.norton[:2] == (1e-12, 4.0)
    np.testing.assert_allclose(p.times, [0, 0.25, 0.5, 0.75, 1.0])
    (bc,), (pull,) = p.dirichlet, p.loads
    assert bc.name == "LEFT" and len(bc.nodes) == 8 and bc.components == (0, 1, 2)
    assert pull.name == "PULL" and pull.value == -10.0 and pull.scale(0.5) == 0.5
    np.testing.assert_array_equal(pull.faces, [[0, 1]])


def _hex20_nodes():
    corners = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    mids = [tuple((np.add(corners[a], corners[b]) / 2).tolist()) for a, b in edges]
    return [tuple(float(v) for v in c) for c in corners] + mids


def test_amplitudes_over_several_steps(tmp_path):
    """Total-time and step-time amplitudes, ramps and loads applied at once, step after step, as
    CalculiX applies them (checked with ccx 2.20 in tests/hifi/test_calculix_user_decks.py)."""
    deck = CUBES + MATERIAL + """*AMPLITUDE, NAME=UP
0., 0., 1., 1.
*AMPLITUDE, NAME=DOWN
0., 1., 2., -0.5
*AMPLITUDE, NAME=TOTAL, TIME=TOTAL TIME
0., 0., 3., 3.
*STEP
*VISCO, DIRECT, CETOL=1e6
0.5, 1.
*DLOAD, AMPLITUDE=UP
E20, P4, 10.
*CLOAD, AMPLITUDE=TOTAL
RIGHT, 1, 2.
*CLOAD
RIGHT, 2, 3.
*END STEP
*STEP
*VISCO, DIRECT, CETOL=1e6
0.5, 2.
*DLOAD, AMPLITUDE=DOWN
E20, P4, 10.
*CLOAD
RIGHT, 2, 6.
*END STEP
"""
    p = read_problem(_deck(tmp_path, deck))
    np.testing.assert_allclose(p.times, [0, 0.5, 1, 1.5, 2, 2.5, 3])
    loads = {(ld.name, getattr(ld, "component", None)): ld for ld in p.loads}
    t = p.times
    pressure = loads[("E20", None)]  # step time: 10 a_UP(t) in step 1, 10 a_DOWN(t - 1) in step 2
    np.testing.assert_allclose(pressure.value * pressure.amplitude(t), [0, 5, 10, 6.25, 2.5, -1.25, -5])
    total = loads[("RIGHT", 0)]  # names unique: the other direction is RIGHT_2  # total time, carried into step 2: the deck's table itself
    np.testing.assert_array_equal(total.amplitude.times, [0, 3])
    np.testing.assert_allclose(total.value * total.amplitude(t), 2 * t)
    once = loads[("RIGHT_2", 1)]  # *VISCO without amplitude: at once; 3 -> 6 over step 2's first increment
    np.testing.assert_allclose(once.value * once.amplitude(t), [3, 3, 3, 6, 6, 6, 6])
    json.dumps(describe_loads(p))  # the description of the patterns is JSON
    later = _deck(tmp_path, deck.replace("*CLOAD\nRIGHT, 2, 6.", "*BOUNDARY\nRIGHT, 2, 2, 0.1"), "later.inp")
    with pytest.raises(ReaderError, match="first applied in step 2 is not supported"):
        read_problem(later)


def test_automatic_increments_take_the_run_times(tmp_path):
    deck = CUBES + MATERIAL + "*STEP\n*STATIC\n0.3, 1.\n*CLOAD\nRIGHT, 1, 1.\n*END STEP\n"
    path = _deck(tmp_path, deck)
    with pytest.raises(ReaderError, match=r"not a whole number of increments 0.3; pass the run's output times"):
        read_problem(path)
    p = read_problem(path, times=[0.3, 0.65, 0.999999])  # the .frd's 6 digits: snapped to the step end
    np.testing.assert_array_equal(p.times, [0, 0.3, 0.65, 1.0])
    with pytest.raises(ReaderError, match="after the end of the last step"):
        read_problem(path, times=[0.5, 1.5])


def test_read_calculix_records_the_problem(tmp_path):
    """A dot in the stem; the run's metadata rebuilds the deck's patterns on the run mesh; the
    shipped deck's *VISCO loads without amplitude are applied at once, as ccx did: the stored
    displacement of the loaded nodes is the pattern's value at every .frd time."""
    for suffix in (".inp", ".frd", ".dat"):
        shutil.copy(DATA / f"c3d20{'_float64' if suffix == '.frd' else ''}{suffix}", tmp_path / f"beam_a0.05{suffix}")
    shutil.copy(DATA / "c3d20_nodes.inc", tmp_path)
    run = read_calculix(tmp_path / "beam_a0.05.inp")
    assert run.name == "beam_a0.05" and [p.name for p in run.sources] == ["beam_a0.05.inp", "beam_a0.05.frd",
                                                                          "beam_a0.05.dat"]
    meta = json.loads(json.dumps(run.metadata))
    assert meta["material"]["type"] == "CalculixViscoplastic" and "problem_error" not in meta
    dirichlet, loads = loads_from_description(run.mesh, meta["loads"])
    assert not loads and {bc.name for bc in dirichlet} >= {"FIX", "LOAD"}
    frames = list(run.frames())
    for bc in dirichlet:
        for frame in frames:
            u = frame.data["displacement"][bc.nodes][:, bc.components]
            np.testing.assert_allclose(u, bc.scale(frame.time), rtol=0, atol=1e-15)


def test_read_calculix_unsupported_deck_keeps_the_snapshots(tmp_path, caplog):
    text = (DATA / "c3d10.inp").read_text().replace("*SOLID SECTION",
                                                    "*HYPERELASTIC, NEO HOOKE\n1., 1.\n*SOLID SECTION", 1)
    (tmp_path / "run.inp").write_text(text)
    shutil.copy(DATA / "c3d10_float64.frd", tmp_path / "run.frd")
    shutil.copy(DATA / "c3d10_nodes.inc", tmp_path)
    run = read_calculix(tmp_path / "run.frd")
    assert "loads" not in run.metadata
    assert "line " in run.metadata["problem_error"] and "*HYPERELASTIC" in run.metadata["problem_error"]
    assert "romdask reduce will refuse this run" in caplog.text
    assert len(list(run.frames())) == run.n_steps
    assert "problem_error" not in read_calculix(tmp_path / "run.frd", problem_metadata=False).metadata


def test_include_errors_name_the_file_and_line(tmp_path):
    path = _deck(tmp_path, "*NODE\n*INCLUDE, INPUT=missing.inc\n")
    with pytest.raises(ReaderError, match=r"deck.inp: line 2: \*INCLUDE file missing.inc not found"):
        read_inp(path)
    (tmp_path / "materials.inc").write_text("** materials\n*MATERIAL, NAME=STEEL\n*ELASTIC\n210000., 0.3\n"
                                           "*HYPERELASTIC, NEO HOOKE\n1., 1.\n")
    path = _deck(tmp_path, CUBES + "*INCLUDE, INPUT=materials.inc\n*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL\n"
                           "*STEP\n*STATIC\n*CLOAD\nRIGHT, 1, 1.\n*END STEP\n*EQUATION\n", "inc.inp")
    with pytest.raises(ReaderError) as err:
        read_problem(path)
    n = len(CUBES.splitlines())
    assert f"{tmp_path / 'materials.inc'} line 5: keyword *HYPERELASTIC" in str(err.value)
    assert f"line {n + 8}: keyword *EQUATION" in str(err.value) and "2 unsupported" in str(err.value)
