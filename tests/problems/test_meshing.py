"""Invariants of the structured meshes: counts, orientation, conformity, sets, surfaces."""

import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.problems.meshing import (
    HEX_FACES,
    TET_FACES,
    boundary_faces,
    box,
    box_node_count,
    face_nodes,
    hex_to_tet4,
    map_nodes,
    nodes_where,
    surface_where,
)

ELEMENTS = ["C3D8", "C3D20", "C3D20R", "C3D4", "C3D10"]
_GP = np.array([-1.0, 1.0]) / np.sqrt(3.0)
_REF = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], float)


def hex8_jacobians(x, points):
    """det J of trilinear hexes with corner coordinates x (n, 8, 3) at reference points (q, 3)."""
    out = []
    for xi in points:
        # dN/dxi_a = r_a / 8 * prod_{b != a} (1 + r_b xi_b)
        dN = np.stack([_REF[:, a] / 8 * np.prod([1 + _REF[:, b] * xi[b] for b in range(3) if b != a], axis=0)
                       for a in range(3)], axis=1)  # (8, 3)
        J = np.einsum("eki,ka->eia", x, dN)
        out.append(np.linalg.det(J))
    return np.array(out)  # (q, n)


def element_volumes(mesh):
    """Signed volumes: exact 2x2x2 Gauss for the corner (trilinear) hex geometry, exact for tets."""
    vols = []
    for b in mesh.blocks:
        if b.type.startswith("C3D20") or b.type == "C3D8":
            x = mesh.nodes[b.connectivity[:, :8]]
            gauss = np.array(np.meshgrid(_GP, _GP, _GP, indexing="ij")).reshape(3, -1).T
            vols.append(hex8_jacobians(x, gauss).sum(axis=0))
        else:
            x = mesh.nodes[b.connectivity[:, :4]]
            vols.append(np.linalg.det(x[:, 1:] - x[:, :1]) / 6)
    return np.concatenate(vols)


def face_areas(mesh, faces):
    x = mesh.nodes[face_nodes(mesh, faces)]
    if x.shape[1] == 4:  # planar quads: half the cross product of the diagonals
        return 0.5 * np.linalg.norm(np.cross(x[:, 2] - x[:, 0], x[:, 3] - x[:, 1]), axis=1)
    return 0.5 * np.linalg.norm(np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), axis=1)


def face_keys(mesh):
    keys = []
    for b in mesh.blocks:
        table = HEX_FACES if b.type.startswith("C3D2") or b.type == "C3D8" else TET_FACES
        keys.append(np.sort(b.connectivity[:, table], axis=2).reshape(-1, table.shape[1]))
    return np.concatenate(keys)


def box_count(shape, element):
    a, b, c = shape
    corners = (a + 1) * (b + 1) * (c + 1)
    edges = a * (b + 1) * (c + 1) + (a + 1) * b * (c + 1) + (a + 1) * (b + 1) * c
    if element in ("C3D8", "C3D4"):
        return corners
    if element.startswith("C3D20"):
        return corners + edges
    # tet10: + one diagonal per grid face and one per hex
    return corners + edges + a * b * (c + 1) + a * (b + 1) * c + (a + 1) * b * c + a * b * c


@pytest.mark.parametrize("element", ELEMENTS)
def test_box_counts_volume_orientation(element):
    shape, lengths, origin = (3, 4, 2), (1.5, 2.0, 0.7), (-1.0, 0.5, 2.0)
    mesh = box(shape, lengths, origin, element)
    n_hex = np.prod(shape)
    assert mesh.n_nodes == box_count(shape, element) == box_node_count(shape, element)
    assert mesh.n_elements == (6 * n_hex if element in ("C3D4", "C3D10") else n_hex)
    assert mesh.blocks[0].type == element
    vol = element_volumes(mesh)
    assert np.all(vol > 0)
    assert abs(vol.sum() - np.prod(lengths)) < 1e-12
    assert np.array_equal(mesh.element_sets["all"], np.arange(mesh.n_elements))
    # no duplicate nodes: midside nodes are shared
    assert len(np.unique(np.round(mesh.nodes, 9), axis=0)) == mesh.n_nodes
    # every node is used
    assert np.array_equal(np.unique(mesh.blocks[0].connectivity), np.arange(mesh.n_nodes))


