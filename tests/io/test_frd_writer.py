"""write_frd: round trips through read_frd / read_calculix for every element type and encoding,
ccx's own bytes, conventions (STRESS order, tensor strains, he20), bad inputs.

The agreement with files ccx writes for STRESS, PE and ERROR is in test_extrapolation_ccx.py,
the reading by cgx in test_frd_cgx.py.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

import romdask  # noqa: E402
from romdask.fem.mesh import Mesh  # noqa: E402
from romdask.io.calculix import FRD_ENCODINGS, read_calculix, read_frd, read_inp, write_frd  # noqa: E402
from romdask.io.calculix.frd import HE20_FRD_TO_INP  # noqa: E402

DATA = Path(__file__).parent / "data" / "calculix"
TYPES = ("C3D4", "C3D10", "C3D8", "C3D20R", "C3D20")


def fields_for(mesh, n_t=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "DISP": rng.normal(size=(n_t, mesh.n_nodes, 3)) * 1e-3,
        "STRESS": rng.normal(size=(n_t, mesh.n_nodes, 6)) * 300.0,
        "TOSTRAIN": rng.normal(size=(n_t, mesh.n_nodes, 6)) * 1e-3,
        "PE": np.abs(rng.normal(size=(n_t, mesh.n_nodes))) * 1e-2,
        "TWO": rng.normal(size=(n_t, mesh.n_nodes, 2)),
        "ERRIND": np.array([1e-4, 3e-3, 2e-2])[:n_t],
    }


def write_inp(path, mesh):
    lines = ["*NODE"] + [f"{i},{x!r},{y!r},{z!r}" for i, (x, y, z) in zip(mesh.node_ids.tolist(), mesh.nodes.tolist())]
    for b in mesh.blocks:
        lines.append(f"*ELEMENT,TYPE={b.type},ELSET=EALL")
        for eid, conn in zip(b.ids.tolist(), mesh.node_ids[b.connectivity].tolist()):
            vals = [str(eid)] + [str(v) for v in conn]
            lines += [",".join(vals[:16]) + ",", ",".join(vals[16:])] if len(vals) > 16 else [",".join(vals)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _tolerance(encoding, reference):
    """ASCII: 6 significant digits of the float32 value; float32: its rounding; float64: exact."""
    return {"ascii": 5e-6 + 2**-24, "float32": 2**-24, "float64": 0.0}[encoding] * np.abs(reference)


@pytest.mark.parametrize("encoding", FRD_ENCODINGS)
def test_round_trip_every_element_type(tmp_path, encoding):
    mesh = ccx_decks.mixed_mesh()
    times = [0.25, 1.0, 12.5]
    fields = fields_for(mesh)
    path = write_frd(tmp_path / "sub" / "out.frd", mesh, times, fields, steps=[1, 1, 2], encoding=encoding,
                     frame_text=["ind=1.00E-04", "", "x"])
    frd = read_frd(path)
    assert frd.complete and frd.version == f"romdask {romdask.__version__}"
    used = np.unique(np.concatenate([b.connectivity.ravel() for b in mesh.blocks]))
    np.testing.assert_array_equal(frd.node_ids, np.sort(mesh.node_ids[used]))  # only used nodes, ascending
    xyz = mesh.nodes[mesh.node_index(frd.node_ids)]
    assert np.all(np.abs(frd.nodes - xyz) <= (5e-6 + 2**-24) * np.abs(xyz) if encoding == "ascii" else frd.nodes == xyz)
    by_type = {fe.type: fe for fe in frd.elements}
    assert sorted(by_type) == ["C3D10", "C3D20", "C3D4", "C3D8"] and by_type["C3D20"].code == 4
    for b in mesh.blocks:  # C3D20R is a he20 in the .frd: read back as C3D20
        fe = by_type["C3D20" if b.type == "C3D20R" else b.type]
        rows = np.searchsorted(fe.ids, b.ids)
        np.testing.assert_array_equal(fe.ids[rows], b.ids)
        np.testing.assert_array_equal(fe.connectivity[rows], mesh.node_ids[b.connectivity])  # .inp order
    assert frd.fields() == list(fields)
    idx = mesh.node_index(frd.node_ids)
    for name, data in fields.items():
        blocks = frd.select(name)
        assert [(b.step, b.increment) for b in blocks] == [(1, 1), (1, 2), (2, 1)]
        np.testing.assert_allclose([b.time for b in blocks], times, rtol=5e-6)
        for k, block in enumerate(blocks):
            ids, values = frd.read(block)
            np.testing.assert_array_equal(ids, frd.node_ids)
            expected = np.broadcast_to(data[k], (mesh.n_nodes,)) if data.ndim == 1 else data[k]
            expected = expected[idx].reshape(len(idx), -1)
            if name == "STRESS":
                expected = expected[:, [0, 1, 2, 3, 5, 4]]  # SXY SYZ SZX
            elif name == "TOSTRAIN":
                expected = expected[:, [0, 1, 2, 3, 5, 4]] * [1, 1, 1, 0.5, 0.5, 0.5]  # tensor shear
            assert np.all(np.abs(values - expected) <= _tolerance(encoding, expected))
    assert frd.select("DISP")[0].components == ("D1", "D2", "D3")
    assert frd.select("STRESS")[0].components == ("SXX", "SYY", "SZZ", "SXY", "SYZ", "SZX")
    assert frd.select("TWO")[0].components == ("C1", "C2") and frd.select("ERRIND")[0].components == ("ERRIND",)
    text = path.read_bytes()
    assert text.count(b"ind=1.00E-04") == len(fields) and text.count(b"x           ") >= len(fields)


def test_read_calculix_with_the_deck_and_precise_times(tmp_path):
    mesh = ccx_decks.mixed_mesh()
    times = np.array([0.5, 1.0, 1234.56789012, 2.0e10])[:3]
    u = fields_for(mesh)["DISP"]
    write_frd(tmp_path / "run.frd", mesh, times, {"DISP": u}, encoding="float64")
    run = read_calculix(write_inp(tmp_path / "run.inp", mesh))
    np.testing.assert_array_equal(run.times, [0.5, 1.0, 1234.56789])  # ccx's 12-character time field
    assert run.metadata["frd_steps"] == [[1, 1], [1, 2], [1, 3]] and run.metadata["frd_encoding"] == "float64"
    back = np.array([f.data["displacement"] for f in run.frames()])
    unused = mesh.node_index([mesh.node_ids[-1]])[0]
    np.testing.assert_array_equal(np.delete(back, unused, axis=1), np.delete(u, unused, axis=1))
    assert np.all(back[:, unused] == 0.0)


@pytest.mark.parametrize("name", ["c3d20", "c3d10"])
@pytest.mark.parametrize("encoding", FRD_ENCODINGS)
def test_ccx_files_rewritten_byte_for_byte(tmp_path, name, encoding):
    """ccx's shipped .frd files (same deck in three encodings): the float64 values written back
    give ccx's file of each encoding byte for byte from the node block on."""
    mesh = read_inp(DATA / f"{name}.inp")
    src = read_frd(DATA / f"{name}_float64.frd")
    blocks = src.select("DISP")
    u = np.zeros((len(blocks), mesh.n_nodes, 3))
    for k, b in enumerate(blocks):
        ids, values = src.read(b)
        u[k, mesh.node_index(ids)] = values
    ours = write_frd(tmp_path / "x.frd", mesh, [b.time for b in blocks], {"DISP": u}, encoding=encoding,
                     steps=[(b.step, b.increment) for b in blocks]).read_bytes()
    theirs = (DATA / f"{name}_{encoding}.frd").read_bytes()
    assert ours.split(b"    2C", 1)[1] == theirs.split(b"    2C", 1)[1]
    if name == "c3d20":  # the he20 line of the file: nodes 13-16 and 17-20 swapped
        lines = ours.decode("latin-1").splitlines()
        if encoding == "ascii":
            start = next(i for i, t in enumerate(lines) if t.startswith("    3C"))
            raw = [int(t[k : k + 10]) for t in lines[start + 2 : start + 4] for k in range(3, len(t), 10)]
            np.testing.assert_array_equal(raw, mesh.node_ids[mesh.blocks[0].connectivity[0]][HE20_FRD_TO_INP])


