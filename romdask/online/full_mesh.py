"""The store's mesh saved with a reduced model, under ``full/mesh`` (mesh-sized, never read by
:meth:`~romdask.online.model.ReducedModel.open`).

With it a saved model predicts a user's new deck and exports full fields without the training
store: the rows of the full bases are in the store's order, which is this mesh's::

    full/mesh/           attrs: n_nodes, n_elements, n_blocks, fingerprint (sha256 of
                         romdask.problem.patterns.mesh_fingerprint)
      nodes              (n_nodes, 3) float64, store order (dof 3 node + c of full/modes)
      node_ids           (n_nodes,) int64, the solver's ids
      blocks/b000/       attrs: type ("C3D8", ...); connectivity (n_cells, n_per_cell) int64 (node
                         indices, CalculiX node order); ids (n_cells,) solver element ids

Node and element sets are not kept (a new deck names its own). Read eagerly with zarr and
numpy only (no dask).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import zarr

from romdask.fem.mesh import CellBlock, Mesh
from romdask.online.integrity import verify_full
from romdask.online.model import open_model_group

__all__ = ["read_full_mesh", "write_full_mesh"]


def write_full_mesh(group: zarr.Group, mesh: Mesh, compressors: Any = "auto") -> None:
    """Write ``mesh`` (nodes, ids, cells per element type) into ``group/mesh``.

    Parameters
    ----------
    group : the model's ``full`` group (being written)
    mesh : the store's mesh, in store order
    compressors : zarr compressors (``romdask.serialize.compressors``)

    Notes
    -----
    ``8 (3 n_nodes + n_nodes + sum of connectivity sizes + n_elements)`` bytes before
    compression; the attributes are written last.
    """
    from romdask.problem.patterns import mesh_fingerprint

    g = group.create_group("mesh")
    g.create_array("nodes", data=np.ascontiguousarray(mesh.nodes, np.float64), compressors=compressors)
    g.create_array("node_ids", data=np.ascontiguousarray(mesh.node_ids, np.int64), compressors=compressors)
    blocks = g.create_group("blocks")
    for i, block in enumerate(mesh.blocks):
        bg = blocks.create_group(f"b{i:03d}")
        bg.create_array("connectivity", data=np.ascontiguousarray(block.connectivity, np.int64),
                        compressors=compressors)
        bg.create_array("ids", data=np.ascontiguousarray(block.ids, np.int64), compressors=compressors)
        bg.attrs["type"] = block.type
    g.attrs.update({"n_nodes": int(mesh.n_nodes), "n_elements": int(mesh.n_elements),
                    "n_blocks": len(mesh.blocks), "fingerprint": mesh_fingerprint(mesh)["sha256"]})


def read_full_mesh(path: str | os.PathLike) -> Mesh:
    """The store mesh saved with a reduced model (``Reduction.save``), eagerly.

    Parameters
    ----------
    path : the model group

    Returns
    -------
    Mesh
        In store order (the rows of the full bases), without node / element sets.

    Raises
    ------
    ValueError
        Not a reduced model, a model saved without its mesh (older models, or
        ``ReducedModel.save`` without ``mesh=``: save it with ``reduce(...).save(path)``), or
        a mesh group that is incomplete, does not match its fingerprint or fails the model's
        checksum.

    Notes
    -----
    Reads the mesh-sized arrays (no dask), O(mesh size).
    """
    from romdask.problem.patterns import mesh_fingerprint

    root = open_model_group(path)
    try:
        g = root["full/mesh"]
    except KeyError:
        raise ValueError(f"{path} holds no mesh (full/mesh); save the model with romdask.offline.reduce(...).save(path) "
                         "or ReducedModel.save(path, mesh=store.layout.mesh).") from None
    verify_full(root, path, sorted(f"full/mesh/{name}" for name, node in g.members(max_depth=None)
                                   if isinstance(node, zarr.Array)))
    attrs = g.attrs.asdict()
    try:
        blocks = tuple(
            CellBlock(g[f"blocks/b{i:03d}"].attrs["type"], g[f"blocks/b{i:03d}/connectivity"][...],
                      g[f"blocks/b{i:03d}/ids"][...])
            for i in range(int(attrs["n_blocks"]))
        )
        mesh = Mesh(g["nodes"][...], blocks, g["node_ids"][...])
    except KeyError as exc:
        raise ValueError(f"{path}: the saved mesh is incomplete ({exc}); re-save the model.") from None
    if mesh_fingerprint(mesh)["sha256"] != attrs.get("fingerprint"):
        raise ValueError(f"{path}: the saved mesh does not match its fingerprint (edited or corrupted); re-save the model.")
    return mesh
