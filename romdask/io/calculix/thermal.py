"""Temperatures of a CalculiX deck as romdask :class:`~romdask.problem.loads.Temperature` patterns.

CalculiX 2.20's rules, measured with ccx here (``NT`` output of one-element decks; the source
is ``temperatures.f``, ``tempload.f``, ``utempread.c``):

* ``*INITIAL CONDITIONS,TYPE=TEMPERATURE`` (node or node set, value) gives T0. A node without
  one gets the marker 1.2357111317 of a user routine: romdask refuses such decks.
* A ``*TEMPERATURE`` line REPLACES the node's temperature (a later line or step wins); the node
  keeps its value and amplitude in later steps until another card names it.
* With ``AMPLITUDE=a``: ``value * a(total time)`` for a ``TIME=TOTAL TIME`` amplitude, else
  ``value * a(step time)`` -- and, unlike ``*BOUNDARY`` and the loads, a step-time amplitude
  is KEPT in the later steps, re-evaluated on each step's own step time (measured: 100 x a at
  step time 0.5 in the next step gives 50).
* Without ``AMPLITUDE=``: at once in ``*VISCO`` (the first increment already has the value),
  ramped linearly over the step from the value at its start in ``*STATIC`` or with
  ``*STEP,AMPLITUDE=RAMP``.
* ``FILE=heat.frd[,BSTEP=n]`` (n = 1 by default): the LAST ``NDTEMP`` block of step n of that
  results file, for every node in it. It sets the values only: a node keeps the amplitude it
  had (``iamt1``); a node without one follows the procedure (at once in ``*VISCO``, ramped in
  ``*STATIC``) -- ``*STEP,AMPLITUDE=RAMP`` does not ramp a FILE= field. ``ESTEP=`` is not a
  2.20 parameter (ccx warns and ignores it): refused here.
* At the end of each step CalculiX.c means to drop step-time temperature amplitudes (as it
  does for the loads), but its loop over the nodes is missing: only node NUMBER
  ``3 nbody + 2`` (``nbody`` body loads defined so far; node 2 without) loses its step-time
  amplitude (also the RAMP / STEP of ``*STEP,AMPLITUDE=``) and holds the value it reached.
  Reproduced as it is (measured with and without a ``GRAV`` load).
* The first increment starts from T0 (``t1old = t0``).

ccx evaluates the temperatures at the end of each increment only (with ``DIRECT``, the output
times), the first increment of a step starting from the previous value; so does the read
problem: every node's temperature is T0 at t = 0, then ccx's value at each output time, linear
in between -- amplitude breakpoints between output times, which ccx never sees, are not knots
(the built-in solver would cut its increments there). Nodes are grouped by their first card
line's set (or card, for single ids) and by the sequence of (step, mode, amplitude) that set
them; each group becomes:

1. one pattern ``values x the deck's table`` when it is one ``AMPLITUDE=`` card of the first
   step holding for the whole run (a total-time amplitude, or a single step), starting at T0,
   whose breakpoints are output times;
2. else one pattern ``values x amplitude`` when its temperatures are proportional (exactly, to
   1e-12) on the knots (the output times where some node leaves a straight line);
3. else one pattern per knot ``tau_j``, ``values = T(tau_j)`` times the hat amplitude of
   ``tau_j`` (1 at tau_j, 0 at the neighbouring knots): the hats sum to 1, so the sum is the
   piecewise-linear interpolant, exact at every output time. Named ``<name>@<tau_j>``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.cards import Card, DeckLine, parse_float
from romdask.io.calculix.conditions import deck_amplitudes
from romdask.io.calculix.steps import DeckStep, StepSpan
from romdask.io.calculix.targets import node_targets
from romdask.io.run import ReaderError
from romdask.problem.loads import Amplitude, Temperature

__all__ = ["deck_initial_temperature", "deck_temperatures"]

logger = logging.getLogger(__name__)

_TOL = 1e-12


def deck_initial_temperature(path: Path, mesh: Mesh, model: Sequence[Card]) -> np.ndarray | None:
    """T0 per node from ``*INITIAL CONDITIONS,TYPE=TEMPERATURE`` (None: no such card).

    Raises
    ------
    ReaderError
        Other ``TYPE=``, malformed lines, unknown nodes or sets, nodes of elements left without
        an initial temperature.
    """
    cards = [c for c in model if c.keyword == "*INITIAL CONDITIONS"]
    if not cards:
        return None
    t0 = np.full(mesh.n_nodes, np.nan)
    lookups: dict = {}
    for card in cards:
        if card.params.get("TYPE") != "TEMPERATURE":
            raise card.line.error(f"*INITIAL CONDITIONS,TYPE={card.params.get('TYPE', '(none)')}: romdask reads "
                                  "TYPE=TEMPERATURE only")
        for line, items in card.rows:
            if len(items) < 2:
                raise line.error("*INITIAL CONDITIONS,TYPE=TEMPERATURE lines are 'node or node set, temperature'")
            nodes = node_targets(line, items[0], mesh, lookups)
            t0[nodes] = parse_float(line, items[1], "initial temperature")
    used = np.zeros(mesh.n_nodes, bool)
    for b in mesh.blocks:
        used[np.asarray(b.connectivity).ravel()] = True
    missing = np.flatnonzero(used & np.isnan(t0))
    if missing.size:
        raise cards[0].line.error(
            f"{missing.size} node(s) of elements have no initial temperature (ids "
            f"{mesh.node_ids[missing[:10]].tolist()}...); CalculiX would give them the marker 1.2357111317 of a user "
            "routine: give every node an initial temperature")
    t0[np.isnan(t0)] = 0.0  # nodes of no element: never used
    return t0


def _file_values(card: Card, line: DeckLine, mesh: Mesh, deck: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(node indices, temperatures) of ``*TEMPERATURE,FILE=`` (last NDTEMP block of step BSTEP)."""
    from romdask.io.calculix.frd import read_frd

    name = card.params["FILE"]
    path = Path(name) if Path(name).is_absolute() else deck.parent / name
    if not path.is_file():
        raise line.error(f"*TEMPERATURE,FILE={name}: no such results file (looked for {path})")
    step_text = card.params.get("BSTEP", "1")
    try:
        step = int(float(step_text))
    except ValueError:
        raise line.error(f"*TEMPERATURE BSTEP={step_text} is not a step number") from None
    try:
        results = read_frd(path)
    except ReaderError as exc:
        raise line.error(f"*TEMPERATURE,FILE={name}: {exc}") from None
    blocks = [b for b in results.select("NDTEMP") if b.step == step]
    if not blocks:
        steps = sorted({b.step for b in results.select("NDTEMP")})
        logger.warning("%s line %d: %s has no NDTEMP block in step %d (steps with temperatures: %s); CalculiX "
                       "keeps the temperatures unchanged", line.path, line.number, path, step, steps)
        return None
    ids, values = results.read(blocks[-1])
    if values.shape[1] != 1:
        raise line.error(f"*TEMPERATURE,FILE={name}: {blocks[-1].describe()} has {values.shape[1]} components")
    try:
        nodes = mesh.node_index(ids)
    except KeyError as exc:
        raise line.error(f"*TEMPERATURE,FILE={name}: node ids of the results file not in the deck: "
                         f"{exc.args[0]}") from None
    return np.asarray(nodes, np.int64), values[:, 0]


