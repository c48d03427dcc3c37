"""Z-set reader tests.

The writer below follows the format as documented in romdask/io/zset.py (layout of the binaries
as read by Safran's BasicTools ``IO/UtReader.py``); ``data/zset/one.*`` was written separately
with ``struct`` (big-endian float32) to the same spec.
"""

from pathlib import Path

import numpy as np
import pytest

from romdask.fem.elements import get_element
from romdask.io.run import ReaderError
from romdask.io.zset import read_geof, read_zset

DATA = Path(__file__).parent / "data" / "zset"


def write_geof(path, node_ids, nodes, elements, nsets=None, elsets=None):
    """elements: list of (id, zset_type, node ids in Z-set order)."""
    lines = ["***geometry", "**node", f"{len(nodes)} 3"]
    lines += [f"{i} {float(x)!r} {float(y)!r} {float(z)!r}" for i, (x, y, z) in zip(node_ids, nodes)]
    lines += ["**element", str(len(elements))]
    lines += [f"{i} {t} " + " ".join(map(str, c)) for i, t, c in elements]
    lines.append("***group")
    for kw, sets in (("**nset", nsets or {}), ("**elset", elsets or {})):
        for name, ids in sets.items():
            lines += [f"{kw} {name}", " ".join(map(str, ids))]
    lines.append("***return")
    Path(path).write_text("\n".join(lines) + "\n")


def write_ut(stem, meshfile, times, node_fields, integ_fields=None):
    """node_fields: name -> (n_steps, n_nodes); integ_fields: name -> (n_steps, n_el, n_ip)."""
    stem = Path(stem)
    integ_fields = integ_fields or {}
    head = [f"**meshfile {meshfile}", "**node " + " ".join(node_fields), "**integ " + " ".join(integ_fields),
            "**element"]
    head += [f"{k + 1} 1 1 {k} {t:.15e}" for k, t in enumerate(times)]
    stem.with_suffix(".ut").write_text("\n".join(head) + "\n")
    node = np.stack([node_fields[n] for n in node_fields], axis=1)  # (time, field, node)
    node.astype(">f4").tofile(stem.with_suffix(".node"))
    if integ_fields:
        integ = np.stack([integ_fields[n] for n in integ_fields], axis=2)  # (time, el, field, ip)
        integ.astype(">f4").tofile(stem.with_suffix(".integ"))


def _grid(n=2):
    """n x 1 x 1 hexahedra of unit size, node ids 101..., Z-set/CalculiX c3d8 order."""
    xs = np.arange(n + 1.0)
    nodes = np.array([[x, y, z] for z in (0.0, 1.0) for y in (0.0, 1.0) for x in xs])
    idx = lambda i, j, k: k * 2 * (n + 1) + j * (n + 1) + i  # noqa: E731
    conn = [[idx(i, 0, 0), idx(i + 1, 0, 0), idx(i + 1, 1, 0), idx(i, 1, 0),
             idx(i, 0, 1), idx(i + 1, 0, 1), idx(i + 1, 1, 1), idx(i, 1, 1)] for i in range(n)]
    return nodes, np.array(conn)


