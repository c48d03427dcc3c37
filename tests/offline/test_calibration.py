"""Calibration of the error indicator (romdask.offline.calibration): the GP fit, the split-conformal
interval factor, the JSON round trip, and a calibration of a small plate model written into it."""

from __future__ import annotations

import json
import logging
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from romdask.offline import calibrate, calibration_pairs, conformal_factor, fit_calibration, fit_error_model
from romdask.offline.calibration import min_runs
from romdask.online import OnlineOptions, ReducedModel, Scenario, open_full
from romdask.online.indicator import MAX_HALF_WIDTH, Calibration, ErrorModel
from romdask.online.integrity import verify_full, verify_model
from romdask.online.model import open_model_group
from romdask.online.solver import error_flags

from calibration_case import spread_pairs


# ----------------------------------------------------------------------------- synthetic
def test_gp_recovers_a_noisy_line_and_a_curve():
    """y = 0.9 x - 0.5 (+ 0.3 sin 3x) + N(0, 0.1^2): the mean within 0.06 of the truth on the
    data's range, the noise estimate within a factor 1.5 of 0.1."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-3.0, -1.0, 400)
    grid = np.linspace(-2.9, -1.1, 50)
    for bump in (0.0, 0.3):
        def truth(v):
            return 0.9 * v - 0.5 + bump * np.sin(3 * v)

        y = truth(x) + rng.normal(0.0, 0.1, x.size)
        model = fit_error_model(x, y, max_points=300)
        assert len(model.x) == 300 and model.x == tuple(sorted(model.x))
        mu, sd = model.predict(10.0**grid)
        assert np.abs(mu - truth(grid)).max() < 0.06
        assert 0.1 / 1.5 < model.noise < 0.1 * 1.5
        assert np.all(sd >= model.noise) and np.all(sd < 0.15)
        assert fit_error_model(x, y, max_points=300) == model  # deterministic
    with pytest.raises(ValueError, match="finite pairs"):
        fit_error_model([1.0], [2.0])


def _synthetic_run(rng, n_t=8):
    """Indicator and error histories of one run: log error = 0.8 log indicator - 0.3 + a run
    offset N(0, 0.25^2) (the steps of a run are correlated) + step noise N(0, 0.03^2)."""
    final = rng.uniform(-3.0, -1.0)  # the runs' indicators spread over two decades
    log_indicator = np.sort(final - rng.uniform(0.0, 1.5, n_t))
    log_indicator[-1] = final
    offset = rng.normal(0.0, 0.25)
    log_error = 0.8 * log_indicator - 0.3 + offset + rng.normal(0.0, 0.03, n_t)
    return {"indicator": 10.0**log_indicator, "quantity": "stress", "errors": {"von_mises": 10.0**log_error}}


def _coverage(calibration, runs):
    """The fraction of ``runs`` whose final error is inside the predicted interval (one predict
    of every run's final running-maximum indicator: Calibration.predict at the last time)."""
    model = calibration.errors["von_mises"]
    mu, sd = model.predict(np.array([run["indicator"].max() for run in runs]))
    error = np.log10([run["errors"]["von_mises"].max() for run in runs])
    return float(np.mean(np.abs(error - mu) <= model.z * sd))


def test_conformal_factor_gives_the_coverage_on_exchangeable_runs():
    """19 runs, coverage 0.9: z is the 18th smallest residual, so the leave-one-run-out coverage
    is >= 0.9 by construction; fresh runs from the same distribution are covered ~0.9 of the time
    (measured: 0.93 over 4 calibrations x 200 fresh runs; 0.91-0.92 with other seeds)."""
    assert conformal_factor(np.arange(1.0, 20.0), 0.9) == (18.0, True)
    assert conformal_factor([0.5, -3.0, 1.0], 0.9) == (3.0, False)
    assert min_runs(0.9) == 9 and min_runs(0.95) == 19
    rng = np.random.default_rng(1)
    fresh = [_synthetic_run(rng) for _ in range(200)]
    rates = []
    for _ in range(4):
        runs = {f"r{i:02d}": _synthetic_run(rng) for i in range(19)}
        calibration = fit_calibration(runs, coverage=0.9)
        loo = calibration.report["leave_one_out"]["von_mises"]
        assert loo["coverage"] >= 0.9 and loo["conformal"] and len(loo["residuals"]) == 19
        assert calibration.errors["von_mises"].z == sorted(np.abs(loo["residuals"]))[17]
        assert calibration.report["spearman"]["von_mises"] > 0.5
        rates.append(_coverage(calibration, fresh))
    assert 0.85 <= np.mean(rates) <= 0.99, rates


def test_too_few_runs_take_the_largest_residual_with_a_note(caplog):
    rng = np.random.default_rng(2)
    runs = {f"r{i}": _synthetic_run(rng) for i in range(4)}
    with caplog.at_level(logging.WARNING, logger="romdask.offline.calibration"):
        calibration = fit_calibration(runs, coverage=0.9)
    loo = calibration.report["leave_one_out"]["von_mises"]
    assert calibration.errors["von_mises"].z == max(np.abs(loo["residuals"])) and loo["coverage"] == 1.0
    assert "4 runs are too few" in caplog.text and "needs >= 9" in calibration.report["notes"][0]
    with pytest.raises(ValueError, match="at least 3 held-out runs"):
        fit_calibration({k: runs[k] for k in ("r0", "r1")})
    with pytest.raises(ValueError, match="coverage"):
        fit_calibration(runs, coverage=1.0)
    mixed = {**runs, "r0": {**runs["r0"], "quantity": "p"}}
    with pytest.raises(ValueError, match="different quantities"):
        fit_calibration(mixed)


def test_json_round_trip():
    rng = np.random.default_rng(3)
    calibration = fit_calibration({f"r{i}": _synthetic_run(rng) for i in range(5)})
    text = json.dumps(calibration.to_json())
    again = Calibration.from_json(json.loads(text))
    assert again == calibration
    model = calibration.errors["von_mises"]
    assert ErrorModel.from_json(json.loads(json.dumps(model.to_json()))) == model
    indicator = 10.0 ** np.linspace(-3, -1, 7)
    np.testing.assert_array_equal(again.predict(indicator)["von_mises"], calibration.predict(indicator)["von_mises"])


def _band(model, indicator):
    """The GP's interval as it was before the spread rules: 10^(mu, mu - z sd, mu + z sd)."""
    mu, sd = model.predict(indicator)
    return 10.0 ** np.stack([mu, mu - model.z * sd, mu + model.z * sd], axis=-1)


def test_enough_runs_keep_a_wide_but_conformal_interval(caplog):
    """12 runs (enough for a conformal 90 % interval) whose displacement errors the indicator does
    not rank (1-4 %, as in SPREAD_RUNS, the runs repeated at shifted indicators): the medians miss
    by more than a decade, but the conformal interval is valid however wide, so the measure stays
    calibrated (what the benchmark's 23 plate scenarios show for p: spread up to 1.9 decades,
    96 % coverage)."""
    base = spread_pairs()
    pairs = {}
    for shift in (0.0, 0.3, 0.6):
        for name, run in base.items():
            errors = {m: v * (10.0 ** (-shift) if m == "von_mises" else 1.0) for m, v in run["errors"].items()}
            pairs[f"{name}-{shift}"] = {**run, "indicator": run["indicator"] * 10.0 ** (-shift), "errors": errors}
    with caplog.at_level(logging.WARNING, logger="romdask.offline.calibration"):
        calibration = fit_calibration(pairs)
    loo = calibration.report["leave_one_out"]["displacement"]
    assert loo["conformal"] and loo["spread"] > 1.0, loo["spread"]
    assert calibration.not_calibrated == {}
    assert "not calibrated" not in caplog.text


def test_few_runs_the_indicator_does_not_rank_are_not_calibrated(caplog):
    """4 runs of 40 steps (calibration_case.SPREAD_RUNS): the indicator ranks their von Mises
    errors, not their displacement errors (1-4 %). The displacement GP fits the steps of each run
    (length 0.07 decades, amplitude 0.96) and z = 3.8 (run r0 left out: 0.017 % predicted, 4.4 %
    true): at an indicator of 0.1 its interval was 2.3e-6 to 110 (median 0.016). The left-out runs'
    displacement errors were missed by up to 2.4 decades: not calibrated, NaN everywhere; von Mises
    (0.44 decades) keeps the GP's intervals."""
    with caplog.at_level(logging.WARNING, logger="romdask.offline.calibration"):
        calibration = fit_calibration(spread_pairs())
    loo = calibration.report["leave_one_out"]
    assert loo["displacement"]["spread"] == pytest.approx(2.42, abs=0.01)
    assert max(np.abs(loo["displacement"]["misses"])) == loo["displacement"]["spread"]  # 4 runs: the largest
    assert loo["von_mises"]["spread"] == pytest.approx(0.44, abs=0.01)
    assert calibration.not_calibrated == {"displacement": loo["displacement"]["spread"]}
    assert "displacement: not calibrated" in caplog.text
    raw = _band(calibration.errors["displacement"], np.array([0.1]))[0]
    assert raw[2] / raw[1] > 1e7  # the failure: 7.7 decades
    grid = 10.0 ** np.linspace(-12.0, 0.0, 121)  # the indicator is <= 1
    predicted = calibration.predict(grid)
    assert np.all(np.isnan(predicted["displacement"]))
    np.testing.assert_array_equal(predicted["von_mises"], _band(calibration.errors["von_mises"], grid))
    # where a von Mises value is given (here everywhere), its ends are within a factor 100 of it
    vm = predicted["von_mises"]
    assert np.all(np.isfinite(vm)) and np.all(np.log10(vm[:, 2] / vm[:, 0]) <= MAX_HALF_WIDTH)
    # a not calibrated error measure flags by the indicator threshold, as without calibration
    options = OnlineOptions(error_measure="displacement", indicator_threshold=0.01, error_tolerance=1e-6)
    flagged, _ = error_flags(SimpleNamespace(calibration=calibration), "stress", grid, options)
    np.testing.assert_array_equal(flagged, grid > 0.01)
    flagged, _ = error_flags(SimpleNamespace(calibration=calibration), "stress", grid,
                             OnlineOptions(error_tolerance=0.01))
    np.testing.assert_array_equal(flagged, vm[:, 0] > 0.01)


def test_well_behaved_runs_keep_their_intervals():
    """19 runs whose errors follow the indicator (spread 0.3-0.4 decades): the intervals are the
    GP's, bit for bit, as before the spread rules."""
    rng = np.random.default_rng(1)
    calibration = fit_calibration({f"r{i:02d}": _synthetic_run(rng) for i in range(19)})
    assert not calibration.not_calibrated and calibration.spread["von_mises"] < 0.6
    grid = 10.0 ** np.linspace(-3.5, -0.5, 61)
    np.testing.assert_array_equal(calibration.predict(grid)["von_mises"],
                                  _band(calibration.errors["von_mises"], grid))


def test_a_calibration_stored_before_the_spread_says_the_same():
    """A report without "spread" / "misses" (calibrated by an earlier romdask): the spread comes
    from its per-run rows (true error, left-out median); without rows it is unknown (NaN) and the
    measure predicts as before."""
    calibration = fit_calibration(spread_pairs())
    data = json.loads(json.dumps(calibration.to_json()))
    for entry in data["report"]["leave_one_out"].values():
        del entry["spread"], entry["misses"]
    old = Calibration.from_json(data)
    assert old.spread == pytest.approx(calibration.spread, rel=1e-9) and set(old.not_calibrated) == {"displacement"}
    grid = 10.0 ** np.linspace(-6.0, 0.0, 25)
    for measure, values in calibration.predict(grid).items():
        np.testing.assert_array_equal(old.predict(grid)[measure], values)
    bare = Calibration.from_json({**data, "report": {}})
    assert np.isnan(bare.spread["displacement"]) and not bare.not_calibrated
    np.testing.assert_array_equal(bare.predict(grid)["von_mises"], _band(bare.errors["von_mises"], grid))


# ----------------------------------------------------------------------------- the plate
@pytest.fixture(scope="module")
def plate_pairs(calibration_case):
    case = calibration_case
    return calibration_pairs(case.model, case.store, [*case.calibration, *case.held_out])


def test_pairs_are_the_compare_errors(plate_pairs, calibration_case):
    """Per-time errors whose maximum over time is the scenario error of field_errors (von Mises
    and p); the indicator is the model's stress misfit."""
    from romdask.materials import von_mises
    from romdask.online import prediction_fields
    from romdask.online.compare import field_errors
    from romdask.store import open_snapshots

    case = calibration_case
    run = case.calibration[0]
    got = plate_pairs[run]
    assert got["quantity"] == "stress" and not got["training"]
    model = ReducedModel.open(case.model)
    result = model.solve(Scenario.from_problem(case.problems[run]))
    np.testing.assert_allclose(got["indicator"], result.indicator, rtol=1e-12)
    rom = prediction_fields(open_full(case.model), result, model.materials[0][0])
    ds = open_snapshots(case.store, runs=[run])
    figures = field_errors({"von_mises": von_mises(rom["stress"]), "p": rom["p"]},
                           {"von_mises": von_mises(ds["stress"].values), "p": ds["state"].values[..., 0]})
    assert got["errors"]["von_mises"].max() == pytest.approx(figures["von_mises"], rel=1e-12)
    assert got["errors"]["p"].max() == pytest.approx(figures["p"], rel=1e-12)
    u_rom, u_hf = np.asarray(rom["displacement"]), ds["displacement"].values
    expected = np.linalg.norm(u_rom - u_hf, axis=1) / np.linalg.norm(u_hf, axis=1).max()
    np.testing.assert_allclose(got["errors"]["displacement"], expected, rtol=1e-10)
    # the plate's errors grow with the amplitude's distance from the training runs
    assert 1e-3 < got["errors"]["von_mises"].max() < 0.2


def test_calibrate_writes_into_the_model_and_predicts_a_held_out_run(calibration_case, plate_pairs, tmp_path):
    case = calibration_case
    path = tmp_path / "m.zarr"
    shutil.copytree(case.model, path)
    before = {k: v for k, v in open_model_group(path).attrs.asdict().items() if k not in ("metadata", "checksum")}
    calibration = calibrate(path, case.store, case.calibration)
    assert calibration == fit_calibration({r: plate_pairs[r] for r in case.calibration})
    root = open_model_group(path)
    verify_model(root, path)
    verify_full(root, path, [f"full/{k}" for k in root["full"].attrs["arrays"]])
    assert {k: v for k, v in root.attrs.asdict().items() if k not in ("metadata", "checksum")} == before
    model = ReducedModel.open(path)
    assert model.calibration == calibration
    original = ReducedModel.open(case.model)
    assert {k: v for k, v in model.metadata.items() if k != "calibration"} == original.metadata
    full = open_full(path)
    assert full.mesh is not None and full.mesh.n_nodes == 189
    np.testing.assert_array_equal(np.asarray(full.modes), np.asarray(open_full(case.model).modes))
    assert not [p for p in os.listdir(tmp_path) if p != "m.zarr"]  # no temporary left
    report = calibration.report
    assert report["runs"] == case.calibration and report["spearman"]["von_mises"] >= 0.8
    assert all(report["leave_one_out"][m]["coverage"] == 1.0 for m in calibration.errors)  # 5 runs: z = the largest
    # a run the calibration never saw: its true errors are inside the predicted intervals, to
    # 0.1 decade: with 5 runs z is the largest leave-one-out residual, not a conformal quantile (the
    # warning above), so a new run may fall just outside (the displacement's interval is 0.2
    # decades wide here; with the ECM's point elimination the truth is 0.8 % under its low end)
    run = case.held_out[0]
    result = model.solve(Scenario.from_problem(case.problems[run]))
    assert result.indicator_quantity == "stress"
    for measure, prediction in result.predicted_error.items():
        low, high = prediction[-1, 1:]
        assert low / 10**0.1 <= plate_pairs[run]["errors"][measure].max() <= high * 10**0.1, measure
    # recalibrating replaces the calibration
    again = calibrate(path, case.store, case.calibration[:3], coverage=0.8)
    assert ReducedModel.open(path).calibration == again and again.coverage == 0.8


def test_an_interrupted_write_leaves_the_old_model(calibration_case, tmp_path, monkeypatch):
    import romdask.online.integrity as integrity

    case = calibration_case
    path = tmp_path / "m.zarr"
    shutil.copytree(case.model, path)
    calibration = fit_calibration(calibration_pairs(path, case.store, case.calibration[:3]))

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(integrity.os, "rename", fail)
    with pytest.raises(OSError, match="disk full"):
        from romdask.offline import write_calibration

        write_calibration(path, calibration)
    monkeypatch.undo()
    model = ReducedModel.open(path)
    assert model.calibration is None and os.listdir(tmp_path) == ["m.zarr"]


def test_bad_inputs_are_refused(calibration_case, tmp_path):
    from romdask.problem.patterns import describe_loads
    from romdask.store import SnapshotStore

    case = calibration_case
    with pytest.raises(ValueError, match=r"no run\(s\) \['nope'\]"):
        calibration_pairs(case.model, case.store, ["nope", *case.calibration])
    with pytest.raises(ValueError, match="at least 3 held-out runs"):
        calibrate(case.model, case.store, case.calibration[:2], write=False)
    # a thermal run (its load description has temperatures): refused before any solve
    store_path = tmp_path / "s.zarr"
    shutil.copytree(case.store, store_path)
    pb = case.problems["train_a"]
    loads = {**describe_loads(pb), "temperature": {"initial": 20.0, "patterns": []}}
    writer = SnapshotStore.open(store_path).writer("hot", mesh=pb.mesh, times=pb.times[:2], fields=("displacement",),
                                                   metadata={"loads": loads})
    for k, t in enumerate(pb.times[:2]):
        writer.write(k, t, {"displacement": np.zeros((pb.mesh.n_nodes, 3))})
    writer.close()
    with pytest.raises(ValueError, match="run 'hot' is thermal"):
        calibration_pairs(case.model, store_path, [*case.calibration[:2], "hot"])
    with pytest.raises(ValueError, match="format 'romdask-snapshots'"):
        from romdask.offline import write_calibration

        write_calibration(store_path, fit_calibration({f"r{i}": _synthetic_run(np.random.default_rng(i))
                                                       for i in range(3)}))


def test_a_training_run_is_accepted_with_a_warning(calibration_case, caplog):
    case = calibration_case
    with caplog.at_level(logging.WARNING, logger="romdask.offline.calibration"):
        pairs = calibration_pairs(case.model, case.store, ["train_a"])
    assert pairs["train_a"]["training"] and "training run" in caplog.text
    # a training run is reproduced to the reduced quadrature's accuracy (tol_ecm = 1e-5)
    assert pairs["train_a"]["errors"]["von_mises"].max() < 1e-5
