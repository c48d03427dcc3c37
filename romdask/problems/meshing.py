"""Structured mesh generators and generic converters (vectorized numpy, no loops over elements).

A hex8 grid is built first; quadratic and tetrahedral meshes derive from it with
:func:`hex8_to_hex20`, :func:`hex_to_tet4` and :func:`tet4_to_tet10`; :func:`map_nodes` curves a
box into another shape. Node sets, element sets and surfaces are carried through every converter.

Face numbering (0-based, CalculiX S1 -> 0): see :data:`HEX_FACES` and :data:`TET_FACES`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from romdask.fem.mesh import CellBlock, Mesh

__all__ = [
    "HEX_EDGES",
    "HEX_FACES",
    "KUHN_TETS",
    "TET_EDGES",
    "TET_FACES",
    "boundary_faces",
    "box",
    "box_node_count",
    "convert",
    "face_nodes",
    "hex8_to_hex20",
    "hex_to_tet4",
    "map_nodes",
    "nodes_where",
    "surface_where",
    "tet4_to_tet10",
]

#: Corner positions of the hex faces S1..S6 (CalculiX/Abaqus order, 0-based).
HEX_FACES = np.array(
    [[0, 1, 2, 3], [4, 7, 6, 5], [0, 4, 5, 1], [1, 5, 6, 2], [2, 6, 7, 3], [3, 7, 4, 0]]
)
#: Corner positions of the tet faces S1..S4.
TET_FACES = np.array([[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]])
#: Edges in the order of the C3D20 midside nodes 9..20.
HEX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
#: Edges in the order of the C3D10 midside nodes 5..10.
TET_EDGES = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]])

_HEX_REF = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float
)


def _kuhn_split() -> tuple[np.ndarray, np.ndarray]:
    """The 6 Kuhn tets of the hex along its diagonal 1-7 and, per hex face, its 2 (tet, face)."""
    index = {tuple(p.astype(int)): i for i, p in enumerate(_HEX_REF)}
    tets = []
    for perm in itertools.permutations(range(3)):
        p = np.zeros(3, int)
        path = [index[tuple(p)]]
        for axis in perm:
            p[axis] = 1
            path.append(index[tuple(p)])
        x = _HEX_REF[path]
        if np.linalg.det(x[1:] - x[0]) < 0:
            path[1], path[2] = path[2], path[1]
        tets.append(path)
    tets = np.array(tets)
    face_map = np.zeros((6, 2, 2), int)
    for f, hf in enumerate(HEX_FACES):
        found = [(t, k) for t in range(6) for k in range(4) if set(tets[t, TET_FACES[k]]) <= set(hf)]
        face_map[f] = found
    return tets, face_map


#: Local hex corners of the 6 tets of the Kuhn (Freudenthal) split, positive volume each.
KUHN_TETS, _KUHN_FACES = _kuhn_split()

_FACES = {"C3D8": HEX_FACES, "C3D20": HEX_FACES, "C3D20R": HEX_FACES, "C3D4": TET_FACES, "C3D10": TET_FACES}


def face_nodes(mesh: Mesh, faces: np.ndarray) -> np.ndarray:
    """Corner nodes of (global element, 0-based face) pairs: shape (n, 4) or (n, 3).

    All faces must have the same number of corners (hex or tet faces, not both).
    """
    faces = np.asarray(faces, np.int64).reshape(-1, 2)
    block, local = mesh.element_block(faces[:, 0])
    out = None
    for b_index, b in enumerate(mesh.blocks):
        sel = block == b_index
        if not np.any(sel):
            continue
        corners = b.connectivity[local[sel][:, None], _FACES[b.type][faces[sel, 1]]]
        if out is None:
            out = np.empty((len(faces), corners.shape[1]), np.int64)
        elif out.shape[1] != corners.shape[1]:
            raise ValueError("face_nodes needs faces of one kind (all quadrilateral or all triangular)")
        out[sel] = corners
    return out if out is not None else np.zeros((0, 4), np.int64)


def _count_rows(keys: np.ndarray) -> np.ndarray:
    """How many times each row of the int array ``keys`` occurs (sort-based)."""
    order = np.lexsort(keys.T[::-1])
    sorted_keys = keys[order]
    new_group = np.ones(len(keys), bool)
    new_group[1:] = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    group = np.cumsum(new_group) - 1
    counts = np.bincount(group)
    out = np.empty(len(keys), np.int64)
    out[order] = counts[group]
    return out


def _corner_count(mesh: Mesh, elements: np.ndarray) -> np.ndarray:
    per_block = np.array([_FACES[b.type].shape[1] for b in mesh.blocks], np.int64)
    return per_block[mesh.element_block(elements)[0]] if len(per_block) else np.zeros(0, np.int64)


def boundary_faces(mesh: Mesh) -> np.ndarray:
    """(global element, face) pairs of the faces that belong to exactly one element.

    Notes
    -----
    Faces are identified by their sorted corner nodes; cost O(n_faces log n_faces).
    """
    out = []
    offsets = mesh.block_offsets
    for n_corners in (3, 4):
        keys, owners = [], []
        for i, b in enumerate(mesh.blocks):
            table = _FACES[b.type]
            if table.shape[1] != n_corners or len(b) == 0:
                continue
            corners = b.connectivity[:, table]  # (n_el, n_faces, n_corners)
            keys.append(np.sort(corners, axis=2).reshape(-1, n_corners))
            el = np.repeat(np.arange(len(b)) + offsets[i], len(table))
            owners.append(np.column_stack([el, np.tile(np.arange(len(table)), len(b))]))
        if keys:
            owners_all = np.concatenate(owners)
            out.append(owners_all[_count_rows(np.concatenate(keys)) == 1])
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def surface_where(
    mesh: Mesh, predicate: Callable[[np.ndarray], np.ndarray], faces: np.ndarray | None = None
) -> np.ndarray:
    """Boundary faces whose corner centroid ``c`` (shape (n, 3)) satisfies ``predicate(c)``.

    Example: ``surface_where(mesh, lambda c: np.abs(c[:, 0]) < 1e-9)`` is the face x = 0.
    ``faces`` (default :func:`boundary_faces`) are the candidates, to reuse across calls.
    Returns (element, face) pairs sorted by element then face.
    """
    faces = boundary_faces(mesh) if faces is None else np.asarray(faces, np.int64).reshape(-1, 2)
    corners = _corner_count(mesh, faces[:, 0])
    parts = []
    for n_corners in (3, 4):
        f = faces[corners == n_corners]
        if len(f):
            centroid = mesh.nodes[face_nodes(mesh, f)].mean(axis=1)
            parts.append(f[np.asarray(predicate(centroid), bool)])
    if not parts:
        return np.zeros((0, 2), np.int64)
    out = np.concatenate(parts)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def nodes_where(mesh: Mesh, predicate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Indices of the nodes whose coordinates ``x`` (shape (n, 3)) satisfy ``predicate(x)``."""
    return np.flatnonzero(np.asarray(predicate(mesh.nodes), bool))


