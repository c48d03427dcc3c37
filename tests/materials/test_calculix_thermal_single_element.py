"""One C3D8 and one C3D10 element with temperature-dependent materials, run by the real CalculiX.

Every node gets u = eps(t) . x (a prescribed strain history through yield, back and a hold) and
a temperature ``*TEMPERATURE,AMPLITUDE=`` (amplitude(t) x nodal value) from ``*INITIAL
CONDITIONS,TYPE=TEMPERATURE``; the material has 3 *ELASTIC temperatures, 3 *PLASTIC curves
(merged by plmix.f in between), *CREEP at other temperatures (creeps.f resamples them at the
*ELASTIC ones) and *EXPANSION,ZERO=. The temperatures start below the tables (20) and leave
them above 420 in the middle of the run. The deck is written here by hand; its materials are read with
:func:`romdask.io.calculix.laws.deck_laws` (so the reader is checked against ccx too) and the
law is replayed along ccx's own float64 displacements (``*NODE OUTPUT,DOUBLE``) with the
integration-point temperatures of :func:`romdask.fem.temperature.temperature_operator`.
``*EL PRINT`` has 7 significant digits (rounding <= 5e-7 relative): stresses and state variables
are compared to 1e-6 relative (+ 1e-6 MPa, 1e-9 for the state).
"""

import shutil

import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.fem.quadrature import quadrature, strain
from romdask.fem.temperature import temperature_operator
from romdask.hifi.calculix import run_ccx
from romdask.hifi.calculix.deck import (
    format_number as fmt,  # <= 20 characters, exact when it fits
)
from romdask.io.calculix.cards import deck_cards
from romdask.io.calculix.dat import read_dat
from romdask.io.calculix.frd import read_frd
from romdask.io.calculix.laws import deck_laws
from romdask.materials import CalculixViscoplastic, LinearElastic

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")

HEX = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
_CORNERS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
_EDGES = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]  # C3D10 mid-side nodes 5..10
TET = np.vstack([_CORNERS, [(_CORNERS[a] + _CORNERS[b]) / 2 for a, b in _EDGES]])
DIRECTION = 0.006 * np.array([1.0, -0.3, -0.2, 0.5, 0.2, -0.4])
# amplitudes (total time): displacement through yield, back, hold, reload; temperature heats
# from below the first table temperature (20) past the last one (420) during the reversal and
# the hold, and cools down on the reload
AMP_TIMES = [0.0, 1.0, 3.0, 4.0, 5.0]
AMP_U = [0.0, 1.0, -0.5, -0.5, 1.25]
AMP_T = [0.0, 0.4, 1.0, 1.0, 0.3]
INCREMENTS = [10, 10, 5, 8]  # per step (one step per monotonic segment)

MATERIAL = """*MATERIAL, NAME=HOT
*ELASTIC
200000., 0.3, 20.
180000., 0.31, 220.
150000., 0.33, 420.
*PLASTIC, HARDENING={hardening}
200., 0., 20.
300., 0.004, 20.
400., 0.1, 20.
150., 0., 220.
200., 0.008, 220.
100., 0., 420.
120., 0.005, 420.
160., 0.05, 420.
"""
CYCLIC = """*CYCLIC HARDENING
200., 0., 20.
250., 0.02, 20.
120., 0., 420.
150., 0.03, 420.
"""
CREEP = """*CREEP, LAW=NORTON
1e-9, 3., 0.2, 20.
3e-9, 2.5, 0.1, 300.
"""
EXPANSION = """*EXPANSION, ZERO=10.
1.2e-5, 20.
1.5e-5, 420.
"""


def initial_temperature(x):
    return 20.0 + 5.0 * x[:, 0] + 3.0 * x[:, 1]


def temperature_value(x):
    """*TEMPERATURE value of each node (times the amplitude)."""
    return 420.0 + 30.0 * x[:, 0] - 20.0 * x[:, 1] + 10.0 * x[:, 2]


def _uniform_20(x):
    return np.full(len(x), 20.0)


#: (initial temperature, *TEMPERATURE value, its amplitude) of each scenario: "ramp" crosses
#: the tables; "node" stays at the first table temperature, where CalculiX merges the curves of
#: 20 and 220 with ratio 0 (plmix.f), cutting the 20 curve at 0.008, the end of the 220 one
SCENARIOS = {"ramp": (initial_temperature, temperature_value, AMP_T), "node": (_uniform_20, _uniform_20, [1.0] * 5)}


