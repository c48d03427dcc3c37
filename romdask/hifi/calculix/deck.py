"""A CalculiX 2.20 input deck for a romdask :class:`~romdask.problem.Problem`.

The deck avoids the traps of ``/work/shared/notes/calculix.md``: fixed increments hitting every
output time (``*VISCO,DIRECT`` with a huge ``CETOL``, or ``*STATIC,DIRECT``), one ``*STEP`` per
monotonic load segment (CalculiX's Newton extrapolates the previous increment across a load
reversal), total-time amplitudes, numbers of at most 20 characters, float64 binary displacements
(``*NODE OUTPUT,DOUBLE``) and ``*EL PRINT`` only when asked.

Every load card is preceded by a comment ``** romdask name=<name>`` so that
:func:`romdask.io.calculix.read_problem` gives the conditions their romdask names back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from romdask.hifi.calculix.deck_thermal import (
    body_element_sets,
    body_lines,
    initial_temperature_lines,
    material_density,
    temperature_cards,
    temperatures_at_start,
)
from romdask.io.calculix.cards import NAME_COMMENT
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Gravity, NodalForce, Pressure
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.problem import Problem

__all__ = ["NAME_COMMENT", "TIGHT_CONTROLS", "deck_segments", "format_number", "loaded_at_start", "write_deck"]

logger = logging.getLogger(__name__)

#: comment line naming the condition(s) of the next load card
#: ``*CONTROLS,PARAMETERS=FIELD`` of the verified decks: residual and correction 1e-9
TIGHT_CONTROLS = (1e-9, 1e-9, None, None, 1e-9, 1e-9)
_ALL = "EALL"
_PURE_CREEP = ((0.0, 0.0), (0.0, 1.0e11))  # CalculixViscoplastic's table for plastic=None
_NAME = re.compile(r"[^A-Za-z0-9_\-]")
_PER_LINE = 16  # entries per data line (CalculiX reads at most 16)


def format_number(x: float) -> str:
    """``x`` as CalculiX reads it: at most 20 characters, the shortest exact repr when it fits.

    Plain Python floats only (never ``np.float64(1.0)``); 13 significant digits otherwise.
    """
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"non-finite number {x} cannot go into a CalculiX deck")
    text = repr(x)
    return text if len(text) <= 20 else f"{x:.13e}"


def _rows(items: Sequence[str], per_line: int = _PER_LINE) -> list[str]:
    """Comma-separated lines of ``per_line`` items, continuation lines ending with a comma."""
    rows = [items[i : i + per_line] for i in range(0, len(items), per_line)]
    return [", ".join(r) + ("," if k < len(rows) - 1 else "") for k, r in enumerate(rows)]


def _id_lines(ids: np.ndarray) -> list[str]:
    rows = [", ".join(str(int(i)) for i in ids[k : k + 10]) for k in range(0, len(ids), 10)]
    return [r + "," for r in rows[:-1]] + rows[-1:]


def _safe(name: str, fallback: str) -> str:
    text = _NAME.sub("_", name) if name else fallback
    return text[:70] or fallback


def _set_names(problem: Problem) -> tuple[dict[int, str], dict[str, np.ndarray]]:
    """Node set of each Dirichlet / nodal force (an existing mesh set when equal) and new sets."""
    mesh = problem.mesh
    taken = {n.upper() for n in list(mesh.node_sets) + list(mesh.element_sets) + list(mesh.surfaces)}
    taken.add(_ALL)
    by_content = {tuple(np.unique(v).tolist()): n for n, v in mesh.node_sets.items()}
    out: dict[int, str] = {}
    new: dict[str, np.ndarray] = {}
    conditions = list(problem.dirichlet) + [ld for ld in problem.loads if isinstance(ld, NodalForce)]
    for k, cond in enumerate(conditions):
        key = tuple(np.unique(cond.nodes).tolist())
        if key in by_content:
            out[k] = by_content[key]
            continue
        base = "N_" + _safe(cond.name, f"C{k}")
        name, i = base, 1
        while name.upper() in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name.upper())
        by_content[key] = name
        new[name] = np.unique(cond.nodes)
        out[k] = name
    return out, new


def deck_segments(problem: Problem) -> list[tuple[float, float, float]]:
    """``(t_start, t_end, dt)`` of the deck's steps: monotonic load segments of uniform increments.

    Raises
    ------
    ValueError
        An amplitude breakpoint (load reversal) inside the run falls between two output times.
    """
    times = problem.times
    t_end = float(times[-1])
    conditions = list(problem.dirichlet) + list(problem.loads) + list(problem.temperatures)
    amps = [c.amplitude for c in conditions if c.amplitude is not None]
    cuts = set()
    for amp in amps:
        for t in amp.breakpoints(t_end):
            if 0.0 < t < t_end:
                k = int(np.argmin(np.abs(times - t)))
                if abs(times[k] - t) > 1e-9 * t_end:
                    raise ValueError(
                        f"{problem.name}: an amplitude breakpoint (load or temperature reversal) at t={t:g} falls "
                        f"between the output times {times[np.searchsorted(times, t) - 1]:g} and "
                        f"{times[np.searchsorted(times, t)]:g}; CalculiX needs a step boundary there: add t={t:g} "
                        "to problem.times"
                    )
                cuts.add(k)
    dts = np.diff(times)
    for k in range(1, len(dts)):
        if abs(dts[k] - dts[k - 1]) > 1e-9 * dts[k]:
            cuts.add(k)
    bounds = [0] + sorted(cuts) + [len(times) - 1]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        out.append((float(times[a]), float(times[b]), float((times[b] - times[a]) / (b - a))))
    return out


def _laws(problem: Problem) -> list[tuple[object, str]]:
    """(law, element set) of each ``*SOLID SECTION``."""
    if not isinstance(problem.material, Mapping):
        return [(problem.material, _ALL)]
    return list((law, name) for name, law in problem.material.items())


def _number_rows(rows) -> list[str]:
    return [", ".join(format_number(v) for v in row) for row in rows]


def _elastic_expansion_lines(law) -> list[str]:
    """``*ELASTIC`` (one row, or rows E, nu, T) and ``*EXPANSION[, ZERO=]`` (rows alpha, T)."""
    rows = law.elastic if law.elastic is not None else [(law.young, law.poisson)]
    lines = ["*ELASTIC"] + _number_rows(rows)
    if law.expansion is not None:
        zero = f", ZERO={format_number(law.expansion_zero)}" if law.expansion_zero != 0.0 else ""
        lines += [f"*EXPANSION{zero}"] + _number_rows(law.expansion)
    return lines


def _material_lines(law, name: str, where: str) -> list[str]:
    if not isinstance(law, (LinearElastic, CalculixViscoplastic)):
        raise ValueError(
            f"{where}: CalculiX has no built-in {type(law).__name__} (and runs no user materials); "
            "write_deck supports LinearElastic and CalculixViscoplastic"
        )
    lines = [f"*MATERIAL, NAME={name}"] + _elastic_expansion_lines(law)
    if isinstance(law, LinearElastic):
        return lines
    pure_creep = law.norton is not None and tuple(law.plastic) == _PURE_CREEP and law.hardening == "isotropic"
    if not pure_creep:
        lines.append(f"*PLASTIC, HARDENING={law.hardening.upper()}")
        lines += _number_rows(law.plastic)
        if law.hardening == "combined":
            lines.append("*CYCLIC HARDENING")
            lines += _number_rows(law.cyclic_hardening)
    if law.norton is not None:
        rows = law.norton if np.ndim(law.norton) == 2 else [law.norton]
        lines += ["*CREEP, LAW=NORTON"] + _number_rows(rows)
    return lines


def _amplitude_names(problem: Problem) -> tuple[dict[int, str], list[str]]:
    """Name of each distinct amplitude table (by identity, then by content) and the cards."""
    names: dict[int, str] = {}
    by_content: dict[tuple, str] = {}
    lines: list[str] = []
    t_end = float(problem.times[-1])
    for cond in list(problem.dirichlet) + list(problem.loads) + list(problem.temperatures):
        amp = cond.amplitude
        if amp is None:
            if getattr(cond, "value", None) == 0.0:
                continue
            amp = Amplitude([0.0, max(t_end, 1.0)], [1.0, 1.0])  # applied in full at all times
        key = (tuple(amp.times.tolist()), tuple(amp.values.tolist()))
        if key not in by_content:
            name = f"A{len(by_content) + 1}"
            by_content[key] = name
            lines.append(f"*AMPLITUDE, NAME={name}, TIME=TOTAL TIME")
            lines += [f"{format_number(t)}, {format_number(v)}" for t, v in zip(*key)]
        names[id(cond)] = by_content[key]
    return names, lines


def _procedure(problem: Problem, solver: str | None) -> str:
    laws = [law for law, _ in _laws(problem)]
    visco = any(isinstance(law, CalculixViscoplastic) and law.norton is not None for law in laws)
    card = "*VISCO, DIRECT, CETOL=1e6" if visco else "*STATIC, DIRECT"
    return card + (f", SOLVER={solver}" if solver else "")


def _boundary_lines(bc: Dirichlet, target: str) -> list[str]:
    comps = sorted(bc.components)
    value = format_number(bc.value)
    return [f"{target}, {c + 1}, {c + 1}, {value}" for c in comps]


def _load_cards(problem: Problem, node_sets: dict[int, str], amp_names: dict[int, str],
                body_sets: dict[int, str]) -> list[str]:
    """The step's cards of the time-dependent conditions (nonzero Dirichlet, loads, temperatures)."""
    lines: list[str] = []
    eids = problem.mesh.element_ids
    n_bc = len(problem.dirichlet)
    k_force = n_bc
    for k, bc in enumerate(problem.dirichlet):
        if bc.value == 0.0:
            continue
        lines += [f"{NAME_COMMENT}{bc.name}", f"*BOUNDARY, AMPLITUDE={amp_names[id(bc)]}"]
        lines += _boundary_lines(bc, node_sets[k])
    for load in problem.loads:
        amp = amp_names.get(id(load))
        head = "" if amp is None else f", AMPLITUDE={amp}"
        if isinstance(load, NodalForce):
            lines += [f"{NAME_COMMENT}{load.name}", f"*CLOAD{head}",
                      f"{node_sets[k_force]}, {load.component + 1}, {format_number(load.value)}"]
            k_force += 1
        elif isinstance(load, Pressure):
            value = format_number(load.value)
            lines += [f"{NAME_COMMENT}{load.name}", f"*DLOAD{head}"]
            lines += [f"{int(eids[e])}, P{int(f) + 1}, {value}" for e, f in load.faces]
        elif isinstance(load, (Centrifugal, Gravity)):
            lines += [f"{NAME_COMMENT}{load.name}", f"*DLOAD{head}", body_lines(load, body_sets[id(load)])]
        else:
            raise ValueError(f"{problem.name}: unsupported load {type(load).__name__}; NodalForce, Pressure, "
                             "Centrifugal or Gravity")
    if problem.temperatures:
        lines += temperature_cards(problem, amp_names)
    return lines


