"""An online scenario: output times, the coefficient of every load pattern as a function of time,
and, for a thermal model, the nodal temperatures.

The reduced model keeps one unit vector per load pattern (reduced load vector or lifting, body
forces included); a scenario gives each pattern's factor ``c(t)`` (``value * amplitude(t)`` for
a problem's pattern). Temperatures are inputs of the laws, not forces: a
:class:`ScenarioTemperature` gives nodal fields (any shapes) by solver node ids, mapped to the
reduced points once when solving. No mesh is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from romdask.online.thermal import PointTemperature, operator_values
from romdask.problem.loads import Amplitude
from romdask.problem.patterns import (
    describe_loads,
    problem_signature,
    signature_differences,
)
from romdask.stepping import collect_breakpoints

__all__ = ["Coefficient", "Scenario", "ScenarioTemperature", "problem_scenario"]

#: what a scenario accepts for a pattern's coefficient
Coefficient = Union[Amplitude, Callable[[float], Any], float]


def _scaled(value: float, amplitude: Amplitude | None) -> Coefficient:
    """``value * amplitude(t)`` as an Amplitude (keeps the breakpoints) or a constant."""
    if amplitude is None or value == 0.0:  # a zero pattern (e.g. a homogeneous condition) stays 0.0
        return float(value)
    return Amplitude(amplitude.times, float(value) * np.asarray(amplitude.values))


def _coefficient(name: str, c: Any) -> Coefficient:
    """A validated coefficient: a finite float, an Amplitude or a callable."""
    if isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool):
        if not np.isfinite(c):
            raise ValueError(f"coefficient of {name!r} must be finite; got {c}.")
        return float(c)
    if isinstance(c, Amplitude) or callable(c):
        return c
    raise ValueError(f"coefficient of {name!r} must be an Amplitude, a callable c(t) or a float; got {type(c).__name__}.")


def _nodal(name: str, value: Any, n: int) -> np.ndarray:
    arr = np.array(np.broadcast_to(np.asarray(value, np.float64), (n,)) if np.ndim(value) == 0 else value, np.float64)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be {n} finite nodal values (one per node id); got shape {arr.shape}.")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ScenarioTemperature:
    """The nodal temperatures of a scenario: ``T(t) = base + sum_p c_p(t) patterns[p]`` on the
    nodes ``node_ids``, with the thermal-strain reference ``initial``.

    Parameters
    ----------
    node_ids : (n,) distinct SOLVER node ids (``mesh.node_ids``; any order, any subset that
        covers the elements of the model's reduced points)
    patterns : (n_p, n) nodal temperature patterns
    coefficients : (n_p,) one coefficient per pattern (float, Amplitude or callable ``c(t)``,
        as :class:`Scenario`'s); None with ``field_times``
    initial : (n,) or a float: the initial temperature (CalculiX ``*INITIAL CONDITIONS,
        TYPE=TEMPERATURE``), reference of the thermal strains; None: the model's training
        initial temperature (``model.temperature["initial"]``)
    base : (n,) or a float added to the patterns (default 0); for a CalculiX deck the initial
        temperature on the nodes no ``*TEMPERATURE`` covers (:meth:`from_problem`)
    field_times : (n_p,) increasing times: the patterns are the temperature fields at these
        times, linear in between and constant outside (:meth:`from_fields`)

    Raises
    ------
    ValueError
        Shapes that disagree, repeated node ids, non-finite values, coefficients and
        ``field_times`` both or neither given.

    Notes
    -----
    Memory ``8 n (n_p + 2)`` bytes: what the user gives. Solving maps it to the ``r`` reduced
    points once (:meth:`at_points`, ``O(n_p r n_en)``); nothing mesh-sized happens per increment.
    """

    node_ids: np.ndarray
    patterns: np.ndarray
    coefficients: tuple[Coefficient, ...] | None = None
    initial: np.ndarray | float | None = None
    base: np.ndarray | float = 0.0
    field_times: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = np.array(self.node_ids).ravel()
        if ids.dtype.kind not in "iu" or ids.size == 0 or np.unique(ids).size != ids.size:
            raise ValueError(f"node_ids must be distinct integer solver node ids; got {ids.dtype} with {ids.size} "
                             f"entries ({ids.size - np.unique(ids).size} repeated).")
        ids = ids.astype(np.int64)
        ids.setflags(write=False)
        n = ids.size
        patterns = np.array(self.patterns, np.float64, ndmin=2)
        if patterns.ndim != 2 or patterns.shape[1] != n or not np.all(np.isfinite(patterns)):
            raise ValueError(f"patterns must be finite, of shape (n_patterns, {n}) (one column per node id); "
                             f"got {patterns.shape}.")
        patterns.setflags(write=False)
        object.__setattr__(self, "node_ids", ids)
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "base", _nodal("base", self.base, n))
        if self.initial is not None:
            object.__setattr__(self, "initial", _nodal("initial", self.initial, n))
        self._check_time_dependence(patterns.shape[0])

    def _check_time_dependence(self, n_p: int) -> None:
        if (self.coefficients is None) == (self.field_times is None):
            raise ValueError("give the patterns' coefficients, or field_times for fields per time (from_fields); "
                             "not both, not neither.")
        if self.field_times is not None:
            times = np.array(self.field_times, np.float64)
            if times.shape != (n_p,) or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
                raise ValueError(f"field_times must be {n_p} finite, strictly increasing times (one per field); "
                                 f"got {times[:5]}...")
            times.setflags(write=False)
            object.__setattr__(self, "field_times", times)
            return
        coefficients = tuple(_coefficient(f"temperature pattern {p}", c) for p, c in enumerate(self.coefficients))
        if len(coefficients) != n_p:
            raise ValueError(f"give one coefficient per temperature pattern: {n_p} patterns, "
                             f"{len(coefficients)} coefficients.")
        object.__setattr__(self, "coefficients", coefficients)

    @classmethod
    def from_fields(cls, node_ids: Any, times: Any, fields: Any, initial: Any = None) -> ScenarioTemperature:
        """Nodal temperature fields per time, piecewise linear in time (e.g. a heat-transfer run).

        Parameters
        ----------
        node_ids : (n,) solver node ids of the columns
        times : (n_t,) increasing times of the fields
        fields : (n_t, n) the nodal temperature at each time
        initial : the thermal-strain reference (n,) or a float; None: the model's training
            initial temperature. NOT ``fields[0]`` by default: a deck's initial temperature may
            differ from its temperature at t = 0.
        """
        return cls(node_ids, fields, None, initial, 0.0, times)

    @classmethod
    def from_problem(cls, problem: Any) -> ScenarioTemperature | None:
        """The temperatures of a thermal :class:`~romdask.problem.Problem` (None if athermal):
        CalculiX's rule of :meth:`~romdask.problem.Problem.nodal_temperature`, one pattern per
        ``Temperature`` with its amplitude, ``base`` the initial temperature on the nodes that no
        pattern covers."""
        if problem.initial_temperature is None:
            return None
        mesh = problem.mesh
        n = mesh.n_nodes
        initial = np.asarray(problem.initial_temperature, np.float64)
        patterns = np.zeros((len(problem.temperatures), n))
        covered = np.zeros(n, bool)
        for row, pattern in zip(patterns, problem.temperatures):
            row[pattern.nodes] = pattern.values
            covered[pattern.nodes] = True
        coefficients = tuple(1.0 if p.amplitude is None else p.amplitude for p in problem.temperatures)
        return cls(np.asarray(mesh.node_ids, np.int64), patterns, coefficients, initial, np.where(covered, 0.0, initial))

    def breakpoints(self) -> np.ndarray:
        """Times where the temperature may change its rate: the field times or the amplitudes' tables."""
        if self.field_times is not None:
            return np.array(self.field_times)
        return collect_breakpoints(c.times for c in self.coefficients if isinstance(c, Amplitude))

    def at_points(self, nodes: np.ndarray, weights: np.ndarray, initial: np.ndarray | None) -> PointTemperature:
        """The temperatures at the reduced points of a model's operator (``model.temperature``).

        Parameters
        ----------
        nodes, weights : (r, n_en) the operator's rows (solver node ids, -1 padding)
        initial : (r,) the model's training initial temperature, used when :attr:`initial` is None

        Raises
        ------
        ValueError
            A node of the reduced points missing from :attr:`node_ids`, or no initial
            temperature at all.
        """
        if self.initial is None and initial is None:
            raise ValueError("the scenario gives no initial temperature and the model has none (its training runs "
                             "started from different ones): give ScenarioTemperature(initial=...)")
        stacked = np.vstack([self.base, self.patterns, self.base if self.initial is None else self.initial])
        values = operator_values(nodes, weights, self.node_ids, stacked)
        start = values[-1] if self.initial is not None else np.array(initial, np.float64)
        return PointTemperature(start, values[0], np.ascontiguousarray(values[1:-1]), self.coefficients,
                                self.field_times)


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
    temperature : None, or the nodal temperatures (:class:`ScenarioTemperature`); a thermal
        model needs them, an athermal model refuses them.

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
    temperature: ScenarioTemperature | None = None

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
        functions = {str(name): _coefficient(str(name), c) for name, c in self.coefficients.items()}
        object.__setattr__(self, "coefficients", functions)
        if self.temperature is not None and not isinstance(self.temperature, ScenarioTemperature):
            raise ValueError(f"temperature must be None or a ScenarioTemperature; got {type(self.temperature).__name__}.")
        homogeneous = tuple(str(n) for n in self.homogeneous)
        bad = [n for n in homogeneous if functions.get(n, 0.0) != 0.0]
        if bad:
            raise ValueError(f"homogeneous conditions {bad} must have the coefficient 0.0 (or none).")
        object.__setattr__(self, "homogeneous", homogeneous)

    @classmethod
    def from_problem(cls, problem: Any) -> Scenario:
        """The scenario of a :class:`~romdask.problem.Problem`: its times and, for every pattern,
        ``value * amplitude(t)`` (names as in :func:`romdask.problem.patterns.describe_loads`).

        Dirichlet conditions with value 0 are listed in :attr:`homogeneous`; body forces
        (centrifugal: omega^2, gravity) are load patterns like the others; the temperatures of a
        thermal problem become :attr:`temperature` (:meth:`ScenarioTemperature.from_problem`).
        """
        return cls.from_description(problem.times, describe_loads(problem), ScenarioTemperature.from_problem(problem))

    @classmethod
    def from_description(cls, times: Any, description: Mapping[str, Any],
                         temperature: ScenarioTemperature | None = None) -> Scenario:
        """The scenario of a load description (:func:`romdask.problem.patterns.describe_loads`, e.g.
        a training run's ``metadata["loads"]``) at ``times``: every pattern's ``value *
        amplitude(t)``, Dirichlet conditions with value 0 listed in :attr:`homogeneous`."""
        coefficients: dict[str, Coefficient] = {}
        homogeneous = []
        for kind in ("dirichlet", "loads"):
            for entry in description[kind]:
                table = entry["amplitude"]
                amplitude = None if table is None else Amplitude(table["times"], table["values"])
                coefficients[entry["name"]] = _scaled(entry["value"], amplitude)
                if kind == "dirichlet" and entry["value"] == 0.0:
                    homogeneous.append(entry["name"])
        return cls(times, coefficients, tuple(homogeneous), temperature)

    def check(self, load_names: tuple[str, ...], lifting_names: tuple[str, ...], thermal: bool = False) -> None:
        """Raise ValueError unless every model pattern has a coefficient and no name is unknown,
        and the scenario has temperatures exactly when the model is ``thermal``."""
        if thermal and self.temperature is None:
            raise ValueError("the model was trained with temperatures (a thermal model): the scenario needs them; "
                             "give Scenario(..., temperature=ScenarioTemperature(...)) or a thermal deck "
                             "(problem_scenario)")
        if not thermal and self.temperature is not None:
            raise ValueError("the scenario has temperatures but the model was trained without any (athermal): "
                             "its modes and laws know no thermal strain; train with thermal runs")
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
            value = c if isinstance(c, float) else c(t)
            if not isinstance(value, float):  # np.float64 (an Amplitude's) is one
                value = np.asarray(value, dtype=np.float64)
                if value.size != 1:
                    raise ValueError(f"coefficient of {name!r} at t={t:g} must be one finite number; got {value!r}.")
                value = float(value.reshape(()))
            if not math.isfinite(value):
                raise ValueError(f"coefficient of {name!r} at t={t:g} must be one finite number; got {value!r}.")
            out[i] = value
        return out

    def breakpoints(self) -> np.ndarray:
        """Times of every Amplitude table of the scenario, temperatures' included (where a load
        may reverse)."""
        tables = [c.times for c in self.coefficients.values() if isinstance(c, Amplitude)]
        if self.temperature is not None:
            tables.append(self.temperature.breakpoints())
        return collect_breakpoints(tables)


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
        :meth:`Scenario.from_problem`: the patterns' coefficients (body forces included) and,
        for a thermal problem, its temperatures by solver node ids (any node order).

    Raises
    ------
    ValueError
        The mesh or the patterns differ (every difference listed, e.g. "pattern 'LOAD' has 12
        faces instead of 16"), or the model carries no signature (saved by an older romdask:
        re-run ``romdask reduce``); a thermal model and an athermal case or the reverse.
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
