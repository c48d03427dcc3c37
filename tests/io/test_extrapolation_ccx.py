"""ip_to_nodes and write_frd against CalculiX 2.20 itself (skipped without ccx).

One small plastic deck per element type (tests/io/ccx_decks.write_stress_deck), run twice: with
float64 (``*NODE OUTPUT,DOUBLE`` / ``*ELEMENT OUTPUT,DOUBLE``) and with ASCII (``*NODE FILE`` /
``*EL FILE``) .frd output. The .dat holds the integration-point S and PEEQ (7 digits).
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

from romdask.fem.extrapolate import extrapolation_matrix, ip_to_nodes  # noqa: E402
from romdask.io.calculix import read_calculix, read_dat, read_frd, read_inp, write_frd  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="`ccx` (CalculiX 2.20) is not installed")
TYPES = ("C3D4", "C3D10", "C3D8", "C3D20R", "C3D20")
FRD_TO_VOIGT = [0, 1, 2, 3, 5, 4]  # SXX SYY SZZ SXY SYZ SZX -> romdask xx yy zz xy xz yz (an involution)
DAT_DIGITS = 5e-7  # relative half unit of the 7 significant digits of the .dat


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(element type, encoding) -> folder of the ccx run, run on first use."""
    done: dict[tuple[str, str], Path] = {}

    def get(element_type: str, encoding: str) -> Path:
        key = (element_type, encoding)
        if key not in done:
            folder = tmp_path_factory.mktemp(f"{element_type}_{encoding}")
            ccx_decks.write_stress_deck(folder, element_type, encoding)
            ccx_decks.run_ccx(folder)
            done[key] = folder
        return done[key]

    return get


def _nodal(frd, mesh, name):
    """(n_frames, n_nodes, k) of a .frd field (0 at nodes not written), romdask order for STRESS."""
    blocks = frd.select(name)
    out = np.zeros((len(blocks), mesh.n_nodes, len(blocks[0].components)))
    for i, b in enumerate(blocks):
        ids, values = frd.read(b)
        out[i, mesh.node_index(ids)] = values
    return out[..., FRD_TO_VOIGT] if name == "STRESS" else out


@pytest.mark.parametrize("element_type", TYPES)
def test_nodal_stress_and_peeq_agree_with_ccx(runs, element_type):
    """ccx's nodal STRESS and PE (float64 .frd) = ip_to_nodes of its integration-point values
    (.dat) to the .dat's print precision: |diff| <= sum_q |A_aq| * 5e-7 * max |value|. The exact
    extrapolation matrices miss that bound (CalculiX's tables are rounded) except for C3D4."""
    folder = runs(element_type, "float64")
    mesh, frd, dat = read_inp(folder / "run.inp"), read_frd(folder / "run.frd"), read_dat(folder / "run.dat")
    gain = np.abs(extrapolation_matrix(element_type)).sum(axis=1).max()
    written = np.sort(mesh.node_index(frd.node_ids))
    report = []
    for kind, name in (("stress", "STRESS"), ("p", "PE")):
        nodal = _nodal(frd, mesh, name)[:, written]
        frames = list(dat.frames(mesh, kind))
        assert len(frames) == len(nodal) == 8
        for (t, ip), ccx in zip(frames, nodal):
            bound = gain * DAT_DIGITS * np.abs(ip).max()
            ours = ip_to_nodes(mesh, ip)[written]
            assert np.abs(ours - ccx).max() <= bound, (name, t)
            exact = ip_to_nodes(mesh, ip, exact=True)[written]
            if element_type != "C3D4":
                assert np.abs(exact - ccx).max() > bound, (name, t)
        report.append(f"{name} {np.abs(ours - ccx).max() / np.abs(ccx).max():.1e}")
        assert np.ptp(nodal[-1]) > 0.5 * np.abs(nodal[-1]).max()  # a non-uniform field
    assert _nodal(frd, mesh, "PE")[-1].max() > 1e-4  # plastic
    print(element_type, "relative to the largest nodal value at t=1:", ", ".join(report))


@pytest.mark.parametrize("element_type", TYPES)
def test_written_back_frd_is_ccx_own(runs, element_type, tmp_path):
    """What ccx wrote (DISP, STRESS, PE, ERROR in float64), written back by write_frd, gives
    ccx's file byte for byte from the node block on (the header lines hold ccx's date); the
    same values in ASCII give ccx's ASCII file of the same deck; both read back alike."""
    folder = runs(element_type, "float64")
    mesh, frd = read_inp(folder / "run.inp"), read_frd(folder / "run.frd")
    assert frd.fields() == ["DISP", "STRESS", "PE", "ERROR"]
    fields = {name: _nodal(frd, mesh, name) for name in frd.fields()}
    fields = {name: a[..., 0] if a.shape[-1] == 1 else a for name, a in fields.items()}
    disp = frd.select("DISP")
    times, steps = [b.time for b in disp], [(b.step, b.increment) for b in disp]
    for encoding, source in (("float64", folder), ("ascii", runs(element_type, "ascii"))):
        ours = write_frd(tmp_path / f"{encoding}.frd", mesh, times, fields, steps=steps, encoding=encoding)
        theirs = (source / "run.frd").read_bytes()
        assert ours.read_bytes().split(b"    2C", 1)[1] == theirs.split(b"    2C", 1)[1], encoding
        a, b = read_frd(ours), read_frd(source / "run.frd")
        assert a.fields() == b.fields() and [x.time for x in a.blocks] == [x.time for x in b.blocks]
        for x, y in zip(a.blocks, b.blocks):
            assert (x.name, x.step, x.increment, x.components) == (y.name, y.step, y.increment, y.components)
            for u, v in zip(a.read(x), b.read(y)):
                np.testing.assert_array_equal(u, v)
    # read_calculix takes our file with ccx's deck
    run = read_calculix(folder / "run.inp", frd=tmp_path / "float64.frd")
    np.testing.assert_array_equal([f.data["displacement"] for f in run.frames()], fields["DISP"])
