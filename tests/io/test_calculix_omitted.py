"""read_calculix keeps every result of a CalculiX run as a field or lists it, with the reason, in
``metadata["omitted_fields"]`` (and ``romdask info`` prints the list); ``*NODE FILE RF`` (the
.frd's FORC blocks) is stored as the node field ``reaction_force`` (issue 18 item 9).

The decks are ccx_decks.write_deck's box, run by ccx 2.20; those tests skip without ``ccx``.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

from romdask.cli import main  # noqa: E402
from romdask.io.calculix import read_calculix, read_frd  # noqa: E402
from romdask.store import SnapshotStore, open_snapshots  # noqa: E402

DATA = Path(__file__).parent / "data" / "calculix"
needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="`ccx` (apt package calculix-ccx) is not installed")
N_POINTS = 16  # two C3D8

#: what the deck of _every_output_deck leaves out, and why (a word of each reason)
EXPECTED_OMITTED = {
    "frd:STRESS": "nodal extrapolation",
    "frd:TOSTRAIN": "nodal extrapolation",
    "frd:ERROR": "error estimate",
    "dat:stresses (set EALL)": "not printed at every .frd output time",
    "dat:strains (set EALL)": "not printed at every .frd output time",
    "dat:equivalent plastic strain (set EFIRST)": f"not printed at all {N_POINTS} integration points",
    "dat:displacements (set FIX)": "*NODE PRINT U",
    "dat:forces (set FIX)": "*NODE PRINT RF",
    "dat:total force (set LOAD)": "*NODE PRINT RF",
}


def _every_output_deck(directory: Path, encoding: str) -> Path:
    """write_deck's two steps with U,RF and S,E to the .frd, *NODE PRINT U,RF of the fixed face
    and the total RF of the loaded one, *EL PRINT S,E in step 1 only, PEEQ of one element of
    two, SDV everywhere."""
    ccx_decks.write_deck(directory, "C3D8", encoding, el_print=("SDV",))
    node_card, element_card = ccx_decks.STRESS_CARDS[encoding]
    inp = directory / "run.inp"
    head, step1, step2 = inp.read_text().split("*STEP")
    assert f"{node_card}\nU\n" in step1 and f"{node_card}\nU\n" in step2
    step1 = step1.replace(f"{node_card}\nU\n", f"{node_card}\nU,RF\n{element_card}\nS,E\n"
                          "*NODE PRINT,NSET=FIX\nU,RF\n*NODE PRINT,NSET=LOAD,TOTALS=ONLY\nRF\n"
                          "*EL PRINT,ELSET=EALL\nS,E\n*EL PRINT,ELSET=EFIRST\nPEEQ\n")  # fmt: skip
    # an *EL PRINT card in a step replaces the earlier ones (S,E stop); the other cards stay
    step2 = step2.replace(f"{node_card}\nU\n", f"{node_card}\nU,RF\n*EL PRINT,ELSET=EFIRST\nPEEQ\n")
    inp.write_text(f"{head}*STEP{step1}*STEP{step2}")
    ccx_decks.run_ccx(directory)
    return inp


@pytest.fixture(scope="module")
def every_output(tmp_path_factory):
    """encoding -> the .inp of _every_output_deck run by ccx (each run once for the module)."""
    runs = {}

    def get(encoding):
        if encoding not in runs:
            runs[encoding] = _every_output_deck(tmp_path_factory.mktemp(f"every_{encoding}"), encoding)
        return runs[encoding]

    return get


def _dat_node_blocks(dat: Path, header: str) -> list[np.ndarray]:
    """The rows (first column dropped when it is a node id) of each ``header`` block of a .dat."""
    blocks, lines = [], dat.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(header + " ("):
            rows = []
            for row in lines[i + 2 :]:
                if not row.strip():
                    break
                rows.append([float(v) for v in row.split()])
            blocks.append(np.array(rows))
    return blocks


def test_shipped_runs_omit_nothing():
    """*NODE FILE U and *EL PRINT S,E and SDV at every increment: everything is stored."""
    for name in ("c3d20", "c3d10"):
        for encoding in ("ascii", "float32", "float64"):
            run = read_calculix(DATA / f"{name}.inp", frd=DATA / f"{name}_{encoding}.frd")
            assert list(run.fields) == ["displacement", "stress", "strain", "state"]
            assert run.metadata["omitted_fields"] == {}


@needs_ccx
@pytest.mark.parametrize("encoding", ["ascii", "float64"])
def test_every_block_is_stored_or_listed(every_output, encoding):
    inp = every_output(encoding)
    run = read_calculix(inp)
    assert list(run.fields) == ["displacement", "reaction_force", "state"]
    assert run.fields["reaction_force"].location == "node"
    assert run.fields["reaction_force"].components == ("fx", "fy", "fz")
    omitted = run.metadata["omitted_fields"]
    assert list(omitted) == list(EXPECTED_OMITTED)
    for key, word in EXPECTED_OMITTED.items():
        assert word in omitted[key], (key, omitted[key])
    assert "*EL PRINT S" in omitted["frd:STRESS"] and "*EL PRINT E" in omitted["frd:TOSTRAIN"]
    # every .frd block is read or listed
    frd_names = read_frd(inp.with_suffix(".frd")).fields()
    assert frd_names == ["DISP", "STRESS", "TOSTRAIN", "FORC", "ERROR"]
    assert {f"frd:{n}" for n in frd_names} - set(omitted) == {"frd:DISP", "frd:FORC"}


@needs_ccx
@pytest.mark.parametrize("encoding", ["ascii", "float64"])
def test_reaction_force_is_calculix_rf(every_output, encoding):
    """FORC = *NODE PRINT RF of the .dat (7 digits) node by node on the fixed face and in total
    on the loaded one; the reactions balance (the loaded face's pull is the fixed face's), the
    other nodes carry none."""
    inp = every_output(encoding)
    run = read_calculix(inp)
    mesh = run.mesh
    dat = inp.with_suffix(".dat")
    fix_rows, totals = _dat_node_blocks(dat, "forces"), _dat_node_blocks(dat, "total force")
    assert len(fix_rows) == len(totals) == run.n_steps == 8
    fix, load = mesh.node_sets["FIX"], mesh.node_sets["LOAD"]
    free = np.setdiff1d(np.arange(mesh.n_nodes), np.concatenate([fix, load]))
    rtol = 1e-5 if encoding == "ascii" else 1e-6  # 6 digits in the ASCII .frd, 7 in the .dat
    for k, frame in enumerate(run.frames()):
        rf = frame.data["reaction_force"]
        scale = np.abs(rf).max()
        assert scale > 10.0  # newtons: the box is pulled into plasticity
        np.testing.assert_allclose(rf[mesh.node_index(fix_rows[k][:, 0].astype(int))], fix_rows[k][:, 1:],
                                   rtol=rtol, atol=rtol * scale)  # fmt: skip
        np.testing.assert_allclose(rf[load].sum(axis=0), totals[k][0], rtol=rtol, atol=rtol * scale)
        assert abs(rf[load, 0].sum()) > 0.5 * scale
        assert np.abs(rf[fix].sum(axis=0) + rf[load].sum(axis=0)).max() <= 1e-5 * scale
        assert np.abs(rf[free]).max() <= 1e-5 * scale


@needs_ccx
def test_reactions_balance_an_applied_force(tmp_path):
    """An elastic *STATIC step pulled by *CLOAD with the fixed face clamped: the reactions sum to
    minus the applied force; at the loaded (free) nodes FORC is the applied nodal force."""
    ccx_decks.write_deck(tmp_path, "C3D8", "float64", el_print=())
    inp = tmp_path / "run.inp"
    head = inp.read_text().split("*STEP")[0]
    boundary = head[head.index("*BOUNDARY") :]
    head = head.replace(boundary, "*BOUNDARY\nFIX,1,3\n")
    inp.write_text(head + "*STEP\n*STATIC\n*CLOAD\nLOAD,1,10.0\nLOAD,2,-3.0\n*NODE OUTPUT,DOUBLE\nU,RF\n*END STEP\n")
    ccx_decks.run_ccx(tmp_path)
    run = read_calculix(inp)
    assert "reaction_force" in run.fields and run.metadata["omitted_fields"] == {}
    (frame,) = run.frames()
    rf, mesh = frame.data["reaction_force"], run.mesh
    load, fix = mesh.node_sets["LOAD"], mesh.node_sets["FIX"]
    np.testing.assert_allclose(rf[fix].sum(axis=0), [-10.0 * len(load), 3.0 * len(load), 0.0], atol=1e-9)
    np.testing.assert_allclose(rf[load], np.tile([10.0, -3.0, 0.0], (len(load), 1)), atol=1e-9)


@needs_ccx
def test_peeq_next_to_the_sdv_is_listed(tmp_path):
    ccx_decks.write_deck(tmp_path, "C3D8", "ascii", el_print=("S,E", "SDV", "PEEQ"))
    ccx_decks.run_ccx(tmp_path)
    run = read_calculix(tmp_path / "run.inp")
    assert list(run.fields) == ["displacement", "stress", "strain", "state"]
    assert run.metadata["omitted_fields"] == {
        "dat:equivalent plastic strain (set EALL)": "PEEQ is the first SDV of the viscoplastic law, stored in state"
    }


@needs_ccx
def test_ingest_and_info_list_the_omitted(every_output, tmp_path, capsys):
    inp = every_output("ascii")
    store = tmp_path / "s.zarr"
    sources = [str(inp.with_suffix(s)) for s in (".inp", ".frd", ".dat")]
    assert main(["ingest", *sources, "--store", str(store)]) == 0
    attrs = SnapshotStore.open(store, mode="r").runs()["run"]
    assert list(attrs["fields"]) == ["displacement", "reaction_force", "state"]
    assert attrs["metadata"]["omitted_fields"] == read_calculix(inp).metadata["omitted_fields"]
    ds = open_snapshots(store)
    rf = ds["reaction_force"].values  # (snapshot, node, component), store node order
    assert rf.shape == (8, 13, 3) and np.abs(rf.sum(axis=1)).max() < 1e-3 and np.abs(rf).max() > 10.0
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "fields displacement, reaction_force, state" in out
    assert f"omitted fields: {len(EXPECTED_OMITTED)}" in out
    for key in EXPECTED_OMITTED:
        assert key in out
    assert "not printed at every .frd output time" in out
    # a second ingest of the same files is skipped (same sources, same fields)
    assert main(["ingest", *sources, "--store", str(store)]) == 0
    assert "skipped: 1 run(s): run" in capsys.readouterr().out
