"""Greedy training over a parameter box: add the high-fidelity run of the candidate scenario whose
calibrated error indicator is worst, until every candidate's predicted error is under a tolerance
(issue 15, item 4).

Every run the greedy loop adds is predicted by the current model BEFORE it joins the training: its
(indicator, true error) pairs at every output time are held-out calibration data for free
(:func:`romdask.offline.calibration.calibration_pairs`). From 3 such runs on, the indicator of every
candidate is turned into a predicted error with an interval (:func:`fit_calibration`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from romdask.threads import blas_single_thread, one_blas_thread
from romdask.offline.reduce import ReduceOptions
from romdask.online.indicator import ERROR_MEASURES, INDICATOR_QUANTITIES, Calibration

__all__ = ["GreedyResult", "greedy_train", "predicted_errors", "run_name"]

logger = logging.getLogger(__name__)

#: the interval ends the stopping rule may use
BOUNDS = ("upper", "median")


@dataclass(frozen=True)
class GreedyResult:
    """What :func:`greedy_train` did.

    Attributes
    ----------
    model_path, store_path : the final model (calibrated when >= 3 runs were added) and the store
    runs : the training runs of the final model, in the order they were added
    params : their parameter dicts
    history : one dict per model built: ``iteration``, ``training`` (run names), ``n_modes``,
        ``n_points``, ``max_indicator`` (over the candidates), ``max_predicted`` (the largest
        predicted ``measure`` error's bound used, None before a calibration), then for the run
        added after it (None on the last model): ``added`` (run), ``params``, ``indicator`` (its
        largest), ``predicted`` ([median, low, high] of its ``measure`` error, None before a
        calibration), ``true_error`` (measure -> its largest true error), and ``seconds``
    converged : every candidate's predicted error bound is <= the tolerance
    stop_reason : why the loop stopped, in words
    calibration : the final calibration (written into the model), or None (fewer than 3 added runs)
    indicators : (n_candidates,) each candidate's largest indicator with the final model
    predicted : (n_candidates, 3) their predicted ``measure`` errors (median, low, high), NaN
        without a calibration
    """

    model_path: Path
    store_path: Path
    runs: tuple[str, ...]
    params: tuple[dict, ...]
    history: tuple[dict, ...]
    converged: bool
    stop_reason: str
    calibration: Calibration | None
    indicators: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)


def run_name(params: Mapping[str, Any]) -> str:
    """The store run name of a scenario: ``"amplitude=0.004,r_ratio=-1"`` (keys sorted)."""
    return ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in sorted(params.items()))


def _check(candidates: Sequence[Mapping[str, Any]], initial: Sequence[Mapping[str, Any]], tolerance: float,
           max_runs: int, measure: str, coverage: float, bound: str) -> tuple[list[dict], list[dict]]:
    candidates = [dict(c) for c in candidates]
    initial = [dict(c) for c in initial]
    if not candidates:
        raise ValueError("greedy_train needs at least one candidate scenario (a list of parameter dicts, e.g. a grid "
                         "of the box: [{'amplitude': 0.004}, {'amplitude': 0.01}, ...])")
    if not initial:
        raise ValueError("greedy_train needs 1-2 initial scenarios (initial=[...], e.g. the box's corners)")
    keys = set(candidates[0])
    for c in candidates + initial:
        if set(c) != keys:
            raise ValueError(f"every candidate and initial scenario needs the parameters {sorted(keys)}; got "
                             f"{sorted(c)}: give each the same names")
    candidates = list({run_name(c): c for c in candidates}.values())
    initial = list({run_name(c): c for c in initial}.values())
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a positive error fraction (0.01 = 1 %); got {tolerance}")
    if max_runs < len(initial):
        raise ValueError(f"max_runs ({max_runs}) is below the {len(initial)} initial run(s): raise it")
    if measure not in ERROR_MEASURES:
        raise ValueError(f"measure must be one of {ERROR_MEASURES}; got {measure!r}")
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1); got {coverage}")
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}; got {bound!r}")
    return candidates, initial


def _hf_task(problem: Any, store_path: str, name: str, params: dict) -> str:
    """One built-in high-fidelity run into its own run group of the store."""
    from romdask.demo import FIELDS
    from romdask.hifi import solve
    from romdask.problem.patterns import run_metadata
    from romdask.store import SnapshotStore

    store = SnapshotStore.open(store_path)
    writer = store.writer(name, mesh=problem.mesh, times=problem.times, fields=FIELDS, solver="romdask",
                          metadata={**run_metadata(problem), "greedy": {"params": params}}, allow_nan=("state",),
                          overwrite=True)
    solve(problem, writer=writer, fields=FIELDS)
    return name


def _hf_runs(make_problem: Callable[[dict], Any], params: Sequence[dict], store_path: Path) -> list[str]:
    """The HF runs of ``params`` not complete in the store yet: Dask tasks on the active scheduler
    when more than one (each writes its own run group: safe, as ``run_many``)."""
    import dask

    from romdask.cluster import active_client
    from romdask.store import SnapshotStore, create_store

    problems = [make_problem(p) for p in params]
    names = [run_name(p) for p in params]
    if not (store_path.exists() and any(store_path.iterdir())):
        create_store(store_path, problems[0].mesh)
    store = SnapshotStore.open(store_path)
    attrs = store.runs()
    todo = []
    for name, problem, p in zip(names, problems, params):
        store.check_mesh(problem.mesh, f"make_problem({p})")
        if attrs.get(name, {}).get("status") == "complete":
            if not np.array_equal(np.asarray(attrs[name].get("times"), np.float64), problem.times):
                raise ValueError(f"{store_path}: run {name!r} has other output times than make_problem({p}) (another "
                                 "number of cycles or increments): use another store or remove the run")
            logger.info("run %s: complete in %s, reused", name, store_path)
        else:
            todo.append((problem, name, p))
    if len(todo) == 1:
        _hf_task(todo[0][0], str(store_path), todo[0][1], todo[0][2])
    elif todo:
        # Dask tasks: one BLAS and one numba thread each, the BLAS count held from this thread
        tasks = [dask.delayed(one_blas_thread(_hf_task), pure=False)(
                     problem, str(store_path), name, p, dask_key_name=f"greedy-hf-{dask.base.tokenize(name)}")
                 for problem, name, p in todo]
        client = active_client()
        with blas_single_thread():
            if client is not None:
                client.gather(client.compute(tasks))
            else:
                dask.compute(*tasks)
    return names


def _largest_indicator(result: Any, quantity: str | None) -> float:
    """The largest indicator of a prediction (of ``quantity``, else the first with values)."""
    for q in (quantity,) if quantity else INDICATOR_QUANTITIES:
        values = result.indicators.get(q)
        if values is not None and np.any(np.isfinite(values)):
            return float(np.nanmax(values))
    return math.inf


def _assess(model_path: Path, make_problem: Callable[[dict], Any], candidates: Sequence[dict],
            calibration: Calibration | None, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's largest indicator and predicted ``measure`` error (median, low, high)."""
    from romdask.online import ReducedModel, Scenario
    from romdask.online.solver import OnlineConvergenceError, TrainingEnvelopeWarning

    model = ReducedModel.open(model_path)
    quantity = calibration.quantity if calibration is not None else None
    indicators = np.empty(len(candidates))
    for i, params in enumerate(candidates):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainingEnvelopeWarning)
            try:
                result = model.solve(Scenario.from_problem(make_problem(params)))
            except OnlineConvergenceError as exc:
                logger.info("candidate %s: the reduced solve did not converge (%s): worst", run_name(params), exc)
                indicators[i] = math.inf
                continue
        indicators[i] = _largest_indicator(result, quantity)
    predicted = np.full((len(candidates), 3), np.nan)
    if calibration is not None and measure in calibration.errors:
        predicted = predicted_errors(calibration, measure, indicators)
    return indicators, predicted