def map_nodes(mesh: Mesh, f: Callable[[np.ndarray], np.ndarray]) -> Mesh:
    """The same mesh with node coordinates ``f(nodes)`` (shape (n_nodes, 3)); sets unchanged."""
    new = np.asarray(f(np.array(mesh.nodes)), np.float64)
    if new.shape != mesh.nodes.shape:
        raise ValueError(f"map_nodes: f must return shape {mesh.nodes.shape}; got {new.shape}")
    return Mesh(new, mesh.blocks, mesh.node_ids, mesh.node_sets, mesh.element_sets, mesh.surfaces)


def _add_midside(mesh: Mesh, edges: dict[str, np.ndarray], new_type: dict[str, str]) -> Mesh:
    """Add one node per edge (shared by every element on the edge) at the edge midpoint."""
    pairs, sizes = [], []
    for b in mesh.blocks:
        if b.type not in edges:
            raise ValueError(f"cannot add midside nodes to {b.type} cells; expected {', '.join(edges)}")
        e = np.sort(b.connectivity[:, edges[b.type]], axis=2)  # (n_el, n_edges, 2)
        pairs.append(e.reshape(-1, 2))
        sizes.append(e.shape[:2])
    unique, inverse = np.unique(np.concatenate(pairs), axis=0, return_inverse=True)
    inverse = inverse.ravel() + mesh.n_nodes
    nodes = np.vstack([mesh.nodes, mesh.nodes[unique].mean(axis=1)])
    blocks, start = [], 0
    for b, (n_el, n_edges) in zip(mesh.blocks, sizes):
        mid = inverse[start : start + n_el * n_edges].reshape(n_el, n_edges)
        start += n_el * n_edges
        blocks.append(CellBlock(new_type[b.type], np.hstack([b.connectivity, mid]), b.ids))
    node_sets = {}
    for name, s in mesh.node_sets.items():
        member = np.zeros(mesh.n_nodes, bool)
        member[s] = True
        extra = np.flatnonzero(member[unique[:, 0]] & member[unique[:, 1]]) + mesh.n_nodes
        node_sets[name] = np.concatenate([s, extra])
    return Mesh(nodes, tuple(blocks), None, node_sets, mesh.element_sets, mesh.surfaces)


