"""The materials of a CalculiX deck as romdask laws, and which elements have which.

``*MATERIAL`` with isotropic ``*ELASTIC`` (E, nu), optionally ``*PLASTIC``
(HARDENING=ISOTROPIC|KINEMATIC|COMBINED, a table of stress vs equivalent plastic strain),
``*CYCLIC HARDENING`` and ``*CREEP,LAW=NORTON`` (A, n, m): :class:`~romdask.materials.LinearElastic`
or :class:`~romdask.materials.CalculixViscoplastic` (CalculiX's own small-strain law,
``incplas_lin.f``). ``*SOLID SECTION`` assigns them to element sets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.cards import Card, parse_float
from romdask.io.run import ReaderError

__all__ = ["MATERIAL_KEYWORDS", "deck_laws", "section_material"]

logger = logging.getLogger(__name__)

#: the cards of a *MATERIAL romdask reads
MATERIAL_KEYWORDS = ("*ELASTIC", "*PLASTIC", "*CYCLIC HARDENING", "*CREEP")


def _table(card: Card, what: str) -> list[tuple[float, float]]:
    rows = []
    temps = set()
    for line, items in card.rows:
        if len(items) < 2:
            raise line.error(f"{what} rows are 'stress, plastic strain[, temperature]'")
        rows.append((parse_float(line, items[0], "stress"), parse_float(line, items[1], "plastic strain")))
        temps.add(items[2] if len(items) > 2 else "")
    if len(temps) > 1:
        raise card.line.error(f"temperature-dependent {what} tables are not supported")
    return rows


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


def _elastic(name: str, mat: dict[str, Card]) -> tuple[float, float]:
    el = mat.get("*ELASTIC")
    if el is None or len(el.rows) != 1 or len(el.rows[0][1]) < 2:
        raise mat["*MATERIAL"].line.error(f"material {name}: one *ELASTIC line 'E, nu' is required "
                                          "(no temperature tables)")
    line, items = el.rows[0]
    return parse_float(line, items[0], "Young's modulus"), parse_float(line, items[1], "Poisson's ratio")


def _norton(name: str, mat: dict[str, Card], visco: bool):
    if "*CREEP" not in mat:
        return None
    rows = mat["*CREEP"].rows
    if len(rows) != 1 or len(rows[0][1]) < 2:
        raise mat["*CREEP"].line.error("*CREEP,LAW=NORTON needs one line 'A, n[, m]'")
    line, items = rows[0]
    norton = tuple(parse_float(line, t, "Norton parameter") for t in (items + ["0"])[:3])
    if not visco:
        head = mat["*MATERIAL"].line
        logger.info("%s: material %s: *CREEP is inactive in *STATIC steps (dropped)", head.path, name)
        return None
    return norton


def deck_laws(model: Sequence[Card], visco: bool) -> dict[str, object]:
    """Material name (upper-case) -> law.

    Parameters
    ----------
    model : the cards before the first step
    visco : the steps are ``*VISCO`` (else ``*STATIC``: creep is off, as in CalculiX)

    Raises
    ------
    ReaderError
        Missing or temperature-dependent ``*ELASTIC``, malformed tables, parameters the law
        rejects (file and line named).
    """
    from romdask.materials import CalculixViscoplastic, LinearElastic

    laws = {}
    for name, mat in _material_cards(model).items():
        young, poisson = _elastic(name, mat)
        norton = _norton(name, mat, visco)
        if "*PLASTIC" not in mat and norton is None:
            laws[name] = LinearElastic(young, poisson)
            continue
        hardening, plastic, cyclic = "isotropic", None, None
        if "*PLASTIC" in mat:
            hardening = mat["*PLASTIC"].params.get("HARDENING", "ISOTROPIC").lower()
            plastic = _table(mat["*PLASTIC"], "*PLASTIC")
        if "*CYCLIC HARDENING" in mat:
            cyclic = _table(mat["*CYCLIC HARDENING"], "*CYCLIC HARDENING")
        try:
            laws[name] = CalculixViscoplastic(young, poisson, plastic, hardening=hardening, norton=norton,
                                              cyclic_hardening=cyclic)  # fmt: skip
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
