"""Domain decomposition of a mesh with METIS and renumbering to contiguous subdomain dofs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh import Mesh

__all__ = ["Partition", "partition", "renumber"]

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


def partition(mesh: Mesh, n_parts: int, *, seed: int = 0) -> Partition:
    """Split the elements into ``n_parts`` subdomains with METIS.

    Parameters
    ----------
    mesh : Mesh
    n_parts : int
    seed : int
        METIS random seed; the result is deterministic for a given seed.

    Returns
    -------
    Partition
        Elements by METIS' dual-graph partition (elements linked when they share a face: 3
        corner nodes if the mesh has tetrahedra, else 4); each node owned by the lowest
        subdomain among its elements.

    Raises
    ------
    ValueError
        For ``n_parts < 1``, ``n_parts > n_elements``, or when METIS leaves a subdomain empty.

    Notes
    -----
    ``pymetis.part_mesh`` on the corner-node connectivity; cost about linear in the mesh size.

    References
    ----------
    G. Karypis, V. Kumar, "A fast and high quality multilevel scheme for partitioning irregular
    graphs", SIAM J. Sci. Comput. 20 (1998) 359-392.
    """
    n_parts = int(n_parts)
    n_el = mesh.n_elements
    if n_parts < 1:
        raise ValueError(f"n_parts must be >= 1; got {n_parts}")
    if n_parts > n_el:
        raise ValueError(f"cannot split {n_el} elements into {n_parts} non-empty subdomains; use n_parts <= {n_el}")
    if n_parts == 1:
        element_part = np.zeros(n_el, dtype=np.int64)
    else:
        import pymetis

        conn = [b.connectivity[:, : _CORNERS[b.type]] for b in mesh.blocks]
        ncommon = 3 if any(b.type in ("C3D4", "C3D10") for b in mesh.blocks) else 4
        result = pymetis.part_mesh(
            n_parts,
            [row for c in conn for row in c.tolist()],
            options=pymetis.Options(seed=int(seed)),
            gtype=pymetis.GType.DUAL,
            ncommon=ncommon,
        )
        element_part = np.asarray(result.element_part, dtype=np.int64)
        empty = np.flatnonzero(np.bincount(element_part, minlength=n_parts) == 0)
        if empty.size:
            raise ValueError(
                f"METIS left subdomain(s) {empty.tolist()} empty when splitting {n_el} elements into "
                f"{n_parts} parts; use fewer parts or a finer mesh"
            )
    return Partition(n_parts, element_part, _owners(mesh, element_part, n_parts))


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
