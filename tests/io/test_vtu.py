import xml.etree.ElementTree as ET

import meshio
import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.io.vtu import write_vtu_series

NODES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1.0]])


def test_series_round_trips_through_meshio(tmp_path):
    mesh = Mesh(
        NODES,
        (CellBlock("C3D8", [range(8)], ids=[7]), CellBlock("C3D4", [[0, 1, 3, 4]], ids=[9])),
        node_sets={"bottom": [0, 1, 2, 3]},
    )
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3, 8, 3))
    s = rng.normal(size=(3, 2, 6))
    pvd = write_vtu_series(tmp_path / "out" / "run", mesh, [0.0, 0.5, 1.0], {"u": u}, {"stress": s})
    files = [d.get("file") for d in ET.parse(pvd).getroot().iter("DataSet")]
    times = [float(d.get("timestep")) for d in ET.parse(pvd).getroot().iter("DataSet")]
    assert files == ["run_0000.vtu", "run_0001.vtu", "run_0002.vtu"] and times == [0.0, 0.5, 1.0]
    back = meshio.read(pvd.parent / files[2])
    np.testing.assert_array_equal(back.point_data["u"], u[2])
    np.testing.assert_array_equal(np.concatenate(back.cell_data["stress"]), s[2])
    np.testing.assert_array_equal(back.point_data["nset:bottom"], [1, 1, 1, 1, 0, 0, 0, 0])
    assert Mesh.from_meshio(back).element_ids.tolist() == [7, 9]


def test_step_count_mismatch_is_an_error(tmp_path):
    mesh = Mesh(NODES, (CellBlock("C3D8", [range(8)]),))
    with pytest.raises(ValueError, match="'u' has 2 steps for 3 times"):
        write_vtu_series(tmp_path / "x", mesh, [0, 1, 2], {"u": np.zeros((2, 8, 3))})
