"""The reduced Newton solver: exactness with all modes, ECM predictions, step cutting, scenario
validation, save/open, error indicator, no allocation in the loop, tangent consistency."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from romdask.fem.quadrature import internal_force, quadrature
from romdask.problem.loads import Amplitude
from romdask.materials import von_mises
from romdask.offline.reduce import ReduceOptions, reduce
from romdask.online import (
    OnlineConvergenceError,
    OnlineOptions,
    ReducedModel,
    Scenario,
    open_full,
    reconstruct_displacement,
    reconstruct_dual,
    replay_law,
    solve,
)
from romdask.online.solver import _Solver
from romdask.stepping import StepFailure


def positions(layout, point_ids):
    """Store ip positions of global integration points."""
    order = np.argsort(layout.ip_points)
    return order[np.searchsorted(layout.ip_points, point_ids, sorter=order)]


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def hf_reactions(training, run, lifting):
    """g_i^T f_int with the full quadrature, from the store's stresses (the HF reactions)."""
    layout = training.store.layout
    quad = quadrature(layout.mesh)
    out = []
    for s in run["stress"]:
        stress = np.zeros((layout.n_points, 6))
        stress[layout.ip_points] = s
        out.append(lifting.T @ internal_force(quad, stress))
    return np.array(out)


@pytest.fixture(scope="module")
def exact(training, tmp_path_factory):
    """All modes, full quadrature, saved with the full bases (per loading)."""
    out = {}
    for loading in ("displacement", "pressure"):
        t = training(loading)
        reduction = reduce(t.path, t.law, runs=t.train,
                           options=ReduceOptions(tol_pod=1e-10, ecm=False, pod_method="tsqr"))
        model, full = reduction.model, reduction.full
        path = reduction.save(tmp_path_factory.mktemp("exact") / f"{loading}.zarr")
        out[loading] = (t, model, full, path)
    return out


@pytest.fixture(scope="module")
def ecm_model(training, tmp_path_factory):
    t = training("displacement")
    reduction = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
    model, path = reduction.model, reduction.save(tmp_path_factory.mktemp("ecm") / "m.zarr")
    return t, model, path


@pytest.mark.parametrize("loading", ["displacement", "pressure"])
def test_all_modes_full_quadrature_reproduce_the_training_run(exact, loading):
    """The HF solution lies in the span of all the modes and solves the reduced equations to the
    HF tolerance (rtol=1e-12): the reduced Newton (rtol=1e-12) finds it again. Measured: 1e-11
    (displacement) and 3e-14 (pressure) relative; asserted 1e-8."""
    t, model, _, path = exact[loading]
    result = model.solve(Scenario.from_problem(t.problems["train_a"]), OnlineOptions(rtol=1e-12))
    hf = t.run("train_a")
    U = reconstruct_displacement(open_full(path), result).compute()
    assert rel(U, hf["displacement"]) < 1e-8
    pos = positions(t.store.layout, model.point_ids)
    assert rel(result.stress, hf["stress"][:, pos]) < 1e-8
    np.testing.assert_allclose(result.state[..., 0], hf["state"][:, pos, 0], rtol=0, atol=1e-8 * hf["state"][..., 0].max())
    assert result.cuts.sum() == 0 and np.all(result.iterations >= 1)
    if loading == "displacement":
        lifting = exact[loading][2]["lifting"]
        assert rel(result.reactions, hf_reactions(t, hf, lifting)) < 1e-8
        assert result.lifting_names == ("top_displacement",)
    else:
        assert result.reactions.shape == (t.problems["train_a"].times.size, 0)


def test_ecm_model_predicts_an_unseen_amplitude_over_more_cycles(ecm_model):
    """Trained on 1 cycle at 0.004 / 0.006 mm, predict 2 cycles at 0.005 mm. Measured (n=3
    plate, 4 modes, 23 ECM points + 2 Q-DEIM points): relative displacement error 4e-5, stress
    error at the reduced points 5.6e-4, reactions 5.4e-7; asserted 1e-3, 1e-2 and 1e-5."""
    t, model, path = ecm_model
    result = solve(model, Scenario.from_problem(t.problems["ref_mid"]))
    hf = t.run("ref_mid")
    U = reconstruct_displacement(open_full(path), result).compute()
    assert rel(U, hf["displacement"]) < 1e-3
    pos = positions(t.store.layout, model.point_ids)
    assert rel(result.stress, hf["stress"][:, pos]) < 1e-2
    assert result.indicator.max() < OnlineOptions().indicator_threshold
    assert not result.flagged.any()
    # the reactions follow the HF ones (ECM weights integrate the lifting strains)
    full = open_full(path)
    reactions = hf_reactions(t, hf, full.lifting.compute())
    assert rel(result.reactions, reactions) < 1e-5


