"""The built-in solver against the CalculiX 2.20 binary on the quarter plate with a hole.

Same problem through :func:`romdask.hifi.calculix.solve_calculix`: the deck of
:func:`~romdask.hifi.calculix.write_deck` (same mesh and law, *VISCO with the same fixed
increments, one *STEP per monotonic load segment, tight *CONTROLS) and float64 displacements
from the binary .frd. The requirement is 1e-5 of the largest displacement.
"""

import shutil

import numpy as np
import pytest

from romdask.hifi import solve
from romdask.hifi.calculix import deck_segments, solve_calculix
from romdask.problems.plate import plate_problem

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")


@pytest.mark.parametrize("loading", ["displacement", "pressure"])
def test_plate_cycle_agrees_with_calculix(tmp_path, loading):
    """One cycle (40 increments, reversals at 2.5 s and 7.5 s), prescribed displacement or
    traction (Pressure on the top face: load control, also checks the pressure vector)."""
    problem = plate_problem(n=2, loading=loading)
    assert [s[:2] for s in deck_segments(problem)] == [(0.0, 2.5), (2.5, 7.5), (7.5, 10.0)]
    ccx = solve_calculix(problem, tmp_path, timeout=300)
    res = solve(problem, fields=("displacement", "state"))
    assert res.fields["state"][:, :, 0].max() > 1e-4  # the hole yields
    np.testing.assert_array_equal(ccx.times, problem.times)
    scale = np.abs(res.displacement).max()
    worst = np.abs(ccx.displacement - res.displacement).max() / scale
    print(f"worst relative displacement difference vs ccx: {worst:.2e}")
    assert worst < 1e-5, worst