_OPTIONS = {"AMPLITUDE", "OP", "FILE", "BSTEP"}


def _card_rows(card: Card, mesh: Mesh, deck: Path, lookups: dict) -> list[tuple[np.ndarray, np.ndarray, object, str]]:
    """(nodes, values, group, name) of each line of a ``*TEMPERATURE`` card (one entry for
    FILE=): the group is the ``** romdask name=``, the set name, or the card for lines naming
    single ids; the name the ``** romdask name=``, else the set or id of the line, else the file."""
    bad = sorted(set(card.params) - _OPTIONS)  # (problem.py lets ESTEP through for this message)
    if bad:
        hint = " (CalculiX 2.20 ignores ESTEP=: it takes the last increment of step BSTEP)" if "ESTEP" in bad else ""
        raise card.line.error(f"*TEMPERATURE option(s) {', '.join(bad)} not supported{hint}")
    if card.params.get("OP", "MOD") != "MOD":
        raise card.line.error("*TEMPERATURE,OP=NEW is not supported (CalculiX resets every node to its initial "
                              "temperature but keeps their amplitudes)")
    if "FILE" in card.params:
        if card.params.get("AMPLITUDE"):
            raise card.line.error("*TEMPERATURE with FILE= and AMPLITUDE=: CalculiX ignores the amplitude; remove it")
        if card.rows:
            raise card.rows[0][0].error("*TEMPERATURE,FILE= takes its temperatures from the file: remove the data "
                                        "lines (CalculiX would hand them to a user routine)")
        got = _file_values(card, card.line, mesh, deck)
        name = card.hint or Path(card.params["FILE"]).name
        return [] if got is None else [(got[0], got[1], ("file", card.line), name)]
    if "BSTEP" in card.params:
        raise card.line.error("*TEMPERATURE BSTEP= needs FILE=")
    out = []
    for line, items in card.rows:
        if len(items) != 2:
            raise line.error("*TEMPERATURE lines are 'node or node set, temperature' (gradients are for beams "
                             "and shells)")
        nodes = node_targets(line, items[0], mesh, lookups)
        value = parse_float(line, items[1], "temperature")
        group = card.hint or (("ids", card.line) if items[0].isdigit() else items[0].upper())
        out.append((nodes, np.full(len(nodes), value), group, card.hint or items[0].upper()))
    return out


