"""The temperatures of a run as JSON, in the solver's node ids (the ``"temperature"`` entry of
:func:`romdask.problem.patterns.describe_loads`).

Temperatures are inputs of the laws, not forces: a reduced model maps any nodal temperature
field to its points, so they are described in full (values included) but are not part of a
load signature (only whether a run is thermal is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.problem.loads import Amplitude, Temperature
from romdask.problem.problem import Problem

__all__ = ["describe_temperatures", "temperature_names", "temperatures_from_description"]


def _amplitude_json(amplitude: Amplitude | None) -> dict[str, list[float]] | None:
    if amplitude is None:
        return None
    return {"times": [float(t) for t in amplitude.times], "values": [float(v) for v in amplitude.values]}


def temperature_names(patterns: Sequence[Temperature]) -> list[str]:
    """Given names kept, empty ones "temperature-<i>"; ValueError on duplicates."""
    names = [p.name or f"temperature-{i}" for i, p in enumerate(patterns)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"temperature pattern names must be unique; duplicated: {duplicates}. Give each "
                         "pattern its own name (empty names become 'temperature-<i>').")
    return names


def describe_temperatures(problem: Problem) -> dict[str, Any] | None:
    """The ``"temperature"`` entry of a load description; None for an athermal problem.

    Returns
    -------
    dict or None
        ``{"initial": {"value": T} | {"node_ids": [...], "values": [...]}, "patterns": [...]}``:
        the initial temperature (one value when uniform, else every node's, in solver ids) and
        per :class:`~romdask.problem.loads.Temperature` pattern ``name`` (empty names become
        "temperature-<i>"), ``node_ids``, ``values`` and ``amplitude``.

    Notes
    -----
    Mesh-sized when the initial temperature is not uniform or a pattern covers every node.
    """
    if not problem.thermal:
        return None
    node_ids = np.asarray(problem.mesh.node_ids, np.int64)
    t0 = np.asarray(problem.initial_temperature, np.float64)
    if np.all(t0 == t0[0]):
        initial: dict[str, Any] = {"value": float(t0[0])}
    else:
        initial = {"node_ids": [int(i) for i in node_ids], "values": [float(v) for v in t0]}
    patterns = [{"name": name, "node_ids": [int(i) for i in node_ids[p.nodes]],
                 "values": [float(v) for v in p.values], "amplitude": _amplitude_json(p.amplitude)}
                for p, name in zip(problem.temperatures, temperature_names(problem.temperatures))]
    return {"initial": initial, "patterns": patterns}


def _node_indices(mesh: Mesh, ids: Sequence[int], where: str) -> np.ndarray:
    try:
        return mesh.node_index(np.asarray(ids, np.int64))
    except KeyError as err:
        raise ValueError(f"{where}: {err.args[0]} (not in the given mesh; is it the run's mesh?)") from None


def _values(entry: Mapping[str, Any], n: int, where: str) -> np.ndarray:
    if "values" not in entry:
        raise ValueError(f"{where} has no 'values'; keys: {sorted(entry)}")
    values = np.asarray(entry["values"], np.float64).ravel()
    if values.size != n:
        raise ValueError(f"{where}: {values.size} values for {n} node ids")
    return values


def _initial(mesh: Mesh, entry: Any) -> float | np.ndarray:
    where = "initial temperature"
    if not isinstance(entry, Mapping):
        raise ValueError(f"the {where} is a mapping with 'value' or 'node_ids' and 'values'; got {entry!r}")
    if "value" in entry:
        return float(entry["value"])
    if "node_ids" not in entry:
        raise ValueError(f"the {where} has neither 'value' nor 'node_ids'; keys: {sorted(entry)}")
    nodes = _node_indices(mesh, entry["node_ids"], where)
    values = _values(entry, len(nodes), where)
    out = np.full(mesh.n_nodes, np.nan)
    out[nodes] = values
    if np.isnan(out).any():
        raise ValueError(f"the {where} gives {np.unique(nodes).size} of the mesh's {mesh.n_nodes} nodes; "
                         "it must give every node (or one uniform 'value')")
    return out


def temperatures_from_description(
    mesh: Mesh, description: Mapping[str, Any]
) -> tuple[float | np.ndarray | None, tuple[Temperature, ...]]:
    """The initial temperature and the temperature patterns of a load description on ``mesh``.

    Parameters
    ----------
    mesh : Mesh carrying the description's solver ids (any numbering)
    description : the output of :func:`~romdask.problem.patterns.describe_loads` (version 1
        descriptions have no temperatures)

    Returns
    -------
    initial_temperature : None (athermal), a float (uniform) or an (n_nodes,) array in the
        order of ``mesh``
    temperatures : tuple of Temperature
        As ``Problem(initial_temperature=..., temperatures=...)`` take them.

    Raises
    ------
    ValueError
        Missing keys, node ids ``mesh`` does not have, an initial temperature that misses
        nodes, duplicate names.
    """
    entry = description.get("temperature")
    if entry is None:
        return None, ()
    if not isinstance(entry, Mapping) or "initial" not in entry:
        raise ValueError(f"the 'temperature' entry of a load description is a mapping with 'initial' and "
                         f"'patterns'; got {entry if not isinstance(entry, Mapping) else sorted(entry)}")
    initial = _initial(mesh, entry["initial"])
    patterns = []
    for i, p in enumerate(entry.get("patterns") or []):
        name = str(p.get("name", ""))
        where = f"temperature pattern {i} ({name!r})"
        if "node_ids" not in p:
            raise ValueError(f"{where} has no 'node_ids'; keys: {sorted(p)}")
        nodes = _node_indices(mesh, p["node_ids"], where)
        table = p.get("amplitude")
        amplitude = None if table is None else Amplitude(table["times"], table["values"])
        patterns.append(Temperature(nodes, _values(p, len(nodes), where), amplitude, name=name))
    temperature_names(patterns)
    return initial, tuple(patterns)
