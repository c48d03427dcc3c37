"""Mesh part of a CalculiX/Abaqus input deck (``.inp``).

Reads ``*NODE``, ``*ELEMENT``, ``*NSET``, ``*ELSET`` (with ``GENERATE``), element-face
``*SURFACE`` and ``*INCLUDE``; every other keyword (materials, steps, ...) is skipped. Lines are
read as CalculiX reads them (:mod:`romdask.io.calculix.cards`): any case, blanks anywhere,
``**`` comments anywhere; names of sets and surfaces are upper-case, as in CalculiX.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from romdask.fem.mesh import ELEMENT_TYPES, CellBlock, Mesh
from romdask.io.calculix.cards import DeckLine, deck_lines, keyword, parameters, parse_float, parse_int, tokens
from romdask.io.run import ReaderError

__all__ = ["MESH_KEYWORDS", "read_inp"]

#: the keywords read_inp reads (with their options)
MESH_KEYWORDS = {"*NODE": {"NSET"}, "*ELEMENT": {"TYPE", "ELSET"}, "*NSET": {"NSET", "GENERATE"},
                 "*ELSET": {"ELSET", "GENERATE"}, "*SURFACE": {"NAME", "TYPE"}}  # fmt: skip

logger = logging.getLogger(__name__)


def _id_index(path, ids_table: np.ndarray, what: str):
    """Check ``ids_table`` has no duplicates; return ``index(ids, where)`` mapping solver ids to
    0-based positions, a ReaderError naming ``where`` for unknown ids."""
    uniq, counts = np.unique(ids_table, return_counts=True)
    if np.any(counts > 1):
        raise ReaderError(path, f"duplicate {what} ids: {uniq[counts > 1][:10].tolist()}")
    order = np.argsort(ids_table)

    def index(ids, where: str) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        pos = np.searchsorted(ids_table, ids, sorter=order).clip(0, len(ids_table) - 1)
        idx = order[pos]
        bad = ids_table[idx] != ids
        if np.any(bad):
            raise ReaderError(path, f"{where} refers to unknown {what} ids {np.unique(ids[bad])[:10].tolist()}")
        return idx

    return index

class _MeshCards:
    """What the mesh cards of a deck hold, line by line (solver ids, names upper-case)."""

    def __init__(self) -> None:
        self.node_ids: list[int] = []
        self.coords: list[list[float]] = []
        self.block_order: list[str] = []
        self.elements: dict[str, tuple[list[int], list[list[int]]]] = {}
        self.nsets: dict[str, list] = {}  # name -> int ids or ("set", name, line) items
        self.elsets: dict[str, list] = {}
        self.surfaces: dict[str, list] = {}  # name -> (line, target, 0-based face) items
        self.pending: list[str] = []  # items of an element spread over several lines
        self.pending_line: DeckLine | None = None
        self.mode: str | None = None
        self.params: dict[str, str] = {}

    def start(self, line: DeckLine) -> None:
        """A keyword line: what the next data lines are."""
        self.finish_element()
        key = keyword(line.text)
        self.params = params = parameters(line)
        self.mode = None
        if key == "*NODE":
            self.mode = "node"
        elif key == "*ELEMENT":
            etype = params.get("TYPE", "")
            if etype not in ELEMENT_TYPES:
                raise line.error(f"unsupported element type {etype or '(no TYPE=)'}; "
                                 f"supported: {', '.join(ELEMENT_TYPES)}")
            if etype not in self.elements:
                self.elements[etype] = ([], [])
                self.block_order.append(etype)
            self.mode = "element"
        elif key in ("*NSET", "*ELSET"):
            if not params.get(key[1:]):
                raise line.error(f"{key} without {key[1:]}=")
            self.mode = key[1:].lower()
            (self.nsets if self.mode == "nset" else self.elsets).setdefault(params[key[1:]], [])
        elif key == "*SURFACE":
            if not params.get("NAME"):
                raise line.error("*SURFACE without NAME=")
            if params.get("TYPE", "ELEMENT") == "ELEMENT":
                self.mode = "surface"
                self.surfaces.setdefault(params["NAME"], [])
            else:
                logger.debug("%s line %d: skipping node surface %s", line.path, line.number, params["NAME"])

    def data(self, line: DeckLine) -> None:
        if self.mode is not None:
            getattr(self, "_" + self.mode)(line, tokens(line))

    def _node(self, line: DeckLine, items: list[str]) -> None:
        if len(items) < 2:
            raise line.error("node line needs an id and coordinates")
        nid = parse_int(line, items[0], "node id")
        self.node_ids.append(nid)
        self.coords.append([parse_float(line, t, "coordinate") for t in (items[1:4] + ["", ""])[:3]])
        if self.params.get("NSET"):
            self.nsets.setdefault(self.params["NSET"], []).append(nid)

    def _element(self, line: DeckLine, items: list[str]) -> None:
        """Element lines: id and nodes, continued on the next lines until the type's node count."""
        etype = self.params["TYPE"]
        n = ELEMENT_TYPES[etype][1]
        if not self.pending:
            self.pending_line = line
        self.pending.extend(items)
        if len(self.pending) > n + 1:
            raise line.error(f"element {self.pending[0]} has {len(self.pending) - 1} nodes; {n} expected for {etype}")
        if len(self.pending) == n + 1:
            ids, conn = self.elements[etype]
            eid = parse_int(self.pending_line, self.pending[0], "element id")
            ids.append(eid)
            conn.append([parse_int(line, t, "node id") for t in self.pending[1:]])
            if self.params.get("ELSET"):
                self.elsets.setdefault(self.params["ELSET"], []).append(eid)
            self.pending = []

    def finish_element(self) -> None:
        if self.pending:
            etype = self.params["TYPE"]
            raise self.pending_line.error(f"element {self.pending[0]} has {len(self.pending) - 1} nodes; "
                                          f"{ELEMENT_TYPES[etype][1]} expected for {etype}")

    def _nset(self, line: DeckLine, items: list[str]) -> None:
        self._set_line(line, items, self.nsets, self.params["NSET"])

    def _elset(self, line: DeckLine, items: list[str]) -> None:
        self._set_line(line, items, self.elsets, self.params["ELSET"])

    def _set_line(self, line: DeckLine, items: list[str], sets: dict, name: str) -> None:
        if "GENERATE" in self.params:
            if len(items) not in (2, 3):
                raise line.error("GENERATE needs first, last[, increment]")
            a, b = (parse_int(line, t, "id") for t in items[:2])
            step = parse_int(line, items[2], "increment") if len(items) == 3 else 1
            if step <= 0 or b < a:
                raise line.error(f"bad GENERATE range {a}, {b}, {step}")
            sets[name].extend(range(a, b + 1, step))
            return
        for t in items:
            if not t:
                continue
            try:
                sets[name].append(int(t))
            except ValueError:
                sets[name].append(("set", t.upper(), line))

    def _surface(self, line: DeckLine, items: list[str]) -> None:
        if len(items) != 2 or not items[1].upper().startswith("S"):
            raise line.error("element surface lines are 'element or element set, S<face>'")
        face = parse_int(line, items[1][1:], "face number")
        if not 1 <= face <= 6:
            raise line.error(f"face number S{face} outside S1..S6")
        self.surfaces[self.params["NAME"]].append((line, items[0].upper(), face - 1))


