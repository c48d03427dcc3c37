"""How far a reduced prediction is from a high-fidelity run of the same case: the error figures
that ``romdask demo`` and ``romdask compare`` print.

All inputs are numpy arrays on the same output times and in the same node / integration-point
order (the training store's): displacement ``(n_t, n_dofs)``, von Mises stress and cumulated
plastic strain ``(n_t, n_points)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from romdask.materials import Material, von_mises

__all__ = ["ERROR_NORMS", "Reference", "calculix_reference", "compare_prediction", "cycle_index", "error_table",
           "field_errors", "time_errors"]

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


def _pairs(predicted: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]):
    """(name, prediction, reference) of the :data:`ERROR_NORMS` fields both hold, checked."""
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
        yield name, a, b


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
    for name, a, b in _pairs(predicted, reference):
        out[name] = (_relative_l2 if name == "displacement" else _relative_max)(a - b, b)
        if name != "displacement":
            out[f"max_{name}"] = float(np.abs(b).max(initial=0.0))
    return out


def time_errors(predicted: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The relative error at every output time, for the fields both mappings hold.

    Parameters
    ----------
    predicted, reference : as :func:`field_errors` (first axis: the output times).

    Returns
    -------
    dict
        name -> (n_t,): displacement ``||u_rom(t) - u_hf(t)|| / max_t ||u_hf(t)||``; von Mises and
        p ``max_x |rom - hf|(t) / max_{x,t} |hf|`` (their maximum over t is :func:`field_errors`'
        value). A field whose reference is 0 everywhere (p of an elastic run) is left out.

    Raises
    ------
    ValueError
        Shapes differ, or NaN / inf values.

    Notes
    -----
    One pass over each field (memory: one difference array of the field's size).
    """
    out: dict[str, np.ndarray] = {}
    for name, a, b in _pairs(predicted, reference):
        n_t = a.shape[0]
        if name == "displacement":
            error = np.linalg.norm((a - b).reshape(n_t, -1), axis=1)
            scale = float(np.linalg.norm(b.reshape(n_t, -1), axis=1).max(initial=0.0))
        else:
            error = np.abs(a - b).reshape(n_t, -1).max(axis=1, initial=0.0)
            scale = float(np.abs(b).max(initial=0.0))
        if scale > 0:
            out[name] = error / scale
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


@dataclass(frozen=True, eq=False)
class Reference:
    """A high-fidelity run in a model's order: ``times`` (n_t,), ``displacement`` (n_t, n_dofs),
    ``stress`` (n_t, N, 6) and ``p`` (n_t, N) at the store's ip positions, and where the stress
    came from (``"dat"``: the solver's own integration-point output; ``"law replay"``: the
    model's law integrated along the run's strains, exactly what CalculiX computes, see
    docs/calculix.md)."""

    times: np.ndarray
    displacement: np.ndarray
    stress: np.ndarray
    p: np.ndarray
    stress_source: str


