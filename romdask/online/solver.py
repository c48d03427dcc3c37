"""The reduced Newton solver: time stepping of a :class:`ReducedModel` on a :class:`Scenario`.

Unknowns: the ``n`` reduced coordinates ``gamma``. At the reduced point ``k`` the total strain is
``eps_k = E_k gamma + L_k a(t)`` (modes and liftings), the laws give ``sigma_k``, ``D_k`` and
the new state, and

    F_int = sum_k w_k E_k^T sigma_k,   K = sum_k w_k E_k^T D_k E_k,   F_ext = load_vectors^T c(t).
"""

from __future__ import annotations

import logging
import time as _time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from romdask.materials.base import von_mises
from romdask.online.indicator import ERROR_MEASURES, INDICATOR_QUANTITIES, indicator_scale, misfit_indicator
from romdask.online.kernels import gather, internal_forces, scatter, stiffness, total_strain
from romdask.online.model import ReducedModel
from romdask.online.newton import FAILURES, LAW_IDS, _newton, newton
from romdask.online.scenario import Scenario
from romdask.stepping import StepFailure, march
from romdask.threads import solver_threads

__all__ = ["OnlineConvergenceError", "OnlineOptions", "OnlineResult", "OnlineState", "TrainingEnvelopeWarning", "solve"]

logger = logging.getLogger(__name__)


class OnlineConvergenceError(RuntimeError):
    """The reduced Newton did not converge even on the smallest sub-increment."""


@dataclass(frozen=True)
class OnlineOptions:
    """Options of :func:`solve`.

    Parameters
    ----------
    rtol : relative residual tolerance: converged when ``||F_ext - F_int|| <= rtol * scale``,
        ``scale = max(||F_ext||, ||F_abs||, scale of the previous converged increments)`` with
        ``F_abs = sum_k |w_k E_k^T sigma_k|`` (componentwise), the no-cancellation size of the
        internal force. ``F_abs`` keeps a scale under pure prescribed displacement, where
        ``F_ext = 0`` and ``F_int -> 0`` at equilibrium; the running maximum, as in the built-in
        HF solver, gives one to nearly unloaded states.
    atol : absolute residual floor (force units): converged whenever ``||R|| <= atol``.
    max_iterations : linear solves (the predictor included) per sub-increment before it is cut.
    max_cuts : an increment may be halved this many times in a row (minimum size
        ``dt / 2**max_cuts``); beyond, :class:`OnlineConvergenceError`.
    predictor : "tangent" (default, as the built-in HF solver: one linear solve with the
        converged tangent of t_n for the load / lifting increment) or "previous" (Newton starts
        from ``gamma_{n-1}``).
    split_at_breakpoints : also stop at the breakpoints of the scenario's Amplitude tables
        inside an increment (load reversals).
    indicator_threshold : for a model without calibration, ``result.flagged = indicator >
        indicator_threshold``. Default 0.01: the normalized stress misfit
        (:mod:`romdask.online.indicator`) was 0.4-0.9 times the von Mises error (fraction of the
        largest) on 24 held-out plate scenarios (docs/adaptive.md), so about a 1-3 % error.
    error_tolerance, error_measure : for a calibrated model (``model.calibration``),
        ``result.flagged`` marks the output times from which the median predicted
        ``error_measure`` error so far ("von_mises", "displacement" or "p") exceeds
        ``error_tolerance`` (default 1 % von Mises); where that measure has no prediction (not
        calibrated, or an interval wider than a factor 100: NaN), ``indicator_threshold`` again.
    """

    rtol: float = 1e-8
    atol: float = 0.0
    max_iterations: int = 12
    max_cuts: int = 8
    predictor: str = "tangent"
    split_at_breakpoints: bool = True
    indicator_threshold: float = 0.01
    error_tolerance: float = 0.01
    error_measure: str = "von_mises"

    def __post_init__(self) -> None:
        if not (self.rtol > 0 and self.atol >= 0 and self.indicator_threshold >= 0 and self.error_tolerance > 0):
            raise ValueError(
                f"need rtol > 0, atol >= 0, indicator_threshold >= 0, error_tolerance > 0; got {self.rtol}, "
                f"{self.atol}, {self.indicator_threshold}, {self.error_tolerance}"
            )
        if self.error_measure not in ERROR_MEASURES:
            raise ValueError(f"error_measure must be one of {ERROR_MEASURES}; got {self.error_measure!r}")
        if self.max_iterations < 1 or self.max_cuts < 0:
            raise ValueError(f"need max_iterations >= 1, max_cuts >= 0; got {self.max_iterations}, {self.max_cuts}")
        if self.predictor not in ("tangent", "previous"):
            raise ValueError(f"predictor must be 'tangent' or 'previous'; got {self.predictor!r}")


