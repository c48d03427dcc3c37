"""One C3D8 element under a homogeneous prescribed strain history, run by the real CalculiX.

All 8 nodes of the unit cube get u = eps . x, so every integration point sees the same strain;
``*EL PRINT`` writes stresses and the 14 state variables (SDV) with 7 significant digits, which
bounds the agreement (~5e-5 MPa on 600 MPa). One *STEP per monotonic segment, fixed increments,
``*VISCO`` with a huge CETOL (see /work/shared/notes/calculix.md, Traps).
"""

import shutil

import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.hifi.calculix import run_ccx
from romdask.hifi.calculix import write_deck as calculix_deck
from romdask.problem.loads import Amplitude, Dirichlet
from romdask.materials import CalculixViscoplastic
from romdask.problem import Problem

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")

NODES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float
)
DIRECTION = np.array([1.0, -0.3, -0.2, 0.5, 0.2, -0.4])
TABLE = [(200.0, 0.0), (300.0, 0.004), (400.0, 0.1)]
CYCLIC = [(200.0, 0.0), (260.0, 0.003)]
NORTON = (1e-9, 3.0, 0.2)
# (end amplitude, step period, n increments): load, reverse, hold (relaxation), reload
SEGMENTS = [(0.004, 1.0, 10), (-0.002, 2.0, 10), (-0.002, 1.0, 5), (0.005, 1.0, 8)]


def _tensor(e):
    return np.array(
        [[e[0], e[3] / 2, e[4] / 2], [e[3] / 2, e[1], e[5] / 2], [e[4] / 2, e[5] / 2, e[2]]]
    )


def _law(hardening, visco):
    return CalculixViscoplastic(
        200000.0, 0.3, TABLE, hardening=hardening, norton=NORTON if visco else None,
        cyclic_hardening=CYCLIC if hardening == "combined" else None,
    )  # fmt: skip


def write_deck(path, hardening, visco):
    """The deck of romdask.hifi.calculix.write_deck: each of the 24 dofs prescribed to
    ``eps . x`` times a total-time amplitude (exact in binary: short decimals), one *STEP per
    segment, *VISCO or *STATIC with fixed increments, *EL PRINT of S and SDV."""
    times, amps = [0.0], [0.0]
    out_times = [0.0]
    for amp, period, ninc in SEGMENTS:
        out_times += [times[-1] + period * (i + 1) / ninc for i in range(ninc)]
        times.append(times[-1] + period)
        amps.append(amp)
    table = Amplitude(times, amps)
    u = NODES @ _tensor(DIRECTION).T
    mesh = Mesh(NODES, (CellBlock("C3D8", [np.arange(8)]),))
    bcs = [Dirichlet([i], (c,), float(u[i, c]), table, name=f"u{i + 1}{c + 1}") for i in range(8) for c in range(3)]
    problem = Problem(mesh, _law(hardening, visco), tuple(bcs), np.array(out_times), name="cube")
    return calculix_deck(problem, path, ip_output=("S", "SDV"))


def parse_dat(path):
    """{'stresses': (n_frames, n_ip, 6), 'internal': (n_frames, n_ip, 14)} from *EL PRINT."""
    blocks: dict[str, list] = {}
    rows = None
    for line in path.read_text().splitlines():
        if "for set" in line and "time" in line:
            rows = []
            blocks.setdefault(line.split()[0], []).append(rows)
        elif line.strip() and rows is not None:
            rows.append([float(v) for v in line.split()[2:]])
    return {k: np.array(v) for k, v in blocks.items()}


def kernel_history(law):
    st = law.initial_state(1)
    a0, ttime = 0.0, 0.0
    stress, state = [], []
    for amp, period, ninc in SEGMENTS:
        dt = period / ninc
        for i in range(1, ninc + 1):
            eps = (a0 + (amp - a0) * i / ninc) * DIRECTION
            s, _, st, nf = law.integrate(eps[None], st, dt, ttime + i * dt)
            assert nf == 0
            stress.append(s[0])
            state.append(st[0])
        a0, ttime = amp, ttime + period
    return np.array(stress), np.array(state)


@pytest.mark.parametrize(
    "hardening, visco",
    [("isotropic", True), ("kinematic", True), ("combined", True),
     ("isotropic", False), ("kinematic", False), ("combined", False)],
)  # fmt: skip
def test_kernel_matches_ccx(tmp_path, hardening, visco):
    run_ccx(write_deck(tmp_path / "cube.inp", hardening, visco), timeout=60)
    dat = parse_dat(tmp_path / "cube.dat")
    s_ccx, sdv_ccx = dat["stresses"], dat["internal"]
    n_inc = sum(s[2] for s in SEGMENTS)
    # without *CREEP (rate independent) CalculiX keeps 13 SDV: no viscoplastic rate
    assert s_ccx.shape == (n_inc, 8, 6) and sdv_ccx.shape == (n_inc, 8, 14 if visco else 13)
    law = _law(hardening, visco)
    stress, state = kernel_history(law)
    assert state[:, 0].max() > 2e-3  # the history is well into the plastic range
    # 7 printed digits of values up to ~600 MPa: rounding <= 5e-5 MPa; allow 1e-3 MPa
    assert np.abs(stress[:, None, :] - s_ccx).max() < 1e-3
    # p, plastic strain, back stress: 7 significant digits (relative 5e-7)
    sdv = state[:, None, :13]
    assert np.all(np.abs(sdv - sdv_ccx[:, :, :13]) <= 1e-6 * np.abs(sdv_ccx[:, :, :13]) + 1e-9)
    if visco:  # SDV14: viscoplastic rate of the last plastic increment
        ref = sdv_ccx[:, :, 13]
        assert np.all(np.abs(state[:, None, 13] - ref) <= 1e-6 * np.abs(ref) + 1e-12)
