"""Lazy xarray views of a snapshot store (dask-backed; building them computes nothing)."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from dask.array.core import getter
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .layout import FORMAT, StoreLayout, is_store, read_layout, subdomain_key

__all__ = ["open_run", "open_snapshots"]


def _open(path) -> tuple[zarr.Group, StoreLayout]:
    path = Path(path)
    if not is_store(path):
        raise ValueError(
            f"{path} is not a romdask snapshot store (no zarr group with format={FORMAT!r}); "
            "create one with `romdask ingest` or romdask.store.create_store"
        )
    root = zarr.open_group(str(path), mode="r")
    if "mesh" not in root or not root["mesh"].attrs.get("complete", False):
        raise ValueError(f"{path}: the mesh group is incomplete (interrupted creation); delete the store and ingest again")
    return root, read_layout(root)


def _complete_runs(root: zarr.Group) -> dict[str, dict]:
    runs = root["runs"]
    out = {}
    with warnings.catch_warnings():  # temporary files of a killed ingest
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        names = sorted(runs.group_keys())
    for name in names:
        try:
            attrs = dict(runs[name].attrs)
        except KeyError:  # killed before its metadata was written: incomplete
            continue
        if attrs.get("status") == "complete":
            out[name] = attrs
    return out


def _damaged(where: Path, run: str, exc: Exception) -> ValueError:
    """A codec's refusal to decode a chunk (blosc: "error during blosc decompression: -1"), naming the array."""
    return ValueError(f"{where}: cannot decode a chunk ({exc}): the store is damaged; ingest run {run!r} again "
                      "(overwrite=True)")


def _checked_getter(arr, index, *args, where: str = "", run: str = "", **kwargs):
    """dask's getter of a zarr block; a chunk that cannot be decoded names its array."""
    try:
        return getter(arr, index, *args, **kwargs)
    except RuntimeError as exc:
        raise _damaged(Path(where), run, exc) from exc


def _field_array(root: zarr.Group, path: Path, run: str, field: str, n_sub: int) -> da.Array:
    """One run's field, subdomains concatenated along axis 1: one dask block per subdomain."""
    blocks = []
    for k in range(n_sub):
        key = f"runs/{run}/{field}/{subdomain_key(k)}"
        arr = root[key]
        name = "romdask-store-" + tokenize(str(path.resolve()), run, field, k, arr.shape, arr.metadata.to_dict())
        read = partial(_checked_getter, where=str(path / key), run=run)
        blocks.append(da.from_array(arr, chunks=arr.shape, name=name, getitem=read))
    return da.concatenate(blocks, axis=1)


def _read_subdomain(path: str, runs: tuple[str, ...], field: str, k: int, shape: tuple[int, ...],
                    dtype: str = "float64") -> np.ndarray:
    """Subdomain k's ``field`` of every run in ``runs``, stacked along the first axis (one task)."""
    root = zarr.open_group(path, mode="r")
    out = np.empty(shape, dtype)
    start = 0
    for run in runs:
        key = f"runs/{run}/{field}/{subdomain_key(k)}"
        try:
            block = root[key][...]
        except RuntimeError as exc:
            raise _damaged(Path(path) / key, run, exc) from exc
        out[start : start + len(block)] = block
        start += len(block)
    return out


def _subdomain_field_array(root: zarr.Group, path: Path, runs: list[str], field: str, n_sub: int) -> da.Array:
    """All runs' ``field``: ONE dask block (and one read task) per subdomain covering every snapshot."""
    arrays = [[root[f"runs/{run}/{field}/{subdomain_key(k)}"] for k in range(n_sub)] for run in runs]
    n_rows = sum(a[0].shape[0] for a in arrays)
    tail = arrays[0][0].shape[2:]
    widths = tuple(int(arrays[0][k].shape[1]) for k in range(n_sub))
    meta = [[(a.shape, a.metadata.to_dict()) for a in row] for row in arrays]
    str_path = str(path.resolve())
    name = "romdask-store-subdomain-" + tokenize(str_path, runs, field, meta)
    extra = (0,) * len(tail)
    dtype = np.dtype(arrays[0][0].dtype)
    dsk = {(name, 0, k, *extra): (_read_subdomain, str_path, tuple(runs), field, k, (n_rows, widths[k], *tail), dtype.str)
           for k in range(n_sub)}
    chunks = ((n_rows,), widths, *((t,) for t in tail))
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name, chunks=chunks, dtype=dtype)


