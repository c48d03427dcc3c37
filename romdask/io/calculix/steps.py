"""The steps of a CalculiX deck: their time spans and the output times of a run.

CalculiX's total time runs on from step to step; each ``*STATIC`` / ``*VISCO`` step has a data
line ``initial increment, period[, minimum, maximum]`` (default 1, 1). With ``DIRECT`` the
increments are fixed; without, CalculiX adapts them and only the results file (.frd) knows the
output times: :func:`step_times` takes them as ``times``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from romdask.io.calculix.cards import Card, parse_float

__all__ = ["DeckStep", "StepSpan", "step_times"]

logger = logging.getLogger(__name__)


@dataclass
class DeckStep:
    """The cards of one ``*STEP``: the step card, its procedure, its load cards in order."""

    card: Card
    procedure: Card | None = None
    loads: list[Card] = field(default_factory=list)


@dataclass(frozen=True)
class StepSpan:
    """Time span of a step on the total time.

    Attributes
    ----------
    start, end : total time at the start and end of the step
    first : end of the step's first increment (an output time; ``end`` if none is inside)
    default : how a load card of the step without ``AMPLITUDE=`` is applied: "ramp" (linear
        over the step from the value at its start: ``*STATIC`` or ``*STEP,AMPLITUDE=RAMP``) or
        "once" (at the step's first increment: ``*VISCO`` or ``*STEP,AMPLITUDE=STEP``)
    model_default : the same for the model-data cards (the ``*STEP`` option does not apply)
    """

    start: float
    end: float
    first: float
    default: str
    model_default: str


def _period(step: DeckStep) -> tuple[float, float]:
    """(initial increment, period) of a step's procedure data line."""
    proc = step.procedure
    line, items = proc.rows[0] if proc.rows else (proc.line, [])
    period = parse_float(line, items[1], "step period") if len(items) > 1 and items[1] else 1.0
    dt = parse_float(line, items[0], "time increment") if items and items[0] else period
    if dt <= 0 or period <= 0:
        raise line.error(f"the step period {period:g} and increment {dt:g} must be positive")
    return dt, period


def _fixed_times(steps: Sequence[DeckStep], periods: list[tuple[float, float]]) -> np.ndarray:
    """Output times of fixed increments (DIRECT, or the initial increment taken as fixed)."""
    times = [0.0]
    for step, (dt, period) in zip(steps, periods):
        proc = step.procedure
        line = proc.rows[0][0] if proc.rows else proc.line
        if "DIRECT" not in proc.params:
            logger.warning("%s line %d: no DIRECT: romdask uses fixed increments of %g (CalculiX may adapt "
                           "them; pass the .frd's output times as times= to follow CalculiX)",
                           line.path, line.number, dt)
        n = period / dt
        if abs(n - round(n)) > 1e-6 * n:
            hint = "" if "DIRECT" in proc.params else "; pass the run's output times (times=, e.g. the .frd's)"
            raise line.error(f"the step period {period:g} is not a whole number of increments {dt:g}{hint}")
        t0 = times[-1]
        times += list(t0 + period * np.arange(1, round(n) + 1) / round(n))
    return np.array(times)


def _given_times(times, ends: np.ndarray, where: Card) -> np.ndarray:
    """``times`` checked against the steps: 0 prepended, snapped to step ends within the .frd's
    print precision (6 digits)."""
    t = np.array(times, np.float64).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise where.line.error("times= must be finite, strictly increasing output times")
    for end in ends:
        t[np.abs(t - end) <= 1e-5 * end] = end
    t = t[t > 1e-12 * ends[-1]]  # the run's t = 0, if given
    if np.any(np.diff(t) <= 0):
        raise where.line.error("times= has two output times at one step end (within the .frd's 6 digits)")
    if t.size and t[-1] > ends[-1]:
        raise where.line.error(f"output time {t[-1]:g} is after the end of the last step ({ends[-1]:g}): "
                               "are these the times of another deck's run?")
    return np.concatenate([[0.0], t])


def step_times(steps: Sequence[DeckStep], times=None) -> tuple[np.ndarray, list[StepSpan]]:
    """Output times of a run of the deck's steps and the steps' spans.

    Parameters
    ----------
    steps : the deck's steps (each with a ``*STATIC`` or ``*VISCO`` procedure)
    times : the run's output times (e.g. the .frd's), or None: the increments of the steps,
        the initial increment taken as fixed without ``DIRECT`` (logged)

    Returns
    -------
    times : ndarray, starting at 0
    spans : one StepSpan per step

    Raises
    ------
    ReaderError
        Non-positive periods or increments; without ``times``, a period that is not a whole
        number of increments; given times that are not increasing or run past the last step.
    """
    periods = [_period(s) for s in steps]
    ends = np.cumsum([p for _, p in periods])
    if times is None:
        out = _fixed_times(steps, periods)
    else:
        out = _given_times(times, ends, steps[0].procedure)
    spans = []
    for step, end in zip(steps, ends):
        start = spans[-1].end if spans else 0.0
        inside = out[(out > start) & (out <= end)]
        option = step.card.params.get("AMPLITUDE")
        model_default = "once" if step.procedure.keyword == "*VISCO" else "ramp"
        default = {"RAMP": "ramp", "STEP": "once"}.get(option, model_default)
        spans.append(StepSpan(start, float(end), float(inside[0]) if inside.size else float(end), default,
                              model_default))
    return out, spans
