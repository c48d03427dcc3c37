"""The time-stepping driver shared by the built-in HF solver and the reduced Newton solver.

A solver implements the small :class:`Stepper` protocol (one Newton attempt over a
sub-increment from the committed state, commit, restore); :func:`march` walks the output times:
it splits each output interval at the load breakpoints inside it, cuts a failed sub-increment
in half (restoring the committed state), lets it grow again after easy sub-increments, counts
iterations, sub-increments and cuts per output step, keeps the residual histories, reports
progress and raises the solver's own error type, with the same message for both solvers, when
the smallest sub-increment fails. Both solvers therefore step identically on the same
scenario (same sub-increment times, bit for bit).

Imports numpy and the standard library only (the online stage uses it).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["StepFailure", "Stepper", "Stepping", "collect_breakpoints", "march", "segment_ends"]

logger = logging.getLogger(__name__)

#: breakpoints closer than this fraction of the output interval to one of its ends are dropped
#: (no sliver sub-increments)
SLIVER = 1e-9
#: a sub-increment ending within this fraction of the segment before its end reaches the end
SNAP = 1e-12
#: a converged sub-increment with at most this many iterations lets the next one double
EASY_ITERATIONS = 4


class StepFailure(Exception):
    """Raised by :meth:`Stepper.attempt` when a sub-increment fails; :func:`march` then restores
    the committed state and halves the sub-increment.

    Parameters
    ----------
    reason : what failed, for the log and the final error message (e.g. ``"residual growing"``,
        ``"local integration failed at 3 integration point(s)"``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stepper(Protocol):
    """What :func:`march` needs from a solver."""

    def attempt(self, t_old: float, t_new: float, history: list[float]) -> int:
        """Solve the sub-increment ``t_old -> t_new`` from the committed state (``t_new ==
        t_old`` for the initial equilibrium, dt = 0); append the relative residual of every
        iteration to ``history``; return the number of iterations; raise :class:`StepFailure`
        on failure. On success the solver holds (uncommitted) the converged state of ``t_new``."""
        ...

    def commit(self) -> None:
        """Make the converged state of the last attempt the committed state."""
        ...

    def restore(self) -> None:
        """Return to the committed state after a failed attempt."""
        ...


@dataclass
class Stepping:
    """What :func:`march` counted, per output step (``n_steps = len(times) - 1``).

    Attributes
    ----------
    iterations : (n_steps,) int64, iterations of the converged sub-increments (as the stepper
        counts them; failed attempts are not counted).
    subincrements : (n_steps,) int64, converged sub-increments.
    cuts : (n_steps,) int64, halvings of a failed sub-increment.
    residuals : per output step, the relative residuals of every attempt, failed ones included
        (the initial equilibrium's are not kept).
    """

    iterations: np.ndarray
    subincrements: np.ndarray
    cuts: np.ndarray
    residuals: list[list[float]]


def collect_breakpoints(tables: Iterable[Any]) -> np.ndarray:
    """Sorted distinct times of several amplitude tables (``(0,)`` float64 when there is none)."""
    arrays = [np.asarray(t, dtype=np.float64).ravel() for t in tables]
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0)


def segment_ends(t_a: float, t_b: float, breakpoints: Sequence[float]) -> list[float]:
    """Ends of the segments of the output interval ``[t_a, t_b]``: the breakpoints strictly
    inside it, except those within ``SLIVER * (t_b - t_a)`` of either end, then ``t_b``.

    ``breakpoints`` must be sorted ascending (as :func:`collect_breakpoints` returns them).
    Cost: O(log len(breakpoints)) plus the breakpoints inside.

    Examples
    --------
    >>> segment_ends(0.0, 1.0, [0.0, 1e-12, 0.25, 1.0, 2.0])
    [0.25, 1.0]
    """
    length = t_b - t_a
    inner = breakpoints[bisect.bisect_right(breakpoints, t_a):bisect.bisect_left(breakpoints, t_b)]
    ends = [float(t) for t in inner if t - t_a > SLIVER * length and t_b - t > SLIVER * length]
    ends.append(float(t_b))
    return ends