def predicted_errors(calibration: Calibration, measure: str, indicators: np.ndarray) -> np.ndarray:
    """(n, 3) predicted ``measure`` errors (median, low, high) of largest ``indicators``, made
    monotone: each column is the smallest of its values at any indicator at least as large (the
    candidate's and the calibration pairs'); ``inf`` for a non-finite indicator.

    The GP of the calibration reverts to its prior away from its pairs: below the smallest
    calibration indicator its interval WIDENS (a candidate with a 5x smaller indicator than every
    held-out run was given a 6x wider upper end). The indicator ranks the errors (Spearman
    0.97-0.99 on the plate, docs/adaptive.md), so an error bound at a larger indicator bounds the
    error at a smaller one; the envelope keeps the GP's value wherever it is the smaller.

    Notes
    -----
    One GP prediction of ``n + pairs`` values (one Cholesky factorization of the pairs).
    """
    model = calibration.errors[measure]
    values = np.asarray(indicators, np.float64)
    finite = np.isfinite(values)
    points = np.concatenate([values[finite], 10.0 ** np.asarray(model.x)])
    mu, sd = model.predict(points)
    band = 10.0 ** np.stack([mu, mu - model.z * sd, mu + model.z * sd], axis=-1)
    order = np.argsort(-points, kind="stable")  # decreasing indicator: a running minimum
    band[order] = np.minimum.accumulate(band[order], axis=0)
    out = np.full((values.size, 3), math.inf)
    out[finite] = band[:finite.sum()]
    return out


