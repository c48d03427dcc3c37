"""Files a user writes by hand: the law (``--law``), the load patterns of runs without a deck
(``--loads``) and amplitude tables (``--amplitude NAME=file.csv``).

Law and load files are YAML (or JSON, a subset of it); ``romdask template law|loads`` prints a
commented starting file. A loads file names its targets by the mesh's sets (node sets, element
sets, element-face surfaces) or by solver ids, and is resolved on a run's mesh into the load
description of :func:`romdask.problem.describe_loads` (solver ids), the form a stored run keeps::

    version: 1
    dirichlet:
      - {name: fixed, node_set: BOTTOM, components: [x, y, z], value: 0.0}
      - name: top_displacement
        node_set: TOP
        components: [y]
        value: 0.008                      # x amplitude(t); no amplitude: applied in full
        amplitude: {times: [0, 2.5, 7.5, 10], values: [0, 1, -1, 0]}
    loads:
      - {name: pressure, kind: pressure, surface: LOAD, value: 16.0, amplitude: pressure.csv}
      - {name: tip, kind: nodal_force, node_set: TIP, component: z, value: 100.0}
    runs:                                 # optional, per run name: other values / amplitudes
      run-b: {top_displacement: {value: 0.004}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from romdask.fem.mesh import Mesh
from romdask.materials import LAWS, Material, law_from_json
from romdask.problem.loads import Amplitude
from romdask.problem.patterns import DESCRIPTION_VERSION, loads_from_description

__all__ = ["read_amplitude_csv", "read_law_file", "read_loads_file", "template"]

#: version of the hand-written loads file format (not of the description it becomes)
_FILE_VERSION = 1
_AXES = {"x": 0, "y": 1, "z": 2, "0": 0, "1": 1, "2": 2}
_TARGETS = {
    "dirichlet": ("node_set", "node_ids"),
    "nodal_force": ("node_set", "node_ids"),
    "pressure": ("surface", "faces", "element_set"),
}


class FileError(ValueError):
    """A user file that cannot be used: the message names the file and the entry."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")


