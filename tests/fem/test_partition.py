"""METIS partitioning and renumbering to contiguous subdomain dofs."""

import itertools

import numpy as np
import pytest

from romdask.fem import CellBlock, Mesh, Partition, partition, quadrature, renumber, strain


def two_block_box(n=4, seed=0):
    """n^3 unit-box of C3D8 cells split into two C3D8 blocks, shuffled ids, some sets."""
    g = np.linspace(0, 1, n + 1)
    X = np.array([[x, y, z] for z in g for y in g for x in g])  # x fastest
    X += np.random.default_rng(seed).uniform(-0.1, 0.1, X.shape) / n

    def nid(i, j, k):
        return i + (n + 1) * (j + (n + 1) * k)

    cells = [[nid(i + a, j + b, k + c) for a, b, c in
              [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]]
             for k, j, i in itertools.product(range(n), repeat=3)]
    cells = np.array(cells)
    half = len(cells) // 2
    blocks = (CellBlock("C3D8", cells[:half], 1000 + np.arange(half)),
              CellBlock("C3D8", cells[half:], 5000 + np.arange(len(cells) - half)))
    return Mesh(X, blocks, node_ids=7 + 2 * np.arange(len(X)),
                node_sets={"bottom": np.flatnonzero(X[:, 2] < 0.5 / n)},
                element_sets={"first": np.arange(5)},
                surfaces={"top": np.array([[len(cells) - 1, 1], [len(cells) - 2, 1]])})


def test_partition_basic_properties():
    mesh = two_block_box()
    p = partition(mesh, 4)
    assert p.n_parts == 4
    assert p.element_part.shape == (mesh.n_elements,) and p.node_part.shape == (mesh.n_nodes,)
    assert np.all(np.bincount(p.element_part, minlength=4) > 0)
    assert np.all(p.nodes_per_part > 0)
    # ownership rule: the lowest subdomain among the node's elements
    owner = np.full(mesh.n_nodes, 99)
    conn = np.vstack([b.connectivity for b in mesh.blocks])
    for e, row in enumerate(conn):
        owner[row] = np.minimum(owner[row], p.element_part[e])
    np.testing.assert_array_equal(p.node_part, owner)
    # deterministic
    q = partition(mesh, 4)
    np.testing.assert_array_equal(p.element_part, q.element_part)
    # roughly balanced
    assert np.bincount(p.element_part).max() <= 1.3 * mesh.n_elements / 4


def test_partition_trivial_and_errors():
    mesh = two_block_box(2)
    p = partition(mesh, 1)
    assert np.all(p.element_part == 0) and np.all(p.node_part == 0)
    np.testing.assert_array_equal(p.dof_offsets, [0, mesh.n_dofs])
    with pytest.raises(ValueError, match="cannot split 8 elements into 9"):
        partition(mesh, 9)
    with pytest.raises(ValueError, match="n_parts must be >= 1"):
        partition(mesh, 0)
    with pytest.raises(ValueError, match="subdomains in 0..1"):
        Partition(2, np.array([0, 2]), np.array([0]))


def test_renumber_makes_subdomain_dofs_contiguous():
    mesh = two_block_box()
    p = partition(mesh, 3)
    assert not p.is_contiguous
    with pytest.raises(ValueError, match="call renumber"):
        p.dof_offsets
    new, newp = renumber(mesh, p)
    assert newp.is_contiguous
    off = newp.dof_offsets
    assert off[0] == 0 and off[-1] == mesh.n_dofs and np.all(np.diff(off) > 0)
    for k, sl in enumerate(newp.dof_slices()):
        nodes = np.arange(sl.start // 3, sl.stop // 3)
        assert np.all(newp.node_part[nodes] == k)
    # elements grouped by subdomain inside each block, blocks keep their sizes and types
    o = new.block_offsets
    for k in range(len(new.blocks)):
        assert np.all(np.diff(newp.element_part[o[k]:o[k + 1]]) >= 0)
        assert len(new.blocks[k]) == len(mesh.blocks[k])
    # same physical mesh: ids follow nodes and elements
    np.testing.assert_array_equal(new.nodes[new.node_index(mesh.node_ids)], mesh.nodes)
    el_new = new.element_index(mesh.element_ids)
    conn_old = np.vstack([b.connectivity for b in mesh.blocks])
    conn_new = np.vstack([b.connectivity for b in new.blocks])
    np.testing.assert_array_equal(new.node_ids[conn_new[el_new]], mesh.node_ids[conn_old])
    np.testing.assert_array_equal(newp.element_part[el_new], p.element_part)
    # sets follow
    np.testing.assert_array_equal(np.sort(new.node_ids[new.node_sets["bottom"]]),
                                  np.sort(mesh.node_ids[mesh.node_sets["bottom"]]))
    np.testing.assert_array_equal(np.sort(new.element_ids[new.element_sets["first"]]),
                                  np.sort(mesh.element_ids[mesh.element_sets["first"]]))
    np.testing.assert_array_equal(new.element_ids[new.surfaces["top"][:, 0]],
                                  mesh.element_ids[mesh.surfaces["top"][:, 0]])


def test_renumbered_mesh_gives_same_strain_field():
    mesh = two_block_box()
    p = partition(mesh, 4, seed=3)
    new, _ = renumber(mesh, p)
    u = np.random.default_rng(1).normal(size=mesh.n_dofs)
    node_order = new.node_index(mesh.node_ids)  # new index of each old node
    u_new = np.empty_like(u).reshape(-1, 3)
    u_new[node_order] = u.reshape(-1, 3)
    q_old, q_new = quadrature(mesh), quadrature(new)
    e_old = strain(q_old, u).reshape(mesh.n_elements, 8, 6)
    e_new = strain(q_new, u_new.ravel()).reshape(mesh.n_elements, 8, 6)
    el_new = new.element_index(mesh.element_ids)
    np.testing.assert_allclose(e_new[el_new], e_old, rtol=0, atol=1e-13)
    assert np.abs(e_old).max() > 1.0


def test_renumber_rejects_foreign_partition():
    mesh = two_block_box(2)
    with pytest.raises(ValueError, match="partition this mesh first"):
        renumber(mesh, partition(two_block_box(3), 2))
