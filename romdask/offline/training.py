"""The first stages of a reduction: the training data (runs, law, load patterns, snapshots) and
the lifting of the prescribed displacements.

:func:`training_data` reads what a reduction needs from a snapshot store (metadata only, unless
the stresses must be replayed); :func:`lift` builds the lifted displacement snapshots lazily.
Both are shared by :func:`romdask.offline.reduce`, a dictionary of local ROMs (one
``training_data(store, runs=cluster)`` per cluster of runs) and the enrichment loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from romdask.materials import Material, law_from_json
from romdask.online.scenario import Scenario
from romdask.problem.loads import Dirichlet, NodalForce, Pressure
from romdask.problem.patterns import loads_from_description, pattern_signatures
from romdask.store import SnapshotStore, StoreLayout, open_snapshots

from .replay import replay
from .temperature import RunTemperature, run_temperatures

__all__ = ["Lifting", "TrainingData", "lift", "training_data", "training_law"]

logger = logging.getLogger(__name__)

Patterns = tuple[tuple[Dirichlet, ...], tuple[NodalForce | Pressure, ...]]


def _complete_runs(store: SnapshotStore, runs: Sequence[str] | None) -> tuple[dict[str, dict], list[str]]:
    """(attributes of every complete run, the chosen names), checked."""
    all_runs = store.runs(complete_only=True)
    if not all_runs:
        raise ValueError(f"{store.path}: the store holds no complete run; ingest runs first (`romdask ingest`)")
    names = sorted(all_runs) if runs is None else [runs] if isinstance(runs, str) else [str(r) for r in runs]
    missing = [r for r in names if r not in all_runs]
    if missing or not names:
        raise ValueError(f"{store.path}: no complete run(s) {missing or names}; complete runs: {sorted(all_runs)}")
    if len(set(names)) != len(names):
        raise ValueError(f"runs must be distinct; got {names}")
    return all_runs, names


def training_law(store: str | Path | SnapshotStore, runs: Sequence[str] | None = None) -> Material:
    """The constitutive law the training runs were computed with, from their ``metadata["material"]``.

    Parameters
    ----------
    store : the snapshot store (path or SnapshotStore)
    runs : the training runs (default: every complete run)

    Returns
    -------
    Material
        :func:`romdask.materials.law_from_json` of the runs' common entry (written by
        :func:`romdask.problem.patterns.run_metadata`).

    Raises
    ------
    ValueError
        A run carries no ``metadata["material"]`` (pass the law explicitly), or the runs were
        computed with different laws (reduce them separately).
    """
    if not isinstance(store, SnapshotStore):
        store = SnapshotStore.open(store, mode="r")
    all_runs, names = _complete_runs(store, runs)
    entries = {name: (all_runs[name].get("metadata") or {}).get("material") for name in names}
    missing = sorted(n for n, e in entries.items() if e is None)
    blocked = [(n, all_runs[n]["metadata"]["problem_error"]) for n in missing
               if (all_runs[n].get("metadata") or {}).get("problem_error")]
    if blocked:  # a user's deck with cards romdask cannot model: say which
        name, reason = blocked[0]
        raise ValueError(f"run {name!r} carries no law nor load patterns: romdask could not read its CalculiX "
                         f"deck when it was ingested: {reason}")
    if missing:
        raise ValueError(
            f"runs {missing} carry no metadata['material']: give the law (`romdask reduce --law law.yaml`, "
            "romdask template law; reduce(store, law)), or ingest the runs with --law, or write them with "
            "metadata=romdask.problem.patterns.run_metadata(problem)."
        )
    distinct: dict[str, list[str]] = {}
    for name, entry in entries.items():
        distinct.setdefault(json.dumps(entry, sort_keys=True), []).append(name)
    if len(distinct) > 1:
        listing = "; ".join(f"{runs_} -> {law}" for law, runs_ in distinct.items())
        raise ValueError(f"the training runs were computed with different laws ({listing}); one reduced model "
                         "has one law: reduce the runs of each law separately (runs=...) or give the law.")
    return law_from_json(entries[names[0]])


def _patterns(layout: StoreLayout, names: Sequence[str], all_runs: Mapping[str, dict]) -> dict[str, Patterns]:
    """Run name -> (dirichlet, loads) on the store mesh; all runs must share the patterns."""
    out: dict[str, Patterns] = {}
    reference = None
    for name in names:
        metadata = all_runs[name].get("metadata") or {}
        description = metadata.get("loads")
        if description is None and metadata.get("problem_error"):
            raise ValueError(
                f"run {name!r} has no load description: romdask could not read its CalculiX deck as a "
                f"problem when it was ingested: {metadata['problem_error']}"
            )
        if description is None:
            raise ValueError(
                f"run {name!r} has no load description: ingest it with --loads loads.yaml (romdask template "
                "loads), or write runs with metadata=romdask.problem.run_metadata(problem)."
            )
        dirichlet, loads = loads_from_description(layout.mesh, description)
        patterns = pattern_signatures(layout.mesh, dirichlet, loads)
        if reference is None:
            reference = (name, patterns)
        elif patterns != reference[1]:
            raise ValueError(
                f"run {name!r} has other load patterns (names, kinds or dofs) than run "
                f"{reference[0]!r}; one reduced model needs the same patterns in every training run "
                "(only values and amplitude tables may differ). Reduce the runs separately."
            )
        out[name] = (dirichlet, loads)
    return out


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What a reduction reads from a snapshot store (output of :func:`training_data`).

    Attributes
    ----------
    store_path : the store
    layout : its mesh and subdomain layout (store order)
    runs : the training runs, in snapshot order
    patterns : run name -> (Dirichlet conditions, loads) on the store mesh; the same patterns
        (names, kinds, nodes or faces) in every run, with each run's values and amplitudes
    lifted : indices of the Dirichlet patterns with a nonzero value in some run (they get a
        lifting)
    snapshots : the lazy dataset ``open_snapshots(store_path, runs, row_chunks="subdomain")``
        (displacement, stress and whatever else every run holds: state, p)
    law : the constitutive law of every integration point
    stress_replayed : True when the stresses were missing and the law was replayed (and written)
    temperatures : None (athermal runs) or run name -> its temperatures
        (:func:`~romdask.offline.temperature.run_temperatures`); every run is thermal or none is
    """

    store_path: str
    layout: StoreLayout
    runs: tuple[str, ...]
    patterns: Mapping[str, Patterns]
    lifted: tuple[int, ...]
    snapshots: xr.Dataset
    law: Material
    stress_replayed: bool
    temperatures: Mapping[str, RunTemperature] | None = None

    @property
    def thermal(self) -> bool:
        return self.temperatures is not None

    def initial_temperature(self) -> np.ndarray | None:
        """(n_nodes,) the runs' common initial temperature (store order), None if they differ
        or the runs are athermal."""
        if self.temperatures is None:
            return None
        first = self.temperatures[self.runs[0]].initial
        same = all(np.array_equal(t.initial, first) for t in self.temperatures.values())
        return first if same else None

    @property
    def dirichlet(self) -> tuple[Dirichlet, ...]:
        """The Dirichlet patterns (first run's values)."""
        return self.patterns[self.runs[0]][0]

    @property
    def loads(self) -> tuple[NodalForce | Pressure, ...]:
        """The force / pressure patterns (first run's values)."""
        return self.patterns[self.runs[0]][1]

    @property
    def lifting_names(self) -> tuple[str, ...]:
        return tuple(self.dirichlet[i].name for i in self.lifted)

    @property
    def snapshot_run(self) -> np.ndarray:
        """(n_snap,) run name of each snapshot."""
        return np.asarray(self.snapshots.run.values).astype(str)

    @property
    def snapshot_time(self) -> np.ndarray:
        """(n_snap,) time of each snapshot."""
        return np.asarray(self.snapshots.time.values, np.float64)

    def training_loads(self) -> dict[str, Any]:
        """Run -> pattern -> ``{"value", "amplitude"}`` (JSON), the coefficients of each run."""
        return {
            r: {bc.name: {
                "value": float(bc.value),
                "amplitude": None if bc.amplitude is None else
                {"times": bc.amplitude.times.tolist(), "values": bc.amplitude.values.tolist()}}
                for bc in (*self.patterns[r][0], *self.patterns[r][1])}
            for r in self.runs
        }