def _evaluate(spec, span: StepSpan, v_start: np.ndarray, values: np.ndarray, amplitudes):
    """The function of t -> array of one step of a group (``v_start``: the values at the step's
    start, where a ramp starts from)."""
    t0, t1 = span.start, span.end
    if spec is None:
        return lambda t: v_start
    mode, amplitude = spec
    if mode == "amplitude":
        amp, total = amplitudes[amplitude]
        shift = 0.0 if total else t0
        return lambda t: values * float(amp(t - shift))
    if mode == "ramp":
        return lambda t: v_start + (values - v_start) * (t - t0) / (t1 - t0)
    return lambda t: values  # once


def _functions(changes, values: np.ndarray, t0: np.ndarray, spans: Sequence[StepSpan], times: np.ndarray,
               amplitudes) -> np.ndarray:
    """The temperatures (n_nodes, n_times) of a group's nodes at the output times: T0 at t = 0,
    then what ccx evaluates at the end of each increment (a value reached at a step's first
    increment is thus spread over that increment, as ccx's first increment starts from the
    previous value)."""
    by_step = {step: k for k, (step, _) in enumerate(changes)}
    columns: list[np.ndarray] = [t0]
    spec, current = None, np.zeros(0)
    for k, span in enumerate(spans):
        if k in by_step:
            spec = changes[by_step[k]][1]
            current = values[:, by_step[k]]
        f = _evaluate(spec, span, columns[-1], current, amplitudes)
        for t in times[(times > span.start) & (times <= span.end)]:
            columns.append(np.array(np.broadcast_to(f(float(t)), t0.shape), np.float64))
    return np.column_stack(columns)


