"""write_prediction_vtu / write_prediction_frd: content read back (meshio, read_frd), the
store's ip-position order, one output time at a time, the indicator, bad inputs."""

import csv
import logging
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import meshio
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

from romdask.fem import get_element, ip_to_elements, ip_to_nodes  # noqa: E402
from romdask.fem.extrapolate import node_element_counts  # noqa: E402
from romdask.io import write_prediction_frd, write_prediction_vtu  # noqa: E402
from romdask.io.calculix import read_frd  # noqa: E402
from romdask.materials import von_mises  # noqa: E402

TIMES = np.array([0.25, 0.5, 1.0])
VTK_ORDER = [0, 1, 2, 3, 5, 4]


def prediction(seed=0):
    mesh = ccx_decks.mixed_mesh()
    n_points = sum(len(b) * get_element(b.type).n_points for b in mesh.blocks)
    rng = np.random.default_rng(seed)
    return mesh, {
        "displacement": rng.normal(size=(3, mesh.n_nodes, 3)) * 1e-3,
        "stress": rng.normal(size=(3, n_points, 6)) * 200.0,
        "plastic_strain": np.abs(rng.normal(size=(3, n_points))) * 1e-3,
        "indicator": np.array([1e-4, np.nan, 3e-2]),
    }


class OneStepAtATime:
    """An array-like that hands out one output time per read and refuses to be read whole."""

    def __init__(self, values):
        self.values, self.shape, self.reads = values, values.shape, []

    def __getitem__(self, step):
        assert isinstance(step, (int, np.integer)), f"read {step!r}: not one output time"
        self.reads.append(int(step))
        return self.values[step]

    def __len__(self):
        return len(self.values)

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole (n_times, ...) array was read")


