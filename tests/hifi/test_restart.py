"""Restart of the built-in solver from a given state in the middle of a history
(``solve(problem, initial=HFState(...))``) against the uninterrupted run.

Tolerance: both runs converge every increment to ``rtol = 1e-8`` of their force scale, and the
restart first re-solves the equilibrium of the given state at ``times[0]`` with its own (smaller:
it restarts at 0) force scale, so the two histories differ by the Newton tolerance, not by
round-off. Measured on the plate (n = 4, 16 increments per cycle, 0.012 mm): at most 4.8e-9 of
the max displacement and 3.3e-8 of the max stress (restart at t = 5, the unloaded point of the
reversed loading, where the uninterrupted run's scale is the peak force's); asserted 1e-6 and
3e-6 (~100 x above).
"""

import dataclasses

import numpy as np
import pytest

from romdask.hifi import HFState, constrained_dofs, solve
from romdask.materials import LinearElastic
from romdask.problem import Dirichlet, Problem, Temperature, ramp
from romdask.problems.meshing import box
from romdask.problems.plate import plate_problem

FIELDS = ("displacement", "stress", "state")
#: steps of the plate history (16 increments per cycle, t = 0.625 k): 3 plastic loading, 4 the
#: peak (reversal), 8 plastic again in the reversed loading (t = 5), 12 the reversed peak
STEPS = (3, 4, 8, 12)
DISPLACEMENT_BOUND, STRESS_BOUND = 1e-6, 3e-6


@pytest.fixture(scope="module")
def plate():
    problem = plate_problem(amplitude=0.012, n=4, increments_per_cycle=16)
    return problem, solve(problem, fields=FIELDS)


def differences(whole, restart, k):
    """Max differences of every restart step to the uninterrupted run, relative to its max
    |displacement| and max |stress| (per step), and the largest state difference."""
    du = np.abs(restart.displacement - whole.displacement[k:]).max(axis=1) / np.abs(whole.displacement).max()
    stress = whole.fields["stress"]
    ds = np.abs(restart.fields["stress"] - stress[k:]).max(axis=(1, 2)) / np.abs(stress).max()
    dstate = np.nanmax(np.abs(restart.fields["state"] - whole.fields["state"][k:]))
    return du, ds, dstate


def rest(problem, k):
    return dataclasses.replace(problem, times=problem.times[k:])


@pytest.mark.parametrize("k", STEPS)
def test_restart_continues_the_uninterrupted_run(plate, k):
    """Measured (max over the steps, displacement / stress relative): k=3 3.4e-10 / 2.7e-9,
    k=4 2.7e-13 / 6.3e-13, k=8 4.8e-9 / 3.3e-8, k=12 2.3e-13 / 7.6e-13; the plastic strain p
    to 6e-11."""
    problem, whole = plate
    p = whole.fields["state"][:, :, 0]
    assert np.nanmax(p[k]) > 1e-3  # restart inside the plastic history
    restart = solve(rest(problem, k), fields=FIELDS, initial=whole.state_at(k))
    assert restart.times.tolist() == problem.times[k:].tolist()
    du, ds, dstate = differences(whole, restart, k)
    assert du.max() <= DISPLACEMENT_BOUND and ds.max() <= STRESS_BOUND
    assert dstate <= 1e-8
    if k in (3, 8):  # the later increments flow plastically in both runs
        assert np.nanmax(p[k + 1] - p[k]) > 1e-4


def test_step_zero_is_the_given_equilibrium(plate):
    """A converged state is re-equilibrated in place: it moves by the Newton tolerance only
    (measured 3.4e-10 of the max displacement at step 3, 2.7e-13 at the peak, step 4)."""
    problem, whole = plate
    for k in (3, 4):
        given = whole.state_at(k)
        restart = solve(rest(problem, k), fields=FIELDS, initial=given)
        assert np.abs(restart.displacement[0] - given.displacement).max() <= 1e-8 * np.abs(given.displacement).max()
        np.testing.assert_allclose(restart.fields["state"][0], given.state, rtol=0, atol=1e-12)


def test_perturbed_displacement_is_equilibrated_first(plate):
    """Noise of 1e-4 x max|u| on the free dofs: the dt = 0 equilibrium (elastic from the given
    internal variables) removes it; the later steps are as close as from the exact state
    (measured the same 3.4e-10 / 4.8e-9 of the max displacement at k = 3 / 8)."""
    problem, whole = plate
    dofs_c, _ = constrained_dofs(problem)
    rng = np.random.default_rng(0)
    for k in (3, 8):
        given = whole.state_at(k)
        noise = 1e-4 * np.abs(whole.displacement).max() * rng.standard_normal(problem.mesh.n_dofs)
        noise[dofs_c] = 0.0
        restart = solve(rest(problem, k), fields=FIELDS, initial=HFState(given.displacement + noise, given.state))
        du, ds, _ = differences(whole, restart, k)
        assert du.max() <= DISPLACEMENT_BOUND and ds.max() <= STRESS_BOUND