@dataclass(frozen=True)
class _Context:
    """The settings of one :func:`march` that failure messages, logs and progress need."""

    max_cuts: int
    error: type[Exception]
    prefix: str
    log: logging.Logger
    summary_level: int
    progress: Callable[[int, int, dict], None] | None


def _fail(ctx: _Context, step: int, t_now: float, t_next: float, segment: float, exc: StepFailure,
          history: list[float]) -> None:
    residuals = [float(f"{h:.3e}") for h in history]
    raise ctx.error(
        f"{ctx.prefix}no convergence at t={t_next:.6g} (output step {step}, from t={t_now:.6g}, "
        f"sub-increment size {t_next - t_now:.3g} = {segment:.3g} / 2**{ctx.max_cuts}, the minimum): "
        f"{exc.reason}; relative residuals of the step: {residuals}. Use smaller increments (more "
        "output times) or allow more cuts (max_cuts)."
    ) from exc


def _segment(stepper: Stepper, ctx: _Context, step: int, t_start: float, target: float,
             history: list[float]) -> tuple[int, int, int]:
    """Reach ``target`` from ``t_start`` by sub-increments; returns (iterations, sub-increments, cuts)."""
    segment = target - t_start
    dt = segment
    min_dt = segment * 0.5**ctx.max_cuts
    t_now = t_start
    iterations = subincrements = cuts = 0
    while t_now < target:
        t_next = target if t_now + dt >= target - SNAP * segment else t_now + dt
        try:
            n_iterations = stepper.attempt(t_now, t_next, history)
        except StepFailure as exc:
            stepper.restore()
            if dt / 2 < min_dt * (1 - 1e-12):
                _fail(ctx, step, t_now, t_next, segment, exc, history)
            ctx.log.info("t=%.6g: %s; cutting the increment to %.3g", t_next, exc.reason, dt / 2)
            dt /= 2
            cuts += 1
            continue
        stepper.commit()
        iterations += n_iterations
        subincrements += 1
        t_now = t_next
        if dt < segment and n_iterations <= EASY_ITERATIONS:  # easy after a cut: grow again
            dt = min(2 * dt, segment)
    return iterations, subincrements, cuts


def _equilibrate(stepper: Stepper, ctx: _Context, t0: float) -> None:
    """Equilibrium at ``t0`` with dt = 0 (a load or prescribed value is nonzero there)."""
    history: list[float] = []
    try:
        stepper.attempt(t0, t0, history)
    except StepFailure as exc:
        raise ctx.error(
            f"{ctx.prefix}initial equilibrium at t={t0:g} failed: {exc.reason}; relative residuals "
            f"{[float(f'{h:.3e}') for h in history]}. The load at the first output time must be "
            "reachable in one increment: start the amplitudes at 0 or lower them there."
        ) from exc
    stepper.commit()


def _report(ctx: _Context, step: int, n_steps: int, t: float, counts: tuple[int, int, int],
            history: list[float]) -> None:
    """Log the summary of an output step and call ``progress``."""
    if ctx.progress is None and not ctx.log.isEnabledFor(ctx.summary_level):
        return
    iterations, subincrements, cuts = counts
    residual = history[-1] if history else float("nan")
    ctx.log.log(ctx.summary_level, "output step %d/%d t=%.6g: %d iterations, %d sub-increments, %d cuts, "
                "residual %.3e", step, n_steps, t, iterations, subincrements, cuts, residual)
    if ctx.progress is not None:
        ctx.progress(step, n_steps, {"time": t, "iterations": iterations, "subincrements": subincrements,
                                     "cuts": cuts, "residual": residual})


def _check(times: np.ndarray, breakpoints: np.ndarray, max_cuts: int) -> None:
    if times.ndim != 1 or times.size < 2 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError(
            f"times must be a 1-D finite, strictly increasing array of at least two output times; got {times[:5]}..."
        )
    if breakpoints.ndim != 1 or not np.all(np.isfinite(breakpoints)):
        raise ValueError("breakpoints must be a 1-D array of finite times (see collect_breakpoints).")
    if int(max_cuts) != max_cuts or max_cuts < 0:
        raise ValueError(f"max_cuts must be an integer >= 0; got {max_cuts!r}.")


