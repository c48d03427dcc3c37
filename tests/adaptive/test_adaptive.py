"""Enrichment of a reduced model with high-fidelity snapshots and the adaptive computation
(issue 15), on the small plate with a hole (189 nodes, 20 increments per cycle).

The model is trained on 0.004 and 0.008 mm (one cycle) in a store of 2 subdomains (store order
differs from the problem's: the maps between them are exercised); 0.016 mm is outside the
training range. References: the built-in solver on the same problem, in the same store.
"""

from __future__ import annotations

import numpy as np
import pytest

from romdask.adaptive import AdaptiveOptions, adaptive_solve, enrich, enrichable
from romdask.demo import FIELDS
from romdask.fem.quadrature import strain
from romdask.hifi import solve
from romdask.materials import von_mises
from romdask.offline import reduce
from romdask.online import OnlineOptions, ReducedModel, Scenario, open_full, prediction_fields
from romdask.online.indicator import misfit_indicator
from romdask.problem.patterns import run_metadata
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_snapshots

TRAIN = (0.004, 0.008)


def _problem(amplitude: float, **kwargs):
    return plate_problem(amplitude=amplitude, n=4, increments_per_cycle=20, **kwargs)


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptive")
    store = create_store(root / "s.zarr", _problem(0.016).mesh, n_subdomains=2)
    for name, a in (("train-0.004", 0.004), ("train-0.008", 0.008), ("ref-0.016", 0.016), ("ref-0.006", 0.006)):
        problem = _problem(a)
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, fields=FIELDS, solver="romdask",
                              metadata=run_metadata(problem), allow_nan=("state",))
        solve(problem, writer=writer, fields=FIELDS)
    reduction = reduce(store.path, runs=["train-0.004", "train-0.008"])
    path = reduction.save(root / "model.zarr")
    return root, store.path, path


def _errors(full, result, law, store_path, run):
    """Displacement (time-space L2), von Mises and p (largest difference / largest value)."""
    fields = prediction_fields(full, result, law, dual="replay")
    ref = open_snapshots(store_path, runs=[run])
    u, uh = np.asarray(fields["displacement"]), ref.displacement.values
    vm, vmh = von_mises(np.asarray(fields["stress"])), von_mises(ref.stress.values)
    p, ph = np.asarray(fields["p"]), ref.state.values[..., 0]
    return (np.linalg.norm(u - uh) / np.linalg.norm(uh), np.abs(vm - vmh).max() / vmh.max(),
            np.abs(p - ph).max() / ph.max())


def test_enrich_appends_orthonormal_modes_that_capture_the_snapshots(plate):
    root, store_path, path = plate
    problem = _problem(0.016)
    base = enrichable(path, problem)
    hf = solve(problem, fields=("displacement", "stress", "state"))
    steps = [4, 5]
    names = base.model.lifting["lifting_names"]
    scenario = Scenario.from_problem(problem)
    a = np.array([scenario.values(tuple(names), float(problem.times[s])) for s in steps])
    enriched, info = enrich(base, hf.displacement[steps], hf.fields["stress"][steps], hf.fields["state"][steps], a)
    n_old, n_new = base.model.n_modes, enriched.model.n_modes
    assert info["new_modes"] == n_new - n_old >= 1
    modes = enriched.full["modes"]
    np.testing.assert_array_equal(modes[:, :n_old], base.full["modes"])  # the old modes are kept as they are
    gram = modes.T @ (enriched.mass @ modes)
    # the new modes are orthonormal to every mode in the L2 (mass) product, to round-off (the
    # training modes of the method of snapshots are so to ~1e-6 only: small singular values)
    assert np.abs(gram - np.eye(n_new))[n_old:].max() < 1e-12
    # the lifted snapshots are in the span up to the POD truncation (tol_pod * s_0, L2 norm)
    u, _ = base.to_store(hf.displacement[steps], hf.fields["stress"][steps])
    lifted = u - a @ base.full["lifting"].T
    rest = lifted - (enriched.project(u, a)) @ modes.T
    s0 = base.report["singular_values"][0]
    assert np.sqrt(np.einsum("ij,ij->i", rest, (enriched.mass @ rest.T).T)).max() <= 2 * base.report["tol_pod"] * s0
    # the new strains are those of the new modes at the store's integration points
    points = base.full["ip_points"]
    np.testing.assert_allclose(enriched.full["strain"][:, -1], strain(base.quad, modes[:, -1])[points].ravel(),
                               rtol=0, atol=1e-12 * np.abs(enriched.full["strain"][:, -1]).max())
    assert info["ecm_residual"] <= base.report["tol_ecm"]
    assert info["ecm_seconds"] > 0  # the cubature's own time is reported (most of an enrichment's on large models)
    assert enriched.model.n_points == info["n_points"] > 0
    # the indicator stays at the trained model's points, with its training scale, through a
    # second enrichment too; it is the misfit of the enriched Gappy basis's rows there
    twice, _ = enrich(enriched, hf.displacement[[9]], hf.fields["stress"][[9]], hf.fields["state"][[9]],
                      np.array([scenario.values(tuple(names), float(problem.times[9]))]))
    for model in (enriched.model, twice.model):
        ids = model.metadata["reduce"]["indicator_points"]
        np.testing.assert_array_equal(ids, np.sort(base.model.point_ids))
        assert model.metadata["reduce"]["indicator_scale"] == base.report["indicator_scale"]
        positions = np.flatnonzero(np.isin(model.point_ids, ids))
        assert positions.size == base.model.n_points
        result = model.solve(scenario)
        rows = (positions[:, None] * 6 + np.arange(6)).ravel()
        expected = misfit_indicator(model.gappy["stress"][rows], result.stress[:, positions].reshape(result.times.size, -1),
                                    base.report["indicator_scale"]["stress"])
        np.testing.assert_allclose(result.indicators["stress"], expected, rtol=1e-12, atol=0)
    # it saves, verifies and reopens like any model; the old reduced points keep their law
    saved = enriched.save(root / "enriched.zarr")
    again = ReducedModel.open(saved)
    assert again.n_modes == n_new and len(again.metadata["enrichments"]) == 1
    assert open_full(saved).modes.shape == modes.shape


