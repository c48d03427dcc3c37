"""The time-stepping driver (romdask.stepping) alone, with a fake solver whose failures are
known in advance: breakpoints, slivers, halving, regrowth, the minimum size and its error,
counts, commits, the initial equilibrium, on_step and progress."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from romdask.stepping import StepFailure, collect_breakpoints, march, segment_ends


class FakeError(RuntimeError):
    pass


class Fake:
    """A solver whose state is the time it reached: an attempt fails when the sub-increment is
    longer than ``limit`` (or always, with limit < 0) and otherwise takes ``iterations``
    iterations. Records every attempt and checks that each starts from the committed state."""

    def __init__(self, limit: float = np.inf, iterations: int = 1) -> None:
        self.limit, self.iterations = limit, iterations
        self.committed = self.current = None  # None: the initial state
        self.attempts: list[tuple[float, float, bool]] = []
        self.commits: list[float] = []
        self.restores = 0

    def attempt(self, t_old: float, t_new: float, history: list[float]) -> int:
        assert self.current == self.committed, "attempt not started from the committed state"
        assert self.committed is None or self.committed == t_old, "attempt not started at the committed time"
        self.current = t_new  # the attempt changes the state, failed or not
        ok = self.limit >= 0 and t_new - t_old <= self.limit
        self.attempts.append((t_old, t_new, ok))
        history.append(t_new - t_old)  # a recognizable "residual"
        if not ok:
            raise StepFailure(f"step {t_new - t_old:g} too long")
        return self.iterations

    def commit(self) -> None:
        self.committed = self.current
        self.commits.append(self.current)

    def restore(self) -> None:
        self.current = self.committed
        self.restores += 1


def steps(fake: Fake) -> list[tuple[float, float]]:
    return [(a, b) for a, b, _ in fake.attempts]


def test_breakpoints_are_hit_exactly_and_slivers_dropped():
    fake = Fake()
    bp = collect_breakpoints([[0.0, 0.5, 1.0], [1.0 + 1e-12, 1.7, 3.0], [2.0 - 1e-10]])
    result = march(fake, np.array([0.0, 1.0, 2.0]), bp)
    assert steps(fake) == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.7), (1.7, 2.0)]
    assert fake.commits == [0.5, 1.0, 1.7, 2.0]
    assert result.subincrements.tolist() == [2, 2] and result.cuts.tolist() == [0, 0]
    assert result.residuals == [[0.5, 0.5], [0.7, 2.0 - 1.7]]


def test_segment_ends_drop_slivers_only():
    bp = np.array([-1.0, 0.0, 5e-10, 2e-9, 0.3, 1.0 - 2e-9, 1.0 - 5e-10, 1.0, 4.0])
    assert segment_ends(0.0, 1.0, bp) == [2e-9, 0.3, 1.0 - 2e-9, 1.0]
    assert segment_ends(0.0, 1.0, np.zeros(0)) == [1.0]
    # relative to the interval: 1e-9 of 2 is 2e-9
    assert segment_ends(10.0, 12.0, np.array([10.0 + 1e-9, 10.0 + 3e-9, 11.0])) == [10.0 + 3e-9, 11.0, 12.0]
    assert collect_breakpoints([]).shape == (0,)


def test_halving_and_regrowth_after_easy_subincrements():
    """limit 0.3 on [0, 1]: 1 and 0.5 fail, 0.25 passes and doubles again (easy), ..."""
    fake = Fake(limit=0.3, iterations=4)
    result = march(fake, np.array([0.0, 1.0]), max_cuts=8)
    assert fake.attempts == [
        (0.0, 1.0, False), (0.0, 0.5, False), (0.0, 0.25, True),
        (0.25, 0.75, False), (0.25, 0.5, True),
        (0.5, 1.0, False), (0.5, 0.75, True),
        (0.75, 1.0, True),  # regrown to 0.5, cut back to the segment end
    ]
    assert fake.commits == [0.25, 0.5, 0.75, 1.0]  # only converged sub-increments
    assert fake.restores == 4
    assert result.iterations.tolist() == [16] and result.subincrements.tolist() == [4]
    assert result.cuts.tolist() == [4]
    assert result.residuals == [[1.0, 0.5, 0.25, 0.5, 0.25, 0.5, 0.25, 0.25]]  # failed attempts included


def test_no_regrowth_after_hard_subincrements():
    fake = Fake(limit=0.3, iterations=5)  # > 4 iterations: the size stays
    result = march(fake, np.array([0.0, 1.0]))
    assert steps(fake) == [(0.0, 1.0), (0.0, 0.5), (0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
    assert result.cuts.tolist() == [2] and result.iterations.tolist() == [20]


def test_size_restarts_at_each_segment():
    """After a cut in the first segment the next segment (breakpoint 0.5) starts whole."""
    fake = Fake(limit=0.3, iterations=5)
    march(fake, np.array([0.0, 0.6]), np.array([0.5]))
    assert steps(fake)[-3:] == [(0.0, 0.25), (0.25, 0.5), (0.5, 0.6)]


@pytest.mark.parametrize("t_a, t_b", [(0.1, 0.7), (1.1, 2.3)])
def test_subincrements_end_exactly_at_the_output_time(t_a, t_b):
    """Quarter sub-increments whose float sum over- (0.1 -> 0.7) or undershoots (1.1 -> 2.3)
    the end by round-off: the last one is stretched to it (no sliver, no overshoot)."""
    fake = Fake(limit=1.01 * (t_b - t_a) / 4, iterations=5)
    result = march(fake, np.array([t_a, t_b]))
    assert fake.commits[-1] == t_b and result.subincrements.tolist() == [4]


def test_error_after_max_cuts_names_time_step_size_reason_residuals():
    fake = Fake(limit=-1.0)
    times = np.array([0.0, 1.0, 2.0])
    with pytest.raises(FakeError) as info:
        march(Fake(limit=0.3), np.array([0.0, 0.4, 2.0]), max_cuts=1, error=FakeError, name="plate")
    message = str(info.value)
    assert message.startswith("plate: no convergence at t=1.2 (output step 2, from t=0.4, ")
    assert "sub-increment size 0.8 = 1.6 / 2**1, the minimum): step 0.8 too long" in message
    assert "relative residuals of the step: [1.6, 0.8]" in message and "max_cuts" in message
    assert isinstance(info.value.__cause__, StepFailure)

    with pytest.raises(FakeError, match=r"t=0.125 .*size 0.125 = 1 / 2\*\*3, the minimum\)"):
        march(fake, times, max_cuts=3, error=FakeError)
    assert steps(fake) == [(0.0, 1.0), (0.0, 0.5), (0.0, 0.25), (0.0, 0.125)]  # halvings down to the minimum
    assert fake.commits == [] and fake.restores == 4


def test_minimum_size_is_reached_not_undershot():
    """limit exactly the minimum size: converges at segment / 2**max_cuts (3 cuts to get there,
    then every easy sub-increment doubles, fails and is cut again, except the last one, which
    the segment end shortens)."""
    fake = Fake(limit=0.125)
    result = march(fake, np.array([0.0, 1.0]), max_cuts=3)
    assert result.subincrements.tolist() == [8] and result.cuts.tolist() == [3 + 6]
    with pytest.raises(RuntimeError, match="no convergence"):
        march(Fake(limit=0.124), np.array([0.0, 1.0]), max_cuts=3)


def test_initial_equilibrium_on_step_and_progress(caplog):
    fake, seen = Fake(), []
    with caplog.at_level(logging.INFO, logger="romdask.stepping"):
        result = march(fake, np.array([0.0, 1.0, 3.0]), equilibrate=True,
                       on_step=lambda step, t: seen.append(("step", step, t, fake.committed)),
                       progress=lambda step, n, info: seen.append(("progress", step, n, info)),
                       summary_level=logging.INFO)
    assert fake.attempts[0] == (0.0, 0.0, True) and fake.commits[0] == 0.0
    assert seen == [
        ("step", 0, 0.0, 0.0), ("step", 1, 1.0, 1.0),
        ("progress", 1, 2, {"time": 1.0, "iterations": 1, "subincrements": 1, "cuts": 0, "residual": 1.0}),
        ("step", 2, 3.0, 3.0),
        ("progress", 2, 2, {"time": 3.0, "iterations": 1, "subincrements": 1, "cuts": 0, "residual": 2.0}),
    ]
    assert result.residuals == [[1.0], [2.0]]  # the initial equilibrium's residuals are not kept
    assert any("output step 2/2" in r.message for r in caplog.records)
    # not loaded: no attempt at t0
    fake = Fake()
    march(fake, np.array([0.0, 1.0]))
    assert steps(fake) == [(0.0, 1.0)]


def test_failed_initial_equilibrium_raises_the_solver_error():
    with pytest.raises(FakeError, match=r"model: initial equilibrium at t=2 failed: step 0 too long; relative residuals \[0.0\]"):
        march(Fake(limit=-1.0), np.array([2.0, 3.0]), equilibrate=True, error=FakeError, name="model")


def test_cuts_are_logged_on_the_given_logger(caplog):
    log = logging.getLogger("romdask.some.solver")
    with caplog.at_level(logging.INFO, logger="romdask.some.solver"):
        march(Fake(limit=0.6), np.array([0.0, 1.0]), log=log)
    assert [r.name for r in caplog.records if "cutting" in r.message] == ["romdask.some.solver"]


@pytest.mark.parametrize("times, bp, max_cuts, message", [
    ([0.0, 1.0, 1.0], None, 8, "strictly increasing"),
    ([0.0], None, 8, "at least two"),
    ([0.0, np.nan], None, 8, "finite"),
    ([0.0, 1.0], [np.inf], 8, "breakpoints"),
    ([0.0, 1.0], None, -1, "max_cuts"),
    ([0.0, 1.0], None, 1.5, "max_cuts"),
])
def test_bad_input(times, bp, max_cuts, message):
    with pytest.raises(ValueError, match=message):
        march(Fake(), np.array(times), None if bp is None else np.array(bp), max_cuts=max_cuts)
