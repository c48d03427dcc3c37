"""Thermal reduced models: exactness with all modes, predictions of new temperature amplitudes and
shapes against the built-in solver, save/open, old and athermal models, scenario checks, the law
replay at every point with temperatures (the bar of tests/online/thermal_cases.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from thermal_cases import RUNS, TIMES, bar_law, bar_mesh, bar_problem, read_run, write_runs

from romdask.offline.reduce import ReduceOptions, reduce
from romdask.offline.replay import replay
from romdask.online import (
    OnlineOptions,
    ReducedModel,
    Scenario,
    ScenarioTemperature,
    open_full,
    problem_scenario,
    reconstruct_displacement,
    replay_law,
)
from romdask.online.newton import LAW_IDS
from romdask.online.results import load_result, save_result

#: the training runs, then references of unseen cases: a new amplitude (same shape as train_a,
#: other pull) and a new shape (a mix of both gradients)
CASES = {**RUNS, "ref_amplitude": (0.003, 200.0, 0.0), "ref_shape": (0.001, 150.0, 120.0),
         "ref_heat_only": (0.0, 250.0, 100.0, [0.0, 1.0, 2.0])}
TRAIN = sorted(RUNS)


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def positions(layout, point_ids):
    order = np.argsort(layout.ip_points)
    return order[np.searchsorted(layout.ip_points, point_ids, sorter=order)]


@pytest.fixture(scope="module")
def bar(tmp_path_factory):
    store, problems = write_runs(tmp_path_factory.mktemp("bar") / "s.zarr", CASES)
    return store, problems


@pytest.fixture(scope="module")
def exact(bar, tmp_path_factory):
    store, _ = bar
    reduction = reduce(store.path, bar_law(), runs=TRAIN,
                       options=ReduceOptions(tol_pod=1e-10, ecm=False, pod_method="tsqr"))
    return reduction, reduction.save(tmp_path_factory.mktemp("exact") / "m.zarr")


@pytest.fixture(scope="module")
def ecm(bar, tmp_path_factory):
    store, _ = bar
    reduction = reduce(store.path, bar_law(), runs=TRAIN, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
    return reduction, reduction.save(tmp_path_factory.mktemp("ecm") / "m.zarr")


def test_all_modes_full_quadrature_reproduce_a_thermal_training_run(bar, exact):
    """All modes, full quadrature: the HF run (rtol 1e-12) again. Measured: displacement 1.9e-10
    relative; asserted 1e-8 for displacement, stress and p."""
    store, problems = bar
    reduction, path = exact
    model = reduction.model
    assert model.thermal and model.temperature["nodes"].shape == (model.n_points, 8)
    assert reduction.report["thermal"]["initial_temperature_source"] == {r: "description" for r in TRAIN}
    np.testing.assert_allclose(model.temperature["initial"], 20.0, rtol=0, atol=1e-12)
    result = model.solve(problem_scenario(model, problems["train_a"]), OnlineOptions(rtol=1e-12))
    hf = read_run(store.path, "train_a")
    U = reconstruct_displacement(open_full(path), result).compute()
    assert rel(U, hf["displacement"]) < 1e-8
    pos = positions(store.layout, model.point_ids)
    assert rel(result.stress, hf["stress"][:, pos]) < 1e-8
    np.testing.assert_allclose(result.state[..., 0], hf["state"][:, pos, 0], rtol=0,
                               atol=1e-8 * hf["state"][..., 0].max())
    assert hf["state"][..., 0].max() > 1e-4  # plastic
    assert result.cuts.sum() == 0


@pytest.mark.parametrize("element, shape", [("C3D10", (3, 2, 2)), ("C3D20R", (3, 2, 2))])
def test_exact_on_quadratic_elements(element, shape, tmp_path):
    """The temperature operator's shape-function rows (10 and 20 nodes per point): all modes and
    the full quadrature reproduce the run, the law replay its stresses. Measured: displacement
    4e-12 / 2e-14, replayed stress 8e-11 / 2e-13 relative."""
    problem = bar_problem(*RUNS["train_a"], name="a", mesh=bar_mesh(element, shape))
    store, _ = write_runs(tmp_path / "s.zarr", {"a": problem})
    reduction = reduce(store.path, bar_law(), options=ReduceOptions(tol_pod=1e-10, ecm=False, pod_method="tsqr"))
    model, path = reduction.model, reduction.save(tmp_path / "m.zarr")
    assert model.temperature["nodes"].shape[1] == int(element[3:].rstrip("R"))
    result = model.solve(problem_scenario(model, problem), OnlineOptions(rtol=1e-12))
    hf = read_run(store.path, "a")
    assert hf["state"][..., 0].max() > 1e-4
    assert rel(reconstruct_displacement(open_full(path), result).compute(), hf["displacement"]) < 1e-8
    assert rel(replay_law(open_full(path), result, model.materials[0][0])["stress"], hf["stress"]) < 1e-8


def test_fields_per_time_equal_the_patterns(bar, exact):
    """The same temperatures as nodal fields at the output times (linear in between, as the
    HEAT amplitude is between its breakpoints, which are output times) give the same solution."""
    _, problems = bar
    model = exact[0].model
    problem = problems["ref_shape"]
    by_patterns = Scenario.from_problem(problem)
    fields = np.array([problem.nodal_temperature(t) for t in TIMES])
    temperature = ScenarioTemperature.from_fields(problem.mesh.node_ids, TIMES, fields, initial=20.0)
    by_fields = Scenario(problem.times, by_patterns.coefficients, by_patterns.homogeneous, temperature)
    a, b = model.solve(by_patterns), model.solve(by_fields)
    np.testing.assert_allclose(b.coordinates, a.coordinates, rtol=0, atol=1e-12 * np.abs(a.coordinates).max())
    # node order is free: the scenario is keyed by solver ids
    order = np.random.default_rng(0).permutation(problem.mesh.n_nodes)
    shuffled = ScenarioTemperature.from_fields(problem.mesh.node_ids[order], TIMES, fields[:, order], initial=20.0)
    c = model.solve(Scenario(problem.times, by_patterns.coefficients, by_patterns.homogeneous, shuffled))
    np.testing.assert_array_equal(c.coordinates, b.coordinates)


@pytest.mark.parametrize("case, tol_u, tol_s", [("ref_amplitude", 5e-4, 5e-3), ("ref_shape", 2e-2, 8e-2)])
def test_ecm_model_predicts_new_temperature_amplitude_and_shape(bar, ecm, case, tol_u, tol_s):
    """Trained on a y gradient with a pull, a z gradient with a push and a mix; predicted: another
    amplitude of the y gradient with another pull, and another mix of both gradients given as
    fields per time (a shape never trained). Measured (15 modes, 88 points): displacement 6.2e-5
    and 9.3e-3 relative, stress at the reduced points 3.2e-4 and 4.1e-2 (the exact model: 3.6e-3
    in displacement on the new shape: the span of 3 plastic runs, not the ECM)."""
    store, problems = bar
    reduction, path = ecm
    model = reduction.model
    problem = problems[case]
    scenario = problem_scenario(model, problem)
    if case == "ref_shape":
        fields = np.array([problem.nodal_temperature(t) for t in TIMES])
        scenario = Scenario(problem.times, scenario.coefficients, scenario.homogeneous,
                            ScenarioTemperature.from_fields(problem.mesh.node_ids, TIMES, fields))
    result = model.solve(scenario)
    hf = read_run(store.path, case)
    U = reconstruct_displacement(open_full(path), result).compute()
    pos = positions(store.layout, model.point_ids)
    errors = rel(U, hf["displacement"]), rel(result.stress, hf["stress"][:, pos])
    assert errors[0] < tol_u and errors[1] < tol_s


def test_replay_law_with_temperatures_matches_the_hf_stresses(bar, exact, tmp_path):
    """Law replay at every point along the reduced strains (exact model): round-off."""
    store, problems = bar
    reduction, path = exact
    model = reduction.model
    result = model.solve(problem_scenario(model, problems["train_b"]), OnlineOptions(rtol=1e-12))
    fields = replay_law(open_full(path), result, model.materials[0][0])
    hf = read_run(store.path, "train_b")
    assert rel(fields["stress"], hf["stress"]) < 1e-8
    np.testing.assert_allclose(fields["p"], hf["state"][..., 0], rtol=0, atol=1e-8 * hf["state"][..., 0].max())
    with pytest.raises(ValueError, match="thermal model: give the scenario's temperatures"):
        replay_law(open_full(path), _without_temperature(result), model.materials[0][0])
    # a saved prediction keeps the temperatures: the replay of the reloaded result is the same
    loaded = load_result(save_result(tmp_path / "pred.npz", result))
    again = replay_law(open_full(path), loaded, model.materials[0][0], steps=[3, 12])
    np.testing.assert_array_equal(again["stress"], fields["stress"][[3, 12]])


def _without_temperature(result):
    import dataclasses

    return dataclasses.replace(result, temperature=None)


def test_offline_replay_with_temperatures_matches_the_hf_stresses(bar):
    """replay (stresses missing from a store) integrates the law at the runs' point temperatures."""
    store, _ = bar
    lazy = replay(store.path, bar_law(), runs=["train_a"], write=False)["train_a"]
    hf = read_run(store.path, "train_a")
    assert rel(lazy["stress"].compute(), hf["stress"]) < 1e-9


