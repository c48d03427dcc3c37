"""A dictionary of thermal local models: the selector reads the scenario's temperatures (issue 16,
"temperature and rotation when present"), on the spinning blade at one rotation speed and two
temperature levels, where the load patterns alone cannot tell the clusters apart."""

from __future__ import annotations

import numpy as np
import pytest

from romdask.demo import FIELDS
from romdask.hifi.builtin import solve
from romdask.offline import reduce_local
from romdask.online import ModelDictionary, Scenario, ScenarioTemperature
from romdask.online.selection import load_features, scenario_temperature_features, temperature_features
from romdask.problem.patterns import run_metadata
from romdask.problems.thermal import thermal_problem
from romdask.store import create_store

#: peak temperature (C), rotation (rad/s): the same rotation in every run, two temperature levels
RUNS = {"hot1": (900.0, 1000.0), "hot2": (1000.0, 1000.0), "cold1": (100.0, 1000.0), "cold2": (150.0, 1000.0)}


def _problem(peak, omega):
    return thermal_problem(4, peak_temperature=peak, omega=omega, increments_per_cycle=20)


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("thermal-dictionary")
    store = create_store(tmp / "s.zarr", _problem(*RUNS["hot1"]).mesh, n_subdomains=2)
    for name, case in RUNS.items():
        p = _problem(*case)
        writer = store.writer(name, mesh=p.mesh, times=p.times, fields=FIELDS, solver="romdask",
                              metadata=run_metadata(p), allow_nan=("state",))
        solve(p, writer=writer, fields=FIELDS)
    local = reduce_local(store.path, k=2)
    assert {frozenset(c) for c in local.clusters} == {frozenset({"hot1", "hot2"}), frozenset({"cold1", "cold2"})}
    local.save(tmp / "d.zarr")
    return ModelDictionary.open(tmp / "d.zarr")


def test_the_loads_alone_do_not_separate_the_clusters(dictionary):
    """Every run has the same rotation: the load features are equal, only temperature differs."""
    names = dictionary.selector.names
    features = [load_features(Scenario.from_problem(_problem(*case)), names) for case in RUNS.values()]
    assert all(np.allclose(f, features[0]) for f in features)
    assert dictionary.selector.thermal and dictionary.info()["selector"]["temperature"]


@pytest.mark.parametrize("peak, family", [(950.0, "hot1"), (1050.0, "hot2"), (120.0, "cold1"), (80.0, "cold1")])
def test_the_temperature_picks_the_cluster(dictionary, peak, family):
    scenario = Scenario.from_problem(_problem(peak, 1000.0))
    prediction = dictionary.solve(scenario, choice="classifier")
    assert family in dictionary.clusters[prediction.rom]
    assert np.all(np.isfinite(prediction.result.coordinates))


def test_a_thermal_dictionary_needs_temperatures(dictionary):
    scenario = Scenario.from_problem(_problem(950.0, 1000.0))
    athermal = Scenario(scenario.times, scenario.coefficients, scenario.homogeneous)
    with pytest.raises(ValueError, match="needs its temperatures"):
        dictionary.select(athermal)


def test_fields_and_patterns_give_the_same_features():
    """The same nodal history given as fields per time or as patterns x coefficients."""
    problem = _problem(900.0, 1000.0)
    patterned = ScenarioTemperature.from_problem(problem)
    times = problem.times
    history = np.array([problem.nodal_temperature(t) for t in times])
    fields = ScenarioTemperature.from_fields(problem.mesh.node_ids, times, history, initial=patterned.initial)
    expected = temperature_features(history, np.full(problem.mesh.n_nodes, problem.initial_temperature))
    for temperature in (patterned, fields):
        got = scenario_temperature_features(Scenario(times, {"rotation": 1.0}, temperature=temperature))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    # the features: largest mean rise, largest and lowest nodal rise, largest spread; 900 C at the tip
    assert expected[1] == pytest.approx(900.0) and expected[2] == pytest.approx(0.0)
    assert 0.0 < expected[0] < 900.0 and expected[3] > 0.0
