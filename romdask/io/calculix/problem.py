"""A whole CalculiX deck as a romdask :class:`~romdask.problem.Problem` (mesh, laws, loads, times).

Supported: the mesh cards of :func:`~romdask.io.calculix.read_inp`; ``*MATERIAL`` with
``*ELASTIC`` (isotropic), ``*PLASTIC`` (HARDENING=ISOTROPIC|KINEMATIC|COMBINED),
``*CYCLIC HARDENING``, ``*CREEP`` (LAW=NORTON), with temperature columns, ``*EXPANSION``,
``*DENSITY`` (:mod:`romdask.io.calculix.laws`); ``*SOLID SECTION``; tabular ``*AMPLITUDE``
(total or step time); ``*BOUNDARY``, ``*CLOAD``, ``*DLOAD`` / ``*DSLOAD`` (pressures ``P1..P6``
on elements or sets, ``P`` on element-face surfaces; body forces ``CENTRIF`` and ``GRAV`` on
element sets or elements, with the density of their material) with or without ``AMPLITUDE=``,
changed from step to step as CalculiX does (:mod:`romdask.io.calculix.conditions`);
``*INITIAL CONDITIONS,TYPE=TEMPERATURE`` and ``*TEMPERATURE`` (``AMPLITUDE=``, none,
``FILE=`` / ``BSTEP=``) by CalculiX 2.20's own rules (:mod:`romdask.io.calculix.thermal`);
``*STEP`` with ``*STATIC`` / ``*VISCO``, fixed or automatic increments
(:mod:`romdask.io.calculix.steps`). Output requests, solver controls and other cards that do
not change the solution are accepted and ignored (:data:`HARMLESS`).
Anything else is an error listing every unsupported keyword and option with its line.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.cards import Card, deck_cards
from romdask.io.calculix.conditions import deck_conditions
from romdask.io.calculix.inp import MESH_KEYWORDS, read_inp
from romdask.io.calculix.laws import deck_laws, material_density, section_material
from romdask.io.calculix.steps import DeckStep, step_times
from romdask.io.calculix.thermal import deck_initial_temperature, deck_temperatures
from romdask.io.run import ReaderError
from romdask.problem import Problem

__all__ = ["HARMLESS", "SUPPORTED", "read_problem"]

logger = logging.getLogger(__name__)

_LOADS = ("*BOUNDARY", "*CLOAD", "*DLOAD", "*DSLOAD", "*TEMPERATURE")
_OPTIONS = {
    **MESH_KEYWORDS,
    "*MATERIAL": {"NAME"}, "*ELASTIC": {"TYPE"}, "*PLASTIC": {"HARDENING"}, "*CYCLIC HARDENING": set(),
    "*CREEP": {"LAW"}, "*SOLID SECTION": {"ELSET", "MATERIAL"}, "*AMPLITUDE": {"NAME", "TIME", "DEFINITION"},
    "*BOUNDARY": {"AMPLITUDE", "OP", "TYPE"}, "*CLOAD": {"AMPLITUDE", "OP"}, "*DLOAD": {"AMPLITUDE", "OP"},
    "*DSLOAD": {"AMPLITUDE", "OP"}, "*STEP": {"INC", "INCF", "NLGEOM", "AMPLITUDE"},
    "*STATIC": {"DIRECT", "SOLVER"}, "*VISCO": {"DIRECT", "SOLVER", "CETOL"}, "*END STEP": set(),
    "*INITIAL CONDITIONS": {"TYPE"}, "*TEMPERATURE": {"AMPLITUDE", "OP", "FILE", "BSTEP", "ESTEP"}, "*DENSITY": set(),
    "*EXPANSION": {"ZERO", "TYPE"},
}  # fmt: skip
#: accepted and ignored: headings, output requests (which fields, how often, which format: the
#: solution is the same), solver controls (tolerances), the heat-transfer constants of a
#: material (*CONDUCTIVITY, *SPECIFIC HEAT: no heat transfer in *STATIC / *VISCO steps)
HARMLESS = ("*HEADING", "*NODE FILE", "*EL FILE", "*NODE PRINT", "*EL PRINT", "*NODE OUTPUT",
            "*ELEMENT OUTPUT", "*OUTPUT", "*FILE FORMAT", "*SECTION PRINT", "*TIME POINTS",
            "*CONTROLS", "*CONDUCTIVITY", "*SPECIFIC HEAT")  # fmt: skip
_VALUES = {  # allowed values of options (upper-case, blanks removed, as CalculiX reads them)
    ("*ELASTIC", "TYPE"): {"ISO"}, ("*PLASTIC", "HARDENING"): {"ISOTROPIC", "KINEMATIC", "COMBINED"},
    ("*CREEP", "LAW"): {"NORTON"}, ("*AMPLITUDE", "TIME"): {"TOTALTIME", "STEPTIME"},
    ("*AMPLITUDE", "DEFINITION"): {"TABULAR"}, ("*BOUNDARY", "OP"): {"MOD"}, ("*CLOAD", "OP"): {"MOD"},
    ("*DLOAD", "OP"): {"MOD"}, ("*DSLOAD", "OP"): {"MOD"}, ("*BOUNDARY", "TYPE"): {"DISPLACEMENT"},
    ("*STEP", "NLGEOM"): {"NO"}, ("*STEP", "AMPLITUDE"): {"RAMP", "STEP"},
    ("*SURFACE", "TYPE"): {"ELEMENT", "NODE"}, ("*INITIAL CONDITIONS", "TYPE"): {"TEMPERATURE"},
    ("*TEMPERATURE", "OP"): {"MOD"},
}  # fmt: skip
SUPPORTED = ("meshes (*NODE, *ELEMENT C3D4/C3D8/C3D10/C3D20/C3D20R, *NSET, *ELSET, *SURFACE), isotropic "
             "*ELASTIC, *PLASTIC, *CYCLIC HARDENING, *CREEP,LAW=NORTON, *EXPANSION, *DENSITY, *SOLID SECTION, "
             "*AMPLITUDE, *BOUNDARY, *CLOAD, *DLOAD / *DSLOAD (pressures P, CENTRIF, GRAV), "
             "*INITIAL CONDITIONS,TYPE=TEMPERATURE, *TEMPERATURE (AMPLITUDE=, FILE=, BSTEP=), *STATIC / *VISCO steps")


def _unsupported(card: Card) -> list[str]:
    """The unsupported options of a known card."""
    keyword, params = card.keyword, card.params
    bad = sorted(set(params) - _OPTIONS[keyword])
    for key, value in params.items():
        allowed = _VALUES.get((keyword, key))
        if allowed is not None and value not in allowed:
            bad.append(f"{key}={value}")
    if keyword == "*STEP" and "NLGEOM" in params and not params["NLGEOM"]:
        bad.append("NLGEOM")
    return bad


def _where(card: Card, deck: Path) -> str:
    """``line 12``, or ``mesh/part.inp line 12`` for a line of an included file."""
    if card.line.path == deck:
        return f"line {card.line.number}"
    return f"{card.line.path} line {card.line.number}"


def _place(card: Card, model: list[Card], steps: list[DeckStep], problems: list[str], deck: Path) -> None:
    """Put a supported card in the model data or in its step."""
    where = _where(card, deck)
    if card.keyword == "*STEP":
        steps.append(DeckStep(card))
    elif card.keyword in ("*STATIC", "*VISCO"):
        if not steps:
            problems.append(f"{where}: {card.keyword} outside a *STEP")
        elif steps[-1].procedure is not None:
            problems.append(f"{where}: a second procedure in the step of {_where(steps[-1].card, deck)}")
        else:
            steps[-1].procedure = card
    elif card.keyword in _LOADS and steps:
        steps[-1].loads.append(card)
    elif card.keyword == "*AMPLITUDE":  # CalculiX reads amplitudes anywhere
        model.append(card)
    elif card.keyword != "*END STEP":
        if steps:
            problems.append(f"{where}: {card.keyword} inside a step (romdask reads it in the model data only)")
        model.append(card)


def _scan(path: Path) -> tuple[list[Card], list[DeckStep], list[str]]:
    """Cards outside steps, the steps, and the unsupported keywords / options found."""
    model: list[Card] = []
    steps: list[DeckStep] = []
    problems: list[str] = []
    for card in deck_cards(path, skip_rows=lambda keyword: keyword in ("*NODE", "*ELEMENT", "*NSET", "*ELSET")):
        if card.keyword in HARMLESS:
            continue
        if card.keyword not in _OPTIONS:
            problems.append(f"{_where(card, path)}: keyword {card.keyword}")
            continue
        bad = _unsupported(card)
        if bad:
            problems.append(f"{_where(card, path)}: {card.keyword} option(s) {', '.join(bad)}")
        _place(card, model, steps, problems, path)
    for step in steps:
        if step.procedure is None:
            problems.append(f"{_where(step.card, path)}: *STEP without *STATIC or *VISCO")
    return model, steps, problems


def _densities(mesh: Mesh, model: list[Card]) -> np.ndarray:
    """The ``*DENSITY`` of each element's material (``*SOLID SECTION``), NaN where none."""
    densities = material_density(model)
    out = np.full(mesh.n_elements, np.nan)
    for card in model:
        if card.keyword == "*SOLID SECTION":
            elset, material = card.params.get("ELSET", ""), card.params.get("MATERIAL", "")
            if elset in mesh.element_sets and densities.get(material) is not None:
                out[np.asarray(mesh.element_sets[elset], np.int64)] = densities[material]
    return out