def test_steps_and_per_step_values(tmp_path):
    mesh = ccx_decks.mixed_mesh()
    path = write_frd(tmp_path / "a.frd", mesh, [1.0, 2.0, 3.0, 4.0], {"ERRIND": [1.0, 2.0, 3.0, 4.0]}, steps=[2, 2, 5, 5])
    frd = read_frd(path)
    assert [(b.step, b.increment, b.counter) for b in frd.blocks] == [(2, 1, 1), (2, 2, 2), (5, 1, 3), (5, 2, 4)]
    ids, values = frd.read(frd.blocks[2])
    assert values.shape == (len(ids), 1) and np.all(values == 3.0)
    # no fields, no times: the mesh alone
    frd = read_frd(write_frd(tmp_path / "b.frd", mesh, [], {}))
    assert frd.complete and not frd.blocks and len(frd.node_ids) == mesh.n_nodes - 1


def _check_error(tmp_path, match, mesh=None, times=(1.0, 2.0), fields=None, **kw):
    mesh = ccx_decks.mixed_mesh() if mesh is None else mesh
    fields = {"DISP": np.zeros((2, mesh.n_nodes, 3))} if fields is None else fields
    target = tmp_path / "bad.frd"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match=match):
        write_frd(target, mesh, times, fields, **kw)
    assert target.read_bytes() == b"previous"  # never replaced by a partial file
    assert [p.name for p in tmp_path.iterdir()] == ["bad.frd"]  # no temporary file left