@pytest.mark.parametrize("element", ELEMENTS)
def test_box_conformity_and_boundary(element):
    shape, lengths, origin = (3, 2, 4), (1.0, 2.0, 3.0), (0.0, -1.0, 0.5)
    mesh = box(shape, lengths, origin, element)
    _, counts = np.unique(face_keys(mesh), axis=0, return_counts=True)
    assert counts.max() == 2
    n_hex_boundary_faces = 2 * (shape[0] * shape[1] + shape[1] * shape[2] + shape[0] * shape[2])
    per_face = 2 if element in ("C3D4", "C3D10") else 1
    assert np.count_nonzero(counts == 1) == per_face * n_hex_boundary_faces
    bf = boundary_faces(mesh)
    a, b, c = lengths
    assert abs(face_areas(mesh, bf).sum() - 2 * (a * b + b * c + a * c)) < 1e-12
    # boundary faces lie on the box boundary, and the six named surfaces cover them once
    x = mesh.nodes[face_nodes(mesh, bf)]
    lo, hi = np.array(origin), np.array(origin) + lengths
    on_plane = np.any(np.all(np.isclose(x, lo), axis=1) | np.all(np.isclose(x, hi), axis=1), axis=1)
    assert np.all(on_plane)
    named = np.concatenate([mesh.surfaces[s] for s in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")])
    assert len(named) == len(bf)
    assert len(np.unique(named, axis=0)) == len(bf)


@pytest.mark.parametrize("element", ELEMENTS)
def test_box_sets_and_surfaces(element):
    lengths, origin = (1.0, 2.0, 3.0), (0.25, -1.0, 0.5)
    mesh = box((2, 3, 2), lengths, origin, element)
    hex_face_number = {"xmin": 5, "xmax": 3, "ymin": 2, "ymax": 4, "zmin": 0, "zmax": 1}
    for axis, name in enumerate("xyz"):
        for side, value in (("min", origin[axis]), ("max", origin[axis] + lengths[axis])):
            key = name + side
            expected = np.flatnonzero(np.abs(mesh.nodes[:, axis] - value) < 1e-12)
            assert np.array_equal(np.sort(mesh.node_sets[key]), expected)
            faces = mesh.surfaces[key]
            assert np.allclose(mesh.nodes[face_nodes(mesh, faces)][..., axis], value, atol=1e-14, rtol=0)
            assert abs(face_areas(mesh, faces).sum() - np.prod(lengths) / lengths[axis]) < 1e-12
            if element in ("C3D8", "C3D20", "C3D20R"):  # CalculiX face numbering S1..S6
                assert np.all(faces[:, 1] == hex_face_number[key])


def test_hex20_and_tet10_midside_nodes_are_edge_midpoints():
    from romdask.problems.meshing import HEX_EDGES, TET_EDGES

    for element, edges, n_corners in (("C3D20", HEX_EDGES, 8), ("C3D10", TET_EDGES, 4)):
        mesh = box((2, 2, 3), (1.0, 1.0, 2.0), element=element)
        conn = mesh.blocks[0].connectivity
        mid = mesh.nodes[conn[:, n_corners:]]
        ends = mesh.nodes[conn[:, edges]]
        assert np.allclose(mid, ends.mean(axis=2), atol=1e-14)


def test_box_matches_kuhn_on_unit_cube():
    mesh = box((1, 1, 1), element="C3D4")
    vol = element_volumes(mesh)
    assert np.allclose(vol, 1 / 6)
    # all tets contain the main diagonal (0,0,0)-(1,1,1)
    conn = mesh.blocks[0].connectivity
    assert np.all(np.any(conn == 0, axis=1) & np.any(conn == 7, axis=1))


def test_hex_to_tet4_detects_inconsistent_orientation():
    mesh = box((2, 1, 1))
    conn = np.array(mesh.blocks[0].connectivity)
    ref = _REF[:, :] > 0  # corner bits
    # rotate the second hex by 90 degrees about x: local (a, b, c) sits at global (a, 1 - c, b)
    where = {tuple(p): k for k, p in enumerate(ref.astype(int))}
    perm = [where[(a, 1 - c, b)] for a, b, c in ref.astype(int)]
    conn[1] = conn[1][perm]
    rotated = Mesh(mesh.nodes, (CellBlock("C3D8", conn),))
    assert np.all(element_volumes(rotated) > 0)
    with pytest.raises(ValueError, match="not conforming"):
        hex_to_tet4(rotated)


def test_map_nodes_and_predicates():
    mesh = box((4, 4, 1), element="C3D20")
    bent = map_nodes(mesh, lambda p: np.column_stack([2 * p[:, 0], p[:, 1] + p[:, 0] ** 2, p[:, 2]]))
    assert bent.n_nodes == mesh.n_nodes and np.array_equal(bent.node_sets["xmax"], mesh.node_sets["xmax"])
    right = nodes_where(bent, lambda p: np.isclose(p[:, 0], 2.0))
    assert np.array_equal(np.sort(right), np.sort(mesh.node_sets["xmax"]))
    faces = surface_where(bent, lambda c: np.isclose(c[:, 0], 2.0))
    assert np.array_equal(faces, mesh.surfaces["xmax"])
    with pytest.raises(ValueError):
        map_nodes(mesh, lambda p: p[:, :2])


@pytest.mark.parametrize("bad", [dict(shape=(0, 1, 1)), dict(lengths=(1, -1, 1)), dict(element="C3D6")])
def test_box_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        box(**bad)