def training_data(store_path: str | Path, law: Material | None = None, *,
                  runs: Sequence[str] | None = None) -> TrainingData:
    """Open the training runs of a store: law, load patterns, lazy snapshots.

    Parameters
    ----------
    store_path : the snapshot store; every training run carries
        ``metadata={"loads": describe_loads(problem)}`` (and ``"material"`` when ``law`` is None:
        :func:`romdask.problem.patterns.run_metadata` writes both)
    law : the constitutive law of every integration point; None: :func:`training_law`
    runs : training run names (default: every complete run)

    Returns
    -------
    TrainingData

    Raises
    ------
    ValueError
        Unknown or incomplete runs, a run without load description, runs with different
        patterns or laws, thermal and athermal runs mixed, or a failed law replay.

    Notes
    -----
    Reads metadata and the mesh only (and, for thermal runs whose description gives no initial
    temperature, their temperature field at step 0), except when some run lacks the stresses:
    then the law is replayed along every run's strain history (at its temperatures) and the
    stress and state are written into the store (:func:`~romdask.offline.replay`, one task per
    (run, subdomain), computed here).
    """
    store_path = str(Path(store_path))
    store = SnapshotStore.open(store_path, mode="r")
    all_runs, names = _complete_runs(store, runs)
    if law is None:
        law = training_law(store, names)
    layout = store.layout
    patterns = _patterns(layout, names, all_runs)
    temperatures = run_temperatures(store, names)  # checks: all thermal or none
    ds = open_snapshots(store_path, runs=names, row_chunks="subdomain")
    if "displacement" not in ds:
        raise ValueError(f"{store_path}: runs {names} have no common displacement field ("
                         f"{ds.attrs['omitted_fields']}); reduce runs of one kind, e.g. --train")
    replayed = "stress" not in ds
    if replayed:
        logger.info("store has no stress in every run: replaying %s", type(law).__name__)
        status = replay(store_path, law, runs=names)
        failed = {r: s for r, s in status.items() if s.startswith("failed")}
        if failed:
            raise ValueError(f"the law replay failed in runs {failed}; check the law and the runs' increments")
        ds = open_snapshots(store_path, runs=names, row_chunks="subdomain")
    dirichlet_per_run = [patterns[r][0] for r in names]
    lifted = tuple(i for i in range(len(dirichlet_per_run[0]))
                   if any(d[i].value != 0.0 for d in dirichlet_per_run))
    return TrainingData(store_path, layout, tuple(names), patterns, lifted, ds, law, replayed, temperatures)