def test_bad_inputs(tmp_path):
    mesh = ccx_decks.mixed_mesh()
    n = mesh.n_nodes
    _check_error(tmp_path, r"field 'DISP' has shape \(2, 5, 3\); expected \(n_times, n_nodes\[, k\]\) = \(2, "
                 + str(n), fields={"DISP": np.zeros((2, 5, 3))})
    _check_error(tmp_path, r"field 'STRESS' needs 6 components per node; got shape", fields={"STRESS": np.zeros((2, n, 3))})
    _check_error(tmp_path, "field name 'TOO_LONG_NAME' must be 1-8 ASCII", fields={"TOO_LONG_NAME": np.zeros((2, n))})
    _check_error(tmp_path, "times must increase; time 1 is 1.0 after 1.0", times=(1.0, 1.0))
    _check_error(tmp_path, "encoding must be one of", encoding="binary")
    _check_error(tmp_path, "steps must be 2 step numbers", steps=[(1, 1)])
    _check_error(tmp_path, "description .* at most 66", description="x" * 67)
    _check_error(tmp_path, "frame text 'ind=1.234E-03' must be printable ASCII of at most 12", frame_text=["ind=1.234E-03", ""])
    bad = np.zeros((2, n, 3))
    bad[1, 4, 2] = np.nan
    node = mesh.node_ids[4]
    _check_error(tmp_path, rf"field 'DISP' at output 1 \(t=2\) has the non-finite value nan at node id {node}",
                 fields={"DISP": bad})
    big = np.zeros((2, n, 3))
    big[0, 2, 0] = 1e39
    _check_error(tmp_path, r"1e\+39 at id .* beyond float32 .* encoding='float64'", fields={"DISP": big})
    write_frd(tmp_path / "ok.frd", mesh, [1.0, 2.0], {"DISP": big}, encoding="float64")  # float64 holds it
    (tmp_path / "ok.frd").unlink()
    nodes = mesh.nodes
    dup = Mesh(nodes, mesh.blocks, node_ids=np.r_[mesh.node_ids[:-1], mesh.node_ids[0]])
    _check_error(tmp_path, rf"duplicate node ids, e.g. \[{mesh.node_ids[0]}\]", mesh=dup)
    huge = Mesh(nodes, mesh.blocks, node_ids=mesh.node_ids + 2**31)
    _check_error(tmp_path, r"node id \d+ outside 1..2147483647", mesh=huge)
    empty = Mesh(nodes, ())
    _check_error(tmp_path, "the mesh has no elements", mesh=empty)
