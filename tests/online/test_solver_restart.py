"""Restart of the reduced Newton solver from a given state in the middle of a scenario
(``solve(model, scenario, initial=OnlineState(...))``) against the uninterrupted solve.

Tolerance: both solves converge every increment to ``rtol = 1e-8`` of their force scale; the
restart first re-solves the equilibrium of the given state at ``times[0]`` (dt = 0) with its own
force scale (restarting at 0), so the histories differ by the Newton tolerance. Measured on the
ECM plate model (4 modes, 23 points) over the 0.012 mm cycle (far beyond its training, but
plastic at most steps): at most 2.0e-9 of the max |coordinate| and 5.5e-9 of the max |stress|,
the state to 8e-12; asserted 1e-6 (>= 200 x above).
"""

import dataclasses
import warnings

import numpy as np
import pytest

from romdask.offline.reduce import ReduceOptions, reduce
from romdask.online import OnlineState, Scenario, solve
from romdask.online.solver import OnlineState as SolverOnlineState
from romdask.online.solver import TrainingEnvelopeWarning

BOUND = 1e-6


@pytest.fixture(scope="module")
def far(training):
    """The ECM model of the displacement-driven plate and its solve of the 0.012 mm cycle."""
    t = training("displacement")
    model = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5)).model
    scenario = Scenario.from_problem(t.problems["ref_far"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        result = solve(model, scenario)
    return model, scenario, result


def restart(model, scenario, k, initial, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        return solve(model, dataclasses.replace(scenario, times=scenario.times[k:]), initial=initial, **kwargs)


def differences(whole, later, k):
    dc = np.abs(later.coordinates - whole.coordinates[k:]).max() / np.abs(whole.coordinates).max()
    ds = np.abs(later.stress - whole.stress[k:]).max() / np.abs(whole.stress).max()
    return dc, ds, np.nanmax(np.abs(later.state - whole.state[k:]))


def test_exported():
    assert OnlineState is SolverOnlineState


@pytest.mark.parametrize("k", [3, 8, 12])
def test_restart_continues_the_uninterrupted_solve(far, k):
    """k = 3: plastic loading; 8: plastic again after the reversal (t = 5); 12: the reversed
    peak. Measured (coordinates / stress): 2.2e-11 / 5.5e-10, 1.5e-10 / 4.1e-9, 2.0e-9 / 4.7e-9."""
    model, scenario, whole = far
    p = whole.state[:, :, 0]
    assert np.nanmax(p[k]) > 1e-3
    later = restart(model, scenario, k, whole.state_at(k))
    assert later.times.tolist() == scenario.times[k:].tolist()
    dc, ds, dstate = differences(whole, later, k)
    assert dc <= BOUND and ds <= BOUND and dstate <= 1e-8
    if k in (3, 8):
        assert np.nanmax(p[k + 1] - p[k]) > 1e-4  # the next increment flows plastically


def test_reduced_model_solve_passes_the_initial_state(far):
    model, scenario, whole = far
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        later = model.solve(dataclasses.replace(scenario, times=scenario.times[3:]), initial=whole.state_at(3))
    dc, ds, _ = differences(whole, later, 3)
    assert dc <= BOUND and ds <= BOUND


def test_perturbed_coordinates_are_equilibrated_first(far):
    """1e-4 x max|gamma| noise: the dt = 0 equilibrium (elastic from the given state) removes it."""
    model, scenario, whole = far
    k = 3
    given = whole.state_at(k)
    noise = 1e-4 * np.abs(whole.coordinates).max() * np.random.default_rng(0).standard_normal(model.n_modes)
    later = restart(model, scenario, k, OnlineState(given.coordinates + noise, given.state))
    dc, ds, _ = differences(whole, later, k)
    assert dc <= BOUND and ds <= BOUND


def test_virgin_initial_state_equals_the_plain_solve(far):
    """Coordinates 0 and the model's initial state at times[0] = 0: bit for bit the plain solve
    (the extra dt = 0 equilibrium at zero load converges without a solve)."""
    model, scenario, whole = far
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        again = solve(model, scenario, initial=OnlineState(np.zeros(model.n_modes), model.initial_state))
    np.testing.assert_array_equal(again.coordinates, whole.coordinates)
    np.testing.assert_array_equal(again.stress, whole.stress)
    np.testing.assert_array_equal(again.state, whole.state)


def test_bad_initial_states_are_refused(far):
    model, scenario, whole = far
    given = whole.state_at(3)
    n, r, n_state = model.n_modes, model.n_points, model.n_state_max
    cases = [
        (OnlineState(given.coordinates[:-1], given.state), rf"initial coordinates must be {n} finite values"),
        (OnlineState(np.full(n, np.nan), given.state), rf"{n} non-finite"),
        (OnlineState(given.coordinates, given.state[1:]), rf"initial state must have shape \({r}, {n_state}\).*got \({r - 1}, {n_state}\)"),
        ((given.coordinates, given.state), "initial must be a romdask.online.OnlineState"),
    ]
    bad = given.state.copy()
    bad[2, 0] = np.inf
    cases.append((OnlineState(given.coordinates, bad), r"law 0 \(CalculixViscoplastic\) has 1 non-finite value\(s\) in its first 14"))
    for initial, message in cases:
        with pytest.raises(ValueError, match=message):
            restart(model, scenario, 3, initial)
    with pytest.raises(ValueError, match="step -18 is out of range for 17"):
        whole.state_at(-18)


def test_thermal_restart_is_refused(tmp_path):
    from thermal_cases import RUNS, bar_law, write_runs

    runs = {"train_a": RUNS["train_a"]}
    store, problems = write_runs(tmp_path / "s.zarr", runs)
    model = reduce(store.path, bar_law(), runs=list(runs), options=ReduceOptions(tol_pod=1e-6, ecm=False)).model
    scenario = Scenario.from_problem(problems["train_a"])
    initial = OnlineState(np.zeros(model.n_modes), model.initial_state)
    with pytest.raises(ValueError, match="restart of thermal models is not supported yet"):
        solve(model, scenario, initial=initial)
