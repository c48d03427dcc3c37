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
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Gravity, NodalForce, Pressure
from romdask.problem.problem import Problem
from romdask.problem.thermal import describe_temperatures

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

#: version of the description written by :func:`describe_loads` (2: body forces and temperatures)
DESCRIPTION_VERSION = 2
#: description versions :func:`loads_from_description` reads
READABLE_DESCRIPTIONS = (1, 2)
#: version of the signature computed by :func:`load_signature` (2: body forces, "thermal")
SIGNATURE_VERSION = 2
#: signature versions :func:`signature_differences` compares (a version 1 signature is athermal)
COMPARABLE_SIGNATURES = (1, 2)
_KINDS = ("nodal_force", "pressure", "centrifugal", "gravity")
Load = NodalForce | Pressure | Centrifugal | Gravity


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


def pattern_names(dirichlet: Sequence[Dirichlet], loads: Sequence[Load]) -> list[str]:
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
        ``{"version": 2, "dirichlet": [...], "loads": [...], "temperature": {...}}``. Each
        Dirichlet entry holds ``name``, ``node_ids``, ``components``, ``value`` and
        ``amplitude`` (``{"times": [...], "values": [...]}`` or None); each load entry holds
        ``kind``, ``name``, ``value``, ``amplitude`` and: ``node_ids`` and ``component``
        ("nodal_force"); ``faces``: ``[[element_id, face], ...]`` with 0-based CalculiX face
        numbers ("pressure"); ``element_ids``, ``density``, ``point`` and ``axis``
        ("centrifugal", value = omega^2) or ``element_ids``, ``density`` and ``direction``
        ("gravity", value = g). Empty names become "dirichlet-<i>" / "load-<i>" (i: position in
        ``problem.dirichlet`` / ``problem.loads``). ``"temperature"`` is present for a thermal
        problem only: :func:`romdask.problem.thermal.describe_temperatures`.

    Raises
    ------
    ValueError
        Two conditions share a name.
    TypeError
        A load of another kind.

    Notes
    -----
    Size O(number of constrained nodes + loaded faces and elements), plus the temperatures (mesh
    sized when not uniform). Pass the result as ``metadata={"loads": ...}`` to
    :meth:`romdask.store.SnapshotStore.writer` (or all of :func:`run_metadata`).
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
        elif isinstance(load, (Centrifugal, Gravity)):
            entry = _body_force_entry(load, name, element_ids)
        else:
            raise TypeError(f"unsupported load {type(load).__name__} ({load!r}); expected NodalForce, Pressure, "
                            "Centrifugal or Gravity")
        entry["value"] = float(load.value)
        entry["amplitude"] = _amplitude_json(load.amplitude)
        loads.append(entry)
    out: dict[str, Any] = {"version": DESCRIPTION_VERSION, "dirichlet": dirichlet, "loads": loads}
    temperature = describe_temperatures(problem)
    if temperature is not None:
        out["temperature"] = temperature
    return out


