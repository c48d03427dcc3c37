"""Nonintrusive dual quantities: strains from displacements and constitutive-law replay.

:func:`strains` gives ``eps = B u`` at every integration point, subdomain by subdomain, lazily.
:func:`replay` integrates a constitutive law along each run's strain history at every point,
one task per (run, subdomain), and writes the stress and internal state into the store when
the solver did not give them (Casenave et al., arXiv 1812.07228: "nonintrusive dual quantities").
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from romdask.fem.quadrature import quadrature, strain
from romdask.fem.temperature import temperature_operator
from romdask.store.layout import StoreLayout, subdomain_key
from romdask.store.writer import SnapshotStore
from romdask.threads import one_blas_thread

from .halo import (
    SubdomainHalo,
    check_subdomain_chunks,
    load_submesh,
    local_snapshots,
    resolve_layout,
    store_submeshes,
    subdomain_halos,
    submesh,
)
from .temperature import point_history, run_temperatures

__all__ = ["replay", "strains"]

log = logging.getLogger(__name__)


def _strain_rows(u_local, mesh):
    """Strains (n_rows, n_points_k, 6) of local displacements (n_rows, n_local_dofs); ``mesh``
    is the sub-mesh or a :class:`~romdask.offline.halo.StoreSubmesh` read here."""
    quad = quadrature(load_submesh(mesh))
    out = np.empty((u_local.shape[0], quad.n_points, 6))
    for i in range(u_local.shape[0]):
        strain(quad, u_local[i], out=out[i])
    return out


def _delayed_submeshes(layout: StoreLayout, halos: Sequence[SubdomainHalo]) -> list:
    token = tokenize(layout.mesh.nodes, [b.connectivity for b in layout.mesh.blocks], layout.element_subdomain)
    return [dask.delayed(submesh(layout, h), pure=True, name=f"romdask-submesh-{token}-{h.subdomain}")
            for h in halos]


def _submesh_args(layout: StoreLayout, halos: Sequence[SubdomainHalo], store: str | None) -> tuple[list, list]:
    """(task arguments, dependencies): store references (tiny literals, read inside the tasks)
    when the store path is known, else delayed sub-meshes embedded in the graph."""
    if store is not None:
        return list(store_submeshes(layout, store)), []
    meshes = _delayed_submeshes(layout, halos)
    return [m.key for m in meshes], meshes


def strains(U, layout) -> da.Array:
    """Small strains (engineering shear) at every integration point, lazily.

    Parameters
    ----------
    U : dask array (n_snap, n_dof) (or the store's ``displacement`` DataArray), one block per
        subdomain along dof
    layout : the store (path or SnapshotStore: the tasks read their sub-meshes from it, so the
        graph does not grow with the mesh) or its StoreLayout (sub-meshes embedded in the graph)

    Returns
    -------
    dask array (n_snap, n_points, 6)
        Points in the store's ip-field order (``layout.ip_points``: subdomain by subdomain),
        one block per (snapshot chunk, subdomain), like the store's ``stress`` field.

    Notes
    -----
    One task per (snapshot chunk, subdomain): the local (owned + halo) displacement
    (:func:`~romdask.offline.halo.local_snapshots`) and the subdomain's sub-mesh (a delayed
    object, mesh-sized / K, in the graph once); the task builds the sub-mesh quadrature and runs
    :func:`romdask.fem.quadrature.strain` snapshot by snapshot. Memory per task: the local block,
    the quadrature (``n_el_k n_ip n_en 3`` doubles) and the strains (``48 n_rows n_points_k``
    bytes).
    """
    U = U if isinstance(U, da.Array) else getattr(U, "data", U)
    layout, store = resolve_layout(layout)
    check_subdomain_chunks(U, layout.dof_offsets)
    halos = subdomain_halos(layout)
    L = local_snapshots(U, halos)
    meshes, deps = _submesh_args(layout, halos, store)
    name = "romdask-strain-" + tokenize(L, meshes)
    dsk = {}
    for i in range(L.numblocks[0]):
        for k in range(len(halos)):
            dsk[(name, i, k, 0)] = (_strain_rows, (L.name, i, k), meshes[k])
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[L, *deps])
    n_pts = tuple(int(b - a) for a, b in zip(layout.ip_offsets[:-1], layout.ip_offsets[1:]))
    return da.Array(graph, name, chunks=(U.chunks[0], n_pts, (6,)), dtype=np.float64)


# ---- replay ---------------------------------------------------------------------------------


def _read_local(store_path: str, run: str, sources) -> np.ndarray:
    """The run's local displacement history (n_steps, n_local_dofs), read from the store."""
    root = zarr.open_group(store_path, mode="r")
    parts = []
    for l, positions in sources:
        arr = root[f"runs/{run}/displacement/{subdomain_key(l)}"]
        parts.append(arr[...] if positions is None else arr.get_orthogonal_selection((slice(None), positions)))
    return np.concatenate(parts, axis=1)