def _load(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileError(path, f"cannot read the file ({exc.strerror})") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:  # json.JSONDecodeError is a ValueError
        raise FileError(path, f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None


def read_law_file(path: str | Path) -> Material:
    """The law of a YAML / JSON file ``{type: <law>, parameters: {...}}``.

    Raises
    ------
    ValueError
        Unreadable file, unknown law type (the known ones are listed), unknown or invalid
        parameters, naming the file.
    """
    try:
        return law_from_json(_load(path))
    except FileError:
        raise
    except ValueError as exc:
        raise FileError(path, str(exc)) from None


def read_amplitude_csv(path: str | Path) -> Amplitude:
    """A piecewise-linear table ``time, value`` per line (comma or blank separated; ``#``
    comments and one header line allowed); constant outside the table, as CalculiX.

    Raises
    ------
    ValueError
        Not two numeric columns, fewer than one row, times decreasing or non-finite values.
    """
    path = Path(path)
    rows: list[list[float]] = []
    header_allowed = True
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise FileError(path, f"cannot read the amplitude table ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].replace(",", " ").replace(";", " ").split()
        if not text:
            continue
        try:
            values = [float(t) for t in text]
        except ValueError:
            if header_allowed:  # the first non-comment line may name the columns
                header_allowed = False
                continue
            raise FileError(path, f"line {number}: expected 'time, value'; got {line.strip()!r}") from None
        header_allowed = False
        if len(values) != 2:
            raise FileError(path, f"line {number}: expected two columns 'time, value'; got {len(values)}")
        rows.append(values)
    if not rows:
        raise FileError(path, "no 'time, value' rows")
    table = np.array(rows)
    try:
        return Amplitude(table[:, 0], table[:, 1])
    except ValueError as exc:
        raise FileError(path, str(exc)) from None


def _lookup(sets: Mapping[str, np.ndarray], name: Any, kind: str, where: str, path: Path) -> np.ndarray:
    if not isinstance(name, str):
        raise FileError(path, f"{where}: {kind} must be a name; got {name!r}")
    for key in (name, name.upper()):
        if key in sets:
            return np.asarray(sets[key])
    known = ", ".join(sorted(sets)) or "none"
    raise FileError(path, f"{where}: the mesh has no {kind.replace('_', ' ')} {name!r} (it has: {known})")


def _axes(value: Any, where: str, path: Path) -> list[int]:
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        return [_AXES[str(v).strip().lower()] for v in items]
    except KeyError:
        raise FileError(path, f"{where}: components are x, y, z (or 0, 1, 2); got {value!r}") from None


def _amplitude(entry: Mapping, where: str, path: Path) -> dict[str, list[float]] | None:
    table = entry.get("amplitude")
    if table is None:
        return None
    if isinstance(table, str):
        amp = read_amplitude_csv(path.parent / table)
    elif isinstance(table, Mapping) and set(table) == {"times", "values"}:
        try:
            amp = Amplitude(table["times"], table["values"])
        except (TypeError, ValueError) as exc:
            raise FileError(path, f"{where}: amplitude: {exc}") from None
    else:
        raise FileError(path, f"{where}: amplitude is {{times: [...], values: [...]}} or a CSV file name; "
                              f"got {table!r}")
    return {"times": amp.times.tolist(), "values": amp.values.tolist()}


def _faces(entry: Mapping, mesh: Mesh, where: str, path: Path) -> list[list[int]]:
    """(element id, 0-based face) pairs of a pressure entry."""
    if "surface" in entry:
        pairs = _lookup(mesh.surfaces, entry["surface"], "surface", where, path).reshape(-1, 2)
        return [[int(mesh.element_ids[e]), int(f)] for e, f in pairs]
    if "element_set" in entry:
        face = str(entry.get("face", "")).upper().lstrip("SP")
        if not face.isdigit() or not 1 <= int(face) <= 6:
            raise FileError(path, f"{where}: element_set needs face: S1..S6; got {entry.get('face')!r}")
        elements = _lookup(mesh.element_sets, entry["element_set"], "element_set", where, path)
        return [[int(mesh.element_ids[e]), int(face) - 1] for e in elements]
    out = []
    for item in entry["faces"]:
        face = str(item[1]).upper().lstrip("SP") if len(item) == 2 else ""
        if not face.isdigit() or not 1 <= int(face) <= 6:
            raise FileError(path, f"{where}: faces are [element id, S1..S6] pairs; got {item!r}")
        out.append([int(item[0]), int(face) - 1])
    return out


def _entry(entry: Any, kind: str, mesh: Mesh, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise FileError(path, f"{where}: each pattern is a mapping with a non-empty name")
    targets = [k for k in _TARGETS[kind] if k in entry]
    if len(targets) != 1:
        raise FileError(path, f"{where}: give exactly one of {', '.join(_TARGETS[kind])}; got {targets or 'none'}")
    try:
        value = float(entry.get("value", 0.0 if kind == "dirichlet" else np.nan))
    except (TypeError, ValueError):
        raise FileError(path, f"{where}: value must be a number; got {entry.get('value')!r}") from None
    if not np.isfinite(value):
        raise FileError(path, f"{where}: needs a finite value (the load's magnitude)")
    out: dict[str, Any] = {"name": entry["name"], "value": value, "amplitude": _amplitude(entry, where, path)}
    if kind == "pressure":
        out.update(kind="pressure", faces=_faces(entry, mesh, where, path))
        return out
    if "node_set" in entry:
        ids = mesh.node_ids[_lookup(mesh.node_sets, entry["node_set"], "node_set", where, path)]
    else:
        ids = np.asarray(entry["node_ids"], np.int64)
    out["node_ids"] = [int(i) for i in ids]
    if kind == "dirichlet":
        out["components"] = _axes(entry.get("components", ["x", "y", "z"]), where, path)
    else:
        axes = _axes(entry.get("component"), where, path)
        if len(axes) != 1:
            raise FileError(path, f"{where}: a nodal force has one component (x, y or z)")
        out.update(kind="nodal_force", component=axes[0])
    return out


def _override(description: dict, overrides: Any, run: str, path: Path) -> None:
    if not isinstance(overrides, Mapping):
        raise FileError(path, f"runs: {run}: a mapping pattern name -> {{value, amplitude}}")
    entries = {e["name"]: e for e in (*description["dirichlet"], *description["loads"])}
    for name, change in overrides.items():
        where = f"runs: {run}: {name}"
        if name not in entries:
            raise FileError(path, f"{where}: no such pattern (patterns: {', '.join(entries)})")
        if not isinstance(change, Mapping) or not set(change) <= {"value", "amplitude"}:
            raise FileError(path, f"{where}: only value and amplitude can change per run")
        if "value" in change:
            entries[name]["value"] = float(change["value"])
        if "amplitude" in change:
            entries[name]["amplitude"] = _amplitude(change, where, path)


def read_loads_file(path: str | Path, mesh: Mesh, *, run: str | None = None) -> dict[str, Any]:
    """The load description (as :func:`~romdask.problem.describe_loads` writes) of a loads file,
    resolved on ``mesh``.

    Parameters
    ----------
    path : the YAML / JSON loads file (see the module docstring and ``romdask template loads``).
    mesh : the run's mesh (its sets and solver ids).
    run : the run's name: its entry under ``runs:`` (if any) changes values and amplitudes.

    Returns
    -------
    dict
        ``{"version": 2, "dirichlet": [...], "loads": [...]}`` (:func:`describe_loads`'s
        form, :data:`DESCRIPTION_VERSION`) in solver ids, checked by
        rebuilding the conditions on ``mesh``.

    Raises
    ------
    ValueError
        Naming the file and the entry: unknown sets (the mesh's are listed), missing or
        ambiguous targets, bad components, values or amplitudes, duplicate names.
    """
    path = Path(path)
    data = _load(path)
    if not isinstance(data, Mapping):
        raise FileError(path, "a loads file is a mapping with 'dirichlet' and / or 'loads' lists")
    unknown = sorted(set(data) - {"version", "dirichlet", "loads", "runs"})
    if unknown or data.get("version", _FILE_VERSION) != _FILE_VERSION:
        raise FileError(path, f"unknown keys {unknown} or version {data.get('version')!r}; "
                              f"expected version {_FILE_VERSION} with dirichlet, loads, runs")
    description: dict[str, Any] = {"version": DESCRIPTION_VERSION, "dirichlet": [], "loads": []}
    for i, entry in enumerate(data.get("dirichlet") or []):
        description["dirichlet"].append(_entry(entry, "dirichlet", mesh, f"dirichlet[{i}]", path))
    for i, entry in enumerate(data.get("loads") or []):
        kind = entry.get("kind") if isinstance(entry, Mapping) else None
        if kind not in ("pressure", "nodal_force"):
            raise FileError(path, f"loads[{i}]: kind must be 'pressure' or 'nodal_force'; got {kind!r}")
        description["loads"].append(_entry(entry, kind, mesh, f"loads[{i}]", path))
    runs = data.get("runs") or {}
    if run is not None and run in runs:
        _override(description, runs[run], run, path)
    try:
        loads_from_description(mesh, description)
    except ValueError as exc:
        raise FileError(path, str(exc)) from None
    return description


_LAW_TEMPLATE = """\
# romdask law file (YAML; JSON works too): the constitutive law of every element.
# Used by `romdask ingest --law` and `romdask reduce --law`. Units: those of the mesh and
# results (e.g. mm, N, MPa, s). One of the laws below; delete the others.
type: CalculixViscoplastic         # CalculiX *ELASTIC + *PLASTIC (+ *CREEP,LAW=NORTON in *VISCO)
parameters:
  young: 210000.0                  # Young's modulus
  poisson: 0.3
  plastic:                         # *PLASTIC rows: von Mises stress, equivalent plastic strain
    - [200.0, 0.0]
    - [300.0, 0.01]
  hardening: isotropic             # isotropic | kinematic | combined (*PLASTIC,HARDENING=)
  norton: [1.0e-9, 3.0, 0.0]       # *CREEP,LAW=NORTON A, n, m (p_dot = A q^n t^m); null: rate independent
  cyclic_hardening: null           # *CYCLIC HARDENING rows, for hardening: combined only
  # Temperature dependence (thermal problems only; CalculiX's rules: every constant at the
  # temperature of the end of the increment, linear between rows, constant outside):
  # elastic: [[210000.0, 0.3, 20.0], [180000.0, 0.31, 500.0]]   # *ELASTIC rows E, nu, T (young, poisson: null)
  # plastic: rows [stress, plastic strain, T], one curve per temperature, T increasing
  #   (curves of two temperatures are merged as CalculiX's plmix.f does)
  # norton: [[1.0e-9, 3.0, 0.0, 20.0], [5.0e-9, 3.0, 0.0, 500.0]]  # rows A, n, m, T (need elastic rows)
  # expansion: [[1.2e-5, 20.0], [1.4e-5, 500.0]]  # *EXPANSION rows alpha, T (secant), or one number
  # expansion_zero: 20.0           # *EXPANSION,ZERO=: eth = alpha(T)(T - zero) - alpha(T0)(T0 - zero)
# type: LinearElastic
# parameters: {young: 210000.0, poisson: 0.3}   # also elastic, expansion, expansion_zero as above
# type: Chaboche                   # Norton flow, Voce isotropic + Armstrong-Frederick kinematic hardening
# parameters: {young: 200000.0, poisson: 0.3, r0: 10.0, q: 0.0, b: 0.0, k: 300.0, n: 30.0, c: 1.0e5, d: 1.0e3}
#   thermal: table: rows [young, poisson, r0, q, b, k, n, c, d, T] (scalars left out), expansion, expansion_zero
"""

_LOADS_TEMPLATE = """\
# romdask loads file (YAML; JSON works too): the load patterns of runs that come without a
# solver deck (Z-set, XDMF / VTU series). Used by `romdask ingest --loads`.
# A pattern = a fixed spatial distribution x (value x amplitude(t)). The reduced model keeps one
# vector per pattern; predictions change values and amplitudes. Names must be unique.
# Targets: node_set / surface / element_set names of the mesh (case-insensitive), or solver ids
# (node_ids: [...], faces: [[element_id, S3], ...]). Components: x, y, z.
# Amplitudes: {times: [...], values: [...]} or a CSV file "time, value" next to this file;
# piecewise linear, constant outside the table; no amplitude: applied in full at all times.
version: 1
dirichlet:
  - name: fixed                    # homogeneous (value 0): clamps the nodes
    node_set: BOTTOM
    components: [x, y, z]
  - name: top_displacement         # prescribed displacement: the model gets a lifting
    node_set: TOP
    components: [y]
    value: 0.008
    amplitude: {times: [0.0, 2.5, 7.5, 10.0], values: [0.0, 1.0, -1.0, 0.0]}
loads:
  - name: pressure
    kind: pressure                 # positive pushes into the body (*DLOAD P)
    surface: LOAD                  # or element_set: NAME with face: S3
    value: 16.0
    amplitude: pressure.csv
  - name: tip_force
    kind: nodal_force              # on each node of the set (*CLOAD)
    node_set: TIP
    component: z
    value: 100.0
runs:                              # optional: per run name, other values / amplitudes
  run-b:
    top_displacement: {value: 0.004}
"""


def _mesh_comments(mesh: Mesh) -> str:
    lines = ["", "# The mesh's sets (name: size):"]
    for title, sets in (("node sets", mesh.node_sets), ("element sets", mesh.element_sets),
                        ("surfaces", mesh.surfaces)):
        items = ", ".join(f"{name}: {len(v)}" for name, v in sorted(sets.items())) or "none"
        lines.append(f"#   {title}: {items}")
    return "\n".join(lines) + "\n"


def template(kind: str, mesh: Mesh | None = None) -> str:
    """A commented starting file: ``kind`` "law" or "loads" (with ``mesh``, its sets are listed
    at the end of a loads template)."""
    if kind == "law":
        return _LAW_TEMPLATE
    if kind == "loads":
        return _LOADS_TEMPLATE + (_mesh_comments(mesh) if mesh is not None else "")
    raise ValueError(f"templates exist for 'law' and 'loads'; got {kind!r} (laws known: {sorted(LAWS)})")