def test_enrichable_refuses_another_problem(plate):
    _, _, path = plate
    with pytest.raises(ValueError, match="mesh is not the model's"):
        enrichable(path, plate_problem(amplitude=0.016, n=5))
    with pytest.raises(ValueError, match="loads"):
        enrichable(path, plate_problem(amplitude=60.0, n=4, increments_per_cycle=20, loading="pressure"))


def test_adaptive_solve_repairs_an_extrapolation(plate):
    """0.016 mm, twice the largest training amplitude: the plain model is off by tens of percent;
    the adaptive one enriches where the indicator flags and ends within a few percent."""
    _, store_path, path = plate
    problem = _problem(0.016)
    model = ReducedModel.open(path)
    law = model.materials[0][0]
    plain = model.solve(Scenario.from_problem(problem))
    plain_errors = _errors(open_full(path), plain, law, store_path, "ref-0.016")
    adaptive = adaptive_solve(path, problem, AdaptiveOptions(online=OnlineOptions(indicator_threshold=0.01), window=2))
    assert adaptive.enrichments and adaptive.hf_increments == sum(e["hf_increments"] for e in adaptive.enrichments)
    assert adaptive.source.sum() >= adaptive.hf_increments
    saved = adaptive.save(path.parent / "adapted.zarr")
    errors = _errors(open_full(saved), adaptive.result, law, store_path, "ref-0.016")
    assert plain_errors[1] > 0.1, plain_errors
    assert errors[1] < plain_errors[1] / 5 and errors[0] < plain_errors[0] / 5, (errors, plain_errors)
    assert adaptive.result.indicator.max() < plain.indicator.max()
    _check_windows(adaptive.enrichments, window=2, max_window=8, n_steps=problem.times.size - 1)


def _check_windows(enrichments, window, max_window, n_steps):
    """The window doubles (up to max_window) when the reduced model flags again before it has
    stepped as far as the window just run, and is back to ``window`` otherwise; the last may stop
    at the history's end."""
    expected = window
    for before, now in zip([None, *enrichments], enrichments):
        if before is not None:
            lasted = now["step"] - (before["step"] + before["hf_increments"])
            expected = min(2 * before["hf_increments"], max_window) if lasted < before["hf_increments"] else window
        assert now["hf_increments"] == min(expected, n_steps - now["step"]), (enrichments, now)


def test_adaptive_window_grows_while_the_model_cannot_keep_up(plate):
    """Fixed windows of 1 increment: the reduced model flags again right after most restarts;
    growing windows (up to 4) need fewer enrichments."""
    _, _, path = plate
    problem = _problem(0.016)
    online = OnlineOptions(indicator_threshold=0.01)
    fixed = adaptive_solve(path, problem, AdaptiveOptions(online=online, window=1, max_window=1))
    grown = adaptive_solve(path, problem, AdaptiveOptions(online=online, window=1, max_window=4))
    assert {e["hf_increments"] for e in fixed.enrichments} == {1}
    _check_windows(grown.enrichments, window=1, max_window=4, n_steps=problem.times.size - 1)
    assert max(e["hf_increments"] for e in grown.enrichments) > 1
    assert len(grown.enrichments) < len(fixed.enrichments), ([e["step"] for e in fixed.enrichments],
                                                             [e["step"] for e in grown.enrichments])
    with pytest.raises(ValueError, match="max_window"):
        AdaptiveOptions(window=3, max_window=2)


def test_adaptive_solve_without_flag_is_the_plain_solve(plate):
    _, _, path = plate
    problem = _problem(0.006)
    plain = ReducedModel.open(path).solve(Scenario.from_problem(problem))
    assert not plain.flagged.any()
    adaptive = adaptive_solve(path, problem)
    assert adaptive.enrichments == [] and adaptive.hf_increments == 0
    np.testing.assert_array_equal(adaptive.result.coordinates, plain.coordinates)
    # by chunks of 7 increments (each restarted from the previous one's end): the same history to
    # the Newton tolerance (measured 1e-10 of the largest coordinate)
    chunked = adaptive_solve(path, problem, AdaptiveOptions(chunk=7))
    scale = np.abs(plain.coordinates).max()
    np.testing.assert_allclose(chunked.result.coordinates, plain.coordinates, rtol=0, atol=1e-7 * scale)
    assert chunked.result.iterations.size == plain.iterations.size
