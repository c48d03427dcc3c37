"""read_dat and the integration-point fields of read_calculix.

The strongest check: romdask's own CalculiX law, fed with the strains of the float64 .frd
displacements at romdask's integration points, reproduces the .dat stresses to print precision
-- only if the reader puts every printed point at the right place.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

from romdask.fem.quadrature import quadrature, strain  # noqa: E402
from romdask.io.calculix import read_calculix, read_dat, read_inp  # noqa: E402
from romdask.io.calculix.dat import ip_layout  # noqa: E402
from romdask.io.run import ReaderError  # noqa: E402
from romdask.materials import CalculixViscoplastic  # noqa: E402

DATA = Path(__file__).parent / "data" / "calculix"
needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="`ccx` is not installed")
LAW = CalculixViscoplastic(ccx_decks.YOUNG, ccx_decks.POISSON, ccx_decks.TABLE, norton=ccx_decks.NORTON)


def _replay(run):
    """Max |stress - .dat stress|, max |strain - .dat strain|, max |state - .dat SDV|, max p."""
    quad = quadrature(run.mesh)
    state = LAW.initial_state(quad.n_points)
    t_old, err_s, err_e, err_q, p_max = 0.0, 0.0, 0.0, 0.0, 0.0
    for frame in run.frames():
        eps = strain(quad, frame.data["displacement"].ravel())
        stress, _, state, n_failed = LAW.integrate(eps, state, frame.time - t_old, frame.time)
        assert n_failed == 0
        t_old = frame.time
        err_s = max(err_s, np.abs(stress - frame.data["stress"]).max())
        err_e = max(err_e, np.abs(eps - frame.data["strain"]).max())
        err_q = max(err_q, np.abs(state[:, :13] - frame.data["state"][:, :13]).max())
        p_max = max(p_max, state[:, 0].max())
    return err_s, err_e, err_q, p_max


@pytest.mark.parametrize("name", ["c3d20", "c3d10"])
def test_shipped_law_replay(name):
    run = read_calculix(DATA / f"{name}.inp", frd=DATA / f"{name}_float64.frd")
    assert set(run.fields) == {"displacement", "stress", "strain", "state"}
    assert run.fields["state"].components[0] == "p" and len(run.fields["state"].components) == 14
    assert run.fields["strain"].location == "ip"
    err_s, err_e, err_q, p_max = _replay(run)
    assert p_max > 1e-4  # plastic
    assert err_s < 1e-3  # MPa, 7 printed digits of ~400 MPa
    assert err_e < 1e-9  # engineering shear strains, 7 digits
    assert err_q < 1e-9


def test_shipped_blocks_and_conventions():
    dat = read_dat(DATA / "c3d10.dat")
    assert dat.kinds() == ["stress", "strain", "state"]
    np.testing.assert_array_equal(dat.times("stress"), [0.5, 1.0, 2.0])
    mesh = read_inp(DATA / "c3d10.inp")
    block = next(b for b in dat.blocks if b.kind == "strain" and b.time == 1.0)
    assert block.set == "EALL" and block.n_rows == 6 * 4 and block.n_values == 6
    el, ip, raw = dat.read(block)
    frame = dat.frame(mesh, "strain", 1)
    # point q of element e sits at e * 4 + q - 1 (one block of C3D10), shear doubled
    rows = mesh.element_index(el) * 4 + ip - 1
    np.testing.assert_array_equal(frame[rows, :3], raw[:, :3])
    np.testing.assert_array_equal(frame[rows, 3:], 2.0 * raw[:, 3:])
    # element ids in the .dat are the deck's (10, 11, ...), points 1..4
    np.testing.assert_array_equal(np.unique(el), mesh.blocks[0].ids)
    np.testing.assert_array_equal(np.unique(ip), [1, 2, 3, 4])
    n_ip, first = ip_layout(mesh)
    assert n_ip.sum() == 24 and first[-1] == 20


def _copy(tmp_path, name="c3d10"):
    for suffix in (".inp", "_nodes.inc", ".dat", "_float64.frd"):
        target = tmp_path / (f"run{suffix}" if suffix in (".inp", ".dat") else f"{name}{suffix}")
        shutil.copy(DATA / f"{name}{suffix}", target)
    (tmp_path / f"{name}_float64.frd").rename(tmp_path / "run.frd")
    return tmp_path / "run.inp", tmp_path / "run.dat"


def test_garbage_and_non_finite_in_dat(tmp_path):
    inp, dat = _copy(tmp_path)
    lines = dat.read_text().splitlines()
    i = next(k for k, t in enumerate(lines) if "stresses" in t and "0.1000000E+01" in t) + 4
    good = lines[i]
    lines[i] = good[:20] + "X" + good[21:]
    dat.write_text("\n".join(lines) + "\n")
    run = read_calculix(inp)
    with pytest.raises(ReaderError, match=rf"run.dat: line {i + 1}: cannot read the numbers"):
        list(run.frames())
    lines[i] = good[:16] + "          NaN" + good[29:]
    dat.write_text("\n".join(lines) + "\n")
    message = rf"run.dat: line {i + 1}: non-finite value in the stress block at time 1"
    with pytest.raises(ReaderError, match=message):
        list(read_calculix(inp).frames())


def test_dat_element_not_in_mesh(tmp_path):
    inp, dat = _copy(tmp_path)
    dat.write_text(dat.read_text().replace("        12   1", "       912   1"))
    message = r"run.dat: line \d+: stress block at time 0.5 names elements not in the mesh"
    with pytest.raises(ReaderError, match=message):
        list(read_calculix(inp).frames())


def test_partial_dat_fields_are_left_out(tmp_path, caplog):
    inp, dat = _copy(tmp_path)
    # drop the last row of every strain block: strains no longer cover every point
    out, drop = [], False
    for line in dat.read_text().splitlines():
        if line.startswith(" strains"):
            drop = True
        elif line.startswith(" internal"):
            drop = False
        out.append(line)
        if drop and line.startswith("        15   4"):
            out.pop()
    dat.write_text("\n".join(out) + "\n")
    with caplog.at_level("INFO"):
        run = read_calculix(inp)
    assert set(run.fields) == {"displacement", "stress", "state"}
    assert "strain not printed at all 24 integration points" in caplog.text
    with pytest.raises(ReaderError, match="strain at time 0.5 misses 1 of 24 integration points"):
        read_dat(dat).frame(run.mesh, "strain", 0)


def test_times_take_the_more_precise_file(tmp_path):
    inp, dat = _copy(tmp_path)
    run = read_calculix(inp)
    np.testing.assert_array_equal(run.times, [0.5, 1.0, 2.0])
    # a .dat whose times differ from the .frd's beyond print precision is not used
    dat.write_text(dat.read_text().replace("time  0.5000000E+00", "time  0.5100000E+00"))
    assert set(read_calculix(inp).fields) == {"displacement"}


@needs_ccx
@pytest.mark.parametrize("element_type", ["C3D8", "C3D10"])
def test_ccx_law_replay(tmp_path, element_type):
    ccx_decks.write_deck(tmp_path, element_type, "float64", n=(2, 1, 1))
    ccx_decks.run_ccx(tmp_path)
    run = read_calculix(tmp_path / "run.dat")
    assert run.n_steps == 8
    err_s, err_e, err_q, p_max = _replay(run)
    assert p_max > 1e-4
    assert err_s < 1e-3 and err_e < 1e-9 and err_q < 1e-9


@needs_ccx
def test_ccx_peeq_only(tmp_path):
    ccx_decks.write_deck(tmp_path, "C3D8", "float64", el_print=("S", "PEEQ"))
    ccx_decks.run_ccx(tmp_path)
    run = read_calculix(tmp_path / "run.inp")
    assert set(run.fields) == {"displacement", "stress", "p"}
    quad = quadrature(run.mesh)
    state, t_old = LAW.initial_state(quad.n_points), 0.0
    for frame in run.frames():
        eps = strain(quad, frame.data["displacement"].ravel())
        _, _, state, _ = LAW.integrate(eps, state, frame.time - t_old, frame.time)
        t_old = frame.time
        assert frame.data["p"].shape == (quad.n_points, 1)
        assert np.all(np.abs(state[:, 0] - frame.data["p"][:, 0]) <= 1e-6 * state[:, 0].max())
    assert state[:, 0].max() > 1e-4