def test_constrained_dofs_take_the_prescribed_values(plate):
    """The given displacement's constrained dofs are replaced by the prescribed values."""
    problem, whole = plate
    k = 3
    given = whole.state_at(k)
    dofs_c, _ = constrained_dofs(problem)
    wrong = given.displacement.copy()
    wrong[dofs_c] += 1e-3
    restart = solve(rest(problem, k), fields=FIELDS, initial=HFState(wrong, given.state))
    du, ds, _ = differences(whole, restart, k)
    assert du.max() <= DISPLACEMENT_BOUND and ds.max() <= STRESS_BOUND


def test_two_laws_with_nan_padding():
    """Viscoplastic elements next to elastic ones (state NaN-padded on the elastic points): the
    padding is ignored, the restart matches (measured 5.3e-10 / 3.2e-9 of the max displacement / stress)."""
    base = plate_problem(amplitude=0.012, n=4, increments_per_cycle=16)
    mesh = base.mesh
    (block,) = mesh.blocks
    centre = mesh.nodes[block.connectivity, 0].mean(axis=1)  # x of the element centres
    near = np.flatnonzero(centre <= np.median(centre))
    far = np.flatnonzero(centre > np.median(centre))
    mesh = dataclasses.replace(mesh, element_sets={**mesh.element_sets, "near": near, "far": far})
    problem = dataclasses.replace(base, mesh=mesh, material={"near": base.material, "far": LinearElastic(200000.0, 0.3)})
    whole = solve(problem, fields=FIELDS)
    state = whole.fields["state"]
    assert np.isnan(state).any() and np.nanmax(state[3, :, 0]) > 1e-3
    restart = solve(rest(problem, 3), fields=FIELDS, initial=whole.state_at(3))
    du, ds, _ = differences(whole, restart, 3)
    assert du.max() <= DISPLACEMENT_BOUND and ds.max() <= STRESS_BOUND
    assert np.array_equal(np.isnan(restart.fields["state"]), np.isnan(state[3:]))


def test_bad_initial_states_are_refused(plate):
    problem, whole = plate
    k = 3
    given = whole.state_at(k)
    later = rest(problem, k)
    with pytest.raises(ValueError, match=r"initial displacement must be 567 finite values.*\(566,\)"):
        solve(later, initial=HFState(given.displacement[:-1], given.state))
    bad = given.displacement.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="initial displacement .* 1 non-finite"):
        solve(later, initial=HFState(bad, given.state))
    with pytest.raises(ValueError, match=r"initial state must have shape \(\d+, 14\).*got \(\d+, 13\)"):
        solve(later, initial=HFState(given.displacement, given.state[:, :13]))
    bad = given.state.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"law 0 \(CalculixViscoplastic\) has 1 non-finite value\(s\) in its first 14"):
        solve(later, initial=HFState(given.displacement, bad))
    with pytest.raises(ValueError, match="initial must be a romdask.hifi.HFState"):
        solve(later, initial=(given.displacement, given.state))
    with pytest.raises(ValueError, match="times start at 1.875, not 0: a restart needs the state"):
        solve(later)
    with pytest.raises(ValueError, match="step 17 is out of range for 17"):
        whole.state_at(17)


def test_thermal_restart_is_refused():
    mesh = box((1, 1, 1), (1.0, 1.0, 1.0))
    bcs = tuple(Dirichlet(mesh.node_sets[name], (c,), name=name) for c, name in enumerate(("xmin", "ymin", "zmin")))
    law = LinearElastic(200000.0, 0.3, expansion=1.2e-5, expansion_zero=20.0)
    heat = Temperature(np.arange(mesh.n_nodes), 100.0, ramp(1.0), name="heat")
    problem = Problem(mesh, law, bcs, [0.5, 1.0], initial_temperature=20.0, temperatures=(heat,))
    state = HFState(np.zeros(mesh.n_dofs), np.zeros((8, 0)))
    with pytest.raises(ValueError, match="restart of thermal problems is not supported yet"):
        solve(problem, initial=state)


def test_calculix_deck_of_a_later_start_is_refused(plate, tmp_path):
    """A CalculiX deck starts unloaded at t = 0: a restart problem cannot be written as one."""
    from romdask.hifi.calculix.deck import write_deck

    problem, _ = plate
    with pytest.raises(ValueError, match=r"CalculiX deck starts from the unloaded state at t = 0.*start at 1.875"):
        write_deck(rest(problem, 3), tmp_path / "restart.inp")
