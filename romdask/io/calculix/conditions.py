"""Load cards of a CalculiX deck, step after step, as romdask load patterns on the total time.

CalculiX's rules (``CalculiX.c``, ``tempload.f``; checked with ccx 2.20): a boundary condition or
load keeps its value and amplitude from step to step until a later card sets the same node and
dof (or face) again. Within a step its value is

* ``value * a(total time)`` with a ``TIME=TOTAL TIME`` amplitude;
* ``value * a(step time)`` with a step-time amplitude (the default ``TIME``);
* without ``AMPLITUDE=``: ramped linearly over the step from its value at the step start
  (``*STATIC``, or ``*STEP,AMPLITUDE=RAMP``), or applied at once (``*VISCO``, or
  ``*STEP,AMPLITUDE=STEP``);
* at the start of each later step, a condition without a total-time amplitude keeps the value
  it reached (its step-time amplitude is dropped).

Every dof or face thus follows a piecewise-linear function of the total time, which is exactly
a romdask ``value * Amplitude`` on the run's output times. A jump at the start of a later step
(a value applied at once, or a step-time amplitude that does not start where the previous step
ended) is spread over the step's first increment, which is what CalculiX does with it. Dofs and
faces with the same function and the same first card become one pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.cards import Card, parse_float
from romdask.io.calculix.steps import DeckStep, StepSpan
from romdask.io.calculix.targets import body_elements, load_rows
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Gravity, NodalForce, Pressure

__all__ = ["deck_amplitudes", "deck_conditions"]

_KINDS = {"*BOUNDARY": "dirichlet", "*CLOAD": "cload", "*DLOAD": "dload", "*DSLOAD": "dload"}


def deck_amplitudes(model: Sequence[Card]) -> dict[str, tuple[Amplitude, bool]]:
    """Name -> (table, True for ``TIME=TOTAL TIME``) of the deck's tabular ``*AMPLITUDE`` cards
    (default: step time, as in CalculiX)."""
    out = {}
    for card in model:
        if card.keyword != "*AMPLITUDE":
            continue
        name = card.params.get("NAME", "")
        if not name:
            raise card.line.error("*AMPLITUDE without NAME=")
        values = [parse_float(line, t, "amplitude value") for line, items in card.rows for t in items]
        if len(values) < 2 or len(values) % 2:
            raise card.line.error(f"*AMPLITUDE {name}: pairs 'time, value' expected")
        try:
            out[name] = (Amplitude(values[0::2], values[1::2]), card.params.get("TIME") == "TOTALTIME")
        except ValueError as exc:
            raise card.line.error(f"*AMPLITUDE {name}: {exc}") from None
    return out


@dataclass(frozen=True)
class _Spec:
    """How a card sets a key: mode "amplitude" (with ``amplitude``), "ramp" or "once"."""

    value: float
    mode: str
    amplitude: str | None = None


class _History:
    """Per key: the (step, spec) of every card that set it; for the first card's line, its rank,
    name and group (the ``** romdask name=``, the set / surface name, or the card for lines
    naming single ids: a card listing nodes one by one makes one pattern of them)."""

    def __init__(self) -> None:
        self.changes: dict[tuple, list[tuple[int, _Spec]]] = {}
        self.origin: dict[tuple, tuple[int, str, object]] = {}
        self.lines: dict[tuple, object] = {}  # first line of each body-force key

    def set(self, key: tuple, step: int, spec: _Spec, name: str, card: Card, group: object) -> None:
        """A card sets ``key`` in ``step``: a boundary replaces what was set before in the step (or
        in the model data); loads set twice in one step add up (with the same amplitude), as in
        CalculiX (``bounadd.f``, ``forcadd.f``, ``loadadd.f``)."""
        changes = self.changes.setdefault(key, [])
        if key not in self.origin:
            self.origin[key] = (len(self.origin), name, group)
        if not changes or changes[-1][0] != step:
            changes.append((step, spec))
            return
        before = changes[-1][1]
        if key[0] != "dirichlet":
            if (before.mode, before.amplitude) != (spec.mode, spec.amplitude):
                raise card.line.error(f"{name}: a second load on {key[0]} {key[1:]} with another amplitude in "
                                      "the same step (CalculiX refuses it too)")
            spec = _Spec(before.value + spec.value, spec.mode, spec.amplitude)
        changes[-1] = (step, spec)


def _spec(card: Card, mode: str, amplitudes: dict, value: float) -> _Spec:
    """The spec of a card's line; ``mode`` applies without ``AMPLITUDE=``."""
    name = card.params.get("AMPLITUDE", "")
    if not name:
        return _Spec(value, mode)
    if name not in amplitudes:
        raise card.line.error(f"unknown amplitude {name}")
    return _Spec(value, "amplitude", name)


