"""A dictionary of local reduced models (romdask.online.dictionary and .selection, issue 16):
save/open with checksums, the nearest-neighbour selector and solve with a choice of model."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import zarr

from romdask.demo import FIELDS
from romdask.hifi.builtin import solve
from romdask.offline import reduce_local
from romdask.online import ModelDictionary, Scenario
from romdask.online.dictionary import is_dictionary, local_model_path
from romdask.online.selection import LoadSelector, load_features
from romdask.online import solver
from romdask.online.solver import OnlineConvergenceError, TrainingEnvelopeWarning
from romdask.problem.loads import Amplitude
from romdask.problem.patterns import run_metadata
from romdask.problems import plate_traction_problem
from romdask.store import SnapshotStore, create_store

TOP = {"t1": (150.0, 0.0), "t2": (190.0, 0.0)}
RIGHT = {"r1": (0.0, 150.0), "r2": (0.0, 190.0)}


def _problem(top, right, **kwargs):
    return plate_traction_problem(top, right, n=4, **{"increments_per_cycle": 20, **kwargs})


def _scenario(top, right, **kwargs):
    return Scenario.from_problem(_problem(top, right, **kwargs))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(store path, LocalReduction, saved dictionary path) of the two planted families."""
    folder = tmp_path_factory.mktemp("dictionary")
    store = create_store(folder / "s.zarr", _problem(*TOP["t1"]).mesh, n_subdomains=2)
    for name, loads in {**TOP, **RIGHT}.items():
        p = _problem(*loads)
        writer = store.writer(name, mesh=p.mesh, times=p.times, fields=FIELDS, solver="romdask",
                              metadata=run_metadata(p), allow_nan=("state",))
        solve(p, writer=writer, fields=FIELDS)
    local = reduce_local(store.path)
    return store.path, local, local.save(folder / "d.zarr")


@pytest.fixture(scope="module")
def dictionary(trained):
    return ModelDictionary.open(trained[2])


def _cluster(dictionary, run):
    return next(c for c, members in enumerate(dictionary.clusters) if run in members)


@pytest.fixture
def copy(trained, tmp_path):
    """A fresh copy of the saved dictionary, to tamper with."""
    return shutil.copytree(trained[2], tmp_path / "d.zarr")


# ---- the artifact --------------------------------------------------------------------------------


def test_round_trip(trained, dictionary):
    _, local, path = trained
    assert is_dictionary(path) and not is_dictionary(trained[0])
    expected = local.dictionary()
    assert {frozenset(c) for c in dictionary.clusters} == {frozenset(TOP), frozenset(RIGHT)}
    assert dictionary.clusters == expected.clusters and dictionary.medoids == expected.medoids
    assert dictionary.names == ("rom0", "rom1")
    for ours, saved in zip(expected.models, dictionary.models):
        a, b = ours.arrays(), saved.arrays()
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name
        assert saved.load_names == ours.load_names == ("top_traction", "right_traction")
    s, t = expected.selector, dictionary.selector
    assert s.names == t.names and s.runs == t.runs == tuple(sorted({**TOP, **RIGHT}))
    for name in ("labels", "features", "scale"):
        assert getattr(s, name).dtype == getattr(t, name).dtype
        assert np.array_equal(getattr(s, name), getattr(t, name)), name
    assert dictionary.metadata == json.loads(json.dumps(expected.metadata))
    assert dictionary.metadata["dissimilarity"]["runs"] == list(local.dissimilarity.runs)
    assert np.array_equal(dictionary.metadata["dissimilarity"]["matrix"], local.dissimilarity.matrix)
    assert [row["k"] for row in dictionary.metadata["criterion"]] == [1, 2]
    # the local models are complete models, full bases included
    assert (local_model_path(path, "rom0") / "full").is_dir()


def test_edited_root_attribute_is_refused(copy):
    root = zarr.open_group(copy, mode="r+")
    root.attrs["medoids"] = list(reversed(root.attrs["medoids"]))
    with pytest.raises(ValueError, match="checksum mismatch in the dictionary's attributes"):
        ModelDictionary.open(copy)


