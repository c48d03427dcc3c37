"""How far a reduced prediction is from a high-fidelity run of the same case: the error figures
that ``romdask demo`` and ``romdask compare`` print.

All inputs are numpy arrays on the same output times and in the same node / integration-point
order (the training store's): displacement ``(n_t, n_dofs)``, von Mises stress and cumulated
plastic strain ``(n_t, n_points)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["ERROR_NORMS", "field_errors", "cycle_index", "error_table"]

#: what each error figure measures (printed under the tables)
ERROR_NORMS = {
    "displacement": "||U_rom - U_hf||_F / ||U_hf||_F over all times and dofs (time-space L2)",
    "von_mises": "max |vM_rom - vM_hf| over all times and points / max vM_hf",
    "p": "max |p_rom - p_hf| over all times and points / max p_hf (cumulated plastic strain)",
}


def _relative_l2(error: np.ndarray, reference: np.ndarray) -> float:
    scale = float(np.linalg.norm(reference))
    return float(np.linalg.norm(error) / scale) if scale > 0 else float(np.linalg.norm(error))


def _relative_max(error: np.ndarray, reference: np.ndarray) -> float:
    scale = float(np.abs(reference).max(initial=0.0))
    peak = float(np.abs(error).max(initial=0.0))
    return peak / scale if scale > 0 else peak


def field_errors(predicted: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The relative errors of :data:`ERROR_NORMS` for the fields both mappings hold.

    Parameters
    ----------
    predicted, reference : ``"displacement"`` (n_t, n_dofs), ``"von_mises"`` and ``"p"``
        (n_t, n_points); a field missing from either side is skipped.

    Returns
    -------
    dict
        ``{"displacement": e_u, "von_mises": e_vm, "p": e_p}`` (the fields present in both), plus
        ``"max_von_mises"`` and ``"max_p"`` of the reference.

    Raises
    ------
    ValueError
        Shapes differ, or NaN / inf values.
    """
    out: dict[str, float] = {}
    for name in ERROR_NORMS:
        if name not in predicted or name not in reference:
            continue
        a = np.asarray(predicted[name], np.float64)
        b = np.asarray(reference[name], np.float64)
        if a.shape != b.shape:
            raise ValueError(f"{name}: the prediction has shape {a.shape}, the reference {b.shape}; compare the "
                             "same times and the same mesh")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ValueError(f"{name}: NaN or inf values in the prediction or the reference")
        out[name] = (_relative_l2 if name == "displacement" else _relative_max)(a - b, b)
        if name != "displacement":
            out[f"max_{name}"] = float(np.abs(b).max(initial=0.0))
    return out


def cycle_index(times: np.ndarray, period: float) -> np.ndarray:
    """Cycle of each output time (0 for the first period; the end of a period belongs to it)."""
    if not period > 0:
        raise ValueError(f"the cycle period must be > 0; got {period}")
    t = np.asarray(times, np.float64) - float(times[0])
    return np.maximum(np.ceil(t / period - 1e-9).astype(np.int64) - 1, 0)


def error_table(predicted: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
                cycles: np.ndarray | None = None) -> list[dict]:
    """Rows ``{"cycle": "all" | k, **field_errors}``: the whole history, then each cycle
    (``cycles``: the cycle of each output time, :func:`cycle_index`) with the same norms
    restricted to its times (von Mises and p relative to the whole run's maxima, so that cycles
    compare; displacement relative to the cycle's own norm)."""
    rows = [{"cycle": "all", **field_errors(predicted, reference)}]
    if cycles is None:
        return rows
    cycles = np.asarray(cycles)
    for k in np.unique(cycles):
        at = cycles == k
        row = {"cycle": int(k) + 1}
        for name in ERROR_NORMS:
            if name in predicted and name in reference:
                a, b = np.asarray(predicted[name])[at], np.asarray(reference[name])[at]
                if name == "displacement":
                    row[name] = _relative_l2(a - b, b)
                else:
                    scale = rows[0][f"max_{name}"]
                    peak = float(np.abs(a - b).max(initial=0.0))
                    row[name] = peak / scale if scale > 0 else peak
        rows.append(row)
    return rows
