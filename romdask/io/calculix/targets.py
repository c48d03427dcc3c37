"""What the data lines of ``*BOUNDARY``, ``*CLOAD`` and ``*DLOAD`` / ``*DSLOAD`` act on.

Each data line becomes a :class:`LoadRow`: the target as written (a set or surface name, or an
id), the value, and the keys it sets: ``("dirichlet", node, component)``,
``("cload", node, component)``, ``("dload", element, face)`` with 0-based romdask indices, or
``("body", element set or id, "CENTRIF" | "GRAV", geometry)`` for body forces.
Names are resolved as CalculiX does: for pressures an element set first, then an element-face
``*SURFACE`` of that name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.cards import Card, DeckLine, parse_float, parse_int

__all__ = ["LoadRow", "body_elements", "load_rows", "node_targets"]

#: body-force labels of ``*DLOAD`` romdask reads, and their number of values after the label
BODY_LABELS = {"CENTRIF": 7, "GRAV": 4}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadRow:
    """One data line of a load card: target name (upper-case) or id, value, keys it sets."""

    line: DeckLine
    target: str
    value: float
    keys: list[tuple]


class _Ids:
    """Solver id -> 0-based index, with one sort of the id table for all the lines of a deck."""

    def __init__(self, ids: np.ndarray, what: str):
        self.ids, self.what = np.asarray(ids), what
        self.order = np.argsort(self.ids, kind="stable")

    def index(self, line: DeckLine, number: int) -> int:
        pos = int(np.searchsorted(self.ids, number, sorter=self.order))
        if pos >= len(self.ids) or self.ids[self.order[pos]] != number:
            raise line.error(f"unknown {self.what} id {number}")
        return int(self.order[pos])


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _nodes(line: DeckLine, target: str, mesh: Mesh, ids: _Ids) -> np.ndarray:
    number = _integer(target)
    if number is not None:
        return np.array([ids.index(line, number)])
    if target not in mesh.node_sets:
        raise line.error(f"unknown node set {target!r} (nor a node id)")
    return np.asarray(mesh.node_sets[target])


def _pressure_faces(line: DeckLine, target: str, label: str, mesh: Mesh, ids: _Ids) -> np.ndarray:
    """(element, face) pairs of ``target, P<n>`` (element or element set) or ``surface, P``."""
    face = int(label[1:]) - 1 if label[1:].isdigit() else None
    number = _integer(target)
    if number is not None or target in mesh.element_sets:
        if face is None or not 0 <= face <= 5:
            raise line.error(f"pressure label {label!r} on element {'id' if number is not None else 'set'} "
                             f"{target}: use P1..P6 (the face), or a *SURFACE name with label P")
        elements = [ids.index(line, number)] if number is not None else mesh.element_sets[target]
        return np.column_stack([np.asarray(elements, np.int64), np.full(len(elements), face)])
    if target in mesh.surfaces:
        if face is not None:
            logger.warning("%s line %d: label %s on surface %s: the surface's faces are used (as CalculiX does)",
                           line.path, line.number, label, target)
        return np.asarray(mesh.surfaces[target]).reshape(-1, 2)
    raise line.error(f"{target!r} is neither an element set nor an element-face *SURFACE")


def _lookups(mesh: Mesh, lookups: dict | None) -> dict:
    lookups = {} if lookups is None else lookups
    if "node" not in lookups:
        lookups["node"] = _Ids(mesh.node_ids, "node")
        lookups["element"] = _Ids(mesh.element_ids, "element")
    return lookups


def node_targets(line: DeckLine, target: str, mesh: Mesh, lookups: dict | None = None) -> np.ndarray:
    """0-based nodes of a node id or node set name (``lookups`` as in :func:`load_rows`)."""
    return _nodes(line, target.upper(), mesh, _lookups(mesh, lookups)["node"])


def body_elements(line: DeckLine, target: str, mesh: Mesh, lookups: dict | None = None) -> np.ndarray:
    """0-based elements of an element id or element set name."""
    return _elements(line, target.upper(), mesh, _lookups(mesh, lookups)["element"])


def _elements(line: DeckLine, target: str, mesh: Mesh, ids: _Ids) -> np.ndarray:
    number = _integer(target)
    if number is not None:
        return np.array([ids.index(line, number)])
    if target not in mesh.element_sets:
        raise line.error(f"unknown element set {target!r} (nor an element id)")
    return np.unique(np.asarray(mesh.element_sets[target], np.int64))


def _body(line: DeckLine, items: list[str], label: str, mesh: Mesh, elements: _Ids) -> LoadRow:
    """``elset, CENTRIF, omega^2, x0, y0, z0, ax, ay, az`` or ``elset, GRAV, g, dx, dy, dz``: one
    key per element set (or element id) and geometry, as CalculiX keys body loads (``bodyadd.f``)."""
    n = BODY_LABELS[label]
    if len(items) < 2 + n:
        form = "omega^2, x0, y0, z0, ax, ay, az" if label == "CENTRIF" else "g, dx, dy, dz"
        raise line.error(f"*DLOAD {label} lines are 'element set, {label}, {form}'")
    numbers = [parse_float(line, t, f"{label} value") for t in items[2 : 2 + n]]
    vector = np.array(numbers[-3:])
    if not np.linalg.norm(vector):
        raise line.error(f"*DLOAD {label}: the {'axis' if label == 'CENTRIF' else 'direction'} is zero")
    vector = tuple((vector / np.linalg.norm(vector)).tolist())  # CalculiX normalizes it
    geometry = (tuple(numbers[1:4]), vector) if label == "CENTRIF" else (vector,)
    target = items[0].upper()
    _elements(line, target, mesh, elements)  # checks the target
    return LoadRow(line, target, numbers[0], [("body", target, label, geometry)])


def _dload(line: DeckLine, items: list[str], mesh: Mesh, elements: _Ids) -> LoadRow:
    label = items[1].upper() if len(items) > 1 else ""
    if label in BODY_LABELS:
        return _body(line, items, label, mesh, elements)
    if len(items) < 3 or not label.startswith("P") or not (label == "P" or label[1:].isdigit()):
        raise line.error(f"pressure lines are 'surface, P, value' or 'element or element set, P<face>, value'; "
                         f"got label {label or '(none)'} (only pressures P, P1..P6 and body forces CENTRIF, GRAV "
                         "are supported)")
    target = items[0].upper()
    faces = _pressure_faces(line, target, label, mesh, elements)
    keys = [("dload", int(e), int(f)) for e, f in faces]
    return LoadRow(line, target, parse_float(line, items[2], "pressure"), keys)


def _cload(line: DeckLine, items: list[str], mesh: Mesh, nodes: _Ids) -> LoadRow:
    if len(items) < 3:
        raise line.error("*CLOAD lines are 'node or node set, dof, value'")
    dof = parse_int(line, items[1], "dof")
    if dof not in (1, 2, 3):
        raise line.error(f"*CLOAD dof {dof}: only forces 1..3 are supported")
    target = items[0].upper()
    keys = [("cload", int(n), dof - 1) for n in _nodes(line, target, mesh, nodes)]
    return LoadRow(line, target, parse_float(line, items[2], "force"), keys)


def _boundary(line: DeckLine, items: list[str], mesh: Mesh, nodes: _Ids) -> LoadRow:
    if len(items) < 2:
        raise line.error("*BOUNDARY lines are 'node or node set, first dof[, last dof[, value]]'")
    first = parse_int(line, items[1], "dof")
    last = parse_int(line, items[2], "dof") if len(items) > 2 and items[2] else first
    if not 1 <= first <= last <= 3:
        raise line.error(f"*BOUNDARY dofs {first}..{last}: only displacements 1..3 are supported")
    value = parse_float(line, items[3], "prescribed value") if len(items) > 3 else 0.0
    target = items[0].upper()
    keys = [("dirichlet", int(n), c) for n in _nodes(line, target, mesh, nodes) for c in range(first - 1, last)]
    return LoadRow(line, target, value, keys)


def load_rows(card: Card, mesh: Mesh, lookups: dict[str, object] | None = None) -> list[LoadRow]:
    """The rows of a ``*BOUNDARY``, ``*CLOAD``, ``*DLOAD`` or ``*DSLOAD`` card.

    Parameters
    ----------
    card : the card (with its data lines)
    mesh : the deck's mesh (:func:`romdask.io.calculix.read_inp`)
    lookups : a dict reused between calls (id tables sorted once per deck)

    Raises
    ------
    ReaderError
        Unknown ids, sets or surfaces; dofs other than 1..3; load labels other than pressures;
        unreadable numbers (file and line named).
    """
    lookups = _lookups(mesh, lookups)
    parse = {"*BOUNDARY": (_boundary, "node"), "*CLOAD": (_cload, "node"),
             "*DLOAD": (_dload, "element"), "*DSLOAD": (_dload, "element")}[card.keyword]  # fmt: skip
    return [parse[0](line, items, mesh, lookups[parse[1]]) for line, items in card.rows]
