"""The materials of a CalculiX deck as romdask laws, and which elements have which.

``*MATERIAL`` with isotropic ``*ELASTIC`` (E, nu), optionally ``*PLASTIC``
(HARDENING=ISOTROPIC|KINEMATIC|COMBINED, a table of stress vs equivalent plastic strain),
``*CYCLIC HARDENING``, ``*CREEP,LAW=NORTON`` (A, n, m) and ``*EXPANSION[,ZERO=]``, each
with optional temperature columns: :class:`~romdask.materials.LinearElastic`
or :class:`~romdask.materials.CalculixViscoplastic` (CalculiX's own small-strain law,
``incplas_lin.f``). ``*SOLID SECTION`` assigns them to element sets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.cards import Card, DeckLine, parse_float
from romdask.io.run import ReaderError

__all__ = ["MATERIAL_KEYWORDS", "deck_laws", "material_density", "section_material"]

logger = logging.getLogger(__name__)

#: the cards of a *MATERIAL romdask reads
MATERIAL_KEYWORDS = ("*ELASTIC", "*PLASTIC", "*CYCLIC HARDENING", "*CREEP", "*EXPANSION", "*DENSITY")


def _rows(card: Card, names: tuple[str, ...], n_required: int) -> list[tuple[DeckLine, list[float], bool]]:
    """(line, values, has temperature) of each data line: the ``names`` columns (blank = 0, as
    CalculiX reads them) and the temperature after them (0 when absent)."""
    out = []
    for line, items in card.rows:
        if len(items) < n_required:
            raise line.error(f"{card.keyword} rows are '{', '.join(names)}[, temperature]'")
        padded = (items + [""] * len(names))[: len(names) + 1]
        values = [parse_float(line, t, what) for t, what in zip(padded, names + ("temperature",))]
        out.append((line, values, len(items) > len(names) and items[len(names)] != ""))
    if not out:
        raise card.line.error(f"{card.keyword} without data lines")
    return out


def _increasing(rows, what: str) -> None:
    """Temperatures strictly increasing row after row (ident2.f assumes it)."""
    for (_, a, _), (line, b, _) in pairwise(rows):
        if b[-1] <= a[-1]:
            raise line.error(f"{what}: temperature {b[-1]:g} after {a[-1]:g}; give the rows in increasing temperature")


def _table(card: Card, what: str) -> list[tuple[float, ...]]:
    """Rows (stress, plastic strain) of one curve, or (stress, plastic strain, T) of several
    temperatures (rows of one temperature together, as plastics.f groups them)."""
    rows = _rows(card, ("stress", "plastic strain"), 2)
    if not any(has_t for _, _, has_t in rows) or len({v[2] for _, v, _ in rows}) == 1:
        return [(v[0], v[1]) for _, v, _ in rows]
    seen: list[float] = []
    previous = None
    for line, (_, eps, temp), _ in rows:
        if not seen or temp != seen[-1]:
            if seen and temp < seen[-1] or temp in seen:
                raise line.error(f"{what}: temperature {temp:g} after {seen[-1]:g}; give the curves in increasing "
                                 "temperature, the rows of one temperature together")
            seen.append(temp)
        elif eps <= previous:
            raise line.error(f"{what}: plastic strain {eps:g} after {previous:g} at temperature {temp:g}; "
                             "plastic strains must increase along a curve")
        previous = eps
    return [tuple(v) for _, v, _ in rows]


def _material_cards(model: Sequence[Card]) -> dict[str, dict[str, Card]]:
    cards: dict[str, dict[str, Card]] = {}
    current = None
    for card in model:
        if card.keyword == "*MATERIAL":
            current = card.params.get("NAME", "")
            if not current:
                raise card.line.error("*MATERIAL without NAME=")
            cards[current] = {"*MATERIAL": card}
        elif card.keyword in MATERIAL_KEYWORDS:
            if current is None:
                raise card.line.error(f"{card.keyword} outside a *MATERIAL")
            cards[current][card.keyword] = card
        else:
            current = None
    return cards


def _elastic(name: str, mat: dict[str, Card]) -> dict:
    """``young, poisson`` of one row, or ``elastic`` rows (E, nu, T) of several."""
    el = mat.get("*ELASTIC")
    if el is None:
        raise mat["*MATERIAL"].line.error(f"material {name}: *ELASTIC (E, nu[, temperature]) is required")
    rows = _rows(el, ("Young's modulus", "Poisson's ratio"), 2)
    if len(rows) == 1:  # one row: its temperature matters only to the *CREEP rows (deck_laws)
        return {"young": rows[0][1][0], "poisson": rows[0][1][1], "temperature": rows[0][1][2]}
    _increasing(rows, f"material {name}: *ELASTIC")
    return {"elastic": [tuple(v) for _, v, _ in rows]}


def _norton(name: str, mat: dict[str, Card], visco: bool):
    if "*CREEP" not in mat:
        return None
    rows = _rows(mat["*CREEP"], ("Norton A", "Norton n", "Norton m"), 2)
    if not visco:
        head = mat["*MATERIAL"].line
        logger.info("%s: material %s: *CREEP is inactive in *STATIC steps (dropped)", head.path, name)
        return None
    if len(rows) == 1:
        return tuple(rows[0][1][:3])
    _increasing(rows, f"material {name}: *CREEP")
    return [tuple(v) for _, v, _ in rows]


def _expansion(name: str, mat: dict[str, Card]) -> dict:
    card = mat.get("*EXPANSION")
    if card is None:
        return {}
    if card.params.get("TYPE", "ISO") != "ISO":
        raise card.line.error(f"material {name}: only isotropic *EXPANSION (TYPE=ISO) is supported")
    zero = parse_float(card.line, card.params.get("ZERO", ""), "*EXPANSION ZERO=")
    rows = _rows(card, ("expansion coefficient",), 1)
    _increasing(rows, f"material {name}: *EXPANSION")
    return {"expansion": [tuple(v) for _, v, _ in rows], "expansion_zero": zero}


def material_density(model: Sequence[Card]) -> dict[str, float | None]:
    """Material name (upper-case) -> its ``*DENSITY`` (None without the card).

    Raises
    ------
    ReaderError
        A temperature-dependent density (several rows) or an unreadable value (file and line).
    """
    out: dict[str, float | None] = {}
    for name, mat in _material_cards(model).items():
        card = mat.get("*DENSITY")
        if card is None:
            out[name] = None
            continue
        rows = _rows(card, ("density",), 1)
        if len(rows) > 1:
            raise rows[1][0].error(f"material {name}: temperature-dependent *DENSITY ({len(rows)} rows) is not "
                                   "supported; give one density")
        out[name] = rows[0][1][0]
    return out


def deck_laws(model: Sequence[Card], visco: bool) -> dict[str, object]:
    """Material name (upper-case) -> law.

    Parameters
    ----------
    model : the cards before the first step
    visco : the steps are ``*VISCO`` (else ``*STATIC``: creep is off, as in CalculiX)

    Notes
    -----
    Temperature columns of ``*ELASTIC``, ``*PLASTIC``, ``*CYCLIC HARDENING`` and ``*CREEP``
    and ``*EXPANSION[,ZERO=]`` become the laws' tables (thermal laws); a card of one row is
    temperature independent (its temperature, if any, is dropped: CalculiX uses that row at
    every temperature).

    Raises
    ------
    ReaderError
        Missing ``*ELASTIC``, malformed tables (temperatures out of order, decreasing plastic
        strains), parameters the law rejects (file and line named).
    """
    from romdask.materials import CalculixViscoplastic, LinearElastic
    from romdask.materials.calculix import _elastic_creep_rows

    laws = {}
    for name, mat in _material_cards(model).items():
        elastic = _elastic(name, mat) | _expansion(name, mat)
        norton = _norton(name, mat, visco)
        t_el = elastic.pop("temperature", None)
        if isinstance(norton, list) and t_el is not None:  # creeps.f: creep at the one *ELASTIC row's T
            norton = tuple(_elastic_creep_rows(1.0, 0.0, [(1.0, 0.0, t_el)], norton)[0, 3:])
            logger.info("%s: material %s: *CREEP rows interpolated at the *ELASTIC temperature %g (as CalculiX)",
                        mat["*MATERIAL"].line.path, name, t_el)
        try:
            if "*PLASTIC" not in mat and norton is None:
                laws[name] = LinearElastic(**elastic)
                continue
            hardening, plastic, cyclic = "isotropic", None, None
            if "*PLASTIC" in mat:
                hardening = mat["*PLASTIC"].params.get("HARDENING", "ISOTROPIC").lower()
                plastic = _table(mat["*PLASTIC"], f"material {name}: *PLASTIC")
            if "*CYCLIC HARDENING" in mat:
                cyclic = _table(mat["*CYCLIC HARDENING"], f"material {name}: *CYCLIC HARDENING")
            laws[name] = CalculixViscoplastic(plastic=plastic, hardening=hardening, norton=norton,
                                              cyclic_hardening=cyclic, **elastic)  # fmt: skip
        except ValueError as exc:
            raise mat["*MATERIAL"].line.error(f"material {name}: {exc}") from None
    return laws


def section_material(path: Path, mesh: Mesh, model: Sequence[Card], laws: dict):
    """The law of every element: one law, or element-set name -> law (``*SOLID SECTION``)."""
    sections = [c for c in model if c.keyword == "*SOLID SECTION"]
    if not sections:
        raise ReaderError(path, "no *SOLID SECTION: which material do the elements have?")
    out = {}
    for card in sections:
        elset = card.params.get("ELSET", "")
        mat = card.params.get("MATERIAL", "")
        if elset not in mesh.element_sets:
            raise card.line.error(f"*SOLID SECTION names unknown element set {elset or '(none)'}")
        if mat not in laws:
            raise card.line.error(f"*SOLID SECTION names unknown material {mat or '(none)'}")
        out[elset] = laws[mat]
    if len(out) == 1:
        ((elset, law),) = out.items()
        if len(np.unique(mesh.element_sets[elset])) == mesh.n_elements:
            return law
    return out
