"""Temperatures at the reduced points: the model's temperature operator and its use online.

A thermal reduced model keeps, for each reduced point ``k``, the row of the temperature operator
(:func:`romdask.fem.temperature.temperature_operator`, CalculiX's rule) as the SOLVER node ids
of the point's element and their weights: ``T_k = sum_j weights[k, j] T[nodes[k, j]]``. Any
nodal temperature field given by solver node ids (a new deck in any node order, fields of a
heat-transfer run) thus maps to the reduced points; the mesh fingerprint of the model's
signature guarantees that the ids name the same nodes.

Temperature is an input, not a snapshot to reduce: a scenario may change the temperature
shapes, not only their amplitudes (:class:`romdask.online.scenario.ScenarioTemperature`).

Imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PointTemperature", "check_temperature_operator", "operator_rows", "operator_values"]

#: the keys of a model's ``temperature`` mapping ("initial" optional)
TEMPERATURE_KEYS = ("nodes", "weights", "initial")


def check_temperature_operator(temperature: Any, n_rows: int, where: str = "temperature") -> dict[str, np.ndarray] | None:
    """Validate a temperature operator ``{"nodes", "weights"[, "initial"]}`` of ``n_rows`` rows.

    Returns
    -------
    None (athermal) or a dict of read-only arrays: ``nodes`` (n_rows, n_en) int64 solver node
    ids, -1 padding; ``weights`` (n_rows, n_en) float64, 0 on padding, each row summing to 1;
    ``initial`` (n_rows,) float64 when given.

    Raises
    ------
    ValueError
        Unknown or missing keys, shapes that disagree, padding with a nonzero weight, rows not
        summing to 1, non-finite values.
    """
    if temperature is None:
        return None
    if not isinstance(temperature, Mapping) or not {"nodes", "weights"} <= set(temperature) <= set(TEMPERATURE_KEYS):
        keys = sorted(temperature) if isinstance(temperature, Mapping) else type(temperature).__name__
        raise ValueError(f"{where} must be None or a mapping with 'nodes', 'weights' and optionally 'initial'; "
                         f"got {keys}.")
    nodes = np.array(temperature["nodes"], copy=True)
    if nodes.ndim != 2 or nodes.dtype.kind not in "iu" or nodes.shape[0] != n_rows:
        raise ValueError(f"{where}['nodes'] must be an integer array ({n_rows}, n_en); got {nodes.dtype} {nodes.shape}.")
    nodes = nodes.astype(np.int64)
    weights = np.array(temperature["weights"], np.float64, copy=True)
    if weights.shape != nodes.shape or not np.all(np.isfinite(weights)):
        raise ValueError(f"{where}['weights'] must be finite with the shape of 'nodes' {nodes.shape}; got {weights.shape}.")
    if np.any(nodes < -1) or np.any(weights[nodes == -1] != 0.0):
        raise ValueError(f"{where}: node ids must be >= 0, or -1 (padding) with weight 0.")
    if n_rows and not np.allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-12):
        raise ValueError(f"{where}: the weights of every row must sum to 1 (a temperature operator interpolates).")
    out = {"nodes": nodes, "weights": weights}
    if temperature.get("initial") is not None:
        initial = np.array(temperature["initial"], np.float64, copy=True)
        if initial.shape != (n_rows,) or not np.all(np.isfinite(initial)):
            raise ValueError(f"{where}['initial'] must be ({n_rows},) finite; got {initial.shape}.")
        out["initial"] = initial
    for arr in out.values():
        arr.setflags(write=False)
    return out


def operator_rows(operator, rows: np.ndarray, node_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a sparse temperature operator as (solver node ids, weights), padded.

    Parameters
    ----------
    operator : scipy.sparse CSR (n_points, n_nodes) (:func:`romdask.fem.temperature.temperature_operator`)
    rows : (r,) the rows (global integration points) to keep
    node_ids : (n_nodes,) the solver id of each column

    Returns
    -------
    nodes (r, n_en_max) int64 (-1 padding), weights (r, n_en_max) float64 (0 padding)
    """
    sub = operator[np.asarray(rows, np.int64)].tocsr()
    sub.sort_indices()
    counts = np.diff(sub.indptr)
    width = int(counts.max()) if counts.size else 0
    nodes = np.full((len(counts), width), -1, np.int64)
    weights = np.zeros((len(counts), width))
    slot = np.arange(sub.indices.size) - np.repeat(sub.indptr[:-1], counts)
    row = np.repeat(np.arange(len(counts)), counts)
    nodes[row, slot] = np.asarray(node_ids, np.int64)[sub.indices]
    weights[row, slot] = sub.data
    return nodes, weights


