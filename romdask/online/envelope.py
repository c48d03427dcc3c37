"""The training envelope of a reduced model: per load pattern, the range of ``value * amplitude(t)``
over its training runs; a prediction whose history leaves it gets a warning (POD modes and ECM
points were selected on the training states only: expect larger errors outside)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["REFERENCE_UNITS", "envelope_warnings", "pattern_units", "training_envelope", "unit"]

#: The unit system of romdask's reference problems (romdask.problems, ``romdask hifi``, the demos).
REFERENCE_UNITS = {"length": "mm", "force": "N", "stress": "MPa", "time": "s"}

#: What the value of a load pattern of each kind measures.
_KIND_QUANTITY = {"dirichlet": "length", "pressure": "stress", "nodal_force": "force",
                  "centrifugal": "1/time^2", "gravity": "length/time^2"}


def unit(units: Mapping[str, str] | None, quantity: str) -> str:
    """The unit of ``quantity`` ("length", "stress", "force", "time", ...) in ``units`` (e.g.
    :data:`REFERENCE_UNITS`), or ``[quantity]`` (the deck's units) when unknown; time is in s
    unless ``units`` says otherwise."""
    units = units or {}
    if quantity == "time":  # romdask's cyclic options and rate-dependent laws count in seconds
        return units.get("time", "s")
    if quantity == "1/time^2":
        return f"rad^2/{units.get('time', 's')}^2"
    if quantity == "length/time^2":
        return f"{units.get('length', '[length]')}/{units.get('time', 's')}^2"
    return units.get(quantity) or f"[{quantity}]"


def pattern_units(model: Any) -> dict[str, str]:
    """Pattern name -> unit of its value (a prescribed displacement: length; a pressure: stress;
    a nodal force: force; centrifugal: omega^2; gravity: acceleration), from the model's signature
    and ``metadata["units"]`` ("[length]"... when the unit system is unknown)."""
    units = model.metadata.get("units")
    signature = model.metadata.get("reduce", {}).get("signature") or {}
    return {p["name"]: unit(units, _KIND_QUANTITY.get(p.get("kind"), "value"))
            for p in signature.get("patterns", ())}


def training_envelope(model: Any) -> dict[str, tuple[float, float]]:
    """Pattern name -> (smallest, largest) ``value * amplitude(t)`` over the training runs.

    From ``model.metadata["reduce"]["training_loads"]`` (run -> pattern -> {"value", "amplitude":
    {"times", "values"} or None}); a pattern without an amplitude table counts as ramped from 0
    to its value (CalculiX's default). Empty for models saved without these descriptions.
    """
    runs = model.metadata.get("reduce", {}).get("training_loads") or {}
    envelope: dict[str, tuple[float, float]] = {}
    for patterns in runs.values():
        for name, entry in (patterns or {}).items():
            value = float(entry.get("value", 0.0))
            table = entry.get("amplitude")
            values = value * np.asarray(table["values"], float) if table else np.array([0.0, value])
            lo, hi = float(values.min()), float(values.max())
            if name in envelope:
                lo, hi = min(lo, envelope[name][0]), max(hi, envelope[name][1])
            envelope[name] = (lo, hi)
    return envelope


def _history(scenario: Any, name: str) -> np.ndarray | None:
    """The pattern's coefficient at the scenario's times and its tables' breakpoints in between;
    None when a callable does not give one finite number (the solver says so)."""
    c = scenario.coefficients[name]
    if isinstance(c, float):
        return np.array([c])
    times = scenario.times
    knots = getattr(c, "times", np.empty(0))
    t = np.union1d(times, knots[(knots >= times[0]) & (knots <= times[-1])])
    try:
        history = np.array([float(np.reshape(np.asarray(c(s), float), ())) for s in t])
    except (TypeError, ValueError):
        return None
    return history if np.isfinite(history).all() else None


def envelope_warnings(model: Any, scenario: Any, rtol: float = 1e-6) -> list[str]:
    """One message per pattern of ``scenario`` whose history leaves the model's training range
    (beyond ``rtol`` of the range's size), saying how far; [] inside or without training
    descriptions."""
    envelope = training_envelope(model)
    units = pattern_units(model)
    messages = []
    for name in scenario.coefficients:
        if name not in envelope:
            continue
        lo, hi = (float(v) + 0.0 for v in envelope[name])  # + 0.0: no "-0" in the messages
        history = _history(scenario, name)
        if history is None:
            continue
        margin = rtol * max(abs(lo), abs(hi), 1e-300)
        u = units.get(name, "[value]")
        outside = [(value, bound, word) for value, bound, word in
                   ((history.max(), hi, "largest"), (history.min(), lo, "smallest"))
                   if (value > bound + margin if word == "largest" else value < bound - margin)]
        if not outside:
            continue
        value, bound, word = max(outside, key=lambda o: abs(o[0] - o[1]))  # the farther side
        if bound != 0 and np.sign(value) == np.sign(bound):
            how = f"{abs(value / bound):.3g}x the {word} training value {bound:.6g} {u}"
        else:
            how = f"the {word} training value is {bound:.6g} {u}"
        messages.append(f"pattern {name} reaches {value:.6g} {u}, {how} (outside the training envelope "
                        f"[{lo:.6g}, {hi:.6g}] {u}: expect larger errors)")
    return messages
