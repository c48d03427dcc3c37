"""The offline pipeline: snapshot store -> :class:`~romdask.online.model.ReducedModel`.

:func:`reduce` chains the building blocks of :mod:`romdask.offline`: load patterns from the runs'
metadata, lifting of the prescribed displacements, POD of the lifted displacements, stress
snapshots (replayed when the store lacks them), ECM on the reduced internal-force integrands,
Gappy-POD bases of the dual quantities with their Q-DEIM points, and the reduced load vectors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg

from romdask.fem.quadrature import nodal_force_vector, pressure_vector, quadrature
from romdask.problem.loads import Dirichlet, NodalForce, Pressure
from romdask.online.model import ReducedModel
from romdask.problem.patterns import loads_from_description
from romdask.store import SnapshotStore, open_snapshots

from ._blas import one_blas_thread
from .ecm import ecm as ecm_global
from .ecm import ecm_subdomains_graph
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
        metadata = all_runs[name].get("metadata") or {}
        description = metadata.get("loads")
        if description is None and metadata.get("problem_error"):
            raise ValueError(
                f"run {name!r} has no load description: romdask could not read its CalculiX deck as a "
                f"problem when it was ingested: {metadata['problem_error']}"
            )
        if description is None:
            raise ValueError(
                f"run {name!r} has no load description; write runs with "
                "metadata={'loads': describe_loads(problem)} (romdask.problem.patterns.describe_loads)."
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


@one_blas_thread
def _integrand_moments(stress: np.ndarray, fields: np.ndarray, weights: np.ndarray):
    """Per-subdomain pieces of the row compression: the stress Gram matrix of each Voigt
    component ``(6, n_snap, n_snap)`` and the full integrals of the component rows
    ``(n_snap, n_fields, 6)``."""
    stress = np.asarray(stress, np.float64)
    gram = np.einsum("skc,tkc->cst", stress, stress, optimize=True)
    b = np.einsum("skc,jkc,k->sjc", stress, np.asarray(fields, np.float64), np.asarray(weights).ravel(),
                  optimize=True)
    return gram, b


@one_blas_thread
def _integrand_transform(moments: list, n_modes: int, rows: str, compress_tol: float) -> dict:
    """Row scaling and compression shared by every subdomain (small; one task).

    Field scales: 1 for the modes; each lifting scaled so that the integrals of its component
    rows have the norm of an average mode's. Compression: eigenvectors of the stress Gram
    matrix (per component for ``rows="component"``, summed over the components for
    ``rows="summed"``), the dropped eigenvalues summing to at most ``compress_tol^2`` times the
    trace (relative Frobenius error of the stress snapshots).
    """
    gram = sum(m[0] for m in moments)
    b = sum(m[1] for m in moments)
    n_fields = b.shape[1]
    scales = np.ones(n_fields)
    mode_target = np.linalg.norm(b[:, :n_modes]) / np.sqrt(max(n_modes, 1))
    for i in range(n_modes, n_fields):
        target = np.linalg.norm(b[:, i])
        if target > 0 and mode_target > 0:
            scales[i] = mode_target / target
    grams = [gram.sum(axis=0)] if rows == "summed" else list(gram)
    eig = [scipy.linalg.eigh(g, check_finite=False) for g in grams]
    lam = np.concatenate([np.maximum(e[0], 0.0) for e in eig])
    order = np.argsort(lam)  # drop the smallest eigenvalues while their sum allows
    dropped = np.cumsum(lam[order]) <= compress_tol**2 * lam.sum()
    keep = np.ones(lam.size, bool)
    keep[order[dropped]] = False
    bases, start = [], 0
    for values, vectors in eig:
        k = keep[start:start + values.size]
        start += values.size
        bases.append(vectors[:, k][:, ::-1].copy())  # largest first
    return {"rows": rows, "bases": bases, "scales": scales, "n_rows": sum(u.shape[1] for u in bases) * n_fields}


@one_blas_thread
def _integrand_block(stress: np.ndarray, fields: np.ndarray, transform: dict) -> np.ndarray:
    """Compressed integrand rows of one block of points ``(n_rows, n_points_k)``.

    ``rows="summed"``: rows ``(i, j)`` = ``sum_c (U^T sigma)_i,c eps_j,c`` with U the kept
    eigenvectors of the stress Gram matrix; ``rows="component"``: rows ``(c, i, j)`` =
    ``(U_c^T sigma_c)_i eps_j,c``. With all eigenvectors, J_compressed = Q^T J for an
    orthogonal Q: the same residual norms as the snapshot rows.
    """
    stress = np.asarray(stress, np.float64)
    fields = np.asarray(fields, np.float64) * transform["scales"][:, None, None]
    n_points = stress.shape[1]
    if transform["rows"] == "summed":
        T = np.einsum("si,skc->ikc", transform["bases"][0], stress, optimize=True)
        return np.einsum("ikc,jkc->ijk", T, fields, optimize=True).reshape(-1, n_points)
    out = []
    for c, U in enumerate(transform["bases"]):
        T = U.T @ stress[:, :, c]
        out.append((T[:, None, :] * fields[None, :, :, c]).reshape(-1, n_points))
    return np.concatenate(out)


#: stress compression of the ECM rows (relative Frobenius error of the stress snapshots)
_ECM_COMPRESS = 1e-2  # times tol_ecm


@one_blas_thread
def _global_ecm(J_blocks, weights, tol):
    return ecm_global(np.hstack(J_blocks), weights, tol=tol)


def _ecm_graph(stress, mode_strain, lifting_strain, weights, ip_offsets, n_modes: int, tol: float, scope: str,
               rows: str = "summed"):
    """Lazy ECM on integrand blocks built on the workers, one task per subdomain: a Delayed
    computing to ``(ECMResult, transform)``. Only Gram matrices, integrals, the selected
    columns and the result travel."""
    fields = mode_strain if lifting_strain is None else da.concatenate([mode_strain, lifting_strain], axis=0)
    cuts = [slice(int(a), int(c)) for a, c in zip(ip_offsets[:-1], ip_offsets[1:])]
    pieces = [(stress[:, c], fields[:, c], weights[c]) for c in cuts]
    moments = [dask.delayed(_integrand_moments, pure=True)(*p) for p in pieces]
    transform = dask.delayed(_integrand_transform, pure=True)(moments, n_modes, rows, _ECM_COMPRESS * tol)
    J_blocks = [dask.delayed(_integrand_block, pure=True)(S, F, transform) for S, F, _ in pieces]
    if scope == "subdomains":
        result = ecm_subdomains_graph(J_blocks, [w for *_, w in pieces], tol=tol)
    else:
        result = dask.delayed(_global_ecm, pure=True)(J_blocks, weights, tol)
    return dask.delayed(tuple, pure=True)([result, transform])


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
    ecm_rows: str = "summed",
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
    tol_ecm : ECM tolerance, relative, on the reduced internal forces and reactions of the
        training snapshots (see Notes)
    product : POD inner product: "l2" (consistent mass) or None (Euclidean)
    gappy_tol : truncation (relative singular value) of the Gappy-POD bases of "stress" and "p"
    runs : training run names (default: every complete run)
    ecm : False keeps every integration point with its full weight (no hyper-reduction; for
        checks); Q-DEIM points are then already present
    ecm_scope : "global" (:func:`~romdask.offline.ecm`), "subdomains"
        (:func:`~romdask.offline.ecm_subdomains`, point blocks = the store's subdomains) or "auto"
        (subdomains when the store has more than one)
    ecm_rows : "summed" (one integrand per snapshot and mode or lifting: the reduced forces) or
        "component" (one per Voigt component too: 6x the rows, 2.5-4.5x the points, more robust
        when very few modes and snapshots cap the summed rows' rank; see Notes)
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

    ECM integrands: the rows ``sigma_s(x) : eps(g_j)(x)`` for every stress snapshot s and
    every mode or lifting vector ``g_j``: their integrals are the reduced internal forces
    ``psi_j^T f_int`` and the reactions ``g_i^T f_int`` of the training snapshots, exactly what
    the online Newton evaluates. Each lifting's rows are scaled so that its component-wise
    integrals have the norm of an average mode's. The tolerance is relative to the norm of all
    these integrals: under displacement loading the modes' integrals vanish at equilibrium and
    the reactions set the force scale; under applied loads the reduced external forces do.
    ``metadata["reduce"]["ecm_residual"]`` is the relative residual on these rows.

    Earlier versions kept one row per Voigt component c (``sigma_s,c eps_j,c``, 6x more rows)
    because, without the lifting rows, the summed integrals all vanished under pure
    displacement loading. With the reactions in J the summed rows have a meaningful target,
    and they need 2.5-4.5x fewer points for the same online accuracy (plate, two training runs
    0.004 / 0.008 mm x 1 cycle, prediction 0.006 mm over 2 cycles vs the HF solver, tol_ecm
    1e-3 .. 1e-6): 396 nodes, 134-192 points (summed) vs 307-610 (component); 1,105 nodes,
    137-209 vs 429-764; 10,360 nodes (tol 1e-5) 202 vs 950. The displacement error (1.1e-4,
    1.7e-4) and the von Mises error (0.6-0.7 %, 0.8 % of max) are the same for both designs
    and every tolerance, even 1e-2 (105 points): the POD dominates. Only on the 126-node test
    plate (4-5 modes) do the summed rows saturate: their rank caps the selection at 21-31
    points, and the online error is 1.0-1.25x (displacement loading, 23 points) or 1.1-3x
    (pressure, 22-29 points) the full-quadrature one, where the component rows reach it with
    104-157 points; per point the summed rows stay ahead there too (pressure: 4.8e-5 with 28
    points vs 5.7e-5 with 79). ``ecm_rows="component"`` keeps the per-component rows.

    Row compression: the rows are rotated by the eigenvectors of the stress snapshots' Gram
    matrix ``sum_k sigma_k sigma_k^T`` (summed over the subdomains, a tiny matrix); rows
    ``(i, j) = sum_c (U^T sigma)_i,c eps(g_j)_c``. With every eigenvector this is an orthogonal
    transform of the snapshot rows (same residual norms, same points); the eigenvectors whose
    eigenvalues sum to at most ``(1e-2 tol_ecm)^2`` of the trace are dropped, which leaves
    about ``n_stress_modes x (n_modes + n_liftings)`` rows instead of ``n_snap x (n_modes +
    n_liftings)`` (e.g. 228 rows instead of 984 on the 1,105-node plate).

    Per subdomain (``ecm_scope="subdomains"``) the local tolerance is the guaranteed
    ``tol ||b|| / sum_k ||b_k||`` (:func:`~romdask.offline.ecm_subdomains`); the global residual
    then lands 5-20x below ``tol_ecm``. Measured alternative: ``local_tol = tol_ecm`` plus the
    global NNLS correction saves 10-15 % of the points (1,105 nodes: 166 vs 181; 10,360: 179
    vs 202) but exceeds ``tol_ecm`` (by 1-27 % on 1,105 nodes), so it is not the default.

    Cost and scale: the POD, the strains and the ECM are lazy Dask graphs (one task per
    subdomain). The integrand blocks are built on the workers from the stress and strain blocks
    of each subdomain; only the stress Gram matrices and integrals (``n_snap^2``), the selected
    columns of J and the ECM results travel (the ``"global"`` scope gathers the compressed J in
    one task); the graph of the 1,105-node case is 170 kB. Measured, ``tol_ecm=1e-5``, 2 cores,
    plate, 2 runs x 1 cycle, ECM seconds summed over the subdomain tasks: 396 nodes 180 points,
    0.2 s (before: 504 points, ~60 s of a 72 s reduce); 1,105 nodes 181 points, 0.7 s;
    10,360 nodes (69,984 points, 82 snapshots, 11 modes, 4 subdomains) 202 points, 1.7 s,
    reduce 12-14 s in all (threads or a 2-worker LocalCluster; ``"global"``: 199 points,
    4 s). The modes, the mode strains (``48 n r_modes n_points`` bytes) and the stress
    snapshots (``48 n_snap n_points`` bytes) are still gathered in the driver for the Gappy
    bases (a dense numpy SVD of the ``(n_snap, 6 n_points)`` stress matrix) and the model.

    References
    ----------
    J. A. Hernandez et al., CMAME 313 (2017) 687-722 (ECM); Z. Drmac, S. Gugercin, SISC 38 (2016)
    (Q-DEIM); F. Casenave et al., arXiv:1812.07228 (the offline/online framework).
    """
    if return_modes and return_full:
        raise ValueError("pass return_modes=True or return_full=True, not both (the full dict holds the modes)")
    if ecm_scope not in ("auto", "global", "subdomains"):
        raise ValueError(f"ecm_scope must be 'auto', 'global' or 'subdomains'; got {ecm_scope!r}")
    if ecm_rows not in ("summed", "component"):
        raise ValueError(f"ecm_rows must be 'summed' or 'component'; got {ecm_rows!r}")
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
    ds = open_snapshots(store_path, runs=names, row_chunks="subdomain")
    replayed = "stress" not in ds
    if replayed:
        logger.info("store has no stress in every run: replaying %s", type(law).__name__)
        status = replay(store_path, law, runs=names)
        failed = {r: s for r, s in status.items() if s.startswith("failed")}
        if failed:
            raise ValueError(f"the law replay failed in runs {failed}; check the law and the runs' increments")
        ds = open_snapshots(store_path, runs=names, row_chunks="subdomain")
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
    basis = pod(U_lifted, product=product, layout=store_path, tol=tol_pod, method=pod_method)
    n_modes = basis.n_modes

    # 5. mode / lifting strains, stresses, state and the ECM: one compute
    weights_full = quadrature(mesh).weights[layout.ip_points]
    K = len(layout.ip_offsets) - 1
    mode_strain_lazy = strains(basis.modes, store_path)  # sub-meshes read inside the tasks
    lazy = {"modes": basis.modes, "mode_strain": mode_strain_lazy, "stress": ds.stress.data}
    if G is not None:
        lazy["lifting_strain"] = strains(G, store_path)
    if "state" in ds:
        lazy["p"] = ds.state.data[:, :, 0]
    scope = ("subdomains" if K > 1 else "global") if ecm_scope == "auto" else ecm_scope
    ecm_graph = None
    if ecm:
        ecm_graph = _ecm_graph(ds.stress.data, mode_strain_lazy, lazy.get("lifting_strain"), weights_full,
                               layout.ip_offsets, n_modes, tol_ecm, scope, ecm_rows)
    t0 = time.perf_counter()
    got, ecm_out = dask.compute(lazy, ecm_graph)
    logger.info("strains, stresses%s: %.1f s", " and ECM" if ecm else "", time.perf_counter() - t0)
    modes, mode_strain, stress = got["modes"], got["mode_strain"], got["stress"]
    n_snap, n_points = stress.shape[:2]

    report: dict[str, Any] = {
        "tol_pod": tol_pod, "tol_ecm": tol_ecm if ecm else None, "gappy_tol": gappy_tol,
        "product": product, "pod_method": pod_method, "training_runs": names,
        "n_snapshots": int(n_snap), "singular_values": basis.singular_values.tolist(),
        "n_modes": int(n_modes), "stress_replayed": replayed, "n_subdomains": K,
        "n_points_full": int(n_points),
    }
    if ecm:
        result, transform = ecm_out
        report["ecm_integrand_fields"] = f"{n_modes} modes + {len(lifted)} liftings"
        report.update(ecm_rows=f"{ecm_rows} x {transform['n_rows']}", ecm_time=float(result.time))
        ecm_points = np.asarray(result.points, np.int64)
        ecm_weights = np.asarray(result.weights, np.float64)
        report.update(ecm_scope=scope, ecm_residual=float(result.residual), ecm_points=int(ecm_points.size),
                      points_per_subdomain=[int(c) for c in np.bincount(
                          np.searchsorted(layout.ip_offsets, ecm_points, side="right") - 1, minlength=K)])
        logger.info("ECM (%s, %s rows): %d points, residual %.3g, %.1f s in the ECM tasks", scope,
                    report["ecm_rows"], ecm_points.size, result.residual, result.time)
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
        full = {"modes": modes.T, "gappy_stress": basis_s, "ip_points": np.asarray(layout.ip_points, np.int64),
                "strain": mode_strain.transpose(1, 2, 0).reshape(6 * n_points, n_modes)}
        if lifted:
            full["lifting"] = G_np.T
            full["lifting_strain"] = got["lifting_strain"].transpose(1, 2, 0).reshape(6 * n_points, len(lifted))
        if "p" in dual:
            full["gappy_p"] = dual["p"][0]
        return model, full
    return (model, modes) if return_modes else model
