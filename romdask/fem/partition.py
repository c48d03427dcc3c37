"""Domain decomposition of a mesh with METIS and renumbering to contiguous subdomain dofs."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .mesh import Mesh

__all__ = ["Partition", "default_subdomains", "partition", "partition_cells", "renumber"]

logger = logging.getLogger(__name__)

#: below this many dofs a store gets one subdomain (see :func:`default_subdomains`)
SMALL_DOFS = 40_000
#: most dofs per subdomain by default: bounds the memory of one offline task
DOFS_PER_SUBDOMAIN = 200_000
#: fewest dofs per subdomain when splitting for the cores (half of SMALL_DOFS)
MIN_DOFS_PER_SUBDOMAIN = SMALL_DOFS // 2

# corner nodes per element type (METIS sees only these, so quadratic elements are not linked
# through a shared edge midside node)
_CORNERS = {"C3D4": 4, "C3D10": 4, "C3D8": 8, "C3D20": 8, "C3D20R": 8}


@dataclass(frozen=True, eq=False)
class Partition:
    """Subdomains of a mesh.

    Attributes
    ----------
    n_parts : int
    element_part : ndarray of int64, shape (n_elements,)
        Subdomain of each global element.
    node_part : ndarray of int64, shape (n_nodes,)
        Owning subdomain of each node: the LOWEST subdomain among the elements that use the
        node (nodes used by no element go to subdomain 0).
    """

    n_parts: int
    element_part: np.ndarray
    node_part: np.ndarray

    def __post_init__(self) -> None:
        for name in ("element_part", "node_part"):
            a = np.array(getattr(self, name), dtype=np.int64)
            if a.ndim != 1 or (a.size and (a.min() < 0 or a.max() >= self.n_parts)):
                raise ValueError(f"{name} must be a 1-D array of subdomains in 0..{self.n_parts - 1}")
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def nodes_per_part(self) -> np.ndarray:
        """Number of owned nodes of each subdomain, shape (n_parts,)."""
        return np.bincount(self.node_part, minlength=self.n_parts)

    @property
    def is_contiguous(self) -> bool:
        """True when each subdomain's nodes (hence dofs) are a contiguous range, in subdomain
        order (the case after :func:`renumber`)."""
        return bool(np.all(np.diff(self.node_part) >= 0))

    @property
    def dof_offsets(self) -> np.ndarray:
        """Shape (n_parts + 1,): subdomain ``k`` owns dofs ``dof_offsets[k]:dof_offsets[k+1]``.

        Raises
        ------
        ValueError
            If the numbering is not contiguous by subdomain: call :func:`renumber` first.
        """
        if not self.is_contiguous:
            raise ValueError(
                "the node numbering is not contiguous by subdomain; call renumber(mesh, partition) first"
            )
        return 3 * np.concatenate([[0], np.cumsum(self.nodes_per_part)]).astype(np.int64)

    def dof_slices(self) -> list[slice]:
        """``dof_offsets`` as one slice per subdomain."""
        o = self.dof_offsets
        return [slice(int(o[k]), int(o[k + 1])) for k in range(self.n_parts)]


def _owners(mesh: Mesh, element_part: np.ndarray, n_parts: int) -> np.ndarray:
    node_part = np.full(mesh.n_nodes, n_parts, dtype=np.int64)
    offsets = mesh.block_offsets
    for k, b in enumerate(mesh.blocks):
        parts = np.broadcast_to(element_part[offsets[k] : offsets[k + 1], None], b.connectivity.shape)
        np.minimum.at(node_part, b.connectivity.ravel(), parts.ravel())
    node_part[node_part == n_parts] = 0
    return node_part


def default_subdomains(n_dofs: int, n_elements: int, n_cpus: int | None = None) -> int:
    """The number of subdomains of a new snapshot store when none is given.

    Parameters
    ----------
    n_dofs : dofs of the mesh (3 per node)
    n_elements : elements of the mesh (an upper bound: every subdomain needs one)
    n_cpus : cores that will run the offline tasks (default ``dask.system.CPU_COUNT``)

    Returns
    -------
    int
        1 below :data:`SMALL_DOFS` (40,000) dofs; otherwise
        ``max(min(n_cpus, n_dofs // 20_000), ceil(n_dofs / 200_000))``: one subdomain per core
        as long as each keeps at least 20,000 dofs (:data:`MIN_DOFS_PER_SUBDOMAIN`), and at
        least enough subdomains to hold at most 200,000 dofs each
        (:data:`DOFS_PER_SUBDOMAIN`: 3.2 GB of float64 snapshots for 2,000 frames per task);
        never more than ``n_elements``.

    Raises
    ------
    ValueError
        For negative sizes or ``n_cpus < 1``.

    Notes
    -----
    One subdomain = one Dask task (and one Zarr chunk column) in every offline stage. Below
    ~40,000 dofs the fixed cost per task (METIS, one array per field and subdomain, task
    overhead) outweighs what a split gains; above, the subdomains keep every core busy and
    bound the memory of one task. A store keeps its subdomains for good: on a cluster bigger
    than this machine, pass ``n_subdomains`` explicitly.

    Examples
    --------
    >>> default_subdomains(30_000, 8_000, n_cpus=8)
    1
    >>> default_subdomains(60_000, 15_000, n_cpus=8)
    3
    >>> default_subdomains(300_000, 60_000, n_cpus=2)
    2
    >>> default_subdomains(3_000_000, 600_000, n_cpus=8)
    15
    """
    n_dofs, n_elements = int(n_dofs), int(n_elements)
    if n_dofs < 0 or n_elements < 0:
        raise ValueError(f"sizes must be >= 0; got n_dofs={n_dofs}, n_elements={n_elements}")
    if n_cpus is None:
        import dask.system

        n_cpus = dask.system.CPU_COUNT
    n_cpus = int(n_cpus)
    if n_cpus < 1:
        raise ValueError(f"n_cpus must be >= 1; got {n_cpus}")
    if n_dofs < SMALL_DOFS:
        return 1
    wanted = max(min(n_cpus, n_dofs // MIN_DOFS_PER_SUBDOMAIN), math.ceil(n_dofs / DOFS_PER_SUBDOMAIN))
    return max(1, min(wanted, n_elements))


def _checked_cells(cells: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The cell arrays as int64 (n_cells, n_vertices) arrays, or a ValueError saying what is wrong."""
    out = []
    for k, c in enumerate(cells):
        a = np.asarray(c)
        if a.ndim != 2:
            raise ValueError(f"cell array {k} must be 2-D (n_cells, n_vertices); got shape {a.shape}")
        if a.size == 0 and a.shape[0] > 0:
            raise ValueError(f"cell array {k} has cells without vertices (shape {a.shape})")
        if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind == "f"):
            raise ValueError(f"cell array {k} must hold integer vertex numbers; got dtype {a.dtype}")
        if a.size and (a.dtype.kind == "u" and a.max() > np.iinfo(np.int64).max):
            raise ValueError(f"cell array {k} has vertex numbers beyond int64")
        a = a.astype(np.int64)
        if a.size and a.min() < 0:
            raise ValueError(f"cell array {k} has negative vertex numbers ({int(a.min())})")
        if a.shape[0]:
            out.append(a)
    return out


def partition_cells(cells: Sequence[np.ndarray], n_parts: int, *, ncommon: int, seed: int = 0) -> np.ndarray:
    """Split cells into ``n_parts`` parts with METIS' dual graph (cells linked through faces).

    Parameters
    ----------
    cells : sequence of int arrays (n_cells_k, n_vertices_k)
        Vertex numbers of each cell (e.g. the corner nodes of one element block): any
        non-negative integers; numbers used by no cell, gaps and any order are fine.
    n_parts : int, 1 <= n_parts <= number of cells
    ncommon : int
        Vertices two cells share to be neighbours (3: a triangle face, 4: a quadrangle face);
        1 <= ncommon <= the fewest vertices of a cell.
    seed : METIS random seed; the result is deterministic for a given seed

    Returns
    -------
    ndarray of int64, shape (n_cells,)
        Part of each cell, cells in the order of ``cells`` (concatenated).

    Raises
    ------
    ValueError
        For anything METIS would not survive: non-integer or negative vertex numbers, cells
        without vertices, ``n_parts`` outside 1..n_cells, ``ncommon`` outside its range, too big
        a mesh for METIS' 32-bit indices. Also when METIS leaves a part empty.

    Notes
    -----
    The vertices are renumbered 0..n_vertices-1 (``np.unique``) before calling
    ``pymetis.part_mesh``: pymetis counts the vertices as the number of DISTINCT numbers and
    METIS reads out of bounds (a segmentation fault) when the numbers have gaps, as the corner
    nodes of quadratic meshes numbered by gmsh and most pre-processors do. Cost: one sort of the
    connectivity, then METIS (about linear in the mesh size).

    References
    ----------
    G. Karypis, V. Kumar, "A fast and high quality multilevel scheme for partitioning irregular
    graphs", SIAM J. Sci. Comput. 20 (1998) 359-392.
    """
    blocks = _checked_cells(cells)
    n_cells = sum(len(b) for b in blocks)
    if isinstance(n_parts, bool) or int(n_parts) != n_parts:
        raise ValueError(f"n_parts must be an integer; got {n_parts!r}")
    n_parts = int(n_parts)
    if n_parts < 1:
        raise ValueError(f"n_parts must be >= 1; got {n_parts}")
    if n_parts > n_cells:
        raise ValueError(f"cannot split {n_cells} elements into {n_parts} non-empty subdomains; "
                         f"use n_parts <= {n_cells}")
    if n_parts == 1:
        return np.zeros(n_cells, np.int64)
    fewest = min(b.shape[1] for b in blocks)
    if not 1 <= int(ncommon) <= fewest:
        raise ValueError(f"ncommon must be in 1..{fewest} (the fewest vertices of a cell); got {ncommon}")
    flat = np.concatenate([b.ravel() for b in blocks])
    if flat.size >= 2**31 - 1:
        raise ValueError(f"{flat.size} cell vertices: too many for METIS' 32-bit indices; split the mesh")
    _, compact = np.unique(flat, return_inverse=True)
    rows, start = [], 0
    for b in blocks:
        stop = start + b.size
        rows += compact[start:stop].reshape(b.shape).tolist()
        start = stop
    import pymetis

    result = pymetis.part_mesh(n_parts, rows, options=pymetis.Options(seed=int(seed)),
                               gtype=pymetis.GType.DUAL, ncommon=int(ncommon))
    element_part = np.asarray(result.element_part, dtype=np.int64)
    if element_part.shape != (n_cells,) or element_part.min() < 0 or element_part.max() >= n_parts:
        raise ValueError(f"METIS returned an invalid partition of {n_cells} elements into {n_parts} parts")
    empty = np.flatnonzero(np.bincount(element_part, minlength=n_parts) == 0)
    if empty.size:
        raise ValueError(
            f"METIS left subdomain(s) {empty.tolist()} empty when splitting {n_cells} elements into "
            f"{n_parts} parts; use fewer parts or a finer mesh"
        )
    return element_part


def partition(mesh: Mesh, n_parts: int, *, seed: int = 0) -> Partition:
    """Split the elements into ``n_parts`` subdomains with METIS.

    Parameters
    ----------
    mesh : Mesh
        Any node numbering: nodes used by no element, corner nodes numbered after midside nodes
        (gmsh), several element types.
    n_parts : int, 1 <= n_parts <= mesh.n_elements
        See :func:`default_subdomains` for a choice.
    seed : int
        METIS random seed; the result is deterministic for a given seed.

    Returns
    -------
    Partition
        Elements by METIS' dual-graph partition of the corner nodes (elements linked when they
        share a face: 3 corner nodes if the mesh has tetrahedra, else 4); each node owned by the
        lowest subdomain among its elements.

    Raises
    ------
    ValueError
        For ``n_parts`` outside 1..n_elements, or when METIS leaves a subdomain empty (see
        :func:`partition_cells`).

    Notes
    -----
    :func:`partition_cells` on the corner-node connectivity (quadratic elements are linked
    through their corners only); cost about linear in the mesh size.
    """
    corners = [b.connectivity[:, : _CORNERS[b.type]] for b in mesh.blocks]
    ncommon = 3 if any(b.type in ("C3D4", "C3D10") for b in mesh.blocks) else 4
    if mesh.n_elements == 0:
        raise ValueError("cannot partition a mesh without elements")
    element_part = partition_cells(corners, n_parts, ncommon=ncommon, seed=seed)
    return Partition(int(n_parts), element_part, _owners(mesh, element_part, int(n_parts)))


def renumber(mesh: Mesh, partition: Partition) -> tuple[Mesh, Partition]:
    """Renumber nodes subdomain by subdomain and elements by subdomain inside each block.

    Parameters
    ----------
    mesh : Mesh
    partition : Partition
        A partition of ``mesh``.

    Returns
    -------
    mesh : Mesh
        Nodes ordered by owning subdomain (stable inside a subdomain), elements ordered by
        subdomain inside each block (stable); solver ids, sets and surfaces follow.
    partition : Partition
        The same subdomains in the new numbering; ``partition.dof_offsets`` gives each
        subdomain's contiguous dof range.

    Notes
    -----
    Old node ``node_order[i]`` becomes node ``i``: a displacement ``u`` of the old mesh is
    ``u.reshape(-1, 3)[node_order]`` on the new one, with
    ``node_order = np.argsort(partition.node_part, kind="stable")``.
    """
    if len(partition.element_part) != mesh.n_elements or len(partition.node_part) != mesh.n_nodes:
        raise ValueError(
            f"partition has {len(partition.element_part)} elements / {len(partition.node_part)} nodes, "
            f"mesh has {mesh.n_elements} / {mesh.n_nodes}; partition this mesh first"
        )
    node_order = np.argsort(partition.node_part, kind="stable")
    offsets = mesh.block_offsets
    element_order = np.concatenate(
        [offsets[k] + np.argsort(partition.element_part[offsets[k] : offsets[k + 1]], kind="stable")
         for k in range(len(mesh.blocks))]
    ) if mesh.blocks else np.zeros(0, np.int64)
    new_mesh = mesh.renumbered(node_order, element_order)
    new_partition = Partition(
        partition.n_parts, partition.element_part[element_order], partition.node_part[node_order]
    )
    return new_mesh, new_partition