def _output_lines(outputs: Sequence[str], ip_output, element_sets: Sequence[str], laws) -> list[str]:
    lines = []
    if outputs:
        lines += ["*NODE OUTPUT, DOUBLE", ", ".join(o.upper() for o in outputs)]
    if ip_output:
        if ip_output is True:
            inelastic = any(isinstance(law, CalculixViscoplastic) for law in laws)
            keys = ("S", "SDV") if inelastic else ("S",)
        else:
            keys = tuple(str(k).upper() for k in ip_output)
        for elset in element_sets:
            for key in keys:  # one key per card: the .dat reader expects one block per key
                lines += [f"*EL PRINT, ELSET={elset}", key]
    return lines


def loaded_at_start(problem: Problem) -> list[str]:
    """Names of the conditions that are nonzero at t = 0, and of the temperature patterns whose
    nodes are not at their initial temperature at t = 0 (CalculiX applies them in the first
    increment: it starts from the unloaded state at the initial temperature and outputs nothing
    at t = 0)."""
    out = []
    for cond in list(problem.dirichlet) + list(problem.loads):
        if cond.value * (1.0 if cond.amplitude is None else float(cond.amplitude(0.0))) != 0.0:
            out.append(cond.name)
    return out + temperatures_at_start(problem)


def _check_problem(problem: Problem) -> None:
    if problem.times[0] != 0.0:
        raise ValueError(f"{problem.name}: a CalculiX deck starts from the unloaded state at t = 0, but the "
                         f"problem's times start at {problem.times[0]:g} (a restart); solve it with "
                         "romdask.hifi.solve(problem, initial=...) or give times from 0")
    loaded = loaded_at_start(problem)
    if loaded:
        logger.warning("%s: conditions %s are nonzero (temperature patterns: not at the initial temperature) "
                       "at t=0; CalculiX applies them during the first increment (the built-in solver "
                       "equilibrates them at t=0 first)", problem.name, loaded)