def _tensor(e):
    return np.array([[e[0], e[3] / 2, e[4] / 2], [e[3] / 2, e[1], e[5] / 2], [e[4] / 2, e[5] / 2, e[2]]])


def _amplitude(name, values):
    # one pair per line (CalculiX reads at most 8 numbers of an *AMPLITUDE line)
    return [f"*AMPLITUDE, NAME={name}, TIME=TOTAL TIME"] + [f"{t!r}, {v!r}" for t, v in zip(AMP_TIMES, values)]


def write_deck(path, etype, nodes, hardening, visco, scenario="ramp"):
    u = nodes @ _tensor(DIRECTION).T
    lines = ["*HEADING", "thermal single element", "*NODE"]
    lines += [f"{i + 1}, {fmt(x)}, {fmt(y)}, {fmt(z)}" for i, (x, y, z) in enumerate(nodes)]
    lines += [f"*ELEMENT, TYPE={etype}, ELSET=EALL", "1, " + ", ".join(str(i + 1) for i in range(len(nodes)))]
    t_init, t_value, amp_t = SCENARIOS[scenario]
    if hardening is None:  # elastic: *ELASTIC and *EXPANSION only
        material = MATERIAL.split("*PLASTIC")[0]
    else:
        material = MATERIAL.format(hardening=hardening.upper()) + (CYCLIC if hardening == "combined" else "")
    lines += (material + (CREEP if visco else "") + EXPANSION).splitlines()
    lines += ["*SOLID SECTION, ELSET=EALL, MATERIAL=HOT"]
    lines += _amplitude("AU", AMP_U) + _amplitude("AT", amp_t)
    lines += ["*INITIAL CONDITIONS, TYPE=TEMPERATURE"]
    lines += [f"{i + 1}, {fmt(t)}" for i, t in enumerate(t_init(nodes))]
    procedure = "*VISCO, DIRECT, CETOL=1e6" if visco else "*STATIC, DIRECT"
    for k, n_inc in enumerate(INCREMENTS):
        period = AMP_TIMES[k + 1] - AMP_TIMES[k]
        lines += ["*STEP, INC=1000", procedure, f"{period / n_inc!r}, {period!r}"]
        lines += ["*BOUNDARY, AMPLITUDE=AU"]
        lines += [f"{i + 1}, {c + 1}, {c + 1}, {fmt(u[i, c])}" for i in range(len(nodes)) for c in range(3)]
        lines += ["*TEMPERATURE, AMPLITUDE=AT"]
        lines += [f"{i + 1}, {fmt(t)}" for i, t in enumerate(t_value(nodes))]
        lines += ["*NODE OUTPUT, DOUBLE", "U, NT", "*EL PRINT, ELSET=EALL", "S" if hardening is None else "S, SDV",
                  "*END STEP"]
    path.write_text("\n".join(lines) + "\n")
    return path


def replay(law, mesh, frd, times, scenario="ramp"):
    """The law along ccx's displacements, at romdask's integration-point temperatures."""
    quad = quadrature(mesh)
    op = temperature_operator(mesh)
    x = mesh.nodes
    initial, value, amp_t = SCENARIOS[scenario]
    t_init = op @ initial(x)
    t_prev = op @ (np.interp(0.0, AMP_TIMES, amp_t) * value(x))
    state = law.initial_state(quad.n_points)
    stress, states, nodal_t, ip_t = [], [], [], []
    for (block, ids, disp), t_now, t_old in zip(frd.frames("DISP"), times, [0.0] + list(times[:-1])):
        assert np.array_equal(ids, mesh.node_ids)
        t_nodes = np.interp(t_now, AMP_TIMES, amp_t) * value(x)
        t_ip = op @ t_nodes
        temps = np.column_stack([t_init, t_prev, t_ip])
        s, _, state, nf = law.integrate(strain(quad, disp.ravel()), state, t_now - t_old, t_now, temperature=temps)
        assert nf == 0
        stress.append(s)
        states.append(state)
        nodal_t.append(t_nodes)
        ip_t.append(t_ip)
        t_prev = t_ip
    return np.array(stress), np.array(states), np.array(nodal_t), np.array(ip_t)


CASES = [("C3D8", HEX, "isotropic", True), ("C3D8", HEX, "kinematic", True), ("C3D8", HEX, "combined", True),
         ("C3D8", HEX, "isotropic", False), ("C3D10", TET, "isotropic", True), ("C3D10", TET, "kinematic", False)]


