"""Full fields from an online result: displacement (modes + lifting) and dual quantities (Gappy-POD).

The full bases are written by ``reduce(...).save(path)`` (``ReducedModel.save(path, full=...,
mesh=...)``) under ``path/full/`` and read lazily here: nothing is read until a reconstruction is
computed, and then only the chunks asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dask.array as da
import numpy as np

from romdask.fem.mesh import Mesh
from romdask.materials.base import Material
from romdask.online.full_mesh import read_full_mesh
from romdask.online.integrity import verify_full
from romdask.online.model import open_model_group
from romdask.online.solver import OnlineResult
from romdask.threads import solver_threads

__all__ = ["FullBases", "open_full", "prediction_fields", "reconstruct_displacement", "reconstruct_dual",
           "replay_law"]

_GAPPY_COMPONENTS = {"stress": 6, "p": 1}


@dataclass(frozen=True, eq=False)
class FullBases:
    """The full bases of a saved reduced model, as lazy dask arrays (rows = full-space index).

    Attributes
    ----------
    path : the model group.
    modes : (n_dofs, n) full modes in the store's dof order, or None.
    lifting : (n_dofs, n_l) unit lifting vectors, or None (no lifting saved / in the model).
    gappy : quantity -> full Gappy-POD basis: ``"stress"`` (6 N, m_s), components fastest;
        ``"p"`` (N, m_p); rows in the store's ip-position order.
    ip_points : (N,) int64 global integration point of each store ip position, or None.
    strain : (6 N, n) strains of the modes at every integration point (components fastest,
        engineering shear), or None; lifting_strain : (6 N, n_l) those of the liftings, or None.
    ip_element, ip_local_point : (N,) int64 the element (index into :attr:`mesh`) and the local
        integration point of each store ip position, or None (models saved before they were).
    temperature_nodes, temperature_weights : (N, n_en) the temperature operator at every store
        ip position (solver node ids, -1 padding), thermal models only (else None);
        initial_temperature : (N,) the training runs' common initial temperature there, or None.
    mesh : the store's mesh (store order), read on first access; None when the model was saved
        without it.
    """

    path: str
    modes: da.Array | None
    lifting: da.Array | None
    gappy: dict[str, da.Array]
    ip_points: np.ndarray | None
    strain: da.Array | None = None
    lifting_strain: da.Array | None = None
    ip_element: np.ndarray | None = None
    ip_local_point: np.ndarray | None = None
    has_mesh: bool = False
    temperature_nodes: da.Array | None = None
    temperature_weights: da.Array | None = None
    initial_temperature: da.Array | None = None

    @property
    def thermal(self) -> bool:
        return self.temperature_nodes is not None

    @cached_property
    def mesh(self) -> Mesh | None:
        """The store mesh saved with the model (:func:`romdask.online.read_full_mesh`), or None."""
        return read_full_mesh(self.path) if self.has_mesh else None


def open_full(path: str | os.PathLike) -> FullBases:
    """Open the full bases saved with a reduced model (lazily: metadata only).

    Raises
    ------
    ValueError
        ``path`` is not a reduced model, holds no full bases (save them with
        ``reduce(...).save(path)``), or fails its checksum (the model or a full array was edited).

    Notes
    -----
    Reads every full array once, chunk by chunk, to check it against the model's checksum
    (:mod:`romdask.online.integrity`; models saved before it: the metadata and the (N,) index
    arrays only); the mesh is read (and checked) on first use of ``.mesh``.
    """
    root = open_model_group(path)
    group = root.get("full")
    keys = set(group.array_keys()) if group is not None else set()
    if not keys:
        raise ValueError(f"{path} holds no full bases; save the model with reduce(...).save(path) "
                         "(or ReducedModel.save(path, full=reduction.full)).")
    verify_full(root, path, sorted(f"full/{key}" for key in keys))

    def lazy(key: str) -> da.Array | None:
        return da.from_zarr(group[key]) if key in keys else None

    def index(key: str) -> np.ndarray | None:
        return group[key][...] if key in keys else None

    gappy = {q: da.from_zarr(group[f"gappy_{q}"]) for q in _GAPPY_COMPONENTS if f"gappy_{q}" in keys}
    return FullBases(str(path), lazy("modes"), lazy("lifting"), gappy, index("ip_points"), lazy("strain"),
                     lazy("lifting_strain"), index("ip_element"), index("ip_local_point"),
                     "mesh" in set(group.group_keys()), lazy("temperature_nodes"), lazy("temperature_weights"),
                     lazy("initial_temperature"))


def _steps(result: OnlineResult, steps: Sequence[int] | slice | None) -> np.ndarray:
    n_t = result.times.size
    index = np.arange(n_t)
    try:
        chosen = index if steps is None else index[steps]
    except IndexError:
        raise ValueError(f"steps {steps!r} out of range for a result of {n_t} output times.") from None
    return np.atleast_1d(chosen)


def reconstruct_displacement(full: FullBases, result: OnlineResult, steps: Any = None) -> da.Array:
    """Full displacement ``u = G a + Psi gamma`` at the chosen output steps, lazily.

    Parameters
    ----------
    full : :func:`open_full` of the model that produced ``result``.
    result : OnlineResult.
    steps : None (every output time), an int sequence, a slice or an int.

    Returns
    -------
    dask array (n_steps, n_dofs) in the store's dof order, chunked like the saved modes along
    dofs (one chunk of steps).

    Raises
    ------
    ValueError
        No modes saved, sizes that do not match the result, or a lifting needed but not saved.

    Notes
    -----
    Nothing is computed here; each output chunk costs one ``(n_steps, n) x (n, rows)`` product.
    """
    if full.modes is None:
        raise ValueError(f"{full.path} has no full/modes; save the model with full modes.")
    chosen = _steps(result, steps)
    if full.modes.shape[1] != result.coordinates.shape[1]:
        raise ValueError(
            f"the saved modes have {full.modes.shape[1]} columns but the result {result.coordinates.shape[1]} "
            "coordinates; reconstruct with the model that produced the result."
        )
    u = da.from_array(result.coordinates[chosen], chunks=-1) @ full.modes.T
    coefficients = result.lifting_coefficients[chosen]
    if coefficients.shape[1]:
        if full.lifting is None or full.lifting.shape[1] != coefficients.shape[1]:
            raise ValueError(
                f"the result has {coefficients.shape[1]} lifting coefficients but {full.path} holds no "
                "matching full/lifting; save the model with reduce(...).save(path)."
            )
        u = u + da.from_array(coefficients, chunks=-1) @ full.lifting.T
    return u


def reconstruct_dual(full: FullBases, result: OnlineResult, quantity: str, steps: Any = None) -> da.Array:
    """Full dual field by Gappy-POD, ``Phi_full g(t)``, at the chosen output steps, lazily.

    Parameters
    ----------
    full : :func:`open_full` of the model that produced ``result``.
    result : OnlineResult (its ``gappy_coefficients``: least squares on the reduced points).
    quantity : "stress" or "p" (cumulated plastic strain).
    steps : None (every output time), an int sequence, a slice or an int.

    Returns
    -------
    dask array ``(n_steps, N, 6)`` for "stress", ``(n_steps, N)`` for "p", in the store's
    ip-position order (``full.ip_points[i]`` is the global point of position ``i``).

    Raises
    ------
    ValueError
        Unknown quantity, basis not saved or not fitted by the solver, or mismatched ranks.
    """
    if quantity not in _GAPPY_COMPONENTS:
        raise ValueError(f"quantity must be one of {sorted(_GAPPY_COMPONENTS)}; got {quantity!r}.")
    basis = full.gappy.get(quantity)
    if basis is None:
        raise ValueError(f"{full.path} has no full/gappy_{quantity}; save the model with full bases.")
    coefficients = result.gappy_coefficients.get(quantity)
    if coefficients is None or coefficients.shape[1] != basis.shape[1]:
        got = None if coefficients is None else coefficients.shape[1]
        raise ValueError(
            f"the result has {got} Gappy coefficients of {quantity!r} but the saved basis {basis.shape[1]} "
            "modes; reconstruct with the model that produced the result."
        )
    chosen = _steps(result, steps)
    field = da.from_array(coefficients[chosen], chunks=-1) @ basis.T
    k = _GAPPY_COMPONENTS[quantity]
    return field.reshape(chosen.size, -1, k) if k > 1 else field


def _point_temperatures(full: FullBases, result: OnlineResult, temperature: Any) -> Any:
    """The scenario's temperatures at every ip position (None for an athermal model)."""
    temperature = result.temperature if temperature is None else temperature
    if not full.thermal:
        if temperature is not None:
            raise ValueError(f"{full.path} is an athermal model; the replay takes no temperatures.")
        return None
    if temperature is None:
        raise ValueError(f"{full.path} is a thermal model: give the scenario's temperatures "
                         "(replay_law(..., temperature=scenario.temperature); a saved result keeps them unless a coefficient "
                         "was a callable).")
    initial = None if full.initial_temperature is None else np.asarray(full.initial_temperature)
    return temperature.at_points(np.asarray(full.temperature_nodes), np.asarray(full.temperature_weights), initial)


