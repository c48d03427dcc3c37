"""read_frd and read_calculix: the three .frd encodings, he20 reordering, bad files.

Shipped files (tests/io/data/calculix, made by ccx 2.20 from ccx_decks.write_deck with one
element) test the parser without ccx; the ccx tests generate and run small decks.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

from romdask.io.calculix import read_calculix, read_frd, read_inp  # noqa: E402
from romdask.io.calculix.frd import HE20_FRD_TO_INP  # noqa: E402
from romdask.io.run import ReaderError  # noqa: E402

DATA = Path(__file__).parent / "data" / "calculix"
ENCODINGS = ("ascii", "float32", "float64")
needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="`ccx` is not installed")


def _displacements(run):
    return np.array([f.data["displacement"] for f in run.frames()])


def _check_encodings_agree(runs):
    """ASCII: 6 printed digits (relative 5e-6 of the value); float32: its rounding (2^-24)."""
    u = {enc: _displacements(r) for enc, r in runs.items()}
    exact = u["float64"]
    assert np.abs(exact).max() > 5e-4
    assert np.all(np.abs(u["ascii"] - exact) <= 5e-6 * np.abs(exact) + 1e-300)
    assert np.all(np.abs(u["float32"] - exact) <= 2.0**-24 * np.abs(exact) + 1e-300)
    assert not np.array_equal(u["float32"], exact)  # really three encodings
    for r in runs.values():
        np.testing.assert_array_equal(r.times, runs["float64"].times)


@pytest.mark.parametrize("name", ["c3d20", "c3d10"])
def test_shipped_encodings_agree(name):
    runs = {enc: read_calculix(DATA / f"{name}.inp", frd=DATA / f"{name}_{enc}.frd") for enc in ENCODINGS}
    _check_encodings_agree(runs)
    run = runs["float64"]
    assert run.solver == "calculix" and run.solver_version == "2.20"
    assert run.sources == (DATA / f"{name}.inp", DATA / f"{name}_float64.frd", DATA / f"{name}.dat")
    np.testing.assert_allclose(run.times, [0.5, 1.0, 2.0])
    assert run.metadata["frd_steps"] == [[1, 1], [1, 2], [2, 1]]
    assert run.metadata["frd_encoding"] == "float64" and run.metadata["frd_complete"]
    # the unused node is not in the .frd and gets 0; the loaded face moves by the prescribed value
    u = _displacements(run)
    mesh = run.mesh
    assert np.all(u[:, mesh.node_index([ccx_decks.UNUSED_NODE_ID])[0]] == 0.0)
    # (*VISCO applies the step's prescribed displacement at once)
    assert np.abs(u[:, mesh.node_sets["LOAD"], 0] - np.array([0.003, 0.003, -0.001])[:, None]).max() < 1e-15
    frames = list(run.frames())
    assert [f.step for f in frames] == [0, 1, 2] and frames[-1].time == 2.0


def test_shipped_nodes_and_he20_reordering():
    mesh = read_inp(DATA / "c3d20.inp")
    for enc in ENCODINGS:
        frd = read_frd(DATA / f"c3d20_{enc}.frd")
        # only the nodes used by elements are written
        np.testing.assert_array_equal(np.sort(frd.node_ids), np.sort(mesh.node_ids[:-1]))
        xyz = mesh.nodes[mesh.node_index(frd.node_ids)]
        if enc == "ascii":
            assert np.all(np.abs(frd.nodes - xyz) <= 5e-6 * np.abs(xyz))
        else:  # binary coordinates are float64 in both binary encodings
            np.testing.assert_array_equal(frd.nodes, xyz)
        (el,) = frd.elements
        assert el.type == "C3D20" and el.code == 4
        np.testing.assert_array_equal(el.ids, mesh.blocks[0].ids)
        np.testing.assert_array_equal(el.connectivity, mesh.node_ids[mesh.blocks[0].connectivity])
    # the file itself holds the .frd order: nodes 13-16 and 17-20 of the deck swapped
    lines = (DATA / "c3d20_ascii.frd").read_text().splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith("    3C"))
    raw = [int(t[k : k + 10]) for t in lines[start + 2 : start + 4] for k in range(3, len(t), 10)]
    inp_ids = mesh.node_ids[mesh.blocks[0].connectivity[0]]
    np.testing.assert_array_equal(raw, inp_ids[HE20_FRD_TO_INP])
    assert not np.array_equal(raw, inp_ids)


def test_streaming_index_reads_single_blocks():
    frd = read_frd(DATA / "c3d10_float64.frd")
    assert frd.fields() == ["DISP"] and frd.complete
    blocks = frd.select("DISP")
    assert [b.components for b in blocks] == [("D1", "D2", "D3")] * 3
    assert all(b.n_records == len(frd.node_ids) for b in blocks)
    # binary record = int32 id + 3 float64; blocks are read at their offsets, in any order
    assert all(b.nbytes == b.n_records * 28 for b in blocks)
    last_ids, last = frd.read(blocks[-1])
    all_frames = list(frd.frames("DISP"))
    np.testing.assert_array_equal(all_frames[-1][2], last)
    np.testing.assert_array_equal(last_ids, frd.node_ids)


# ---- bad files -------------------------------------------------------------------------------


def _copy(tmp_path, name, enc):
    inp = tmp_path / "run.inp"
    inp.write_text((DATA / f"{name}.inp").read_text())
    shutil.copy(DATA / f"{name}_nodes.inc", tmp_path / f"{name}_nodes.inc")
    frd = tmp_path / "run.frd"
    shutil.copy(DATA / f"{name}_{enc}.frd", frd)
    return inp, frd


@pytest.mark.parametrize("enc", ENCODINGS)
def test_truncated_inside_a_frame(tmp_path, enc):
    inp, frd = _copy(tmp_path, "c3d10", enc)
    block = read_frd(frd).blocks[1]
    data = frd.read_bytes()
    frd.write_bytes(data[: block.offset + block.nbytes // 2 + 3])  # mid-record, mid-line
    with pytest.raises(ReaderError, match=r"result block 2 \(DISP, step 1, increment 2, t=1\).*truncated") as info:
        read_calculix(inp)
    assert str(frd) in str(info.value)


@pytest.mark.parametrize("enc", ENCODINGS)
def test_truncated_in_the_mesh(tmp_path, enc):
    _, frd = _copy(tmp_path, "c3d20", enc)
    data = frd.read_bytes()
    cut = data.index(b"    2C") + 200
    frd.write_bytes(data[:cut])
    with pytest.raises(ReaderError, match="node block.*truncated"):
        read_frd(frd)


@pytest.mark.parametrize("enc", ENCODINGS)
def test_cut_between_frames_is_an_incomplete_run(tmp_path, enc):
    inp, frd = _copy(tmp_path, "c3d10", enc)
    block = read_frd(frd).blocks[1]
    end = block.offset + block.nbytes + (4 if enc == "ascii" else 0)  # after ' -3\n'
    frd.write_bytes(frd.read_bytes()[:end])
    assert not read_frd(frd).complete
    with pytest.raises(ReaderError, match="no closing 9999.*allow_incomplete=True"):
        read_calculix(inp)
    run = read_calculix(inp, allow_incomplete=True)
    assert run.n_steps == 2 and not run.metadata["frd_complete"]


def _ascii_line(frd: Path, nth_result_line: int = 0):
    """Line index of the ``nth`` record of the second DISP block (0-based)."""
    lines = frd.read_bytes().split(b"\n")
    block = read_frd(frd).blocks[1]
    return lines, block.line - 1 + nth_result_line


def test_garbage_number_in_ascii_block(tmp_path):
    inp, frd = _copy(tmp_path, "c3d10", "ascii")
    lines, i = _ascii_line(frd, 3)
    lines[i] = lines[i][:25] + b" 1.23456X-03" + lines[i][37:]  # same width: the fast path fails
    frd.write_bytes(b"\n".join(lines))
    run = read_calculix(inp)  # indexing only reads headers
    message = rf"run.frd: line {i + 1}: cannot read number ' 1.23456X-03' in result block 2"
    with pytest.raises(ReaderError, match=message):
        list(run.frames())


def test_garbage_line_in_ascii_block(tmp_path):
    inp, frd = _copy(tmp_path, "c3d10", "ascii")
    lines, i = _ascii_line(frd, 2)
    good = lines[i]
    for bad in (good[:30] + b"garbage", good + b"7"):  # the fixed-size guess fails: lines scanned
        lines[i] = bad
        frd.write_bytes(b"\n".join(lines))
        with pytest.raises(ReaderError, match=rf"line {i + 1}: malformed record in result block 2"):
            list(read_calculix(inp).frames())
    lines[i] = b"this is no frd line"
    frd.write_bytes(b"\n".join(lines))
    with pytest.raises(ReaderError, match=rf"line {i + 1}: result block 2 .*unexpected line"):
        read_frd(frd)


@pytest.mark.parametrize("enc, bad", [("ascii", b"         NaN"), ("ascii", b"        -inf"),
                                      ("float32", np.float32(np.inf)), ("float64", np.float64(np.nan))])  # fmt: skip
def test_non_finite_values(tmp_path, enc, bad):
    inp, frd = _copy(tmp_path, "c3d10", enc)
    block = read_frd(frd).blocks[2]
    data = bytearray(frd.read_bytes())
    if enc == "ascii":
        lines = bytes(data).split(b"\n")
        i = block.line - 1 + 5
        lines[i] = lines[i][:13] + bad + lines[i][25:]
        frd.write_bytes(b"\n".join(lines))
    else:
        width = bad.itemsize
        pos = block.offset + 5 * (4 + 3 * width) + 4  # record 6, first component
        data[pos : pos + width] = bad.tobytes()
        frd.write_bytes(bytes(data))
    run = read_calculix(inp)
    with pytest.raises(ReaderError, match=r"non-finite value .* in result block 3 \(DISP, step 2"):
        list(run.frames())


def test_frd_node_ids_not_in_the_deck(tmp_path):
    inp, frd = _copy(tmp_path, "c3d10", "ascii")
    text = frd.read_text().replace(" -1       102 ", " -1      7777 ", 1)
    frd.write_text(text)
    with pytest.raises(ReaderError, match=r"run.frd: node ids not in the input deck: .*7777"):
        read_calculix(inp)


def test_frd_from_another_deck(tmp_path):
    inp, _ = _copy(tmp_path, "c3d10", "ascii")
    with pytest.raises(ReaderError, match="node ids not in the input deck|differs from the input deck"):
        read_calculix(inp, frd=DATA / "c3d20_ascii.frd")


def test_non_increasing_times(tmp_path):
    inp, frd = _copy(tmp_path, "c3d10", "ascii")
    text = frd.read_text().replace("  100CL  102 1.000000000", "  100CL  102 5.00000E-01", 1)
    assert text != frd.read_text()
    frd.write_text(text)
    with pytest.raises(ReaderError, match=r"run.frd: non-increasing times: result block 2 .* after t=0.5"):
        read_calculix(inp)


def test_missing_files(tmp_path):
    inp, frd = _copy(tmp_path, "c3d10", "ascii")
    frd.unlink()
    looked_for = r"missing CalculiX file\(s\): .*run.frd .*looked for .*run.inp and .*run.frd"
    with pytest.raises(ReaderError, match=looked_for):
        read_calculix(inp)
    with pytest.raises(ReaderError, match=r"missing CalculiX file\(s\): .*other.inp, .*other.frd"):
        read_calculix(tmp_path / "other.dat")
    with pytest.raises(ReaderError, match="cannot open the result file"):
        read_frd(tmp_path / "run.frd")


def test_unknown_frd_element_type(tmp_path):
    _, frd = _copy(tmp_path, "c3d10", "ascii")
    frd.write_text(frd.read_text().replace(" -1        10    6    0    1", " -1        10   66    0    1"))
    with pytest.raises(ReaderError, match=r"line \d+: unknown .frd element type 66 \(element 10\)"):
        read_frd(frd)


# ---- with ccx --------------------------------------------------------------------------------


@needs_ccx
@pytest.mark.parametrize("element_type, segments", [
    ("C3D8", ccx_decks.SEGMENTS),
    ("C3D20R", [(0.0008, 1.0, 2), (0.0002, 1.0, 2)]),  # elastic: C3D20R diverges in plasticity here
])  # fmt: skip
def test_ccx_three_encodings(tmp_path, element_type, segments):
    runs = {}
    for enc in ENCODINGS:
        d = tmp_path / enc
        d.mkdir()
        deck = ccx_decks.write_deck(d, element_type, enc, segments=segments)
        ccx_decks.run_ccx(d)
        runs[enc] = read_calculix(d / "run.frd")
    _check_encodings_agree(runs)
    run = runs["float64"]
    n_inc = sum(s[2] for s in segments)
    assert run.n_steps == n_inc
    np.testing.assert_allclose(run.times, np.arange(1, n_inc + 1) * segments[0][1] / segments[0][2], rtol=1e-7)
    np.testing.assert_array_equal(run.mesh.blocks[0].ids, deck["element_ids"])
    frd = read_frd(tmp_path / "float64" / "run.frd")
    np.testing.assert_array_equal(frd.elements[0].connectivity, deck["node_ids"][deck["cells"]])


@needs_ccx
def test_ccx_element_fields_in_frd(tmp_path):
    """*EL FILE / *ELEMENT OUTPUT blocks (6 and 14 components, ' -2' continuation lines in
    ASCII) are indexed and read; read_calculix takes the DISP blocks only."""
    frds = {}
    for enc, card in (("ascii", "*EL FILE"), ("float64", "*ELEMENT OUTPUT,DOUBLE")):
        d = tmp_path / enc
        d.mkdir()
        ccx_decks.write_deck(d, "C3D8", enc)
        deck = d / "run.inp"
        deck.write_text(deck.read_text().replace("*END STEP", f"{card}\nS,E,PEEQ,SDV\n*END STEP"))
        ccx_decks.run_ccx(d)
        frds[enc] = read_frd(d / "run.frd")
        assert read_calculix(deck).n_steps == 8
    a, b = frds["ascii"], frds["float64"]
    assert a.fields() == b.fields() == ["DISP", "STRESS", "TOSTRAIN", "PE", "SDV", "ERROR"]
    assert [len(x.components) for x in a.blocks[:6]] == [3, 6, 6, 1, 14, 1]
    assert {x.encoding for x in b.blocks} == {"float64"}
    for x, y in zip(a.blocks, b.blocks):
        (ia, va), (ib, vb) = a.read(x), b.read(y)
        np.testing.assert_array_equal(ia, ib)
        assert np.all(np.abs(va - vb) <= 5e-6 * np.abs(vb) + 1e-300), x.describe()


@pytest.mark.parametrize("enc", ENCODINGS)
def test_ndtemp_is_the_temperature_field(tmp_path, enc):
    """NDTEMP blocks (ccx's NT output) become the node field "temperature" (T) of the run, in the
    three encodings; a file without NDTEMP has no temperature field."""
    from romdask.io.calculix import write_frd

    inp, _ = _copy(tmp_path, "c3d10", "float64")
    mesh = read_inp(inp)
    used = np.unique(mesh.blocks[0].connectivity)
    temps = 20.0 + np.arange(2)[:, None] * 100.0 + 0.001 * np.arange(mesh.n_nodes)[None, :]
    disp = np.zeros((2, mesh.n_nodes, 3))
    frd = write_frd(tmp_path / "run.frd", mesh, [0.5, 1.0], {"DISP": disp, "NDTEMP": temps}, encoding=enc)
    run = read_calculix(inp, frd=frd, problem_metadata=False)
    assert run.fields["temperature"].location == "node" and run.fields["temperature"].components == ("T",)
    tol = {"ascii": 5e-6, "float32": 2.0**-24, "float64": 0.0}[enc]
    for k, frame in enumerate(run.frames()):
        got = frame.data["temperature"]
        assert got.shape == (mesh.n_nodes, 1)
        assert np.all(np.abs(got[used, 0] - temps[k, used]) <= tol * np.abs(temps[k, used]))
    write_frd(tmp_path / "part.frd", mesh, [0.5, 1.0], {"DISP": disp}, encoding=enc)
    assert "temperature" not in read_calculix(inp, frd=tmp_path / "part.frd", problem_metadata=False).fields
