"""Calibrate a reduced model's error indicator on held-out runs: indicator -> predicted error with a
prediction interval (:class:`romdask.online.indicator.Calibration`).

For each calibration run (a complete high-fidelity run of the store the model does not know), the
model predicts the run's loading; the true error of the prediction is measured against the run at
every output time (:func:`romdask.online.compare.time_errors`). The pairs (log10 running-maximum
indicator, log10 running-maximum error) of all runs are fitted with one Gaussian process per error
measure (:class:`~romdask.online.indicator.ErrorModel`: linear mean + squared-exponential kernel +
noise, hyperparameters by maximum marginal likelihood). The 40 steps of a run are not independent:
the GP's own noise gave intervals covering a scenario's error in only 73-88 % of held-out plate
scenarios. So the interval factor ``z`` is split-conformal over RUNS: leave one run out, condition
the GP on the others, take the standardized residual of the left-out run's final error; ``z`` is
the ``ceil((n + 1) coverage)``-th smallest of the n residuals (Vovk et al. 2005; Lei et al. 2018),
valid for runs exchangeable with the calibration runs.

With few runs the fit can say little. The GP's length scale fits the steps within each run (down
to 0.05-0.07 decades), so a few tenths of a decade away from the pairs its standard deviation is
the prior's (amplitude up to 1-2 decades); ``z`` is then the largest standardized residual of fits
on 2 or 3 runs, large when the indicator does not rank the runs' errors. The interval's ends were
16 decades from its median for 4 runs of a user's part, up to 63 on 3-run subsets of the tests'
plate (p). So a measure calibrated on fewer runs than a conformal interval needs whose left-out
runs' final errors were missed by more than a factor 10 (their ``|log10 (true / predicted)|`` at
the rank of ``z``: the leave-one-out ``spread``, :data:`~romdask.online.indicator.MAX_SPREAD`) is
reported not calibrated (with enough runs the conformal interval is valid however wide), and
:meth:`~romdask.online.indicator.Calibration.predict` gives no value where the interval's ends are
more than a factor 100 from its median (:data:`~romdask.online.indicator.MAX_HALF_WIDTH`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from romdask.threads import one_blas_thread
from romdask.online.indicator import (
    ERROR_MEASURES,
    INDICATOR_QUANTITIES,
    MAX_SPREAD,
    Calibration,
    ErrorModel,
    leave_one_out_spread,
    running_max,
)

__all__ = ["calibrate", "calibration_pairs", "conformal_factor", "fit_calibration", "fit_error_model", "min_runs",
           "write_calibration"]

logger = logging.getLogger(__name__)

#: bounds of log(amplitude), log(length), log(noise) (x and y in decades)
_BOUNDS = ((-7.0, 2.3), (math.log(0.05), math.log(10.0)), (-7.0, 1.1))
#: deterministic starting points of the likelihood maximization (log amplitude, length, noise)
_STARTS = ((math.log(0.5), 0.0, math.log(0.3)), (math.log(0.1), math.log(0.3), math.log(0.3)),
           (math.log(0.02), math.log(2.0), math.log(0.05)))


# ---------------------------------------------------------------------------------- the pairs
def _hf_fields(store_path: str, run: str, fields: Mapping[str, Any], law: Any) -> dict[str, np.ndarray]:
    """The run's displacement (n_t, n_dofs), stress (n_t, N, 6) and p (n_t, N) or None, store order."""
    from romdask.offline.replay import replay
    from romdask.store import open_snapshots

    ds = open_snapshots(store_path, runs=[run])
    out = {"displacement": ds["displacement"].values}
    stress = ds["stress"].values if "stress" in fields else None
    p = ds["state"].values[..., 0] if "state" in fields else ds["p"].values[..., 0] if "p" in fields else None
    if stress is None or (p is None and law.n_state):
        lazy = replay(store_path, law, runs=[run], write=False)[run]
        if stress is None:
            stress = lazy["stress"].compute()
        if p is None:
            p = lazy["state"][..., 0].compute()
    out["stress"], out["p"] = stress, p
    return out


