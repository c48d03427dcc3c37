"""METIS partitioning and renumbering to contiguous subdomain dofs."""

import itertools
from pathlib import Path

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


# ---- any node numbering (gmsh, other pre-processors), never a crash ---------------------------

import subprocess
import sys
import textwrap

from hypothesis import given, settings, strategies as st

from romdask.fem import default_subdomains, partition_cells
from romdask.problems.meshing import box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from numbering import gmsh_like  # noqa: E402

def _check(mesh, p, k):
    assert p.n_parts == k
    assert np.all(np.bincount(p.element_part, minlength=k) > 0)
    owner = np.full(mesh.n_nodes, k)
    for b, parts in zip(mesh.blocks, np.split(p.element_part, mesh.block_offsets[1:-1])):
        for row, part in zip(b.connectivity, parts):
            owner[row] = np.minimum(owner[row], part)
    owner[owner == k] = 0
    np.testing.assert_array_equal(p.node_part, owner)
    new, newp = renumber(mesh, p)
    assert newp.is_contiguous and newp.dof_offsets[-1] == mesh.n_dofs


@pytest.mark.parametrize("element", ["C3D10", "C3D20R"])
@pytest.mark.parametrize("midside_first", [True, False])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_partition_quadratic_meshes_any_numbering(element, midside_first, k):
    """Shuffled ids with gaps, corners numbered after (gmsh) or before the midside nodes,
    unused nodes: METIS gets a compact numbering; every subdomain non-empty, ownership rule."""
    mesh = gmsh_like(box((3, 2, 2), element=element), seed=k, midside_first=midside_first)
    _check(mesh, partition(mesh, k), k)


def test_partition_mixed_element_types():
    """A C3D10 part and a C3D20R part (disconnected) in one mesh, gapped numbering."""
    tet = gmsh_like(box((2, 2, 1), element="C3D10"), seed=1)
    hexa = gmsh_like(box((2, 1, 1), element="C3D20R", origin=(5, 0, 0)), seed=2)
    n = tet.n_nodes
    blocks = tet.blocks + tuple(CellBlock(b.type, b.connectivity + n, b.ids + 100000) for b in hexa.blocks)
    mesh = Mesh(np.vstack([tet.nodes, hexa.nodes]), blocks, np.concatenate([tet.node_ids, hexa.node_ids + 10**6]))
    for k in (2, 3, 4):
        _check(mesh, partition(mesh, k), k)


def test_partition_in_a_subprocess_never_segfaults(tmp_path):
    """The user's case (gmsh C3D10: corner nodes after the midside nodes) and the raw cell list
    with gaps that killed pymetis (SIGSEGV) run in a child: a regression fails this test instead
    of killing pytest."""
    code = textwrap.dedent("""
        import numpy as np, sys
        sys.path.insert(0, %r)
        from numbering import gmsh_like
        from romdask.fem import partition, partition_cells
        from romdask.problems.meshing import box
        for element in ("C3D10", "C3D20R"):
            mesh = gmsh_like(box((3, 2, 2), element=element), seed=5)
            for k in (2, 3, 4):
                assert np.all(np.bincount(partition(mesh, k).element_part, minlength=k) > 0)
        cells = np.array([[0, 5, 7, 9], [5, 7, 9, 11], [7, 9, 11, 13], [9, 11, 13, 15]])
        print(partition_cells([cells], 2, ncommon=3).tolist())
    """ % str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"child exited with {proc.returncode} (negative: killed by signal):\n{proc.stderr}"
    parts = eval(proc.stdout.strip().splitlines()[-1])
    assert sorted(set(parts)) == [0, 1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 4), element=st.sampled_from(["C3D10", "C3D20R"]),
       n_unused=st.integers(0, 30), midside_first=st.booleans())
def test_partition_random_numberings(seed, k, element, n_unused, midside_first):
    mesh = gmsh_like(box((2, 2, 2), element=element), seed=seed, n_unused=n_unused, midside_first=midside_first)
    _check(mesh, partition(mesh, k, seed=seed % 7), k)


def test_partition_cells_validates_what_goes_to_metis():
    good = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    with pytest.raises(ValueError, match="integer vertex numbers"):
        partition_cells([good.astype(float)], 2, ncommon=3)
    with pytest.raises(ValueError, match="negative vertex numbers"):
        partition_cells([good - 1], 2, ncommon=3)
    with pytest.raises(ValueError, match="must be 2-D"):
        partition_cells([good.ravel()], 2, ncommon=3)
    with pytest.raises(ValueError, match="without vertices"):
        partition_cells([np.zeros((2, 0), np.int64)], 2, ncommon=3)
    with pytest.raises(ValueError, match="cannot split 2 elements into 3"):
        partition_cells([good], 3, ncommon=3)
    with pytest.raises(ValueError, match="n_parts must be >= 1"):
        partition_cells([good], 0, ncommon=3)
    with pytest.raises(ValueError, match="n_parts must be an integer"):
        partition_cells([good], 1.5, ncommon=3)
    with pytest.raises(ValueError, match="ncommon must be in 1..4"):
        partition_cells([good], 2, ncommon=5)
    with pytest.raises(ValueError, match="cannot split 0 elements"):
        partition_cells([], 2, ncommon=3)
    np.testing.assert_array_equal(partition_cells([good], 1, ncommon=3), [0, 0])
    chain = np.array([[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]])
    huge = chain * 10**12 + 7  # far beyond int32: compacted, fine
    assert sorted(set(partition_cells([huge], 2, ncommon=3).tolist())) == [0, 1]


def test_default_subdomains():
    assert default_subdomains(39_999, 10_000, n_cpus=64) == 1
    assert default_subdomains(40_000, 10_000, n_cpus=64) == 2  # >= 20,000 dofs per subdomain
    assert default_subdomains(100_000, 30_000, n_cpus=2) == 2  # one per core
    assert default_subdomains(100_000, 30_000, n_cpus=8) == 5
    assert default_subdomains(1_000_000, 300_000, n_cpus=2) == 5  # <= 200,000 dofs each
    assert default_subdomains(3_000_000, 3, n_cpus=8) == 3  # never more than the elements
    assert default_subdomains(100_000, 30_000) >= 1  # this machine's cores
    with pytest.raises(ValueError, match="n_cpus must be >= 1"):
        default_subdomains(100_000, 10, n_cpus=0)
