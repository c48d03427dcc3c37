"""The temperatures of the training runs: where they come from and how a task reads them.

Temperature is an input of the laws, not a snapshot to reduce. A run is thermal when the store
holds its ``"temperature"`` node field (written by the built-in solver, or CalculiX's NT read
from the .frd) or its load description has a ``"temperature"`` entry. The nodal history comes
from the field when present, else from the description's patterns x amplitudes.

The INITIAL temperature (the reference of the thermal strains, CalculiX's ``*INITIAL
CONDITIONS,TYPE=TEMPERATURE``) may differ from the temperature at t = 0 (a ``*TEMPERATURE`` with
``amplitude(0) * value``): it is taken from the description when it has one, else from the
field at step 0 (exact only when the run starts at its initial temperature; logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from romdask.store import SnapshotStore
from romdask.store.layout import StoreLayout, subdomain_key

__all__ = ["LocalTemperature", "RunTemperature", "description_temperature", "point_history", "run_temperatures"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RunTemperature:
    """The nodal temperatures of one training run, store node order.

    Attributes
    ----------
    source : "field" (the store's ``temperature`` node field) or "description"
    initial : (n_nodes,) the initial temperature
    initial_source : "description" or "field at step 0"
    base, patterns, amplitudes : description source: ``T(t) = base + sum_p a_p(t) patterns[p]``
        (``patterns (n_p, n_nodes)``, amplitudes callables or None = 1); None for a field
    """

    source: str
    initial: np.ndarray
    initial_source: str
    base: np.ndarray | None = None
    patterns: np.ndarray | None = None
    amplitudes: tuple[Any, ...] = ()

    def local(self, nodes: np.ndarray | None, sources: Sequence[tuple[int, np.ndarray | None]] = ()) -> LocalTemperature:
        """What a task needs for the nodes ``nodes`` (store indices; None: every node):
        the node positions to read per subdomain (``sources``, a halo's dof sources)."""
        pick = slice(None) if nodes is None else np.asarray(nodes, np.int64)
        if self.source == "field":
            node_sources = tuple((l, None if pos is None else np.asarray(pos[::3]) // 3) for l, pos in sources)
            return LocalTemperature(self.initial[pick], node_sources)
        return LocalTemperature(self.initial[pick], (), self.base[pick], self.patterns[:, pick], self.amplitudes)


@dataclass(frozen=True, eq=False)
class LocalTemperature:
    """A run's temperatures on a set of nodes, small enough to travel with a task."""

    initial: np.ndarray
    node_sources: tuple[tuple[int, np.ndarray | None], ...] = ()
    base: np.ndarray | None = None
    patterns: np.ndarray | None = None
    amplitudes: tuple[Any, ...] = ()

    def history(self, store_path: str | None, run: str | None, times: np.ndarray) -> np.ndarray:
        """(n_steps, n_local_nodes) nodal temperature at the run's output ``times`` (the store
        and run are read for a field source only)."""
        if self.patterns is None:
            root = zarr.open_group(store_path, mode="r")
            parts = []
            for l, positions in self.node_sources:
                arr = root[f"runs/{run}/temperature/{subdomain_key(l)}"]
                parts.append(arr[:, :, 0] if positions is None else
                             arr.get_orthogonal_selection((slice(None), positions, 0)))
            return np.concatenate(parts, axis=1)
        coefficients = np.array([[1.0 if a is None else float(a(t)) for a in self.amplitudes] for t in times])
        return self.base[None, :] + coefficients.reshape(len(times), -1) @ self.patterns


def point_history(operator, local: LocalTemperature, store_path: str, run: str,
                  times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(initial (n_points,), history (n_steps, n_points))`` at the points of ``operator``
    (sparse (n_points, n_local_nodes), :func:`romdask.fem.temperature.temperature_operator`)."""
    history = local.history(store_path, run, times)
    return operator @ local.initial, (operator @ history.T).T


def _field_initial(root: zarr.Group, run: str, layout: StoreLayout) -> np.ndarray:
    return np.concatenate([root[f"runs/{run}/temperature/{subdomain_key(k)}"][0, :, 0]
                           for k in range(layout.n_subdomains)])


def description_temperature(mesh, description: Mapping[str, Any]) -> RunTemperature | None:
    """The temperatures of a load description (version 2) on ``mesh``, None if it has none.

    Returns
    -------
    RunTemperature
        source "description": ``T(t) = base + sum_p a_p(t) patterns[p]`` with ``base`` the
        initial temperature on the nodes no pattern covers (CalculiX's rule, as
        :meth:`romdask.problem.Problem.nodal_temperature`); ``.local(None).history(None, None,
        times)`` gives the nodal history.
    """
    from romdask.problem.thermal import temperatures_from_description

    initial, patterns = temperatures_from_description(mesh, description)
    if initial is None:
        return None
    initial = np.array(np.broadcast_to(np.asarray(initial, np.float64), (mesh.n_nodes,)))
    values = np.zeros((len(patterns), mesh.n_nodes))
    covered = np.zeros(mesh.n_nodes, bool)
    for row, pattern in zip(values, patterns):
        row[pattern.nodes] = pattern.values
        covered[pattern.nodes] = True
    return RunTemperature("description", initial, "description", np.where(covered, 0.0, initial), values,
                          tuple(p.amplitude for p in patterns))


def run_temperatures(store: SnapshotStore, runs: Sequence[str]) -> dict[str, RunTemperature] | None:
    """The temperatures of ``runs`` (None when no run is thermal).

    Raises
    ------
    ValueError
        Thermal and athermal runs mixed (one reduced model is thermal or not).

    Notes
    -----
    Reads the runs' metadata and, for a field without a described initial temperature, the
    field at step 0 (``8 n_nodes`` bytes per run).
    """
    all_runs = store.runs(complete_only=False)
    layout = store.layout
    described = {r: ((all_runs[r].get("metadata") or {}).get("loads") or {}).get("temperature") for r in runs}
    fields = {r: "temperature" in all_runs[r].get("fields", {}) for r in runs}
    thermal = {r for r in runs if fields[r] or described[r] is not None}
    if not thermal:
        return None
    if len(thermal) != len(runs):
        raise ValueError(f"runs {sorted(thermal)} have temperatures and runs {sorted(set(runs) - thermal)} have none; "
                         "one reduced model is thermal or athermal: reduce them separately (runs=...)")
    root = zarr.open_group(store.path, mode="r")
    out = {}
    for r in runs:
        from_description = (description_temperature(layout.mesh, all_runs[r]["metadata"]["loads"])
                            if described[r] is not None else None)
        if not fields[r]:
            out[r] = from_description
        elif from_description is not None:
            out[r] = RunTemperature("field", from_description.initial, "description")
        else:
            logger.info("run %s: initial temperature taken from its temperature field at step 0", r)
            out[r] = RunTemperature("field", _field_initial(root, r, layout), "field at step 0")
    return out
