"""Mesh / CellBlock container: validation, id maps, renumbering, meshio round trip."""

import meshio
import numpy as np
import pytest

from romdask.fem import ELEMENT_TYPES, CellBlock, Mesh


def small_mesh():
    """Two C3D8 cubes side by side plus one C3D4 on top, solver ids not 1..n."""
    X = np.array([[x, y, z] for z in (0.0, 1.0) for y in (0.0, 1.0) for x in (0.0, 1.0, 2.0)])
    X = np.vstack([X, [[0.0, 0.0, 2.0]]])
    def n(i, j, k):
        return i + 3 * (j + 2 * k)
    hexes = [[n(0, 0, 0), n(1, 0, 0), n(1, 1, 0), n(0, 1, 0), n(0, 0, 1), n(1, 0, 1), n(1, 1, 1), n(0, 1, 1)],
             [n(1, 0, 0), n(2, 0, 0), n(2, 1, 0), n(1, 1, 0), n(1, 0, 1), n(2, 0, 1), n(2, 1, 1), n(1, 1, 1)]]
    tets = [[n(0, 0, 1), n(1, 0, 1), n(0, 1, 1), 12]]
    return Mesh(
        X,
        (CellBlock("C3D8", hexes, [11, 12]), CellBlock("C3D4", tets, [40])),
        node_ids=100 + 3 * np.arange(13),
        node_sets={"fixed": [0, 3, 6, 9], "tip": [12]},
        element_sets={"hexes": [0, 1], "tet": [2]},
        surfaces={"load": [[0, 1], [1, 1], [1, 3]], "tet_base": [[2, 0]]},
    )


def test_basic_properties_and_defaults():
    m = small_mesh()
    assert m.n_nodes == 13 and m.n_dofs == 39 and m.n_elements == 3
    np.testing.assert_array_equal(m.block_offsets, [0, 2, 3])
    np.testing.assert_array_equal(m.element_ids, [11, 12, 40])
    b, loc = m.element_block([0, 1, 2])
    np.testing.assert_array_equal(b, [0, 0, 1])
    np.testing.assert_array_equal(loc, [0, 1, 0])
    d = Mesh(m.nodes, (CellBlock("C3D8", m.blocks[0].connectivity),))
    np.testing.assert_array_equal(d.node_ids, np.arange(1, 14))
    np.testing.assert_array_equal(d.element_ids, [1, 2])
    assert not m.nodes.flags.writeable and not m.blocks[0].connectivity.flags.writeable
    assert not m.node_sets["fixed"].flags.writeable
    assert set(ELEMENT_TYPES) == {"C3D4", "C3D10", "C3D8", "C3D20", "C3D20R"}


def test_node_and_element_index():
    m = small_mesh()
    np.testing.assert_array_equal(m.node_index([100, 136, 103]), [0, 12, 1])
    np.testing.assert_array_equal(m.element_index([40, 11]), [2, 0])
    assert m.node_index(109) == 3
    with pytest.raises(KeyError, match=r"unknown node id\(s\): \[101\]"):
        m.node_index([100, 101])
    with pytest.raises(KeyError, match="unknown element id"):
        m.element_index([13])


def test_validation_errors():
    m = small_mesh()
    with pytest.raises(ValueError, match="unknown element type 'C3D8R'"):
        CellBlock("C3D8R", [[0] * 8])
    with pytest.raises(ValueError, match="C3D10 cells need 10 nodes"):
        CellBlock("C3D10", [[0] * 8])
    with pytest.raises(ValueError, match="3 ids for 2 cells"):
        CellBlock("C3D8", m.blocks[0].connectivity, [1, 2, 3])
    with pytest.raises(ValueError, match="nodes must have shape"):
        Mesh(np.zeros((4, 2)), ())
    with pytest.raises(ValueError, match="outside 0..12"):
        Mesh(m.nodes, (CellBlock("C3D4", [[0, 1, 2, 13]]),))
    with pytest.raises(ValueError, match="node set 'x'"):
        Mesh(m.nodes, m.blocks, node_sets={"x": [13]})
    with pytest.raises(ValueError, match="element set 'x'"):
        Mesh(m.nodes, m.blocks, element_sets={"x": [3]})
    with pytest.raises(ValueError, match="surface 's'"):
        Mesh(m.nodes, m.blocks, surfaces={"s": [[3, 0]]})