def operator_values(nodes: np.ndarray, weights: np.ndarray, node_ids: np.ndarray, values: np.ndarray,
                    what: str = "the scenario's temperature") -> np.ndarray:
    """``values`` given on ``node_ids`` mapped to the operator's rows: ``(..., n_rows)``.

    Parameters
    ----------
    nodes, weights : (n_rows, n_en) the operator (solver ids, -1 padding)
    node_ids : (n_given,) distinct solver ids of the last axis of ``values``
    values : (..., n_given) nodal values

    Raises
    ------
    ValueError
        A node of the operator is not among ``node_ids`` (names a few).

    Notes
    -----
    One sort of ``node_ids`` and ``O(prod(values.shape[:-1]) n_rows n_en)`` flops.
    """
    node_ids = np.asarray(node_ids, np.int64)
    values = np.asarray(values, np.float64)
    if node_ids.size == 0:
        raise ValueError(f"{what} gives no node.")
    order = np.argsort(node_ids, kind="stable")
    wanted = np.where(nodes >= 0, nodes, node_ids[order[0]])  # padding: any given node (weight 0)
    columns = order[np.minimum(np.searchsorted(node_ids, wanted, sorter=order), node_ids.size - 1)]
    missing = np.unique(nodes[(nodes >= 0) & (node_ids[columns] != wanted)])
    if missing.size:
        raise ValueError(f"{what} does not give nodes {missing[:10].tolist()} (solver ids; {missing.size} in all) "
                         "that the model's reduced points need; give a temperature on every node of the mesh.")
    return np.einsum("...kj,kj->...k", values[..., columns], weights)


def _coefficient_value(c: Any, t: float, what: str) -> float:
    value = c if isinstance(c, float) else np.asarray(c(t), dtype=np.float64)
    if np.size(value) != 1 or not np.all(np.isfinite(value)):
        raise ValueError(f"{what} at t={t:g} must be one finite number; got {value!r}.")
    return float(np.reshape(value, ()))


@dataclass(frozen=True, eq=False)
class PointTemperature:
    """A scenario's temperatures at the reduced points (:meth:`ScenarioTemperature.at_points`).

    ``T(t) = base + sum_p c_p(t) patterns[p]`` at the ``r`` points, thermal-strain reference
    ``initial``.

    Attributes
    ----------
    initial, base : (r,)
    patterns : (n_p, r)
    coefficients : n_p coefficients (float, Amplitude or callable), one per pattern, or None
        with ``field_times``: the patterns are fields at these times, linear in between
        (constant outside)
    """

    initial: np.ndarray
    base: np.ndarray
    patterns: np.ndarray
    coefficients: Sequence[Any] | None
    field_times: np.ndarray | None = None

    def _hats(self, t: float, work: np.ndarray) -> None:
        times = self.field_times
        work[:] = 0.0
        i = int(np.searchsorted(times, t, side="right"))
        if i == 0 or i == times.size:
            work[max(i - 1, 0)] = 1.0
            return
        theta = (t - times[i - 1]) / (times[i] - times[i - 1])
        work[i - 1], work[i] = 1.0 - theta, theta

    def fill(self, t: float, out: np.ndarray, work: np.ndarray) -> None:
        """``out (r,) = T(t)`` with ``work (n_p,)`` the coefficients (no allocation for n_p > 0).
        Cost ``O(n_p r)``."""
        if self.coefficients is None:
            self._hats(t, work)
        else:
            for p, c in enumerate(self.coefficients):
                work[p] = _coefficient_value(c, t, f"temperature coefficient {p}")
        np.dot(work, self.patterns, out=out)
        out += self.base
