"""Adding integration-point fields (e.g. replayed stress / state) to COMPLETE runs of a store.

A small addition for :func:`romdask.offline.replay`: the run writer only writes new runs.
Protocol: :func:`create_ip_field` (driver: creates one array per subdomain, metadata only),
:func:`write_ip_block` (one task per subdomain writes its own array, in parallel), then
:func:`commit_ip_fields` (driver, last: adds the fields to the run's ``fields`` attribute, which
is what makes them visible to ``open_snapshots`` / ``open_run``). A field whose writing was
interrupted is therefore invisible, and is recreated by the next call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import zarr

from romdask.io.run import FieldSpec

from romdask.serialize import compressors

from .layout import subdomain_key
from .writer import SnapshotStore

__all__ = ["commit_ip_fields", "create_ip_field", "write_ip_block"]


def _run_group(store: SnapshotStore, run: str) -> zarr.Group:
    attrs = store.runs().get(run)
    if attrs is None or attrs.get("status") != "complete":
        raise ValueError(f"{store.path}: no complete run {run!r}; fields are only added to complete runs")
    return store.root[f"runs/{run}"]


def create_ip_field(store: SnapshotStore, run: str, name: str, n_components: int) -> None:
    """Create (or recreate) the arrays ``runs/<run>/<name>/sXXXX`` (n_steps, n_points_k, n_comp),
    filled with NaN, chunked like the run's other fields; the field stays invisible until
    :func:`commit_ip_fields`."""
    if name == "displacement":
        raise ValueError("the displacement field cannot be replaced")
    group = _run_group(store, run)
    attrs = dict(group.attrs)
    if name in attrs.get("fields", {}):
        raise ValueError(f"run {run!r} already has a field {name!r}")
    lay = store.layout
    n_steps = int(attrs["n_steps"])
    step_chunk = int(attrs.get("step_chunk", store.step_chunk))
    fg = group.create_group(name, overwrite=True)
    for k in range(lay.n_subdomains):
        n_k = int(lay.ip_offsets[k + 1] - lay.ip_offsets[k])
        fg.create_array(subdomain_key(k), shape=(n_steps, n_k, int(n_components)),
                        chunks=(step_chunk, max(n_k, 1), max(int(n_components), 1)), dtype="f8",
                        compressors=compressors(store.compression), fill_value=np.nan)


def write_ip_block(store_path: str | Path, run: str, name: str, k: int, data: np.ndarray) -> None:
    """Write subdomain ``k``'s values (n_steps, n_points_k, n_comp), in store point order
    (``layout.points_of(k)``), into an array made by :func:`create_ip_field`."""
    arr = zarr.open_array(str(Path(store_path) / "runs" / run / name / subdomain_key(k)), mode="r+")
    data = np.asarray(data, np.float64)
    if data.shape != arr.shape:
        raise ValueError(f"run {run!r} field {name!r} subdomain {k}: shape {data.shape}, expected {arr.shape}")
    arr[...] = data


def commit_ip_fields(store: SnapshotStore, run: str, fields: Mapping[str, Sequence[str] | FieldSpec]) -> None:
    """Make the fields visible (their components, e.g. ``("c0", "c1", ...)``): the last write."""
    group = _run_group(store, run)
    current = dict(group.attrs.get("fields", {}))
    for name, comps in fields.items():
        spec = comps if isinstance(comps, FieldSpec) else FieldSpec("ip", tuple(comps))
        current[name] = {"location": spec.location, "components": list(spec.components)}
    group.attrs["fields"] = current