@dataclass(frozen=True)
class OnlineState:
    """The state :func:`solve` restarts from (``initial=``), at the scenario's first time.

    Attributes
    ----------
    coordinates : (n,) reduced coordinates gamma.
    state : (r, n_state_max) internal variables at the model's reduced points, NaN beyond each
        law's state size (the layout of :attr:`ReducedModel.initial_state`; the padding is not
        read).

    Notes
    -----
    :meth:`OnlineResult.state_at` gives the state of an output step. The arrays are not copied;
    :func:`solve` only reads them.
    """

    coordinates: np.ndarray
    state: np.ndarray


@dataclass
class OnlineResult:
    """Outcome of :func:`solve` (``n_t`` output times, ``r`` reduced points).

    Attributes
    ----------
    times : (n_t,) the scenario's times.
    coordinates : (n_t, n) reduced coordinates gamma (row 0: the initial time).
    lifting_names, lifting_coefficients : the model's liftings and their coefficients (n_t, n_l).
    load_names, load_coefficients : the model's loads and their coefficients (n_t, q).
    iterations : (n_t - 1,) linear solves (predictor included) per output increment.
    subincrements, cuts : (n_t - 1,) converged sub-increments and increment halvings.
    residuals : per output increment, the relative residuals ``||R|| / scale`` of every iteration.
    stress : (n_t, r, 6) and state : (n_t, r, n_state_max) at the reduced points (NaN padding).
    reactions : (n_t, n_l) reaction resultant of each lifted pattern, ``sum_k w_k L_k^T sigma_k``.
    gappy_coefficients : quantity -> (n_t, m) least-squares Gappy-POD coefficients.
    indicator : (n_t,) the error indicator (:mod:`romdask.online.indicator`): the normalized
        Gappy-POD misfit of ``indicator_quantity`` at the reduced points (NaN when no basis has
        more rows than modes); ``indicators`` has it for every quantity available.
    predicted_error : calibrated models: error measure -> (n_t, 3) the median predicted error so
        far and its prediction interval (:meth:`~romdask.online.indicator.Calibration.predict`:
        NaN where the calibration cannot say); empty otherwise.
    flagged : (n_t,) bool, see :class:`OnlineOptions` (``indicator_threshold`` /
        ``error_tolerance``).
    max_von_mises : (n_t,) largest von Mises stress at the reduced points.
    wall_time : seconds; ``timings["newton"]``: the part in the Newton iterations (laws included).
    temperature : the scenario's :class:`~romdask.online.ScenarioTemperature` (thermal models;
        None otherwise), for :func:`~romdask.online.replay_law` (saved by ``save_result`` unless a
        temperature coefficient is a callable).
    warnings : messages on the scenario, e.g. a pattern leaving the training envelope
        (:func:`~romdask.online.envelope.envelope_warnings`).
    """

    times: np.ndarray
    coordinates: np.ndarray
    lifting_names: tuple[str, ...]
    lifting_coefficients: np.ndarray
    load_names: tuple[str, ...]
    load_coefficients: np.ndarray
    iterations: np.ndarray
    subincrements: np.ndarray
    cuts: np.ndarray
    residuals: list[list[float]]
    stress: np.ndarray
    state: np.ndarray
    reactions: np.ndarray
    gappy_coefficients: dict[str, np.ndarray]
    indicator: np.ndarray
    flagged: np.ndarray
    max_von_mises: np.ndarray
    wall_time: float
    timings: dict[str, float] = field(default_factory=dict)
    temperature: Any = None
    warnings: list[str] = field(default_factory=list)
    indicator_quantity: str = ""
    indicators: dict[str, np.ndarray] = field(default_factory=dict)
    predicted_error: dict[str, np.ndarray] = field(default_factory=dict)

    def state_at(self, step: int) -> OnlineState:
        """The :class:`OnlineState` of output ``step`` (copies of ``coordinates[step]`` and
        ``state[step]``), to restart :func:`solve` from it.

        Raises
        ------
        ValueError
            ``step`` out of range.
        """
        n_t = len(self.coordinates)
        if not -n_t <= step < n_t:
            raise ValueError(f"step {step} is out of range for {n_t} output times")
        return OnlineState(np.array(self.coordinates[step]), np.array(self.state[step]))


