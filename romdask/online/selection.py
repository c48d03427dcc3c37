"""Which local reduced model for a new scenario: a nearest-neighbour classifier on the load
description, before any solve (the selection step of ROM-net).

A scenario is described by its pattern coefficients ``c(t)`` (one per load or prescribed
displacement pattern, a centrifugal pattern's omega^2 included), sampled at ``n_samples``
uniform times over its span, ``C`` (n_samples, P). Its features are

* the peak ``max_t |c_p(t)|`` of each pattern (over the uniform samples, the output times and the
  amplitude tables' breakpoints, where piecewise-linear coefficients peak), divided by the
  largest peak of that pattern in the training runs (how hard each pattern is pushed, relative
  to what was trained), and
* the normalized second moment ``C^T C / trace(C^T C)`` (upper triangle): which patterns act, and
  together with which sign; independent of the amplitude, the duration and the number of cycles.

A thermal scenario adds four features of its nodal temperatures ``T(t)`` (over the nodes it
gives, at its output times and breakpoints), relative to the initial temperature ``T0``: the
largest mean rise ``max_t mean(T - T0)``, the largest and the lowest nodal rise, and the largest
spatial spread ``max_t std(T)`` (a hot spot against a uniform heating), each divided by the
training runs' largest magnitude of it. A rotation is a load pattern (its omega^2) like the others.

The classifier ranks the clusters by the feature distance of their nearest training run. With a
dozen to a few hundred training runs and a handful of features this is what the data supports;
the paper's neural network (ROM-net) needs thousands of training inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from romdask.online.scenario import Scenario

__all__ = ["AMBIGUITY", "LoadSelector", "Ranking", "load_features", "scenario_temperature_features",
           "temperature_features"]

#: the choice is ambiguous when the second cluster's nearest run is closer than this factor times the first's
AMBIGUITY = 1.5
N_SAMPLES = 65


def load_features(scenario: Scenario, names: Sequence[str], n_samples: int = N_SAMPLES) -> np.ndarray:
    """Unscaled features of ``scenario`` over the patterns ``names`` (see the module docstring).

    A pattern the scenario does not give (a homogeneous condition) counts as 0.

    Returns
    -------
    (P + P (P + 1) / 2,) peaks, then the second moment's upper triangle row by row
    """
    start, end = float(scenario.times[0]), float(scenario.times[-1])
    times = np.linspace(start, end, int(n_samples))
    # the peaks also at the output times and the amplitude tables' breakpoints (where a triangular
    # cycle peaks): uniform samples alone miss them, by an amount that depends on the duration
    breakpoints = scenario.breakpoints()
    extra = np.union1d(scenario.times, breakpoints[(breakpoints >= start) & (breakpoints <= end)])
    given = [n for n in names if n in scenario.coefficients]
    columns = [names.index(n) for n in given]

    def sampled(at: np.ndarray) -> np.ndarray:
        C = np.zeros((at.size, len(names)))
        for i, t in enumerate(at):
            C[i, columns] = scenario.values(tuple(given), float(t))
        return C

    C = sampled(times)
    moment = C.T @ C
    trace = float(np.trace(moment))
    moment = moment / trace if trace > 0.0 else moment
    peaks = np.maximum(np.abs(C).max(axis=0), np.abs(sampled(extra)).max(axis=0))
    return np.concatenate([peaks, moment[np.triu_indices(len(names))]])


def temperature_features(history: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """The four unscaled temperature features (module docstring) of a nodal history (n_t, n) with
    the initial temperature (n,)."""
    rise = np.asarray(history, np.float64) - np.asarray(initial, np.float64)
    return np.array([rise.mean(axis=1).max(), rise.max(), rise.min(), np.asarray(history).std(axis=1).max()])


def scenario_temperature_features(scenario: Scenario) -> np.ndarray:
    """:func:`temperature_features` of a thermal scenario at its output times and breakpoints (the
    initial temperature: the scenario's, else its temperature at the first time)."""
    temperature = scenario.temperature
    if temperature is None:
        raise ValueError("the dictionary's local models are thermal: the scenario needs its temperatures")
    start, end = float(scenario.times[0]), float(scenario.times[-1])
    breakpoints = temperature.breakpoints()
    times = np.union1d(scenario.times, breakpoints[(breakpoints >= start) & (breakpoints <= end)])
    if temperature.field_times is not None:  # fields per time, linear in between, constant outside
        ft = temperature.field_times
        history = np.array([[np.interp(t, ft, column) for column in temperature.patterns.T] for t in times])
    else:
        coefficients = np.array([[c if isinstance(c, float) else float(np.reshape(c(t), ())) for c in
                                  temperature.coefficients] for t in times]).reshape(times.size, -1)
        history = temperature.base + coefficients @ temperature.patterns
    initial = history[0] if temperature.initial is None else temperature.initial
    return temperature_features(history, initial)


def _scaled(raw: np.ndarray, scale: np.ndarray, temperature_scale: np.ndarray | None) -> np.ndarray:
    """Features divided by the training scales: the P peaks first, the 4 temperature ones last."""
    out = np.array(raw, np.float64, copy=True)
    out[..., :scale.size] /= scale
    if temperature_scale is not None:
        out[..., -4:] /= temperature_scale
    return out


@dataclass(frozen=True)
class Ranking:
    """The clusters for a scenario, best first (:meth:`LoadSelector.rank`).

    Attributes
    ----------
    order : cluster indices by increasing distance
    distances : distance of each cluster (index = cluster) = its nearest training run's
    nearest : the nearest training run of each cluster
    ambiguous : the second cluster is within :data:`AMBIGUITY` times the first's distance
    """

    order: tuple[int, ...]
    distances: tuple[float, ...]
    nearest: tuple[str, ...]
    ambiguous: bool


@dataclass(frozen=True, eq=False)
class LoadSelector:
    """Nearest-neighbour classifier from a scenario's load description to a cluster.

    Attributes
    ----------
    names : the patterns of the features (every local model's loads and liftings)
    runs : (n_runs,) the training runs
    labels : (n_runs,) cluster of each training run
    features : (n_runs, n_features) scaled features of the training runs
    scale : (P,) the training runs' largest peak of each pattern (1 for a pattern never used)
    temperature_scale : (4,) the training runs' largest magnitude of each temperature feature, or
        None for athermal runs
    """

    names: tuple[str, ...]
    runs: tuple[str, ...]
    labels: np.ndarray
    features: np.ndarray
    scale: np.ndarray
    temperature_scale: np.ndarray | None = None

    @property
    def thermal(self) -> bool:
        return self.temperature_scale is not None

    @classmethod
    def fit(cls, scenarios: Mapping[str, Scenario], labels: Mapping[str, int], names: Sequence[str],
            temperatures: Mapping[str, np.ndarray] | None = None) -> LoadSelector:
        """Train on the runs' scenarios (run -> Scenario) and clusters (run -> cluster index);
        thermal runs: ``temperatures`` run -> its :func:`temperature_features`."""
        runs = tuple(sorted(scenarios))
        missing = sorted(set(runs) ^ set(labels))
        if temperatures is not None:
            missing += sorted(set(runs) ^ set(temperatures))
        if missing:
            raise ValueError(f"runs {sorted(set(missing))} lack a scenario, a cluster or temperatures")
        names = tuple(names)
        raw = np.array([load_features(scenarios[r], names) for r in runs])
        peaks = raw[:, :len(names)].max(axis=0)
        scale = np.where(peaks > 0.0, peaks, 1.0)
        temperature_scale = None
        if temperatures is not None:
            thermal = np.array([temperatures[r] for r in runs], np.float64).reshape(len(runs), 4)
            largest = np.abs(thermal).max(axis=0)
            temperature_scale = np.where(largest > 0.0, largest, 1.0)
            raw = np.hstack([raw, thermal])
        features = _scaled(raw, scale, temperature_scale)
        return cls(names, runs, np.array([labels[r] for r in runs], dtype=np.int64), features, scale, temperature_scale)

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        return _scaled(raw, self.scale, self.temperature_scale)

    def _features(self, scenario: Scenario) -> np.ndarray:
        x = load_features(scenario, self.names)
        if self.thermal:
            x = np.concatenate([x, scenario_temperature_features(scenario)])
        return self._scaled(x)

    def rank(self, scenario: Scenario) -> Ranking:
        """The clusters ordered by the distance of their nearest training run to ``scenario``."""
        x = self._features(scenario)
        d = np.linalg.norm(self.features - x, axis=1)
        k = int(self.labels.max()) + 1
        distances, nearest = [], []
        for c in range(k):
            members = np.flatnonzero(self.labels == c)
            best = members[np.argmin(d[members])]
            distances.append(float(d[best]))
            nearest.append(self.runs[best])
        order = tuple(int(c) for c in np.argsort(distances, kind="stable"))
        ambiguous = k > 1 and distances[order[1]] <= AMBIGUITY * distances[order[0]]
        return Ranking(order, tuple(distances), tuple(nearest), bool(ambiguous))

    def to_json(self) -> dict[str, Any]:
        return {"kind": "nearest-neighbour", "names": list(self.names), "runs": list(self.runs),
                "labels": self.labels.tolist(), "features": self.features.tolist(), "scale": self.scale.tolist(),
                "temperature_scale": None if self.temperature_scale is None else self.temperature_scale.tolist(),
                "n_samples": N_SAMPLES, "ambiguity": AMBIGUITY}

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> LoadSelector:
        if entry.get("kind") != "nearest-neighbour" or entry.get("n_samples") != N_SAMPLES:
            raise ValueError(f"unknown selector {entry.get('kind')!r} (n_samples {entry.get('n_samples')}); open the "
                             "dictionary with the romdask that wrote it")
        names = tuple(entry["names"])
        features = np.array(entry["features"], np.float64)
        labels = np.array(entry["labels"], np.int64)
        scale = np.array(entry["scale"], np.float64)
        thermal = entry.get("temperature_scale")
        temperature_scale = None if thermal is None else np.array(thermal, np.float64)
        n_features = len(names) + len(names) * (len(names) + 1) // 2 + (0 if thermal is None else 4)
        if features.shape != (len(entry["runs"]), n_features) or labels.shape != (features.shape[0],) or \
                scale.shape != (len(names),) or (temperature_scale is not None and temperature_scale.shape != (4,)):
            raise ValueError("the selector's arrays do not match its runs and patterns")
        return cls(names, tuple(entry["runs"]), labels, features, scale, temperature_scale)
