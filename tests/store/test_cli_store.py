"""`romdask ingest` and `romdask info`."""

from __future__ import annotations

import numpy as np

from romdask.cli import main
from romdask.fem.mesh import CellBlock, Mesh
from romdask.io import READERS
from romdask.io.run import FieldSpec, Frame, Run
from romdask.store import open_snapshots
from test_store import store_digest, synthetic_run, two_block_mesh


def write_npz_run(path, run: Run) -> None:
    """A test file format: the mesh and all frames of a run in one .npz."""
    frames = list(run.frames())
    m = run.mesh
    np.savez(path, nodes=m.nodes, node_ids=m.node_ids, conn0=m.blocks[0].connectivity, ids0=m.blocks[0].ids,
             conn1=m.blocks[1].connectivity, ids1=m.blocks[1].ids, times=run.times,
             u=np.array([f.data["displacement"] for f in frames]), s=np.array([f.data["stress"] for f in frames]))


def read_npz_run(path, **kw) -> Run:
    """The reader of :func:`write_npz_run` (registered for the CLI tests)."""
    d = np.load(path)
    mesh = Mesh(d["nodes"], (CellBlock("C3D8", d["conn0"], d["ids0"]), CellBlock("C3D8", d["conn1"], d["ids1"])),
                d["node_ids"])
    u, s, times = d["u"], d["s"], d["times"]
    fields = {"displacement": FieldSpec("node", ("x", "y", "z")),
              "stress": FieldSpec("ip", ("xx", "yy", "zz", "xy", "xz", "yz"))}

    def frames():
        for k in range(len(times)):
            yield Frame(k, times[k], {"displacement": u[k], "stress": s[k]})

    return Run(path.stem, mesh, times, fields, frames, solver="npz", sources=(path,))


def test_cli_ingest_and_info(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(READERS, ".npz", ("test_cli_store", "read_npz_run"))
    mesh = two_block_mesh()
    sources = []
    for i in range(2):
        p = tmp_path / f"load{i}.npz"
        write_npz_run(p, synthetic_run(mesh, "x", 5 + i, seed=i))
        sources.append(str(p))
    store = tmp_path / "out.zarr"
    assert main(["ingest", *sources, "--store", str(store), "--subdomains", "2"]) == 0
    out = capsys.readouterr().out
    assert "written: 2 run(s): load0, load1" in out
    ds = open_snapshots(store)
    assert ds.displacement.chunks[0] == (5, 6) and ds.attrs["compression"] == "lz4"
    digest = store_digest(store)
    assert main(["ingest", *sources, "--store", str(store)]) == 0
    assert "skipped: 2 run(s)" in capsys.readouterr().out
    assert store_digest(store) == digest

    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    offsets = ds.attrs["dof_offsets"]
    assert "romdask-snapshots v1" in out and "compression lz4" in out
    assert f"mesh: {mesh.n_nodes} nodes, {mesh.n_elements} elements ({mesh.n_elements} C3D8)" in out
    assert f"s0000: {offsets[1]} dofs" in out and f"s0001: {offsets[2] - offsets[1]} dofs" in out
    assert "runs: 2 (2 complete, 0 incomplete)" in out
    assert "load1: complete, 6 steps, t=0..2.5, fields displacement, stress" in out

    plain = tmp_path / "plain.zarr"
    assert main(["ingest", sources[0], "--store", str(plain), "--subdomains", "2", "--no-compression"]) == 0
    capsys.readouterr()
    assert open_snapshots(plain).attrs["compression"] is None
    assert np.array_equal(open_snapshots(plain).displacement.values, ds.displacement.values[:5])


def test_cli_errors(tmp_path, capsys):
    (tmp_path / "notastore").mkdir()
    assert main(["info", str(tmp_path / "notastore")]) == 1
    assert "not a romdask snapshot store" in capsys.readouterr().err
    (tmp_path / "run.csv").write_text("")
    assert main(["ingest", str(tmp_path / "run.csv"), "--store", str(tmp_path / "s.zarr"), "--subdomains", "2"]) == 1
    assert "no reader for files ending in '.csv'" in capsys.readouterr().err
