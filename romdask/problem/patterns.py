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

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.materials.registry import law_to_json
from romdask.problem.loads import Amplitude, Dirichlet, NodalForce, Pressure
from romdask.problem.problem import Problem

__all__ = [
    "DESCRIPTION_VERSION",
    "SIGNATURE_VERSION",
    "describe_loads",
    "load_signature",
    "loads_from_description",
    "mesh_fingerprint",
    "pattern_names",
    "pattern_signatures",
    "problem_signature",
    "run_metadata",
    "signature_differences",
]

#: version of the description written by :func:`describe_loads`
DESCRIPTION_VERSION = 1
#: version of the signature computed by :func:`load_signature`
SIGNATURE_VERSION = 1
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


def pattern_names(dirichlet: Sequence[Dirichlet], loads: Sequence[NodalForce | Pressure]) -> list[str]:
    """The patterns' names, Dirichlet conditions first: given names kept, empty ones
    "dirichlet-<i>" / "load-<i>"; ValueError on duplicates."""
    return _unique_names(
        [bc.name for bc in dirichlet] + [load.name for load in loads],
        [f"dirichlet-{i}" for i in range(len(dirichlet))] + [f"load-{i}" for i in range(len(loads))],
    )


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
    names = pattern_names(problem.dirichlet, problem.loads)
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


# ---- signatures: what must agree between a reduced model and a new deck -------------------------


def _sha256(*parts: bytes | np.ndarray) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else np.ascontiguousarray(part, dtype="<i8").tobytes())
    return digest.hexdigest()


def mesh_fingerprint(mesh: Mesh) -> dict[str, Any]:
    """Sizes and a sha256 of a mesh's topology in solver ids, independent of its numbering.

    Parameters
    ----------
    mesh : Mesh

    Returns
    -------
    dict
        ``{"n_nodes", "n_elements", "sha256"}``. The hash covers the sorted node ids, then for
        each element type (sorted by name) the element ids in increasing order with their
        connectivity in solver node ids (rows in the CalculiX node order of the element).

    Notes
    -----
    Invariant to the order of nodes, of elements and to the split into blocks (a snapshot store
    renumbers both subdomain by subdomain); it changes with any node id, element id, element
    type or connectivity. Node coordinates are NOT hashed (decks print them to a few digits;
    compare them with :func:`romdask.store.layout.mesh_difference` when both meshes are at
    hand). Cost: one sort of the ids, O(n log n).
    """
    parts: list[bytes | np.ndarray] = [b"nodes", np.sort(np.asarray(mesh.node_ids, np.int64))]
    for kind in sorted({b.type for b in mesh.blocks}):
        blocks = [b for b in mesh.blocks if b.type == kind]
        ids = np.concatenate([b.ids for b in blocks])
        connectivity = np.concatenate([mesh.node_ids[b.connectivity] for b in blocks])
        order = np.argsort(ids, kind="stable")
        parts += [kind.encode(), ids[order], connectivity[order]]
    return {"n_nodes": int(mesh.n_nodes), "n_elements": int(mesh.n_elements), "sha256": _sha256(*parts)}


def _pattern(name: str, kind: str, components: Sequence[int], keys: np.ndarray) -> dict[str, Any]:
    """One pattern's signature; ``keys`` are solver node ids or (element id, face) rows."""
    keys = np.asarray(keys, np.int64).reshape(len(keys), -1)
    keys = keys[np.lexsort(keys.T[::-1])] if keys.size else keys
    return {"name": name, "kind": kind, "components": sorted(int(c) for c in components),
            "size": len(keys), "sha256": _sha256(keys)}


def pattern_signatures(
    mesh: Mesh, dirichlet: Sequence[Dirichlet], loads: Sequence[NodalForce | Pressure]
) -> list[dict[str, Any]]:
    """The ``"patterns"`` part of :func:`load_signature` (without the mesh fingerprint).

    Raises
    ------
    ValueError
        Two conditions share a name.
    TypeError
        A load is neither a NodalForce nor a Pressure.
    """
    names = pattern_names(dirichlet, loads)
    node_ids = np.asarray(mesh.node_ids, np.int64)
    patterns = [_pattern(name, "dirichlet", bc.components, node_ids[bc.nodes])
                for bc, name in zip(dirichlet, names)]
    element_ids = mesh.element_ids
    for load, name in zip(loads, names[len(dirichlet):]):
        if isinstance(load, NodalForce):
            patterns.append(_pattern(name, "nodal_force", (load.component,), node_ids[load.nodes]))
        elif isinstance(load, Pressure):
            faces = np.column_stack([element_ids[load.faces[:, 0]], load.faces[:, 1]])
            patterns.append(_pattern(name, "pressure", (), faces))
        else:
            raise TypeError(f"unsupported load {type(load).__name__} ({load!r}); expected NodalForce or Pressure")
    return patterns