def _body_force_entry(load: Centrifugal | Gravity, name: str, element_ids: np.ndarray) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "centrifugal" if isinstance(load, Centrifugal) else "gravity", "name": name,
                             "element_ids": _ids(element_ids, load.elements), "density": float(load.density)}
    if isinstance(load, Centrifugal):
        entry["point"] = [float(v) for v in load.point]
        entry["axis"] = [float(v) for v in load.axis]
    else:
        entry["direction"] = [float(v) for v in load.direction]
    return entry


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
) -> tuple[tuple[Dirichlet, ...], tuple[Load, ...]]:
    """Rebuild the conditions of :func:`describe_loads` on ``mesh`` (any numbering).

    Parameters
    ----------
    mesh : Mesh
        Carries the solver ids of the description, e.g. the problem's mesh or a store's mesh
        (``SnapshotStore.open(path).layout.mesh``).
    description : mapping
        The output of :func:`describe_loads`, possibly through ``json.dumps`` / ``json.loads``
        (versions 1 and 2).

    Returns
    -------
    dirichlet : tuple of Dirichlet
    loads : tuple of NodalForce / Pressure / Centrifugal / Gravity
        With 0-based node / element indices of ``mesh``; names, values and amplitude tables as
        described. The temperatures: :func:`romdask.problem.thermal.temperatures_from_description`.

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
    if version not in READABLE_DESCRIPTIONS or isinstance(version, bool):
        raise ValueError(
            f"unknown load description version {version!r}; this romdask reads versions "
            f"{', '.join(map(str, READABLE_DESCRIPTIONS))}"
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
    loads: list[Load] = []
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
        elif kind == "pressure":
            faces = np.asarray(_field(entry, "faces", where), np.int64).reshape(-1, 2)
            elements = _index(mesh.element_index, faces[:, 0], where)
            loads.append(Pressure(np.column_stack([elements, faces[:, 1]]), value, _amplitude(entry), name=name))
        else:
            loads.append(_body_force(mesh, entry, kind, value, name, where))
    return tuple(dirichlet), tuple(loads)


def _body_force(mesh: Mesh, entry: Mapping[str, Any], kind: str, value: float, name: str,
                where: str) -> Centrifugal | Gravity:
    elements = _index(mesh.element_index, _field(entry, "element_ids", where), where)
    density = float(_field(entry, "density", where))
    if kind == "centrifugal":
        return Centrifugal(elements, value, _field(entry, "point", where), _field(entry, "axis", where), density,
                           _amplitude(entry), name=name)
    return Gravity(elements, value, _field(entry, "direction", where), density, _amplitude(entry), name=name)


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


def _pattern(name: str, kind: str, components: Sequence[int], keys: np.ndarray,
             geometry: tuple[dict[str, list[float]], np.ndarray, float] | None = None) -> dict[str, Any]:
    """One pattern's signature; ``keys`` are solver node ids, (element id, face) rows or
    element ids; ``geometry``: a body force's rounded axis or direction, its integers and its
    rounded density."""
    keys = np.asarray(keys, np.int64).reshape(len(keys), -1)
    keys = keys[np.lexsort(keys.T[::-1])] if keys.size else keys
    out = {"name": name, "kind": kind, "components": sorted(int(c) for c in components), "size": len(keys)}
    if geometry is None:
        out["sha256"] = _sha256(keys)
    else:
        out["geometry"], out["density"] = geometry[0], geometry[2]
        out["sha256"] = _sha256(keys, b"geometry", geometry[1], repr(geometry[2]).encode())
    return out


#: body-force directions are compared to 1e-6; axis points to 1e-6 x the mesh's size, rounded up
#: to a power of ten (decks print a few digits; a value at a rounding boundary may still flip)
_DIGITS = 6


def _length_exponent(mesh: Mesh) -> int:
    """e with 10**e the mesh's bounding-box diagonal rounded up to a power of ten."""
    extent = float(np.linalg.norm(np.ptp(mesh.nodes, axis=0))) if mesh.n_nodes else 0.0
    return int(np.ceil(np.log10(extent))) if extent > 0 else 0


def _rounded(v: np.ndarray, exponent: int) -> tuple[list[float], np.ndarray]:
    """``v`` in units of 10**(exponent - _DIGITS): the integers, and the values they stand for
    (one correctly rounded operation: the same floats from the same integers)."""
    shift = _DIGITS - exponent
    q = np.round(np.asarray(v, np.float64) * 10.0**shift).astype(np.int64)
    values = [float(i) / 10.0**shift if shift >= 0 else float(i) * 10.0**-shift for i in q]
    return [v + 0.0 for v in values], q  # + 0.0: no -0.0


def _body_force_geometry(mesh: Mesh, load: Centrifugal | Gravity) -> tuple[dict[str, list[float]], np.ndarray, float]:
    """The rounded geometry of a body force, its integers and the density to 7 digits: the
    direction of gravity; for a rotation the axis up to its sign and its point nearest the
    origin (any point of the axis describes the same rotation). The density is part of the
    unit load vector (:func:`~romdask.problem.vectors.unit_load_vector`), so it must agree."""
    density = float(f"{load.density:.6e}")
    if isinstance(load, Gravity):
        direction, q = _rounded(load.direction, 0)
        return {"direction": direction}, q, density
    axis = load.axis
    _, q_axis = _rounded(axis, 0)
    if q_axis[np.flatnonzero(q_axis)[0]] < 0:
        axis = -axis
    axis_values, q_axis = _rounded(axis, 0)
    point_values, q_point = _rounded(load.point - float(load.point @ load.axis) * load.axis, _length_exponent(mesh))
    return {"point": point_values, "axis": axis_values}, np.concatenate([q_point, q_axis]), density