def _resolve(sets: dict, kind: str, name: str, seen: tuple = ()) -> list[int]:
    """Ids of set ``name``, the sets it includes expanded."""
    out = []
    for item in sets[name]:
        if isinstance(item, tuple):
            _, other, line = item
            if other not in sets:
                raise line.error(f"{kind} {name} includes unknown set {other}")
            if other in seen + (name,):
                raise line.error(f"{kind} {name} includes itself through {other}")
            out.extend(_resolve(sets, kind, other, seen + (name,)))
        else:
            out.append(item)
    return out


def _faces(cards: _MeshCards, element_index, element_sets: dict) -> dict[str, np.ndarray]:
    faces = {}
    for name, rows in cards.surfaces.items():
        pairs = []
        for line, target, face in rows:
            try:
                els = element_index([int(target)], f"surface {name}")
            except ValueError:
                if target not in element_sets:
                    raise line.error(f"surface {name} names unknown element set {target}") from None
                els = element_sets[target]
            pairs.extend((int(e), face) for e in els)
        faces[name] = np.array(pairs, np.int64).reshape(-1, 2)
    return faces


def _mesh(path: Path, cards: _MeshCards) -> Mesh:
    if not cards.node_ids:
        raise ReaderError(path, "no *NODE lines in the deck")
    if not cards.block_order:
        raise ReaderError(path, "no *ELEMENT lines with a supported type in the deck")
    node_id_arr = np.array(cards.node_ids, np.int64)
    node_index = _id_index(path, node_id_arr, "node")
    blocks = []
    for etype in cards.block_order:
        ids, conn = cards.elements[etype]
        conn_arr = np.array(conn, np.int64).reshape(len(ids), ELEMENT_TYPES[etype][1])
        blocks.append(CellBlock(etype, node_index(conn_arr, f"{etype} connectivity"), np.array(ids, np.int64)))
    element_index = _id_index(path, np.concatenate([b.ids for b in blocks]), "element")
    node_sets = {n: np.unique(node_index(_resolve(cards.nsets, "*NSET", n), f"node set {n}"))
                 for n in cards.nsets}  # fmt: skip
    element_sets = {n: np.unique(element_index(_resolve(cards.elsets, "*ELSET", n), f"element set {n}"))
                    for n in cards.elsets}  # fmt: skip
    faces = _faces(cards, element_index, element_sets)
    return Mesh(np.array(cards.coords, np.float64), tuple(blocks), node_id_arr, node_sets, element_sets, faces)


def read_inp(path: str | Path) -> Mesh:
    """Read the mesh of a CalculiX input deck.

    Parameters
    ----------
    path : the ``.inp`` file; ``*INCLUDE,INPUT=`` paths are relative to its folder (where
        CalculiX runs) or else to the including file.

    Returns
    -------
    Mesh
        Nodes in the order of the deck with their ids in ``node_ids``; one CellBlock per element
        type (C3D4, C3D10, C3D8, C3D20, C3D20R) in order of first appearance, element ids in
        ``CellBlock.ids``, connectivity in CalculiX node order (an element's nodes may run over
        several lines); ``node_sets``/``element_sets`` (0-based indices, names upper-cased,
        sorted, duplicates removed); ``surfaces`` from element-face ``*SURFACE`` cards
        ((global element, face - 1) pairs, in deck order). Node-based surfaces are skipped.

    Raises
    ------
    ReaderError
        Unknown element type, unreadable numbers, duplicate ids, sets naming unknown ids or
        sets, with the file and line.

    Notes
    -----
    A pure-Python line parser: about 1 s per 10^5 node or element lines. The whole mesh is held
    in memory (it is needed as a whole anyway).
    """
    path = Path(path)
    cards = _MeshCards()
    for line in deck_lines(path):
        if line.is_keyword:
            cards.start(line)
        else:
            cards.data(line)
    cards.finish_element()
    return _mesh(path, cards)
