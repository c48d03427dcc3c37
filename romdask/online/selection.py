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

__all__ = ["AMBIGUITY", "LoadSelector", "Ranking", "load_features"]

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
    """

    names: tuple[str, ...]
    runs: tuple[str, ...]
    labels: np.ndarray
    features: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, scenarios: Mapping[str, Scenario], labels: Mapping[str, int], names: Sequence[str]) -> LoadSelector:
        """Train on the runs' scenarios (run -> Scenario) and clusters (run -> cluster index)."""
        runs = tuple(sorted(scenarios))
        missing = sorted(set(runs) ^ set(labels))
        if missing:
            raise ValueError(f"runs {missing} have a scenario or a cluster but not both")
        names = tuple(names)
        raw = np.array([load_features(scenarios[r], names) for r in runs])
        peaks = raw[:, :len(names)].max(axis=0)
        scale = np.where(peaks > 0.0, peaks, 1.0)
        selector = cls(names, runs, np.array([labels[r] for r in runs], dtype=np.int64), raw, scale)
        return cls(names, runs, selector.labels, selector._scaled(raw), scale)

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        out = np.array(raw, np.float64, copy=True)
        out[..., :len(self.names)] /= self.scale
        return out

    def rank(self, scenario: Scenario) -> Ranking:
        """The clusters ordered by the distance of their nearest training run to ``scenario``."""
        x = self._scaled(load_features(scenario, self.names))
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
        n_features = len(names) + len(names) * (len(names) + 1) // 2
        if features.shape != (len(entry["runs"]), n_features) or labels.shape != (features.shape[0],) or \
                scale.shape != (len(names),):
            raise ValueError("the selector's arrays do not match its runs and patterns")
        return cls(names, tuple(entry["runs"]), labels, features, scale)