def _unique_names(conditions) -> tuple:
    seen: dict[str, int] = {}
    out = []
    for cond in conditions:
        base = cond.name or type(cond).__name__.lower()
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(cond if not n else replace(cond, name=f"{base}_{n + 1}"))
    return tuple(out)


def read_problem(path: str | Path, *, name: str | None = None, times=None, mesh: Mesh | None = None) -> Problem:
    """Read a CalculiX deck as a :class:`~romdask.problem.Problem`.

    Parameters
    ----------
    path : the ``.inp`` deck (``*INCLUDE`` files are followed)
    name : problem name (default: the file name without ``.inp``)
    times : the run's output times, e.g. the .frd's (``romdask.io.calculix.read_frd``), for
        decks with automatic increments (without ``DIRECT``); 0 is prepended. Default: the
        steps' increments (the initial increment taken as fixed without ``DIRECT``, logged).
    mesh : ``read_inp(path)`` when the caller has it already (saves reading the mesh twice)

    Returns
    -------
    Problem
        Mesh as :func:`read_inp`; one law (LinearElastic or CalculixViscoplastic; Norton creep
        only when the steps are ``*VISCO``) or one per ``*SOLID SECTION`` element set;
        Dirichlet / NodalForce / Pressure / Centrifugal / Gravity patterns whose values and
        amplitudes follow CalculiX's step rules on the total time
        (:mod:`romdask.io.calculix.conditions`; a body force on elements of several densities
        is one pattern per density, ``<name>_rho2``...); ``times``; ``initial_temperature`` and
        Temperature patterns reproducing ccx's nodal temperature at every output time (a
        pattern per node group with the deck's table when it is one, else hat patterns
        ``<name>@<time>``: :mod:`romdask.io.calculix.thermal`).
        Names: from the ``** romdask name=`` comments of
        :func:`~romdask.hifi.calculix.write_deck`, else the node / element set or surface (or
        node id) of the lines, made unique with ``_2``, ``_3``.

    Raises
    ------
    ValueError (ReaderError)
        Unsupported keywords or options (ALL of them listed with their lines), unsupported step
        semantics (``OP=NEW``, a prescribed displacement added after the first step), unreadable
        numbers, unknown sets, surfaces, materials, amplitudes or files, body forces on
        elements without ``*DENSITY``, nodes of elements without an initial temperature,
        temperature tables or ``*EXPANSION`` without initial temperatures (CalculiX would run
        athermally with the tables' first rows): the message names the file and the line.

    Notes
    -----
    Two passes over the deck (the mesh with :func:`read_inp`, then the other cards, whose
    mesh data lines are skipped); cost as read_inp. Hat temperature patterns (per-node
    histories that are not one table, e.g. ``FILE=`` fields) hold one value per node and knot
    time.
    """
    path = Path(path)
    model, steps, problems = _scan(path)
    if problems:
        raise ReaderError(path, f"{len(problems)} unsupported keyword(s) / option(s): " + "; ".join(problems)
                          + f". romdask reads {SUPPORTED}")
    if not steps:
        raise ReaderError(path, "no *STEP: romdask needs the increments of a *STATIC or *VISCO step")
    kinds = {s.procedure.keyword for s in steps}
    if len(kinds) > 1:
        raise ReaderError(path, "*STATIC and *VISCO steps mixed: creep would be on in some steps only")
    mesh = read_inp(path) if mesh is None else mesh
    material = section_material(path, mesh, model, deck_laws(model, visco=kinds == {"*VISCO"}))
    out_times, spans = step_times(steps, times)
    dirichlet, loads = deck_conditions(mesh, model, steps, spans, _densities(mesh, model))
    conditions = _unique_names(dirichlet + loads)
    t0 = deck_initial_temperature(path, mesh, model)
    temperatures = _unique_names(deck_temperatures(path, mesh, model, steps, spans, out_times, t0))
    laws = material.values() if isinstance(material, dict) else [material]
    if t0 is None and any(getattr(law, "thermal", False) for law in laws):
        raise ReaderError(path, "the materials have temperature tables or *EXPANSION but the deck has no "
                                "*INITIAL CONDITIONS,TYPE=TEMPERATURE: CalculiX would run it athermally with the "
                                "first rows of the tables; give the nodes initial temperatures, or remove the "
                                "temperature columns and *EXPANSION")
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() == ".inp" else path.name
    try:
        return Problem(mesh, material, conditions[: len(dirichlet)], out_times, conditions[len(dirichlet):],
                       name=name or stem, metadata={"source": str(path)}, initial_temperature=t0,
                       temperatures=temperatures)  # fmt: skip
    except ValueError as exc:
        raise ReaderError(path, str(exc)) from None