def test_edited_array_of_a_local_model_is_refused(copy):
    weights = zarr.open_array(local_model_path(copy, "rom0") / "weights", mode="r+")
    values = weights[...]
    values[0] *= 1.0 + 1e-12
    weights[...] = values
    with pytest.raises(ValueError, match="local model 'rom0'.*weights"):
        ModelDictionary.open(copy)


def test_swapped_local_model_is_refused(copy):
    shutil.rmtree(local_model_path(copy, "rom0"))
    shutil.copytree(local_model_path(copy, "rom1"), local_model_path(copy, "rom0"))
    with pytest.raises(ValueError, match="local model 'rom0' is not the one saved.*replaced"):
        ModelDictionary.open(copy)


def test_save_refuses_what_it_must_not_replace(trained, dictionary, tmp_path):
    store_path, local, path = trained
    with pytest.raises(ValueError, match="already exists"):
        local.save(path)
    # a dictionary is replaced, atomically, by another
    again = shutil.copytree(path, tmp_path / "d.zarr")
    dictionary.save(again, overwrite=True)
    assert ModelDictionary.open(again).clusters == dictionary.clusters
    assert not (local_model_path(again, "rom0") / "full").exists()  # saved without the full bases
    # a snapshot store is not replaced, and stays intact
    before = sorted(p.relative_to(store_path) for p in store_path.rglob("*"))
    runs = SnapshotStore.open(store_path, mode="r").runs(complete_only=True).keys()
    with pytest.raises(ValueError, match="snapshot store"):
        dictionary.save(store_path, overwrite=True)
    assert sorted(p.relative_to(store_path) for p in store_path.rglob("*")) == before
    assert SnapshotStore.open(store_path, mode="r").runs(complete_only=True).keys() == runs
    # nor is a single reduced model: a dictionary is not a model
    with pytest.raises(ValueError, match="not a romdask model"):
        dictionary.save(local_model_path(again, "rom0"), overwrite=True)


# ---- the selector ----------------------------------------------------------------------------------

#: unseen scenarios of each family: other amplitude, R-ratio, period and number of cycles
HELD_OUT = {
    "t1": [(170.0, 0.0, {}), (120.0, 0.0, {"r_ratio": 0.0, "period": 4.0, "n_cycles": 3}),
           (200.0, 0.0, {"r_ratio": -0.5, "period": 30.0, "n_cycles": 0.5})],
    "r1": [(0.0, 170.0, {}), (0.0, 120.0, {"r_ratio": 0.0, "period": 4.0, "n_cycles": 3}),
           (0.0, 200.0, {"r_ratio": -0.5, "period": 30.0, "n_cycles": 0.5})],
}


@pytest.mark.parametrize("family", ["t1", "r1"])
def test_classifier_ranks_the_family_first(dictionary, family):
    for top, right, kwargs in HELD_OUT[family]:
        ranking = dictionary.select(_scenario(top, right, **kwargs))
        assert ranking.order[0] == _cluster(dictionary, family), (top, right, kwargs)
        assert not ranking.ambiguous
        assert ranking.nearest[ranking.order[0]] in dictionary.clusters[ranking.order[0]]
        assert ranking.distances[ranking.order[0]] < ranking.distances[ranking.order[1]]


def test_half_way_is_ambiguous(dictionary):
    ranking = dictionary.select(_scenario(160.0, 160.0))
    assert ranking.ambiguous
    # a training run itself: distance 0 to its cluster, far from the other
    ranking = dictionary.select(_scenario(*TOP["t2"]))
    assert ranking.distances[_cluster(dictionary, "t2")] == pytest.approx(0.0, abs=1e-12)
    assert not ranking.ambiguous