def load_signature(
    mesh: Mesh, dirichlet: Sequence[Dirichlet], loads: Sequence[NodalForce | Pressure]
) -> dict[str, Any]:
    """The signature of a mesh and its load patterns: what a reduced model needs a new deck to share.

    Parameters
    ----------
    mesh : Mesh carrying the solver ids (any numbering: a problem's or a store's mesh)
    dirichlet : the Dirichlet conditions on ``mesh`` (0-based node indices)
    loads : the NodalForce / Pressure loads on ``mesh``

    Returns
    -------
    dict
        ``{"version": 1, "mesh": mesh_fingerprint(mesh), "patterns": [...]}``, one entry per
        Dirichlet condition then per load, in order: ``name`` (empty names become
        "dirichlet-<i>" / "load-<i>" as in :func:`describe_loads`), ``kind`` ("dirichlet",
        "nodal_force" or "pressure"), ``components`` (sorted; the force's component; [] for a
        pressure), ``size`` (nodes or faces) and ``sha256`` of the sorted solver node ids, or of
        the sorted (element id, 0-based face) pairs of a pressure. Values and amplitudes are
        not part of it: they are what a new scenario changes.

    Raises
    ------
    ValueError
        Two conditions share a name.
    TypeError
        A load is neither a NodalForce nor a Pressure.

    Notes
    -----
    Invariant to the numbering of nodes and elements (tested on a store's renumbered mesh);
    compare two signatures with :func:`signature_differences`. Cost O(n log n) in the mesh
    size (:func:`mesh_fingerprint`) plus the patterns' sizes.
    """
    return {"version": SIGNATURE_VERSION, "mesh": mesh_fingerprint(mesh),
            "patterns": pattern_signatures(mesh, dirichlet, loads)}


def problem_signature(problem: Problem) -> dict[str, Any]:
    """:func:`load_signature` of a problem's mesh, Dirichlet conditions and loads."""
    return load_signature(problem.mesh, problem.dirichlet, problem.loads)


def signature_differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """What differs between two signatures of :func:`load_signature`, one sentence per item.

    Parameters
    ----------
    expected : e.g. a reduced model's ``metadata["reduce"]["signature"]``
    actual : e.g. :func:`problem_signature` of a new deck's problem

    Returns
    -------
    list of str
        Empty when the meshes and the patterns (names, kinds, components, nodes or faces) are
        the same; otherwise the mesh's sizes or topology, the missing and extra patterns, and
        for each shared name what changed.

    Raises
    ------
    ValueError
        A signature of another version.
    """
    for which, sig in (("expected", expected), ("actual", actual)):
        if not isinstance(sig, Mapping) or sig.get("version") != SIGNATURE_VERSION:
            got = sig.get("version") if isinstance(sig, Mapping) else type(sig).__name__
            raise ValueError(f"the {which} signature has version {got!r}; this romdask compares version "
                             f"{SIGNATURE_VERSION} (from romdask.problem.patterns.load_signature)")
    out = []
    mesh_a, mesh_b = expected["mesh"], actual["mesh"]
    for key, what in (("n_nodes", "nodes"), ("n_elements", "elements")):
        if mesh_a[key] != mesh_b[key]:
            out.append(f"the mesh has {mesh_b[key]} {what} instead of {mesh_a[key]}")
    if not out and mesh_a["sha256"] != mesh_b["sha256"]:
        out.append("the mesh has the same sizes but other node ids, element ids, types or connectivity")
    patterns_a = {p["name"]: p for p in expected["patterns"]}
    patterns_b = {p["name"]: p for p in actual["patterns"]}
    missing = [n for n in patterns_a if n not in patterns_b]
    extra = [n for n in patterns_b if n not in patterns_a]
    if missing:
        out.append(f"patterns missing: {missing}")
    if extra:
        out.append(f"patterns not in the model: {extra}")
    for name in (n for n in patterns_a if n in patterns_b):
        a, b = patterns_a[name], patterns_b[name]
        unit = "faces" if a["kind"] == "pressure" else "nodes"
        if a["kind"] != b["kind"]:
            out.append(f"pattern {name!r} is a {b['kind']} instead of a {a['kind']}")
        elif a["components"] != b["components"]:
            out.append(f"pattern {name!r} acts on components {b['components']} instead of {a['components']}")
        elif a["size"] != b["size"]:
            out.append(f"pattern {name!r} has {b['size']} {unit} instead of {a['size']}")
        elif a["sha256"] != b["sha256"]:
            out.append(f"pattern {name!r} has other {unit} (same count, {a['size']})")
    return out