@pytest.mark.parametrize("etype, nodes, hardening, visco", CASES, ids=["-".join(map(str, c[::2] + c[3:])) for c in CASES])
def test_thermal_law_matches_ccx(tmp_path, etype, nodes, hardening, visco):
    deck = write_deck(tmp_path / "one.inp", etype, nodes, hardening, visco)
    run_ccx(deck, timeout=60)
    law = deck_laws(deck_cards(deck), visco=visco)["HOT"]
    assert law.thermal and law.hardening == hardening and (law.norton is not None) == visco
    mesh = Mesh(nodes, (CellBlock(etype, [np.arange(len(nodes))]),))
    dat = read_dat(tmp_path / "one.dat")
    times = dat.times("stress")
    assert len(times) == sum(INCREMENTS)
    frd = read_frd(tmp_path / "one.frd")
    stress, state, nodal_t, t1 = replay(law, mesh, frd, times)
    # ccx's nodal temperatures are amplitude(t) x value (float64 output)
    nt = np.array([values[:, 0] for _, _, values in frd.frames("NDTEMP")])
    assert np.abs(nt - nodal_t).max() < 1e-9
    s_ccx = np.array([dat.frame(mesh, "stress", i) for i in range(len(times))])
    sdv_ccx = np.array([dat.frame(mesh, "state", i) for i in range(len(times))])
    # the history covers: below and above the tables, and plastic strains past 0.008 (the end
    # of the 220 curve, where plmix.f cuts the merged curves) between two table temperatures
    p = state[:, :, 0]
    assert t1.min() < 20.0 and t1.max() > 420.0
    assert np.any((p > 0.008) & (t1 > 220.0) & (t1 < 420.0)) and np.any((p > 0.008) & (t1 > 20.0) & (t1 < 220.0))
    # 7 printed significant digits: rounding <= 5e-7 |s| (the constrained thermal stress reaches
    # ~3000 MPa: 1.5e-3 MPa); allow 1e-6 |s| + 1e-6 MPa
    assert np.all(np.abs(stress - s_ccx) <= 1e-6 * np.abs(s_ccx) + 1e-6)
    sdv = state[:, :, :13]
    assert np.all(np.abs(sdv - sdv_ccx[:, :, :13]) <= 1e-6 * np.abs(sdv_ccx[:, :, :13]) + 1e-9)
    if visco:
        ref = sdv_ccx[:, :, 13]
        assert np.all(np.abs(state[:, :, 13] - ref) <= 1e-6 * np.abs(ref) + 1e-12)


def _run(tmp_path, etype, nodes, hardening, visco, scenario):
    deck = write_deck(tmp_path / "one.inp", etype, nodes, hardening, visco, scenario)
    run_ccx(deck, timeout=60)
    law = deck_laws(deck_cards(deck), visco=visco)["HOT"]
    mesh = Mesh(nodes, (CellBlock(etype, [np.arange(len(nodes))]),))
    dat = read_dat(tmp_path / "one.dat")
    times = dat.times("stress")
    stress, state, _, t1 = replay(law, mesh, read_frd(tmp_path / "one.frd"), times, scenario)
    s_ccx = np.array([dat.frame(mesh, "stress", i) for i in range(len(times))])
    return law, stress, state, t1, s_ccx


def test_at_a_table_temperature_the_curves_are_merged_as_plmix_does(tmp_path):
    law, stress, state, t1, s_ccx = _run(tmp_path, "C3D8", HEX, "isotropic", False, "node")
    assert np.all(t1 == 20.0) and state[:, :, 0].max() > 0.012  # past the 0.008 cut
    assert np.all(np.abs(stress - s_ccx) <= 1e-6 * np.abs(s_ccx) + 1e-6)
    # the 20 curve alone (no merge with the 220 one) is another material: several MPa off
    alone = CalculixViscoplastic(elastic=law.elastic, plastic=[r for r in law.plastic if r[2] == 20.0],
                                 expansion=law.expansion, expansion_zero=law.expansion_zero)  # fmt: skip
    mesh = Mesh(HEX, (CellBlock("C3D8", [np.arange(8)]),))
    other, _, _, _ = replay(alone, mesh, read_frd(tmp_path / "one.frd"), read_dat(tmp_path / "one.dat").times("stress"),
                            "node")  # fmt: skip
    assert np.abs(other - s_ccx).max() > 1.0


def test_thermal_elastic_matches_ccx(tmp_path):
    law, stress, _, t1, s_ccx = _run(tmp_path, "C3D10", TET, None, False, "ramp")
    assert isinstance(law, LinearElastic) and law.thermal and t1.max() > 420.0
    assert np.all(np.abs(stress - s_ccx) <= 1e-6 * np.abs(s_ccx) + 1e-6)
