"""Time series of fields as VTU files plus a ParaView ``.pvd`` collection."""

from __future__ import annotations

import base64
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from romdask.fem.mesh import Mesh

__all__ = ["VTK_TENSOR_COMPONENTS", "write_vtu_series"]

#: ParaView's order and names of symmetric tensor components (Tensor Glyph, tensor arrays)
VTK_TENSOR_COMPONENTS = ("XX", "YY", "ZZ", "XY", "YZ", "XZ")


def _binary_field(values: np.ndarray) -> str:
    """Float64 values as inline binary data of a zlib-compressed VTU (one block; UInt32 header:
    block count, block size, last block size, compressed size), as meshio writes them."""
    raw = np.ascontiguousarray(values, "<f8").tobytes()
    packed = zlib.compress(raw)
    header = np.array([1, 32768, len(raw), len(packed)], "<u4").tobytes()
    return base64.b64encode(header).decode() + base64.b64encode(packed).decode()


def _field_data_xml(field_data: Mapping[str, np.ndarray]) -> bytes:
    arrays = []
    for name, value in field_data.items():
        value = np.atleast_1d(np.asarray(value, np.float64))
        arrays.append(f'<DataArray type="Float64" Name={quoteattr(name)} NumberOfTuples="1" '
                      f'NumberOfComponents="{value.size}" format="binary">\n{_binary_field(value)}\n</DataArray>')
    return ("<FieldData>\n" + "\n".join(arrays) + "\n</FieldData>\n").encode()


def _annotate(path: Path, field_data: Mapping[str, np.ndarray], component_names: Mapping[str, Sequence[str]]) -> None:
    """Add VTK FieldData (one tuple per array) and ``ComponentName<i>`` attributes to a VTU
    written by meshio (which writes neither); the file is rewritten through a temporary file."""
    text = path.read_bytes()
    tag = b"<UnstructuredGrid>\n"
    if tag not in text:  # pragma: no cover - meshio's layout changed
        raise RuntimeError(f"{path}: no {tag!r} in the VTU written by meshio; cannot add field data")
    text = text.replace(tag, tag + _field_data_xml(field_data), 1)
    for name, labels in component_names.items():
        names = " ".join(f"ComponentName{i}={quoteattr(str(c))}" for i, c in enumerate(labels)).encode()
        pattern = re.compile(rb"(<DataArray [^>]*Name=" + re.escape(quoteattr(name).encode()) + rb")([ >])")
        text = pattern.sub(lambda m, names=names: m.group(1) + b" " + names + m.group(2), text)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(text)
    os.replace(tmp, path)


def write_vtu_series(
    stem: str | Path,
    mesh: Mesh,
    times: Sequence[float],
    point_data: Mapping[str, Any] | None = None,
    cell_data: Mapping[str, Any] | None = None,
    *,
    field_data: Mapping[str, Any] | None = None,
    component_names: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write ``<stem>_NNNN.vtu`` per time and ``<stem>.pvd`` listing them.

    Parameters
    ----------
    stem : path without suffix
    mesh : Mesh
    times : sequence of float, length n_steps
    point_data : name -> array (n_steps, n_nodes[, k])
    cell_data : name -> array (n_steps, n_elements[, k]) in global element order
    field_data : name -> array (n_steps,) or (n_steps, k): one value (tuple) per file, written
        as VTK FieldData (ParaView: Information panel, "Plot Global Variables Over Time").
        ``TimeValue`` (the time) is always written.
    component_names : array name -> component labels (``ComponentName<i>`` attributes, shown by
        ParaView), for point and cell arrays of that name

    Returns
    -------
    Path of the ``.pvd`` file (ParaView opens it as one time series).

    Raises
    ------
    ValueError
        An array whose step count is not ``len(times)``.

    Notes
    -----
    Arrays are read with ``a[step]`` one output time at a time: numpy, dask or zarr arrays and
    lazy sequences (``len`` and ``[step]``) keep memory at one time step. Each file is written by
    meshio (binary, zlib) and then read back once to add the field data (about its size in
    memory).
    """
    import meshio

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    point_data = dict(point_data or {})
    cell_data = dict(cell_data or {})
    field_data = dict(field_data or {})
    n_steps = len(times)
    for name, a in list(point_data.items()) + list(cell_data.items()) + list(field_data.items()):
        if len(a) != n_steps:
            raise ValueError(f"field {name!r} has {len(a)} steps for {n_steps} times")
    base = mesh.to_meshio()
    offsets = mesh.block_offsets
    entries = []
    for step, t in enumerate(times):
        split = {}
        for name, a in cell_data.items():
            values = np.asarray(a[step])
            split[name] = [values[offsets[i] : offsets[i + 1]] for i in range(len(mesh.blocks))]
        frame = meshio.Mesh(
            base.points,
            base.cells,
            point_data={**base.point_data, **{k: np.asarray(v[step]) for k, v in point_data.items()}},
            cell_data={**base.cell_data, **split},
        )
        path = stem.parent / f"{stem.name}_{step:04d}.vtu"
        meshio.write(path, frame, binary=True)
        _annotate(path, {"TimeValue": np.array([float(t)]), **{k: v[step] for k, v in field_data.items()}},
                  component_names or {})
        entries.append(f'  <DataSet timestep="{float(t)!r}" file={quoteattr(path.name)}/>')
    pvd = stem.with_suffix(".pvd")
    pvd.write_text(
        '<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1">\n<Collection>\n'
        + "\n".join(entries)
        + "\n</Collection>\n</VTKFile>\n"
    )
    return pvd
