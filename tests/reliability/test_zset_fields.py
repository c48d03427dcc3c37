"""Issue 18 item 9: a Z-set result keeps every variable of its header (or lists what it leaves
out) and the solver's own subdomain split.

The files are written here to Z-set's layout as Safran's BasicTools reads and writes it
(``IO/UtReader.py``, ``IO/Parallel/UtMerger.py``), independently of romdask's reader:

- ``.node``: big-endian float32; for each output time, for each nodal variable of the
  ``**node`` line, the value at every node in ``.geof`` order;
- ``.integ``: big-endian float32; for each output time, for each element in ``.geof`` order,
  for each variable of the ``**integ`` line, the value at each integration point;
- a mesh split for a parallel run carries ``**elset domain000``, ``domain001``... (0-based;
  ``domain000`` holds the elements of the subdomain file ``<name>-001``), as in BasicTools'
  ``TestData/UtParExample/cube.geof`` written by Z-set.

The header mimics a crystal-plasticity-like Z-set law with 69 integration-point variables
(the size of the real file of the issue): tensors ``<stem>11 22 33 12 23 31``, per-system
variables ``<stem>1..n``, scalars.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from romdask.cli.main import main as romdask_main
from romdask.io.run import ReaderError
from romdask.io.zset import read_zset
from romdask.store import SnapshotStore, ingest

TENSOR = ("11", "22", "33", "12", "23", "31")  # Z-set's component order
NODE_VARS = ["U1", "U2", "U3", "RU1", "RU2", "RU3"]
INTEG_VARS = (
    [f"eto{c}" for c in TENSOR] + [f"sig{c}" for c in TENSOR] + [f"evi{c}" for c in TENSOR]
    + [f"alpha1_{c}" for c in TENSOR] + [f"alpha2_{c}" for c in TENSOR] + [f"ein{c}" for c in TENSOR]
    + ["epcum", "evcum"] + [f"gamev{k}" for k in range(1, 13)] + [f"gamcu{k}" for k in range(1, 7)]
    + [f"cucum{k}" for k in range(1, 7)] + ["evgeq", "lambda", "cugeq", "r1", "r2", "dam", "triax"]
)
N_IP = 8  # c3d8


def _mesh(nx=4, ny=2):
    """nx x ny x 1 unit hexahedra; node ids 1.., element ids 1.. (x fastest); Z-set c3d8 order."""
    nodes = np.array([[x, y, z] for z in (0.0, 1.0) for y in range(ny + 1) for x in range(nx + 1)], float)
    def nid(i, j, k):
        return 1 + k * (nx + 1) * (ny + 1) + j * (nx + 1) + i

    elements = []
    for j in range(ny):
        for i in range(nx):
            elements.append([nid(i, j, 0), nid(i + 1, j, 0), nid(i + 1, j + 1, 0), nid(i, j + 1, 0),
                             nid(i, j, 1), nid(i + 1, j, 1), nid(i + 1, j + 1, 1), nid(i, j + 1, 1)])
    return nodes, elements


def write_geof(path: Path, nodes, elements, element_ids=None, node_ids=None, elsets=None):
    node_ids = list(range(1, len(nodes) + 1)) if node_ids is None else node_ids
    element_ids = list(range(1, len(elements) + 1)) if element_ids is None else element_ids
    out = ["***geometry", " **node", f" {len(nodes)} 3"]
    out += [f" {i} {x:.15e} {y:.15e} {z:.15e}" for i, (x, y, z) in zip(node_ids, nodes)]
    out += [" **element", f" {len(elements)}"]
    out += [f" {e} c3d8 " + " ".join(str(n) for n in conn) for e, conn in zip(element_ids, elements)]
    out += ["***group", " **nset x0", " " + " ".join(str(i) for i, x in zip(node_ids, nodes) if x[0] == 0)]
    for name, ids in (elsets or {}).items():
        out += [f" **elset {name}", " " + " ".join(map(str, ids))]
    out.append("***return")
    path.write_text("\n".join(out) + "\n")


def write_results(stem: Path, meshfile: str, times, node_values, integ_values, element_vars=()):
    """node_values: (n_times, n_node_vars, n_nodes); integ_values: (n_times, n_elements,
    n_integ_vars, N_IP); written value by value with struct (big-endian float32)."""
    head = [f"**meshfile {meshfile}", "**node " + " ".join(NODE_VARS), "**integ " + " ".join(INTEG_VARS),
            "**element" + "".join(" " + v for v in element_vars)]
    head += [f"{k + 1} 1 {k + 1} {k} {t:.15e}" for k, t in enumerate(times)]
    stem.with_suffix(".ut").write_text("\n".join(head) + "\n")
    with open(stem.with_suffix(".node"), "wb") as f:
        for k in range(len(times)):
            for v in range(len(NODE_VARS)):
                f.writelines(struct.pack(">f", node_values[k, v, n]) for n in range(node_values.shape[2]))
    with open(stem.with_suffix(".integ"), "wb") as f:
        for k in range(len(times)):
            for e in range(integ_values.shape[1]):
                for v in range(len(INTEG_VARS)):
                    f.writelines(struct.pack(">f", integ_values[k, e, v, q]) for q in range(N_IP))


def make_run(folder: Path, domains=((1, 2, 5, 6), (3, 4, 7, 8)), element_vars=()):
    """A 69-variable Z-set result ``folder/cube.ut`` on 8 elements with the given domain sets."""
    nodes, elements = _mesh()
    elsets = {f"domain{d:03d}": ids for d, ids in enumerate(domains)}
    write_geof(folder / "cube.geof", nodes, elements, elsets=elsets)
    rng = np.random.default_rng(18)
    times = [0.0, 0.5, 1.0]
    node_values = rng.normal(size=(len(times), len(NODE_VARS), len(nodes))).astype(np.float32)
    integ_values = rng.normal(size=(len(times), len(elements), len(INTEG_VARS), N_IP)).astype(np.float32)
    write_results(folder / "cube", "cube.geof", times, node_values, integ_values, element_vars)
    return folder / "cube.ut", node_values, integ_values


def test_every_header_variable_is_stored_or_listed(tmp_path):
    ut, node_values, integ_values = make_run(tmp_path, element_vars=("vol",))
    assert len(INTEG_VARS) == 69
    run = read_zset(ut)
    stored = [v for members in run.metadata["zset_fields"].values() for v in members]
    omitted = run.metadata["omitted_fields"]
    assert len(stored) == len(set(stored)) and not set(stored) & set(omitted)
    assert sorted(stored + list(omitted)) == sorted(NODE_VARS + INTEG_VARS + ["vol"])
    assert list(omitted) == ["vol"] and "not read" in omitted["vol"]
    assert set(run.fields) == {"displacement", "reaction_force", "strain", "stress", "evi", "alpha1", "alpha2",
                               "ein", "p", "evcum", "gamev", "gamcu", "cucum", "evgeq", "lambda", "cugeq", "r",
                               "dam", "triax"}
    assert run.fields["reaction_force"].location == "node"
    assert run.fields["gamev"].components == tuple(f"gamev{k}" for k in range(1, 13))
    assert run.fields["r"].components == ("r1", "r2")  # <stem>1..n: one field
    assert run.fields["alpha2"].components == ("xx", "yy", "zz", "xy", "xz", "yz")
    col = {v: i for i, v in enumerate(INTEG_VARS)}

    def ip(k, v):  # c3d8: Z-set's point order is CalculiX's
        return integ_values[k, :, col[v], :].ravel().astype(np.float64)

    for k, frame in enumerate(run.frames()):
        np.testing.assert_array_equal(frame.data["reaction_force"], node_values[k, 3:6].T)
        np.testing.assert_array_equal(frame.data["alpha1"][:, 4], ip(k, "alpha1_31"))  # xz
        np.testing.assert_array_equal(frame.data["alpha1"][:, 5], ip(k, "alpha1_23"))  # yz
        np.testing.assert_array_equal(frame.data["strain"][:, 3], 2 * ip(k, "eto12"))  # engineering shear
        np.testing.assert_array_equal(frame.data["ein"][:, 3], ip(k, "ein12"))  # other tensors: tensor shear
        np.testing.assert_array_equal(frame.data["gamev"][:, 11], ip(k, "gamev12"))
        np.testing.assert_array_equal(frame.data["p"][:, 0], ip(k, "epcum"))
        np.testing.assert_array_equal(frame.data["evcum"][:, 0], ip(k, "evcum"))
        np.testing.assert_array_equal(frame.data["triax"][:, 0], ip(k, "triax"))


def test_ingest_stores_every_field_and_info_lists_them(tmp_path, capsys):
    ut, _, _ = make_run(tmp_path, element_vars=("vol",))
    run = read_zset(ut)
    store_path = tmp_path / "s.zarr"
    assert ingest([ut], store_path) == {"cube": "written"}
    attrs = SnapshotStore.open(store_path).runs()["cube"]
    assert set(attrs["fields"]) == set(run.fields)
    assert attrs["metadata"]["omitted_fields"] == {"vol": run.metadata["omitted_fields"]["vol"]}
    assert romdask_main(["info", str(store_path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("  cube:"))
    for name in run.fields:
        assert name in line
    assert "omitted fields: 1" in out and "vol: element variable" in out
    assert "solver's subdomains: Z-set domains" in out


def test_the_domain_split_is_the_store_partition(tmp_path):
    domains = ((1, 2, 5, 6), (3, 4, 7, 8))  # interface at x = 2; elements 3 and 7 touch it from domain 1
    ut, _, _ = make_run(tmp_path, domains)
    store = SnapshotStore.open(ingest([ut], tmp_path / "s.zarr") and tmp_path / "s.zarr")
    lay = store.layout
    assert store.n_subdomains == 2
    element_ids = np.concatenate([b.ids for b in lay.mesh.blocks])
    expected = {e: d for d, ids in enumerate(domains) for e in ids}
    assert np.asarray(lay.element_subdomain).tolist() == [expected[int(e)] for e in element_ids]
    assert "Z-set domains" in store.runs()["cube"]["metadata"]["partition"]
    # an explicit number of subdomains wins: METIS
    store3 = SnapshotStore.open(ingest([ut], tmp_path / "t.zarr", n_subdomains=3) and tmp_path / "t.zarr")
    assert store3.n_subdomains == 3


def test_the_split_of_subdomain_files_is_kept(tmp_path):
    """A decomposed run (``cube-001.ut``, ``cube-002.ut`` on pmeshes with global ids): each element
    stays in the subdomain of its file, also where all its nodes but some are shared."""
    nodes, elements = _mesh()
    domains = ((1, 2, 5, 6), (3, 4, 7, 8))
    write_geof(tmp_path / "cube.geof", nodes, elements)
    (tmp_path / "cube.cut").write_text("***decomposition\n  **global_mesh cube.geof\n  **domains 2\n")
    (tmp_path / "cube-pmeshes").mkdir()
    rng = np.random.default_rng(3)
    u = rng.normal(size=(2, 6, len(nodes))).astype(np.float32)
    for d, ids in enumerate(domains):
        conn = [elements[e - 1] for e in ids]
        local = sorted({n for c in conn for n in c})
        write_geof(tmp_path / "cube-pmeshes" / f"cube-00{d + 1}.geof", nodes[np.array(local) - 1], conn,
                   element_ids=list(ids), node_ids=local)
        integ = rng.normal(size=(2, len(ids), len(INTEG_VARS), N_IP)).astype(np.float32)
        write_results(tmp_path / f"cube-00{d + 1}", f"cube-pmeshes/cube-00{d + 1}.geof", [0.0, 1.0],
                      u[:, :, np.array(local) - 1], integ)
    files = sorted(tmp_path.glob("cube-00?.ut"))
    assert ingest(files, tmp_path / "s.zarr") == {"cube": "written"}
    lay = SnapshotStore.open(tmp_path / "s.zarr").layout
    element_ids = np.concatenate([b.ids for b in lay.mesh.blocks])
    expected = {e: d for d, ids in enumerate(domains) for e in ids}
    assert np.asarray(lay.element_subdomain).tolist() == [expected[int(e)] for e in element_ids]


@pytest.mark.parametrize("domains, problem", [
    (((1, 2, 5), (3, 4, 7, 8)), r"1 element\(s\) in none \(ids \[6\]\), 0 in several"),
    (((1, 2, 5, 6, 3), (3, 4, 7, 8)), r"0 element\(s\) in none \(ids \[\]\), 1 in several \(ids \[3\]\)"),
])
def test_a_bad_domain_split_is_a_clear_error(tmp_path, domains, problem):
    ut, _, _ = make_run(tmp_path, domains)
    with pytest.raises(ReaderError, match=r"cube\.geof: Z-set domain element sets domain000\.\.domain001 do not "
                                          r"split the mesh: " + problem):
        read_zset(ut)
    with pytest.raises(ReaderError, match=r"cube\.geof: Z-set domain element sets"):
        ingest([ut], tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_domain_sets_numbered_with_a_gap_are_an_error(tmp_path):
    nodes, elements = _mesh()
    ut, _, _ = make_run(tmp_path)
    write_geof(tmp_path / "cube.geof", nodes, elements, elsets={"domain000": [1, 2, 3, 4], "domain002": [5, 6, 7, 8]})
    with pytest.raises(ReaderError, match=r"cube\.geof: Z-set domain element sets \['domain000', 'domain002'\]: "
                                          r"numbers \[0, 2\] are not 0\.\.1"):
        read_zset(ut)