def test_hand_made_sample():
    run = read_zset(DATA / "one.ut")
    assert run.times.tolist() == [0.0, 0.5] and set(run.fields) == {"displacement", "strain", "p"}
    assert run.mesh.node_ids.tolist() == [10, 20, 30, 40, 50, 60, 70, 80]
    assert run.mesh.element_ids.tolist() == [7] and run.mesh.node_sets["bottom"].tolist() == [0, 1, 2, 3]
    f = list(run.frames())[1]
    x = run.mesh.nodes
    np.testing.assert_allclose(f.data["displacement"][:, 0], 0.005 * x[:, 0] + 0.01 * x[:, 1], rtol=1e-6)
    # eto12 = 0.005 (tensor) -> engineering xy = 0.01; recomputed from U with the C3D8 B matrix
    el = get_element("C3D8")
    dn = el.shape_derivatives(el.points)
    g = np.einsum("qna,ni->qia", dn, f.data["displacement"])  # unit cube: dx/dxi = 1/2
    eps_xy = 2 * (g[:, 0, 1] + g[:, 1, 0])
    np.testing.assert_allclose(f.data["strain"][:, 3], eps_xy, rtol=1e-6)
    np.testing.assert_allclose(f.data["strain"][0], [0.005, 0, 0, 0.01, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(f.data["p"][:, 0], 0.05, rtol=1e-6)
    assert run.partition is None and run.solver == "zset"


def test_round_trip_c3d8_with_ip_fields(tmp_path):
    nodes, conn = _grid(2)
    ids = np.arange(101, 101 + len(nodes))
    write_geof(tmp_path / "m.geof", ids, nodes, [(5 + e, "c3d8", ids[c]) for e, c in enumerate(conn)],
               nsets={"left": ids[nodes[:, 0] == 0]})
    rng = np.random.default_rng(0)
    times = [0.0, 1.0, 2.5]
    u = {c: rng.normal(size=(3, len(nodes))).astype(np.float32) for c in ("U1", "U2", "U3")}
    names = [f"{p}{c}" for p in ("sig", "eto") for c in ("11", "22", "33", "12", "23", "31")] + ["epcum"]
    integ = {n: rng.normal(size=(3, 2, 8)).astype(np.float32) for n in names}
    write_ut(tmp_path / "r", "m.geof", times, u, integ)
    run = read_zset(tmp_path / "r.ut")
    assert run.name == "r" and run.times.tolist() == times
    assert run.mesh.element_ids.tolist() == [5, 6] and run.mesh.node_sets["left"].size == 4
    for k, f in enumerate(run.frames()):
        np.testing.assert_array_equal(f.data["displacement"], np.stack([u["U1"][k], u["U2"][k], u["U3"][k]], 1))
        for field, p, scale in (("stress", "sig", 1), ("strain", "eto", 2)):
            a = f.data[field]
            assert a.shape == (16, 6)
            np.testing.assert_array_equal(a[:, 0], integ[p + "11"][k].ravel())
            np.testing.assert_array_equal(a[:, 3], scale * integ[p + "12"][k].ravel().astype(np.float64))
            np.testing.assert_array_equal(a[:, 4], scale * integ[p + "31"][k].ravel().astype(np.float64))  # xz
            np.testing.assert_array_equal(a[:, 5], scale * integ[p + "23"][k].ravel().astype(np.float64))  # yz
        np.testing.assert_array_equal(f.data["p"][:, 0], integ["epcum"][k].ravel())


def test_c3d20_and_tetra_node_orders(tmp_path):
    # c3d20: Z-set order built from CalculiX reference coordinates
    ref = get_element("C3D20").ref_nodes
    perm = [0, 2, 4, 6, 12, 14, 16, 18, 1, 3, 5, 7, 13, 15, 17, 19, 8, 9, 10, 11]
    zs_nodes = np.empty((20, 3))
    zs_nodes[perm] = ref  # CalculiX node i sits at Z-set position perm[i]
    # tetra10 in the "ring" layout, reversed orientation (Z-set convention unknown: detected)
    t = get_element("C3D10").ref_nodes + [3.0, 0, 0]
    ring = np.array([t[0], t[4], t[1], t[5], t[2], t[6], t[7], t[8], t[9], t[3]])
    nodes = np.vstack([zs_nodes, ring])
    ids = np.arange(1, 31)
    write_geof(tmp_path / "m.geof", ids, nodes, [(1, "c3d20", ids[:20]), (2, "c3d10", ids[20:])])
    mesh, _, notes = read_geof(tmp_path / "m.geof")
    np.testing.assert_array_equal(mesh.nodes[mesh.blocks[0].connectivity[0]], ref)
    np.testing.assert_array_equal(mesh.nodes[mesh.blocks[1].connectivity[0]], t)
    assert notes["c3d10_node_order"] == "ring" and notes["c3d10_orientation"] == "same as CalculiX"
    # the same tetra with nodes 2 and 3 swapped -> detected and flipped back to positive volume
    ring2 = ring[[0, 5, 4, 3, 2, 1, 6, 8, 7, 9]]
    write_geof(tmp_path / "n.geof", ids[:10], ring2, [(2, "c3d10", ids[:10])])
    mesh, _, notes = read_geof(tmp_path / "n.geof")
    assert notes["c3d10_orientation"].startswith("reversed")
    x = mesh.nodes[mesh.blocks[0].connectivity[0]]
    assert np.dot(np.cross(x[1] - x[0], x[2] - x[0]), x[3] - x[0]) > 0
    for k, (i, j) in enumerate(((0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3))):
        np.testing.assert_allclose(x[4 + k], (x[i] + x[j]) / 2)


def test_tetra_ip_fields_omitted(tmp_path):
    t = get_element("C3D4").ref_nodes
    write_geof(tmp_path / "m.geof", [1, 2, 3, 4], t, [(1, "c3d4", [1, 2, 3, 4])])
    write_ut(tmp_path / "r", "m.geof", [0.0], {c: np.zeros((1, 4)) for c in ("U1", "U2", "U3")},
             {"sig11": np.zeros((1, 1, 4))})
    run = read_zset(tmp_path / "r.ut")
    assert set(run.fields) == {"displacement"} and "c3d4" in run.metadata["omitted_fields"]["sig11"]
    assert len(list(run.frames())) == 1


def _decomposed(tmp_path, shift=0.0):
    nodes, conn = _grid(2)
    ids = np.arange(1, len(nodes) + 1)
    write_geof(tmp_path / "c.geof", ids, nodes, [(e + 1, "c3d8", ids[c]) for e, c in enumerate(conn)])
    (tmp_path / "c.cut").write_text("***decomposition\n  **global_mesh c.geof\n  **domains 2\n")
    (tmp_path / "c-pmeshes").mkdir()
    rng = np.random.default_rng(1)
    u = rng.normal(size=(2, 3, len(nodes))).astype(np.float32)
    for d in range(2):
        local = np.unique(conn[d])
        lnodes = nodes[local] + (shift if d == 1 else 0.0)
        write_geof(tmp_path / "c-pmeshes" / f"c-00{d + 1}.geof", ids[local], lnodes, [(d + 1, "c3d8", ids[conn[d]])])
        write_ut(tmp_path / f"c-00{d + 1}", f"c-pmeshes/c-00{d + 1}.geof", [0.0, 1.0],
                 {c: u[:, i, local] for i, c in enumerate(("U1", "U2", "U3"))})
    return nodes, conn, u


def test_decomposed_run(tmp_path):
    nodes, conn, u = _decomposed(tmp_path)
    run = read_zset(tmp_path / "c.ut")
    assert run.metadata["decomposed"] and run.partition.node_part.tolist() == [0, 0, 1] * 4
    assert run.partition.element_part.tolist() == [0, 1]  # the element keeps its subdomain
    for k, f in enumerate(run.frames()):
        np.testing.assert_array_equal(f.data["displacement"], u[k].T)


def test_decomposed_inconsistent(tmp_path):
    _decomposed(tmp_path, shift=0.5)
    with pytest.raises(ReaderError, match=r"c-002\.geof: inconsistent pmeshes"):
        read_zset(tmp_path / "c.ut")


def _simple(tmp_path, times=(0.0, 1.0), value=0.0, etype="c3d8"):
    nodes, conn = _grid(1)
    write_geof(tmp_path / "m.geof", range(1, 9), nodes, [(1, etype, conn[0] + 1)])
    write_ut(tmp_path / "r", "m.geof", list(times),
             {c: np.full((len(times), 8), value) for c in ("U1", "U2", "U3")})
    return tmp_path / "r.ut"


def test_bad_inputs(tmp_path):
    ut = _simple(tmp_path)
    node = tmp_path / "r.node"
    node.write_bytes(node.read_bytes()[:-4])
    with pytest.raises(ReaderError, match=r"r\.node: truncated: 188 bytes, the \.ut header implies 192"):
        read_zset(ut)
    node.unlink()
    with pytest.raises(ReaderError, match=r"r\.node: result file not found"):
        read_zset(ut)
    (tmp_path / "m.geof").unlink()
    with pytest.raises(ReaderError, match=r"m\.geof: mesh file not found"):
        read_zset(ut)
    (tmp_path / "a").mkdir()
    with pytest.raises(ReaderError, match="unsupported element type 'c2d8'"):
        read_zset(_simple(tmp_path / "a", etype="c2d8"))
    (tmp_path / "b").mkdir()
    run = read_zset(_simple(tmp_path / "b", value=np.nan))
    with pytest.raises(ReaderError, match=r"r\.node: time 0 .*non-finite displacement"):
        list(run.frames())
    (tmp_path / "c").mkdir()
    with pytest.raises(ReaderError, match=r"r\.ut: non-increasing times"):
        read_zset(_simple(tmp_path / "c", times=(0.0, 1.0, 1.0)))
    with pytest.raises(ReaderError, match="file not found"):
        read_zset(tmp_path / "nothing.ut")


def test_temperature_node_field(tmp_path):
    """A nodal field TP (Z-set's temperature dof) becomes the node field "temperature" (T)."""
    nodes, conn = _grid(1)
    write_geof(tmp_path / "m.geof", range(1, 9), nodes, [(1, "c3d8", conn[0] + 1)])
    tp = 20.0 + np.arange(16, dtype=np.float32).reshape(2, 8)
    write_ut(tmp_path / "r", "m.geof", [0.0, 1.0], {**{c: np.zeros((2, 8)) for c in ("U1", "U2", "U3")}, "TP": tp})
    run = read_zset(tmp_path / "r.ut")
    assert run.fields["temperature"].location == "node" and run.fields["temperature"].components == ("T",)
    for k, frame in enumerate(run.frames()):
        np.testing.assert_array_equal(frame.data["temperature"][:, 0], tp[k])
    (tmp_path / "no").mkdir()
    assert "temperature" not in read_zset(_simple(tmp_path / "no")).fields
    tp[1, 3] = np.nan
    write_ut(tmp_path / "r", "m.geof", [0.0, 1.0], {**{c: np.zeros((2, 8)) for c in ("U1", "U2", "U3")}, "TP": tp})
    with pytest.raises(ReaderError, match=r"r\.node: time 1 \(t=1\): non-finite temperature"):
        list(read_zset(tmp_path / "r.ut").frames())


def _header_run(tmp_path, node_names, integ_names, etype="c3d8", elsets=None):
    """One element, every variable = its position in the header + 10 * time."""
    nodes, conn = _grid(1)
    if etype == "c3d4":
        nodes, conn = get_element("C3D4").ref_nodes, np.array([[0, 1, 2, 3]])
    n_ip = {"c3d8": 8, "c3d4": 4}[etype]
    write_geof(tmp_path / "m.geof", range(1, len(nodes) + 1), nodes, [(1, etype, conn[0] + 1)], elsets=elsets)
    node = {n: np.full((2, len(nodes)), i, np.float32) + [[0], [10]] for i, n in enumerate(node_names)}
    integ = {n: np.full((2, 1, n_ip), i, np.float32) + np.array([0, 10])[:, None, None]
             for i, n in enumerate(integ_names)}
    write_ut(tmp_path / "r", "m.geof", [0.0, 1.0], node, integ)
    return read_zset(tmp_path / "r.ut")


def test_every_variable_stored_or_omitted_with_a_reason(tmp_path):
    integ = ["epcum", "evcum", "evcum1", "evcum2", "time", "x2", "x3", "b_11", "b_22", "b_33", "b_12", "b_23", "b_31", "q"]
    run = _header_run(tmp_path, ["U1", "U2", "U3", "TP", "RU1", "RU2", "RU3", "V1", "V2"], integ)
    om = run.metadata["omitted_fields"]
    assert om.keys() == {"evcum1", "evcum2", "time"}
    assert "already taken" in om["evcum1"] and "not usable" in om["time"]
    assert run.metadata["zset_fields"] == {
        "displacement": ["U1", "U2", "U3"], "temperature": ["TP"], "reaction_force": ["RU1", "RU2", "RU3"],
        "V": ["V1", "V2"], "p": ["epcum"], "evcum": ["evcum"], "x2": ["x2"], "x3": ["x3"],  # not numbered from 1
        "b": ["b_11", "b_22", "b_33", "b_12", "b_31", "b_23"], "q": ["q"]}
    frame = list(run.frames())[1]
    np.testing.assert_array_equal(frame.data["V"][0], [17, 18])
    np.testing.assert_array_equal(frame.data["b"][0], [17, 18, 19, 20, 22, 21])  # xz <- b_31
    np.testing.assert_array_equal(frame.data["q"][:, 0], np.full(8, 23))


def test_repeated_variable_and_tetra_ip_variables_are_listed(tmp_path):
    _header_run(tmp_path, ["U1", "U2", "U3", "U9"], ["sig11", "epcum"], etype="c3d4")
    ut = tmp_path / "r.ut"
    ut.write_text(ut.read_text().replace("U9", "U1"))
    run = read_zset(ut)
    om = run.metadata["omitted_fields"]
    assert set(run.fields) == {"displacement"} and set(om) == {"U1", "sig11", "epcum"}
    assert "repeated" in om["U1"] and "c3d4" in om["epcum"]


def test_empty_domain_sets_of_a_subdomain_mesh(tmp_path):
    """Each subdomain mesh of a Z-set split keeps every domain set, the others' empty: read alone,
    it has no split (a single non-empty domain)."""
    run = _header_run(tmp_path, ["U1", "U2", "U3"], [], elsets={"domain000": [], "domain001": [1]})
    assert run.partition is None and "partition" not in run.metadata


def test_other_element_sets_named_domain_are_not_a_split(tmp_path):
    """Only Z-set's names (domain + 3 digits) make a split: a user's 'domain1' is a plain set."""
    run = _header_run(tmp_path, ["U1", "U2", "U3"], [], elsets={"domain1": [1], "domain2": [1]})
    assert run.partition is None and run.mesh.element_sets["domain2"].tolist() == [0]