def _record(history: _History, cards: list[tuple[int, Card]], spans, amplitudes, mesh: Mesh) -> None:
    """Every line of the load cards (step -1: model data, applied as in the first step)."""
    lookups: dict = {}
    for step, card in cards:
        kind = _KINDS[card.keyword]
        if card.params.get("OP", "MOD") != "MOD":
            raise card.line.error("OP=NEW is not supported (romdask patterns hold from their first step on)")
        mode = "model" if step < 0 else spans[step].default
        for row in load_rows(card, mesh, lookups):
            spec = _spec(card, mode, amplitudes, row.value)
            name = card.hint or row.target
            group = card.hint or (("ids", card.line) if row.target.isdigit() else row.target)
            for key in row.keys:
                history.lines.setdefault(key, row.line)
                if kind == "dirichlet" and step > 0 and key not in history.origin:
                    raise row.line.error(
                        f"{name}: a prescribed displacement first applied in step {step + 1} is not supported "
                        "(a romdask pattern constrains its dofs for the whole run); constrain the dofs from "
                        "the first step, with an amplitude that is zero before")
                history.set(key, max(step, 0), spec, name, card, group)


def _segment(spec: _Spec | None, span: StepSpan, v_start: float, amplitudes: dict):
    """(function of t, breakpoints inside the step) of one step of one key."""
    t0, t1 = span.start, span.end
    if spec is None:
        return (lambda t: v_start), []
    mode = spec.mode if spec.mode != "model" else span.model_default
    v = spec.value
    if mode == "amplitude":
        amp, total = amplitudes[spec.amplitude]
        shift = 0.0 if total else t0
        inner = [float(b) + shift for b in amp.times if t0 < float(b) + shift < t1]
        return (lambda t: v * float(amp(t - shift))), inner
    if mode == "ramp":
        return (lambda t: v_start + (v - v_start) * (t - t0) / (t1 - t0)), []
    return (lambda t: v), []  # once


def _function(changes: list[tuple[int, _Spec]], spans: Sequence[StepSpan], amplitudes: dict):
    """Piecewise-linear (times, values) of one key over all steps."""
    by_step = dict(changes)
    times, values = [], []
    spec, v_end = None, 0.0
    for k, span in enumerate(spans):
        if k in by_step:
            spec = by_step[k]
        elif spec is not None and k > 0 and not (spec.mode == "amplitude" and amplitudes[spec.amplitude][1]):
            spec = None  # CalculiX keeps the value reached, drops a step-time amplitude
        f, inner = _segment(spec, span, v_end, amplitudes)
        start = f(span.start)
        if k > 0 and abs(start - v_end) > 1e-12 * max(abs(start), abs(v_end)):
            # a jump at a later step's start: CalculiX applies it over the first increment
            points = [(span.first, f(span.first))] + [(b, f(b)) for b in inner if b > span.first]
        else:
            points = ([(span.start, start)] if k == 0 else []) + [(b, f(b)) for b in inner]
        points.append((span.end, f(span.end)))
        for t, v in points:
            if not times or t > times[-1]:
                times.append(t)
                values.append(v)
        v_end = values[-1]
    return np.array(times), np.array(values)


def _value_amplitude(changes, times, values, amplitudes, n_steps: int) -> tuple[float, Amplitude | None]:
    """A pattern's (value, amplitude): the deck's table itself when one amplitude with one value
    holds over the whole run, else the function divided by the first nonzero value."""
    specs = [s for _, s in changes]
    one = {(s.mode, s.value, s.amplitude) for s in specs}
    if changes[0][0] == 0 and len(one) == 1 and specs[0].mode == "amplitude":
        amp, total = amplitudes[specs[0].amplitude]
        if total or n_steps == 1:
            return specs[0].value, amp
    if np.all(values == values[0]):
        return float(values[0]), None
    reference = next((s.value for s in specs if s.value != 0.0), float(np.abs(values).max()))
    return reference, Amplitude(times, values / reference)


