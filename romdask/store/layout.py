"""The on-disk layout of a snapshot store: names, the mesh group, and order maps.

See ``docs/store.md`` for the specification. Everything here is eager and small (mesh-sized);
the snapshot data itself is handled by :mod:`romdask.store.writer` and :mod:`romdask.store.view`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from romdask.fem.elements import get_element
from romdask.fem.mesh import CellBlock, Mesh
from romdask.fem.partition import Partition, default_subdomains, partition as metis_partition, renumber

__all__ = [
    "FORMAT",
    "STEP_CHUNK",
    "VERSION",
    "StoreLayout",
    "ip_layout",
    "ip_map",
    "is_store",
    "mesh_difference",
    "node_map",
    "read_layout",
    "source_info",
    "store_mesh",
    "subdomain_key",
    "write_mesh",
]

logger = logging.getLogger(__name__)

FORMAT = "romdask-snapshots"
VERSION = 1
#: frames buffered by a writer before a flush = step chunk of the arrays
STEP_CHUNK = 8


def subdomain_key(k: int) -> str:
    """Array name of subdomain ``k`` inside a field group: ``s0007``."""
    return f"s{k:04d}"




def ip_layout(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(element_of_point, local_point, point_offset) in romdask's integration-point order.

    ``point_offset[e]`` is the global index of element ``e``'s first point (length
    n_elements + 1). Computed from the element types only (no geometry), so it is cheap.
    """
    n_ip = np.concatenate(
        [np.full(len(b), get_element(b.type).points.shape[0], np.int64) for b in mesh.blocks]
    ) if mesh.blocks else np.zeros(0, np.int64)
    offset = np.concatenate([[0], np.cumsum(n_ip)]).astype(np.int64)
    element = np.repeat(np.arange(mesh.n_elements, dtype=np.int64), n_ip)
    local = np.arange(offset[-1], dtype=np.int64) - offset[element]
    return element, local, offset


