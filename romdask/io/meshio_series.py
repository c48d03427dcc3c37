"""Readers of displacement time series in formats meshio understands: XDMF and ParaView ``.pvd``.

Both return a :class:`~romdask.io.run.Run` whose frames are read one output time at a time,
so a run never needs to fit in memory. These formats carry no integration-point fields: the
run has ``"displacement"`` (node, 3 components) and, when the first step has a scalar point
field named as in :data:`TEMPERATURE_NAMES`, ``"temperature"`` (node, 1).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.run import FieldSpec, Frame, ReaderError, Run

__all__ = ["read_xdmf_series", "read_pvd_series", "DISPLACEMENT_NAMES", "TEMPERATURE_NAMES"]

logger = logging.getLogger(__name__)

#: Point-data names taken for the displacement, in order of preference.
DISPLACEMENT_NAMES: tuple[str, ...] = ("displacement", "u", "U", "Displacement", "disp")
#: Point-data names taken for the nodal temperature (kept as the field "temperature"), in order.
TEMPERATURE_NAMES: tuple[str, ...] = ("temperature", "Temperature", "NT", "T", "temp")
_TEMPERATURE_SPEC = FieldSpec("node", ("T",))
_NODE_ID_NAMES = ("node_id", "GlobalNodeId")
_DEFAULT_TYPES = {"tetra": "C3D4", "tetra10": "C3D10", "hexahedron": "C3D8", "hexahedron20": "C3D20"}
_DISPLACEMENT_SPEC = {"displacement": FieldSpec("node", ("ux", "uy", "uz"))}


def _volume_types() -> set[str]:
    import meshio

    return {k for k, d in meshio._mesh.topological_dimension.items() if d == 3}


def _build_mesh(path: Path, points, cells, point_data, cell_data, element_types: Mapping[str, str] | None) -> Mesh:
    """Mesh from meshio points/cells; unsupported volume cells are an error, lower-dim cells dropped."""
    import meshio

    names = dict(_DEFAULT_TYPES, **(element_types or {}))
    volume = _volume_types()
    kept, index = [], []
    for i, cb in enumerate(cells):
        if cb.type in names:
            kept.append(cb)
            index.append(i)
        elif cb.type in volume:
            raise ReaderError(path, f"unsupported volume cell type {cb.type!r} ({len(cb.data)} cells); "
                                    f"supported: {', '.join(sorted(names))}")
    if not kept:
        found = sorted({cb.type for cb in cells})
        raise ReaderError(path, f"no supported volume cells (found {found}); supported: {', '.join(sorted(names))}")
    ids = {}
    if "element_id" in (cell_data or {}) and len(cell_data["element_id"]) == len(cells):
        ids["element_id"] = [np.asarray(cell_data["element_id"][i]).astype(np.int64).reshape(-1) for i in index]
    m = meshio.Mesh(points, kept, cell_data=ids)
    try:
        mesh = Mesh.from_meshio(m, element_types=element_types)
    except ValueError as err:
        raise ReaderError(path, str(err)) from None
    for key in _NODE_ID_NAMES:
        if key in point_data:
            ids = np.asarray(point_data[key]).reshape(-1)
            if ids.shape != (mesh.n_nodes,) or not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
                raise ReaderError(path, f"point data {key!r} is not one integer id per node")
            ids = ids.astype(np.int64)
            if len(np.unique(ids)) != len(ids):
                raise ReaderError(path, f"point data {key!r} has repeated node ids")
            mesh = Mesh(mesh.nodes, mesh.blocks, ids)
            break
    return mesh


def _pick_displacement(path: Path, point_data: Mapping[str, np.ndarray], displacement: str | None) -> str:
    candidates = (displacement,) if displacement is not None else DISPLACEMENT_NAMES
    for name in candidates:
        if name in point_data:
            return name
    want = repr(displacement) if displacement is not None else "one of " + ", ".join(DISPLACEMENT_NAMES)
    raise ReaderError(path, f"no displacement field ({want}); point data present: {sorted(point_data) or 'none'}. "
                            "Pass displacement='<name>'.")


def _pick_temperature(point_data: Mapping[str, np.ndarray], n_nodes: int) -> str | None:
    """The first of :data:`TEMPERATURE_NAMES` holding one value per node, or None."""
    for name in TEMPERATURE_NAMES:
        if name in point_data and np.asarray(point_data[name]).reshape(n_nodes, -1).shape[1:] == (1,):
            return name
    return None


def _as_temperature(path: Path, step: int, name: str, value, n_nodes: int) -> np.ndarray:
    t = np.asarray(value, dtype=np.float64)
    if t.size != n_nodes:
        raise ReaderError(path, f"step {step}: temperature {name!r} has shape {t.shape} for {n_nodes} nodes")
    t = t.reshape(n_nodes, 1)
    if not np.all(np.isfinite(t)):
        bad = int(np.flatnonzero(~np.isfinite(t[:, 0]))[0])
        raise ReaderError(path, f"step {step}: non-finite temperature {name!r} (first at node index {bad})")
    return np.ascontiguousarray(t)


def _frame_data(path: Path, step: int, point_data, field: str, temperature: str | None, n_nodes: int) -> dict:
    data = {"displacement": _as_displacement(path, step, field, point_data[field], n_nodes)}
    if temperature is not None:
        if temperature not in point_data:
            raise ReaderError(path, f"step {step}: no point data {temperature!r} (the first step has it); "
                                    f"present: {sorted(point_data)}")
        data["temperature"] = _as_temperature(path, step, temperature, point_data[temperature], n_nodes)
    return data


def _as_displacement(path: Path, step: int, name: str, value, n_nodes: int) -> np.ndarray:
    u = np.asarray(value, dtype=np.float64)
    if u.ndim == 1 and n_nodes == len(u):
        u = u[:, None]
    if u.ndim != 2 or u.shape[0] != n_nodes or not 1 <= u.shape[1] <= 3:
        raise ReaderError(path, f"step {step}: displacement {name!r} has shape {u.shape} for {n_nodes} nodes")
    if u.shape[1] < 3:
        u = np.column_stack([u, np.zeros((n_nodes, 3 - u.shape[1]))])
    if not np.all(np.isfinite(u)):
        bad = int(np.flatnonzero(~np.isfinite(u).all(axis=1))[0])
        raise ReaderError(path, f"step {step}: non-finite displacement {name!r} (first at node index {bad})")
    return np.ascontiguousarray(u)


def _fields(temperature: str | None) -> dict[str, FieldSpec]:
    return _DISPLACEMENT_SPEC if temperature is None else {**_DISPLACEMENT_SPEC, "temperature": _TEMPERATURE_SPEC}


def _same_mesh(points, cells, ref_points, ref_cells) -> str | None:
    """None when equal, else what differs."""
    if np.shape(points) != np.shape(ref_points) or not np.array_equal(points, ref_points):
        return f"points differ from the first step ({np.shape(points)} vs {np.shape(ref_points)})"
    if [c.type for c in cells] != [c.type for c in ref_cells]:
        return "cell types differ from the first step"
    for c, r in zip(cells, ref_cells):
        if c.data.shape != r.data.shape or not np.array_equal(c.data, r.data):
            return f"{c.type} connectivity differs from the first step"
    return None


# ---- XDMF ------------------------------------------------------------------------------------


def read_xdmf_series(
    path: str | Path,
    *,
    name: str | None = None,
    displacement: str | None = None,
    element_types: Mapping[str, str] | None = None,
) -> Run:
    """Read an XDMF time series (meshio ``TimeSeriesWriter``, FEniCS ``XDMFFile``...).

    Parameters
    ----------
    path : the ``.xdmf`` file (its HDF5 heavy data next to it)
    name : run name (default: the file stem)
    displacement : point-data name of the displacement (default: the first of
        :data:`DISPLACEMENT_NAMES` present)
    element_types : meshio cell type -> romdask element type, e.g. ``{"hexahedron20": "C3D20R"}``

    Returns
    -------
    Run with the field ``"displacement"`` (n_nodes, 3), 2-D vectors padded with zeros, and
    ``"temperature"`` (n_nodes, 1) when the first step has one of :data:`TEMPERATURE_NAMES`.

    Raises
    ------
    ReaderError
        Unreadable/corrupt files, unsupported volume cells, no displacement-like field,
        non-increasing times, NaN/Inf displacements (raised when that frame is read).

    Notes
    -----
    The mesh and times are read at once (times come from the XML, without touching the heavy
    data); each frame reads one step's point data. Memory: one step at a time.
    Node ids come from point data ``node_id`` / ``GlobalNodeId`` of the first step if present.
    meshio reads the HDF5 heavy data with ``h5py``.
    """
    from meshio.xdmf import TimeSeriesReader

    path = Path(path)
    if not path.is_file():
        raise ReaderError(path, "file not found")
    try:
        with TimeSeriesReader(path) as reader:
            points, cells = reader.read_points_cells()
            times = [float(c.attrib["Value"]) for g in reader.collection for c in g if c.tag == "Time"]
            n_steps = reader.num_steps
            if n_steps == 0:
                raise ReaderError(path, "the series has no time steps")
            _, first_pd, first_cd = reader.read_data(0)
    except ReaderError:
        raise
    except Exception as err:  # meshio/h5py/XML errors
        raise ReaderError(path, f"cannot read XDMF series: {type(err).__name__}: {err}") from None
    if len(times) != n_steps:
        raise ReaderError(path, f"{n_steps} time steps but {len(times)} <Time> values")
    mesh = _build_mesh(path, points, cells, first_pd, first_cd, element_types)
    field = _pick_displacement(path, first_pd, displacement)
    n_nodes = mesh.n_nodes
    temperature = _pick_temperature(first_pd, n_nodes)

    def frames() -> Iterator[Frame]:
        with TimeSeriesReader(path) as reader:
            try:
                reader.read_points_cells()  # meshio needs the cells before any read_data
            except Exception as err:
                raise ReaderError(path, f"cannot read the mesh: {type(err).__name__}: {err}") from None
            for k in range(n_steps):
                try:
                    t, pd, _ = reader.read_data(k)
                except Exception as err:
                    raise ReaderError(path, f"step {k}: cannot read data: {type(err).__name__}: {err}") from None
                if field not in pd:
                    raise ReaderError(path, f"step {k}: no point data {field!r}; present: {sorted(pd)}")
                yield Frame(k, float(t), _frame_data(path, k, pd, field, temperature, n_nodes))

    return Run(
        name=name or path.stem,
        mesh=mesh,
        times=np.array(times),
        fields=_fields(temperature),
        frames=frames,
        solver="xdmf",
        sources=(path,),
        metadata={"format": "xdmf", "displacement_field": field, "temperature_field": temperature},
    )


# ---- PVD + VTU -------------------------------------------------------------------------------


def _parse_pvd(path: Path) -> list[tuple[float, Path]]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise ReaderError(path, f"not a readable PVD collection: {err}") from None
    entries = []
    for i, ds in enumerate(root.iter("DataSet")):
        if ds.get("file") is None or ds.get("timestep") is None:
            raise ReaderError(path, f"DataSet {i} lacks a 'file' or 'timestep' attribute")
        try:
            t = float(ds.get("timestep"))
        except ValueError:
            raise ReaderError(path, f"DataSet {i}: timestep {ds.get('timestep')!r} is not a number") from None
        if ds.get("part", "0") not in ("0", ""):
            raise ReaderError(path, f"DataSet {i}: multi-part collections are not supported")
        entries.append((t, path.parent / ds.get("file")))
    if not entries:
        raise ReaderError(path, "the collection lists no DataSet")
    return entries


def _read_vtu(path: Path):
    import meshio

    if not path.is_file():
        raise ReaderError(path, "file not found (referenced by the .pvd collection)")
    try:
        return meshio.vtu.read(str(path))
    except Exception as err:
        raise ReaderError(path, f"cannot read: {type(err).__name__}: {err}") from None


def read_pvd_series(
    path: str | Path,
    *,
    name: str | None = None,
    displacement: str | None = None,
    element_types: Mapping[str, str] | None = None,
) -> Run:
    """Read a ParaView ``.pvd`` collection of ``.vtu`` files, one file per output time.

    Parameters
    ----------
    path : the ``.pvd`` file; ``file`` attributes are relative to its folder
    name, displacement, element_types : as in :func:`read_xdmf_series`

    Returns
    -------
    Run with the field ``"displacement"``; the mesh is the first file's.

    Raises
    ------
    ReaderError
        Missing or corrupt ``.vtu`` (naming it), a step whose points or cells differ from the
        first file's, unsupported volume cells, no displacement-like field, non-increasing times,
        NaN/Inf displacements (raised when that frame is read).

    Notes
    -----
    Every frame re-reads one ``.vtu`` file; memory: one step at a time. The files are listed in
    ``Run.sources`` (pvd first).
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(path, "file not found")
    entries = _parse_pvd(path)
    times = np.array([t for t, _ in entries])
    files = [f for _, f in entries]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise ReaderError(missing[0], f"file not found (referenced by {path.name}; {len(missing)} missing)")
    first = _read_vtu(files[0])
    mesh = _build_mesh(files[0], first.points, first.cells, first.point_data, first.cell_data, element_types)
    field = _pick_displacement(files[0], first.point_data, displacement)
    n_nodes = mesh.n_nodes
    temperature = _pick_temperature(first.point_data, n_nodes)

    def frames() -> Iterator[Frame]:
        ref = None
        for k, (t, f) in enumerate(entries):
            m = _read_vtu(f)
            if ref is None:
                ref = (m.points, m.cells)
            else:
                diff = _same_mesh(m.points, m.cells, *ref)
                if diff:
                    raise ReaderError(f, f"step {k}: {diff}; every file of the series needs the same mesh")
            if field not in m.point_data:
                raise ReaderError(f, f"step {k}: no point data {field!r}; present: {sorted(m.point_data)}")
            yield Frame(k, float(t), _frame_data(f, k, m.point_data, field, temperature, n_nodes))

    return Run(
        name=name or path.stem,
        mesh=mesh,
        times=times,
        fields=_fields(temperature),
        frames=frames,
        solver="vtu",
        sources=(path, *files),
        metadata={"format": "pvd", "displacement_field": field, "temperature_field": temperature},
    )
