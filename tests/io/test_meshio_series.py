import meshio
import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.io.meshio_series import read_pvd_series, read_xdmf_series
from romdask.io.run import ReaderError
from romdask.io.vtu import write_vtu_series

NODES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1.0],
                  [0.5, 0.5, 2.0]])
CELLS = [("hexahedron", np.array([range(8)])), ("tetra", np.array([[4, 5, 7, 8]])),
         ("quad", np.array([[0, 1, 2, 3]]))]
TIMES = [0.0, 0.25, 1.0]


def _u(n_steps=3, dim=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n_steps, len(NODES), dim))


def _write_xdmf(path, u, times=TIMES, name="displacement", point_extra=None, cells=CELLS):
    # meshio's TimeSeriesWriter puts the .h5 in the working directory: tests chdir to tmp_path
    with meshio.xdmf.TimeSeriesWriter(path) as w:
        w.write_points_cells(NODES, cells)
        for k, t in enumerate(times):
            w.write_data(t, point_data={name: u[k], **(point_extra or {})})
    return path


def _frames(run):
    return list(run.frames())


def test_xdmf_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    u = _u()
    run = read_xdmf_series(_write_xdmf(tmp_path / "r.xdmf", u, point_extra={"node_id": np.arange(11, 20)}))
    assert run.name == "r" and run.times.tolist() == TIMES
    assert [b.type for b in run.mesh.blocks] == ["C3D8", "C3D4"]  # quad dropped
    assert run.mesh.node_ids.tolist() == list(range(11, 20))
    np.testing.assert_array_equal(run.mesh.nodes, NODES)
    fr = _frames(run)
    assert [f.step for f in fr] == [0, 1, 2] and [f.time for f in fr] == TIMES
    for k, f in enumerate(fr):
        np.testing.assert_array_equal(f.data["displacement"], u[k])
        assert f.data["displacement"].dtype == np.float64
    # re-iterable
    np.testing.assert_array_equal(_frames(run)[2].data["displacement"], u[2])


def test_xdmf_2d_vectors_padded_and_custom_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    u = _u(dim=2)
    run = read_xdmf_series(_write_xdmf(tmp_path / "r.xdmf", u, name="f_12"), displacement="f_12")
    got = _frames(run)[1].data["displacement"]
    np.testing.assert_array_equal(got[:, :2], u[1])
    assert np.all(got[:, 2] == 0) and run.mesh.node_ids.tolist() == list(range(1, 10))


def test_xdmf_hex20_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pts = np.vstack([NODES[:8], np.random.default_rng(1).random((12, 3))])
    with meshio.xdmf.TimeSeriesWriter(tmp_path / "h.xdmf") as w:
        w.write_points_cells(pts, [("hexahedron20", np.array([range(20)]))])
        w.write_data(0.0, point_data={"u": np.zeros((20, 3))})
    assert read_xdmf_series(tmp_path / "h.xdmf").mesh.blocks[0].type == "C3D20"
    run = read_xdmf_series(tmp_path / "h.xdmf", element_types={"hexahedron20": "C3D20R"})
    assert run.mesh.blocks[0].type == "C3D20R"


def test_xdmf_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    u = _u()
    with pytest.raises(ReaderError, match=r"no displacement field.*present: \['temperature'\]"):
        read_xdmf_series(_write_xdmf(tmp_path / "a.xdmf", u, name="temperature"))
    with pytest.raises(ReaderError, match="non-increasing times"):
        read_xdmf_series(_write_xdmf(tmp_path / "b.xdmf", u, times=[0.0, 1.0, 1.0]))
    bad = u.copy()
    bad[2, 4, 1] = np.nan
    run = read_xdmf_series(_write_xdmf(tmp_path / "c.xdmf", bad))
    with pytest.raises(ReaderError, match="step 2: non-finite displacement.*node index 4"):
        _frames(run)
    wedge = [("wedge", np.array([[0, 1, 2, 4, 5, 6]]))] + CELLS
    with pytest.raises(ReaderError, match=r"d\.xdmf.*unsupported volume cell type 'wedge'"):
        read_xdmf_series(_write_xdmf(tmp_path / "d.xdmf", u, cells=wedge))
    # corrupt heavy data
    p = _write_xdmf(tmp_path / "e.xdmf", u)
    h5 = tmp_path / "e.h5"
    h5.write_bytes(h5.read_bytes()[:200])
    with pytest.raises(ReaderError, match=r"e\.xdmf: cannot read XDMF"):
        read_xdmf_series(p)
    with pytest.raises(ReaderError, match="file not found"):
        read_xdmf_series(tmp_path / "nope.xdmf")


def _mesh():
    return Mesh(NODES, (CellBlock("C3D8", [range(8)], ids=[7]), CellBlock("C3D4", [[4, 5, 7, 8]], ids=[9])),
                node_ids=np.arange(101, 110))