def replay_law(full: FullBases, result: OnlineResult, law: Material, steps: Any = None,
               temperature: Any = None) -> dict[str, np.ndarray]:
    """Stress and cumulated plastic strain at EVERY integration point by integrating ``law``
    along the reduced strain history ``eps(t) = E gamma(t) + L a(t)`` (the nonintrusive replay).

    Parameters
    ----------
    full : :func:`open_full` of the model that produced ``result`` (needs ``full/strain``).
    result : OnlineResult.
    law : the constitutive law of the training runs (``model.materials[0][0]`` for a one-law
        model).
    steps : output steps to return (None: all); the law is integrated over every step anyway.
    temperature : thermal models: the scenario's :class:`~romdask.online.ScenarioTemperature`
        (default ``result.temperature``, kept by the solver), mapped to every point by the
        saved temperature operator; increment n gets ``[T_init, T(t_{n-1}), T(t_n)]``.

    Returns
    -------
    ``{"stress": (n_steps, N, 6), "p": (n_steps, N)}`` in the store's ip-position order.

    Raises
    ------
    ValueError
        No saved strains, mismatched sizes, or a point whose local integration failed.

    Notes
    -----
    Gappy-POD (:func:`reconstruct_dual`) rebuilds a field from its values at the reduced points
    within the span of the training snapshots; the replay instead evaluates the same law as the
    HF solver at every point, so its error is only that of the reduced strain history (on the
    plate with a hole: a few times smaller than Gappy's for von Mises, see docs/online.md). The
    law is integrated over the output increments of the result (the online sub-increments are
    not kept), starting from the virgin state. Cost: ``n_t`` law evaluations at N points (the
    parallel numba kernels: ~3e6 points/s for CalculiX's law on 2 cores) and ``8 N (6 n +
    n_state + 36)`` bytes of work memory; no mesh and no cluster needed.
    """
    if full.strain is None:
        raise ValueError(f"{full.path} has no full/strain; save the model with reduce(...).save(path).")
    n = result.coordinates.shape[1]
    n_l = result.lifting_coefficients.shape[1]
    if full.strain.shape[1] != n or (n_l and (full.lifting_strain is None or full.lifting_strain.shape[1] != n_l)):
        raise ValueError(f"the saved strains of {full.path} do not match the result ({n} modes, {n_l} liftings); "
                         "replay with the model that produced the result.")
    E = np.asarray(full.strain)
    L = np.asarray(full.lifting_strain) if n_l else np.zeros((E.shape[0], 0))
    N = E.shape[0] // 6
    chosen = _steps(result, steps)
    out = {"stress": np.zeros((chosen.size, N, 6)), "p": np.zeros((chosen.size, N))}
    state = law.initial_state(N)
    buffers = (np.empty((N, 6)), np.empty((N, 6, 6)), np.empty((N, law.n_state)))
    stress = np.zeros((N, 6))
    where = {int(step): i for i, step in enumerate(chosen)}
    points = _point_temperatures(full, result, temperature)
    T = np.zeros((N, 3))
    if points is not None:
        T[:, 0] = T[:, 2] = points.initial
        work, end = np.zeros(points.patterns.shape[0]), np.zeros(N)
    with solver_threads():  # numba on the laws at every point, one BLAS thread for E @ gamma
        for step in range(result.times.size):
            strain = (E @ result.coordinates[step] + L @ result.lifting_coefficients[step]).reshape(N, 6)
            if points is not None:
                T[:, 1] = T[:, 2]  # T_init before step 0, as the solver's initial equilibrium
                points.fill(float(result.times[step]), end, work)
                T[:, 2] = end
            heated = points is not None and np.any(T[:, 2] != T[:, 0])
            if step > 0 or np.any(strain != 0.0) or heated:  # a load at times[0]: dt = 0, as the solver does
                dt = float(result.times[step] - result.times[step - 1]) if step else 0.0
                stress, _, new_state, failed = law.integrate(strain, state, dt, float(result.times[step]), temperature=T,
                                                             out=buffers)
                if failed:
                    raise ValueError(f"the law failed at {failed} point(s) at t={result.times[step]:.6g} (step {step}).")
                np.copyto(state, new_state)
            if step in where:
                out["stress"][where[step]] = stress
                out["p"][where[step]] = state[:, 0] if law.n_state else 0.0
    return out