def hex8_to_hex20(mesh: Mesh, element: str = "C3D20") -> Mesh:
    """Serendipity hex20 mesh (``"C3D20"`` or ``"C3D20R"``) from a hex8 mesh.

    Each edge gets one midside node at its midpoint, shared by all elements on it. A node set
    gains the midside nodes of the edges whose two ends are in the set. Node ids are renumbered
    1..n; element ids, element sets and surfaces are kept.
    """
    if element not in ("C3D20", "C3D20R"):
        raise ValueError(f"hex8_to_hex20 makes C3D20 or C3D20R elements; got {element!r}")
    return _add_midside(mesh, {"C3D8": HEX_EDGES}, {"C3D8": element})


def tet4_to_tet10(mesh: Mesh) -> Mesh:
    """Quadratic C3D10 mesh from a C3D4 mesh (shared midside nodes, sets carried as in
    :func:`hex8_to_hex20`)."""
    return _add_midside(mesh, {"C3D4": TET_EDGES}, {"C3D4": "C3D10"})


def hex_to_tet4(mesh: Mesh) -> Mesh:
    """Split every C3D8 cell into the 6 Kuhn tets along its local diagonal 1-7 (C3D4 kept).

    Tet ``6 e + t`` of hex ``e`` is :data:`KUHN_TETS` [t]. Element sets and surfaces follow (each
    hex face becomes two tet faces); element ids are renumbered 1..n, nodes unchanged.

    The split is conforming when neighbouring hexes have consistently oriented local axes (any
    structured or mapped grid); otherwise a ValueError is raised.
    """
    blocks, new_of_old = [], []
    start = 0
    for b in mesh.blocks:
        if b.type == "C3D8":
            blocks.append(CellBlock("C3D4", b.connectivity[:, KUHN_TETS].reshape(-1, 4)))
            new_of_old.append(start + 6 * np.arange(len(b)))
            start += 6 * len(b)
        elif b.type == "C3D4":
            blocks.append(CellBlock("C3D4", b.connectivity))
            new_of_old.append(start + np.arange(len(b)))
            start += len(b)
        else:
            raise ValueError(f"hex_to_tet4 splits C3D8 cells; got {b.type} (convert quadratic meshes from their hex8 mesh)")
    first = np.concatenate(new_of_old) if new_of_old else np.zeros(0, np.int64)
    is_hex = np.concatenate([np.full(len(b), b.type == "C3D8") for b in mesh.blocks])
    element_sets = {}
    for name, s in mesh.element_sets.items():
        h = s[is_hex[s]]
        element_sets[name] = np.sort(np.concatenate([(first[h][:, None] + np.arange(6)).ravel(), first[s[~is_hex[s]]]]))
    surfaces = {}
    for name, f in mesh.surfaces.items():
        hex_face = is_hex[f[:, 0]]
        fh = f[hex_face]
        pairs = _KUHN_FACES[fh[:, 1]]  # (n, 2, 2) of (tet, face)
        split = np.stack([first[fh[:, 0]][:, None] + pairs[:, :, 0], pairs[:, :, 1]], axis=2).reshape(-1, 2)
        kept = np.column_stack([first[f[~hex_face, 0]], f[~hex_face, 1]])
        out = np.vstack([split, kept])
        surfaces[name] = out[np.lexsort((out[:, 1], out[:, 0]))]
    tets = Mesh(mesh.nodes, tuple(blocks), mesh.node_ids, mesh.node_sets, element_sets, surfaces)
    # conformity: every hex boundary face gives 2 tet boundary faces, interior faces none
    old_boundary = is_hex[boundary_faces(mesh)[:, 0]]
    if len(boundary_faces(tets)) != 2 * np.count_nonzero(old_boundary) + np.count_nonzero(~old_boundary):
        raise ValueError(
            "hex_to_tet4: the Kuhn split is not conforming on this mesh (neighbouring hexes have "
            "differently oriented local axes); renumber the hex corners consistently first"
        )
    return tets