def greedy_train(make_problem: Callable[[dict], Any], candidates: Sequence[Mapping[str, Any]],
                 store_path: str | os.PathLike, model_path: str | os.PathLike, *,
                 initial: Sequence[Mapping[str, Any]], tolerance: float = 0.01, max_runs: int = 8,
                 options: ReduceOptions | None = None, measure: str = "von_mises", coverage: float = 0.9,
                 bound: str = "upper") -> GreedyResult:
    """Greedy training: add the HF run of the worst-predicted candidate until all are within tolerance.

    Parameters
    ----------
    make_problem : ``make_problem(params) -> Problem`` (one mesh for all), e.g.
        ``lambda p: plate_problem(n=4, **p)``
    candidates : the scenarios of the parameter box (parameter dicts, e.g. a grid)
    store_path : snapshot store of the HF runs (created when absent; complete runs of the same
        name, :func:`run_name`, are reused)
    model_path : where the model is saved (overwritten at every iteration; the final one keeps
        the calibration)
    initial : the 1-2 scenarios trained first (e.g. the box's corners along one parameter);
        their HF runs are Dask tasks on the active scheduler when there are two
    tolerance : the error (fraction: 0.01 = 1 %) every candidate must be predicted under
    max_runs : the most HF training runs (initial ones included)
    options : :func:`romdask.offline.reduce` options of every model (default ``ReduceOptions()``)
    measure : the error measure of the stopping rule ("von_mises", "displacement", "p")
    coverage : nominal coverage of the calibration's prediction interval
    bound : "upper" (default): stop when the upper end of every candidate's interval is <=
        tolerance: the loop is meant to certify the whole box, and the median alone is exceeded
        by about half the scenarios; "median": a cheaper, optimistic rule

    Returns
    -------
    GreedyResult

    Raises
    ------
    ValueError
        No candidates or initial scenarios, scenarios with different parameter names, parameters
        make_problem does not take, a bad tolerance, max_runs, measure, coverage or bound, a
        problem on another mesh than the store's.

    Notes
    -----
    Per iteration: one :func:`~romdask.offline.reduce` of all training runs, one reduced solve
    per candidate (cheap), one HF run and one :func:`calibration_pairs` of it (a reduced solve and
    a law replay at every integration point), and, from 3 added runs on, one
    :func:`fit_calibration` (seconds). The calibration pairs come from the successive models,
    each smaller than the final one: the indicator-to-error ratio falls as the training grows
    (docs/adaptive.md), so the final calibration is on the pessimistic side.

    References
    ----------
    Veroy, Prud'homme, Rovas & Patera, A posteriori error bounds for reduced-basis approximation
    of parametrized noncoercive and nonlinear elliptic PDEs, AIAA 2003-3847 (the greedy sampling).
    Casenave & Akkari, An error indicator-based adaptive reduced order model for nonlinear
    structural mechanics, MCA 24(2), 2019.
    """
    from romdask.offline import reduce
    from romdask.offline.calibration import (
        calibration_pairs,
        fit_calibration,
        write_calibration,
    )

    candidates, initial = _check(candidates, initial, tolerance, max_runs, measure, coverage, bound)
    try:
        make_problem(dict(candidates[0]))
    except TypeError as exc:  # e.g. an unknown keyword of plate_problem
        raise ValueError(f"make_problem({candidates[0]}) failed ({exc}): the candidates' parameter names must be "
                         "arguments of make_problem") from None
    store_path, model_path = Path(store_path), Path(model_path)
    column = 0 if bound == "median" else 2
    training = _hf_runs(make_problem, initial, store_path)
    params = list(initial)
    pairs: dict[str, dict] = {}
    calibration: Calibration | None = None
    history: list[dict] = []
    while True:
        start = time.perf_counter()
        reduction = reduce(store_path, runs=training, options=options)
        reduction.save(model_path, overwrite=True)
        with blas_single_thread():  # small products: one thread was 7x faster on a loaded 2-core machine
            indicators, predicted = _assess(model_path, make_problem, candidates, calibration, measure)
        entry: dict[str, Any] = {"iteration": len(history), "training": list(training),
                                 "n_modes": int(reduction.model.n_modes), "n_points": int(reduction.model.n_points),
                                 "max_indicator": float(np.max(indicators)), "max_predicted": None, "added": None,
                                 "params": None, "indicator": None, "predicted": None, "true_error": None}
        calibrated = calibration is not None and measure in calibration.errors
        if calibrated:
            entry["max_predicted"] = float(np.max(predicted[:, column]))
        history.append(entry)
        untrained = [i for i, c in enumerate(candidates) if run_name(c) not in training]
        if calibrated and entry["max_predicted"] <= tolerance:
            converged, reason = True, (f"every candidate's predicted {measure} error ({bound}) is <= {tolerance:g}")
        elif len(training) >= max_runs:
            converged, reason = False, f"max_runs ({max_runs}) reached before the tolerance"
        elif not untrained:
            converged, reason = False, "every candidate is a training run"
        else:
            converged, reason = None, ""
        if converged is not None:
            entry["seconds"] = time.perf_counter() - start
            break
        score = predicted[:, column] if calibrated else indicators
        worst = max(untrained, key=lambda i: (score[i], indicators[i]))
        (name,) = _hf_runs(make_problem, [candidates[worst]], store_path)
        with blas_single_thread():  # before it joins the training: a held-out pair
            held_out = calibration_pairs(model_path, store_path, [name])[name]
        pairs[name] = held_out
        entry.update(added=name, params=dict(candidates[worst]), indicator=float(indicators[worst]),
                     predicted=None if not calibrated else [float(v) for v in predicted[worst]],
                     true_error={m: float(np.nanmax(v)) for m, v in held_out["errors"].items()})
        if len(pairs) >= 3:
            calibration = fit_calibration(pairs, coverage=coverage)
        training.append(name)
        params.append(dict(candidates[worst]))
        entry["seconds"] = time.perf_counter() - start
        logger.info("iteration %d: added %s (indicator %.3g, predicted %s, true %s error %.3g)", entry["iteration"],
                    name, entry["indicator"], entry["predicted"], measure, entry["true_error"].get(measure, np.nan))
    if calibration is not None:
        write_calibration(model_path, calibration)
    logger.info("greedy training stopped: %s (%d runs)", reason, len(training))
    return GreedyResult(model_path, store_path, tuple(training), tuple(params), tuple(history), converged, reason,
                        calibration, indicators, predicted)
