"""Reduced models with a centrifugal body force: a new omega^2 history predicted against the built-in
solver, ``romdask predict --set`` scaling it like any load; and the temperatures of a thermal run
read from its load description when the store has no temperature field."""

from __future__ import annotations

import numpy as np
import pytest
from thermal_cases import FIELDS, RUNS, bar_law, bar_mesh, bar_problem, read_run, write_runs

from romdask.cli import main
from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
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
)
from romdask.online.results import load_result
from romdask.problem import Dirichlet, Problem
from romdask.problem.loads import Amplitude, Centrifugal, cyclic
from romdask.problem.patterns import run_metadata
from romdask.store import create_store, open_snapshots

DENSITY = 7.85e-9  # t / mm^3
TIMES = np.linspace(0.0, 2.0, 9)
#: name -> (omega^2 [rad^2/s^2], amplitude table values at t = 0, 1, 2)
SPINS = {"train_a": (2.4e9, (0.0, 1.0, 0.0)), "train_b": (1.2e9, (0.0, 1.0, 0.5)),
         "ref": (1.8e9, (0.0, 0.7, 1.0))}


def spin_problem(omega2: float, values, name: str) -> Problem:
    """The bar spinning about the z axis through x = y = 0 (viscoplastic, athermal)."""
    from romdask.materials import CalculixViscoplastic

    mesh = bar_mesh()
    sets = mesh.node_sets
    law = bar_law()
    law = CalculixViscoplastic(law.young, law.poisson, law.plastic, hardening="isotropic", norton=law.norton)
    spin = Centrifugal(np.arange(mesh.n_elements), omega2, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], DENSITY,
                       Amplitude([0.0, 1.0, 2.0], values), name="spin")
    dirichlet = (Dirichlet(sets["xmin"], (0,), name="xsym"), Dirichlet(sets["ymin"], (1,), name="ysym"),
                 Dirichlet(sets["zmin"], (2,), name="zsym"))
    return Problem(mesh, law, dirichlet, TIMES, loads=(spin,), name=name)