def box(
    shape: Sequence[int] = (1, 1, 1),
    lengths: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    element: str = "C3D8",
) -> Mesh:
    """A structured mesh of the box ``origin + [0, lengths]`` with ``shape`` = (nx, ny, nz) hex cells.

    Parameters
    ----------
    shape : (nx, ny, nz) cells along x, y, z
    lengths, origin : box size and corner
    element : "C3D8", "C3D20", "C3D20R", "C3D4" (6 Kuhn tets per hex) or "C3D10"

    Returns
    -------
    Mesh with node sets and surfaces ``xmin xmax ymin ymax zmin zmax`` (face nodes including
    midside nodes; (element, face) pairs) and element set ``all``.

    Notes
    -----
    Grid node (i, j, k) is node ``i + (nx+1) (j + (ny+1) k)``; hex (i, j, k) is element
    ``i + nx (j + ny k)`` (tet ``6 * hex + t``); midside nodes follow the grid nodes.
    Node counts: hex8/tet4 (nx+1)(ny+1)(nz+1); hex20 adds one node per grid edge; tet10 adds one
    per grid edge, per face diagonal and per hex diagonal.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"box shape needs 3 positive cell counts; got {shape}")
    lengths = np.asarray(lengths, float)
    origin = np.asarray(origin, float)
    if lengths.shape != (3,) or np.any(lengths <= 0) or origin.shape != (3,):
        raise ValueError(f"box needs 3 positive lengths and a 3-D origin; got {lengths}, {origin}")
    nx, ny, nz = shape
    axes = [origin[a] + lengths[a] * np.linspace(0.0, 1.0, shape[a] + 1) for a in range(3)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    nodes = np.column_stack([x.ravel(), y.ravel(), z.ravel()])
    i, j, k = (g.ravel() for g in np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij"))
    order = np.lexsort((i, j, k))
    i, j, k = i[order], j[order], k[order]
    corner = _HEX_REF.astype(int)
    conn = (i[:, None] + corner[:, 0]) + (nx + 1) * ((j[:, None] + corner[:, 1]) + (ny + 1) * (k[:, None] + corner[:, 2]))
    hexes = Mesh(nodes, (CellBlock("C3D8", conn),), element_sets={"all": np.arange(len(conn))})
    tol = 1e-9 * lengths.max()
    upper = origin + lengths
    node_sets, surfaces = {}, {}
    boundary = boundary_faces(hexes)
    for a, name in enumerate("xyz"):
        for side, value in (("min", origin[a]), ("max", upper[a])):
            pred = lambda p, a=a, value=value: np.abs(p[:, a] - value) <= tol  # noqa: E731
            node_sets[name + side] = nodes_where(hexes, pred)
            surfaces[name + side] = surface_where(hexes, pred, boundary)
    hexes = Mesh(nodes, hexes.blocks, None, node_sets, hexes.element_sets, surfaces)
    return convert(hexes, element)


def convert(hex8: Mesh, element: str) -> Mesh:
    """A hex8 mesh turned into ``element`` cells with the converters of this module."""
    if element == "C3D8":
        return hex8
    if element in ("C3D20", "C3D20R"):
        return hex8_to_hex20(hex8, element)
    if element == "C3D4":
        return hex_to_tet4(hex8)
    if element == "C3D10":
        return tet4_to_tet10(hex_to_tet4(hex8))
    raise ValueError(f"unknown element {element!r}; choose C3D8, C3D20, C3D20R, C3D4 or C3D10")


def box_node_count(shape: Sequence[int], element: str = "C3D8") -> int:
    """Number of nodes of :func:`box` with ``shape`` cells for ``element`` (exact)."""
    a, b, c = (int(n) for n in shape)
    corners = (a + 1) * (b + 1) * (c + 1)
    edges = a * (b + 1) * (c + 1) + (a + 1) * b * (c + 1) + (a + 1) * (b + 1) * c
    diagonals = a * b * (c + 1) + a * (b + 1) * c + (a + 1) * b * c + a * b * c
    counts = {"C3D8": corners, "C3D4": corners, "C3D20": corners + edges, "C3D20R": corners + edges,
              "C3D10": corners + edges + diagonals}
    if element not in counts:
        raise ValueError(f"unknown element {element!r}; choose one of {', '.join(counts)}")
    return counts[element]