def test_save_open_round_trip_and_scenario_checks(bar, exact, tmp_path):
    _, problems = bar
    reduction, path = exact
    model = ReducedModel.open(path)
    for key, arr in reduction.model.temperature.items():
        np.testing.assert_array_equal(model.temperature[key], arr)
    assert model.info()["thermal"] and json.loads((path / "zarr.json").read_text())["attributes"]["version"] == 2
    scenario = Scenario.from_problem(problems["train_a"])
    with pytest.raises(ValueError, match="trained with temperatures .* needs them"):
        model.solve(Scenario(scenario.times, scenario.coefficients, scenario.homogeneous))
    missing = ScenarioTemperature(scenario.temperature.node_ids[:50], scenario.temperature.patterns[:, :50],
                                  scenario.temperature.coefficients, 20.0)
    with pytest.raises(ValueError, match="does not give nodes"):
        model.solve(Scenario(scenario.times, scenario.coefficients, scenario.homogeneous, missing))
    # a corrupted temperature array is caught by its checksum
    import zarr

    zarr.open_group(path, mode="r+")["temperature/weights"][0, 0] = 0.5
    with pytest.raises(ValueError, match="checksum mismatch in array 'temperature/weights'"):
        ReducedModel.open(path)


def test_athermal_and_old_models(training, bar, exact, tmp_path):
    """An athermal model (version 1 on disk, no thermal attributes) opens and predicts the same;
    it refuses a thermal scenario, a thermal model refuses an athermal deck."""
    t = training("pressure")
    model = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_ecm=1e-4)).model
    assert not model.thermal
    path = model.save(tmp_path / "old.zarr")
    meta_file = path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    for key in ("thermal", "temperature", "checksum"):  # what a version-1 writer did not write
        del meta["attributes"][key]
    meta["attributes"]["version"] = 1
    meta_file.write_text(json.dumps(meta))
    old = ReducedModel.open(path)
    scenario = Scenario.from_problem(t.problems["train_a"])
    np.testing.assert_array_equal(old.solve(scenario).coordinates, model.solve(scenario).coordinates)
    _, problems = bar
    heated = ScenarioTemperature.from_problem(problems["train_a"])
    with pytest.raises(ValueError, match="the model was trained without any"):
        old.solve(Scenario(scenario.times, scenario.coefficients, scenario.homogeneous, heated))
    thermal = exact[0].model
    cold = bar_problem(0.004, 0.0, 0.0)
    import dataclasses

    from romdask.materials import CalculixViscoplastic

    law = bar_law()
    cold = dataclasses.replace(cold, initial_temperature=None, temperatures=(),
                               material=CalculixViscoplastic(law.young, law.poisson, law.plastic,
                                                             hardening="isotropic", norton=law.norton))
    with pytest.raises(ValueError, match="trained with temperatures but this case has none"):
        problem_scenario(thermal, cold)