def test_step_cutting_and_failure(exact):
    t, model, _, _ = exact["displacement"]
    scenario = Scenario.from_problem(t.problems["train_a"])
    reference = model.solve(scenario)
    assert reference.cuts.sum() == 0 and reference.iterations.max() == 4
    cut = model.solve(scenario, OnlineOptions(max_iterations=3))
    assert cut.cuts.sum() > 0 and np.all(cut.subincrements >= 1) and cut.subincrements.sum() > reference.subincrements.sum()
    # sub-increments are a finer time discretization of the viscoplastic law: close, not equal
    assert rel(cut.coordinates, reference.coordinates) < 5e-2
    with pytest.raises(OnlineConvergenceError, match=r"no convergence at t=.*output step \d+.*relative residuals") as info:
        model.solve(scenario, OnlineOptions(max_iterations=1, max_cuts=1, predictor="previous"))
    assert isinstance(info.value, RuntimeError)


def test_scenario_validation(exact):
    t, model, _, _ = exact["displacement"]
    times = np.linspace(0.0, 1.0, 5)
    with pytest.raises(ValueError, match=r"missing coefficients \['top_displacement'\].*expects"):
        model.solve(Scenario(times, {}))
    with pytest.raises(ValueError, match=r"unknown patterns \['side'\]"):
        model.solve(Scenario(times, {"top_displacement": 0.001, "side": 1.0}))
    with pytest.raises(ValueError, match="strictly increasing"):
        Scenario([0.0, 1.0, 1.0], {"top_displacement": 0.0})
    with pytest.raises(ValueError, match="strictly increasing"):
        Scenario([0.0], {"top_displacement": 0.0})
    with pytest.raises(ValueError, match="an Amplitude, a callable"):
        Scenario(times, {"top_displacement": "fast"})
    with pytest.raises(ValueError, match="homogeneous"):
        Scenario(times, {"xsym": 1.0}, homogeneous=("xsym",))
    for bad in (lambda s: np.array([s, s]), lambda s: np.nan, lambda s: np.array([np.inf]),
                lambda s: np.float64(np.nan)):
        with pytest.raises(ValueError, match="one finite number"):
            model.solve(Scenario(times, {"top_displacement": bad}))
    # floats, callables and Amplitudes are equivalent; homogeneous names of a problem are ignored
    ramp = Amplitude([0.0, 1.0], [0.0, 0.002])
    a = model.solve(Scenario(times, {"top_displacement": ramp}))
    b = model.solve(Scenario(times, {"top_displacement": lambda s: 0.002 * s, "xsym": 0.0}, homogeneous=("xsym",)))
    np.testing.assert_allclose(a.coordinates, b.coordinates, rtol=0, atol=1e-14 * np.abs(a.coordinates).max())
    assert set(Scenario.from_problem(t.problems["train_a"]).homogeneous) == {"xsym", "ysym", "zsym"}


