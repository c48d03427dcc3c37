"""Node numberings of users' meshes (gmsh, other pre-processors), for the partition and deck tests."""

from __future__ import annotations

import numpy as np

from romdask.fem.mesh import CellBlock, Mesh

_CORNERS = {"C3D10": 4, "C3D20R": 8}


def gmsh_like(mesh, seed=0, n_unused=7, midside_first=True):
    """``mesh`` renumbered as pre-processors do: midside nodes before the corners (gmsh), the
    nodes shuffled inside each group, unused nodes interleaved, ids with gaps."""
    rng = np.random.default_rng(seed)
    n_corner = _CORNERS[mesh.blocks[0].type]
    corner = np.zeros(mesh.n_nodes, bool)
    for b in mesh.blocks:
        corner[b.connectivity[:, :n_corner].ravel()] = True
    groups = [rng.permutation(np.flatnonzero(~corner)), rng.permutation(np.flatnonzero(corner))]
    order = np.concatenate(groups if midside_first else groups[::-1])  # old node of each new slot
    n_total = mesh.n_nodes + n_unused
    slots = np.sort(rng.choice(n_total, mesh.n_nodes, replace=False))  # new index of each old-order slot
    new_of_old = np.empty(mesh.n_nodes, np.int64)
    new_of_old[order] = slots
    nodes = rng.uniform(-1, 1, (n_total, 3))  # unused nodes somewhere
    nodes[new_of_old] = mesh.nodes
    ids = np.sort(rng.choice(10 * n_total, n_total, replace=False)) + 1
    blocks = tuple(CellBlock(b.type, new_of_old[b.connectivity], 3 * np.arange(len(b)) + 11) for b in mesh.blocks)
    return Mesh(nodes, blocks, ids, {k: new_of_old[v] for k, v in mesh.node_sets.items()},
                mesh.element_sets, mesh.surfaces)
