"""The adaptive reduced computation: reduced Newton steps, high-fidelity increments where the
error indicator says the reduced model is wrong, enrichment, and on again.

:func:`adaptive_solve` steps a scenario with the reduced solver. At the first output time the
reduced result flags (:class:`~romdask.online.OnlineOptions`: the calibrated predicted error
above ``error_tolerance``, or without calibration the indicator above ``indicator_threshold``),
it goes back to the last accepted time, rebuilds the full state there (displacement from the
modes, internal variables by the law replayed at every integration point along the accepted
reduced strain history), runs the built-in high-fidelity solver for ``window`` increments from
it (:func:`romdask.hifi.solve` with ``initial``), enriches the model with those snapshots
(:func:`~romdask.adaptive.enrich`), projects the high-fidelity state on the enriched model and
continues with the reduced solver from there.

References
----------
F. Casenave, N. Akkari, "An error indicator-based adaptive reduced order model for nonlinear
structural mechanics -- application to high-pressure turbine blades", Math. Comput. Appl. 24(2)
(2019).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time as _time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from romdask.hifi import HFState, SolverOptions
from romdask.hifi import solve as hf_solve
from romdask.materials import Material, von_mises
from romdask.online import OnlineOptions, OnlineResult, OnlineState, ReducedModel, Scenario
from romdask.online.envelope import envelope_warnings
from romdask.online.solver import (TrainingEnvelopeWarning, _chosen_indicator, _gappy_coefficients, _indicators,
                                   error_flags, solve)
from romdask.problem import Problem

from .enrichment import Enrichable, enrich, enrichable

__all__ = ["AdaptiveOptions", "AdaptiveResult", "adaptive_solve"]

logger = logging.getLogger(__name__)

#: the indicator threshold of an adaptive computation with a model without calibration: on the
#: plate with a hole it took an extrapolation to twice the trained amplitude from 32 % to 0.7 %
#: von Mises error (docs/adaptive.md); the prediction-only default (0.01) let 1-2 % through
THRESHOLD = 0.005
#: the predicted von Mises error that triggers an enrichment with a calibrated model: the original
#: model's calibration under-predicts the enriched model's errors (plate n = 4, the indicator then
#: at every point of the enriched model: tolerance 1 % ended at 2.0 % true, 0.5 % at 0.79 %; n = 8
#: with the indicator at the trained points: 1 % ended at 1.10 %)
TOLERANCE = 0.005


@dataclass(frozen=True)
class AdaptiveOptions:
    """Options of :func:`adaptive_solve`.

    Parameters
    ----------
    online : the reduced solver's options; their ``error_tolerance`` / ``error_measure``
        (calibrated model) or ``indicator_threshold`` (not calibrated) decide where to enrich;
        defaults :data:`TOLERANCE` and :data:`THRESHOLD`
    window : high-fidelity increments of the first enrichment (>= 1; default 3: fewer, larger
        enrichments cost less than one per flagged increment for the same accuracy on the plate)
    max_window : the window doubles, up to this (default 4 x ``window``), each time the reduced
        model flags again before it has stepped as far as the window just run (it is still
        missing the history ahead: on the plate, 6 enrichments of 3 increments became 3-4 with
        18-22 high-fidelity increments, the ECM re-runs being the dearest part); it is back to
        ``window`` after an enrichment that lasted. ``max_window=window`` keeps it fixed
    max_enrichments : at most this many enrichments; beyond, the reduced result is kept as it is
        (flagged) and the result says so
    hf : the built-in high-fidelity solver's options
    solver : the high-fidelity solver of the enrichments: "builtin" (default: ``window``
        increments from the reduced state rebuilt at the last accepted time) or "calculix" (ccx
        on the case from t = 0 to the window's end, the law replayed along its displacements:
        no restart from a reduced state; each enrichment costs a run up to its time)
    workdir : "calculix": the folder of its decks and results (default: a temporary folder)
    chunk : reduced increments solved at a time (>= 1): the reduced solver goes on from each
        chunk's end (a restart) until a chunk holds a flagged time, so that an enrichment does not
        pay for solving the rest of a long history
    tol_pod, tol_ecm, gappy_tol : the enrichment's truncations (:func:`~romdask.adaptive.enrich`;
        None: the model's own)
    """

    online: OnlineOptions = OnlineOptions(indicator_threshold=THRESHOLD, error_tolerance=TOLERANCE)
    window: int = 3
    max_window: int | None = None
    max_enrichments: int = 20
    hf: SolverOptions = SolverOptions()
    tol_pod: float | None = None
    tol_ecm: float | None = None
    gappy_tol: float | None = None
    solver: str = "builtin"
    workdir: str | None = None
    chunk: int = 40

    def __post_init__(self) -> None:
        if self.solver not in ("builtin", "calculix"):
            raise ValueError(f"solver must be 'builtin' or 'calculix'; got {self.solver!r}")
        if self.max_window is not None and self.max_window < self.window:
            raise ValueError(f"max_window ({self.max_window}) must be >= window ({self.window})")
        if self.window < 1 or self.max_enrichments < 0 or self.chunk < 1:
            raise ValueError(f"need window >= 1, max_enrichments >= 0 and chunk >= 1; got {self.window}, "
                             f"{self.max_enrichments}, {self.chunk}")


@dataclass
class AdaptiveResult:
    """Outcome of :func:`adaptive_solve`.

    Attributes
    ----------
    result : the whole history as an OnlineResult of the FINAL model (its reduced coordinates:
        the reduced steps' ones, padded with zeros for the modes added later, and the
        projections of the high-fidelity steps; stress and state at its reduced points by the
        law along that history; indicator and predicted error of the final model)
    enriched : the final model with its full bases (``enriched.save(path)``)
    enrichments : one dict per enrichment: output ``step`` and ``time`` it restarted from, the
        ``flagged_step`` that triggered it, ``indicator`` and ``predicted`` error there,
        ``hf_increments``, ``new_modes``, ``n_modes``, ``n_points``, ``ecm_residual``, seconds
    source : (n_t,) int8, 1 where the output comes from the high-fidelity solver
    hf_increments : high-fidelity increments run in all
    timings : seconds in "online", "hf", "enrich", "replay", "total"
    stopped : why enrichment stopped early ("" when the whole history was accepted)
    """

    result: OnlineResult
    enriched: Enrichable
    enrichments: list[dict[str, Any]]
    source: np.ndarray
    hf_increments: int
    timings: dict[str, float] = field(default_factory=dict)
    stopped: str = ""

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """The enriched model with its full bases and mesh, reusable as any model."""
        return self.enriched.save(path, overwrite=overwrite)


class _Replay:
    """The law integrated along a strain history at a set of points (full or reduced)."""

    def __init__(self, law: Material, strain_modes: np.ndarray, strain_lifting: np.ndarray | None, state: np.ndarray):
        self.law, self.E, self.L = law, strain_modes, strain_lifting
        n = state.shape[0]
        self.state = np.array(state[:, : law.n_state], dtype=np.float64)
        self.buffers = (np.empty((n, 6)), np.empty((n, 6, 6)), np.empty((n, law.n_state)))
        self.temperature = np.zeros((n, 3))
        self.stress = np.zeros((n, 6))

    def step(self, coordinates: np.ndarray, lifting: np.ndarray, dt: float, t: float) -> None:
        """One increment to the strain of ``coordinates`` (the first modes) and ``lifting``."""
        eps = self.E[..., : coordinates.size] @ coordinates
        if self.L is not None and lifting.size:
            eps = eps + self.L @ lifting
        self.integrate(eps.reshape(-1, 6), dt, t)

    def integrate(self, strain: np.ndarray, dt: float, t: float) -> None:
        """One increment to ``strain`` (n, 6): stress and committed state updated."""
        stress, _, new_state, failed = self.law.integrate(strain, self.state, dt, t, temperature=self.temperature,
                                                           out=self.buffers)
        if failed:
            raise RuntimeError(f"the law failed at {failed} point(s) at t={t:g} replaying a strain history")
        np.copyto(self.state, new_state)
        np.copyto(self.stress, stress)


@dataclass
class _Segment:
    """The reduced solve from output ``k`` up to the first flagged time (or the end), by chunks:
    rows of output times from ``k`` on."""

    coordinates: np.ndarray
    iterations: np.ndarray
    subincrements: np.ndarray
    cuts: np.ndarray
    residuals: list[list[float]]
    indicator: np.ndarray
    predicted: dict[str, np.ndarray]
    flagged: np.ndarray
    warnings: list[str]


def _solve_segment(model: ReducedModel, scenario: Scenario, k: int, initial: OnlineState | None,
                   options: AdaptiveOptions, stop_at_flag: bool) -> _Segment:
    """Solve from output ``k`` by chunks of ``options.chunk`` increments, each restarted from the
    previous one's last state, until a chunk holds a flagged time (``stop_at_flag``) or the end:
    the reduced work after the first flag is at most one chunk, not the rest of the history. The
    flags are those of the whole segment's indicator (a calibrated model: its running maximum)."""
    times = scenario.times
    rows: dict[str, list] = {"coordinates": [], "iterations": [], "subincrements": [], "cuts": [], "residuals": [],
                             "indicator": []}
    quantity, messages, start = "", [], k
    while True:
        stop = min(start + options.chunk, times.size - 1)
        chunk = Scenario(times[start: stop + 1], scenario.coefficients, scenario.homogeneous, None)
        if start == 0:  # the envelope of the whole scenario, once (a chunk's would be partial)
            messages = envelope_warnings(model, scenario)
            for message in messages:
                warnings.warn(message, TrainingEnvelopeWarning, stacklevel=4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainingEnvelopeWarning)
            result = solve(model, chunk, options.online, initial=initial)
        first = 0 if start == k else 1  # a restarted chunk's row 0 is the previous chunk's last
        rows["coordinates"] += list(result.coordinates[first:])
        rows["indicator"] += list(result.indicator[first:])
        for name, value in (("iterations", result.iterations), ("subincrements", result.subincrements),
                            ("cuts", result.cuts)):
            rows[name] += list(value)
        rows["residuals"] += result.residuals
        quantity = result.indicator_quantity
        indicator = np.array(rows["indicator"])
        flagged, predicted = error_flags(model, quantity, indicator, options.online)
        if stop == times.size - 1 or (stop_at_flag and flagged[1:].any()):
            return _Segment(np.array(rows["coordinates"]), np.array(rows["iterations"], np.int64),
                            np.array(rows["subincrements"], np.int64), np.array(rows["cuts"], np.int64),
                            rows["residuals"], indicator, predicted, flagged, messages)
        initial, start = result.state_at(-1), stop


