"""The offline pipeline: snapshot store -> :class:`~romdask.online.model.ReducedModel`.

:func:`reduce` chains the building blocks of :mod:`romdask.offline`: load patterns from the runs'
metadata, lifting of the prescribed displacements, POD of the lifted displacements, stress
snapshots (replayed when the store lacks them), ECM on the reduced internal-force integrands,
Gappy-POD bases of the dual quantities with their Q-DEIM points, and the reduced load vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from romdask.fem.quadrature import nodal_force_vector, pressure_vector, quadrature
from romdask.loads import Dirichlet, NodalForce, Pressure
from romdask.online.model import ReducedModel
from romdask.patterns import loads_from_description
from romdask.store import SnapshotStore, open_snapshots

from .ecm import ecm as ecm_global
from .ecm import ecm_subdomains
from .gappy import point_rows, qdeim_points
from .pod import pod
from .replay import replay, strains

__all__ = ["reduce"]

logger = logging.getLogger(__name__)


# ---- load patterns ------------------------------------------------------------------------------


def _signature(dirichlet, loads) -> list:
    """What must agree between runs: names, kinds and dofs / faces (not values or amplitudes)."""
    sig: list = [("dirichlet", bc.name, bc.dofs.tolist()) for bc in dirichlet]
    for load in loads:
        if isinstance(load, NodalForce):
            sig.append(("nodal_force", load.name, np.asarray(load.nodes).tolist(), int(load.component)))
        else:
            sig.append(("pressure", load.name, np.asarray(load.faces).tolist()))
    return sig


def _coefficient(pattern, t: np.ndarray) -> np.ndarray:
    """``value * amplitude(t)``: the factor of the unit pattern at times ``t``."""
    amp = np.ones_like(t) if pattern.amplitude is None else np.asarray(pattern.amplitude(t), np.float64)
    return float(pattern.value) * amp


def _patterns(store: SnapshotStore, names: Sequence[str], all_runs: dict) -> dict[str, tuple]:
    """Run name -> (dirichlet, loads) on the store mesh; all runs must share the patterns."""
    out = {}
    reference = None
    for name in names:
        description = (all_runs[name].get("metadata") or {}).get("loads")
        if description is None:
            raise ValueError(
                f"run {name!r} has no load description; write runs with "
                "metadata={'loads': describe_loads(problem)} (romdask.patterns.describe_loads)."
            )
        dirichlet, loads = loads_from_description(store.layout.mesh, description)
        sig = _signature(dirichlet, loads)
        if reference is None:
            reference = (name, sig)
        elif sig != reference[1]:
            raise ValueError(
                f"run {name!r} has other load patterns (names, kinds or dofs) than run "
                f"{reference[0]!r}; one reduced model needs the same patterns in every training run "
                "(only values and amplitude tables may differ). Reduce the runs separately."
            )
        out[name] = (dirichlet, loads)
    return out


def _lifted(dirichlet_per_run: list[tuple[Dirichlet, ...]]) -> list[int]:
    """Indices of the Dirichlet patterns with a nonzero value in some run (they get a lifting)."""
    return [i for i in range(len(dirichlet_per_run[0])) if any(d[i].value != 0.0 for d in dirichlet_per_run)]


def _lifting_vectors(dirichlet: Sequence[Dirichlet], lifted: list[int], n_dofs: int) -> np.ndarray:
    G = np.zeros((len(lifted), n_dofs))
    for row, i in enumerate(lifted):
        G[row, dirichlet[i].dofs] = 1.0
    overlap = np.flatnonzero(G.sum(axis=0) > 1)
    if overlap.size:
        raise ValueError(
            f"prescribed-displacement patterns overlap on dofs {overlap[:10].tolist()}; the lifting "
            "needs each constrained dof in at most one nonzero pattern. Merge or split the conditions."
        )
    return G


def _unit_load(mesh, load, n_dofs: int) -> np.ndarray:
    if isinstance(load, NodalForce):
        return nodal_force_vector(n_dofs, load.nodes, load.component, 1.0)
    if isinstance(load, Pressure):
        return pressure_vector(mesh, load.faces, 1.0)
    raise TypeError(f"unsupported load {type(load).__name__}; expected NodalForce or Pressure")


# ---- dual quantities ------------------------------------------------------------------------------


def _dual_basis(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """POD basis (n_rows, m) of the columns of ``values.T`` with ``s_i / s_0 > tol``, and s."""
    _, s, vt = np.linalg.svd(values, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return np.zeros((values.shape[1], 0)), s
    m = max(1, int(np.count_nonzero(s / s[0] > tol)))
    return vt[:m].T.copy(), s


def _ecm_integrands(stress: np.ndarray, mode_strain: np.ndarray, lifting_strain: np.ndarray | None,
                    weights: np.ndarray) -> np.ndarray:
    """The ECM rows: component integrands of the modes, then of the lifting vectors.

    The liftings enter because the online reactions are ``g_i^T f_int``. Their rows are scaled
    so that the full integral of each lifting's rows has the norm of an average mode's,
    ``||J_M w|| / sqrt(n_modes)``: the reactions do not cancel and would otherwise dominate the
    relative ECM tolerance and loosen it on the modes' rows.
    """
    J = _component_integrands(stress, mode_strain)
    if lifting_strain is None or lifting_strain.shape[0] == 0:
        return J
    mode_target = np.linalg.norm(J @ weights) / np.sqrt(max(mode_strain.shape[0], 1))
    rows = [J]
    for strain_i in lifting_strain:
        J_i = _component_integrands(stress, strain_i[None])
        target = np.linalg.norm(J_i @ weights)
        rows.append(J_i * (mode_target / target if target > 0 and mode_target > 0 else 1.0))
    return np.concatenate(rows)


def _component_integrands(stress: np.ndarray, mode_strain: np.ndarray) -> np.ndarray:
    """Integrand rows ``(s, j, c)``: ``sigma_s,c eps(psi_j)_c`` per Voigt component c.

    The sum over c is :func:`~romdask.offline.integrand_matrix`'s row ``(s, j)``, whose integral
    (the reduced internal force of snapshot s) vanishes at equilibrium under pure displacement
    loading (the modes vanish on the constrained dofs): a target ``J w ~ 0`` makes a relative
    ECM tolerance meaningless. The component rows do not cancel; integrating them within ``tol``
    bounds the reduced-force error by ``sqrt(6) tol ||J_c w||``.
    """
    n_snap, n_points, _ = stress.shape
    return np.einsum("skc,jkc->sjck", stress, mode_strain, optimize=True).reshape(-1, n_points)


# ---- the pipeline -------------------------------------------------------------------------------


def reduce(
    store_path: str | Path,
    law,
    *,
    tol_pod: float = 1e-6,
    tol_ecm: float = 1e-5,
    product: str | None = "l2",
    gappy_tol: float = 1e-6,
    runs: Sequence[str] | None = None,
    ecm: bool = True,
    ecm_scope: str = "auto",
    pod_method: str = "snapshots",
    return_modes: bool = False,
    return_full: bool = False,
) -> ReducedModel | tuple[ReducedModel, Any]:
    """Build a reduced model from the runs of a snapshot store (offline stage, end to end).

    Parameters
    ----------
    store_path : the snapshot store; every training run carries
        ``metadata={"loads": describe_loads(problem)}``
    law : the constitutive law of every integration point (a romdask material)
    tol_pod : POD truncation, keep modes with ``s_i / s_0 > tol_pod``
    tol_ecm : ECM tolerance on the integrands of the reduced internal forces of the training
        snapshots, split by Voigt component (see Notes)
    product : POD inner product: "l2" (consistent mass) or None (Euclidean)
    gappy_tol : truncation (relative singular value) of the Gappy-POD bases of "stress" and "p"
    runs : training run names (default: every complete run)
    ecm : False keeps every integration point with its full weight (no hyper-reduction; for
        checks); Q-DEIM points are then already present
    ecm_scope : "global" (:func:`~romdask.offline.ecm`), "subdomains"
        (:func:`~romdask.offline.ecm_subdomains`, point blocks = the store's subdomains) or "auto"
        (subdomains when the store has more than one)
    pod_method : passed to :func:`~romdask.offline.pod` ("snapshots", "tsqr", "randomized")
    return_modes : also return the full modes (n_modes, n_dofs) in the store's dof order (for
        ``model.save(path, full_modes=modes.T)``)
    return_full : also return the full bases for the reconstructions, a dict ready for
        ``model.save(path, full=full)``: ``"modes"`` (n_dofs, n), ``"lifting"`` (n_dofs, n_l)
        (the unit lifting vectors; absent without lifting), ``"gappy_stress"``
        (6 n_points_full, m_s) and ``"gappy_p"`` (n_points_full, m_p) in the store's ip-position
        order (components fastest), ``"ip_points"`` (n_points_full,) the global point of each
        position (``layout.ip_points``). Rows = full-space index, columns = basis vectors.
        Exclusive with ``return_modes``.

    Returns
    -------
    ReducedModel (or ``(model, modes)`` with ``return_modes=True``, ``(model, full)`` with
    ``return_full=True``)
        One law for all points. ``point_ids`` are global integration points of the store mesh
        (the ``ip_index`` coordinate of the store's ip fields, ``layout.ip_points[position]``).
        ``metadata["reduce"]`` reports tolerances, singular values, modes, ECM residual and
        points per subdomain, Gappy ranks, training runs and the romdask version. Not saved:
        call ``model.save(path)``.

    Raises
    ------
    ValueError
        A run without load description, runs with different patterns, overlapping nonzero
        Dirichlet patterns, a NaN in the cumulated plastic strain.

    Notes
    -----
    Load patterns and liftings are UNIT patterns: the online coefficient of pattern ``i`` at time
    ``t`` is ``value_i * amplitude_i(t)`` (``metadata["reduce"]["training_loads"]`` keeps each
    run's values and amplitude tables). ``load_vectors[p] = modes @ f_p`` with ``f_p`` the
    nodal force / pressure vector of value 1 (full quadrature, never hyper-reduced).

    Lifting: the simple discontinuous lifting, ``g_i`` = 1 on the dofs of Dirichlet pattern
    ``i`` (those with a nonzero value in some run), 0 elsewhere. The POD runs on
    ``u(t) - sum_i a_i(t) g_i``, which vanishes on every constrained dof, so the modes do.
    ``lifting_modes_strain`` holds the strains of ``g_i`` at the reduced points;
    ``lifting_load`` is stored as zeros: the online solver gets the lifting's internal-force
    contribution through the law at the reduced points (total strain ``E gamma + L a``), so no
    other lifting operator is needed.

    ECM integrands: the rows ``sigma_s,c(x) eps(psi_j)_c(x)`` for every snapshot s, mode or
    lifting vector j (so that the online reactions ``g_i^T f_int`` are integrated too; each
    lifting's rows scaled to the integral norm of an average mode's rows) and Voigt component c (not summed over c: under displacement loading the summed integrals, the
    reduced internal forces at equilibrium, vanish and a relative tolerance on them is
    meaningless). The reduced internal forces of the training snapshots are then integrated with
    error ``<= sqrt(6) tol_ecm ||J_c w||``; ``metadata["reduce"]["ecm_residual"]`` is the
    relative residual on these rows.

    Cost and scale: the POD and the strains are lazy Dask graphs (one task per subdomain);
    the modes, the mode strains (``48 n r_modes n_points`` bytes), the stress snapshots
    (``48 n_snap n_points`` bytes) and the integrand matrix ``J`` (``8 n_snap n_modes
    n_points`` bytes) are gathered in memory, and the Gappy bases come from a dense numpy SVD of
    the ``(n_snap, 6 n_points)`` stress matrix: fine up to some 1e5 points x a few hundred
    snapshots; beyond, compress J (``integrand_matrix(compress_tol=...)``) and use a TSQR.

    References
    ----------
    J. A. Hernandez et al., CMAME 313 (2017) 687-722 (ECM); Z. Drmac, S. Gugercin, SISC 38 (2016)
    (Q-DEIM); F. Casenave et al., arXiv:1812.07228 (the offline/online framework).
    """
    if return_modes and return_full:
        raise ValueError("pass return_modes=True or return_full=True, not both (the full dict holds the modes)")
    if ecm_scope not in ("auto", "global", "subdomains"):
        raise ValueError(f"ecm_scope must be 'auto', 'global' or 'subdomains'; got {ecm_scope!r}")
    if not (tol_pod >= 0 and tol_ecm > 0 and gappy_tol >= 0):
        raise ValueError(f"need tol_pod >= 0, tol_ecm > 0, gappy_tol >= 0; got {tol_pod}, {tol_ecm}, {gappy_tol}")
    store_path = str(Path(store_path))
    store = SnapshotStore.open(store_path, mode="r")
    layout = store.layout
    mesh = layout.mesh
    n_dofs = 3 * mesh.n_nodes
    all_runs = store.runs(complete_only=True)
    names = sorted(all_runs) if runs is None else list(runs)
    missing = [r for r in names if r not in all_runs]
    if missing or not names:
        raise ValueError(f"{store_path}: no complete run(s) {missing or names}; complete runs: {sorted(all_runs)}")

    # 1. load patterns
    patterns = _patterns(store, names, all_runs)
    dirichlet0, loads0 = patterns[names[0]]

    # 4 (first, so that one dataset holds every field). stress snapshots
    ds = open_snapshots(store_path, runs=names)
    replayed = "stress" not in ds
    if replayed:
        logger.info("store has no stress in every run: replaying %s", type(law).__name__)
        status = replay(store_path, law, runs=names)
        failed = {r: s for r, s in status.items() if s.startswith("failed")}
        if failed:
            raise ValueError(f"the law replay failed in runs {failed}; check the law and the runs' increments")
        ds = open_snapshots(store_path, runs=names)
    U = ds.displacement.data
    snap_run = np.asarray(ds.run.values).astype(str)
    snap_time = np.asarray(ds.time.values, np.float64)

    # 2. lifting (unit vectors g_i, coefficients per snapshot from each run's table)
    lifted = _lifted([patterns[r][0] for r in names])
    lifting_names = [dirichlet0[i].name for i in lifted]
    if lifted:
        G_np = _lifting_vectors(dirichlet0, lifted, n_dofs)
        A_np = np.zeros((U.shape[0], len(lifted)))
        for r in names:
            rows = snap_run == r
            for col, i in enumerate(lifted):
                A_np[rows, col] = _coefficient(patterns[r][0][i], snap_time[rows])
        G = da.from_array(G_np, chunks=((len(lifted),), U.chunks[1]))
        A = da.from_array(A_np, chunks=(U.chunks[0], (len(lifted),)))
        U_lifted = U - da.matmul(A, G)
    else:
        G = None
        U_lifted = U

    # 3. POD of the lifted displacements
    basis = pod(U_lifted, product=product, layout=layout, tol=tol_pod, method=pod_method)
    n_modes = basis.n_modes

    # 5. mode / lifting strains, stresses, state: one compute
    lazy = {"modes": basis.modes, "mode_strain": strains(basis.modes, layout), "stress": ds.stress.data}
    if G is not None:
        lazy["lifting_strain"] = strains(G, layout)
    if "state" in ds:
        lazy["p"] = ds.state.data[:, :, 0]
    (got,) = dask.compute(lazy)
    modes, mode_strain, stress = got["modes"], got["mode_strain"], got["stress"]
    n_snap, n_points = stress.shape[:2]

    weights_full = quadrature(mesh).weights[layout.ip_points]
    K = len(layout.ip_offsets) - 1
    report: dict[str, Any] = {
        "tol_pod": tol_pod, "tol_ecm": tol_ecm if ecm else None, "gappy_tol": gappy_tol,
        "product": product, "pod_method": pod_method, "training_runs": names,
        "n_snapshots": int(n_snap), "singular_values": basis.singular_values.tolist(),
        "n_modes": int(n_modes), "stress_replayed": replayed, "n_subdomains": K,
        "n_points_full": int(n_points),
    }
    if ecm:
        J = _ecm_integrands(stress, mode_strain, got.get("lifting_strain"), weights_full)
        report["ecm_integrand_fields"] = f"{n_modes} modes + {len(lifted)} liftings"
        scope = ("subdomains" if K > 1 else "global") if ecm_scope == "auto" else ecm_scope
        if scope == "subdomains":
            cuts = [slice(int(a), int(c)) for a, c in zip(layout.ip_offsets[:-1], layout.ip_offsets[1:])]
            result = ecm_subdomains([J[:, s] for s in cuts], [weights_full[s] for s in cuts], tol=tol_ecm)
        else:
            result = ecm_global(J, weights_full, tol=tol_ecm)
        ecm_points = np.asarray(result.points, np.int64)
        ecm_weights = np.asarray(result.weights, np.float64)
        report.update(ecm_scope=scope, ecm_residual=float(result.residual), ecm_points=int(ecm_points.size),
                      points_per_subdomain=[int(c) for c in np.bincount(
                          np.searchsorted(layout.ip_offsets, ecm_points, side="right") - 1, minlength=K)])
        logger.info("ECM (%s): %d points, residual %.3g", scope, ecm_points.size, result.residual)
    else:
        ecm_points = np.arange(n_points, dtype=np.int64)
        ecm_weights = weights_full
        report.update(ecm_scope=None, ecm_residual=0.0, ecm_points=int(n_points))

    # 6. Gappy-POD bases of the dual quantities and their Q-DEIM points
    dual: dict[str, tuple[np.ndarray, int]] = {}
    basis_s, s_s = _dual_basis(stress.reshape(n_snap, -1), gappy_tol)
    dual["stress"] = (basis_s, 6)
    report["gappy_singular_values"] = {"stress": s_s.tolist()}
    if "p" in got:
        p = got["p"]
        if not np.all(np.isfinite(p)):
            raise ValueError("the store's state[:, :, 0] (cumulated plastic strain p) holds NaN; "
                             "re-run the replay or check the solver's state output.")
        basis_p, s_p = _dual_basis(p, gappy_tol)
        dual["p"] = (basis_p, 1)
        report["gappy_singular_values"]["p"] = s_p.tolist()
    extra = [qdeim_points(b, k) for b, k in dual.values() if b.shape[1]]
    points = np.union1d(ecm_points, np.concatenate(extra)) if extra else np.sort(ecm_points)
    weights = np.zeros(points.size)
    weights[np.searchsorted(points, ecm_points)] = ecm_weights
    report["qdeim_points_added"] = int(points.size - ecm_points.size)
    report["gappy_ranks"] = {q: int(b.shape[1]) for q, (b, _) in dual.items()}
    gappy = {q: b[point_rows(points, k)] for q, (b, k) in dual.items()}

    # 7. reduced loads (unit patterns, full quadrature)
    F = np.array([_unit_load(mesh, load, n_dofs) for load in loads0]).reshape(len(loads0), n_dofs)
    load_vectors = F @ modes.T
    report["training_loads"] = {
        r: {bc.name: {
            "value": float(bc.value),
            "amplitude": None if bc.amplitude is None else
            {"times": bc.amplitude.times.tolist(), "values": bc.amplitude.values.tolist()}}
            for bc in (*patterns[r][0], *patterns[r][1])}
        for r in names
    }
    report["load_coefficients"] = "value * amplitude(t) of each run's pattern (unit load vectors and liftings)"

    # 8. the model
    lifting = None
    if lifted:
        lifting = {
            "lifting_modes_strain": got["lifting_strain"][:, points, :].transpose(1, 2, 0),
            "lifting_names": tuple(lifting_names),
            "lifting_load": np.zeros((len(lifted), n_modes)),
        }
    from romdask import __version__

    report["romdask_version"] = __version__
    model = ReducedModel(
        modes_strain=mode_strain[:, points, :].transpose(1, 2, 0),
        weights=weights,
        point_ids=layout.ip_points[points],
        materials=((law, np.arange(points.size)),),
        load_vectors=load_vectors,
        load_names=tuple(load.name for load in loads0),
        initial_state=law.initial_state(points.size),
        lifting=lifting,
        gappy=gappy,
        metadata={"reduce": report},
    )
    if return_full:
        full = {"modes": modes.T, "gappy_stress": basis_s, "ip_points": np.asarray(layout.ip_points, np.int64)}
        if lifted:
            full["lifting"] = G_np.T
        if "p" in dual:
            full["gappy_p"] = dual["p"][0]
        return model, full
    return (model, modes) if return_modes else model