@dataclass(frozen=True, eq=False)
class StoreLayout:
    """The store mesh and its subdomain layout, as read back from ``mesh/``.

    Attributes
    ----------
    mesh : Mesh in the store order (nodes contiguous by subdomain)
    n_subdomains : int
    node_subdomain, element_subdomain : ndarrays of int64
    dof_offsets : (K + 1,) subdomain k owns dofs dof_offsets[k]:dof_offsets[k+1]
    ip_element, ip_local : (n_points,) store element index / local point of each store point
    ip_points : (n_points,) global store point indices, subdomain by subdomain
    ip_offsets : (K + 1,) subdomain k's points are ip_points[ip_offsets[k]:ip_offsets[k+1]]
    """

    mesh: Mesh
    n_subdomains: int
    node_subdomain: np.ndarray
    element_subdomain: np.ndarray
    dof_offsets: np.ndarray
    ip_element: np.ndarray
    ip_local: np.ndarray
    ip_points: np.ndarray
    ip_offsets: np.ndarray

    @property
    def n_points(self) -> int:
        return len(self.ip_element)

    def node_slice(self, k: int) -> slice:
        return slice(int(self.dof_offsets[k]) // 3, int(self.dof_offsets[k + 1]) // 3)

    def points_of(self, k: int) -> np.ndarray:
        return self.ip_points[self.ip_offsets[k] : self.ip_offsets[k + 1]]


def _partition_from_nodes(mesh: Mesh, node_part) -> Partition:
    """A Partition from a solver-given subdomain per node (elements go to their lowest node's
    subdomain)."""
    node_part = np.asarray(node_part, np.int64)
    if node_part.shape != (mesh.n_nodes,) or node_part.min() < 0:
        raise ValueError(f"a node partition needs {mesh.n_nodes} non-negative subdomain numbers; got {node_part.shape}")
    n_parts = int(node_part.max()) + 1
    empty = np.flatnonzero(np.bincount(node_part, minlength=n_parts) == 0)
    if empty.size:
        raise ValueError(f"the given partition leaves subdomain(s) {empty.tolist()} without nodes; number them 0..K-1")
    element_part = np.concatenate([node_part[b.connectivity].min(axis=1) for b in mesh.blocks])
    return Partition(n_parts, element_part, node_part)


def store_mesh(mesh: Mesh, n_subdomains: int | None, partition=None, seed: int = 0) -> tuple[Mesh, Partition]:
    """The store-ordered mesh and partition of ``mesh``.

    ``partition``: None (METIS into ``n_subdomains``, default
    :func:`~romdask.fem.partition.default_subdomains`), a Partition of ``mesh`` or a node
    subdomain array (n_nodes,).
    """
    if partition is None:
        if n_subdomains is None:
            n_subdomains = default_subdomains(mesh.n_dofs, mesh.n_elements)
            logger.info("%d subdomain(s) for %d dofs (default_subdomains)", n_subdomains, mesh.n_dofs)
        part = metis_partition(mesh, int(n_subdomains), seed=seed)
    elif isinstance(partition, Partition):
        part = partition
    else:
        part = _partition_from_nodes(mesh, partition)
    if n_subdomains is not None and part.n_parts != int(n_subdomains):
        raise ValueError(
            f"the given partition has {part.n_parts} subdomains but n_subdomains={n_subdomains}; "
            "drop one of the two arguments"
        )
    return renumber(mesh, part)


def write_mesh(root: zarr.Group, mesh: Mesh, part: Partition) -> None:
    """Write ``mesh/`` (mesh already in store order, ``part`` contiguous)."""
    g = root.create_group("mesh", overwrite=True)
    g.create_array("nodes", data=np.asarray(mesh.nodes))
    g.create_array("node_ids", data=np.asarray(mesh.node_ids).astype(np.int64))
    blocks = g.create_group("blocks")
    for i, b in enumerate(mesh.blocks):
        bg = blocks.create_group(f"b{i:03d}")
        bg.create_array("connectivity", data=np.asarray(b.connectivity).astype(np.int64))
        bg.create_array("ids", data=np.asarray(b.ids).astype(np.int64))
        bg.attrs["type"] = b.type
    names = {}
    for kind in ("node_sets", "element_sets", "surfaces"):
        sg = g.create_group(kind)
        sets = getattr(mesh, kind)
        names[kind] = list(sets)
        for i, (name, value) in enumerate(sets.items()):
            sg.create_array(f"x{i:04d}", data=np.asarray(value, np.int64))
    g.create_array("node_subdomain", data=np.asarray(part.node_part).astype(np.int64))
    g.create_array("element_subdomain", data=np.asarray(part.element_part).astype(np.int64))
    g.create_array("dof_offsets", data=np.asarray(part.dof_offsets).astype(np.int64))
    element, local, _ = ip_layout(mesh)
    ip_sub = np.asarray(part.element_part).astype(np.int64)[element]
    points = np.argsort(ip_sub, kind="stable").astype(np.int64)
    g.create_array("ip_element", data=element)
    g.create_array("ip_local_point", data=local)
    g.create_array("ip_points", data=points)
    g.create_array(
        "ip_offsets",
        data=np.concatenate([[0], np.cumsum(np.bincount(ip_sub, minlength=part.n_parts))]).astype(np.int64),
    )
    g.attrs.update(
        {
            "n_nodes": mesh.n_nodes,
            "n_elements": mesh.n_elements,
            "n_dofs": mesh.n_dofs,
            "n_points": len(element),
            "n_blocks": len(mesh.blocks),
            "set_names": names,
            "complete": True,  # written last: a half-written mesh group is recognized
        }
    )


def read_layout(root: zarr.Group) -> StoreLayout:
    """Read ``mesh/`` back (eagerly: it is mesh-sized)."""
    g = root["mesh"]
    names = g.attrs["set_names"]
    blocks = tuple(
        CellBlock(g[f"blocks/b{i:03d}"].attrs["type"], g[f"blocks/b{i:03d}/connectivity"][...], g[f"blocks/b{i:03d}/ids"][...])
        for i in range(int(g.attrs["n_blocks"]))
    )
    sets = {kind: {name: g[f"{kind}/x{i:04d}"][...] for i, name in enumerate(names[kind])} for kind in names}
    mesh = Mesh(g["nodes"][...], blocks, g["node_ids"][...], sets["node_sets"], sets["element_sets"], sets["surfaces"])
    dof_offsets = g["dof_offsets"][...]
    return StoreLayout(
        mesh=mesh,
        n_subdomains=len(dof_offsets) - 1,
        node_subdomain=g["node_subdomain"][...],
        element_subdomain=g["element_subdomain"][...],
        dof_offsets=dof_offsets,
        ip_element=g["ip_element"][...],
        ip_local=g["ip_local_point"][...],
        ip_points=g["ip_points"][...],
        ip_offsets=g["ip_offsets"][...],
    )


def mesh_difference(store: Mesh, other: Mesh, rtol: float = 1e-9) -> str | None:
    """None when ``other`` is the store mesh up to numbering, else what differs (one sentence).

    Compares node ids, coordinates by node id (to ``rtol`` times the bounding-box size),
    element ids, types and connectivity (as node ids) by element id.
    """
    if other.n_nodes != store.n_nodes:
        return f"{other.n_nodes} nodes instead of the store's {store.n_nodes}"
    sa, oa = np.sort(store.node_ids), np.sort(other.node_ids)
    if not np.array_equal(sa, oa):
        missing = np.setdiff1d(sa, oa)[:5].tolist()
        return f"different node ids (store ids missing from the run: {missing})"
    perm = other.node_index(store.node_ids)
    scale = max(float(np.ptp(store.nodes, axis=0).max()) if store.n_nodes else 0.0, 1e-300)
    dev = np.abs(other.nodes[perm] - store.nodes).max(axis=1)
    if np.any(dev > rtol * scale):
        i = int(np.argmax(dev))
        return (f"node id {int(store.node_ids[i])} is at {other.nodes[perm[i]].tolist()} instead of "
                f"{store.nodes[i].tolist()} (difference {dev[i]:.3g}, tolerance {rtol * scale:.3g})")
    if other.n_elements != store.n_elements:
        return f"{other.n_elements} elements instead of the store's {store.n_elements}"
    s_ids, o_ids = store.element_ids, other.element_ids
    if not np.array_equal(np.sort(s_ids), np.sort(o_ids)):
        missing = np.setdiff1d(s_ids, o_ids)[:5].tolist()
        return f"different element ids (store ids missing from the run: {missing})"
    eperm = other.element_index(s_ids)
    s_types = np.concatenate([np.full(len(b), b.type, object) for b in store.blocks])
    o_types = np.concatenate([np.full(len(b), b.type, object) for b in other.blocks])
    bad = np.flatnonzero(s_types != o_types[eperm])
    if bad.size:
        i = int(bad[0])
        return f"element id {int(s_ids[i])} is a {o_types[eperm[i]]} instead of a {s_types[i]}"
    s_off, o_off = store.block_offsets, other.block_offsets
    for bi, b in enumerate(store.blocks):
        ob_idx, o_loc = other.element_block(eperm[s_off[bi] : s_off[bi + 1]])
        for obi in np.unique(ob_idx):
            sel = ob_idx == obi
            s_conn = store.node_ids[b.connectivity[sel]]
            o_conn = other.node_ids[other.blocks[obi].connectivity[o_loc[sel]]]
            rows = np.flatnonzero(np.any(s_conn != o_conn, axis=1))
            if rows.size:
                r = int(rows[0])
                eid = int(b.ids[np.flatnonzero(sel)[r]])
                return f"element id {eid} has nodes {o_conn[r].tolist()} instead of {s_conn[r].tolist()}"
    return None


def node_map(store: Mesh, other: Mesh) -> np.ndarray:
    """``perm`` with ``store_values = other_values[perm]`` for node arrays (meshes equal up to
    numbering, see :func:`mesh_difference`)."""
    return other.node_index(store.node_ids)


def ip_map(layout: StoreLayout, other: Mesh) -> np.ndarray:
    """``perm`` with ``store_point_values = other_point_values[perm]`` (store point order)."""
    _, _, o_offset = ip_layout(other)
    o_element = other.element_index(layout.mesh.element_ids)  # store element -> other element
    return o_offset[o_element[layout.ip_element]] + layout.ip_local


def is_store(path: str | Path) -> bool:
    """True when ``path`` holds a romdask snapshot store."""
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception:  # noqa: BLE001 - anything unreadable is not a store
        return False
    return root.attrs.get("format") == FORMAT


def source_info(paths) -> list[dict]:
    """[{path, name, size, sha256}] of source files."""
    from romdask.io.run import sha256

    out = []
    for p in paths:
        p = Path(p)
        out.append({"path": str(p), "name": p.name, "size": p.stat().st_size, "sha256": sha256(p)})
    return out