def _indicator(result: Any) -> tuple[str, np.ndarray]:
    """The first indicator quantity (stress, then p) with finite values: the default of an
    uncalibrated model, whatever calibration the model holds now."""
    for quantity in INDICATOR_QUANTITIES:
        values = result.indicators.get(quantity)
        if values is not None and np.any(np.isfinite(values)):
            return quantity, np.asarray(values, np.float64)
    raise ValueError("the model has no error indicator (no Gappy basis with more rows than modes): re-reduce it "
                     "with a Gappy tolerance that keeps fewer modes than reduced-point values")


def calibration_pairs(model_path: str | os.PathLike, store_path: str | os.PathLike, runs: Sequence[str],
                      law: Any = None) -> dict[str, dict[str, Any]]:
    """Indicator and true error at every output time of the model's predictions of store runs.

    Parameters
    ----------
    model_path : a saved reduced model with its full bases (``romdask reduce``)
    store_path : a snapshot store on the model's mesh (e.g. the training store, or one made by
        ``romdask ingest``) holding the calibration runs with their load descriptions
    runs : names of complete runs of the store (a training run of the model is accepted with a
        warning: its errors are optimistic)
    law : the law replayed along the reduced strains (and along the run's strains when the store
        has no stress); default the model's ``materials[0][0]``

    Returns
    -------
    dict
        run -> ``{"times": (n_t,), "indicator": (n_t,), "quantity": str, "errors": {measure:
        (n_t,)}, "training": bool}``, errors as :func:`romdask.online.compare.time_errors`
        ("p" left out for a run without plastic strain).

    Raises
    ------
    ValueError
        A thermal model or run (not supported yet), an unknown or incomplete run, a run without a
        load description, no runs, or a run the reduced solver does not converge on.

    Notes
    -----
    Per run: one reduced solve, the law replayed along the reduced strains at every integration
    point (:func:`romdask.online.prediction_fields`) and the run's fields read (or its law
    replayed when the store has no stress). Memory: a few ``(n_t, N, 6)`` float64 arrays of
    one run at a time.
    """
    from romdask.online import ReducedModel, Scenario, open_full, prediction_fields
    from romdask.online.compare import time_errors
    from romdask.online.solver import OnlineConvergenceError, TrainingEnvelopeWarning
    from romdask.materials import von_mises
    from romdask.store import SnapshotStore

    names = [runs] if isinstance(runs, str) else list(runs)
    if not names:
        raise ValueError("calibration_pairs: give at least one run of the store")
    if len(set(names)) != len(names):
        raise ValueError(f"calibration_pairs: runs given twice: {sorted({r for r in names if names.count(r) > 1})}")
    model = ReducedModel.open(model_path)
    if model.thermal:
        raise ValueError(f"{model_path} is a thermal model: calibrating the error indicator of thermal models is not "
                         "supported yet")
    law = model.materials[0][0] if law is None else law
    try:
        store = SnapshotStore.open(store_path, mode="r")
    except ValueError as exc:
        raise ValueError(f"{store_path}: {exc}") from None
    attrs = store.runs()
    unknown = [r for r in names if r not in attrs]
    if unknown:
        raise ValueError(f"{store_path}: no run(s) {unknown}; the store has {sorted(attrs)}")
    incomplete = [r for r in names if attrs[r].get("status") != "complete"]
    if incomplete:
        raise ValueError(f"{store_path}: run(s) {incomplete} are incomplete; re-ingest them or leave them out")
    training = set((model.metadata.get("reduce") or {}).get("training_runs") or ())
    full = open_full(model_path)
    out = {}
    for run in names:
        run_attrs = attrs[run]
        loads = (run_attrs.get("metadata") or {}).get("loads")
        if not loads:
            raise ValueError(f"{store_path}: run {run!r} has no load description (metadata 'loads'): ingest it with "
                             "its deck (romdask ingest) so that the model can predict its loading")
        fields = run_attrs.get("fields") or {}
        if "temperature" in fields or loads.get("temperature") is not None:
            raise ValueError(f"{store_path}: run {run!r} is thermal: calibrating on thermal runs is not supported yet")
        if run in training:
            logger.warning("run %s is a training run of %s: its errors are optimistic for a calibration", run,
                           model_path)
        times = np.asarray(run_attrs["times"], np.float64)
        scenario = Scenario.from_description(times, loads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TrainingEnvelopeWarning)
            try:
                result = model.solve(scenario)
            except OnlineConvergenceError as exc:
                raise ValueError(f"run {run!r}: the reduced solve did not converge ({exc}); leave the run out of "
                                 "the calibration") from None
        for w in caught:
            logger.info("run %s: %s", run, w.message)
        quantity, indicator = _indicator(result)
        rom = prediction_fields(full, result, law, dual="replay")
        hf = _hf_fields(str(store_path), run, fields, law)
        predicted = {"displacement": np.asarray(rom["displacement"]), "von_mises": von_mises(np.asarray(rom["stress"]))}
        reference = {"displacement": hf["displacement"], "von_mises": von_mises(hf["stress"])}
        if rom.get("p") is not None and hf["p"] is not None:
            predicted["p"], reference["p"] = np.asarray(rom["p"]), hf["p"]
        try:
            errors = time_errors(predicted, reference)
        except ValueError as exc:
            raise ValueError(f"run {run!r}: {exc}") from None
        out[run] = {"times": times, "indicator": indicator, "quantity": quantity, "errors": errors,
                    "training": run in training}
        logger.info("run %s: indicator %.3g, errors %s", run, np.nanmax(indicator),
                    {k: float(v.max()) for k, v in errors.items()})
    return out


