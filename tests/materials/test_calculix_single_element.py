"""One C3D8 element under a homogeneous prescribed strain history, run by the real CalculiX.

All 8 nodes of the unit cube get u = eps . x, so every integration point sees the same strain;
``*EL PRINT`` writes stresses and the 14 state variables (SDV) with 7 significant digits, which
bounds the agreement (~5e-5 MPa on 600 MPa). One *STEP per monotonic segment, fixed increments,
``*VISCO`` with a huge CETOL (see /work/shared/notes/calculix.md, Traps).
"""

import shutil
import subprocess

import numpy as np
import pytest

from romdask.materials import CalculixViscoplastic

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="`ccx` is not installed")

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


def write_deck(path, hardening, visco):
    lines = ["*NODE"] + [f"{i + 1},{x[0]:g},{x[1]:g},{x[2]:g}" for i, x in enumerate(NODES)]
    lines += ["*ELEMENT,TYPE=C3D8,ELSET=EALL", "1,1,2,3,4,5,6,7,8", "*MATERIAL,NAME=M",
              "*ELASTIC", "200000.,0.3", f"*PLASTIC,HARDENING={hardening.upper()}"]  # fmt: skip
    lines += [f"{s!r},{e!r}" for s, e in TABLE]
    if hardening == "combined":
        lines += ["*CYCLIC HARDENING"] + [f"{s!r},{e!r}" for s, e in CYCLIC]
    lines += ["*CREEP,LAW=NORTON", ",".join(repr(v) for v in NORTON)]
    lines += ["*SOLID SECTION,ELSET=EALL,MATERIAL=M"]
    # with every dof prescribed, ccx applies *BOUNDARY values at once (no ramp): drive them by
    # a total-time amplitude instead (exact in binary: amplitudes and times are short decimals)
    times, amps = [0.0], [0.0]
    for amp, period, _ in SEGMENTS:
        times.append(times[-1] + period)
        amps.append(amp)
    lines += ["*AMPLITUDE,NAME=A,TIME=TOTAL TIME"]
    lines += [f"{t!r},{a!r}" for t, a in zip(times, amps)]
    proc = "*VISCO,DIRECT,CETOL=1e6" if visco else "*STATIC,DIRECT"
    u = NODES @ _tensor(DIRECTION).T
    for amp, period, ninc in SEGMENTS:
        lines += ["*STEP,INC=1000", proc, f"{period / ninc!r},{period!r}", "*BOUNDARY,AMPLITUDE=A"]
        lines += [f"{i + 1},{c + 1},{c + 1},{float(u[i, c])!r}" for i in range(8) for c in range(3)]
        lines += ["*EL PRINT,ELSET=EALL", "S", "*EL PRINT,ELSET=EALL", "SDV", "*END STEP"]
    path.write_text("\n".join(lines) + "\n")


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
    write_deck(tmp_path / "cube.inp", hardening, visco)
    run = subprocess.run(["ccx", "-i", "cube"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert run.returncode == 0 and "ERROR" not in run.stdout, run.stdout[-2000:]
    dat = parse_dat(tmp_path / "cube.dat")
    s_ccx, sdv_ccx = dat["stresses"], dat["internal"]
    n_inc = sum(s[2] for s in SEGMENTS)
    assert s_ccx.shape == (n_inc, 8, 6) and sdv_ccx.shape == (n_inc, 8, 14)
    law = CalculixViscoplastic(
        200000.0, 0.3, TABLE, hardening=hardening, norton=NORTON if visco else None,
        cyclic_hardening=CYCLIC if hardening == "combined" else None,
    )  # fmt: skip
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
