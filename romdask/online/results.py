"""An :class:`~romdask.online.OnlineResult` to and from a ``.npz`` file (``romdask predict --out``),
so that full fields can be reconstructed and compared later without solving again.

Arrays are stored under their attribute names; names, residual histories, Gappy coefficients and
timings as small JSON / flattened arrays; a thermal scenario's temperatures under
``temperature/`` (unless a coefficient is a callable), for the law replay of full fields. No pickle: ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from romdask.online.solver import OnlineResult

__all__ = ["load_result", "save_result", "saved_local_model"]

FORMAT = "romdask-online-result"
_NAMES = ("lifting_names", "load_names")
#: dict-of-arrays attributes, saved as ``name/key`` entries
_DICTS = ("gappy_coefficients", "indicators", "predicted_error")


def save_result(path: str | os.PathLike, result: OnlineResult, *, local_model: str | None = None) -> Path:
    """Write ``result`` to ``path`` (``.npz``; the suffix is added when missing).

    ``local_model``: the name of the local model of a dictionary that made the result (e.g.
    "rom1", :class:`~romdask.online.LocalPrediction`), read back by :func:`saved_local_model`.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict[str, np.ndarray] = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
    residuals = result.residuals
    arrays["residuals"] = np.array([r for step in residuals for r in step], np.float64)
    arrays["residual_counts"] = np.array([len(step) for step in residuals], np.int64)
    for group in _DICTS:
        for key, value in getattr(result, group).items():
            arrays[f"{group}/{key}"] = value
    saved = _temperature_arrays(result.temperature, arrays)
    meta = {"format": FORMAT, "version": 1, "wall_time": result.wall_time, "timings": result.timings,
            "temperature": saved, "warnings": list(result.warnings), "indicator_quantity": result.indicator_quantity,
            **{name: list(getattr(result, name)) for name in _NAMES}}
    if local_model is not None:
        meta["local_model"] = str(local_model)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


def _temperature_arrays(temperature, arrays: dict[str, np.ndarray]) -> str | None:
    """The scenario's temperatures as arrays ``temperature/...``; returns "saved", None (no
    temperatures) or why they were not saved (a callable coefficient)."""
    from romdask.problem.loads import Amplitude

    if temperature is None:
        return None
    coefficients = temperature.coefficients or ()
    if any(not isinstance(c, (float, Amplitude)) for c in coefficients):
        return "not saved: a temperature coefficient is a callable"
    arrays["temperature/node_ids"], arrays["temperature/patterns"] = temperature.node_ids, temperature.patterns
    arrays["temperature/base"] = temperature.base
    if temperature.initial is not None:
        arrays["temperature/initial"] = temperature.initial
    if temperature.field_times is not None:
        arrays["temperature/field_times"] = temperature.field_times
    for p, c in enumerate(coefficients):
        arrays[f"temperature/coefficient/{p}"] = (np.array([[c], [c]]) if isinstance(c, float)
                                                   else np.array([c.times, c.values]))
    return "saved"


def _temperature(data, meta):
    """The ScenarioTemperature of :func:`_temperature_arrays` (None if absent)."""
    from romdask.online.scenario import ScenarioTemperature
    from romdask.problem.loads import Amplitude

    if meta.get("temperature") != "saved":
        return None
    get = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("temperature/")}
    n_p = get["patterns"].shape[0]
    coefficients = None
    if "field_times" not in get:
        tables = [get[f"coefficient/{p}"] for p in range(n_p)]
        coefficients = tuple(float(t[0, 0]) if t.shape == (2, 1) else Amplitude(t[0], t[1]) for t in tables)
    return ScenarioTemperature(get["node_ids"], get["patterns"], coefficients, get.get("initial"), get["base"],
                               get.get("field_times"))


def load_result(path: str | os.PathLike) -> OnlineResult:
    """Read a result written by :func:`save_result`.

    Raises
    ------
    ValueError
        Not such a file (names the path and what is missing).
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a romdask prediction (.npz from romdask predict --out): {exc}") from None
    with data:
        if "meta" not in data.files:
            raise ValueError(f"{path}: not a romdask prediction (no 'meta' entry; written by romdask predict --out?)")
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        counts = data["residual_counts"]
        flat = data["residuals"].tolist()
        offsets = np.concatenate([[0], np.cumsum(counts)])
        values = {f.name: data[f.name] for f in fields(OnlineResult) if f.name in data.files and f.name != "residuals"}
        missing = sorted({f.name for f in fields(OnlineResult)} - set(values) - set(_NAMES) - set(_DICTS)
                         - {"residuals", "wall_time", "timings", "temperature", "warnings", "indicator_quantity"})
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}")
        groups = {g: {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(f"{g}/")} for g in _DICTS}
        temperature = _temperature(data, meta)
    return OnlineResult(
        **values, residuals=[flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])], **groups,
        wall_time=float(meta["wall_time"]), timings=dict(meta["timings"]),
        **{name: tuple(meta[name]) for name in _NAMES}, temperature=temperature,
        warnings=list(meta.get("warnings", [])), indicator_quantity=str(meta.get("indicator_quantity", "")),
    )


def saved_local_model(path: str | os.PathLike) -> str | None:
    """The local model of a dictionary that made the result saved at ``path`` (None: a plain
    model's result, or a file written before romdask recorded it)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a romdask prediction (.npz from romdask predict --out): {exc}") from None
    name = meta.get("local_model")
    return None if name is None else str(name)