def _knots(times: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Indices of the output times to keep: the first, the last, and every time where some
    node's temperature leaves the straight line between its kept neighbours."""
    scale = _TOL * max(np.abs(table).max(initial=0.0), 1.0)
    keep = [0]
    for j in range(1, len(times) - 1):
        a, b = keep[-1], j + 1
        w = (times[a + 1 : b] - times[a]) / (times[b] - times[a])
        line = table[:, [a]] + (table[:, [b]] - table[:, [a]]) * w[None, :]
        if np.any(np.abs(table[:, a + 1 : b] - line) > scale):
            keep.append(j)
    return np.array(keep + [len(times) - 1])


def _group_patterns(name, nodes, changes, values, t0, spans, times, amplitudes) -> list[Temperature]:
    step, (mode, amplitude) = changes[0]
    same = all(spec == changes[0][1] for _, spec in changes) and np.all(values == values[:, :1])
    if same and step == 0 and mode == "amplitude":  # one card (repeated in later steps: no change)
        amp, total = amplitudes[amplitude]
        inside = amp.times[(amp.times > 0.0) & (amp.times < times[-1])]
        on_times = np.all(np.min(np.abs(inside[:, None] - times[None, :]), axis=1) <= 1e-12 * times[-1]) \
            if inside.size else True
        if (total or len(spans) == 1) and on_times and np.all(values[:, 0] * float(amp(0.0)) == t0):
            return [Temperature(nodes, values[:, 0], amp, name=name)]
    full = _functions(changes, values, t0, spans, times, amplitudes)
    keep = _knots(times, full)
    knots, table = times[keep], full[:, keep]
    scale = np.abs(table).max(initial=0.0)
    j = int(np.argmax(np.linalg.norm(table, axis=0)))
    ref = table[:, j]
    r = int(np.argmax(np.abs(ref)))
    if ref[r] != 0.0:
        amp_values = table[r] / ref[r]
        if np.all(np.abs(table - np.outer(ref, amp_values)) <= _TOL * scale):
            return [Temperature(nodes, ref, Amplitude(knots, amp_values), name=name)]
    out = []
    for k, tau in enumerate(knots):
        hat = np.zeros(len(knots))
        hat[k] = 1.0
        out.append(Temperature(nodes, table[:, k], Amplitude(knots, hat), name=f"{name}@{tau:g}"))
    return out


def _spec(card: Card, step: DeckStep, span: StepSpan) -> tuple[str, str | None]:
    """(mode, amplitude) of a card's lines, as ccx stores them in ``iamt1``: a deck amplitude,
    the *STEP,AMPLITUDE=RAMP|STEP default (an internal step-time amplitude: "*STEP") or none
    (the procedure's rule: ramped in *STATIC, at once in *VISCO)."""
    name = card.params.get("AMPLITUDE", "")
    if name:
        return ("amplitude", name)
    return (span.default, "*STEP") if step.card.params.get("AMPLITUDE") else (span.model_default, None)


def _record(card, k, step, span, mesh, deck, amplitudes, lookups, history, origin, names) -> None:
    """The lines of one ``*TEMPERATURE`` card of step ``k`` into the nodes' histories."""
    name = card.params.get("AMPLITUDE", "")
    if name and name not in amplitudes:
        raise card.line.error(f"unknown amplitude {name}")
    spec = _spec(card, step, span)
    from_file = "FILE" in card.params
    for nodes, values, group, label in _card_rows(card, mesh, deck, lookups):
        names.setdefault(group, label)
        for node, value in zip(nodes.tolist(), values.tolist()):
            changes = history.setdefault(node, [])
            origin.setdefault(node, group)
            node_spec = spec
            if from_file:  # FILE= sets the values only: the node keeps its amplitude (iamt1)
                current = changes[-1][1] if changes else None
                node_spec = current if current is not None and current[1] is not None else (span.model_default, None)
            if changes and changes[-1][0] == k:
                changes[-1] = (k, node_spec, value)  # the last line of the step wins
            else:
                changes.append((k, node_spec, value))


def _body_counts(mesh: Mesh, steps: Sequence[DeckStep]) -> list[int]:
    """ccx's ``nbody`` at the end of each step: the distinct (element set, CENTRIF | GRAV,
    geometry) body loads defined so far."""
    from romdask.io.calculix.targets import load_rows

    keys: set = set()
    out = []
    lookups: dict = {}
    for step in steps:
        for card in step.loads:
            if card.keyword == "*DLOAD":
                keys |= {key for row in load_rows(card, mesh, lookups) for key in row.keys if key[0] == "body"}
        out.append(len(keys))
    return out


def _reset_after_step(history: dict, mesh: Mesh, nbody: int, k: int, amplitudes) -> None:
    """ccx 2.20's end-of-step reset of step-time temperature amplitudes, as it is: CalculiX.c
    ("resetting the amplitude to none except for time=total time amplitudes") lacks the loop
    over the nodes and resets only the node of index ``i`` left by the loop before it, node
    number ``3 nbody + 2``: that node loses a step-time amplitude (also RAMP / STEP of
    ``*STEP,AMPLITUDE=``) and holds the value it reached; every other node keeps its step-time
    amplitude (measured: node 2 without body loads)."""
    try:
        node = int(mesh.node_index(np.array([3 * nbody + 2]))[0])
    except KeyError:
        return
    changes = history.get(node)
    if not changes or changes[-1][1] is None:
        return
    mode, amplitude = changes[-1][1]
    step_time = amplitude == "*STEP" or (mode == "amplitude" and not amplitudes[amplitude][1])
    if step_time:
        changes.append((k, None, np.nan))


def deck_temperatures(
    deck: Path, mesh: Mesh, model: Sequence[Card], steps: Sequence[DeckStep], spans: Sequence[StepSpan],
    times: np.ndarray, t0: np.ndarray | None,
) -> tuple[Temperature, ...]:
    """The ``*TEMPERATURE`` cards of the steps as patterns (see the module docstring) on the
    run's output ``times`` (:func:`~romdask.io.calculix.steps.step_times`).

    Raises
    ------
    ReaderError
        ``*TEMPERATURE`` without initial temperatures or outside a step, unsupported options
        (``OP=NEW``, ``ESTEP=``, ``USER``...), unknown amplitudes, nodes, sets or files.
    """
    outside = next((c for c in model if c.keyword == "*TEMPERATURE"), None)
    if outside is not None:
        raise outside.line.error("*TEMPERATURE outside a *STEP (CalculiX accepts it only within a step)")
    cards = [(k, card) for k, step in enumerate(steps) for card in step.loads if card.keyword == "*TEMPERATURE"]
    if not cards:
        return ()
    if t0 is None:
        raise cards[0][1].line.error("*TEMPERATURE without *INITIAL CONDITIONS,TYPE=TEMPERATURE (CalculiX refuses "
                                     "it too)")
    amplitudes = deck_amplitudes(model)
    history: dict[int, list] = {}  # node -> [(step, spec, value)]
    origin: dict[int, object] = {}
    names: dict[object, str] = {}
    lookups: dict = {}
    bodies = _body_counts(mesh, steps)
    by_step: dict[int, list[Card]] = {}
    for k, card in cards:
        by_step.setdefault(k, []).append(card)
    for k in range(len(steps)):
        if k > 0:
            _reset_after_step(history, mesh, bodies[k - 1], k, amplitudes)
        for card in by_step.get(k, []):
            _record(card, k, steps[k], spans[k], mesh, deck, amplitudes, lookups, history, origin, names)
    groups: dict[tuple, list[int]] = {}
    for node, changes in history.items():
        groups.setdefault((origin[node], tuple((s, spec) for s, spec, _ in changes)), []).append(node)
    out: list[Temperature] = []
    for (group, structure), members in groups.items():
        nodes = np.array(sorted(members), np.int64)
        values = np.array([[v for _, _, v in history[n]] for n in nodes.tolist()], np.float64)
        out += _group_patterns(names[group], nodes, list(structure), values, t0[nodes], spans,
                               np.asarray(times, np.float64), amplitudes)
    return tuple(out)