def test_features_do_not_depend_on_the_duration():
    """Peaks and the normalized second moment of a triangular cycle: the same for 1 or 3 cycles,
    any period (the peaks were sampled on a uniform grid that missed the cycle's peaks)."""
    names = ("top_traction", "right_traction")
    one = load_features(_scenario(150.0, 50.0), names)
    # 1.3 and 3.3 cycles: no uniform sample of 65 falls on a peak (the old features read 149.06, 148.59)
    for kwargs in ({"n_cycles": 1.3, "period": 7.0}, {"n_cycles": 3.3, "period": 4.0, "r_ratio": 0.0}):
        other = load_features(_scenario(150.0, 50.0, **kwargs), names)
        np.testing.assert_allclose(other, one, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(one, [150.0, 50.0, 0.9, 0.3, 0.1], rtol=1e-12)
    # a pattern the scenario does not give counts as 0
    only = Scenario(np.linspace(0.0, 1.0, 5), {"top_traction": Amplitude([0.0, 1.0], [0.0, 2.0])})
    np.testing.assert_allclose(load_features(only, names), [2.0, 0.0, 1.0, 0.0, 0.0])


def test_selector_json_round_trip_and_checks(dictionary):
    s = dictionary.selector
    t = LoadSelector.from_json(json.loads(json.dumps(s.to_json())))
    assert t.runs == s.runs and np.array_equal(t.features, s.features) and np.array_equal(t.scale, s.scale)
    bad = {**s.to_json(), "features": s.features[:, :-1].tolist()}
    with pytest.raises(ValueError, match="do not match"):
        LoadSelector.from_json(bad)
    with pytest.raises(ValueError, match="unknown selector"):
        LoadSelector.from_json({**s.to_json(), "n_samples": 10})


# ---- solve -------------------------------------------------------------------------------------------


def test_solve_with_the_classifier(dictionary):
    scenario = _scenario(170.0, 0.0)
    pred = dictionary.solve(scenario)
    assert pred.rom == _cluster(dictionary, "t1") and pred.reason == "classifier"
    assert list(pred.tried) == [pred.rom] and np.isfinite(pred.tried[pred.rom])
    assert pred.tried[pred.rom] == np.nanmax(pred.result.indicator)
    assert np.array_equal(pred.result.times, scenario.times)


def test_best_of_two_keeps_the_lower_indicator(dictionary):
    with pytest.warns(TrainingEnvelopeWarning, match="right_traction reaches -170"):  # from the top model
        pred = dictionary.solve(_scenario(0.0, 170.0, n_cycles=0.5), choice="best-of-2")
    assert sorted(pred.tried) == [0, 1] and pred.reason == "best of 2 by the error indicator"
    assert pred.tried[pred.rom] == min(pred.tried.values())
    assert pred.tried[pred.rom] == np.nanmax(pred.result.indicator)
    # the wrong family's model is the worse one here: its indicator says so
    assert pred.rom == _cluster(dictionary, "r1") and max(pred.tried.values()) > pred.tried[pred.rom]


def test_forced_choice(dictionary):
    wrong = 1 - _cluster(dictionary, "t1")
    with pytest.warns(TrainingEnvelopeWarning, match="top_traction"):  # the right model never saw it
        pred = dictionary.solve(_scenario(170.0, 0.0, n_cycles=0.5), choice=np.int64(wrong))
    assert pred.rom == wrong and pred.reason == "forced" and list(pred.tried) == [wrong]


@pytest.mark.parametrize("choice", ["best", "Auto", 2, -1, True, 1.0, None])
def test_invalid_choice(dictionary, choice):
    with pytest.raises(ValueError, match="choice"):
        dictionary.solve(_scenario(170.0, 0.0, n_cycles=0.5), choice=choice)


def test_unknown_zero_pattern_is_dropped_nonzero_kept(dictionary):
    base = _scenario(170.0, 0.0)
    model = dictionary.models[0]
    lifting = tuple(model.lifting["lifting_names"]) if model.lifting is not None else ()
    zero_table = Amplitude([0.0, 5.0, 10.0], [0.0, 0.0, 0.0])
    for ghost in (0.0, zero_table, lambda t: 0.0 * t):
        scenario = Scenario(base.times, {**base.coefficients, "ghost": ghost}, base.homogeneous)
        for c in range(2):
            mine = dictionary._scenario_for(c, scenario)
            assert "ghost" not in mine.coefficients and "ghost" in mine.homogeneous
            assert set(mine.coefficients) == set(base.coefficients)
            mine.check(model.load_names, lifting)  # the model accepts it
    for ghost in (1.0, Amplitude([0.0, 5.0, 10.0], [0.0, 1.0, 0.0])):  # nonzero at one breakpoint only
        scenario = Scenario(base.times, {**base.coefficients, "ghost": ghost}, base.homogeneous)
        assert dictionary._scenario_for(0, scenario) is scenario
        with pytest.raises(ValueError, match=r"unknown patterns \['ghost'\]"):
            dictionary.solve(scenario, choice=0)


def test_auto_solves_two_when_ambiguous(dictionary):
    scenario = _scenario(160.0, 160.0, n_cycles=0.5)
    with pytest.warns(TrainingEnvelopeWarning):  # each model saw one of the two patterns only
        auto = dictionary.solve(scenario)
    with pytest.warns(TrainingEnvelopeWarning):
        classifier = dictionary.solve(scenario, choice="classifier")
    assert auto.ranking.ambiguous and auto.reason == "best of 2 by the error indicator"
    assert sorted(auto.tried) == [0, 1] and auto.tried[auto.rom] == min(auto.tried.values())
    assert classifier.reason == "classifier" and list(classifier.tried) == [classifier.ranking.order[0]]


def test_a_failed_solve_loses(dictionary, monkeypatch):
    """A local model whose Newton fails counts as an infinite indicator: the other one is kept,
    although it is the wrong family's; a model solved alone raises its error, and so do two."""
    solve_model = solver.solve
    right = _cluster(dictionary, "r1")
    failing = dictionary.models[right]

    def solve_or_fail(model, scenario, options=None, progress=None):
        if model is failing:
            raise OnlineConvergenceError("no convergence (test)")
        return solve_model(model, scenario, options, progress=progress)

    def always_fail(model, scenario, options=None, progress=None):
        raise OnlineConvergenceError("all fail (test)")

    monkeypatch.setattr(solver, "solve", solve_or_fail)
    scenario = _scenario(0.0, 170.0, n_cycles=0.5)
    with pytest.warns(TrainingEnvelopeWarning):  # the top model never saw right_traction
        pred = dictionary.solve(scenario, choice="best-of-2")
    assert pred.rom == 1 - right and pred.tried[right] == np.inf and np.isfinite(pred.tried[1 - right])
    with pytest.raises(OnlineConvergenceError, match="no convergence"):
        dictionary.solve(scenario, choice=right)
    monkeypatch.setattr(solver, "solve", always_fail)
    with pytest.raises(OnlineConvergenceError, match="all fail"):
        dictionary.solve(scenario, choice="best-of-2")


def test_open_refuses_what_is_not_a_dictionary(trained, tmp_path):
    store_path, _, path = trained
    for other in (store_path, local_model_path(path, "rom0")):
        with pytest.raises(ValueError, match="format"):
            ModelDictionary.open(other)
    with pytest.raises(ValueError, match="not a Zarr v3 group"):
        ModelDictionary.open(tmp_path / "missing.zarr")


def test_local_models_are_opened_inside_the_dictionary_only(copy, trained):
    """roms are names, not paths: an attribute pointing outside (checksum recomputed) is refused."""
    from romdask.online.dictionary import _sha

    root = zarr.open_group(copy, mode="r+")
    attrs = root.attrs.asdict()
    attrs.pop("checksum")
    outside = local_model_path(trained[2], "rom1")  # another dictionary's model, with its own checksum
    name = os.path.relpath(outside, copy / "roms")
    attrs["roms"] = ["rom0", name]
    attrs["members"][name] = zarr.open_group(outside, mode="r").attrs["checksum"]["sha256"]
    root.attrs.update({**attrs, "checksum": _sha(attrs)})
    with pytest.raises(ValueError, match="named rom0"):
        ModelDictionary.open(copy)