def test_temperature_only_increments(bar, ecm):
    """No mechanical load, the whole heating in one increment, then a partial cooling: the
    thermal predictor (the committed strain under the new temperatures) takes the thermal strain
    jump; Newton converges without cutting. Measured: 4 and 2 solves, displacement 3.0e-3."""
    store, problems = bar
    reduction, path = ecm
    model = reduction.model
    result = model.solve(problem_scenario(model, problems["ref_heat_only"]))
    assert result.cuts.sum() == 0 and result.iterations.max() <= 6, result.iterations
    hf = read_run(store.path, "ref_heat_only")
    U = reconstruct_displacement(open_full(path), result).compute()
    assert rel(U, hf["displacement"]) < 2e-2


@pytest.mark.parametrize("case", ["ref_heat_only", "ref_shape"])
def test_compiled_and_interpreted_newton_agree_under_temperatures(bar, ecm, monkeypatch, case):
    """The thermal predictor (one law evaluation at the committed strain) runs inside the
    compiled Newton too: the same bits as the interpreted path (LAW_IDS emptied)."""
    _, problems = bar
    reduction, _ = ecm
    model = reduction.model
    scenario = problem_scenario(model, problems[case])
    assert model.materials[0][0].kernel in LAW_IDS and len(model.materials) == 1  # compiled first
    compiled = model.solve(scenario)
    monkeypatch.setattr("romdask.online.solver.LAW_IDS", {})
    interpreted = model.solve(scenario)
    for name in ("coordinates", "stress", "state", "iterations", "cuts"):
        np.testing.assert_array_equal(getattr(interpreted, name), getattr(compiled, name), err_msg=name)


