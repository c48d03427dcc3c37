"""An :class:`~romdask.online.OnlineResult` to and from a ``.npz`` file (``romdask predict --out``),
so that full fields can be reconstructed and compared later without solving again.

Arrays are stored under their attribute names; names, residual histories, Gappy coefficients and
timings as small JSON / flattened arrays. No pickle: ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from romdask.online.solver import OnlineResult

__all__ = ["load_result", "save_result"]

FORMAT = "romdask-online-result"
_NAMES = ("lifting_names", "load_names")


def save_result(path: str | os.PathLike, result: OnlineResult) -> Path:
    """Write ``result`` to ``path`` (``.npz``; the suffix is added when missing)."""
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
    for quantity, coefficients in result.gappy_coefficients.items():
        arrays[f"gappy_coefficients/{quantity}"] = coefficients
    meta = {"format": FORMAT, "version": 1, "wall_time": result.wall_time, "timings": result.timings,
            **{name: list(getattr(result, name)) for name in _NAMES}}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


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
        missing = sorted({f.name for f in fields(OnlineResult)} - set(values) - set(_NAMES)
                         - {"residuals", "gappy_coefficients", "wall_time", "timings"})
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}")
        gappy = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("gappy_coefficients/")}
    return OnlineResult(
        **values, residuals=[flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])], gappy_coefficients=gappy,
        wall_time=float(meta["wall_time"]), timings=dict(meta["timings"]),
        **{name: tuple(meta[name]) for name in _NAMES},
    )
