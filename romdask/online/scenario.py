"""An online scenario: output times and the coefficient of every load pattern as a function of time.

The reduced model keeps one unit vector per load pattern (reduced load vector or lifting); a
scenario gives each pattern's factor ``c(t)`` (``value * amplitude(t)`` for a problem's
pattern). No mesh is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from romdask.problem.loads import Amplitude
from romdask.problem.patterns import describe_loads, problem_signature, signature_differences
from romdask.stepping import collect_breakpoints

__all__ = ["Coefficient", "Scenario", "problem_scenario"]

#: what a scenario accepts for a pattern's coefficient
Coefficient = Union[Amplitude, Callable[[float], Any], float]


def _scaled(value: float, amplitude: Amplitude | None) -> Coefficient:
    """``value * amplitude(t)`` as an Amplitude (keeps the breakpoints) or a constant."""
    if amplitude is None:
        return float(value)
    return Amplitude(amplitude.times, float(value) * np.asarray(amplitude.values))


@dataclass(frozen=True, eq=False)
class Scenario:
    """Output times and pattern coefficients of an online computation.

    Parameters
    ----------
    times : (n_t,) strictly increasing output times; ``times[0]`` is the time of the model's
        initial state (the first result row), every later time is the end of one increment.
    coefficients : pattern name -> :class:`~romdask.problem.loads.Amplitude`, a callable ``c(t)``
        returning a scalar (or a one-element array), or a constant float. The factor of the
        model's UNIT pattern: ``value * amplitude(t)`` of a problem's load or prescribed
        displacement.
    homogeneous : names of homogeneous Dirichlet conditions (coefficient 0) that a model
        without a lifting of that name may ignore (:meth:`from_problem` lists the problem's).

    Raises
    ------
    ValueError
        Times not 1-D, finite and strictly increasing with at least two entries; a coefficient
        of another type; a homogeneous name without a zero coefficient.

    Notes
    -----
    Validation against a model (every load and lifting name of the model has a coefficient,
    no unknown name) happens in :meth:`check` when solving.
    """

    times: np.ndarray
    coefficients: Mapping[str, Coefficient]
    homogeneous: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        times = np.array(self.times, dtype=np.float64)
        if times.ndim != 1 or times.size < 2 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise ValueError(
                "scenario times must be a 1-D finite, strictly increasing array with at least two "
                f"entries (the initial time and one increment); got {np.asarray(self.times)[:5]}..."
            )
        times.setflags(write=False)
        object.__setattr__(self, "times", times)
        if not isinstance(self.coefficients, Mapping):
            raise ValueError(f"coefficients must be a mapping name -> coefficient; got {type(self.coefficients).__name__}.")
        functions = {}
        for name, c in self.coefficients.items():
            if isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool):
                if not np.isfinite(c):
                    raise ValueError(f"coefficient of {name!r} must be finite; got {c}.")
                functions[str(name)] = float(c)
            elif isinstance(c, Amplitude) or callable(c):
                functions[str(name)] = c
            else:
                raise ValueError(
                    f"coefficient of {name!r} must be an Amplitude, a callable c(t) or a float; "
                    f"got {type(c).__name__}."
                )
        object.__setattr__(self, "coefficients", functions)
        homogeneous = tuple(str(n) for n in self.homogeneous)
        bad = [n for n in homogeneous if functions.get(n, 0.0) != 0.0]
        if bad:
            raise ValueError(f"homogeneous conditions {bad} must have the coefficient 0.0 (or none).")
        object.__setattr__(self, "homogeneous", homogeneous)

    @classmethod
    def from_problem(cls, problem: Any) -> Scenario:
        """The scenario of a :class:`~romdask.problem.Problem`: its times and, for every pattern,
        ``value * amplitude(t)`` (names as in :func:`romdask.problem.patterns.describe_loads`).

        Dirichlet conditions with value 0 are listed in :attr:`homogeneous`.
        """
        description = describe_loads(problem)
        coefficients: dict[str, Coefficient] = {}
        homogeneous = []
        for kind in ("dirichlet", "loads"):
            for entry in description[kind]:
                table = entry["amplitude"]
                amplitude = None if table is None else Amplitude(table["times"], table["values"])
                coefficients[entry["name"]] = _scaled(entry["value"], amplitude)
                if kind == "dirichlet" and entry["value"] == 0.0:
                    homogeneous.append(entry["name"])
        return cls(problem.times, coefficients, tuple(homogeneous))

    def check(self, load_names: tuple[str, ...], lifting_names: tuple[str, ...]) -> None:
        """Raise ValueError unless every model pattern has a coefficient and no name is unknown."""
        expected = (*load_names, *lifting_names)
        missing = [n for n in expected if n not in self.coefficients]
        unknown = sorted(set(self.coefficients) - set(expected) - set(self.homogeneous))
        if missing or unknown:
            raise ValueError(
                f"the scenario does not match the model: missing coefficients {missing}, unknown "
                f"patterns {unknown}. The model expects loads {list(load_names)} and prescribed "
                f"displacements (liftings) {list(lifting_names)}."
            )

    def values(self, names: tuple[str, ...], t: float, out: np.ndarray | None = None) -> np.ndarray:
        """Coefficients of ``names`` at time ``t`` (into ``out`` when given)."""
        out = np.empty(len(names)) if out is None else out
        for i, name in enumerate(names):
            c = self.coefficients[name]
            value = c if isinstance(c, float) else np.asarray(c(t), dtype=np.float64)
            if np.size(value) != 1 or not np.isfinite(value).all():
                raise ValueError(f"coefficient of {name!r} at t={t:g} must be one finite number; got {value!r}.")
            out[i] = float(np.reshape(value, ()))
        return out

    def breakpoints(self) -> np.ndarray:
        """Times of every Amplitude table of the scenario (where a load may reverse)."""
        return collect_breakpoints(c.times for c in self.coefficients.values() if isinstance(c, Amplitude))


def problem_scenario(model: Any, problem: Any) -> Scenario:
    """The scenario of a new case (e.g. a user's deck read by
    :func:`romdask.io.calculix.read_problem`) for ``model``, after checking that the problem has
    the model's mesh and load patterns.

    Parameters
    ----------
    model : ReducedModel (its ``metadata["reduce"]["signature"]``)
    problem : Problem on the training mesh, with the training patterns (names, kinds, nodes or
        faces); values, amplitudes, steps and times are free.

    Returns
    -------
    Scenario
        :meth:`Scenario.from_problem`.

    Raises
    ------
    ValueError
        The mesh or the patterns differ (every difference listed, e.g. "pattern 'LOAD' has 12
        faces instead of 16"), or the model carries no signature (saved by an older romdask:
        re-run ``romdask reduce``).
    """
    signature = model.metadata.get("reduce", {}).get("signature")
    if signature is None:
        raise ValueError("the model carries no signature of its mesh and load patterns (saved by an older "
                         "romdask); re-run `romdask reduce` to check new cases against it")
    where = problem.metadata.get("source", problem.name)  # a deck's path
    differences = signature_differences(signature, problem_signature(problem))
    if differences:
        raise ValueError(f"{where}: not the model's mesh and load patterns: " + "; ".join(differences)
                         + ". A reduced model predicts new values, amplitudes and steps of its training "
                         "patterns on its training mesh.")
    scenario = Scenario.from_problem(problem)
    lifted = set(model.lifting["lifting_names"]) if model.lifting is not None else set()
    fixed = [n for n, c in scenario.coefficients.items()
             if n not in lifted and n not in model.load_names and n not in scenario.homogeneous]
    if fixed:
        raise ValueError(f"{where}: prescribed displacement(s) {fixed} are nonzero here but were zero in "
                         "every training run (the model has no lifting for them); train with such a run")
    return scenario
