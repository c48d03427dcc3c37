"""Load patterns of a run as JSON, in the solver's ids, so they survive the store's renumbering.

The offline reduction needs, for every stored run, its Dirichlet conditions and external loads
(one lifting / reduced load vector per pattern). A snapshot store renumbers nodes and elements
subdomain by subdomain, so the description names nodes and elements by their SOLVER IDS
(``mesh.node_ids``, ``mesh.element_ids``), never by 0-based indices.

Store it with a run written by the built-in solver::

    from romdask.hifi import solve
    from romdask.problem.patterns import describe_loads, loads_from_description

    writer = store.writer(name, mesh=problem.mesh, times=problem.times,
                          metadata={"loads": describe_loads(problem)})
    solve(problem, writer=writer)

and read it back on the store's mesh::

    store = SnapshotStore.open(path)
    description = store.runs()[name]["metadata"]["loads"]
    dirichlet, loads = loads_from_description(store.layout.mesh, description)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.materials.registry import law_to_json
from romdask.problem.loads import Amplitude, Dirichlet, NodalForce, Pressure
from romdask.problem.problem import Problem

__all__ = ["DESCRIPTION_VERSION", "describe_loads", "loads_from_description"]

#: version of the description written by :func:`describe_loads`
DESCRIPTION_VERSION = 1
_KINDS = ("nodal_force", "pressure")


def _amplitude_json(amplitude: Amplitude | None) -> dict[str, list[float]] | None:
    if amplitude is None:
        return None
    return {"times": [float(t) for t in amplitude.times], "values": [float(v) for v in amplitude.values]}


def _ids(table: np.ndarray, indices: np.ndarray) -> list[int]:
    return [int(i) for i in np.asarray(table)[np.asarray(indices, np.int64)]]


def _unique_names(names: list[str], generated: list[str]) -> list[str]:
    """Keep given names, fill empty ones; raise on duplicates (given or generated)."""
    out = [name if name else gen for name, gen in zip(names, generated)]
    seen: dict[str, int] = {}
    for name in out:
        seen[name] = seen.get(name, 0) + 1
    duplicates = sorted(n for n, count in seen.items() if count > 1)
    if duplicates:
        raise ValueError(
            f"load pattern names must be unique across Dirichlet conditions and loads; "
            f"duplicated: {duplicates}. Give each condition its own name "
            "(empty names become 'dirichlet-<i>' / 'load-<i>')."
        )
    return out


def describe_loads(problem: Problem) -> dict[str, Any]:
    """A JSON-serializable description of the load patterns of ``problem``, in solver ids.

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    dict
        ``{"version": 1, "dirichlet": [...], "loads": [...]}``. Each Dirichlet entry holds
        ``name``, ``node_ids``, ``components``, ``value`` and ``amplitude``
        (``{"times": [...], "values": [...]}`` or None); each load entry holds ``kind``
        ("nodal_force" or "pressure"), ``name``, ``value``, ``amplitude`` and either
        ``node_ids`` and ``component`` (nodal force) or ``faces``: ``[[element_id, face], ...]``
        with 0-based CalculiX face numbers (pressure). Empty names become "dirichlet-<i>" /
        "load-<i>" (i: position in ``problem.dirichlet`` / ``problem.loads``).

    Raises
    ------
    ValueError
        Two conditions share a name.
    TypeError
        A load is neither a NodalForce nor a Pressure.

    Notes
    -----
    Size O(number of constrained nodes + loaded faces); nothing mesh-sized beyond that. Pass the
    result as ``metadata={"loads": ...}`` to :meth:`romdask.store.SnapshotStore.writer`.
    """
    mesh = problem.mesh
    names = _unique_names(
        [bc.name for bc in problem.dirichlet] + [load.name for load in problem.loads],
        [f"dirichlet-{i}" for i in range(len(problem.dirichlet))] + [f"load-{i}" for i in range(len(problem.loads))],
    )
    dirichlet = []
    for bc, name in zip(problem.dirichlet, names):
        dirichlet.append(
            {
                "name": name,
                "node_ids": _ids(mesh.node_ids, bc.nodes),
                "components": [int(c) for c in bc.components],
                "value": float(bc.value),
                "amplitude": _amplitude_json(bc.amplitude),
            }
        )
    loads = []
    element_ids = mesh.element_ids
    for load, name in zip(problem.loads, names[len(problem.dirichlet) :]):
        if isinstance(load, NodalForce):
            entry: dict[str, Any] = {
                "kind": "nodal_force",
                "name": name,
                "node_ids": _ids(mesh.node_ids, load.nodes),
                "component": int(load.component),
            }
        elif isinstance(load, Pressure):
            entry = {
                "kind": "pressure",
                "name": name,
                "faces": [[int(element_ids[e]), int(f)] for e, f in load.faces],
            }
        else:
            raise TypeError(f"unsupported load {type(load).__name__} ({load!r}); expected NodalForce or Pressure")
        entry["value"] = float(load.value)
        entry["amplitude"] = _amplitude_json(load.amplitude)
        loads.append(entry)
    return {"version": DESCRIPTION_VERSION, "dirichlet": dirichlet, "loads": loads}


def _index(lookup, ids: Sequence[int], where: str) -> np.ndarray:
    try:
        return lookup(np.asarray(ids, np.int64))
    except KeyError as err:
        raise ValueError(f"{where}: {err.args[0]} (not in the given mesh; is it the run's mesh?)") from None


def _amplitude(entry: Mapping[str, Any]) -> Amplitude | None:
    table = entry.get("amplitude")
    if table is None:
        return None
    return Amplitude(table["times"], table["values"])


def _field(entry: Mapping[str, Any], key: str, where: str):
    if key not in entry:
        raise ValueError(f"{where} has no {key!r}; keys: {sorted(entry)}")
    return entry[key]


def loads_from_description(
    mesh: Mesh, description: Mapping[str, Any]
) -> tuple[tuple[Dirichlet, ...], tuple[NodalForce | Pressure, ...]]:
    """Rebuild the conditions of :func:`describe_loads` on ``mesh`` (any numbering).

    Parameters
    ----------
    mesh : Mesh
        Carries the solver ids of the description, e.g. the problem's mesh or a store's mesh
        (``SnapshotStore.open(path).layout.mesh``).
    description : mapping
        The output of :func:`describe_loads`, possibly through ``json.dumps`` / ``json.loads``.

    Returns
    -------
    dirichlet : tuple of Dirichlet
    loads : tuple of NodalForce / Pressure
        With 0-based node / element indices of ``mesh``; names, values and amplitude tables as
        described.

    Raises
    ------
    ValueError
        Unknown version or load kind, missing keys, duplicate names, or node / element ids that
        ``mesh`` does not have.

    Notes
    -----
    One sort of the mesh's id tables per condition: O(n log n) in the mesh size.
    """
    if not isinstance(description, Mapping):
        raise ValueError(f"a load description is a mapping; got {type(description).__name__}")
    version = description.get("version")
    if version != DESCRIPTION_VERSION:
        raise ValueError(
            f"unknown load description version {version!r}; this romdask reads version {DESCRIPTION_VERSION}"
        )
    entries_bc = list(_field(description, "dirichlet", "load description"))
    entries_ld = list(_field(description, "loads", "load description"))
    _unique_names([str(e.get("name", "")) for e in entries_bc + entries_ld],
                  [f"dirichlet-{i}" for i in range(len(entries_bc))] + [f"load-{i}" for i in range(len(entries_ld))])
    dirichlet = []
    for i, entry in enumerate(entries_bc):
        name = str(entry.get("name", ""))
        where = f"Dirichlet condition {i} ({name!r})"
        nodes = _index(mesh.node_index, _field(entry, "node_ids", where), where)
        dirichlet.append(
            Dirichlet(nodes, tuple(_field(entry, "components", where)), float(_field(entry, "value", where)),
                      _amplitude(entry), name=name)
        )
    loads: list[NodalForce | Pressure] = []
    for i, entry in enumerate(entries_ld):
        name = str(entry.get("name", ""))
        kind = entry.get("kind")
        where = f"load {i} ({name!r})"
        if kind not in _KINDS:
            raise ValueError(f"{where}: unknown load kind {kind!r}; known kinds: {', '.join(_KINDS)}")
        value = float(_field(entry, "value", where))
        if kind == "nodal_force":
            nodes = _index(mesh.node_index, _field(entry, "node_ids", where), where)
            loads.append(NodalForce(nodes, int(_field(entry, "component", where)), value, _amplitude(entry), name=name))
        else:
            faces = np.asarray(_field(entry, "faces", where), np.int64).reshape(-1, 2)
            elements = _index(mesh.element_index, faces[:, 0], where)
            loads.append(Pressure(np.column_stack([elements, faces[:, 1]]), value, _amplitude(entry), name=name))
    return tuple(dirichlet), tuple(loads)


def run_metadata(problem: Problem) -> dict[str, Any]:
    """``{"loads": describe_loads(problem), "material": law_to_json(law)}``: what
    :func:`romdask.offline.reduce` and ``romdask reduce`` need from a stored run, whatever solver
    wrote it (``material`` only for a problem with one law)."""
    meta: dict[str, Any] = {"loads": describe_loads(problem)}
    if not isinstance(problem.material, Mapping):
        meta["material"] = law_to_json(problem.material)
    return meta