# ---- lifting ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Lifting:
    """Unit liftings of the prescribed displacements and the lifted snapshots (:func:`lift`).

    Attributes
    ----------
    names : (n_l,) the lifted Dirichlet patterns
    vectors : (n_l, n_dofs) unit lifting vectors ``g_i`` (1 on pattern i's dofs), store dof order
    coefficients : (n_snap, n_l) ``value * amplitude(t)`` of each snapshot's run
    displacement : LAZY (n_snap, n_dofs) ``U - coefficients @ vectors`` (``U`` itself without
        lifting), chunked like the store's displacement
    """

    names: tuple[str, ...]
    vectors: np.ndarray
    coefficients: np.ndarray
    displacement: da.Array

    @property
    def n_liftings(self) -> int:
        return len(self.names)

    def lazy_vectors(self) -> da.Array:
        """``vectors`` as a dask array chunked like the snapshots along the dofs."""
        return da.from_array(self.vectors, chunks=((self.n_liftings,), self.displacement.chunks[1]))


def _coefficient(pattern: Dirichlet, t: np.ndarray) -> np.ndarray:
    """``value * amplitude(t)``: the factor of the unit pattern at times ``t``."""
    amp = np.ones_like(t) if pattern.amplitude is None else np.asarray(pattern.amplitude(t), np.float64)
    return float(pattern.value) * amp


def _lifting_vectors(dirichlet: Sequence[Dirichlet], lifted: Sequence[int], n_dofs: int) -> np.ndarray:
    G = np.zeros((len(lifted), n_dofs))
    for row, i in enumerate(lifted):
        G[row, dirichlet[i].dofs] = 1.0
    overlap = np.flatnonzero(G.sum(axis=0) > 1)
    if overlap.size:
        raise ValueError(
            f"prescribed-displacement patterns overlap on dofs {overlap[:10].tolist()}; the lifting "
            "needs each constrained dof in at most one nonzero pattern. Merge or split the conditions."
        )
    return G


def lift(data: TrainingData) -> Lifting:
    """The simple discontinuous lifting of the nonzero Dirichlet patterns, lazily.

    Parameters
    ----------
    data : TrainingData

    Returns
    -------
    Lifting
        ``g_i`` = 1 on the dofs of lifted pattern ``i``, 0 elsewhere; the lifted snapshots
        ``u(t) - sum_i a_i(t) g_i`` vanish on every constrained dof, so their POD modes do.

    Raises
    ------
    ValueError
        Two lifted patterns share a dof.

    Notes
    -----
    Nothing is computed: the lifted snapshots are one blockwise product per (snapshot block,
    subdomain). Memory: the vectors and coefficients, ``8 n_l (n_dofs + n_snap)`` bytes.
    """
    U = data.snapshots.displacement.data
    n_dofs = 3 * data.layout.mesh.n_nodes
    G = _lifting_vectors(data.dirichlet, data.lifted, n_dofs)
    A = np.zeros((U.shape[0], len(data.lifted)))
    snap_run, snap_time = data.snapshot_run, data.snapshot_time
    for r in data.runs:
        rows = snap_run == r
        for col, i in enumerate(data.lifted):
            A[rows, col] = _coefficient(data.patterns[r][0][i], snap_time[rows])
    lifting = Lifting(data.lifting_names, G, A, U)
    if not data.lifted:
        return lifting
    lazy_A = da.from_array(A, chunks=(U.chunks[0], (len(data.lifted),)))
    return Lifting(data.lifting_names, G, A, U - da.matmul(lazy_A, lifting.lazy_vectors()))


def training_scenarios(data: TrainingData) -> dict[str, Scenario]:
    """Each training run's :class:`~romdask.online.Scenario` (its output times and load
    description): the inputs a dictionary's selector is trained on."""
    attrs = SnapshotStore.open(data.store_path, mode="r").runs(complete_only=True)
    return {run: Scenario.from_description(np.unique(data.snapshot_time[data.snapshot_run == run]),
                                           attrs[run]["metadata"]["loads"])
            for run in data.runs}
