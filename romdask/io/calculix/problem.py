"""A whole CalculiX deck as a romdask :class:`~romdask.problem.Problem` (mesh, laws, loads, times).

Supported: the mesh cards of :func:`~romdask.io.calculix.read_inp`; ``*MATERIAL`` with
``*ELASTIC`` (isotropic), ``*PLASTIC`` (HARDENING=ISOTROPIC|KINEMATIC|COMBINED),
``*CYCLIC HARDENING``, ``*CREEP`` (LAW=NORTON); ``*SOLID SECTION``; ``*AMPLITUDE`` (tabular);
``*BOUNDARY``, ``*CLOAD``, ``*DLOAD`` (P1..P6) with ``AMPLITUDE=``; ``*STEP`` with ``*STATIC`` /
``*VISCO``. Output and control cards are accepted and ignored (they do not change the solution).
Anything else is an error listing every unsupported keyword and option with its line.

Step semantics (CalculiX's, the supported subset): conditions given before the first step or in
the first step hold for the whole run; a later step may repeat them unchanged (as the decks of
:func:`romdask.hifi.calculix.write_deck` do, one step per monotonic load segment) but not change,
add or remove (``OP=NEW``) them. Without ``AMPLITUDE=`` a condition of a step is ramped over that
step (``*STEP,AMPLITUDE=STEP``: applied at once); step-time amplitudes need a single step (use
``TIME=TOTAL TIME`` otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.inp import _Line, _float, _int, _keyword, _lines, _params, _tokens, read_inp
from romdask.io.run import ReaderError
from romdask.problem.loads import Amplitude, Dirichlet, NodalForce, Pressure
from romdask.problem import Problem

__all__ = ["read_problem"]

logger = logging.getLogger(__name__)

NAME_COMMENT = "** romdask name="
_MESH = {"*NODE": {"NSET"}, "*ELEMENT": {"TYPE", "ELSET"}, "*NSET": {"NSET", "GENERATE"},
         "*ELSET": {"ELSET", "GENERATE"}, "*SURFACE": {"NAME", "TYPE"}}  # fmt: skip
_OPTIONS = {
    **_MESH,
    "*MATERIAL": {"NAME"}, "*ELASTIC": {"TYPE"}, "*PLASTIC": {"HARDENING"}, "*CYCLIC HARDENING": set(),
    "*CREEP": {"LAW"}, "*SOLID SECTION": {"ELSET", "MATERIAL"}, "*AMPLITUDE": {"NAME", "TIME", "DEFINITION"},
    "*BOUNDARY": {"AMPLITUDE", "OP"}, "*CLOAD": {"AMPLITUDE", "OP"}, "*DLOAD": {"AMPLITUDE", "OP"},
    "*STEP": {"INC", "INCF", "NLGEOM", "AMPLITUDE"}, "*STATIC": {"DIRECT", "SOLVER"},
    "*VISCO": {"DIRECT", "SOLVER", "CETOL"}, "*END STEP": set(),
}  # fmt: skip
#: accepted and ignored: output requests, headings, solver controls
HARMLESS = ("*HEADING", "*NODE FILE", "*EL FILE", "*NODE PRINT", "*EL PRINT", "*NODE OUTPUT",
            "*ELEMENT OUTPUT", "*CONTROLS", "*INCLUDE")  # fmt: skip
_VALUES = {  # allowed values of options (upper-cased)
    ("*ELASTIC", "TYPE"): {"ISO"}, ("*PLASTIC", "HARDENING"): {"ISOTROPIC", "KINEMATIC", "COMBINED"},
    ("*CREEP", "LAW"): {"NORTON"}, ("*AMPLITUDE", "TIME"): {"TOTAL TIME", "STEP TIME"},
    ("*AMPLITUDE", "DEFINITION"): {"TABULAR"}, ("*BOUNDARY", "OP"): {"MOD"}, ("*CLOAD", "OP"): {"MOD"},
    ("*DLOAD", "OP"): {"MOD"}, ("*STEP", "NLGEOM"): {"NO"}, ("*STEP", "AMPLITUDE"): {"RAMP", "STEP"},
    ("*SURFACE", "TYPE"): {"ELEMENT", "NODE"},
}  # fmt: skip


@dataclass
class _Card:
    keyword: str
    params: dict[str, str]
    line: _Line
    hint: str | None
    rows: list[tuple[_Line, list[str]]] = field(default_factory=list)


@dataclass
class _Step:
    card: _Card
    procedure: _Card | None = None
    loads: list[_Card] = field(default_factory=list)


def _scan(path: Path) -> tuple[list[_Card], list[_Step], list[str]]:
    """Cards outside steps, the steps, and the unsupported keywords / options found."""
    model: list[_Card] = []
    steps: list[_Step] = []
    problems: list[str] = []
    card: _Card | None = None
    hint: str | None = None
    for line in _lines(path, comments=True):
        text = line.text
        if text.startswith("**"):
            if text.lower().startswith(NAME_COMMENT):
                hint = text[len(NAME_COMMENT):].strip()
            continue
        if not text.startswith("*"):
            if card is not None:
                card.rows.append((line, _tokens(line)))
            continue
        keyword = _keyword(text)
        params = _params(line)
        card = None
        if keyword in HARMLESS:
            hint = None
            continue
        if keyword not in _OPTIONS:
            problems.append(f"line {line.number}: keyword {keyword}")
            hint = None
            continue
        bad = sorted(set(params) - _OPTIONS[keyword])
        for key, value in params.items():
            allowed = _VALUES.get((keyword, key))
            if allowed is not None and " ".join(value.upper().split()) not in allowed:
                bad.append(f"{key}={value}")
        if keyword == "*STEP" and "NLGEOM" in params and not params["NLGEOM"]:
            bad.append("NLGEOM")
        if bad:
            problems.append(f"line {line.number}: {keyword} option(s) {', '.join(bad)}")
        card = _Card(keyword, params, line, hint)
        hint = None
        if keyword == "*STEP":
            steps.append(_Step(card))
        elif keyword == "*END STEP":
            card = None
        elif keyword in ("*STATIC", "*VISCO") and steps:
            if steps[-1].procedure is not None:
                problems.append(f"line {line.number}: a second procedure in the step of line {steps[-1].card.line.number}")
            steps[-1].procedure = card
        elif keyword in ("*BOUNDARY", "*CLOAD", "*DLOAD") and steps:
            steps[-1].loads.append(card)
        elif keyword in ("*STATIC", "*VISCO"):
            problems.append(f"line {line.number}: {keyword} outside a *STEP")
        else:
            model.append(card)
    for step in steps:
        if step.procedure is None:
            problems.append(f"line {step.card.line.number}: *STEP without *STATIC or *VISCO")
    return model, steps, problems


# ---- materials ----------------------------------------------------------------------------------


def _table(card: _Card, what: str) -> list[tuple[float, float]]:
    rows = []
    temps = set()
    for line, tokens in card.rows:
        if len(tokens) < 2:
            raise line.error(f"{what} rows are 'stress, plastic strain[, temperature]'")
        rows.append((_float(line, tokens[0], "stress"), _float(line, tokens[1], "plastic strain")))
        temps.add(tokens[2] if len(tokens) > 2 else "")
    if len(temps) > 1:
        raise card.line.error(f"temperature-dependent {what} tables are not supported")
    return rows


def _laws(model: list[_Card], visco: bool) -> dict[str, object]:
    from romdask.materials import CalculixViscoplastic, LinearElastic

    cards: dict[str, dict[str, _Card]] = {}
    current = None
    for card in model:
        if card.keyword == "*MATERIAL":
            current = card.params.get("NAME", "").upper()
            if not current:
                raise card.line.error("*MATERIAL without NAME=")
            cards[current] = {"*MATERIAL": card}
        elif card.keyword in ("*ELASTIC", "*PLASTIC", "*CYCLIC HARDENING", "*CREEP"):
            if current is None:
                raise card.line.error(f"{card.keyword} outside a *MATERIAL")
            cards[current][card.keyword] = card
        else:
            current = None
    laws = {}
    for name, mat in cards.items():
        head = mat["*MATERIAL"].line
        el = mat.get("*ELASTIC")
        if el is None or len(el.rows) != 1 or len(el.rows[0][1]) < 2:
            raise head.error(f"material {name}: one *ELASTIC line 'E, nu' is required (no temperature tables)")
        line, tokens = el.rows[0]
        young, poisson = _float(line, tokens[0], "Young's modulus"), _float(line, tokens[1], "Poisson's ratio")
        norton = None
        if "*CREEP" in mat:
            rows = mat["*CREEP"].rows
            if len(rows) != 1 or len(rows[0][1]) < 2:
                raise mat["*CREEP"].line.error("*CREEP,LAW=NORTON needs one line 'A, n[, m]'")
            line, tokens = rows[0]
            norton = tuple(_float(line, t, "Norton parameter") for t in (tokens + ["0"])[:3])
            if not visco:
                logger.info("%s: material %s: *CREEP is inactive in *STATIC steps (dropped)", head.path, name)
                norton = None
        if "*PLASTIC" not in mat and "*CREEP" not in mat:
            laws[name] = LinearElastic(young, poisson)
            continue
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
            raise head.error(f"material {name}: {exc}") from None
    return laws


def _material(path: Path, mesh: Mesh, model: list[_Card], laws: dict):
    sections = [c for c in model if c.keyword == "*SOLID SECTION"]
    if not sections:
        raise ReaderError(path, "no *SOLID SECTION: which material do the elements have?")
    out = {}
    for card in sections:
        elset = card.params.get("ELSET", "").upper()
        mat = card.params.get("MATERIAL", "").upper()
        if elset not in mesh.element_sets:
            raise card.line.error(f"*SOLID SECTION names unknown element set {elset or '(none)'}")
        if mat not in laws:
            raise card.line.error(f"*SOLID SECTION names unknown material {mat or '(none)'}")
        out[elset] = laws[mat]
    if len(out) == 1:
        (elset, law), = out.items()
        if len(np.unique(mesh.element_sets[elset])) == mesh.n_elements:
            return law
    return out


# ---- amplitudes and steps -------------------------------------------------------------------------


def _amplitudes(model: list[_Card]) -> dict[str, tuple[Amplitude, bool]]:
    out = {}
    for card in model:
        if card.keyword != "*AMPLITUDE":
            continue
        name = card.params.get("NAME", "").upper()
        if not name:
            raise card.line.error("*AMPLITUDE without NAME=")
        values = []
        for line, tokens in card.rows:
            values += [_float(line, t, "amplitude value") for t in tokens]
        if len(values) < 2 or len(values) % 2:
            raise card.line.error(f"*AMPLITUDE {name}: pairs 'time, value' expected")
        total = " ".join(card.params.get("TIME", "STEP TIME").upper().split()) == "TOTAL TIME"
        try:
            out[name] = (Amplitude(values[0::2], values[1::2]), total)
        except ValueError as exc:
            raise card.line.error(f"*AMPLITUDE {name}: {exc}") from None
    return out


def _times(steps: list[_Step]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    times = [0.0]
    spans = []
    for step in steps:
        proc = step.procedure
        line, tokens = proc.rows[0] if proc.rows else (proc.line, [])
        period = _float(line, tokens[1], "step period") if len(tokens) > 1 and tokens[1] else 1.0
        dt = _float(line, tokens[0], "time increment") if tokens and tokens[0] else period
        if "DIRECT" not in proc.params:
            logger.warning("%s line %d: no DIRECT: romdask uses fixed increments of %g (CalculiX may "
                           "adapt them)", line.path, line.number, dt)
        n = period / dt if dt > 0 else 0
        if dt <= 0 or period <= 0 or abs(n - round(n)) > 1e-6 * n:
            raise line.error(f"the step period {period:g} is not a whole number of increments {dt:g}")
        t0 = times[-1]
        times += list(t0 + period * np.arange(1, round(n) + 1) / round(n))
        spans.append((t0, t0 + period))
    return np.array(times), spans


@dataclass
class _Cond:
    kind: str  # dirichlet, cload, dload
    name: str
    targets: list  # node indices / (element, face) pairs
    components: tuple[int, ...]
    value: float
    amplitude: Amplitude | None
    amp_key: object


def _amplitude_of(card: _Card, step: _Step | None, span, amplitudes, n_steps: int):
    name = card.params.get("AMPLITUDE", "").upper()
    if name:
        if name not in amplitudes:
            raise card.line.error(f"unknown amplitude {name}")
        amp, total = amplitudes[name]
        if not total and n_steps > 1:
            raise card.line.error(f"amplitude {name} is in step time and the deck has {n_steps} steps: "
                                  "romdask supports step-time amplitudes in single-step decks only; "
                                  "use *AMPLITUDE,TIME=TOTAL TIME")
        return amp, name
    if step is None or step.card.params.get("AMPLITUDE", "RAMP").upper() == "STEP":
        return None, None
    return Amplitude([span[0], span[1]], [0.0, 1.0]), ("ramp", span)


def _rows(card: _Card, mesh: Mesh, node_index, element_index) -> list[tuple[str, list, tuple[int, ...], float]]:
    """(target text, targets, components, value) per data line of a load card."""
    out = []
    for line, tokens in card.rows:
        target = tokens[0] if tokens else ""
        if card.keyword == "*DLOAD":
            if len(tokens) < 3 or not (tokens[1].upper().startswith("P") and tokens[1][1:].isdigit()):
                raise line.error(f"*DLOAD label {tokens[1] if len(tokens) > 1 else '(none)'}: only pressures "
                                 "P1..P6 are supported")
            face = int(tokens[1][1:]) - 1
            if not 0 <= face <= 5:
                raise line.error(f"pressure face {tokens[1]} outside P1..P6")
            elements = _targets(line, target, mesh.element_sets, element_index, "element")
            out.append((target, [(int(e), face) for e in elements], (), _float(line, tokens[2], "pressure")))
            continue
        nodes = _targets(line, target, mesh.node_sets, node_index, "node")
        if card.keyword == "*CLOAD":
            if len(tokens) < 3:
                raise line.error("*CLOAD lines are 'node or node set, dof, value'")
            dof = _int(line, tokens[1], "dof")
            if dof not in (1, 2, 3):
                raise line.error(f"*CLOAD dof {dof}: only forces 1..3 are supported")
            out.append((target, list(nodes), (dof - 1,), _float(line, tokens[2], "force")))
        else:
            if len(tokens) < 2:
                raise line.error("*BOUNDARY lines are 'node or node set, first dof[, last dof[, value]]'")
            first = _int(line, tokens[1], "dof")
            last = _int(line, tokens[2], "dof") if len(tokens) > 2 and tokens[2] else first
            if not (1 <= first <= last <= 3):
                raise line.error(f"*BOUNDARY dofs {first}..{last}: only displacements 1..3 are supported")
            value = _float(line, tokens[3], "prescribed value") if len(tokens) > 3 else 0.0
            out.append((target, list(nodes), tuple(range(first - 1, last)), value))
    return out


def _targets(line: _Line, target: str, sets, index, what: str) -> np.ndarray:
    try:
        number = int(target)
    except ValueError:
        number = None
    if number is not None:
        try:
            return index([number])
        except KeyError:
            raise line.error(f"unknown {what} id {number}") from None
    if target.upper() not in sets:
        raise line.error(f"unknown {what} set {target!r}")
    return np.asarray(sets[target.upper()])


def _conditions(card: _Card, rows, amp, amp_key) -> list[_Cond]:
    """Conditions of one card: one per card with a ``** romdask name=`` comment, else one per
    target and value (components of one target merged; one per component for forces)."""
    kind = {"*BOUNDARY": "dirichlet", "*CLOAD": "cload", "*DLOAD": "dload"}[card.keyword]
    groups: dict[tuple, _Cond] = {}
    for target, items, comps, value in rows:
        split = comps if kind == "cload" else ()
        key = (card.hint, value, split) if card.hint is not None else (target.upper(), value, split)
        cond = groups.get(key)
        if cond is None:
            groups[key] = _Cond(kind, card.hint or target, list(items), tuple(comps), value, amp, amp_key)
        else:
            cond.targets += [t for t in items if t not in cond.targets]
            cond.components = tuple(sorted(set(cond.components) | set(comps)))
    conds = list(groups.values())
    if card.hint is not None and len(conds) > 1:
        raise card.line.error(f"the card named {card.hint!r} mixes values or force directions")
    return conds


def _keys(cond: _Cond) -> list[tuple]:
    if cond.kind == "dload":
        return [("dload", e, f) for e, f in cond.targets]
    return [(cond.kind, int(n), c) for n in cond.targets for c in cond.components]


def _same(old: tuple, new: tuple) -> bool:
    """A repeated condition: same value and amplitude, or the same value ramped (= constant)."""
    ramp = isinstance(new[1], tuple) and new[1][0] == "ramp"
    return old[0] == new[0] and (old[1] == new[1] or ramp)


def _build(path, mesh, model, steps, amplitudes, spans) -> list[_Cond]:
    node_index, element_index = mesh.node_index, mesh.element_index
    conds: list[_Cond] = []
    owner: dict[tuple, tuple] = {}

    def add(card, step, span):
        amp, amp_key = _amplitude_of(card, step, span, amplitudes, len(steps))
        for cond in _conditions(card, _rows(card, mesh, node_index, element_index), amp, amp_key):
            sig = (cond.value, cond.amp_key if cond.value != 0.0 else None)
            keys = _keys(cond)
            clash = [k for k in keys if k in owner and not _same(owner[k], sig)]
            if clash:
                raise card.line.error(f"{cond.name}: changes an earlier condition on {clash[0][:3]} (value / "
                                      "amplitude); romdask supports conditions that hold for the whole run")
            new = [k for k in keys if k not in owner]
            if new and step is not None and step is not steps[0]:
                raise card.line.error(f"{cond.name}: a condition first applied in a later step is not supported; "
                                      "apply it from the first step with a TIME=TOTAL TIME amplitude")
            if not new:
                continue
            if len(new) != len(keys):
                raise card.line.error(f"{cond.name}: partly repeats an earlier condition")
            for k in keys:
                owner[k] = sig
            conds.append(cond)

    for card in model:
        if card.keyword == "*BOUNDARY" and card.params.get("AMPLITUDE"):
            raise card.line.error("*BOUNDARY with AMPLITUDE= outside a step is not supported")
        if card.keyword in ("*BOUNDARY", "*CLOAD", "*DLOAD"):
            add(card, None, None)
    for step, span in zip(steps, spans):
        for card in step.loads:
            if card.params.get("OP", "MOD").upper() != "MOD":
                raise card.line.error("OP=NEW is not supported")
            add(card, step, span)
    return conds


def _unique(conds: list[_Cond]) -> None:
    seen: dict[str, int] = {}
    for cond in conds:
        base = cond.name or cond.kind
        n = seen.get(base, 0)
        seen[base] = n + 1
        if n:
            cond.name = f"{base}_{n + 1}"


def read_problem(path: str | Path, *, name: str | None = None) -> Problem:
    """Read a CalculiX deck as a :class:`~romdask.problem.Problem`.

    Parameters
    ----------
    path : the ``.inp`` deck (``*INCLUDE`` files are followed)
    name : problem name (default: the file stem)

    Returns
    -------
    Problem
        Mesh as :func:`read_inp`; one law (LinearElastic or CalculixViscoplastic; Norton creep
        only when the steps are ``*VISCO``) or one per ``*SOLID SECTION`` element set;
        Dirichlet / NodalForce / Pressure conditions with their amplitudes on the total time
        (a condition without amplitude: ramped over its step, or constant); ``times`` = the
        fixed increments of the steps. Names: from the ``** romdask name=`` comments of
        :func:`~romdask.hifi.calculix.write_deck`, else the node / element set (or
        ``node<id>``) of the lines, made unique with ``_2``, ``_3``.

    Raises
    ------
    ValueError
        Unsupported keywords or options (ALL of them listed with their lines), unsupported step
        semantics (a condition changed, added or removed after the first step, step-time
        amplitudes in several steps), unreadable numbers, unknown sets, materials or
        amplitudes: the message names the file and the line.

    Notes
    -----
    Two passes over the deck (the mesh with :func:`read_inp`, then the rest); cost as read_inp.
    """
    path = Path(path)
    model, steps, problems = _scan(path)
    if problems:
        raise ReaderError(path, f"{len(problems)} unsupported keyword(s) / option(s): " + "; ".join(problems)
                          + ". romdask reads meshes, isotropic *ELASTIC, *PLASTIC, *CREEP,LAW=NORTON, "
                          "*BOUNDARY, *CLOAD, *DLOAD (P1..P6), *AMPLITUDE, *STATIC / *VISCO steps")
    if not steps:
        raise ReaderError(path, "no *STEP: romdask needs the increments of a *STATIC or *VISCO step")
    mesh = read_inp(path)
    kinds = {s.procedure.keyword for s in steps}
    if len(kinds) > 1:
        raise ReaderError(path, "*STATIC and *VISCO steps mixed: creep would be on in some steps only")
    laws = _laws(model, visco=kinds == {"*VISCO"})
    material = _material(path, mesh, model, laws)
    times, spans = _times(steps)
    conds = _build(path, mesh, model, steps, _amplitudes(model), spans)
    _unique(conds)
    dirichlet, loads = [], []
    for c in conds:
        if c.kind == "dirichlet":
            dirichlet.append(Dirichlet(np.array(c.targets), c.components, c.value, c.amplitude, name=c.name))
        elif c.kind == "cload":
            loads.append(NodalForce(np.array(c.targets), c.components[0], c.value, c.amplitude, name=c.name))
        else:
            loads.append(Pressure(np.array(c.targets), c.value, c.amplitude, name=c.name))
    try:
        return Problem(mesh, material, tuple(dirichlet), times, tuple(loads), name=name or path.stem,
                       metadata={"source": str(path)})  # fmt: skip
    except ValueError as exc:
        raise ReaderError(path, str(exc)) from None