def write_deck(
    problem: Problem,
    path: str | Path,
    *,
    outputs: Sequence[str] = ("U",),
    ip_output: bool | Sequence[str] = False,
    element_set_prints: Sequence[str] | None = None,
    controls: Sequence[float | None] | None = TIGHT_CONTROLS,
    solver: str | None = None,
) -> Path:
    """Write a CalculiX 2.20 input deck for ``problem``.

    Parameters
    ----------
    problem : Problem
        Mesh (C3D4, C3D8, C3D10, C3D20, C3D20R), laws LinearElastic / CalculixViscoplastic
        (one law or one per element set), Dirichlet conditions, nodal forces, pressures,
        centrifugal and gravity loads, initial temperature and temperature patterns.
    path : the ``.inp`` file to write (its folder must exist)
    outputs : nodal results written to the .frd in float64 (``*NODE OUTPUT,DOUBLE``), e.g.
        ``("U",)`` or ``("U", "RF")``; empty: no .frd results. ``NT`` (the nodal temperatures,
        block ``NDTEMP``) is added for a thermal problem.
    ip_output : ``*EL PRINT`` integration-point results in the .dat: False (none), True
        (``S`` and, for the viscoplastic law, ``SDV``) or CalculiX keys, e.g. ``("S", "E", "PEEQ")``
    element_set_prints : element sets printed by ``*EL PRINT`` (default: every element)
    controls : the 6 values of ``*CONTROLS,PARAMETERS=FIELD`` (None: CalculiX's defaults,
        residual 5e-3). The default 1e-9 makes CalculiX agree with the built-in solver to 1e-6.
    solver : the ``SOLVER=`` of the step (e.g. "ITERATIVE CHOLESKY"; default SPOOLES)

    Returns
    -------
    Path of the deck.

    Raises
    ------
    ValueError
        A law CalculiX lacks, a load or temperature reversal between output times, an unknown
        element set in ``element_set_prints``, temperature patterns with different amplitudes
        sharing a node, body forces of different densities on one material.

    Notes
    -----
    Layout: ``*NODE``, ``*ELEMENT`` per block (all in ``ELSET=EALL``), the mesh's sets and
    element surfaces, one node set per load condition whose nodes are no mesh set (``N_<name>``),
    materials ``M1, M2, ...``, ``*SOLID SECTION`` per law, amplitudes ``A1, ...`` (one per
    distinct table, ``TIME=TOTAL TIME``; a nonzero condition without amplitude gets a constant
    table of 1), homogeneous Dirichlet conditions in the model data, then one ``*STEP`` per
    segment of :func:`deck_segments` (a monotonic stretch of uniform increments) repeating the
    time-dependent cards with their amplitude (one step per output interval when every law is
    linear elastic: ccx solves such a ``*STATIC`` step in one increment). ``*VISCO`` when some
    law creeps (``*STATIC`` switches creep off), else ``*STATIC``; ``DIRECT`` fixed increments. Size: about 60 bytes per
    node and element; written in one pass.

    Thermomechanics (:mod:`romdask.hifi.calculix.deck_thermal`): ``*INITIAL
    CONDITIONS,TYPE=TEMPERATURE`` (one line on an all-node set when uniform, else per node),
    ``*TEMPERATURE,AMPLITUDE=`` node lines per pattern in every step (CalculiX replaces a node's
    temperature by ``value * a(t)``: patterns sharing nodes are written as one card of their
    sums when their amplitudes are equal, refused otherwise), ``*DENSITY`` in the material of
    the elements of centrifugal / gravity loads and ``*DLOAD`` ``CENTRIF`` / ``GRAV`` lines on an
    element set per pattern. Temperature amplitude breakpoints are step boundaries too.
    """
    path = Path(path)
    mesh = problem.mesh
    _check_problem(problem)
    laws = _laws(problem)
    node_sets, new_sets = _set_names(problem)
    taken = {n.upper() for n in list(mesh.node_sets) + list(mesh.element_sets) + list(mesh.surfaces)}
    taken |= {n.upper() for n in new_sets} | {_ALL}
    body_sets, new_elsets = body_element_sets(problem, taken)
    all_nodes = None
    if problem.thermal:
        all_nodes = next((n for n, v in mesh.node_sets.items() if len(np.unique(v)) == mesh.n_nodes), None)
        if all_nodes is None:
            all_nodes, i = "N_ALL", 1
            while all_nodes.upper() in taken:
                all_nodes, i = f"N_ALL_{i}", i + 1
            new_sets[all_nodes] = np.arange(mesh.n_nodes)
        if not any(o.upper() == "NT" for o in outputs) and outputs:
            outputs = tuple(outputs) + ("NT",)
    amp_names, amp_lines = _amplitude_names(problem)
    segments = deck_segments(problem)
    if all(isinstance(law, LinearElastic) for law, _ in laws):
        # ccx solves a linear elastic *STATIC step in ONE increment (linstatic.c) whatever the
        # increment given: one step per output interval then (the amplitudes are total-time)
        times = problem.times
        segments = [(float(a), float(b), float(b - a)) for a, b in zip(times[:-1], times[1:])]
    prints = [_ALL] if element_set_prints is None else list(element_set_prints)
    known = {n.upper() for n in mesh.element_sets} | {_ALL}
    unknown = [s for s in prints if s.upper() not in known]
    if unknown:
        raise ValueError(f"{problem.name}: element_set_prints names unknown element sets {unknown}; known: {sorted(known)}")

    lines = ["*HEADING", f"{problem.name} (written by romdask)"]
    lines.append("*NODE")
    lines += [f"{int(i)}, {format_number(x)}, {format_number(y)}, {format_number(z)}"
              for i, (x, y, z) in zip(mesh.node_ids, mesh.nodes)]  # fmt: skip
    for block in mesh.blocks:
        lines.append(f"*ELEMENT, TYPE={block.type}, ELSET={_ALL}")
        ids = mesh.node_ids[block.connectivity]
        for eid, conn in zip(block.ids, ids):
            lines += _rows([str(int(eid))] + [str(int(n)) for n in conn])
    for name, nodes in list(mesh.node_sets.items()) + list(new_sets.items()):
        if len(nodes):
            lines += [f"*NSET, NSET={name}"] + _id_lines(mesh.node_ids[nodes])
    eids = mesh.element_ids
    for name, elements in list(mesh.element_sets.items()) + list(new_elsets.items()):
        if len(elements) and name.upper() != _ALL:
            lines += [f"*ELSET, ELSET={name}"] + _id_lines(eids[elements])
    for name, faces in mesh.surfaces.items():
        if len(faces):
            lines.append(f"*SURFACE, NAME={name}, TYPE=ELEMENT")
            lines += [f"{int(eids[e])}, S{int(f) + 1}" for e, f in faces]
    for k, ((law, elset), (_, elements)) in enumerate(zip(laws, problem.material_elements())):
        where = f"{problem.name}, element set {elset}"
        lines += _material_lines(law, f"M{k + 1}", where)
        density = material_density(problem, elements, where)
        if density is not None:
            lines += ["*DENSITY", format_number(density)]
        lines.append(f"*SOLID SECTION, ELSET={elset}, MATERIAL=M{k + 1}")
    lines += amp_lines
    if problem.thermal:
        lines += initial_temperature_lines(problem, all_nodes)
    for k, bc in enumerate(problem.dirichlet):
        if bc.value == 0.0:
            lines += [f"{NAME_COMMENT}{bc.name}", "*BOUNDARY"] + _boundary_lines(bc, node_sets[k])
    procedure = _procedure(problem, solver)
    cards = _load_cards(problem, node_sets, amp_names, body_sets)
    out = _output_lines(outputs, ip_output, prints, [law for law, _ in laws])
    for t0, t1, dt in segments:
        lines += ["*STEP, INC=100000", procedure, f"{format_number(dt)}, {format_number(t1 - t0)}"]
        if controls is not None:
            values = ["" if v is None else format_number(v) for v in controls]
            lines += ["*CONTROLS, PARAMETERS=FIELD", ", ".join(values)]
        lines += cards + out + ["*END STEP"]
    path.write_text("\n".join(lines) + "\n")
    return path