def test_save_open_solve_identical(ecm_model, tmp_path):
    t, model, path = ecm_model
    scenario = Scenario.from_problem(t.problems["train_b"])
    a = model.solve(scenario)
    b = ReducedModel.open(path).solve(scenario)
    for name in ("coordinates", "stress", "state", "reactions", "indicator", "iterations"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.residuals == b.residuals


def test_gappy_operators_kept_per_model(ecm_model):
    """The Gappy pseudo-inverse and the indicator's orthonormal rows are computed once per model
    and kept: a second solve gives the same bits, the coefficients are the least-squares fit."""
    t, model, _ = ecm_model
    scenario = Scenario.from_problem(t.problems["train_b"])
    a, b = model.solve(scenario), model.solve(scenario)
    assert a.gappy_coefficients.keys() == b.gappy_coefficients.keys() and "stress" in a.gappy_coefficients
    for quantity in a.gappy_coefficients:
        assert np.array_equal(a.gappy_coefficients[quantity], b.gappy_coefficients[quantity]), quantity
    assert np.array_equal(a.indicator, b.indicator, equal_nan=True)
    values = a.stress.reshape(a.times.size, -1)
    fit = np.linalg.lstsq(model.gappy["stress"], values.T, rcond=None)[0].T
    np.testing.assert_allclose(a.gappy_coefficients["stress"], fit, rtol=0, atol=1e-10 * np.abs(fit).max())


def test_singular_reduced_tangent_is_a_step_failure(ecm_model):
    t, model, _ = ecm_model
    solver = _Solver(model, Scenario(np.array([0.0, 1.0]), {"top_displacement": 0.001}), OnlineOptions(),
                     ("top_displacement",))
    solver.start()
    solver.K_n[:] = 0.0  # the predictor's system
    with pytest.raises(StepFailure, match=r"singular reduced tangent \(zero pivot 1\)"):
        solver.attempt(0.0, 1.0, [])
    assert np.all(solver.gamma == 0.0)


@pytest.mark.parametrize("predictor", ["tangent", "previous"])
def test_compiled_and_interpreted_newton_give_the_same_bits(ecm_model, monkeypatch, predictor):
    """A model with one built-in law runs the Newton iterations compiled (romdask.online.newton);
    with the law unknown to it (here: LAW_IDS emptied) the same function runs in the interpreter
    around the solver's _Laws, the path of custom laws and of models with several laws. Same
    kernels in the same order: the same bits, cuts and residual histories included."""
    t, model, _ = ecm_model
    amplitude = Amplitude([0.0, 10.0, 20.0, 30.0, 40.0], [0.0, 0.009, 0.0, -0.009, 0.0])
    scenario = Scenario(np.linspace(0, 40, 9), {"top_displacement": amplitude})
    options = OnlineOptions(predictor=predictor)
    compiled = model.solve(scenario, options)
    assert _Solver(model, scenario, options, ("top_displacement",)).python_law is None
    monkeypatch.setattr("romdask.online.solver.LAW_IDS", {})
    assert _Solver(model, scenario, options, ("top_displacement",)).python_law is not None
    interpreted = model.solve(scenario, options)
    assert compiled.cuts.sum() > 0  # the steps are large: the cutting path is compared too
    for name in ("coordinates", "stress", "state", "reactions", "iterations", "subincrements", "cuts"):
        np.testing.assert_array_equal(getattr(interpreted, name), getattr(compiled, name), err_msg=name)
    assert interpreted.residuals == compiled.residuals


def test_indicator_rises_far_from_training(ecm_model):
    """Predicting 0.005 (between the trained 0.004 and 0.006) gives a small indicator; 0.012
    (twice the largest) a larger one, with a larger true error. Measured: indicator 0.031 and
    0.25 (max over time), displacement error 4e-5 and 8.6e-2."""
    t, model, path = ecm_model
    full = open_full(path)
    out = {}
    for name in ("ref_mid", "ref_far"):
        result = model.solve(Scenario.from_problem(t.problems[name]))
        hf = t.run(name)
        error = rel(reconstruct_displacement(full, result).compute(), hf["displacement"])
        out[name] = (result.indicator.max(), error, result.flagged.any())
    (ind_mid, err_mid, flag_mid), (ind_far, err_far, flag_far) = out["ref_mid"], out["ref_far"]
    assert ind_far > 5 * ind_mid and err_far > 100 * err_mid, out
    assert not flag_mid and flag_far, out


def test_no_allocation_growth_in_the_newton_loop(ecm_model):
    """Peak traced memory of a solve grows with the number of steps only by the per-step result
    storage (stress, state, coordinates, residual lists), not by Newton-loop allocations."""
    t, model, _ = ecm_model
    amplitude = Amplitude([0.0, 10.0, 20.0, 30.0, 40.0], [0.0, 0.002, 0.0, -0.002, 0.0])
    per_step = 8 * model.n_points * (6 + model.n_state_max) + 8 * (model.n_modes + 8) + 400
    model.solve(Scenario(np.linspace(0, 40, 9), {"top_displacement": amplitude}))  # compile, warm caches
    peaks = {}
    for n_t in (41, 161):
        scenario = Scenario(np.linspace(0, 40, n_t), {"top_displacement": amplitude})
        tracemalloc.start()
        model.solve(scenario)
        peaks[n_t] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    growth = peaks[161] - peaks[41]
    assert growth < 1.5 * 120 * per_step, (peaks, per_step)


def test_reduced_tangent_matches_finite_differences(ecm_model):
    """K = dF_int/dgamma at a plastic state (central differences, relative 1e-6).

    The law's local Newton tolerance (params slot 8, CalculiX's 1e-4) is tightened to 1e-12:
    with CalculiX's rule the Norton tangent is consistent to ~1e-5 only (see
    tests/materials/test_material_tangents.py), which would hide an assembly error."""
    t, model, _ = ecm_model
    scenario = Scenario(np.array([0.0, 2.5]), {"top_displacement": 0.009})
    solver = _Solver(model, scenario, OnlineOptions(), ("top_displacement",))
    for group in solver.laws.groups:
        group["params"] = group["params"].copy()
        group["params"][8] = 1e-12
    solver.set_loads(2.5)
    rng = np.random.default_rng(0)
    gamma = rng.standard_normal(model.n_modes) * 3e-4
    solver.gamma[:] = gamma
    solver.evaluate(2.5, 2.5)
    K = solver.K.copy()
    assert any(np.any(g["trial"][:, 0] > 0) for g in solver.laws.groups)  # plastic points
    h = 1e-6 * np.abs(gamma).max()  # measured error 4e-10
    fd = np.zeros_like(K)
    for j in range(model.n_modes):
        f = []
        for sign in (1.0, -1.0):
            solver.gamma[:] = gamma
            solver.gamma[j] += sign * h
            solver.evaluate(2.5, 2.5)
            f.append(solver.f_int.copy())
        fd[:, j] = (f[0] - f[1]) / (2 * h)
    assert np.abs(fd - K).max() <= 1e-6 * np.abs(K).max()


def test_laws_split_into_groups_give_the_same_result(ecm_model):
    """One law over all points or the same law in two interleaved groups: identical solutions."""
    t, model, _ = ecm_model
    law = model.materials[0][0]
    r = model.n_points
    fields = {f: getattr(model, f) for f in ("modes_strain", "weights", "point_ids", "load_vectors",
                                              "load_names", "initial_state", "lifting", "gappy", "metadata")}
    split = ReducedModel(materials=((law, np.arange(0, r, 2)), (law, np.arange(1, r, 2))), **fields)
    scenario = Scenario.from_problem(t.problems["train_a"])
    a, b = model.solve(scenario), split.solve(scenario)
    np.testing.assert_allclose(b.coordinates, a.coordinates, rtol=0, atol=1e-12 * np.abs(a.coordinates).max())
    np.testing.assert_allclose(b.state, a.state, rtol=0, atol=1e-12)


def test_reconstruct_dual_shapes_and_gappy_fit(exact):
    t, model, full, path = exact["displacement"]
    result = model.solve(Scenario.from_problem(t.problems["train_a"]), OnlineOptions(rtol=1e-12))
    bases = open_full(path)
    hf = t.run("train_a")
    stress = reconstruct_dual(bases, result, "stress", steps=[4, 8])
    p = reconstruct_dual(bases, result, "p", steps=slice(0, 3))
    n_pts = t.store.layout.n_points
    assert stress.shape == (2, n_pts, 6) and p.shape == (3, n_pts)
    assert np.array_equal(bases.ip_points, t.store.layout.ip_points)
    # every point is a reduced point: the Gappy fit is the projection on the stress basis
    assert rel(stress.compute(), hf["stress"][[4, 8]]) < 1e-4
    with pytest.raises(ValueError, match="quantity must be one of"):
        reconstruct_dual(bases, result, "strain")
    with pytest.raises(ValueError, match="out of range"):
        reconstruct_displacement(bases, result, steps=[10_000])


def test_load_at_the_initial_time_is_equilibrated_first(exact):
    """A constant (elastic) prescribed displacement from times[0]: equilibrium at t0 with dt=0,
    then nothing changes."""
    t, model, _, _ = exact["displacement"]
    result = model.solve(Scenario(np.linspace(0.0, 1.0, 4), {"top_displacement": 0.001}))
    assert np.abs(result.coordinates[0]).max() > 0
    np.testing.assert_allclose(result.coordinates, np.broadcast_to(result.coordinates[0], result.coordinates.shape),
                               rtol=0, atol=1e-10 * np.abs(result.coordinates).max())
    assert np.all(result.state[..., 0] == 0.0) and np.all(result.lifting_coefficients == 0.001)


def test_replay_law_reproduces_the_training_run_and_the_reduced_points(exact, ecm_model):
    """The law replayed along the reduced strain history at every point: with all modes it
    reproduces the HF stresses and p of a training run (measured 3e-8, asserted 1e-7: the
    displacement agrees to 1e-11, but the law's local Newton stops at its own tolerance, so
    strains equal to round-off may take another local iteration count);
    with the ECM model it equals the online solver's own stresses at the reduced points (same
    law, same strains, same increments: round-off) and predicts the unseen amplitude's von Mises
    field within 1 % of its max where Gappy-POD is looser."""
    t, model, _, path = exact["displacement"]
    full = open_full(path)
    result = solve(model, Scenario.from_problem(t.problems["train_a"]))
    replayed = replay_law(full, result, t.law)
    hf = t.run("train_a")
    assert rel(replayed["stress"], hf["stress"]) < 1e-7
    assert rel(replayed["p"], hf["state"][..., 0]) < 1e-7

    t, model, path = ecm_model
    full = open_full(path)
    result = solve(model, Scenario.from_problem(t.problems["ref_mid"]))
    assert not result.cuts.any()  # else the online sub-increments differ from the replay's
    replayed = replay_law(full, result, t.law, steps=slice(None, None, 2))
    at_points = positions(t.store.layout, model.point_ids)
    np.testing.assert_allclose(replayed["stress"][:, at_points], result.stress[::2], rtol=0, atol=1e-9)
    hf = t.run("ref_mid")
    vm_hf = von_mises(hf["stress"][::2])
    error_replay = rel(von_mises(replayed["stress"]), vm_hf)
    error_gappy = rel(von_mises(reconstruct_dual(full, result, "stress", steps=slice(None, None, 2)).compute()), vm_hf)
    assert error_replay < 1e-2 and error_replay < error_gappy, (error_replay, error_gappy)

    with pytest.raises(ValueError, match="full/strain"):
        replay_law(dataclasses.replace(full, strain=None), result, t.law)


def test_prediction_written_for_paraview_and_cgx(exact, tmp_path):
    """docs/online.md's recipe: the lazy reconstruction and the replayed fields (store order,
    ``full.ip_points``) written with the store mesh. With all modes they are the HF run's, so
    the written nodal fields are the HF integration-point fields (mapped with the store's own
    ``layout.ip_points``) extrapolated to the nodes: the mapping and the streaming agree."""
    import meshio

    from romdask.fem import ip_to_nodes
    from romdask.io import write_prediction_frd, write_prediction_vtu
    from romdask.io.calculix import read_frd

    t, model, _, path = exact["displacement"]
    full = open_full(path)
    result = solve(model, Scenario.from_problem(t.problems["train_a"]))
    fields = replay_law(full, result, t.law)
    layout = t.store.layout
    kw = dict(stress=fields["stress"], plastic_strain=fields["p"], indicator=result.indicator,
              ip_points=full.ip_points)
    U = reconstruct_displacement(full, result)  # a dask array, computed one output time at a time
    series = write_prediction_vtu(tmp_path / "rom", layout.mesh, result.times, U, **kw)
    frd = read_frd(write_prediction_frd(tmp_path / "rom.frd", layout.mesh, result.times, U, encoding="float64", **kw))
    hf = t.run("train_a")
    for k in (len(result.times) // 2, len(result.times) - 1):
        ip = np.zeros((layout.n_points, 6))
        ip[layout.ip_points] = hf["stress"][k]
        expected = ip_to_nodes(layout.mesh, ip)
        vtu = meshio.read(series.files[k])
        assert rel(vtu.point_data["stress"][:, [0, 1, 2, 3, 5, 4]], expected) < 1e-6
        assert rel(vtu.point_data["displacement"].ravel(), hf["displacement"][k]) < 1e-6
        ids, stress = frd.read(frd.select("STRESS")[k])
        assert rel(stress[:, [0, 1, 2, 3, 5, 4]], expected[layout.mesh.node_index(ids)]) < 1e-6
    assert np.array_equal(series.table["error_indicator"], result.indicator, equal_nan=True)
