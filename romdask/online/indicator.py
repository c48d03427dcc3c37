"""The error indicator of a reduced prediction and its calibration (numpy only: online stage).

The indicator (Casenave & Akkari 2019) is the Gappy-POD misfit of a dual quantity at the
reduced points: how far the values the reduced solver computes there are from the span of the
training snapshots. romdask normalizes it by the TRAINING scale of the quantity,

    E(t) = ||q_r(t) - Q Q^T q_r(t)|| / max(||q_r(t)||, S_q),

``q_r`` the quantity at the reduced points, ``Q`` an orthonormal basis of its Gappy-POD rows and
``S_q`` the largest ``||q_r||`` over the training snapshots. The raw relative misfit
``/ ||q_r(t)||`` raised false alarms where ``q_r`` is nearly zero (the first plastic increments:
0.06 where the error was 1e-6) and ranked 24 held-out plate scenarios with a Spearman
correlation of only 0.65 against their von Mises errors; the normalized stress misfit ranks them
at 0.996 (a 2-run model) and 0.974 (a 4-run model), the normalized p misfit at 0.99 and 0.98
(docs/adaptive.md). The default quantity is the stress: every model has its basis (elastic ones
too), and step by step it follows the error more closely (Spearman 0.985 / 0.979 against 0.96 /
0.91 for p).

A :class:`Calibration` maps the indicator to a predicted error with a prediction interval: one
Gaussian process per error measure on (log10 running-maximum indicator, log10 running-maximum
error) pairs of held-out runs, its interval widened to the coverage measured by leaving one
calibration run out (split-conformal), see :func:`romdask.offline.calibrate`. A measure whose
left-out runs the calibration missed by more than a factor 10 (:data:`MAX_SPREAD`) is not
calibrated, and no prediction is given where the interval's ends are more than a factor 100 from
its median (:data:`MAX_HALF_WIDTH`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["Calibration", "ErrorModel", "INDICATOR_QUANTITIES", "MAX_HALF_WIDTH", "MAX_SPREAD",
           "indicator_scale", "leave_one_out_spread", "misfit_indicator", "running_max"]

#: dual quantities an indicator can be computed from, the default first
INDICATOR_QUANTITIES = ("stress", "p")
#: the error measures a calibration predicts (as :func:`romdask.online.compare.field_errors`)
ERROR_MEASURES = ("displacement", "von_mises", "p")
#: output times per block of the misfit products (bounded work memory)
BLOCK = 8
#: indicators below this are treated as this value in the calibration's log scale
INDICATOR_FLOOR = 1e-12
#: a measure calibrated on too few runs for a conformal interval (:func:`romdask.offline.min_runs`)
#: whose left-out runs' final errors it missed by more than this many decades (log10; its
#: leave-one-out spread, :func:`leave_one_out_spread`) is not calibrated: its predictions are NaN.
#: With enough runs the conformal interval is valid however wide (the benchmark's 23 plate
#: scenarios: p spread 1.2-1.9 decades in some leave-one-out refits, yet 96 % coverage), and
#: :data:`MAX_HALF_WIDTH` still withholds a useless one
MAX_SPREAD = 1.0
#: no prediction (NaN) where the interval's ends are more than this many decades from its median
#: (far from the calibration pairs, where the GP reverts to its prior); on the same 24 scenarios
#: at most 0.27 / 0.48 / 1.39, on 5 runs of the tests' plate 1.62; a user's 4 runs: 16
MAX_HALF_WIDTH = 2.0


def _orthonormal_rows(basis: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(basis)
    return q


def indicator_scale(basis: np.ndarray, singular_values: Any, n_snapshots: int) -> float:
    """An estimate of the largest training ``||q_r||`` for a model saved without it:
    ``s_0 ||Phi_r[:, 0]|| sqrt(2 / n_snapshots)``, the peak of a sine whose RMS is the dominant
    Gappy mode's part of the snapshots at the reduced points (0.69x the true scale on the plate)."""
    s = np.asarray(singular_values, np.float64)
    if basis.shape[1] == 0 or s.size == 0 or n_snapshots < 1:
        return 0.0
    return float(s[0] * np.linalg.norm(basis[:, 0]) * np.sqrt(2.0 / n_snapshots))


