"""ip_to_nodes / ip_to_elements: CalculiX's extrapolation tables, exactness, nodal means, errors.

The agreement with ccx itself (nodal STRESS and PE of the .frd) is in
tests/io/test_extrapolation_ccx.py.
"""

import numpy as np
import pytest

from romdask.fem import CellBlock, Mesh, get_element, quadrature
from romdask.fem.extrapolate import extrapolation_matrix, ip_to_elements, ip_to_nodes, node_element_counts

TYPES = ("C3D4", "C3D10", "C3D8", "C3D20R", "C3D20")


def _unit(element_type, shift=(0.0, 0.0, 0.0)):
    el = get_element(element_type)
    return el.ref_nodes + np.asarray(shift)


def test_calculix_tables_reference_values():
    """Entries of the data statements of CalculiX 2.20's extrapolate.f (a8, a4, a27)."""
    a8 = extrapolation_matrix("C3D8")
    np.testing.assert_array_equal(np.sort(np.unique(a8)), [-0.683, -0.04904, 0.183, 2.549])
    assert a8[0, 0] == 2.549 and a8[0, 7] == -0.04904 and a8[2, 0] == 0.183  # node 3 from point 1
    a4 = extrapolation_matrix("C3D10")[:4]
    np.testing.assert_array_equal(a4, np.where(np.eye(4, dtype=bool), 1.92705, -0.30902))
    a27 = extrapolation_matrix("C3D20")
    assert a27.shape == (20, 27)
    # first column of a27 (node 1..20 from point 1) and a few more entries of the table
    np.testing.assert_array_equal(a27[:8, 0], [2.37499, -0.12559, -0.16145, -0.12559, -0.12559, -0.16145,
                                               0.11575, -0.16145])
    assert a27[8, 0] == 0.32628 and a27[0, 13] == -0.2963 and a27[19, 26] == 0.11111
    # the rounding is CalculiX's: rows sum to 0.99996 (2x2x2), 0.99999 (tet), up to 1.00005 (27 points)
    np.testing.assert_allclose(a8.sum(axis=1), 0.99996, atol=1e-12)
    np.testing.assert_allclose(a4.sum(axis=1), 0.99999, atol=1e-12)
    assert np.isclose(a27.sum(axis=1).max(), 1.00005) and np.isclose(a27.sum(axis=1).min(), 0.99996)


@pytest.mark.parametrize("element_type", TYPES)
def test_tables_are_the_exact_matrices_rounded(element_type):
    exact, table = extrapolation_matrix(element_type, exact=True), extrapolation_matrix(element_type)
    assert exact.shape == table.shape == (get_element(element_type).n_nodes, get_element(element_type).n_points)
    assert np.abs(exact - table).max() <= 5e-5
    np.testing.assert_allclose(exact.sum(axis=1), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="read-only"):
        table[0, 0] = 1.0


@pytest.mark.parametrize("element_type", TYPES)
def test_exact_matrices_reproduce_the_fields_they_interpolate(element_type):
    """Exact: a field of the element's extrapolation space is recovered at the nodes (constant
    for C3D4, linear for the corner rules with mid-edge nodes as corner means, serendipity for
    C3D20)."""
    el = get_element(element_type)
    rng = np.random.default_rng(1)
    if element_type == "C3D4":
        nodal, at_points = np.full(4, 3.5), np.array([3.5])
    elif element_type == "C3D20":
        nodal = rng.normal(size=el.n_nodes)
        at_points = el.shape(el.points) @ nodal
    else:
        c = rng.normal(size=4)
        nodal = c[0] + el.ref_nodes @ c[1:]
        at_points = c[0] + el.points @ c[1:]
    np.testing.assert_allclose(extrapolation_matrix(element_type, exact=True) @ at_points, nodal, atol=1e-12)


def test_unknown_type():
    with pytest.raises(ValueError, match="unknown element type 'C3D6'"):
        extrapolation_matrix("C3D6")