class TrainingEnvelopeWarning(UserWarning):
    """A scenario's pattern leaves the range of its training runs
    (:func:`romdask.online.envelope.envelope_warnings`): the prediction extrapolates."""


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array``."""
    view = array.view()
    view.flags.writeable = False
    return view


class _Laws:
    """Preallocated per-law buffers; evaluates every law on its reduced points."""

    def __init__(self, model: ReducedModel, stress: np.ndarray, tangent: np.ndarray, temperature: np.ndarray) -> None:
        self.stress, self.tangent, self.temperature = stress, tangent, temperature
        r = model.n_points
        self.groups = []
        for law, points in model.materials:
            whole = points.size == r and np.array_equal(points, np.arange(r))
            n_g = points.size
            group = {
                "law": law, "kernel": law.kernel, "params": _read_only(law.params), "points": points, "whole": whole,
                "state": np.ascontiguousarray(model.initial_state[points, : law.n_state]),
                "trial": np.empty((n_g, law.n_state)),
                "temperature": temperature if whole else np.zeros((n_g, 3)),
                "strain": None if whole else np.empty((n_g, 6)),
                "stress": stress if whole else np.empty((n_g, 6)),
                "tangent": tangent if whole else np.empty((n_g, 6, 6)),
            }
            self.groups.append(group)

    def evaluate(self, strain: np.ndarray, dt: float, t: float) -> int:
        failed = 0
        for g in self.groups:
            if g["whole"]:
                e = strain
            else:
                e = g["strain"]
                gather(strain, g["points"], e)
                gather(self.temperature, g["points"], g["temperature"])
            failed += int(g["kernel"](e, g["state"], dt, t, g["temperature"], g["params"], g["stress"], g["tangent"],
                                      g["trial"]))
            if not g["whole"]:
                scatter(g["stress"], g["points"], self.stress)
                scatter(g["tangent"], g["points"], self.tangent)
        return failed

    def commit(self) -> None:
        for g in self.groups:
            g["state"], g["trial"] = g["trial"], g["state"]

    def set_state(self, state: np.ndarray) -> None:
        """Every law's committed state from ``state (r, n_state_max)`` (the padding is not read)."""
        for g in self.groups:
            g["state"][:] = state[g["points"], : g["law"].n_state]

    def store_state(self, out: np.ndarray) -> None:
        """The committed state into ``out (r, n_state_max)`` (NaN beyond each law's size)."""
        for g in self.groups:
            if g["whole"]:
                out[:, : g["law"].n_state] = g["state"]
            else:
                out[g["points"], : g["law"].n_state] = g["state"]