def misfit_indicator(basis: np.ndarray, values: np.ndarray, scale: float,
                     orthonormal: np.ndarray | None = None) -> np.ndarray:
    """``E(t) = ||q - Q Q^T q|| / max(||q||, scale)`` for every row of ``values``.

    Parameters
    ----------
    basis : (rows, m) Gappy-POD rows of the quantity at the reduced points (``rows > m``)
    values : (n_t, rows) the quantity at the reduced points at every output time
    scale : the training scale ``S_q`` (> 0)
    orthonormal : optional (rows, m) ``Q`` of the thin QR of ``basis``, when the caller keeps it
        (the online solver, per model); computed otherwise

    Returns
    -------
    (n_t,) indicator; 0 where ``q`` is 0.

    Notes
    -----
    One thin QR of the basis rows (unless ``orthonormal`` is given) and two ``(n_t, rows) x (rows, m)`` products, by blocks of
    ``BLOCK`` times (work memory ``16 BLOCK rows`` bytes, not ``n_t``-sized).
    """
    q = _orthonormal_rows(basis) if orthonormal is None else orthonormal
    misfit, norm = np.empty(values.shape[0]), np.empty(values.shape[0])
    for start in range(0, values.shape[0], BLOCK):
        block = values[start:start + BLOCK]
        misfit[start:start + BLOCK] = np.linalg.norm(block - (block @ q) @ q.T, axis=1)
        norm[start:start + BLOCK] = np.linalg.norm(block, axis=1)
    np.maximum(norm, scale, out=norm)
    return np.divide(misfit, norm, out=np.zeros_like(misfit), where=norm > 0)


def leave_one_out_spread(misses: Any, coverage: float) -> float:
    """The ``ceil((n + 1) coverage)``-th smallest of n absolute misses ``|log10 (true / predicted
    median)|`` of left-out runs (the largest when n is too small), in decades: the same rank as the
    conformal interval factor (:func:`romdask.offline.conformal_factor`); NaN without misses."""
    r = np.sort(np.abs(np.asarray(misses, np.float64)))
    if r.size == 0:
        return float("nan")
    k = int(np.ceil((r.size + 1) * coverage - 1e-9))
    return float(r[min(k, r.size) - 1])


def running_max(values: np.ndarray) -> np.ndarray:
    """The running maximum along the first axis (NaN-free input)."""
    return np.maximum.accumulate(np.asarray(values, np.float64), axis=0)