def integrate_history(law, strain_history: np.ndarray, times: np.ndarray,
                      temperature: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Integrate ``law`` along a strain history at many points.

    Parameters
    ----------
    law : a romdask material (``initial_state``, ``integrate``)
    strain_history : (n_steps, n_points, 6) total strains at ``times``
    times : (n_steps,) output times
    temperature : None (athermal: 0) or ``(initial (n_points,), history (n_steps, n_points))``:
        increment n gets ``[initial, T_{n-1}, T_n]`` (step 0: ``[initial, initial, T_0]``, as
        the solvers' initial equilibrium)

    Returns
    -------
    stress (n_steps, n_points, 6), state (n_steps, n_points, n_state), n_failed (total)

    Notes
    -----
    One increment per output interval, from ``law.initial_state``; step 0 is integrated with
    ``dt = 0`` from the initial state (as the solver's initial equilibrium). This reproduces the
    solver's stress and state exactly when the solver did not cut or split its increments; with
    sub-increments the replay differs by the law's time-discretization error.
    """
    n_steps, n_pts, _ = strain_history.shape
    stress = np.empty((n_steps, n_pts, 6))
    state = np.empty((n_steps, n_pts, law.n_state))
    tangent = np.empty((n_pts, 6, 6))
    old = law.initial_state(n_pts)
    T = np.zeros((n_pts, 3))
    n_failed = 0
    for n in range(n_steps):
        dt = float(times[n] - times[n - 1]) if n else 0.0
        if temperature is not None:
            T[:, 0] = temperature[0]
            T[:, 1] = temperature[1][n - 1] if n else temperature[0]
            T[:, 2] = temperature[1][n]
        _, _, _, failed = law.integrate(strain_history[n], old, dt, float(times[n]), temperature=T,
                                        out=(stress[n], tangent, state[n]))
        n_failed += failed
        old = state[n]
    return stress, state, n_failed


@one_blas_thread
def _replay_task(store_path: str, run: str, sources, mesh, law, times, local_temperature=None):
    u = _read_local(store_path, run, sources)
    eps = _strain_rows(u, mesh)
    temperature = None
    if local_temperature is not None:
        operator = temperature_operator(load_submesh(mesh))
        temperature = point_history(operator, local_temperature, store_path, run, np.asarray(times))
    return integrate_history(law, eps, np.asarray(times), temperature)


def _replay_write_task(store_path: str, run: str, k: int, sources, mesh, law, times, names,
                       local_temperature=None) -> int:
    from romdask.store.dual import write_ip_block

    stress, state, n_failed = _replay_task(store_path, run, sources, mesh, law, times, local_temperature)
    write_ip_block(store_path, run, names[0], k, stress)
    write_ip_block(store_path, run, names[1], k, state)
    return n_failed


def replay(
    store_path: str | Path,
    law,
    *,
    runs: Sequence[str] | None = None,
    write: bool = True,
    fields: tuple[str, str] = ("stress", "state"),
):
    """Replay a constitutive law along the strain history of each run, per subdomain.

    Parameters
    ----------
    store_path : the snapshot store
    law : a romdask material (one law for every element)
    runs : run names (default: every complete run)
    write : True: compute on the active scheduler and write the fields into each run that
        lacks them; False: return lazy arrays without computing or writing
    fields : names of the stress and state fields

    Returns
    -------
    dict
        ``write=True``: run name -> "written", "skipped" (the run already has both fields) or
        "failed: n points" (the law failed at some points: nothing made visible).
        ``write=False``: run name -> {"stress": dask array (n_steps, n_points, 6),
        "state": dask array (n_steps, n_points, n_state)}, points in the store's ip-field order,
        one block per subdomain (lazy: nothing is read).

    Notes
    -----
    One task per (run, subdomain): reads the run's displacement of the subdomain and its halo
    columns straight from the store, computes the strains on the sub-mesh and integrates the
    law step by step (:func:`integrate_history`), at the run's point temperatures when the runs
    are thermal (:mod:`~romdask.offline.temperature`: the store's temperature field or the
    description's patterns, mapped by the sub-mesh's temperature operator; a description's
    patterns on the subdomain's nodes travel with its task, ``8 n_patterns n_local_nodes``
    bytes). Tasks carry the store path, small halo index
    arrays and a reference to each subdomain's sub-mesh (read from the store inside the task,
    cached per worker process), never snapshot data or mesh arrays. Memory per task:
    the run's local displacement history plus stress, strain and state histories of the
    subdomain's points. Writing uses :mod:`romdask.store.dual`: arrays created by the driver,
    filled by the tasks, and the fields made visible last (in the run's ``fields`` attribute),
    so an interrupted replay leaves no half-written field visible. The state field's components
    are named ``c0, c1, ...`` as the store's writer names a solver's state.
    """
    store_path = str(Path(store_path))
    store = SnapshotStore.open(store_path, mode="r" if not write else "r+")
    layout = store.layout
    all_runs = store.runs(complete_only=True)
    names = sorted(all_runs) if runs is None else [runs] if isinstance(runs, str) else list(runs)
    missing = [r for r in names if r not in all_runs]
    if missing:
        raise ValueError(f"{store_path}: no complete run(s) {missing}; complete runs: {sorted(all_runs)}")
    halos = subdomain_halos(layout)
    meshes = store_submeshes(layout, str(Path(store_path).resolve()))  # read inside the tasks
    thermal = run_temperatures(store, names)

    def local(run: str, h):
        return None if thermal is None else thermal[run].local(h.nodes, h.sources)

    law_d = dask.delayed(law, pure=True, name="romdask-law-" + tokenize(type(law).__name__, law.params))
    n_pts = tuple(int(b - a) for a, b in zip(layout.ip_offsets[:-1], layout.ip_offsets[1:]))
    if not write:
        out = {}
        for run in names:
            times = np.asarray(all_runs[run]["times"], np.float64)
            name = "romdask-replay-" + tokenize(store_path, run, law_d.key, meshes)
            dsk = {}
            for k, h in enumerate(halos):
                dsk[(name, k)] = (_replay_task, store_path, run, list(h.sources), meshes[k], law_d.key, times,
                                  local(run, h))
                dsk[(name + "-stress", 0, k, 0)] = (operator.getitem, (name, k), 0)
                dsk[(name + "-state", 0, k, 0)] = (operator.getitem, (name, k), 1)
            steps = (len(times),)
            # one layer per output, named like it (dask looks layers up by the array's name)
            out[run] = {
                field: da.Array(HighLevelGraph.from_collections(f"{name}-{field}", dsk, dependencies=[law_d]),
                                f"{name}-{field}", chunks=(steps, n_pts, (width,)), dtype=np.float64)
                for field, width in (("stress", 6), ("state", law.n_state))
            }
        return out

    from romdask.store.dual import commit_ip_fields, create_ip_field

    status: dict[str, str] = {}
    tasks = {}
    for run in names:
        have = all_runs[run].get("fields", {})
        if all(f in have for f in fields):
            status[run] = "skipped"
            continue
        if any(f in have for f in fields):
            raise ValueError(f"run {run!r} has {[f for f in fields if f in have]} but not all of {list(fields)}; "
                             "pass other field names")
        create_ip_field(store, run, fields[0], 6)
        create_ip_field(store, run, fields[1], law.n_state)
        times = np.asarray(all_runs[run]["times"], np.float64)
        tasks[run] = [
            dask.delayed(_replay_write_task, pure=False)(store_path, run, k, list(h.sources), meshes[k], law_d,
                                                         times, tuple(fields), local(run, h),
                                                         dask_key_name=f"romdask-replay-write-{run}-{k}-{tokenize(store_path)}")
            for k, h in enumerate(halos)
        ]
    results = dask.compute(tasks)[0] if tasks else {}
    for run, failed in results.items():
        n_failed = int(sum(failed))
        if n_failed:
            log.warning("%s: the law failed at %d point-increments of run %s; fields not committed", store_path, n_failed, run)
            status[run] = f"failed: {n_failed} points"
            continue
        commit_ip_fields(store, run, {fields[0]: ("xx", "yy", "zz", "xy", "xz", "yz"),
                                      fields[1]: tuple(f"c{i}" for i in range(law.n_state))})
        status[run] = "written"
    return {r: status[r] for r in names}
