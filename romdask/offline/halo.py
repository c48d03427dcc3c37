"""Subdomain coupling: the halo of each subdomain and local (owned + halo) snapshot arrays.

An element belongs to one subdomain (``layout.element_subdomain``) but may use nodes owned by
another one (``layout.node_subdomain``). Everything computed element by element on subdomain
``k`` (strains, subdomain mass matrices, ...) therefore needs the displacement at k's *local*
nodes: the nodes of k's elements, owned by k or by a neighbor (the *halo*).

:func:`subdomain_halos` computes, from the store layout, per subdomain: its elements, its local
nodes and dofs, and for each neighbor ``l`` the positions, inside l's dof block, of the halo dofs
k needs. :func:`local_snapshots` turns a snapshot array ``U`` (snapshot, dof) with one Dask block
per subdomain into a Dask array whose block ``k`` along axis 1 is k's local array
``(n_snap, n_local_dofs_k)``: one task per (snapshot chunk, subdomain), with edges to k's block
and its neighbors' blocks only; the graph holds only the (small) halo index arrays.

Local dof order: sorted global dofs (nodes are subdomain-contiguous in the store order, so this
is neighbor block by neighbor block, in increasing subdomain number, k's own block included).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from romdask.fem.mesh import CellBlock, Mesh
from romdask.store.layout import StoreLayout

__all__ = ["StoreSubmesh", "SubdomainHalo", "check_subdomain_chunks", "local_snapshots", "read_submesh",
           "resolve_layout", "store_submeshes", "submesh", "subdomain_halos"]


@dataclass(frozen=True, eq=False)
class SubdomainHalo:
    """What subdomain ``k`` needs from its neighbors.

    Attributes
    ----------
    subdomain : int
    elements : (n_el_k,) global element indices of k's elements, increasing
    nodes : (n_local_nodes,) global node indices touched by k's elements (owned + halo), increasing
    dofs : (3 n_local_nodes,) their dofs ``3 node + c``, increasing (the local dof order)
    sources : tuple of (l, positions) for each subdomain l that k reads from (k itself
        included), increasing l; ``positions`` are indices inside l's dof block, or None for
        "the whole block" (k's own block when every owned node is used); concatenating
        ``U_l[:, positions]`` over ``sources`` gives the local array in local dof order
    """

    subdomain: int
    elements: np.ndarray
    nodes: np.ndarray
    dofs: np.ndarray
    sources: tuple[tuple[int, np.ndarray | None], ...]

    @property
    def n_local_dofs(self) -> int:
        return len(self.dofs)

    @property
    def neighbors(self) -> tuple[int, ...]:
        """The other subdomains k reads halo dofs from."""
        return tuple(l for l, _ in self.sources if l != self.subdomain)


def subdomain_halos(layout: StoreLayout) -> tuple[SubdomainHalo, ...]:
    """Per subdomain: elements, local (owned + halo) nodes and dofs, and where to read them.

    Parameters
    ----------
    layout : the store layout (``SnapshotStore.open(path).layout``)

    Returns
    -------
    tuple of SubdomainHalo, one per subdomain

    Notes
    -----
    Mesh-sized work, done once in the driver (vectorized over elements). A subdomain owning a
    node that none of its elements uses (possible with solver-given partitions) still reads
    only the dofs its elements touch.
    """
    mesh = layout.mesh
    K = layout.n_subdomains
    dof_offsets = np.asarray(layout.dof_offsets, np.int64)
    elem_sub = np.asarray(layout.element_subdomain, np.int64)
    node_sub = np.asarray(layout.node_subdomain, np.int64)
    offsets = mesh.block_offsets
    halos = []
    for k in range(K):
        elements = np.flatnonzero(elem_sub == k).astype(np.int64)
        parts = []
        for bi, b in enumerate(mesh.blocks):
            sel = elements[(elements >= offsets[bi]) & (elements < offsets[bi + 1])] - offsets[bi]
            if len(sel):
                parts.append(np.asarray(b.connectivity)[sel].ravel())
        nodes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        dofs = (3 * nodes[:, None] + np.arange(3)).ravel()
        sources = []
        owners = node_sub[nodes]
        for l in np.unique(owners):
            l = int(l)
            d = (3 * nodes[owners == l][:, None] + np.arange(3)).ravel() - dof_offsets[l]
            n_l = int(dof_offsets[l + 1] - dof_offsets[l])
            whole = len(d) == n_l  # sorted and unique: then d == arange(n_l)
            sources.append((l, None if whole else d.astype(np.int64)))
        halos.append(SubdomainHalo(k, elements, nodes.astype(np.int64), dofs.astype(np.int64), tuple(sources)))
    return tuple(halos)


def submesh(layout: StoreLayout, halo: SubdomainHalo) -> Mesh:
    """The mesh of subdomain ``k``'s elements on its local nodes (local node i = ``halo.nodes[i]``).

    Blocks keep the store's block order and elements their increasing store order, so the
    integration points of the submesh come in the order of ``layout.points_of(k)``.
    """
    mesh = layout.mesh
    local = np.full(mesh.n_nodes, -1, np.int64)
    local[halo.nodes] = np.arange(len(halo.nodes))
    offsets = mesh.block_offsets
    blocks = []
    for bi, b in enumerate(mesh.blocks):
        sel = halo.elements[(halo.elements >= offsets[bi]) & (halo.elements < offsets[bi + 1])] - offsets[bi]
        if len(sel):
            blocks.append(CellBlock(b.type, local[np.asarray(b.connectivity)[sel]], np.asarray(b.ids)[sel]))
    return Mesh(np.asarray(mesh.nodes)[halo.nodes], tuple(blocks), np.asarray(mesh.node_ids)[halo.nodes])


def resolve_layout(layout) -> tuple[StoreLayout, str | None]:
    """``(layout, store path or None)`` from a StoreLayout, a store path or a SnapshotStore."""
    if isinstance(layout, StoreLayout):
        return layout, None
    if isinstance(layout, (str, Path)):
        from romdask.store.writer import SnapshotStore

        store = SnapshotStore.open(layout, mode="r")
        return store.layout, str(Path(layout).resolve())
    if hasattr(layout, "layout") and hasattr(layout, "path"):  # a SnapshotStore
        return layout.layout, str(Path(layout.path).resolve())
    raise TypeError(f"expected a StoreLayout, a store path or a SnapshotStore; got {type(layout).__name__}")


def _layout_token(layout: StoreLayout) -> str:
    """Fingerprint of the store mesh and partition (keys the per-worker sub-mesh cache)."""
    mesh = layout.mesh
    return tokenize(mesh.nodes, [b.connectivity for b in mesh.blocks], layout.element_subdomain)


@dataclass(frozen=True)
class StoreSubmesh:
    """A reference to subdomain ``k``'s sub-mesh in a store: what a task needs to read it.

    Graphs carry this (a path, two ints and a token: ~200 bytes) instead of the sub-mesh, so
    their size does not grow with the mesh; :meth:`load` (run inside the task) reads it from
    the store once per worker process (cached) and returns the :func:`submesh` of k.
    """

    store: str
    subdomain: int
    token: str

    def load(self) -> Mesh:
        return read_submesh(self.store, self.subdomain, self.token)


def store_submeshes(layout: StoreLayout, store: str) -> tuple[StoreSubmesh, ...]:
    """One :class:`StoreSubmesh` per subdomain of the store at ``store``."""
    token = _layout_token(layout)
    return tuple(StoreSubmesh(str(store), k, token) for k in range(layout.n_subdomains))


def load_submesh(mesh) -> Mesh:
    """A Mesh given as itself or as a :class:`StoreSubmesh` (inside tasks)."""
    return mesh.load() if isinstance(mesh, StoreSubmesh) else mesh


@functools.lru_cache(maxsize=256)
def read_submesh(store: str, k: int, token: str = "") -> Mesh:
    """Subdomain ``k``'s sub-mesh read from the store's ``mesh/`` group, the same as
    ``submesh(layout, subdomain_halos(layout)[k])`` (cached per process by ``(store, k, token)``;
    ``token`` fingerprints the mesh so that a store rewritten at the same path is re-read).

    Reads the element subdomains and the blocks' connectivity (mesh-sized integers) and the
    coordinates and ids of k's local nodes only.
    """
    g = zarr.open_group(store, mode="r")["mesh"]
    elem_sub = g["element_subdomain"][...]
    start = 0
    conns, blocks_sel = [], []
    for i in range(int(g.attrs["n_blocks"])):
        b = g[f"blocks/b{i:03d}"]
        n_b = b["connectivity"].shape[0]
        sel = np.flatnonzero(elem_sub[start : start + n_b] == k)
        start += n_b
        if len(sel):
            conn = b["connectivity"].get_orthogonal_selection((sel, slice(None)))
            conns.append(conn)
            blocks_sel.append((b.attrs["type"], conn, b["ids"].get_orthogonal_selection(sel)))
    nodes = np.unique(np.concatenate([c.ravel() for c in conns])) if conns else np.zeros(0, np.int64)
    blocks = []
    for etype, conn, ids in blocks_sel:
        blocks.append(CellBlock(etype, np.searchsorted(nodes, conn).astype(np.int64), np.asarray(ids)))
    coords = g["nodes"].get_orthogonal_selection((nodes, slice(None))) if len(nodes) else np.zeros((0, 3))
    node_ids = g["node_ids"].get_orthogonal_selection(nodes) if len(nodes) else np.zeros(0, np.int64)
    return Mesh(np.asarray(coords), tuple(blocks), np.asarray(node_ids))


def check_subdomain_chunks(U: da.Array, dof_offsets, what: str = "U") -> None:
    """Raise ValueError unless ``U`` has one block per subdomain along axis 1."""
    expected = tuple(int(b - a) for a, b in zip(dof_offsets[:-1], dof_offsets[1:]))
    if not isinstance(U, da.Array):
        raise TypeError(f"{what} must be a dask array (snapshot, dof); got {type(U).__name__}. "
                        "Use open_snapshots(path).displacement.data")
    if U.ndim < 2 or tuple(U.chunks[1]) != expected:
        raise ValueError(
            f"{what} needs one chunk per subdomain along 'dof' (sizes {expected}); got chunks "
            f"{U.chunks[1] if U.ndim >= 2 else U.shape}. Use open_snapshots(path).displacement.data "
            f"or U.rechunk({{1: {expected}}})"
        )


def _take_columns(block, positions):
    return np.take(block, positions, axis=1)


def _gather(blocks, positions):
    """Concatenate ``block[:, p]`` over the sources (p None: the block itself)."""
    parts = [b if p is None else np.take(b, p, axis=1) for b, p in zip(blocks, positions)]
    return np.concatenate(parts, axis=1) if len(parts) > 1 else np.ascontiguousarray(parts[0])


def local_snapshots(U: da.Array, halos: tuple[SubdomainHalo, ...]) -> da.Array:
    """Local (owned + halo) snapshot arrays of every subdomain, lazily.

    Parameters
    ----------
    U : dask array (n_snap, n_dof), one block per subdomain along axis 1 (the store's
        ``displacement``); any chunking along axis 0
    halos : from :func:`subdomain_halos`

    Returns
    -------
    dask array (n_snap, sum_k n_local_dofs_k)
        Block ``(i, k)`` is subdomain k's local array for snapshot chunk i, columns in local dof
        order (``halos[k].dofs``). Only meaningful block by block (halo dofs are repeated).

    Notes
    -----
    One task per (snapshot chunk, subdomain), depending on k's block and on one small task per
    neighbor l that slices the halo columns out of l's block (so that only halo columns move
    between workers, not whole blocks); the graph holds the halo index arrays
    (``O(halo size)``), never snapshot data. Memory per task: k's block plus the local array.
    """
    sizes = tuple(len(h.dofs) for h in halos)
    if U.ndim != 2 or U.numblocks[1] != len(halos):
        raise ValueError(f"U needs one chunk per subdomain along 'dof' ({len(halos)} subdomains); got {U.numblocks[1]} chunks")
    token = tokenize(U, [(h.subdomain, [(l, p) for l, p in h.sources]) for h in halos])
    name = "romdask-local-" + token
    dsk = {}
    for i in range(U.numblocks[0]):
        for k, h in enumerate(halos):
            keys, positions = [], []
            for l, p in h.sources:
                if l == k or p is None:
                    keys.append((U.name, i, l))
                    positions.append(p)
                else:  # sliced where the neighbor block lives: only the halo columns move
                    dsk[(name + "-halo", i, k, l)] = (_take_columns, (U.name, i, l), p)
                    keys.append((name + "-halo", i, k, l))
                    positions.append(None)
            dsk[(name, i, k)] = (_gather, keys, positions)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[U])
    return da.Array(graph, name, chunks=(U.chunks[0], sizes), dtype=U.dtype)