def _run_fields(run: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    frames = list(run.frames())
    return {name: np.stack([f.data[name] for f in frames]) for name in names if name in run.fields}


def _point_temperatures(run: Any, times: np.ndarray, frd: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(initial, history (n_t, n_points)) at the run's integration points from its deck's
    temperatures (the load description read with the deck; exact at the output times), or
    None for an athermal deck."""
    from romdask.fem.temperature import temperature_operator
    from romdask.offline.temperature import description_temperature

    description = (run.metadata or {}).get("loads")
    if not description or description.get("temperature") is None:
        return None
    temperature = description_temperature(run.mesh, description)
    operator = temperature_operator(run.mesh)
    nodal = temperature.local(None).history(None, None, times)
    return operator @ temperature.initial, (operator @ nodal.T).T


def calculix_reference(full: Any, law: Material, inp: str | Path, frd: str | Path,
                       dat: str | Path | None = None) -> Reference:
    """A CalculiX run (deck, .frd, optional .dat) in the order of a model's full bases.

    Parameters
    ----------
    full : :func:`romdask.online.open_full` of the model (its saved mesh and ip layout).
    law : the model's law (replayed on the run's strains when the .dat has no stress; at the
        deck's temperatures for a thermal deck, CalculiX's rule of
        :mod:`romdask.fem.temperature`).
    inp, frd, dat : the run's files (:func:`romdask.io.calculix.read_calculix`).

    Returns
    -------
    Reference
        With a zero frame at t = 0 prepended (CalculiX writes none; the runs start unloaded).

    Raises
    ------
    ValueError
        The run's mesh is not the model's (what differs), or the model holds no mesh.
    """
    from romdask.fem.quadrature import quadrature, strain
    from romdask.io.calculix import read_calculix
    from romdask.offline.replay import integrate_history
    from romdask.store.layout import ip_layout, mesh_difference

    mesh = full.mesh
    if mesh is None or full.ip_element is None:
        raise ValueError(f"{full.path} holds no mesh; re-run `romdask reduce` (models save their mesh since 0.2)")
    run = read_calculix(inp=inp, frd=frd, dat=dat)
    difference = mesh_difference(mesh, run.mesh)
    if difference is not None:
        raise ValueError(f"{frd}: not the model's mesh: {difference}")
    fields = _run_fields(run, ("displacement", "stress", "state", "p"))
    times = np.concatenate([[0.0], run.times]) if run.times[0] > 0 else run.times
    if times.size > run.times.size:
        fields = {k: np.concatenate([np.zeros((1, *v.shape[1:])), v]) for k, v in fields.items()}
    u_run = fields["displacement"]  # (n_t, n_nodes_run, 3) in the deck's order
    _, _, offset = ip_layout(run.mesh)
    positions = offset[run.mesh.element_index(mesh.element_ids[full.ip_element])] + full.ip_local_point
    stress, source = fields.get("stress"), "dat"
    p = fields["state"][..., 0] if "state" in fields else fields["p"][..., 0] if "p" in fields else None
    if stress is None or p is None:  # the law along the run's strains: CalculiX's own numbers
        quad = quadrature(run.mesh)
        history = np.stack([strain(quad, u.ravel()) for u in u_run])
        replayed, state, failed = integrate_history(law, history, times, _point_temperatures(run, times, frd))
        if failed:
            raise ValueError(f"{frd}: the law failed at {failed} point-increment(s) on the run's strains")
        if stress is None:
            stress, source = replayed, "law replay"
        if p is None:
            p = state[..., 0] if law.n_state else np.zeros(stress.shape[:2])
    nodes = run.mesh.node_index(mesh.node_ids)
    return Reference(times=times, displacement=u_run[:, nodes].reshape(len(times), -1),
                     stress=stress[:, positions], p=p[:, positions], stress_source=source)


def compare_prediction(fields: Mapping[str, Any], times: np.ndarray, reference: Reference, *,
                       period: float | None = None) -> list[dict]:
    """:func:`error_table` of a prediction's full fields (:func:`romdask.online.prediction_fields`
    at output ``times``) against a reference, at the reference's times.

    Raises
    ------
    ValueError
        A reference time the prediction does not have (the same deck must drive both).
    """
    times = np.asarray(times, np.float64)
    tol = 1e-6 * max(float(np.abs(times).max(initial=0.0)), 1e-300)
    pos = np.searchsorted(times, reference.times - tol)
    ok = (pos < times.size) & (np.abs(times[np.minimum(pos, times.size - 1)] - reference.times) <= tol)
    if not np.all(ok):
        raise ValueError(f"the reference has output times {reference.times[~ok][:5].tolist()} that the prediction "
                         "has not; predict the reference's deck (romdask predict --deck)")
    predicted = {"displacement": np.asarray(fields["displacement"][pos]),
                 "von_mises": von_mises(np.asarray(fields["stress"][pos]))}
    ref = {"displacement": reference.displacement, "von_mises": von_mises(reference.stress)}
    if fields.get("p") is not None:
        predicted["p"], ref["p"] = np.asarray(fields["p"][pos]), reference.p
    cycles = cycle_index(reference.times, period) if period else None
    return error_table(predicted, ref, cycles)
