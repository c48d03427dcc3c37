"""Time series of fields as VTU files plus a ParaView ``.pvd`` collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from romdask.fem.mesh import Mesh

__all__ = ["write_vtu_series"]


def write_vtu_series(
    stem: str | Path,
    mesh: Mesh,
    times: Sequence[float],
    point_data: Mapping[str, np.ndarray] | None = None,
    cell_data: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write ``<stem>_NNNN.vtu`` per time and ``<stem>.pvd`` listing them.

    Parameters
    ----------
    stem : path without suffix
    mesh : Mesh
    times : sequence of float, length n_steps
    point_data : name -> array (n_steps, n_nodes[, k])
    cell_data : name -> array (n_steps, n_elements[, k]) in global element order

    Returns
    -------
    Path of the ``.pvd`` file (ParaView opens it as one time series).
    """
    import meshio

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    point_data = dict(point_data or {})
    cell_data = dict(cell_data or {})
    n_steps = len(times)
    for name, a in list(point_data.items()) + list(cell_data.items()):
        if len(a) != n_steps:
            raise ValueError(f"field {name!r} has {len(a)} steps for {n_steps} times")
    base = mesh.to_meshio()
    offsets = mesh.block_offsets
    entries = []
    for step, t in enumerate(times):
        split = {
            name: [a[step][offsets[i] : offsets[i + 1]] for i in range(len(mesh.blocks))]
            for name, a in cell_data.items()
        }
        frame = meshio.Mesh(
            base.points,
            base.cells,
            point_data={**base.point_data, **{k: v[step] for k, v in point_data.items()}},
            cell_data={**base.cell_data, **split},
        )
        path = stem.parent / f"{stem.name}_{step:04d}.vtu"
        meshio.write(path, frame, binary=True)
        entries.append(f'  <DataSet timestep="{float(t)!r}" file={quoteattr(path.name)}/>')
    pvd = stem.with_suffix(".pvd")
    pvd.write_text(
        '<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1">\n<Collection>\n'
        + "\n".join(entries)
        + "\n</Collection>\n</VTKFile>\n"
    )
    return pvd