# ---------------------------------------------------------------------------------- the GP
def _kernel(a: np.ndarray, b: np.ndarray, amplitude: float, length: float) -> np.ndarray:
    return amplitude**2 * np.exp(-0.5 * ((a[:, None] - b[None, :]) / length) ** 2)


def _linear_mean(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    design = np.column_stack([np.ones_like(x), x])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(beta[0]), float(beta[1])


def _subsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` pairs: sorted by x (then y), an even stride (the ends kept)."""
    order = np.lexsort((y, x))
    if order.size > max_points:
        order = order[np.unique(np.linspace(0, order.size - 1, max_points).round().astype(np.int64))]
    return x[order], y[order]


def _negative_log_likelihood(theta: np.ndarray, x: np.ndarray, residual: np.ndarray) -> float:
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    amplitude, length, noise = np.exp(theta)
    K = _kernel(x, x, amplitude, length) + (noise**2 + 1e-10) * np.eye(x.size)
    try:
        factor = cho_factor(K, lower=True)
    except LinAlgError:
        return 1e300
    alpha = cho_solve(factor, residual)
    return float(0.5 * residual @ alpha + np.log(np.diag(factor[0])).sum())


@one_blas_thread
def fit_error_model(x: np.ndarray, y: np.ndarray, *, max_points: int = 300) -> ErrorModel:
    """A Gaussian process ``y = b_0 + b_1 x + f(x) + noise`` fitted to pairs (``z = 1``).

    Parameters
    ----------
    x, y : (n,) the pairs (log10 indicator, log10 error), finite, n >= 2
    max_points : the GP keeps at most this many pairs (sorted by x, an even stride)

    Returns
    -------
    ErrorModel
        The linear mean by least squares, then amplitude, length and noise maximizing the log
        marginal likelihood of the residuals (L-BFGS-B in log parameters, bounded: amplitude
        1e-3..10, length 0.05..10 decades, noise 1e-3..3 decades; the best of 3 fixed starts:
        deterministic), conditioned on the kept pairs; ``z = 1`` (see :func:`conformal_factor`).

    Raises
    ------
    ValueError
        Fewer than 2 pairs, or non-finite values.

    Notes
    -----
    Each likelihood evaluation is one Cholesky factorization of the kept pairs' kernel matrix:
    ``O(max_points^3)``, a few hundred evaluations in all (300 pairs: 0.1-0.3 s); one BLAS
    thread (faster at this size, and the same bits whatever the machine's thread count);
    memory ``8 max_points^2`` bytes.

    References
    ----------
    Rasmussen & Williams, Gaussian Processes for Machine Learning, MIT Press 2006, ch. 2 and 5.
    """
    from scipy.optimize import minimize

    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape or x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"fit_error_model needs >= 2 finite pairs of equal length; got {x.size} and {y.size} values")
    xs, ys = _subsample(x, y, int(max_points))
    mean = _linear_mean(xs, ys)
    residual = ys - (mean[0] + mean[1] * xs)
    best = None
    for start in _STARTS:
        found = minimize(_negative_log_likelihood, np.array(start), args=(xs, residual), method="L-BFGS-B",
                         bounds=_BOUNDS)
        if best is None or found.fun < best.fun:
            best = found
    amplitude, length, noise = (float(v) for v in np.exp(best.x))
    return ErrorModel(tuple(map(float, xs)), tuple(map(float, ys)), mean, amplitude, length, noise, 1.0)


def _condition(model: ErrorModel, x: np.ndarray, y: np.ndarray, max_points: int) -> ErrorModel:
    """The model's kernel hyperparameters conditioned on other pairs (mean refitted on them)."""
    xs, ys = _subsample(x, y, max_points)
    return ErrorModel(tuple(map(float, xs)), tuple(map(float, ys)), _linear_mean(xs, ys), model.amplitude,
                      model.length, model.noise, model.z)


def _rank(n: int, coverage: float) -> int:
    """``ceil((n + 1) coverage)`` (round-off below 1e-9 ignored: 10 x 0.9 is 9)."""
    return math.ceil((n + 1) * coverage - 1e-9)


def min_runs(coverage: float) -> int:
    """The fewest runs for a conformal interval of ``coverage`` (9 for 0.9, 19 for 0.95)."""
    n = 1
    while _rank(n, coverage) > n:
        n += 1
    return n


def conformal_factor(residuals: Sequence[float], coverage: float) -> tuple[float, bool]:
    """Split-conformal interval factor from n absolute standardized residuals.

    Returns
    -------
    (z, enough): the ``ceil((n + 1) coverage)``-th smallest residual and True, or the largest
    and False when ``n <`` :func:`min_runs` (too few runs for the coverage: the interval is
    then only as wide as the worst calibration run).

    Notes
    -----
    For a new run exchangeable with the n calibration runs, ``P(|r| <= z) >= coverage``.
    """
    r = np.sort(np.abs(np.asarray(residuals, np.float64)))
    if r.size == 0:
        raise ValueError("conformal_factor needs at least one residual")
    k = _rank(r.size, coverage)
    if k > r.size:
        return float(r[-1]), False
    return float(r[k - 1]), True


# ---------------------------------------------------------------------------------- the fit
def _run_pairs(indicator: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log10 running-max indicator, log10 running-max error) where both are > 0 and finite."""
    x = running_max(np.nan_to_num(np.asarray(indicator, np.float64), nan=0.0))
    y = running_max(np.nan_to_num(np.asarray(error, np.float64), nan=0.0))
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    return np.log10(x[keep]), np.log10(y[keep])


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    rho = spearmanr(a, b)[0]
    return float(rho) if np.isfinite(rho) else None


@one_blas_thread
def fit_calibration(pairs: Mapping[str, Mapping[str, Any]], *, coverage: float = 0.9,
                    max_points: int = 300) -> Calibration:
    """Fit the indicator -> error models of :func:`calibration_pairs` and their conformal intervals.

    Parameters
    ----------
    pairs : run -> ``{"indicator": (n_t,), "quantity": str, "errors": {measure: (n_t,)}}``
    coverage : nominal coverage of the prediction interval, in (0, 1)
    max_points : pairs kept by each stored GP (:func:`fit_error_model`)

    Returns
    -------
    Calibration
        Per measure present in >= 3 runs, an ErrorModel on all runs' pairs, its ``z`` the
        split-conformal factor of the leave-one-run-out standardized residuals of each run's
        final (running-maximum) error. ``report``: runs, training runs among them, pairs per
        measure, the residuals, ``z``, the leave-one-out coverage with ``z``, the misses
        ``log10 (true / predicted median)`` and their ``spread`` (the miss at the rank of ``z``;
        above ``MAX_SPREAD`` = 1 decade with too few runs for a conformal interval the measure
        is not calibrated and predicts NaN:
        ``Calibration.not_calibrated``), the Spearman rank
        correlation of the runs' final indicators and errors, one row per run (indicator, true
        errors, the leave-one-out predicted median / low / high) and notes. The leave-one-out GP
        keeps the hyperparameters of the full fit; its linear mean is refitted without the run.

    Raises
    ------
    ValueError
        Fewer than 3 runs, a coverage outside (0, 1), runs with different indicator quantities,
        or no measure with pairs in 3 runs.

    Notes
    -----
    One hyperparameter fit per measure (:func:`fit_error_model`) and one GP conditioning per run
    and measure (``O(max_points^3)``); seconds for hundreds of runs.

    References
    ----------
    Vovk, Gammerman & Shafer, Algorithmic Learning in a Random World, Springer 2005.
    Lei, G'Sell, Rinaldo, Tibshirani & Wasserman, Distribution-free predictive inference for
    regression, JASA 113 (2018) 1094-1111.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1); got {coverage}")
    runs = sorted(pairs)
    if len(runs) < 3:
        raise ValueError(f"a calibration needs at least 3 held-out runs (leave-one-run-out); got {len(runs)}: {runs}")
    quantities = {pairs[r]["quantity"] for r in runs}
    if len(quantities) != 1:
        raise ValueError(f"the runs' indicators are of different quantities {sorted(quantities)}; calibrate one")
    quantity = quantities.pop()
    final_indicator = {r: float(np.nanmax(np.asarray(pairs[r]["indicator"], np.float64), initial=0.0)) for r in runs}
    errors: dict[str, ErrorModel] = {}
    notes: list[str] = []
    few: dict[int, list[str]] = {}
    loo: dict[str, Any] = {}
    counts: dict[str, int] = {}
    spearman: dict[str, float | None] = {}
    rows = {r: {"run": r, "indicator": final_indicator[r], "error": {}, "predicted": {}} for r in runs}
    for measure in ERROR_MEASURES:
        per_run = {r: _run_pairs(pairs[r]["indicator"], pairs[r]["errors"][measure])
                   for r in runs if measure in pairs[r]["errors"]}
        per_run = {r: xy for r, xy in per_run.items() if xy[0].size}
        if len(per_run) < 3:
            if per_run:
                notes.append(f"{measure}: pairs in only {len(per_run)} run(s); not calibrated")
            continue
        names = sorted(per_run)
        x = np.concatenate([per_run[r][0] for r in names])
        y = np.concatenate([per_run[r][1] for r in names])
        model = fit_error_model(x, y, max_points=max_points)
        residuals, predicted = [], {}
        for r in names:
            others = [o for o in names if o != r]
            held = _condition(model, np.concatenate([per_run[o][0] for o in others]),
                              np.concatenate([per_run[o][1] for o in others]), max_points)
            mu, sd = held.predict(np.array([10.0 ** per_run[r][0][-1]]))
            residuals.append(float((per_run[r][1][-1] - mu[0]) / sd[0]))
            predicted[r] = (float(mu[0]), float(sd[0]))
        z, enough = conformal_factor(residuals, coverage)
        if not enough:
            few.setdefault(len(names), []).append(measure)
        errors[measure] = ErrorModel(model.x, model.y, model.mean, model.amplitude, model.length, model.noise, z)
        counts[measure] = int(x.size)
        covered = [abs(v) <= z for v in residuals]
        misses = [float(per_run[r][1][-1] - predicted[r][0]) for r in names]
        spread = leave_one_out_spread(misses, coverage)
        if spread > MAX_SPREAD and not enough:
            logger.warning("%s: not calibrated: the left-out runs' final errors were missed by up to %.2g decades "
                           "(leave-one-out spread; at most %g)", measure, spread, MAX_SPREAD)
        loo[measure] = {"runs": names, "residuals": residuals, "z": z, "coverage": float(np.mean(covered)),
                        "conformal": enough, "misses": misses, "spread": spread}
        spearman[measure] = _spearman([final_indicator[r] for r in names],
                                      [float(10.0 ** per_run[r][1][-1]) for r in names])
        for r in names:
            mu, sd = predicted[r]
            rows[r]["error"][measure] = float(10.0 ** per_run[r][1][-1])
            rows[r]["predicted"][measure] = [float(10.0**mu), float(10.0 ** (mu - z * sd)), float(10.0 ** (mu + z * sd))]
    for n, measures in few.items():
        message = (f"{n} runs are too few for a conformal {100 * coverage:g} % interval (needs >= "
                   f"{min_runs(coverage)}): z = the largest leave-one-out residual ({', '.join(measures)})")
        logger.warning(message)
        notes.append(message)
    if not errors:
        raise ValueError(f"no error measure has pairs (indicator > 0, error > 0) in >= 3 of the runs {runs}")
    report = {"runs": runs, "training_runs": [r for r in runs if pairs[r].get("training")],
              "pairs": counts, "points": {m: len(e.x) for m, e in errors.items()},
              "hyperparameters": {m: {"mean": list(e.mean), "amplitude": e.amplitude, "length": e.length,
                                      "noise": e.noise} for m, e in errors.items()},
              "leave_one_out": loo, "spearman": spearman, "rows": [rows[r] for r in runs], "notes": notes}
    calibration = Calibration(quantity, errors, float(coverage), report)
    return Calibration.from_json(json.loads(json.dumps(calibration.to_json())))  # what the model stores


def write_calibration(model_path: str | os.PathLike, calibration: Calibration) -> Path:
    """Store ``calibration`` in a saved model's ``metadata["calibration"]`` (replacing any).

    The model's arrays, full bases and mesh are kept byte for byte; its checksum is updated; the
    replacement is atomic (:func:`romdask.online.integrity.replace_attributes`).

    Notes
    -----
    Copies the model folder once (disk: twice its size while it runs).
    """
    from romdask.online.integrity import replace_attributes
    from romdask.online.model import FORMAT, open_model_group

    path = Path(model_path)
    root = open_model_group(path)
    metadata = dict(root.attrs.get("metadata") or {})
    metadata["calibration"] = calibration.to_json()
    return replace_attributes(path, FORMAT, {"metadata": metadata})


def calibrate(model_path: str | os.PathLike, store_path: str | os.PathLike, runs: Sequence[str], *,
              law: Any = None, coverage: float = 0.9, write: bool = True) -> Calibration:
    """Calibrate a saved model's error indicator on held-out store runs (and store it).

    Parameters
    ----------
    model_path, store_path, runs, law : as :func:`calibration_pairs` (>= 3 runs; >= 9 for a
        conformal 90 % interval, fewer give the largest leave-one-out residual)
    coverage : nominal coverage of the prediction interval
    write : store the calibration in the model (:func:`write_calibration`): its predictions then
        carry ``predicted_error`` (:meth:`~romdask.online.indicator.Calibration.predict`)

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        See :func:`calibration_pairs` and :func:`fit_calibration`.

    Notes
    -----
    Dominated by :func:`calibration_pairs` (per run: a reduced solve and a law replay at every
    integration point).
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1); got {coverage}")
    names = [runs] if isinstance(runs, str) else list(runs)
    if len(names) < 3:
        raise ValueError(f"a calibration needs at least 3 held-out runs (leave-one-run-out); got {len(names)}: {names}")
    calibration = fit_calibration(calibration_pairs(model_path, store_path, names, law), coverage=coverage)
    if write:
        write_calibration(model_path, calibration)
        logger.info("wrote the calibration into %s", model_path)
    return calibration