def test_renumbered_keeps_ids_sets_and_geometry():
    m = small_mesh()
    node_order = np.random.default_rng(0).permutation(m.n_nodes)
    element_order = np.array([1, 0, 2])
    r = m.renumbered(node_order, element_order)
    np.testing.assert_array_equal(r.node_ids, m.node_ids[node_order])
    np.testing.assert_array_equal(r.element_ids, [12, 11, 40])
    for k in range(2):
        np.testing.assert_array_equal(r.nodes[r.blocks[k].connectivity],
                                      m.nodes[m.blocks[k].connectivity[[1, 0] if k == 0 else [0]]])
    np.testing.assert_array_equal(np.sort(r.node_ids[r.node_sets["fixed"]]), m.node_ids[m.node_sets["fixed"]])
    np.testing.assert_array_equal(r.surfaces["load"], [[1, 1], [0, 1], [0, 3]])
    with pytest.raises(ValueError, match="keep every element inside its block"):
        m.renumbered(np.arange(13), [2, 1, 0])
    with pytest.raises(ValueError, match="permutation"):
        m.renumbered(np.zeros(13, int))


def _same(a: Mesh, b: Mesh):
    np.testing.assert_allclose(a.nodes, b.nodes)
    np.testing.assert_array_equal(a.node_ids, b.node_ids)
    assert [blk.type for blk in a.blocks] == [blk.type for blk in b.blocks]
    for x, y in zip(a.blocks, b.blocks):
        np.testing.assert_array_equal(x.connectivity, y.connectivity)
        np.testing.assert_array_equal(x.ids, y.ids)
    assert set(a.node_sets) == set(b.node_sets) and set(a.element_sets) == set(b.element_sets)
    for k in a.node_sets:
        np.testing.assert_array_equal(a.node_sets[k], b.node_sets[k])
    for k in a.element_sets:
        np.testing.assert_array_equal(a.element_sets[k], b.element_sets[k])
    assert set(a.surfaces) == set(b.surfaces)
    for k in a.surfaces:
        np.testing.assert_array_equal(a.surfaces[k], b.surfaces[k])


def test_meshio_round_trip_in_memory_and_vtu(tmp_path):
    m = small_mesh()
    mm = m.to_meshio()
    assert [c.type for c in mm.cells] == ["hexahedron", "tetra"]
    _same(m, Mesh.from_meshio(mm))
    path = tmp_path / "mesh.vtu"
    meshio.write(path, mm)
    back = Mesh.from_meshio(meshio.read(path))
    _same(m, back)


def test_meshio_quadratic_types_and_mapping(tmp_path):
    # one C3D20R element: meshio's hexahedron20 order equals CalculiX's
    from romdask.fem import get_element

    X = (get_element("C3D20R").ref_nodes + 1) / 2
    m = Mesh(X, (CellBlock("C3D20R", [np.arange(20)], [7]),))
    path = tmp_path / "hex20.vtu"
    meshio.write(path, m.to_meshio())
    back = Mesh.from_meshio(meshio.read(path))
    assert back.blocks[0].type == "C3D20"
    back = Mesh.from_meshio(meshio.read(path), element_types={"hexahedron20": "C3D20R"})
    assert back.blocks[0].type == "C3D20R"
    np.testing.assert_array_equal(back.blocks[0].ids, [7])


def test_from_meshio_sets_and_foreign_cells():
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    mm = meshio.Mesh(points, [("triangle", np.array([[0, 1, 2]])), ("tetra", np.array([[0, 1, 2, 3]]))],
                     point_sets={"base": np.array([0, 1, 2])},
                     cell_sets={"solid": [np.array([], dtype=int), np.array([0])]})
    m = Mesh.from_meshio(mm)
    assert len(m.blocks) == 1 and m.blocks[0].type == "C3D4"
    np.testing.assert_array_equal(m.node_sets["base"], [0, 1, 2])
    np.testing.assert_array_equal(m.element_sets["solid"], [0])
    with pytest.raises(ValueError, match="no supported volume cells"):
        Mesh.from_meshio(meshio.Mesh(points, [("triangle", np.array([[0, 1, 2]]))]))