def _dof_coords(layout: StoreLayout) -> dict:
    mesh = layout.mesh
    return {
        "node_id": ("dof", np.repeat(np.asarray(mesh.node_ids), 3)),
        "component": ("dof", np.tile(np.array(["x", "y", "z"]), mesh.n_nodes)),
        "subdomain": ("dof", np.repeat(layout.node_subdomain, 3)),
    }


def _ip_coords(layout: StoreLayout, ip_dim: str = "ip") -> dict:
    points = layout.ip_points
    elements = layout.ip_element[points]
    return {
        "ip_index": (ip_dim, points),
        "element_id": (ip_dim, np.asarray(layout.mesh.element_ids)[elements]),
        "local_point": (ip_dim, layout.ip_local[points]),
        "ip_subdomain": (ip_dim, layout.element_subdomain[elements]),
    }


def _node_coords(layout: StoreLayout) -> dict:
    return {"node": ("node", np.asarray(layout.mesh.node_ids)), "node_subdomain": ("node", layout.node_subdomain)}

def _add_field(data_vars: dict, coords: dict, first_dim: str, name: str, spec, x, layout: StoreLayout) -> None:
    """Add field ``name`` (dask array ``x``, first axis ``first_dim``) and its coordinates."""
    if name == "displacement":
        data_vars[name] = ((first_dim, "dof"), x)
        return
    location = "ip" if spec["location"] == "ip" else "node"
    data_vars[name] = ((first_dim, location, f"component_{name}"), x)
    coords.update(_ip_coords(layout) if location == "ip" else _node_coords(layout))
    coords[f"component_{name}"] = (f"component_{name}", np.array(spec["components"]))


def _store_attrs(root: zarr.Group, layout: StoreLayout) -> dict:
    a = dict(root.attrs)
    a["dof_offsets"] = layout.dof_offsets.tolist()
    a["ip_offsets"] = layout.ip_offsets.tolist()
    return a