def march(
    stepper: Stepper,
    times: np.ndarray,
    breakpoints: np.ndarray | None = None,
    *,
    max_cuts: int = 8,
    equilibrate: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    error: type[Exception] = RuntimeError,
    name: str = "",
    log: logging.Logger | None = None,
    summary_level: int = logging.DEBUG,
) -> Stepping:
    """Step ``stepper`` (the solver, a :class:`Stepper`) through the output ``times``.

    Parameters
    ----------
    times : (n_steps + 1,) strictly increasing output times; ``times[0]`` is the initial state.
    breakpoints : times where a load may change direction (:func:`collect_breakpoints`; any
        order); those strictly inside an output interval become sub-increment ends
        (:func:`segment_ends`).
    max_cuts : a segment's sub-increment may be halved down to ``segment / 2**max_cuts``; a
        failure at that size raises ``error``.
    equilibrate : first solve the equilibrium at ``times[0]`` with dt = 0 (``attempt(t0, t0)``
        then ``commit``), for a load or prescribed value that is nonzero there.
    on_step : ``on_step(step, time)``, called with the committed state of every output time,
        step 0 (after the initial equilibrium) included: the solver writes its outputs.
    progress : ``progress(step, n_steps, info)``, called after ``on_step`` for ``step >= 1``;
        ``info``: ``time``, ``iterations``, ``subincrements``, ``cuts``, ``residual`` (the last
        relative residual of the step).
    error, name : exception type raised on failure (the solver's own) and the prefix of its
        message (e.g. the problem's name). The message gives the time, the output step, the
        sub-increment size against the minimum, the reason and the step's relative residuals.
    log, summary_level : logger of the cut messages (INFO) and of the per-step summaries (at
        ``summary_level``); default this module's. A solver passes its own logger.

    Returns
    -------
    Stepping
        Per-step iterations, sub-increments, cuts and residual histories.

    Raises
    ------
    ValueError
        Times not strictly increasing, non-finite breakpoints, ``max_cuts < 0``.
    error
        The smallest sub-increment failed, or the initial equilibrium failed.

    Notes
    -----
    Each segment between breakpoints starts with a sub-increment of the whole segment. A
    failed attempt (:class:`StepFailure`) is followed by ``restore`` and a half-size attempt;
    a converged one by ``commit`` and, when it took at most ``EASY_ITERATIONS`` iterations
    after a cut, by a doubled size (capped at the segment). A sub-increment ending within
    ``SNAP`` of the segment end is stretched to it, so breakpoints and output times are hit
    exactly. The state is committed only at converged sub-increments. Cost: a few Python
    operations per attempt besides the stepper's work; memory: the residual histories.
    """
    times = np.asarray(times, dtype=np.float64)
    breakpoints = np.zeros(0) if breakpoints is None else np.asarray(breakpoints, dtype=np.float64)
    _check(times, breakpoints, max_cuts)
    sorted_breakpoints = np.unique(breakpoints).tolist()
    ctx = _Context(int(max_cuts), error, f"{name}: " if name else "", logger if log is None else log,
                   summary_level, progress)
    n_steps = times.size - 1
    counts = np.zeros((3, n_steps), np.int64)  # iterations, sub-increments, cuts
    residuals: list[list[float]] = []
    if equilibrate:
        _equilibrate(stepper, ctx, float(times[0]))
    if on_step is not None:
        on_step(0, float(times[0]))
    for step in range(1, n_steps + 1):
        t_a, t_b = float(times[step - 1]), float(times[step])
        history: list[float] = []
        its = subs = cuts = 0
        t_now = t_a
        for target in segment_ends(t_a, t_b, sorted_breakpoints):
            i, n, c = _segment(stepper, ctx, step, t_now, target, history)
            its, subs, cuts = its + i, subs + n, cuts + c
            t_now = target
        counts[:, step - 1] = its, subs, cuts
        residuals.append(history)
        if on_step is not None:
            on_step(step, t_b)
        _report(ctx, step, n_steps, t_b, (its, subs, cuts), history)
    return Stepping(iterations=counts[0], subincrements=counts[1], cuts=counts[2], residuals=residuals)
