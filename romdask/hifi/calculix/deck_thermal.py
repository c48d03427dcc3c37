"""The thermomechanical cards of a CalculiX 2.20 deck: temperatures, densities, body forces.

What ccx 2.20 does with them (measured here; the reading side is :mod:`romdask.io.calculix.thermal`):

* ``*INITIAL CONDITIONS,TYPE=TEMPERATURE`` sets the initial temperature T0 of the listed nodes
  (the reference of the thermal strains, and the temperature of every node no ``*TEMPERATURE``
  names); CalculiX starts the first increment from T0.
* ``*TEMPERATURE,AMPLITUDE=a`` (a ``TIME=TOTAL TIME`` amplitude) makes a listed node's
  temperature ``value * a(t)``: the value REPLACES the node's temperature, it is not added to T0.
  A node listed twice keeps the last line. romdask's :class:`~romdask.problem.loads.Temperature`
  patterns add up on shared nodes, so patterns sharing nodes are written as one card of their
  sums when they share one amplitude table, and refused otherwise.
* ``*DLOAD`` ``ELSET,CENTRIF,omega^2,x0,y0,z0,ax,ay,az`` / ``ELSET,GRAV,g,dx,dy,dz`` need the
  ``*DENSITY`` of the elements' material. Two body loads of one type on one element set and one
  axis / direction in one step are added by CalculiX, and refused with different amplitudes
  (``bodyadd.f``): each pattern gets an element set of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from romdask.io.calculix.cards import NAME_COMMENT
from romdask.problem.loads import Amplitude, Centrifugal, Gravity, Temperature

__all__ = ["body_element_sets", "body_lines", "initial_temperature_lines", "material_density", "temperature_cards",
           "temperatures_at_start"]

def _fmt(x: float) -> str:
    from romdask.hifi.calculix.deck import format_number

    return format_number(float(x))


def initial_temperature_lines(problem, all_nodes: str | None) -> list[str]:
    """``*INITIAL CONDITIONS,TYPE=TEMPERATURE``: one line on the node set ``all_nodes`` when every
    node has the same initial temperature (and the set is given), else one line per node."""
    t0 = np.asarray(problem.initial_temperature, np.float64)
    lines = ["*INITIAL CONDITIONS, TYPE=TEMPERATURE"]
    if all_nodes is not None and np.all(t0 == t0[0]):
        return lines + [f"{all_nodes}, {_fmt(t0[0])}"]
    ids = problem.mesh.node_ids
    return lines + [f"{int(i)}, {_fmt(v)}" for i, v in zip(ids, t0)]


def _amplitude_key(amp: Amplitude | None):
    return None if amp is None else (tuple(amp.times.tolist()), tuple(amp.values.tolist()))


def temperature_cards(problem, amplitude_names: dict[int, str]) -> list[str]:
    """The ``*TEMPERATURE,AMPLITUDE=`` cards of a step (the same in every step).

    Raises
    ------
    ValueError
        Patterns with different amplitude tables share a node (CalculiX replaces a node's
        temperature, romdask adds the patterns up: no deck reproduces that).
    """
    patterns: Sequence[Temperature] = problem.temperatures
    n = problem.mesh.n_nodes
    owner = np.full(n, -1, np.int64)
    groups: list[list[int]] = []  # patterns written as one card (they share nodes)
    for k, pattern in enumerate(patterns):
        others = np.unique(owner[pattern.nodes])
        others = others[others >= 0]
        merged = [k]
        for g in others.tolist():
            merged += groups[g]
            groups[g] = []
        keys = {_amplitude_key(patterns[j].amplitude) for j in merged}
        if len(keys) > 1:
            names = [patterns[j].name or f"temperature-{j}" for j in sorted(merged)]
            shared = problem.mesh.node_ids[np.intersect1d(pattern.nodes, np.flatnonzero(owner >= 0))][:5]
            raise ValueError(
                f"{problem.name}: temperature patterns {names} share nodes (ids {shared.tolist()}...) but have "
                "different amplitudes; CalculiX's *TEMPERATURE replaces a node's value instead of adding the "
                "patterns: give each node one pattern, or one amplitude to the patterns that share it")
        groups.append(sorted(merged))
        owner[np.isin(owner, others)] = len(groups) - 1
        owner[pattern.nodes] = len(groups) - 1
    ids = problem.mesh.node_ids
    lines: list[str] = []
    for members in groups:
        if not members:
            continue
        total = np.zeros(n)
        covered = np.zeros(n, bool)
        for j in members:
            total[patterns[j].nodes] += patterns[j].values
            covered[patterns[j].nodes] = True
        name = "+".join(patterns[j].name or f"temperature-{j}" for j in members)
        lines += [f"{NAME_COMMENT}{name}", f"*TEMPERATURE, AMPLITUDE={amplitude_names[id(patterns[members[0]])]}"]
        lines += [f"{int(ids[i])}, {_fmt(total[i])}" for i in np.flatnonzero(covered)]
    return lines


def temperatures_at_start(problem) -> list[str]:
    """Names of the temperature patterns whose nodes are not at their initial temperature at
    t = 0 (CalculiX starts the first increment from the initial temperature)."""
    if not problem.temperatures:
        return []
    t0 = problem.initial_temperature
    at_zero = problem.nodal_temperature(0.0)
    return [p.name or f"temperature-{k}" for k, p in enumerate(problem.temperatures)
            if np.any(at_zero[p.nodes] != t0[p.nodes])]


def body_element_sets(problem, taken: set[str]) -> tuple[dict[int, str], dict[str, np.ndarray]]:
    """An element set of its own for each body-force pattern (an existing mesh set when equal and
    not used by another body force) and the new sets to write; ``taken`` (upper-case names) grows."""
    from romdask.hifi.calculix.deck import _safe

    mesh = problem.mesh
    by_content = {tuple(np.unique(v).tolist()): name for name, v in mesh.element_sets.items()}
    used: set[str] = set()
    out: dict[int, str] = {}
    new: dict[str, np.ndarray] = {}
    for k, load in enumerate(problem.loads):
        if not isinstance(load, (Centrifugal, Gravity)):
            continue
        key = tuple(load.elements.tolist())
        name = by_content.get(key)
        if name is None or name.upper() in used or name.upper() == "EALL":
            base = "E_" + _safe(load.name, f"B{k}")
            name, i = base, 1
            while name.upper() in taken:
                name, i = f"{base}_{i}", i + 1
            taken.add(name.upper())
            new[name] = load.elements
        used.add(name.upper())
        out[id(load)] = name
    return out, new


def body_lines(load: Centrifugal | Gravity, elset: str) -> str:
    """The ``*DLOAD`` data line of a body force."""
    if isinstance(load, Centrifugal):
        numbers = [load.value, *load.point, *load.axis]
        return f"{elset}, CENTRIF, " + ", ".join(_fmt(v) for v in numbers)
    return f"{elset}, GRAV, " + ", ".join(_fmt(v) for v in [load.value, *load.direction])


def material_density(problem, elements: np.ndarray, where: str) -> float | None:
    """The ``*DENSITY`` of the material of ``elements``: the density of the body forces acting
    on them (None when none does).

    Raises
    ------
    ValueError
        Body forces of different densities act on elements of one material.
    """
    densities = {}
    for load in problem.loads:
        if isinstance(load, (Centrifugal, Gravity)) and np.intersect1d(load.elements, elements).size:
            densities.setdefault(float(load.density), load.name)
    if len(densities) > 1:
        raise ValueError(
            f"{where}: body forces with different densities {sorted(densities)} (patterns "
            f"{list(densities.values())}) act on elements of one material; CalculiX takes the density from the "
            "material (*DENSITY): give those elements materials of their own (one per element set)")
    return next(iter(densities), None)