def prediction_fields(full: FullBases, result: OnlineResult, law: Material | None = None, *,
                      dual: str = "replay") -> dict[str, Any]:
    """What a user looks at: displacement, stress and cumulated plastic strain everywhere.

    Parameters
    ----------
    full : :func:`open_full` of the model that produced ``result``.
    result : OnlineResult.
    law : the model's law, for ``dual="replay"`` (``model.materials[0][0]``).
    dual : "replay" (default: the law integrated along the reduced strains at every point,
        :func:`replay_law`; the accurate route) or "gappy" (Gappy-POD from the reduced points,
        :func:`reconstruct_dual`; faster, less accurate).

    Returns
    -------
    dict
        ``"displacement"`` lazy (n_t, n_dofs) in the store's dof order; ``"stress"``
        (n_t, N, 6) and ``"p"`` (n_t, N) in the store's ip-position order (``full.ip_points``
        maps positions to global points; dask arrays for Gappy, numpy for the replay).

    Raises
    ------
    ValueError
        An unknown ``dual``, no law for the replay, or bases missing from the model.
    """
    if dual not in ("replay", "gappy"):
        raise ValueError(f"dual must be 'replay' or 'gappy'; got {dual!r}")
    out: dict[str, Any] = {"displacement": reconstruct_displacement(full, result)}
    if dual == "replay":
        if law is None:
            raise ValueError("the law replay needs the model's law (model.materials[0][0])")
        out.update(replay_law(full, result, law))
    else:
        out["stress"] = reconstruct_dual(full, result, "stress")
        out["p"] = reconstruct_dual(full, result, "p") if "p" in full.gappy else None
    return out
