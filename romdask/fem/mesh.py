"""Mesh container: nodes, cell blocks in the solver's node order, sets and id maps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = ["CellBlock", "Mesh", "ELEMENT_TYPES"]

#: Supported element types (CalculiX/Abaqus names) -> (meshio cell type, nodes per cell).
ELEMENT_TYPES: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "C3D4": ("tetra", 4),
        "C3D10": ("tetra10", 10),
        "C3D8": ("hexahedron", 8),
        "C3D20": ("hexahedron20", 20),
        "C3D20R": ("hexahedron20", 20),
    }
)
_FROM_MESHIO = {"tetra": "C3D4", "tetra10": "C3D10", "hexahedron": "C3D8", "hexahedron20": "C3D20"}


def _frozen(d: Mapping[str, np.ndarray] | None, dtype) -> Mapping[str, np.ndarray]:
    out = {}
    for name, value in (d or {}).items():
        a = np.array(value, dtype=dtype)
        a.setflags(write=False)
        out[str(name)] = a
    return MappingProxyType(out)


@dataclass(frozen=True)
class CellBlock:
    """Cells of one element type.

    Parameters
    ----------
    type : str
        CalculiX element name, one of :data:`ELEMENT_TYPES`.
    connectivity : ndarray of int64, shape (n_cells, n_nodes_per_cell)
        0-based node indices in the solver's (CalculiX/Abaqus) node order.
    ids : ndarray of int64, shape (n_cells,), optional
        The solver's element ids (default 1, 2, ...).
    """

    type: str
    connectivity: np.ndarray
    ids: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.type not in ELEMENT_TYPES:
            raise ValueError(
                f"unknown element type {self.type!r}; supported: {', '.join(ELEMENT_TYPES)}"
            )
        conn = np.array(self.connectivity, dtype=np.int64)
        n_per_cell = ELEMENT_TYPES[self.type][1]
        if conn.ndim != 2 or conn.shape[1] != n_per_cell:
            raise ValueError(
                f"{self.type} cells need {n_per_cell} nodes each; got connectivity of shape {conn.shape}"
            )
        ids = np.arange(1, len(conn) + 1) if self.ids is None else np.array(self.ids, np.int64)
        if ids.shape != (len(conn),):
            raise ValueError(f"{self.type}: {len(ids)} ids for {len(conn)} cells")
        conn.setflags(write=False)
        ids.setflags(write=False)
        object.__setattr__(self, "connectivity", conn)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return len(self.connectivity)


@dataclass(frozen=True, eq=False)
class Mesh:
    """A finite-element mesh with the solver's numbering kept alongside 0-based indices.

    Parameters
    ----------
    nodes : ndarray of float64, shape (n_nodes, 3)
    blocks : sequence of CellBlock
        Global element index = position in the concatenation of the blocks, in order.
    node_ids : ndarray of int64, shape (n_nodes,), optional
        The solver's node ids (default 1, 2, ...).
    node_sets : mapping of name -> 0-based node indices
    element_sets : mapping of name -> 0-based global element indices
    surfaces : mapping of name -> int64 array of shape (n_faces, 2)
        (global element index, 0-based face number in the CalculiX face numbering: S1 -> 0).

    Notes
    -----
    Dof ``3 * node + component`` (interleaved), components x, y, z.
    """

    nodes: np.ndarray
    blocks: tuple[CellBlock, ...]
    node_ids: np.ndarray = None  # type: ignore[assignment]
    node_sets: Mapping[str, np.ndarray] = field(default_factory=dict)
    element_sets: Mapping[str, np.ndarray] = field(default_factory=dict)
    surfaces: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = np.array(self.nodes, dtype=np.float64)
        if nodes.ndim != 2 or nodes.shape[1] != 3:
            raise ValueError(f"nodes must have shape (n_nodes, 3); got {nodes.shape}")
        nodes.setflags(write=False)
        object.__setattr__(self, "nodes", nodes)
        blocks = tuple(self.blocks)
        object.__setattr__(self, "blocks", blocks)
        ids = np.arange(1, len(nodes) + 1) if self.node_ids is None else np.array(self.node_ids, np.int64)
        if ids.shape != (len(nodes),):
            raise ValueError(f"{len(ids)} node ids for {len(nodes)} nodes")
        ids.setflags(write=False)
        object.__setattr__(self, "node_ids", ids)
        for b in blocks:
            if len(b) and (b.connectivity.min() < 0 or b.connectivity.max() >= len(nodes)):
                raise ValueError(f"{b.type} connectivity refers to nodes outside 0..{len(nodes) - 1}")
        object.__setattr__(self, "node_sets", _frozen(self.node_sets, np.int64))
        object.__setattr__(self, "element_sets", _frozen(self.element_sets, np.int64))
        object.__setattr__(self, "surfaces", _frozen(self.surfaces, np.int64))
        for name, s in self.node_sets.items():
            if s.size and (s.min() < 0 or s.max() >= len(nodes)):
                raise ValueError(f"node set {name!r} refers to nodes outside 0..{len(nodes) - 1}")
        n_el = self.n_elements
        for kind, sets in (("element set", self.element_sets), ("surface", self.surfaces)):
            for name, s in sets.items():
                el = s if kind == "element set" else s.reshape(-1, 2)[:, 0]
                if el.size and (el.min() < 0 or el.max() >= n_el):
                    raise ValueError(f"{kind} {name!r} refers to elements outside 0..{n_el - 1}")

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_dofs(self) -> int:
        return 3 * len(self.nodes)

    @property
    def n_elements(self) -> int:
        return sum(len(b) for b in self.blocks)

    @property
    def block_offsets(self) -> np.ndarray:
        """Global index of the first element of each block, plus the total: shape (n_blocks + 1,)."""
        return np.cumsum([0] + [len(b) for b in self.blocks])

    @property
    def element_ids(self) -> np.ndarray:
        """The solver's element ids in global element order."""
        return np.concatenate([b.ids for b in self.blocks]) if self.blocks else np.zeros(0, np.int64)

    def node_index(self, ids) -> np.ndarray:
        """0-based indices of the nodes with the solver ids ``ids``."""
        return _lookup(self.node_ids, ids, "node")

    def element_index(self, ids) -> np.ndarray:
        """0-based global indices of the elements with the solver ids ``ids``."""
        return _lookup(self.element_ids, ids, "element")

    def element_block(self, elements) -> tuple[np.ndarray, np.ndarray]:
        """(block index, index inside the block) of global element indices."""
        elements = np.asarray(elements, np.int64)
        block = np.searchsorted(self.block_offsets, elements, side="right") - 1
        return block, elements - self.block_offsets[block]

    # ---- meshio conversion -------------------------------------------------------------------

    def to_meshio(self):
        """A :class:`meshio.Mesh` with the same cells (meshio's node order equals CalculiX's
        for these types); ids, element sets and surfaces (a face bit mask per element) as cell
        data, node sets as point data."""
        import meshio

        cells = [(ELEMENT_TYPES[b.type][0], np.asarray(b.connectivity)) for b in self.blocks]
        offsets = self.block_offsets
        cell_data = {"element_id": [np.asarray(b.ids) for b in self.blocks]}
        for name, s in self.element_sets.items():
            flag = np.zeros(self.n_elements, np.int8)
            flag[s] = 1
            cell_data[f"elset:{name}"] = [flag[offsets[i] : offsets[i + 1]] for i in range(len(self.blocks))]
        for name, s in self.surfaces.items():
            # one bit per face (CalculiX face k -> bit k); face order inside a surface is not kept
            bits = np.zeros(self.n_elements, np.int32)
            np.bitwise_or.at(bits, s[:, 0], np.left_shift(1, s[:, 1]).astype(np.int32))
            cell_data[f"surface:{name}"] = [bits[offsets[i] : offsets[i + 1]] for i in range(len(self.blocks))]
        point_data = {"node_id": np.asarray(self.node_ids)}
        for name, s in self.node_sets.items():
            flag = np.zeros(self.n_nodes, np.int8)
            flag[s] = 1
            point_data[f"nset:{name}"] = flag
        return meshio.Mesh(np.asarray(self.nodes), cells, point_data=point_data, cell_data=cell_data)

    @classmethod
    def from_meshio(cls, mesh, *, element_types: Mapping[str, str] | None = None) -> "Mesh":
        """Build a Mesh from a :class:`meshio.Mesh`.

        Volume cells of the supported types are kept, others (faces, lines) dropped. Ids and sets
        written by :meth:`to_meshio` are restored; ``mesh.point_sets`` / ``mesh.cell_sets`` become
        node / element sets. ``element_types`` maps a meshio cell type to a CalculiX name
        (e.g. ``{"hexahedron20": "C3D20R"}``).
        """
        names = dict(_FROM_MESHIO, **(element_types or {}))
        blocks, kept = [], []
        for i, cb in enumerate(mesh.cells):
            if cb.type in names:
                ids = mesh.cell_data.get("element_id", [None] * len(mesh.cells))[i]
                blocks.append(CellBlock(names[cb.type], cb.data, ids))
                kept.append(i)
        if not blocks:
            found = sorted({cb.type for cb in mesh.cells})
            raise ValueError(f"meshio mesh has no supported volume cells; found {found}")
        sizes = [len(b) for b in blocks]
        offsets = np.cumsum([0] + sizes)
        element_sets: dict[str, np.ndarray] = {}
        for key, data in mesh.cell_data.items():
            if key.startswith("elset:"):
                flag = np.concatenate([np.asarray(data[i]) for i in kept])
                element_sets[key[len("elset:") :]] = np.flatnonzero(flag)
        for name, per_block in getattr(mesh, "cell_sets", {}).items():
            idx = [np.asarray(per_block[i], np.int64) + offsets[k] for k, i in enumerate(kept)
                   if i < len(per_block) and per_block[i] is not None and len(per_block[i])]
            element_sets.setdefault(name, np.concatenate(idx) if idx else np.zeros(0, np.int64))
        surfaces: dict[str, np.ndarray] = {}
        for key, data in mesh.cell_data.items():
            if key.startswith("surface:"):
                bits = np.concatenate([np.asarray(data[i], np.int64) for i in kept])
                el, face = np.nonzero((bits[:, None] >> np.arange(6)) & 1)
                surfaces[key[len("surface:") :]] = np.column_stack([el, face]).astype(np.int64)
        node_sets = {k[len("nset:") :]: np.flatnonzero(v) for k, v in mesh.point_data.items() if k.startswith("nset:")}
        for name, s in getattr(mesh, "point_sets", {}).items():
            node_sets.setdefault(name, np.asarray(s, np.int64))
        nodes = np.asarray(mesh.points, np.float64)
        if nodes.shape[1] == 2:
            nodes = np.column_stack([nodes, np.zeros(len(nodes))])
        return cls(nodes, tuple(blocks), mesh.point_data.get("node_id"), node_sets, element_sets, surfaces)

    def renumbered(self, node_order: np.ndarray, element_order: np.ndarray | None = None) -> "Mesh":
        """The same mesh with nodes (and elements inside each block) in a new order.

        ``node_order[i]`` is the old index of new node ``i``; ``element_order`` likewise for
        global elements and must keep every element inside its block.
        """
        node_order = np.asarray(node_order, np.int64)
        if not np.array_equal(np.sort(node_order), np.arange(self.n_nodes)):
            raise ValueError("node_order must be a permutation of range(n_nodes)")
        new_of_old = np.empty_like(node_order)
        new_of_old[node_order] = np.arange(len(node_order))
        offsets = self.block_offsets
        if element_order is None:
            element_order = np.arange(self.n_elements)
        element_order = np.asarray(element_order, np.int64)
        if not np.array_equal(np.sort(element_order), np.arange(self.n_elements)):
            raise ValueError("element_order must be a permutation of range(n_elements)")
        el_new_of_old = np.empty_like(element_order)
        el_new_of_old[element_order] = np.arange(len(element_order))
        blocks = []
        for i, b in enumerate(self.blocks):
            order = element_order[offsets[i] : offsets[i + 1]] - offsets[i]
            if order.size and (order.min() < 0 or order.max() >= len(b)):
                raise ValueError("element_order must keep every element inside its block")
            blocks.append(CellBlock(b.type, new_of_old[b.connectivity[order]], b.ids[order]))
        surfaces = {}
        for k, v in self.surfaces.items():
            s = np.array(v)
            s[:, 0] = el_new_of_old[s[:, 0]]
            surfaces[k] = s
        return Mesh(
            self.nodes[node_order],
            tuple(blocks),
            self.node_ids[node_order],
            {k: np.sort(new_of_old[v]) for k, v in self.node_sets.items()},
            {k: np.sort(el_new_of_old[v]) for k, v in self.element_sets.items()},
            surfaces,
        )


def _lookup(table: np.ndarray, ids, what: str) -> np.ndarray:
    ids = np.asarray(ids, np.int64)
    order = np.argsort(table, kind="stable")
    pos = np.searchsorted(table, ids, sorter=order)
    pos = np.clip(pos, 0, max(len(table) - 1, 0))
    found = order[pos] if len(table) else pos
    bad = (len(table) == 0) | (table[found] != ids) if len(table) else np.ones(ids.shape, bool)
    if np.any(bad):
        missing = np.unique(ids[bad])[:10]
        raise KeyError(f"unknown {what} id(s): {missing.tolist()}")
    return found