def _rebuild(base: Enrichable, law: Material, result: OnlineResult, accepted: int, k: int, times: np.ndarray,
             lifting: np.ndarray, full_state: np.ndarray) -> np.ndarray:
    """The internal variables at every integration point (store ip positions) at the last
    accepted output time: the law replayed along the segment's reduced strain history from
    ``full_state`` (the state at output ``k``, the segment's start)."""
    replay = _Replay(law, base.full["strain"], base.full.get("lifting_strain"), full_state)
    for i in range(0 if k == 0 else 1, accepted):
        dt = float(times[k + i] - times[k + i - 1]) if k + i > 0 else 0.0
        if k + i == 0 and not np.any(result.coordinates[0]) and not np.any(lifting[0]):
            continue  # the virgin state at t0
        replay.step(result.coordinates[i], lifting[k + i], dt, float(times[k + i]))
    return _padded(replay.state, base.model.n_state_max)


def _calculix_window(problem: Problem, law: Material, times: np.ndarray, last: int, end: int,
                     workdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Snapshots of outputs ``last..end`` by CalculiX: the case from t = 0 to ``times[end]``
    (a deck written by :func:`~romdask.hifi.calculix.write_deck`), its displacements, the stress
    and internal variables by the law replayed along them at every point (ccx prints neither
    the whole state nor all digits); problem orders."""
    from romdask.fem.quadrature import quadrature, strain
    from romdask.hifi.calculix import solve_calculix

    run = solve_calculix(replace(problem, times=times[: end + 1]), workdir, fields=("displacement",))
    displacement = np.asarray(run.displacement)
    offset = end + 1 - displacement.shape[0]  # 1 when ccx skips t = 0 (a condition loaded there)
    quad = quadrature(problem.mesh)
    replay = _Replay(law, np.zeros((0, 0)), None, law.initial_state(quad.n_points))
    stresses, states = [], []
    for step in range(offset, end + 1):
        dt = float(times[step] - times[step - 1]) if step > 0 else 0.0
        replay.integrate(strain(quad, displacement[step - offset]), dt, float(times[step]))
        if step >= last:
            stresses.append(replay.stress.copy())
            states.append(replay.state.copy())
    return displacement[last - offset:], np.array(stresses), np.array(states)


def _padded(state: np.ndarray, width: int) -> np.ndarray:
    out = np.full((state.shape[0], width), np.nan)
    out[:, : state.shape[1]] = state
    return out


def adaptive_solve(model: str | os.PathLike | Enrichable, problem: Problem,
                   options: AdaptiveOptions | None = None) -> AdaptiveResult:
    """Solve ``problem`` with the reduced model, enriching it with high-fidelity increments
    wherever the error indicator flags the reduced result (module notes).

    Parameters
    ----------
    model : a saved reduced model with full bases and mesh (``reduce(...).save(path)``) or an
        :class:`~romdask.adaptive.Enrichable`
    problem : the high-fidelity problem of the scenario (built-in solver; its mesh the model's
        store mesh up to numbering, its load patterns the model's)
    options : AdaptiveOptions

    Returns
    -------
    AdaptiveResult

    Notes
    -----
    Cost per enrichment: a law replay at every integration point over the reduced steps accepted
    since the last restart (``N`` law evaluations per step), ``window`` high-fidelity increments
    (plus one dt = 0 equilibrium) and :func:`~romdask.adaptive.enrich`; between enrichments only
    reduced steps. The calibration (``model.calibration``), fitted on the original model, is
    kept for the enriched one (its indicator stays at the trained model's points) but may
    under-predict its errors (plate n = 8: a 1 % trigger ended at 1.10 % true; n = 4 with the
    indicator at every point: 0.46 % predicted, 2.0 % true), hence the default
    ``error_tolerance`` of 0.5 %; recalibrate an enriched model before trusting its predictions.
    """
    options = AdaptiveOptions() if options is None else options
    start_time = _time.perf_counter()
    base = model if isinstance(model, Enrichable) else enrichable(model, problem)
    law = base.model.materials[0][0]
    scenario = Scenario.from_problem(problem)
    times = scenario.times
    n_t = times.size
    names = tuple(base.model.lifting["lifting_names"]) if base.model.lifting is not None else ()
    lifting = np.array([scenario.values(names, float(t)) for t in times]).reshape(n_t, len(names))
    loads = np.array([scenario.values(base.model.load_names, float(t)) for t in times]).reshape(n_t, -1)
    timings = dict.fromkeys(("online", "hf", "enrich", "replay"), 0.0)
    coordinates: list[np.ndarray | None] = [None] * n_t
    hf_displacement: dict[int, np.ndarray] = {}
    iterations, subincrements, cuts = np.zeros(n_t - 1, np.int64), np.zeros(n_t - 1, np.int64), np.zeros(n_t - 1, np.int64)
    residuals: list[list[float]] = [[] for _ in range(n_t - 1)]
    source = np.zeros(n_t, np.int8)
    enrichments: list[dict[str, Any]] = []
    warnings_: list[str] = []
    n_full = base.weights.size
    full_state = law.initial_state(n_full)  # at output step k, store ip positions
    k, initial, stopped = 0, None, ""
    window, max_window = options.window, options.max_window or 4 * options.window
    scratch = (tempfile.TemporaryDirectory(prefix="romdask-adapt-")
               if options.solver == "calculix" and options.workdir is None else None)
    workdir = Path(options.workdir) if options.workdir else Path(scratch.name if scratch else ".")
    try:
        while True:
            t0 = _time.perf_counter()
            more = len(enrichments) < options.max_enrichments
            result = _solve_segment(base.model, scenario, k, initial, options, stop_at_flag=more)
            timings["online"] += _time.perf_counter() - t0
            if k == 0:
                warnings_ = list(result.warnings)
            flagged = np.flatnonzero(result.flagged[1:]) + 1
            n_rows = result.coordinates.shape[0]
            accepted = n_rows if flagged.size == 0 or not more else int(flagged[0])
            if flagged.size and not more:
                stopped = f"{options.max_enrichments} enrichment(s) done; the rest is the reduced result, flagged"
            for i in range(0 if k == 0 else 1, accepted):
                coordinates[k + i] = result.coordinates[i]
            steps = slice(k, k + accepted - 1)
            iterations[steps], subincrements[steps], cuts[steps] = (result.iterations[: accepted - 1],
                                                                    result.subincrements[: accepted - 1],
                                                                    result.cuts[: accepted - 1])
            residuals[steps] = result.residuals[: accepted - 1]
            if k + accepted == n_t:
                break
            last = k + accepted - 1
            if enrichments:  # flagged again before stepping as far as the last window: double it
                window = min(2 * window, max_window) if last - k < window else options.window
            end = min(last + window, n_t - 1)
            if options.solver == "builtin":  # from the rebuilt reduced state at `last`
                t0 = _time.perf_counter()
                full_state = _rebuild(base, law, result, accepted, k, times, lifting, full_state)
                u = base.full["modes"][:, : result.coordinates.shape[1]] @ result.coordinates[accepted - 1]
                if "lifting" in base.full:
                    u = u + base.full["lifting"] @ lifting[last]
                timings["replay"] += _time.perf_counter() - t0
                t0 = _time.perf_counter()
                piece = replace(problem, times=times[last: end + 1])
                hf = hf_solve(piece, initial=HFState(base.to_problem_dofs(u), base.to_problem_points(full_state)),
                              fields=("displacement", "stress", "state"), options=options.hf)
                snapshots = (hf.displacement, hf.fields["stress"], hf.fields["state"])
                counts = (hf.newton_iterations, hf.n_subincrements, hf.n_cuts, hf.residual_history)
            else:  # CalculiX from t = 0 to the window's end, the law replayed along its displacements
                t0 = _time.perf_counter()
                snapshots = _calculix_window(problem, law, times, last, end, workdir / f"enrichment-{len(enrichments) + 1}")
                n_w = end - last
                counts = (np.zeros(n_w, np.int64), np.ones(n_w, np.int64), np.zeros(n_w, np.int64), [[] for _ in range(n_w)])
            timings["hf"] += _time.perf_counter() - t0
            t0 = _time.perf_counter()
            trigger = int(flagged[0])
            record = {"step": last, "time": float(times[last]), "flagged_step": k + trigger,
                      "indicator": float(result.indicator[trigger]), "hf_increments": end - last,
                      "predicted": {m: float(v[trigger, 0]) for m, v in result.predicted.items()}}
            base, info = enrich(base, *snapshots, lifting[last: end + 1], tol_pod=options.tol_pod, tol_ecm=options.tol_ecm,
                                gappy_tol=options.gappy_tol)
            timings["enrich"] += _time.perf_counter() - t0
            record.update(info, enrich_seconds=float(_time.perf_counter() - t0))
            enrichments.append(record)
            logger.info("enrichment %d at t=%g (step %d, flagged at step %d): %d HF increment(s), +%d mode(s) -> %d "
                        "modes, %d points", len(enrichments), times[last], last, k + trigger, end - last,
                        info["new_modes"], info["n_modes"], info["n_points"])
            u_store, state_store = base.to_store(snapshots[0], snapshots[2])
            for i in range(end - last + 1):
                hf_displacement[last + i] = u_store[i]
                source[last + i] = 1
                coordinates[last + i] = None
            for i in range(end - last):
                iterations[last + i], subincrements[last + i], cuts[last + i] = (c[i] for c in counts[:3])
                residuals[last + i] = list(counts[3][i])
            full_state = state_store[-1]
            k = end
            positions = base.positions
            initial = OnlineState(base.project(u_store[-1:], lifting[k: k + 1])[0],
                                  _padded(full_state[positions, : law.n_state], base.model.n_state_max))
            if k == n_t - 1:
                break
    finally:
        if scratch is not None:
            scratch.cleanup()
    final = _final_result(base, law, times, coordinates, hf_displacement, lifting, loads, iterations, subincrements,
                          cuts, residuals, options.online, warnings_)
    timings["total"] = _time.perf_counter() - start_time
    final.wall_time = timings["total"]
    return AdaptiveResult(final, base, enrichments, source, sum(e["hf_increments"] for e in enrichments), timings,
                          stopped)


def _final_result(base: Enrichable, law: Material, times, coordinates, hf_displacement, lifting, loads, iterations,
                  subincrements, cuts, residuals, options: OnlineOptions, warnings_: list[str]) -> OnlineResult:
    """The history in the final model's reduced coordinates, with its reduced-point fields."""
    model = base.model
    n_t, n = times.size, model.n_modes
    gamma = np.zeros((n_t, n))
    for step, value in enumerate(coordinates):
        if value is not None:
            gamma[step, : value.size] = value
    if hf_displacement:
        steps = np.array(sorted(hf_displacement))
        gamma[steps] = base.project(np.array([hf_displacement[s] for s in steps]), lifting[steps])
    L = model.lifting["lifting_modes_strain"] if model.lifting is not None else None
    replay = _Replay(law, model.modes_strain, L, model.initial_state)
    stress = np.zeros((n_t, model.n_points, 6))
    state = np.full((n_t, model.n_points, model.n_state_max), np.nan)
    for step in range(n_t):
        if step > 0 or np.any(gamma[0]) or np.any(lifting[0]):
            replay.step(gamma[step], lifting[step], float(times[step] - times[step - 1]) if step else 0.0,
                        float(times[step]))
        stress[step], state[step, :, : law.n_state] = replay.stress, replay.state
    reactions = (np.einsum("k,kcl,tkc->tl", model.weights, L, stress) if L is not None
                 else np.zeros((n_t, 0)))
    indicators = _indicators(model, stress, state)
    quantity, indicator = _chosen_indicator(model, indicators, n_t)
    flagged, predicted = error_flags(model, quantity, indicator, options)
    names = tuple(model.lifting["lifting_names"]) if model.lifting is not None else ()
    return OnlineResult(
        times=np.array(times), coordinates=gamma, lifting_names=names, lifting_coefficients=lifting,
        load_names=model.load_names, load_coefficients=loads, iterations=iterations, subincrements=subincrements,
        cuts=cuts, residuals=residuals, stress=stress, state=state, reactions=reactions,
        gappy_coefficients=_gappy_coefficients(model, stress, state), indicator=indicator, flagged=flagged,
        max_von_mises=von_mises(stress).max(axis=1), wall_time=0.0, warnings=warnings_,
        indicator_quantity=quantity, indicators=indicators, predicted_error=predicted,
    )