def test_thermal_and_athermal_runs_do_not_mix(bar, tmp_path):
    """One reduced model is thermal or not: a clear error names the runs."""
    import dataclasses

    from romdask.materials import CalculixViscoplastic

    store, _ = write_runs(tmp_path / "mixed.zarr", {"hot": RUNS["train_a"]})
    cold = bar_problem(0.004, 0.0, 0.0, name="cold")
    law = bar_law()
    cold = dataclasses.replace(cold, initial_temperature=None, temperatures=(),
                               material=CalculixViscoplastic(law.young, law.poisson, law.plastic,
                                                             hardening="isotropic", norton=law.norton))
    from romdask.hifi import solve
    from romdask.problem.patterns import describe_loads

    writer = store.writer("cold", mesh=cold.mesh, times=cold.times, fields=("displacement", "stress", "state"),
                          metadata={"loads": describe_loads(cold)}, allow_nan=("state",))
    solve(cold, writer=writer, fields=("displacement", "stress", "state"))
    with pytest.raises(ValueError, match=r"runs \['hot'\] have temperatures and runs \['cold'\] have none"):
        reduce(store.path, law, options=ReduceOptions(ecm=False))


def test_operator_rows_pad_short_rows():
    """Rows of different lengths (mixed element types) padded with node -1 and weight 0."""
    import scipy.sparse as sp

    from romdask.online.thermal import operator_rows, operator_values

    op = sp.csr_matrix(np.array([[0.5, 0.5, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 0.0]]))
    ids = np.array([40, 10, 30, 20])
    nodes, weights = operator_rows(op, [2, 0, 1], ids)
    assert nodes.tolist() == [[30, -1, -1, -1], [40, 10, -1, -1], [40, 10, 30, 20]]
    assert weights[0].tolist() == [1.0, 0.0, 0.0, 0.0]
    T = np.array([1.0, 2.0, 3.0, 4.0])  # on ids 40, 10, 30, 20
    np.testing.assert_allclose(operator_values(nodes, weights, ids, T), (op @ T)[[2, 0, 1]], rtol=1e-15)


def test_no_allocation_growth_with_temperatures(bar, ecm):
    """The thermal solve allocates per solve, not per increment (beyond the result rows)."""
    import tracemalloc

    _, problems = bar
    model = ecm[0].model
    scenario = problem_scenario(model, problems["ref_amplitude"])
    peaks = {}
    for n_t in (13, 49):
        times = np.linspace(0.0, 2.0, n_t)
        dense = Scenario(times, scenario.coefficients, scenario.homogeneous, scenario.temperature)
        model.solve(dense)  # compiled
        tracemalloc.start()
        model.solve(dense)
        peaks[n_t] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    per_step = 8 * model.n_points * (6 + model.n_state_max) + 8 * 4 * model.n_modes
    print("PEAKS", peaks, per_step)
    assert peaks[49] - peaks[13] < 1.5 * 36 * per_step, (peaks, per_step)