def test_pvd_round_trip(tmp_path):
    u = _u()
    pvd = write_vtu_series(tmp_path / "out" / "run", _mesh(), TIMES, {"U": u, "temp": u[..., 0]})
    run = read_pvd_series(pvd, name="x")
    assert run.name == "x" and run.times.tolist() == TIMES and run.fields["displacement"].location == "node"
    assert run.mesh.element_ids.tolist() == [7, 9] and run.mesh.node_ids.tolist() == list(range(101, 110))
    assert [p.name for p in run.sources] == ["run.pvd", "run_0000.vtu", "run_0001.vtu", "run_0002.vtu"]
    for k, f in enumerate(_frames(run)):
        np.testing.assert_array_equal(f.data["displacement"], u[k])
        assert f.time == TIMES[k]


def test_pvd_errors(tmp_path):
    u = _u()
    mesh = _mesh()
    pvd = write_vtu_series(tmp_path / "a" / "run", mesh, TIMES, {"u": u})
    (tmp_path / "a" / "run_0001.vtu").unlink()
    with pytest.raises(ReaderError, match=r"run_0001\.vtu: file not found"):
        read_pvd_series(pvd)

    pvd = write_vtu_series(tmp_path / "b" / "run", mesh, TIMES, {"u": u})
    f = tmp_path / "b" / "run_0002.vtu"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    run = read_pvd_series(pvd)
    with pytest.raises(ReaderError, match=r"run_0002\.vtu: cannot read"):
        _frames(run)
    f0 = tmp_path / "b" / "run_0000.vtu"
    f0.write_text("garbage")
    with pytest.raises(ReaderError, match=r"run_0000\.vtu: cannot read"):
        read_pvd_series(pvd)

    bad = u.copy()
    bad[1, 0, 0] = np.inf
    run = read_pvd_series(write_vtu_series(tmp_path / "c" / "run", mesh, TIMES, {"u": bad}))
    with pytest.raises(ReaderError, match=r"run_0001\.vtu: step 1: non-finite"):
        _frames(run)

    with pytest.raises(ReaderError, match="non-increasing times: step 2"):
        read_pvd_series(write_vtu_series(tmp_path / "d" / "run", mesh, [0, 2, 1], {"u": u}))

    with pytest.raises(ReaderError, match=r"no displacement field.*present: \[.*'stress'"):
        read_pvd_series(write_vtu_series(tmp_path / "e" / "run", mesh, TIMES, {"stress": u}))

    # a step with a different mesh
    pvd = write_vtu_series(tmp_path / "f" / "run", mesh, TIMES, {"u": u})
    moved = Mesh(NODES + 1e-3, mesh.blocks, mesh.node_ids)
    write_vtu_series(tmp_path / "g" / "run", moved, TIMES, {"u": u})
    (tmp_path / "f" / "run_0002.vtu").write_bytes((tmp_path / "g" / "run_0002.vtu").read_bytes())
    run = read_pvd_series(pvd)
    with pytest.raises(ReaderError, match=r"run_0002\.vtu: step 2: points differ"):
        _frames(run)


def test_temperature_point_data_is_kept(tmp_path, monkeypatch):
    """A scalar point field named like a temperature becomes the node field "temperature" (T)."""
    monkeypatch.chdir(tmp_path)
    u = _u()
    temps = 20.0 + 100.0 * np.abs(_u(seed=1)[..., 0])
    with meshio.xdmf.TimeSeriesWriter(tmp_path / "t.xdmf") as w:
        w.write_points_cells(NODES, CELLS)
        for k, t in enumerate(TIMES):
            w.write_data(t, point_data={"displacement": u[k], "temperature": temps[k]})
    run = read_xdmf_series(tmp_path / "t.xdmf")
    assert run.fields["temperature"].location == "node" and run.fields["temperature"].components == ("T",)
    for k, f in enumerate(_frames(run)):
        assert f.data["temperature"].shape == (len(NODES), 1)
        np.testing.assert_array_equal(f.data["temperature"][:, 0], temps[k])
    pvd = write_vtu_series(tmp_path / "out" / "run", _mesh(), TIMES, {"U": u, "NT": temps})
    run = read_pvd_series(pvd)
    assert run.metadata["temperature_field"] == "NT"
    np.testing.assert_array_equal(_frames(run)[2].data["temperature"][:, 0], temps[2])
    no_t = read_pvd_series(write_vtu_series(tmp_path / "out2" / "run", _mesh(), TIMES, {"U": u}))
    assert "temperature" not in no_t.fields and "temperature" not in _frames(no_t)[0].data
    temps[1, 3] = np.nan
    run = read_pvd_series(write_vtu_series(tmp_path / "out3" / "run", _mesh(), TIMES, {"U": u, "NT": temps}))
    with pytest.raises(ReaderError, match=r"run_0001.vtu: step 1: non-finite temperature 'NT' \(first at node index 3\)"):
        _frames(run)