def open_snapshots(path: str | Path, runs: str | list[str] | None = None, *, row_chunks: str = "run") -> xr.Dataset:
    """All complete runs of a store as one lazy :class:`xarray.Dataset`.

    Parameters
    ----------
    path : the store
    runs : names of the runs to include, or one name (default: every complete run; incomplete
        runs, e.g. an interrupted ingest, are never shown)
    row_chunks : "run" (default): one dask block per (run, subdomain); "subdomain": one block
        per subdomain covering every snapshot, read by ONE task (all the runs' arrays of that
        subdomain). Use "subdomain" for whole-snapshot-set reductions (POD Gram, TSQR): the
        per-subdomain work then runs where the block was read, without merging row chunks
        read on different workers (measured on 3 GB, 2 workers: merging the per-run chunks
        alone made one read pass 2x slower). Memory per task: the subdomain's whole history.

    Returns
    -------
    xarray.Dataset
        ``displacement`` (snapshot, dof) with coords ``run``, ``step``, ``time`` (snapshot) and
        ``node_id``, ``component``, ``subdomain`` (dof) in the store's dof order; integration-
        point fields (snapshot, ip, component_<field>) with coords ``ip_index``, ``element_id``,
        ``local_point``, ``ip_subdomain`` (ip), and other node fields (snapshot, node,
        component_<field>), for the fields that all the runs have (the others are listed with
        the reason in ``ds.attrs["omitted_fields"]``).

    Notes
    -----
    Builds the graph only: reads the mesh group (mesh-sized) and metadata, no snapshot data.
    One dask block per (run, subdomain): the chunks along ``dof`` are exactly the subdomains'
    dof counts (``ds.attrs["dof_offsets"]``), along ``snapshot`` the runs' step counts
    (``row_chunks="subdomain"``: one chunk of all the snapshots).
    The snapshot axis concatenates the runs' steps (runs have different step counts, so a
    padded (run, step) array would hold NaN holes); select a run with ``ds.sel(snapshot=ds.run == name)``.
    """
    if row_chunks not in ("run", "subdomain"):
        raise ValueError(f"row_chunks must be 'run' (one block per run and subdomain) or 'subdomain' "
                         f"(one block per subdomain); got {row_chunks!r}")
    path = Path(path)
    root, layout = _open(path)
    complete = _complete_runs(root)
    if isinstance(runs, str):  # one run's name, not its characters
        runs = [runs]
    if runs is not None:
        unknown = [r for r in runs if r not in complete]
        if unknown:
            raise ValueError(f"{path}: no complete run(s) {unknown}; complete runs: {sorted(complete)}")
        complete = {r: complete[r] for r in runs}
    if not complete:
        raise ValueError(f"{path}: the store has no complete run; ingest runs first (`romdask ingest`)")
    names = list(complete)
    n_sub = layout.n_subdomains
    # fields present, with the same spec, in all runs
    specs = [a["fields"] for a in complete.values()]
    all_fields = sorted({f for s in specs for f in s})
    kept, omitted = [], {}
    for f in all_fields:
        lacking = [n for n, s in zip(names, specs) if f not in s]
        if lacking:
            omitted[f] = f"missing in run(s) {lacking}"
        elif any(not _same_spec(f, s[f], specs[0][f]) for s in specs):
            omitted[f] = "location or components differ between runs: " + ", ".join(
                f"{n} {s[f]['location']} {list(s[f]['components'])}" for n, s in zip(names, specs))
        else:
            kept.append(f)
    n_steps = [int(a["n_steps"]) for a in complete.values()]
    coords = {
        "run": ("snapshot", np.repeat(np.array(names), n_steps)),
        "step": ("snapshot", np.concatenate([root[f"runs/{n}/step"][...] for n in names])),
        "time": ("snapshot", np.concatenate([root[f"runs/{n}/time"][...] for n in names])),
    }
    coords.update(_dof_coords(layout))
    data_vars = {}
    for f in kept:
        spec = specs[0][f]
        if row_chunks == "subdomain":
            x = _subdomain_field_array(root, path, names, f, n_sub)
        else:
            x = da.concatenate([_field_array(root, path, n, f, n_sub) for n in names], axis=0)
        _add_field(data_vars, coords, "snapshot", f, spec, x, layout)
    attrs = _store_attrs(root, layout)
    attrs["runs"] = names
    attrs["row_chunks"] = row_chunks
    attrs["omitted_fields"] = "; ".join(f"{k}: {v}" for k, v in omitted.items())
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _same_spec(name: str, a, b) -> bool:
    """Two runs' specs of field ``name`` are the same. The displacement's components are the
    dofs' x, y, z whatever a reader called them (``ux``: the readers; ``x``: romdask's writer),
    so only its location and size count."""
    if name == "displacement":
        return a["location"] == b["location"] and len(a["components"]) == len(b["components"])
    return a == b


def open_run(path: str | Path, run: str) -> xr.Dataset:
    """One complete run as a lazy :class:`xarray.Dataset` with dims (step, dof) for the
    displacement, (step, ip, component_<field>) for integration-point fields (coords as in
    :func:`open_snapshots`) and the run's attributes (solver, sources, metadata, ...)."""
    path = Path(path)
    root, layout = _open(path)
    complete = _complete_runs(root)
    if run not in complete:
        state = "incomplete (interrupted or failed ingest; ingest it again)" if run in root["runs"] else "absent"
        raise ValueError(f"{path}: run {run!r} is {state}; complete runs: {sorted(complete)}")
    attrs = complete[run]
    coords = {"step": ("step", root[f"runs/{run}/step"][...]), "time": ("step", root[f"runs/{run}/time"][...])}
    coords.update(_dof_coords(layout))
    data_vars = {}
    for f, spec in attrs["fields"].items():
        x = _field_array(root, path, run, f, layout.n_subdomains)
        _add_field(data_vars, coords, "step", f, spec, x, layout)
    out_attrs = {k: v for k, v in attrs.items() if k != "times"}
    out_attrs["store"] = _store_attrs(root, layout)
    return xr.Dataset(data_vars, coords=coords, attrs=out_attrs)