def _gappy_operator(basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse ``(m, rows)`` and orthonormal range ``Q`` of the Gappy rows (thin QR)."""
    q, rr = np.linalg.qr(basis)
    return np.linalg.solve(rr, q.T), q


#: model -> {key: operator}: the Gappy operators of a model, computed at its first solve (the
#: model's arrays are read-only); dropped with the model
_OPERATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(model: ReducedModel, key: tuple, compute: Any) -> Any:
    """``compute()`` once per model and key (a thin QR of ``2 rows m^2`` flops each: 9 ms of a
    90 ms solve with 795 points)."""
    operators = _OPERATORS.setdefault(model, {})
    if key not in operators:
        operators[key] = compute()
    return operators[key]


def _indicator_positions(model: ReducedModel) -> np.ndarray | None:
    """Positions of the reduced points the indicator is measured at: an enriched model keeps
    those of the model it came from (``metadata["reduce"]["indicator_points"]``, global point ids),
    where the training scale and the calibration were measured; None: every reduced point."""
    ids = model.metadata.get("reduce", {}).get("indicator_points")
    return None if ids is None else np.flatnonzero(np.isin(model.point_ids, np.asarray(ids, np.int64)))


def _indicator_values(model: ReducedModel, quantity: str, stress: np.ndarray, state: np.ndarray,
                      positions: np.ndarray | None = None) -> np.ndarray | None:
    """The quantity at the reduced points (or at ``positions`` of them), (n_t, rows) in the Gappy
    rows' order, or None."""
    at = slice(None) if positions is None else positions
    if quantity == "stress":
        return stress[:, at].reshape(stress.shape[0], -1)
    return state[:, at, 0] if model.n_state_max else None


def _indicators(model: ReducedModel, stress: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`~romdask.online.indicator.misfit_indicator` of every dual quantity the model has a
    usable Gappy basis of (more rows than modes), with the model's training scale, at the
    indicator's points (:func:`_indicator_positions`)."""
    report = model.metadata.get("reduce", {})
    scales = report.get("indicator_scale", {})
    positions = _indicator_positions(model)
    out = {}
    for quantity in INDICATOR_QUANTITIES:
        basis = model.gappy.get(quantity)
        values = _indicator_values(model, quantity, stress, state, positions)
        if basis is not None and positions is not None:
            k = basis.shape[0] // model.n_points
            basis = basis[(positions[:, None] * k + np.arange(k)).ravel()]
        if basis is None or values is None or basis.shape[0] <= basis.shape[1] or basis.shape[1] == 0:
            continue
        scale = scales.get(quantity)
        if scale is None:  # saved before the scale was: estimated from the Gappy basis
            scale = indicator_scale(basis, report.get("gappy_singular_values", {}).get(quantity, []),
                                    int(report.get("n_snapshots", 0)))
        q = _cached(model, ("orthonormal", quantity), lambda: np.linalg.qr(basis)[0])
        out[quantity] = misfit_indicator(basis, values, float(scale), orthonormal=q)
    return out


def _chosen_indicator(model: ReducedModel, indicators: dict[str, np.ndarray], n_t: int) -> tuple[str, np.ndarray]:
    """The calibrated quantity's indicator, else the first available (stress, then p), else NaN."""
    calibration = model.calibration
    order = ((calibration.quantity,) if calibration is not None else ()) + INDICATOR_QUANTITIES
    for quantity in order:
        if quantity in indicators:
            return quantity, indicators[quantity]
    bases = {q: b.shape for q, b in model.gappy.items()}
    warnings.warn(
        f"no Gappy basis with more rows than modes (bases {bases}): the error indicator is NaN "
        "(lower gappy_tol or tol_ecm to get more reduced points than modes)", RuntimeWarning, stacklevel=3,
    )
    return "", np.full(n_t, np.nan)


def error_flags(model: ReducedModel, quantity: str, indicator: np.ndarray,
                options: OnlineOptions) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(flagged, predicted_error)`` of an indicator history (see :class:`OnlineOptions`): a
    calibrated model of that quantity flags where the median predicted ``error_measure`` error
    so far exceeds ``error_tolerance``, any other (and a calibrated one where it predicts NaN:
    not calibrated there) where the indicator exceeds ``indicator_threshold``."""
    calibration = model.calibration
    predicted = calibration.predict(indicator) if calibration is not None and quantity == calibration.quantity else {}
    by_indicator = indicator > options.indicator_threshold
    if options.error_measure in predicted:
        median = predicted[options.error_measure][:, 0]
        return np.where(np.isnan(median), by_indicator, median > options.error_tolerance), predicted
    return by_indicator, predicted


def _gappy_coefficients(model: ReducedModel, stress: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
    values = {"stress": stress.reshape(stress.shape[0], -1)}
    if model.n_state_max:
        values["p"] = state[:, :, 0]
    out = {}
    for quantity, basis in model.gappy.items():
        if quantity in values and basis.shape[0] >= basis.shape[1]:
            pinv, _ = _cached(model, ("gappy", quantity), lambda: _gappy_operator(basis))
            out[quantity] = values[quantity] @ pinv.T
    return out


def _check_initial(model: ReducedModel, initial: OnlineState) -> None:
    """Raise ValueError unless ``initial`` fits ``model`` (shapes, finite in the used columns)."""
    if not isinstance(initial, OnlineState):
        raise ValueError(f"initial must be a romdask.online.OnlineState; got {type(initial).__name__}.")
    if model.thermal:
        raise ValueError("restart of thermal models is not supported yet (the temperature of the given state is "
                         "not restored); solve the whole scenario.")
    coordinates = np.asarray(initial.coordinates)
    if coordinates.shape != (model.n_modes,) or not np.all(np.isfinite(coordinates)):
        raise ValueError(f"the initial coordinates must be {model.n_modes} finite values (one per mode); got shape "
                         f"{coordinates.shape} with {int(np.sum(~np.isfinite(coordinates)))} non-finite value(s).")
    state = np.asarray(initial.state)
    expected = (model.n_points, model.n_state_max)
    if state.shape != expected:
        raise ValueError(f"the initial state must have shape {expected} (reduced points, the largest law state "
                         f"size); got {state.shape}.")
    for i, (law, points) in enumerate(model.materials):
        used = state[points, : law.n_state]
        if not np.all(np.isfinite(used)):
            raise ValueError(f"the initial state of the points of law {i} ({type(law).__name__}) has "
                             f"{int(np.sum(~np.isfinite(used)))} non-finite value(s) in its first {law.n_state} "
                             "columns; only the padding beyond a law's state size may be NaN.")


def solve(model: ReducedModel, scenario: Scenario, options: OnlineOptions | None = None, *,
          progress: Any = None, initial: OnlineState | None = None) -> OnlineResult:
    """Solve the reduced equilibrium at every time of ``scenario``.

    Parameters
    ----------
    model : ReducedModel
    scenario : Scenario with a coefficient for every load and lifting of the model.
    options : OnlineOptions (default ``OnlineOptions()``).
    progress : optional ``progress(step, n_steps, info)`` after every output increment (as the
        built-in HF solver's; info: "time", "iterations", "subincrements", "cuts").
    initial : OnlineState, optional
        Restart: the coordinates and internal variables at ``scenario.times[0]`` (the rest of a
        history, e.g. ``dataclasses.replace(scenario, times=scenario.times[k:])`` with
        ``result.state_at(k)``); always equilibrated there first (see Notes); row 0 of the
        result is the equilibrated state. Athermal models only for now.

    Returns
    -------
    OnlineResult, its ``warnings`` naming every pattern whose history leaves the training
    envelope (also issued as :class:`TrainingEnvelopeWarning`).

    Raises
    ------
    ValueError
        The scenario misses or has unknown patterns, or a coefficient is not one finite number;
        an ``initial`` of the wrong shape or non-finite (NaN only in the state's padding), or
        given for a thermal model.
    OnlineConvergenceError
        Newton failed on the smallest sub-increment; the message gives the step, the time and
        the relative residuals of the increment.

    Notes
    -----
    Each (sub-)increment t_n -> t_{n+1}: the predictor (see :class:`OnlineOptions`), then full
    Newton with the consistent tangent, the laws integrated from the committed state of t_n
    with the total strain. The time stepping is :func:`romdask.stepping.march`, the built-in
    HF solver's: the state is committed at converged sub-increments only; a failed law point,
    ``max_iterations`` solves, a residual growing twice in a row, a singular or non-finite
    system halve the sub-increment (up to ``max_cuts`` halvings); after an easy sub-increment
    it doubles again, up to the scenario's next time or breakpoint. A nonzero load at
    ``times[0]`` is first equilibrated with dt = 0. The same scenario is thus stepped through
    the same sub-increments as by the HF solver.

    Restart (``initial``): gamma = gamma_n = its coordinates, the laws' committed states from
    its state, evaluated at the total strain ``E gamma + L a(times[0])`` with dt = 0 (F_int_n,
    K_n, K_L); then the equilibrium at ``times[0]`` is always solved with dt = 0 (the laws
    respond elastically from the given state). The running force scale (:class:`OnlineOptions`)
    starts again at 0: after a restart near a load reversal the test is tighter than in the
    uninterrupted run. Cost: one law evaluation and one Newton solve more than the steps.

    Threads (:func:`romdask.threads.solver_threads`): one BLAS thread; the law kernels on one
    numba thread below :data:`romdask.threads.PARALLEL_POINTS` reduced points.

    Cost per iteration: the laws at the r reduced points (their numba kernels),
    ``12 r n`` for F_int (serial numba, weight-0 points skipped), ``36 r n`` for ``D E`` and
    one ``(n, 6 r) x (6 r, n)`` BLAS product for K (per Newton correction and per commit), and
    one dense n x n solve (LU with partial pivoting). A sub-increment's predictor and Newton
    iterations are one compiled call (:func:`romdask.online.newton.newton`) for a model with one
    built-in law; with several laws or a law of one's own, the same function runs interpreted
    around the laws' kernels (same bits, ~10 % slower at 81 points, ~2 % at 229). Every buffer is
    allocated once, none inside the loop. After the steps: the Gappy-POD fits and the indicator, two
    ``(n_t, 6 r) x (6 r, m)`` products each; their operators (thin QRs) are computed at a
    model's first solve and kept with it. Memory of the result: ``8 n_t r (6 + n_state)`` bytes.

    References
    ----------
    F. Casenave et al., arXiv:1812.07228; F. Casenave, N. Akkari, Math. Comput. Appl. 24(2)
    (2019) (the error indicator).
    """
    options = OnlineOptions() if options is None else options
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario must be a romdask.online.Scenario; got {type(scenario).__name__}.")
    lifting_names = tuple(model.lifting["lifting_names"]) if model.lifting is not None else ()
    scenario.check(model.load_names, lifting_names, model.thermal)
    from romdask.online.envelope import envelope_warnings

    if initial is not None:
        _check_initial(model, initial)
    messages = envelope_warnings(model, scenario)
    for message in messages:
        warnings.warn(message, TrainingEnvelopeWarning, stacklevel=2)
    with solver_threads(model.n_points):
        result = _Solver(model, scenario, options, lifting_names, progress, initial).run()
    result.warnings = messages
    return result


class _Solver:
    """The state of one online computation (buffers allocated once in ``__init__``): a
    :class:`romdask.stepping.Stepper` (``attempt``, ``commit``, ``restore``) stepped by
    :func:`romdask.stepping.march` in :meth:`run`."""

    def __init__(self, model: ReducedModel, scenario: Scenario, options: OnlineOptions,
                 lifting_names: tuple[str, ...], progress: Any = None, initial: OnlineState | None = None) -> None:
        self.model, self.scenario, self.options = model, scenario, options
        self.progress = progress
        self.initial = initial
        self.lifting_names = lifting_names
        r, n = model.n_points, model.n_modes
        n_l = len(lifting_names)
        # read-only views whatever the model's arrays: one compiled signature of newton (~4 s)
        self.E = _read_only(model.modes_strain)
        self.L = _read_only(model.lifting["lifting_modes_strain"] if n_l else np.zeros((r, 6, 0)))
        self.w = _read_only(model.weights)
        self.strain, self.stress = np.zeros((r, 6)), np.zeros((r, 6))
        self.tangent = np.zeros((r, 6, 6))
        self.temperature = np.zeros((r, 3))  # [initial, T(t_old), T(t_new)] at each reduced point
        self.laws = _Laws(model, self.stress, self.tangent, self.temperature)
        self.thermal = None
        self.thermal_laws = any(getattr(law, "thermal", False) for law, _ in model.materials)
        if model.thermal:  # mapped once: O(n_patterns r n_en)
            op = model.temperature
            self.thermal = scenario.temperature.at_points(op["nodes"], op["weights"], op.get("initial"))
            self.temperature[:, 0] = self.thermal.initial
            self.t_old, self.t_new = np.zeros(r), np.zeros(r)
            self.t_work = np.zeros(self.thermal.patterns.shape[0])
        self.temperature_changed = False
        self.gamma, self.gamma_n = np.zeros(n), np.zeros(n)
        self.a, self.a_n = np.zeros(n_l), np.zeros(n_l)
        self.c = np.zeros(len(model.load_names))
        self.f_ext, self.f_int, self.f_abs, self.f_int_n = (np.zeros(n) for _ in range(4))
        self.K, self.K_n = np.zeros((n, n)), np.zeros((n, n))
        self.K_L = np.zeros((n, n_l))
        # (w E)^T as (n, 6 r): K = (w E)^T (D E) is one BLAS product
        self.WEt = np.ascontiguousarray((self.w[:, None, None] * self.E).reshape(6 * r, n).T)
        self.DE, self.DL = np.zeros((r, 6, n)), np.zeros((r, 6, n_l))
        self.reaction, self.reaction_abs = np.zeros(n_l), np.zeros(n_l)
        self.rhs, self.x, self.lu = np.zeros(n), np.zeros(n), np.zeros((n, n))
        self.history = np.zeros(options.max_iterations + 1)  # the relative residuals of one attempt
        # one built-in law over every point: Newton compiled whole; else interpreted around _Laws
        group = self.laws.groups[0] if len(self.laws.groups) == 1 else None
        self.law_id = LAW_IDS.get(group["kernel"], -1) if group is not None and group["whole"] else -1
        self.newton, self.python_law = (newton, None) if self.law_id >= 0 else (_newton, self.laws.evaluate)
        self.no_law = {"params": np.zeros(0), "state": np.zeros((0, 0)), "trial": np.zeros((0, 0))}
        self.force_scale = 0.0
        self.timings = {"newton": 0.0}
        n_t = scenario.times.size  # the result rows, filled at every output time
        self.rows = {
            "coordinates": np.zeros((n_t, n)), "lifting": np.zeros((n_t, n_l)),
            "loads": np.zeros((n_t, len(model.load_names))), "stress": np.zeros((n_t, r, 6)),
            "state": np.full((n_t, r, model.n_state_max), np.nan), "reactions": np.zeros((n_t, n_l)),
        }

    # ---- one evaluation ------------------------------------------------------------------------
    def set_loads(self, t: float) -> None:
        self.scenario.values(self.lifting_names, t, out=self.a)
        self.scenario.values(self.model.load_names, t, out=self.c)
        np.dot(self.c, self.model.load_vectors, out=self.f_ext)

    def set_temperatures(self, t_old: float, t_new: float) -> None:
        """``[T_init, T(t_old), T(t_new)]`` at the reduced points (thermal models; ``T_init`` for
        ``T(t_old)`` at the initial equilibrium, t_new == t_old); O(n_patterns r)."""
        if self.thermal is None:
            return
        if t_new == t_old:  # the initial equilibrium: from the virgin state at T_init
            np.copyto(self.t_old, self.thermal.initial)
        else:
            self.thermal.fill(t_old, self.t_old, self.t_work)
        self.thermal.fill(t_new, self.t_new, self.t_work)
        self.temperature[:, 1] = self.t_old
        self.temperature[:, 2] = self.t_new
        self.temperature_changed = self.thermal_laws and bool(np.any(self.t_old != self.t_new))

    def evaluate(self, t: float, dt: float) -> None:
        """Laws, F_int and K at the current gamma and lifting (the starting state; the Newton
        iterations are :func:`~romdask.online.newton.newton`'s)."""
        total_strain(self.E, self.gamma, self.L, self.a, self.strain)
        failed = self.laws.evaluate(self.strain, dt, t)
        if failed:
            raise StepFailure(FAILURES[1].format(detail=failed))
        internal_forces(self.E, self.w, self.stress, self.f_int, self.f_abs)
        stiffness(self.WEt, self.tangent, self.E, self.DE, self.K)

    # ---- the Stepper protocol (romdask.stepping) ---------------------------------------------
    def attempt(self, t_old: float, t_new: float, history: list[float]) -> int:
        """Solve the sub-increment ``t_old -> t_new`` from the committed state (the predictor
        and Newton, :func:`~romdask.online.newton.newton`); returns the number of linear solves
        (the predictor included); raises StepFailure.

        The "tangent" predictor solves ``K_n dgamma = F_ext(t_new) - F_int_n - K_L,n (a - a_n)``;
        when the temperature changes over the increment, ``F_int_n`` is replaced by the internal
        force of the committed strain under the new temperatures (one law evaluation): the
        thermal strain jump enters the predictor exactly instead of through a first Newton
        iteration at a far-off trial state."""
        opts = self.options
        self.set_loads(t_new)
        self.set_temperatures(t_old, t_new)
        law = self.no_law if self.law_id < 0 else self.laws.groups[0]
        start = _time.perf_counter()
        status, n_solves, n_history, force_scale, detail = self.newton(
            self.law_id, self.python_law, law["params"], law["state"], law["trial"], self.E, self.L,
            self.w, self.WEt, self.gamma, self.a, self.a_n, self.f_ext, self.f_int_n, self.K_n, self.K_L,
            self.strain, self.stress, self.tangent, self.temperature, self.f_int, self.f_abs, self.K, self.DE,
            self.rhs, self.x, self.lu, self.history, t_new - t_old, t_new, float(opts.rtol), float(opts.atol),
            self.force_scale, int(opts.max_iterations), opts.predictor == "tangent", self.temperature_changed)
        self.timings["newton"] += _time.perf_counter() - start
        history.extend(self.history[:n_history].tolist())
        if status:
            raise StepFailure(FAILURES[status].format(detail=detail))
        self.force_scale = force_scale
        return n_solves

    def commit(self) -> None:
        """The converged state becomes the committed one (laws, gamma, a, F_int); its tangents
        K_n, K_L from the converged laws' tangent (Newton forms K only to iterate)."""
        self.laws.commit()
        np.copyto(self.gamma_n, self.gamma)
        np.copyto(self.a_n, self.a)
        np.copyto(self.f_int_n, self.f_int)
        stiffness(self.WEt, self.tangent, self.E, self.DE, self.K_n)
        stiffness(self.WEt, self.tangent, self.L, self.DL, self.K_L)

    def restore(self) -> None:
        """Back to the committed gamma and a (the laws' trial states are simply overwritten)."""
        np.copyto(self.gamma, self.gamma_n)
        np.copyto(self.a, self.a_n)

    # ---- a run -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Evaluate the virgin state at ``times[0]`` (its tangent serves the first predictor) and
        set the loads there; returns whether they are nonzero (the initial equilibrium is needed).
        With an initial state: :meth:`restart`."""
        times = self.scenario.times
        t0 = float(times[0])
        if self.initial is not None:
            return self.restart(t0)
        self.temperature[:, 1] = self.temperature[:, 2] = self.temperature[:, 0]  # virgin: at T_init
        try:
            self.evaluate(t0, float(times[1] - t0))  # zero strain: the virgin tangent
        except StepFailure as exc:
            raise OnlineConvergenceError(
                f"the laws fail in the initial state at t={t0:g}: {exc}; check the model's laws and initial state"
            ) from None
        self.commit_start()
        self.set_loads(t0)
        self.set_temperatures(t0, t0)
        heated = self.temperature_changed  # T(t0) != T_init under a thermal law: stresses to equilibrate
        return bool(np.any(self.a != 0.0) or np.any(self.c != 0.0) or heated)

    def restart(self, t0: float) -> bool:
        """Start from the initial state at ``t0``: gamma = gamma_n = its coordinates, the laws'
        committed states from its state, the loads of ``t0`` (``a_n = a(t0)``), evaluated with
        dt = 0 (F_int_n, K_n, K_L); returns True: the equilibrium at ``t0`` is always solved
        (a given state, e.g. projected from another model, need not be one)."""
        np.copyto(self.gamma, self.initial.coordinates)
        np.copyto(self.gamma_n, self.gamma)
        self.laws.set_state(np.asarray(self.initial.state))
        self.set_loads(t0)
        np.copyto(self.a_n, self.a)
        try:
            self.evaluate(t0, 0.0)
        except StepFailure as exc:
            raise OnlineConvergenceError(
                f"the laws fail in the given initial state at t={t0:g}: {exc}; check initial.state"
            ) from None
        self.commit_start()
        return True

    def commit_start(self) -> None:
        """The evaluated starting state's tangent and internal force become the committed ones."""
        np.copyto(self.K_n, self.K)
        np.copyto(self.f_int_n, self.f_int)
        stiffness(self.WEt, self.tangent, self.L, self.DL, self.K_L)

    def output(self, step: int, t: float) -> None:
        """Store the committed state of output ``step`` (the :func:`march` ``on_step``)."""
        rows = self.rows
        rows["coordinates"][step], rows["lifting"][step] = self.gamma, self.a
        rows["loads"][step], rows["stress"][step] = self.c, self.stress
        self.laws.store_state(rows["state"][step])
        internal_forces(self.L, self.w, self.stress, rows["reactions"][step], self.reaction_abs)

    def run(self) -> OnlineResult:
        """Step through the scenario's times and gather the result."""
        start = _time.perf_counter()
        model, times = self.model, self.scenario.times
        breakpoints = self.scenario.breakpoints() if self.options.split_at_breakpoints else None
        stepping = march(self, times, breakpoints, max_cuts=self.options.max_cuts, equilibrate=self.start(),
                         on_step=self.output, error=OnlineConvergenceError, log=logger,
                         progress=self.progress)
        rows = self.rows
        stress, state = rows["stress"], rows["state"]
        indicators = _indicators(model, stress, state)
        quantity, indicator = _chosen_indicator(model, indicators, times.size)
        flagged, predicted = error_flags(model, quantity, indicator, self.options)
        return OnlineResult(
            times=np.array(times), coordinates=rows["coordinates"], lifting_names=self.lifting_names,
            lifting_coefficients=rows["lifting"], load_names=model.load_names, load_coefficients=rows["loads"],
            iterations=stepping.iterations, subincrements=stepping.subincrements, cuts=stepping.cuts,
            residuals=stepping.residuals, stress=stress, state=state, reactions=rows["reactions"],
            gappy_coefficients=_gappy_coefficients(model, stress, state), indicator=indicator,
            flagged=flagged, indicator_quantity=quantity, indicators=indicators, predicted_error=predicted,
            max_von_mises=von_mises(stress).max(axis=1) if model.n_points else np.zeros(times.size),
            wall_time=_time.perf_counter() - start, timings=dict(self.timings),
            temperature=self.scenario.temperature,
        )