@dataclass(frozen=True)
class ErrorModel:
    """A Gaussian process ``log10 error = m(x) + f(x)``, ``x = log10 indicator``, with a linear
    mean ``m(x) = b_0 + b_1 x``, a squared-exponential kernel ``amplitude^2 exp(-(x - x')^2 /
    (2 length^2))`` and a noise ``noise^2``, conditioned on ``x``, ``y`` (the calibration pairs).

    ``z`` scales the predictive standard deviation into the prediction interval
    ``[10^(mu - z sd), 10^(mu + z sd)]`` (set from the leave-one-run-out residuals).
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    mean: tuple[float, float]
    amplitude: float
    length: float
    noise: float
    z: float

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.amplitude**2 * np.exp(-0.5 * ((a[:, None] - b[None, :]) / self.length) ** 2)

    @cached_property
    def _factor(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, Cholesky factor, weights) of the conditioned GP, once per model."""
        x, y = np.asarray(self.x), np.asarray(self.y)
        K = self._kernel(x, x) + (self.noise**2 + 1e-10) * np.eye(x.size)
        L = np.linalg.cholesky(K)
        residual = y - (self.mean[0] + self.mean[1] * x)
        alpha = np.linalg.solve(L.T, np.linalg.solve(L, residual))
        return x, L, alpha

    def predict(self, indicator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sd) of ``log10 error`` at ``indicator`` (any shape)."""
        values = np.asarray(indicator, np.float64)
        xs = np.log10(np.maximum(values.ravel(), INDICATOR_FLOOR))
        x, L, alpha = self._factor
        ks = self._kernel(xs, x)
        mu = self.mean[0] + self.mean[1] * xs + ks @ alpha
        v = np.linalg.solve(L, ks.T)
        var = self.amplitude**2 - np.einsum("ij,ij->j", v, v) + self.noise**2
        return mu.reshape(values.shape), np.sqrt(np.maximum(var, 0.0)).reshape(values.shape)

    def to_json(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y), "mean": list(self.mean), "amplitude": self.amplitude,
                "length": self.length, "noise": self.noise, "z": self.z}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorModel:
        return cls(tuple(map(float, data["x"])), tuple(map(float, data["y"])), tuple(map(float, data["mean"])),
                   float(data["amplitude"]), float(data["length"]), float(data["noise"]), float(data["z"]))


@dataclass(frozen=True)
class Calibration:
    """Indicator -> predicted error of a reduced model (stored in ``metadata["calibration"]``).

    Attributes
    ----------
    quantity : the indicator's dual quantity ("stress" or "p")
    errors : error measure ("displacement", "von_mises", "p") -> ErrorModel
    coverage : the nominal coverage of the prediction interval (e.g. 0.9)
    report : how it was made: runs, pairs, leave-one-out coverage, spread and rank correlations
    """

    quantity: str
    errors: Mapping[str, ErrorModel]
    coverage: float
    report: Mapping[str, Any]

    @cached_property
    def spread(self) -> dict[str, float]:
        """Measure -> its leave-one-out spread in decades (:func:`leave_one_out_spread`): stored by
        :func:`romdask.offline.fit_calibration`, or, for a calibration made before it was, from
        the report's per-run rows (true error, left-out predicted median); NaN if neither is there."""
        loo = self.report.get("leave_one_out") or {}
        out = {}
        for measure in self.errors:
            value = (loo.get(measure) or {}).get("spread")
            if value is None:
                rows = [r for r in self.report.get("rows", []) if measure in (r.get("error") or {})
                        and measure in (r.get("predicted") or {})]
                misses = [np.log10(r["error"][measure] / r["predicted"][measure][0]) for r in rows
                          if r["error"][measure] > 0 and r["predicted"][measure][0] > 0]
                value = leave_one_out_spread(misses, self.coverage)
            out[measure] = float(value)
        return out

    @property
    def not_calibrated(self) -> dict[str, float]:
        """Measure -> spread, for the measures whose spread exceeds :data:`MAX_SPREAD` with too few
        runs for a conformal interval."""
        loo = self.report.get("leave_one_out") or {}
        return {m: s for m, s in self.spread.items()
                if s > MAX_SPREAD and not (loo.get(m) or {}).get("conformal", False)}

    def calibrated_range(self, measure: str) -> tuple[float, float]:
        """The smallest and largest indicator of ``measure``'s calibration pairs: outside, its
        prediction is an extrapolation."""
        x = self.errors[measure].x
        return float(10.0 ** min(x)), float(10.0 ** max(x))

    def predict(self, indicator: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted errors of the running-maximum ``indicator`` (n_t,) of a prediction.

        Returns
        -------
        measure -> (n_t, 3): the median predicted error so far and the lower and upper ends of
        its prediction interval, as fractions (von Mises and p: of the largest value; displacement:
        of the largest displacement norm); NaN where the indicator is NaN, where the interval's
        ends are more than :data:`MAX_HALF_WIDTH` decades from its median (far from the
        calibration pairs), and everywhere for a measure not calibrated (:attr:`not_calibrated`).
        Not clipped at 1: a reduced prediction can be further from the truth than 0 is.
        """
        values = running_max(np.nan_to_num(np.asarray(indicator, np.float64), nan=-np.inf))
        not_calibrated = self.not_calibrated
        out = {}
        for measure, model in self.errors.items():
            mu, sd = model.predict(np.where(np.isfinite(values), values, INDICATOR_FLOOR))
            half = model.z * sd
            prediction = 10.0 ** np.stack([mu, mu - half, mu + half], axis=-1)
            prediction[~np.isfinite(values) | (half > MAX_HALF_WIDTH) | (measure in not_calibrated)] = np.nan
            out[measure] = prediction
        return out

    def to_json(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "coverage": self.coverage,
                "errors": {k: v.to_json() for k, v in self.errors.items()}, "report": dict(self.report)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        quantity = data.get("quantity")
        if quantity not in INDICATOR_QUANTITIES:
            raise ValueError(f"calibration: unknown indicator quantity {quantity!r}; expected one of "
                             f"{INDICATOR_QUANTITIES}")
        errors = {k: ErrorModel.from_json(v) for k, v in data["errors"].items() if k in ERROR_MEASURES}
        coverage = float(data["coverage"])
        if not (0.0 < coverage < 1.0) or not errors:
            raise ValueError("calibration: coverage must be in (0, 1) and at least one error measure given")
        return cls(quantity, errors, coverage, dict(data.get("report", {})))


def format_error(prediction: np.ndarray) -> str:
    """``"0.82 % (0.51-1.3 %)"`` for a (3,) median / lower / upper prediction."""
    if not np.all(np.isfinite(prediction)):
        return "unavailable"

    def pct(v: float) -> str:
        return f"{100 * v:.2g}"

    return f"{pct(prediction[0])} % ({pct(prediction[1])}-{pct(prediction[2])} %)"