def _two_hexes():
    """Two C3D8 sharing a face, plus a C3D4 on the side and one node used by no element."""
    nodes = np.vstack([_unit("C3D8"), _unit("C3D8")[4:] + [0, 0, 2.0], [[5.0, 5.0, 5.0]]])
    hexes = [list(range(8)), [4, 5, 6, 7, 8, 9, 10, 11]]
    return Mesh(nodes, (CellBlock("C3D8", hexes, ids=[3, 9]), CellBlock("C3D4", [[0, 1, 3, 4]], ids=[20])))


def test_nodal_values_are_plain_means_over_elements():
    mesh = _two_hexes()
    n_points = 8 + 8 + 1
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n_points, 2))
    out = ip_to_nodes(mesh, values)
    a8 = extrapolation_matrix("C3D8")
    first, second = a8 @ values[:8], a8 @ values[8:16]
    tet = values[16]
    # node 0: first hex and the tet; node 4: both hexes and the tet; node 8: second hex only
    np.testing.assert_allclose(out[0], (first[0] + tet) / 2, rtol=1e-14)
    np.testing.assert_allclose(out[4], (first[4] + second[0] + tet) / 3, rtol=1e-14)
    np.testing.assert_allclose(out[8], second[4], rtol=1e-14)
    assert np.all(np.isnan(out[12]))  # used by no element: no value, as ccx writes none
    np.testing.assert_array_equal(node_element_counts(mesh), [2, 2, 1, 2, 3, 2, 2, 2, 1, 1, 1, 1, 0])
    # 1-D in, 1-D out; the precomputed counts give the same
    np.testing.assert_allclose(ip_to_nodes(mesh, values[:, 0], counts=node_element_counts(mesh)), out[:, 0],
                               rtol=1e-14, atol=1e-15)


def test_uniform_field_and_element_means():
    mesh = _two_hexes()
    values = np.full((17, 6), 100.0)
    np.testing.assert_allclose(ip_to_nodes(mesh, values, exact=True)[:12], 100.0, rtol=1e-14)
    # CalculiX's tables lose 4e-5 of a uniform field on hexes (rows sum to 0.99996), not on tets
    out = ip_to_nodes(mesh, values)
    np.testing.assert_allclose(out[8], 99.996, rtol=1e-14)
    cells = ip_to_elements(mesh, np.arange(17.0))
    np.testing.assert_allclose(cells, [3.5, 11.5, 16.0])
    assert ip_to_elements(mesh, np.ones((17, 3))).shape == (3, 3)


def test_mixed_quadratic_blocks_on_a_distorted_mesh():
    """A linear field on a mixed mesh of distorted elements is recovered at the nodes by every
    type but C3D4 (constant per element: the value at its point)."""
    blocks, nodes, offset = [], [], 0
    for k, t in enumerate(("C3D8", "C3D20R", "C3D20", "C3D10", "C3D4")):
        x = _unit(t, shift=(3.0 * k, 0, 0)) * [1.0, 1.2, 0.9]
        nodes.append(x)
        blocks.append(CellBlock(t, [np.arange(len(x)) + offset]))
        offset += len(x)
    mesh = Mesh(np.vstack(nodes), tuple(blocks))
    xyz = quadrature(mesh).coordinates
    linear = 2.0 + xyz @ [0.5, -1.0, 0.25]
    expected = 2.0 + mesh.nodes @ [0.5, -1.0, 0.25]
    expected[-4:] = linear[-1]  # the C3D4 block: its one point value at its 4 nodes
    np.testing.assert_allclose(ip_to_nodes(mesh, linear, exact=True), expected, rtol=1e-12)
    # CalculiX's rounded tables: within 5e-5 x the sum of |coefficients| (< 10) of the largest value
    np.testing.assert_allclose(ip_to_nodes(mesh, linear), expected, atol=5e-4 * np.abs(linear).max())


def test_shape_errors():
    mesh = _two_hexes()
    with pytest.raises(ValueError, match=r"n_points = 17 integration points.*got \(16, 6\)"):
        ip_to_nodes(mesh, np.zeros((16, 6)))
    with pytest.raises(ValueError, match="n_points = 17"):
        ip_to_elements(mesh, np.zeros((17, 2, 3)))