def test_vtu_series_content(tmp_path):
    mesh, p = prediction()
    lazy = {k: OneStepAtATime(p[k]) for k in ("displacement", "stress", "plastic_strain")}
    out = write_prediction_vtu(tmp_path / "out" / "rom", mesh, TIMES, lazy["displacement"], stress=lazy["stress"],
                               plastic_strain=lazy["plastic_strain"], indicator=p["indicator"])
    assert all(v.reads == [0, 1, 2] for v in lazy.values())  # each time read once, in order
    datasets = list(ET.parse(out.pvd).getroot().iter("DataSet"))
    assert [float(d.get("timestep")) for d in datasets] == TIMES.tolist()
    assert [out.pvd.parent / d.get("file") for d in datasets] == list(out.files)
    used = node_element_counts(mesh) > 0
    for k, path in enumerate(out.files):
        vtu = meshio.read(path)
        s_ip, p_ip = p["stress"][k], p["plastic_strain"][k]
        nodal = ip_to_nodes(mesh, s_ip)
        np.testing.assert_array_equal(vtu.point_data["displacement"], p["displacement"][k])
        np.testing.assert_allclose(vtu.point_data["stress"][used], nodal[used][:, VTK_ORDER], rtol=1e-13)
        assert np.all(np.isnan(vtu.point_data["stress"][~used]))  # a node of no element
        np.testing.assert_allclose(vtu.point_data["von_mises"][used], von_mises(nodal[used]), rtol=1e-13)
        np.testing.assert_allclose(vtu.point_data["equivalent_plastic_strain"][used], ip_to_nodes(mesh, p_ip)[used],
                                   rtol=1e-13)
        cells = {name: np.concatenate(blocks) for name, blocks in vtu.cell_data.items()}
        np.testing.assert_allclose(cells["stress"], ip_to_elements(mesh, s_ip)[:, VTK_ORDER], rtol=1e-13)
        np.testing.assert_allclose(cells["von_mises"], ip_to_elements(mesh, von_mises(s_ip)), rtol=1e-13)
        np.testing.assert_allclose(cells["equivalent_plastic_strain"], ip_to_elements(mesh, p_ip), rtol=1e-13)
        np.testing.assert_array_equal(cells["element_id"], mesh.element_ids)
        np.testing.assert_array_equal(vtu.field_data["TimeValue"].ravel(), [TIMES[k]])
        np.testing.assert_array_equal(vtu.field_data["error_indicator"].ravel(), [p["indicator"][k]])
        text = path.read_text()
        assert text.count('Name="stress" ComponentName0="XX" ComponentName1="YY" ComponentName2="ZZ" '
                          'ComponentName3="XY" ComponentName4="YZ" ComponentName5="XZ"') == 2  # point and cell
    np.testing.assert_array_equal(out.table["time"], TIMES)
    np.testing.assert_array_equal(out.table["error_indicator"], p["indicator"])
    np.testing.assert_allclose(out.table["max_von_mises"], von_mises(p["stress"]).max(axis=1), rtol=1e-14)
    np.testing.assert_allclose(out.table["max_equivalent_plastic_strain"], p["plastic_strain"].max(axis=1))
    with open(out.write_csv(tmp_path / "steps.csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "error_indicator", "max_von_mises", "max_equivalent_plastic_strain"]
    assert [float(r[0]) for r in rows[1:]] == TIMES.tolist() and rows[2][1] == "nan"
    assert float(rows[3][2]) == out.table["max_von_mises"][2]


def test_store_ip_order_and_displacement_as_dofs(tmp_path):
    """Fields in a store's ip-position order with ``ip_points`` = fields in global order."""
    mesh, p = prediction(1)
    n_points = p["stress"].shape[1]
    ip_points = np.random.default_rng(2).permutation(n_points)  # position i holds global point ip_points[i]
    a = write_prediction_vtu(tmp_path / "a", mesh, TIMES, p["displacement"], stress=p["stress"],
                             plastic_strain=p["plastic_strain"][..., None])
    b = write_prediction_vtu(tmp_path / "b", mesh, TIMES, p["displacement"].reshape(3, -1),
                             stress=p["stress"][:, ip_points], plastic_strain=p["plastic_strain"][:, ip_points],
                             ip_points=ip_points)
    assert np.all(np.isnan(a.table["error_indicator"]))
    for fa, fb in zip(a.files, b.files):
        ma, mb = meshio.read(fa), meshio.read(fb)
        for name in ma.point_data:
            np.testing.assert_allclose(ma.point_data[name], mb.point_data[name], rtol=1e-13, equal_nan=True)


def test_displacement_only(tmp_path):
    mesh, p = prediction()
    out = write_prediction_vtu(tmp_path / "u", mesh, TIMES[:1], p["displacement"][:1])
    vtu = meshio.read(out.files[0])
    assert "stress" not in vtu.point_data and list(out.table) == ["time", "error_indicator"]


@pytest.mark.parametrize("encoding", ["ascii", "float64"])
def test_frd_content(tmp_path, encoding, caplog):
    mesh, p = prediction()
    with caplog.at_level(logging.WARNING, logger="romdask.io.fields"):
        path = write_prediction_frd(tmp_path / "rom.frd", mesh, TIMES, p["displacement"], stress=p["stress"],
                                    plastic_strain=p["plastic_strain"], indicator=p["indicator"], encoding=encoding)
    assert "the error indicator is NaN at some output times: no ERRIND block" in caplog.text
    frd = read_frd(path)
    assert frd.fields() == ["DISP", "STRESS", "PE"]
    idx = mesh.node_index(frd.node_ids)
    tol = 1e-5 if encoding == "ascii" else 1e-15
    for k in range(3):
        expected = {"DISP": p["displacement"][k], "STRESS": ip_to_nodes(mesh, p["stress"][k])[:, VTK_ORDER],
                    "PE": ip_to_nodes(mesh, p["plastic_strain"][k])[:, None]}
        for name, values in expected.items():
            _, got = frd.read(frd.select(name)[k])
            np.testing.assert_allclose(got, values[idx], rtol=tol, atol=tol * np.abs(values[idx]).max())
    text = path.read_bytes()
    assert text.count(b"ind=1.00E-04") == 3 and text.count(b"ind=NaN") == 3 and text.count(b"ind=3.00E-02") == 3
    # a finite indicator gets its block
    frd = read_frd(write_prediction_frd(tmp_path / "b.frd", mesh, TIMES, p["displacement"], indicator=[1.0, 2.0, 3.0]))
    assert frd.fields() == ["DISP", "ERRIND"] and np.all(frd.read(frd.select("ERRIND")[2])[1] == 3.0)


def test_bad_inputs(tmp_path):
    mesh, p = prediction()
    n_points = p["stress"].shape[1]
    with pytest.raises(ValueError, match=rf"displacement must have shape \(n_times, n_nodes, 3\) = \(3, {mesh.n_nodes}, 3\)"):
        write_prediction_vtu(tmp_path / "x", mesh, TIMES, p["displacement"][:, :-1])
    with pytest.raises(ValueError, match=rf"stress must have shape \(3, {n_points}, 6\)"):
        write_prediction_vtu(tmp_path / "x", mesh, TIMES, p["displacement"], stress=p["stress"][:, 1:])
    with pytest.raises(ValueError, match=rf"plastic_strain must have shape \(3, {n_points}\) or"):
        write_prediction_frd(tmp_path / "x.frd", mesh, TIMES, p["displacement"], plastic_strain=p["stress"])
    with pytest.raises(ValueError, match=r"indicator must have shape \(n_times,\) = \(3,\)"):
        write_prediction_vtu(tmp_path / "x", mesh, TIMES, p["displacement"], indicator=[1.0])
    with pytest.raises(ValueError, match="ip_points must be a permutation"):
        write_prediction_vtu(tmp_path / "x", mesh, TIMES, p["displacement"], stress=p["stress"],
                             ip_points=np.zeros(n_points, int))
    with pytest.raises(ValueError, match="times must be a 1-D increasing"):
        write_prediction_vtu(tmp_path / "x", mesh, TIMES[::-1], p["displacement"])
    with pytest.raises(TypeError, match="a romdask Mesh is needed"):
        write_prediction_frd(tmp_path / "x.frd", "mesh.inp", TIMES, p["displacement"])
    assert not list(tmp_path.iterdir())


def test_vtk_reads_field_data_and_component_names(tmp_path):
    """VTK's own XML reader (ParaView's; the vtk package is a test dependency) sees the field
    data and names."""
    from vtkmodules.vtkIOXML import vtkXMLUnstructuredGridReader

    mesh, p = prediction()
    out = write_prediction_vtu(tmp_path / "v", mesh, TIMES, p["displacement"], stress=p["stress"],
                               indicator=p["indicator"])
    reader = vtkXMLUnstructuredGridReader()
    reader.SetFileName(str(out.files[2]))
    reader.Update()
    grid = reader.GetOutput()
    assert grid.GetFieldData().GetArray("error_indicator").GetValue(0) == p["indicator"][2]
    assert grid.GetFieldData().GetArray("TimeValue").GetValue(0) == TIMES[2]
    stress = grid.GetPointData().GetArray("stress")
    assert [stress.GetComponentName(c) for c in range(6)] == ["XX", "YY", "ZZ", "XY", "YZ", "XZ"]