def deck_conditions(
    mesh: Mesh,
    model: Sequence[Card],
    steps: Sequence[DeckStep],
    spans: Sequence[StepSpan],
    densities: np.ndarray | None = None,
) -> tuple[tuple[Dirichlet, ...], tuple[NodalForce | Pressure | Centrifugal | Gravity, ...]]:
    """The deck's ``*BOUNDARY``, ``*CLOAD``, ``*DLOAD``, ``*DSLOAD`` as romdask patterns.

    Parameters
    ----------
    mesh : the deck's mesh
    model : the cards before the first step (``*AMPLITUDE``, ``*BOUNDARY``...)
    steps, spans : the steps and their spans (:func:`romdask.io.calculix.steps.step_times`)
    densities : the ``*DENSITY`` of each element's material (NaN: none), for ``*DLOAD``
        ``CENTRIF`` / ``GRAV`` (a body force on elements of several densities becomes one
        pattern per density)

    Returns
    -------
    dirichlet, loads
        One pattern per (first card line's set or surface, or first card for lines naming
        single ids; function of time), nodal forces also per direction, prescribed displacements
        also per set of components; in order of first appearance. Names: the card's
        ``** romdask name=`` comment, else the set / surface name or the id of the first line
        (made unique later).

    Raises
    ------
    ReaderError
        Loads outside a step, ``AMPLITUDE=`` on model-data boundaries, ``OP=NEW``, a
        prescribed displacement first applied after the first step, unknown amplitudes, and
        what :func:`~romdask.io.calculix.targets.load_rows` raises.
    """
    amplitudes = deck_amplitudes(model)
    cards: list[tuple[int, Card]] = []
    for card in model:
        if card.keyword in ("*CLOAD", "*DLOAD", "*DSLOAD"):
            raise card.line.error(f"{card.keyword} outside a *STEP (CalculiX accepts it only within a step)")
        if card.keyword == "*BOUNDARY":
            if card.params.get("AMPLITUDE"):
                raise card.line.error("*BOUNDARY with AMPLITUDE= outside a step is not supported; "
                                      "move the card into the first step")
            cards.append((-1, card))
    cards += [(k, card) for k, step in enumerate(steps) for card in step.loads if card.keyword in _KINDS]
    history = _History()
    _record(history, cards, spans, amplitudes, mesh)
    return _patterns(history, spans, amplitudes, mesh, densities)


def _body_loads(keys, history: _History, mesh: Mesh, densities, value: float, amp, name: str) -> list:
    """Centrifugal / Gravity patterns of one group of body-force keys, one per density."""
    _, _, label, geometry = keys[0]
    line = history.lines[keys[0]]
    elements = np.unique(np.concatenate([body_elements(history.lines[k], k[1], mesh) for k in keys]))
    rho = np.full(mesh.n_elements, np.nan) if densities is None else np.asarray(densities, np.float64)
    missing = elements[np.isnan(rho[elements])]
    if missing.size:
        raise line.error(f"{name}: *DLOAD {label} on elements without *DENSITY in their material (ids "
                         f"{mesh.element_ids[missing[:10]].tolist()}); add *DENSITY to the material")
    out = []
    values = np.unique(rho[elements])
    for k, density in enumerate(values.tolist()):
        part = elements[rho[elements] == density]
        label_name = name if k == 0 else f"{name}_rho{k + 1}"
        if label == "CENTRIF":
            out.append(Centrifugal(part, value, geometry[0], geometry[1], density, amp, name=label_name))
        else:
            out.append(Gravity(part, value, geometry[0], density, amp, name=label_name))
    return out


def _patterns(history: _History, spans, amplitudes, mesh: Mesh, densities=None):
    """Keys with the same first group and the same function of time -> one pattern each, named
    after the first key's line."""
    groups: dict[tuple, list[tuple]] = {}
    for key, changes in history.changes.items():
        rank, _, origin = history.origin[key]
        kind = key[0]
        extra = key[2] if kind == "cload" else key[2:] if kind == "body" else None
        group = (kind, origin, extra, tuple(changes))
        groups.setdefault(group, []).append((rank, key))
    dirichlet, loads = [], []
    for group, members in sorted(groups.items(), key=lambda item: min(r for r, _ in item[1])):
        kind, _, _, changes = group
        times, values = _function(list(changes), spans, amplitudes)
        value, amp = _value_amplitude(list(changes), times, values, amplitudes, len(spans))
        keys = [k for _, k in sorted(members)]
        name = history.origin[keys[0]][1]
        if kind == "dirichlet":
            dirichlet += _dirichlet(keys, {k: history.origin[k][1] for k in keys}, value, amp)
        elif kind == "cload":
            loads.append(NodalForce(np.array([k[1] for k in keys]), keys[0][2], value, amp, name=name))
        elif kind == "body":
            loads += _body_loads(keys, history, mesh, densities, value, amp, name)
        else:
            loads.append(Pressure(np.array([k[1:] for k in keys]), value, amp, name=name))
    return tuple(dirichlet), tuple(loads)


def _dirichlet(keys, names: dict, value: float, amp) -> list[Dirichlet]:
    """Dirichlet conditions (nodes x components) of one group: one per set of components, named
    after its first node's line."""
    components: dict[int, list[int]] = {}
    for _, node, comp in keys:
        components.setdefault(node, []).append(comp)
    by_set: dict[tuple[int, ...], list[int]] = {}
    for node, comps in components.items():
        by_set.setdefault(tuple(sorted(set(comps))), []).append(node)
    return [Dirichlet(np.array(nodes), comps, value, amp, name=names[("dirichlet", nodes[0], comps[0])])
            for comps, nodes in by_set.items()]
