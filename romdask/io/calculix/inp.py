"""Mesh part of a CalculiX/Abaqus input deck (``.inp``).

Reads ``*NODE``, ``*ELEMENT``, ``*NSET``, ``*ELSET`` (with ``GENERATE``), element-face
``*SURFACE`` and ``*INCLUDE``; every other keyword (materials, steps, ...) is skipped. Names of
sets and surfaces are upper-cased, as CalculiX does (its names are case-insensitive).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from romdask.fem.mesh import ELEMENT_TYPES, CellBlock, Mesh
from romdask.io.run import ReaderError

__all__ = ["read_inp"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Line:
    path: Path
    number: int
    text: str

    def error(self, problem: str) -> ReaderError:
        return ReaderError(self.path, f"line {self.number}: {problem}")


def _lines(path: Path, stack: tuple[Path, ...] = (), comments: bool = False):
    """Non-comment, non-blank lines of ``path`` with ``*INCLUDE`` expanded (``comments``: keep
    the ``**`` comment lines too)."""
    resolved = path.resolve()
    if resolved in stack:
        raise ReaderError(path, f"*INCLUDE cycle: {' -> '.join(str(p) for p in stack + (resolved,))}")
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReaderError(path, f"cannot open the input deck ({exc.strerror})") from None
    with f:
        for number, text in enumerate(f, 1):
            text = text.strip()
            if not text or (text.startswith("**") and not comments):
                continue
            line = _Line(path, number, text)
            if text.startswith("*") and _keyword(text) == "*INCLUDE":
                name = _params(line).get("INPUT")
                if not name:
                    raise line.error("*INCLUDE without INPUT=")
                child = Path(name.strip().strip('"'))
                if not child.is_absolute():
                    child = path.parent / child
                if not child.exists():
                    raise line.error(f"*INCLUDE file {child} does not exist")
                yield from _lines(child, stack + (resolved,), comments)
            else:
                yield line


def _keyword(text: str) -> str:
    return " ".join(text.split(",", 1)[0].upper().split())


def _params(line: _Line) -> dict[str, str]:
    out = {}
    for item in line.text.split(",")[1:]:
        key, _, value = item.partition("=")
        key = " ".join(key.upper().split())
        if key:
            out[key] = value.strip()
    return out


def _tokens(line: _Line) -> list[str]:
    tokens = [t.strip() for t in line.text.split(",")]
    while tokens and not tokens[-1]:
        tokens.pop()
    return tokens


def _int(line: _Line, token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            raise line.error(f"cannot read {what} {token!r}") from None
        if value != int(value):
            raise line.error(f"{what} {token!r} is not an integer") from None
        return int(value)


def _float(line: _Line, token: str, what: str) -> float:
    try:
        value = float(token) if token else 0.0
    except ValueError:
        raise line.error(f"cannot read {what} {token!r}") from None
    if not np.isfinite(value):
        raise line.error(f"non-finite {what} {token!r}")
    return value



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

def read_inp(path: str | Path) -> Mesh:
    """Read the mesh of a CalculiX input deck.

    Parameters
    ----------
    path : the ``.inp`` file; ``*INCLUDE,INPUT=`` paths are relative to the including file.

    Returns
    -------
    Mesh
        Nodes in the order of the deck with their ids in ``node_ids``; one CellBlock per element
        type (C3D4, C3D10, C3D8, C3D20, C3D20R) in order of first appearance, element ids in
        ``CellBlock.ids``, connectivity in CalculiX node order; ``node_sets``/``element_sets``
        (0-based indices, names upper-cased, sorted, duplicates removed); ``surfaces`` from
        element-face ``*SURFACE`` cards ((global element, face - 1) pairs, in deck order).
        Node-based surfaces are skipped.

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
    node_ids: list[int] = []
    coords: list[tuple[float, float, float]] = []
    block_order: list[str] = []
    elements: dict[str, tuple[list[int], list[list[int]]]] = {}
    nsets: dict[str, list] = {}  # name -> list of int ids or ("set", name, line)
    elsets: dict[str, list] = {}
    surfaces: dict[str, list] = {}  # name -> list of (line, target, face)
    mode, card, params = None, None, {}
    pending: list[str] = []
    pending_line = None

    def add_set(sets, name, items):
        sets.setdefault(name.upper(), []).extend(items)

    for line in _lines(path):
        if line.text.startswith("*"):
            if pending:
                raise pending_line.error(f"element {pending[0]} has {len(pending) - 1} nodes; "
                                         f"{params['_n']} expected for {params['_type']}")
            keyword = _keyword(line.text)
            params = _params(line)
            card = line
            mode = None
            if keyword == "*NODE":
                mode = "node"
            elif keyword == "*ELEMENT":
                etype = params.get("TYPE", "").upper()
                if etype not in ELEMENT_TYPES:
                    raise line.error(f"unsupported element type {etype or '(no TYPE=)'}; "
                                     f"supported: {', '.join(ELEMENT_TYPES)}")
                params["_type"], params["_n"] = etype, ELEMENT_TYPES[etype][1]
                if etype not in elements:
                    elements[etype] = ([], [])
                    block_order.append(etype)
                mode = "element"
            elif keyword in ("*NSET", "*ELSET"):
                key = keyword[1:]
                if not params.get(key):
                    raise line.error(f"{keyword} without {key}=")
                mode = key.lower()
                add_set(nsets if mode == "nset" else elsets, params[key], [])
            elif keyword == "*SURFACE":
                if not params.get("NAME"):
                    raise line.error("*SURFACE without NAME=")
                if params.get("TYPE", "ELEMENT").upper() == "ELEMENT":
                    mode = "surface"
                    surfaces.setdefault(params["NAME"].upper(), [])
                else:
                    logger.debug("%s line %d: skipping node surface %s", line.path, line.number, params["NAME"])
            continue
        if mode is None:
            continue
        tokens = _tokens(line)
        if mode == "node":
            if len(tokens) < 2:
                raise line.error("node line needs an id and coordinates")
            nid = _int(line, tokens[0], "node id")
            xyz = [_float(line, t, "coordinate") for t in (tokens[1:4] + ["", ""])[:3]]
            node_ids.append(nid)
            coords.append(tuple(xyz))
            if params.get("NSET"):
                add_set(nsets, params["NSET"], [nid])
        elif mode == "element":
            if not pending:
                pending_line = line
            pending.extend(tokens)
            n = params["_n"]
            if len(pending) > n + 1:
                raise line.error(
                    f"element {pending[0]} has {len(pending) - 1} nodes; {n} expected for {params['_type']}"
                )
            if len(pending) == n + 1:
                ids, conn = elements[params["_type"]]
                eid = _int(pending_line, pending[0], "element id")
                ids.append(eid)
                conn.append([_int(line, t, "node id") for t in pending[1:]])
                if params.get("ELSET"):
                    add_set(elsets, params["ELSET"], [eid])
                pending = []
        elif mode in ("nset", "elset"):
            sets = nsets if mode == "nset" else elsets
            name = params[mode.upper()]
            if "GENERATE" in params:
                if len(tokens) not in (2, 3):
                    raise line.error("GENERATE needs first, last[, increment]")
                a, b = (_int(line, t, "id") for t in tokens[:2])
                step = _int(line, tokens[2], "increment") if len(tokens) == 3 else 1
                if step <= 0 or b < a:
                    raise line.error(f"bad GENERATE range {a}, {b}, {step}")
                add_set(sets, name, list(range(a, b + 1, step)))
            else:
                items = []
                for t in tokens:
                    try:
                        items.append(int(t))
                    except ValueError:
                        items.append(("set", t.upper(), line))
                add_set(sets, name, items)
        elif mode == "surface":
            if len(tokens) != 2 or not tokens[1].upper().startswith("S"):
                raise line.error("element surface lines are 'element or element set, S<face>'")
            face = _int(line, tokens[1][1:], "face number")
            if not 1 <= face <= 6:
                raise line.error(f"face number S{face} outside S1..S6")
            surfaces[params["NAME"].upper()].append((line, tokens[0], face - 1))
    if pending:
        raise pending_line.error(f"element {pending[0]} has {len(pending) - 1} nodes; "
                                 f"{params['_n']} expected for {params['_type']}")
    if not node_ids:
        raise ReaderError(path, "no *NODE lines in the deck")
    if not block_order:
        raise ReaderError(path, "no *ELEMENT lines with a supported type in the deck")

    node_id_arr = np.array(node_ids, np.int64)
    node_index = _id_index(path, node_id_arr, "node")

    blocks = []
    for etype in block_order:
        ids, conn = elements[etype]
        conn_arr = np.array(conn, np.int64).reshape(len(ids), ELEMENT_TYPES[etype][1])
        blocks.append(CellBlock(etype, node_index(conn_arr, f"{etype} connectivity"), np.array(ids, np.int64)))
    element_ids = np.concatenate([b.ids for b in blocks])
    element_index = _id_index(path, element_ids, "element")

    def resolve(sets, kind, name, seen=()):
        out = []
        for item in sets[name]:
            if isinstance(item, tuple):
                _, other, line = item
                if other not in sets:
                    raise line.error(f"{kind} {name} includes unknown set {other}")
                if other in seen + (name,):
                    raise line.error(f"{kind} {name} includes itself through {other}")
                out.extend(resolve(sets, kind, other, seen + (name,)))
            else:
                out.append(item)
        return out

    node_sets = {n: np.unique(node_index(resolve(nsets, "*NSET", n), f"node set {n}"))
                 for n in nsets}  # fmt: skip
    element_sets = {n: np.unique(element_index(resolve(elsets, "*ELSET", n), f"element set {n}"))
                    for n in elsets}  # fmt: skip
    faces = {}
    for name, rows in surfaces.items():
        pairs = []
        for line, target, face in rows:
            try:
                els = element_index([int(target)], f"surface {name}")
            except ValueError:
                if target.upper() not in element_sets:
                    raise line.error(f"surface {name} names unknown element set {target}") from None
                els = element_sets[target.upper()]
            pairs.extend((int(e), face) for e in els)
        faces[name] = np.array(pairs, np.int64).reshape(-1, 2)
    return Mesh(np.array(coords, np.float64), tuple(blocks), node_id_arr, node_sets, element_sets, faces)