def pattern_signatures(
    mesh: Mesh, dirichlet: Sequence[Dirichlet], loads: Sequence[Load]
) -> list[dict[str, Any]]:
    """The ``"patterns"`` part of :func:`load_signature` (without the mesh fingerprint).

    Raises
    ------
    ValueError
        Two conditions share a name.
    TypeError
        A load of another kind.
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
        elif isinstance(load, (Centrifugal, Gravity)):
            kind = "centrifugal" if isinstance(load, Centrifugal) else "gravity"
            patterns.append(_pattern(name, kind, (), element_ids[load.elements], _body_force_geometry(mesh, load)))
        else:
            raise TypeError(f"unsupported load {type(load).__name__} ({load!r}); expected NodalForce, Pressure, "
                            "Centrifugal or Gravity")
    return patterns


def load_signature(
    mesh: Mesh, dirichlet: Sequence[Dirichlet], loads: Sequence[Load], *, thermal: bool = False
) -> dict[str, Any]:
    """The signature of a mesh and its load patterns: what a reduced model needs a new deck to share.

    Parameters
    ----------
    mesh : Mesh carrying the solver ids (any numbering: a problem's or a store's mesh)
    dirichlet : the Dirichlet conditions on ``mesh`` (0-based node indices)
    loads : the NodalForce / Pressure / Centrifugal / Gravity loads on ``mesh``
    thermal : whether the runs have temperatures (``Problem.thermal``; for stored runs: a
        ``"temperature"`` entry in their load description)

    Returns
    -------
    dict
        ``{"version": 2, "mesh": mesh_fingerprint(mesh), "thermal": bool, "patterns": [...]}``,
        one entry per Dirichlet condition then per load, in order: ``name`` (empty names
        become "dirichlet-<i>" / "load-<i>" as in :func:`describe_loads`), ``kind``
        ("dirichlet", "nodal_force", "pressure", "centrifugal" or "gravity"), ``components``
        (sorted; the force's component; [] for the others), ``size`` (nodes, faces or
        elements) and ``sha256`` of the sorted solver node ids, of the sorted (element id,
        0-based face) pairs of a pressure, or of the sorted element ids of a body force
        together with its ``geometry``: ``{"direction": [...]}`` (gravity) or ``{"point":
        [...], "axis": [...]}`` (rotation: the axis up to its sign, the axis point nearest the
        origin), rounded to 1e-6 (points: 1e-6 x the mesh size rounded up to a power of ten),
        and its ``density`` (7 digits; part of the unit load vector). Values (omega^2, g) and
        amplitudes are not part of it: they are what a new scenario changes; nor are the
        temperatures (a reduced model maps any nodal temperature field to its points), only
        whether there are any.

    Raises
    ------
    ValueError
        Two conditions share a name.
    TypeError
        A load of another kind.

    Notes
    -----
    Invariant to the numbering of nodes and elements (tested on a store's renumbered mesh);
    compare two signatures with :func:`signature_differences`. Cost O(n log n) in the mesh
    size (:func:`mesh_fingerprint`) plus the patterns' sizes.
    """
    return {"version": SIGNATURE_VERSION, "mesh": mesh_fingerprint(mesh), "thermal": bool(thermal),
            "patterns": pattern_signatures(mesh, dirichlet, loads)}


def problem_signature(problem: Problem) -> dict[str, Any]:
    """:func:`load_signature` of a problem's mesh, Dirichlet conditions, loads and thermal flag."""
    return load_signature(problem.mesh, problem.dirichlet, problem.loads, thermal=problem.thermal)


def signature_differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """What differs between two signatures of :func:`load_signature`, one sentence per item.

    Parameters
    ----------
    expected : e.g. a reduced model's ``metadata["reduce"]["signature"]``
    actual : e.g. :func:`problem_signature` of a new deck's problem

    Returns
    -------
    list of str
        Empty when the meshes, the thermal flags and the patterns (names, kinds, components,
        nodes, faces or elements, body-force axes and directions) are the same; otherwise the
        mesh's sizes or topology, temperatures on one side only, the missing and extra
        patterns, and for each shared name what changed.

    Raises
    ------
    ValueError
        A signature of an unknown version (versions 1 and 2 compare; a version 1 signature,
        from before temperatures, is athermal).
    """
    for which, sig in (("expected", expected), ("actual", actual)):
        version = sig.get("version") if isinstance(sig, Mapping) else None
        if version not in COMPARABLE_SIGNATURES or isinstance(version, bool):
            got = version if isinstance(sig, Mapping) else type(sig).__name__
            raise ValueError(f"the {which} signature has version {got!r}; this romdask compares versions "
                             f"{', '.join(map(str, COMPARABLE_SIGNATURES))} (from "
                             "romdask.problem.patterns.load_signature)")
    out = _mesh_differences(expected["mesh"], actual["mesh"])
    thermal_a, thermal_b = bool(expected.get("thermal", False)), bool(actual.get("thermal", False))
    if thermal_a and not thermal_b:
        out.append("the model was trained with temperatures but this case has none: give it an initial "
                   "temperature (CalculiX: *INITIAL CONDITIONS,TYPE=TEMPERATURE)")
    elif thermal_b and not thermal_a:
        out.append("this case has temperatures but the model was trained without any (athermal runs): "
                   "train with thermal runs")
    patterns_a = {p["name"]: p for p in expected["patterns"]}
    patterns_b = {p["name"]: p for p in actual["patterns"]}
    missing = [n for n in patterns_a if n not in patterns_b]
    extra = [n for n in patterns_b if n not in patterns_a]
    if missing:
        out.append(f"patterns missing: {missing}")
    if extra:
        out.append(f"patterns not in the model: {extra}")
    for name in (n for n in patterns_a if n in patterns_b):
        difference = _pattern_difference(name, patterns_a[name], patterns_b[name])
        if difference:
            out.append(difference)
    return out


def _mesh_differences(mesh_a: Mapping[str, Any], mesh_b: Mapping[str, Any]) -> list[str]:
    out = []
    for key, what in (("n_nodes", "nodes"), ("n_elements", "elements")):
        if mesh_a[key] != mesh_b[key]:
            out.append(f"the mesh has {mesh_b[key]} {what} instead of {mesh_a[key]}")
    if not out and mesh_a["sha256"] != mesh_b["sha256"]:
        out.append("the mesh has the same sizes but other node ids, element ids, types or connectivity")
    return out


_UNITS = {"pressure": "faces", "centrifugal": "elements", "gravity": "elements"}


def _pattern_difference(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first difference of one pattern's signatures, in words (None when equal)."""
    unit = _UNITS.get(a["kind"], "nodes")
    if a["kind"] != b["kind"]:
        return f"pattern {name!r} is a {b['kind']} instead of a {a['kind']}"
    if a["components"] != b["components"]:
        return f"pattern {name!r} acts on components {b['components']} instead of {a['components']}"
    if a["size"] != b["size"]:
        return f"pattern {name!r} has {b['size']} {unit} instead of {a['size']}"
    if a.get("geometry") != b.get("geometry"):
        what = "direction" if a["kind"] == "gravity" else "axis"
        return f"pattern {name!r} has another {what}: {_geometry_text(b)} instead of {_geometry_text(a)}"
    if a.get("density") != b.get("density"):
        return (f"pattern {name!r} has density {b.get('density')} instead of {a.get('density')} (the density is "
                "part of the model's load vector; omega^2 or g may change)")
    if a["sha256"] != b["sha256"]:
        return f"pattern {name!r} has other {unit} (same count, {a['size']})"
    return None


def _geometry_text(pattern: Mapping[str, Any]) -> str:
    geometry = pattern.get("geometry") or {}
    return ", ".join(f"{key} {value}" for key, value in geometry.items()) or "none"