def test_scenario_temperature_validation():
    ids = np.array([3, 1, 2])
    with pytest.raises(ValueError, match="distinct integer solver node ids"):
        ScenarioTemperature([1, 1, 2], np.zeros((1, 3)), (1.0,))
    with pytest.raises(ValueError, match=r"shape \(n_patterns, 3\)"):
        ScenarioTemperature(ids, np.zeros((1, 4)), (1.0,))
    with pytest.raises(ValueError, match="not both, not neither"):
        ScenarioTemperature(ids, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one coefficient per temperature pattern"):
        ScenarioTemperature(ids, np.zeros((2, 3)), (1.0,))
    with pytest.raises(ValueError, match="field_times must be 2 finite, strictly increasing"):
        ScenarioTemperature.from_fields(ids, [0.0, 0.0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="initial must be 3 finite nodal values"):
        ScenarioTemperature(ids, np.zeros((1, 3)), (1.0,), initial=[1.0, np.nan, 2.0])
    # breakpoints: the amplitudes' tables, or the field times
    from romdask.problem.loads import Amplitude

    heat = ScenarioTemperature(ids, np.ones((1, 3)), (Amplitude([0.0, 0.3, 1.0], [0.0, 1.0, 0.0]),), initial=0.0)
    assert Scenario([0.0, 1.0], {}, temperature=heat).breakpoints().tolist() == [0.0, 0.3, 1.0]
    fields = ScenarioTemperature.from_fields(ids, [0.0, 0.7], np.ones((2, 3)), initial=0.0)
    assert Scenario([0.0, 1.0], {}, temperature=fields).breakpoints().tolist() == [0.0, 0.7]


def test_cli_predict_a_thermal_deck(bar, ecm, tmp_path, monkeypatch, capsys):
    """`romdask predict --deck` on a thermal model: the deck's temperatures reach the solver and
    the law replay of the full fields (the deck reader is replaced by the deck's Problem: the
    CalculiX thermal cards are the deck reader's tests); --set refuses a thermal model."""
    import romdask.io.calculix
    from romdask.cli import main

    _, problems = bar
    _, path = ecm
    monkeypatch.setattr(romdask.io.calculix, "read_problem", lambda deck: problems["ref_amplitude"])
    out = tmp_path / "pred.npz"
    assert main(["predict", str(path), "--deck", "new.inp", "--out", str(out), "--vtu", str(tmp_path / "u")]) == 0
    model = ReducedModel.open(path)
    expected = model.solve(problem_scenario(model, problems["ref_amplitude"]))
    loaded = load_result(out)
    np.testing.assert_array_equal(loaded.coordinates, expected.coordinates)
    assert loaded.temperature is not None and (tmp_path / "u.pvd").is_file()
    capsys.readouterr()
    assert main(["predict", str(path), "--set", "pull=0.003", "--out", str(out)]) != 0
    assert "is a thermal model: its cases need temperatures" in capsys.readouterr().err


def test_compare_replays_a_thermal_calculix_reference(bar, ecm, tmp_path):
    """`romdask compare` without the .dat: the law replayed on a thermal CalculiX run's strains
    at its deck's temperatures equals the built-in solver's stresses of the same problem
    (non-uniform initial temperature, one *TEMPERATURE pattern x amplitude). Measured 1.2e-6
    relative: ccx's convergence tolerance and its 6-digit output times (the Norton rate sees dt)."""
    from romdask.hifi import solve
    from romdask.hifi.calculix.deck import write_deck
    from romdask.hifi.calculix.runner import run_ccx
    from romdask.online.compare import calculix_reference
    from romdask.problem.loads import Amplitude, Temperature
    from romdask.store.layout import ip_layout

    pytest.importorskip("romdask.io.calculix.thermal")
    import dataclasses
    import shutil

    if shutil.which("ccx") is None:
        pytest.skip("no ccx")
    base = bar_problem(0.002, 0.0, 0.0)
    shape = 20.0 + 50.0 * base.mesh.nodes[:, 1]
    heat = Temperature(np.arange(base.mesh.n_nodes), shape, Amplitude([0.0, 1.0, 2.0], [1.0, 1.5, 1.2]), name="heat")
    problem = dataclasses.replace(base, initial_temperature=shape, temperatures=(heat,), name="ref")
    ccx = run_ccx(write_deck(problem, tmp_path / "ref.inp", outputs=("U",)))
    full = open_full(ecm[1])
    reference = calculix_reference(full, bar_law(), ccx.deck, ccx.frd, None)
    assert reference.stress_source == "law replay"
    hf = solve(problem, fields=("displacement", "stress"))
    _, _, offset = ip_layout(problem.mesh)
    positions = offset[problem.mesh.element_index(full.mesh.element_ids[full.ip_element])] + full.ip_local_point
    expected = hf.fields["stress"][:, positions]
    assert rel(reference.stress, expected) < 1e-5
    # end to end: predict the deck (its temperatures read by read_problem) and compare with ccx
    from romdask.cli import main
    from romdask.io.calculix import read_problem

    assert main(["predict", str(ecm[1]), "--deck", str(ccx.deck), "--out", str(tmp_path / "p.npz")]) == 0
    model = ReducedModel.open(ecm[1])
    api = model.solve(problem_scenario(model, read_problem(ccx.deck)))
    np.testing.assert_array_equal(load_result(tmp_path / "p.npz").coordinates, api.coordinates)
    deck_initial = dict(zip(api.temperature.node_ids.tolist(), api.temperature.initial))
    np.testing.assert_allclose([deck_initial[i] for i in problem.mesh.node_ids.tolist()], problem.initial_temperature,
                               rtol=1e-12)
    out = tmp_path / "errors.json"
    assert main(["compare", str(ecm[1]), str(tmp_path / "p.npz"), str(ccx.frd), "--json", str(out)]) == 0
    table = json.loads(out.read_text())
    # a temperature shape and initial field never trained (elastic here): measured 1.7e-2
    assert table["stress_source"] == "law replay" and table["rows"][0]["displacement"] < 5e-2