@pytest.fixture(scope="module")
def spinning(tmp_path_factory):
    problems = {name: spin_problem(*spec, name) for name, spec in SPINS.items()}
    store = create_store(tmp_path_factory.mktemp("spin") / "s.zarr", bar_mesh(), n_subdomains=2)
    for name, pb in problems.items():
        writer = store.writer(name, mesh=pb.mesh, times=pb.times, fields=("displacement", "stress", "state"),
                              metadata=run_metadata(pb), allow_nan=("state",))
        solve(pb, writer=writer, fields=("displacement", "stress", "state"), options=SolverOptions(rtol=1e-12))
    reduction = reduce(store.path, runs=["train_a", "train_b"], options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
    return store, problems, reduction, reduction.save(tmp_path_factory.mktemp("spin_model") / "m.zarr")


def test_centrifugal_load_with_a_new_omega2_history(spinning):
    """Trained on two omega^2 histories, predicted: a third one (p up to 4.4e-4). Measured (4
    modes, 23 points): displacement 1.4e-3, stress at the reduced points 5.2e-3 relative."""
    store, problems, reduction, path = spinning
    model = reduction.model
    assert model.load_names == ("spin",) and not model.thermal
    result = model.solve(problem_scenario(model, problems["ref"]))
    ds = open_snapshots(store.path, runs=["ref"])
    U = reconstruct_displacement(open_full(path), result).compute()
    hf = ds.displacement.values
    error = float(np.abs(U - hf).max() / np.abs(hf).max())
    assert np.nanmax(ds.state.values[..., 0]) > 1e-4  # plastic
    order = np.argsort(store.layout.ip_points)
    pos = order[np.searchsorted(store.layout.ip_points, model.point_ids, sorter=order)]
    stress = ds.stress.values[:, pos]
    stress_error = float(np.abs(result.stress - stress).max() / np.abs(stress).max())
    assert error < 3e-3 and stress_error < 3e-2


def test_predict_set_scales_the_centrifugal_pattern(spinning, tmp_path):
    _, _, _, path = spinning
    out = tmp_path / "pred.npz"
    assert main(["predict", str(path), "--set", "spin=1.2e9", "--cycles", "1", "--period", "2", "--r-ratio", "0",
                 "--increments-per-cycle", "8", "--out", str(out)]) == 0
    amplitude = cyclic(period=2.0, n_cycles=1, r_ratio=0.0)
    expected = ReducedModel.open(path).solve(
        Scenario(np.linspace(0.0, 2.0, 9), {"spin": Amplitude(amplitude.times, 1.2e9 * amplitude.values)}))
    np.testing.assert_array_equal(load_result(out).coordinates, expected.coordinates)


def test_temperatures_from_the_description(tmp_path):
    """A store without the temperature field: the runs' temperatures come from their load
    description (patterns x amplitudes); the law replay and the reduced model are those of the
    store with the field (round-off)."""
    fields = tuple(f for f in FIELDS if f != "temperature")
    with_field, _ = write_runs(tmp_path / "field.zarr", {"train_a": RUNS["train_a"]})
    described, problems = write_runs(tmp_path / "described.zarr", {"train_a": RUNS["train_a"]}, fields=fields)
    assert "temperature" not in open_snapshots(described.path)
    hf = read_run(with_field.path, "train_a")
    lazy = replay(described.path, bar_law(), runs=["train_a"], write=False)["train_a"]
    np.testing.assert_allclose(lazy["stress"].compute(), hf["stress"], rtol=0, atol=1e-9 * np.abs(hf["stress"]).max())
    options = ReduceOptions(tol_pod=1e-10, ecm=False, pod_method="tsqr")
    a, b = (reduce(s.path, bar_law(), options=options) for s in (with_field, described))
    assert b.report["thermal"]["temperature_source"] == {"train_a": "description"}
    for key in ("nodes", "weights", "initial"):
        np.testing.assert_array_equal(a.model.temperature[key], b.model.temperature[key])
    scenario = problem_scenario(b.model, problems["train_a"])
    np.testing.assert_allclose(b.model.solve(scenario, OnlineOptions(rtol=1e-12)).stress,
                               a.model.solve(scenario, OnlineOptions(rtol=1e-12)).stress, rtol=0,
                               atol=1e-8 * np.abs(hf["stress"]).max())


def test_training_runs_with_different_initial_temperatures(tmp_path):
    """No common initial temperature: the model keeps none and a scenario must give one."""
    runs = {"cool": bar_problem(0.004, 300.0, 0.0, name="cool", room=20.0),
            "warm": bar_problem(0.002, 0.0, 250.0, name="warm", room=80.0)}
    store, problems = write_runs(tmp_path / "rooms.zarr", runs)
    reduction = reduce(store.path, bar_law(), options=ReduceOptions(tol_pod=1e-10, ecm=False, pod_method="tsqr"))
    model = reduction.model
    assert "initial" not in model.temperature
    assert reduction.report["thermal"]["common_initial_temperature"] is False
    scenario = problem_scenario(model, problems["warm"])  # the deck gives its initial temperature
    result = model.solve(scenario, OnlineOptions(rtol=1e-12))
    hf = read_run(store.path, "warm")
    pos = np.argsort(store.layout.ip_points)
    pos = pos[np.searchsorted(store.layout.ip_points, model.point_ids, sorter=pos)]
    np.testing.assert_allclose(result.stress, hf["stress"][:, pos], rtol=0, atol=1e-8 * np.abs(hf["stress"]).max())
    t = scenario.temperature
    no_initial = ScenarioTemperature(t.node_ids, t.patterns, t.coefficients, None, t.base)
    with pytest.raises(ValueError, match="gives no initial temperature and the model has none"):
        model.solve(Scenario(scenario.times, scenario.coefficients, scenario.homogeneous, no_initial))
