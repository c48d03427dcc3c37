"""The hyper-reduction stage: ECM on the integrands of the reduced internal forces and reactions,
built on the workers one subdomain at a time.

The integrand rows ``sigma_s(x) : eps(g_j)(x)`` (every stress snapshot s, every mode or lifting
g_j) are never formed as one matrix: each subdomain task computes the stress Gram matrix and the
integrals of its points (:func:`integrand_moments`), one small task turns the summed moments into
a row scaling and compression (:func:`integrand_transform`), and each subdomain task then builds
its compressed block of rows (:func:`integrand_block`) for the ECM. Only Gram matrices, integrals,
the selected columns and the result travel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg
from dask.delayed import Delayed

from romdask.threads import aligned, one_blas_thread
from .ecm import ECMResult, ecm, ecm_subdomains_graph

__all__ = [
    "Hyperreduction",
    "full_quadrature",
    "hyperreduce",
    "integrand_block",
    "integrand_moments",
    "integrand_transform",
]

#: stress compression of the ECM rows (relative Frobenius error of the stress snapshots)
ECM_COMPRESSION = 1e-2  # times tol_ecm


@dataclass(frozen=True, eq=False)
class Hyperreduction:
    """A reduced quadrature of the store's integration points (:func:`hyperreduce`).

    Attributes
    ----------
    points : (r_ecm,) int64 positions in the store's ip-field order (``layout.ip_points[points]``
        are the global points), sorted
    weights : (r_ecm,) positive weights
    report : JSON summary: ``ecm_scope`` (None for the full quadrature), ``ecm_residual``,
        ``ecm_points``, and for an ECM ``ecm_integrand_fields``, ``ecm_rows``, ``ecm_time``,
        ``points_per_subdomain``
    """

    points: np.ndarray
    weights: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)


def full_quadrature(weights: np.ndarray) -> Hyperreduction:
    """Every point with its full weight (no hyper-reduction; for checks)."""
    weights = np.asarray(weights, np.float64)
    return Hyperreduction(np.arange(weights.size, dtype=np.int64), weights,
                          {"ecm_scope": None, "ecm_residual": 0.0, "ecm_points": int(weights.size)})


def _components_first(values) -> np.ndarray:
    """(n, n_points, 6) -> a C-contiguous float64 copy (6, n, n_points).

    Every product below is then a 2-D BLAS product of aligned C-contiguous matrices (or of their
    transposes). ``np.einsum(..., optimize=True)`` handed ``matmul`` views with no unit stride:
    numpy's own loop for aligned inputs, BLAS on a copy for unaligned ones (arrays deserialized
    by distributed), so the ECM weights differed in their last bits between runs on a cluster.
    """
    return aligned(np.asarray(values, np.float64).transpose(2, 0, 1))


@one_blas_thread
def integrand_moments(stress: np.ndarray, fields: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-subdomain pieces of the row compression.

    Parameters
    ----------
    stress : (n_snap, n_points_k, 6) stress snapshots of a block of points
    fields : (n_fields, n_points_k, 6) strains of the modes, then of the liftings
    weights : (n_points_k,) full quadrature weights

    Returns
    -------
    gram : (6, n_snap, n_snap) the stress Gram matrix of each Voigt component
    integrals : (n_snap, n_fields, 6) the full integrals of the component rows

    Notes
    -----
    ``O(n_snap^2 n_points_k)`` flops; the outputs do not grow with the mesh. One BLAS product per
    component on C-contiguous copies (see :func:`_components_first`).
    """
    sigma = _components_first(stress)  # (6, n_snap, n_points_k)
    weighted = _components_first(fields) * np.asarray(weights, np.float64).ravel()
    gram = np.stack([s @ s.T for s in sigma])
    b = np.stack([s @ f.T for s, f in zip(sigma, weighted)], axis=-1)
    return gram, b


@one_blas_thread
def integrand_transform(moments: Sequence[tuple[np.ndarray, np.ndarray]], n_modes: int, rows: str,
                        compress_tol: float) -> dict[str, Any]:
    """Row scaling and compression shared by every subdomain (small; one task).

    Parameters
    ----------
    moments : :func:`integrand_moments` of every block of points
    n_modes : the first ``n_modes`` fields are modes, the others liftings
    rows : "summed" or "component" (see :func:`integrand_block`)
    compress_tol : relative Frobenius error allowed on the stress snapshots

    Returns
    -------
    dict
        ``rows``, ``bases`` (kept eigenvectors, largest first: one matrix for "summed", one per
        component for "component"), ``scales`` (n_fields,), ``n_rows``.

    Notes
    -----
    Field scales: 1 for the modes; each lifting scaled so that the integrals of its component
    rows have the norm of an average mode's. Compression: eigenvectors of the stress Gram
    matrix (per component for ``rows="component"``, summed over the components for
    ``rows="summed"``), the dropped eigenvalues summing to at most ``compress_tol^2`` times the
    trace. Cost: eigh of ``n_snap x n_snap`` matrices.
    """
    gram = sum(aligned(m[0]) for m in moments)  # in subdomain order
    b = sum(aligned(m[1]) for m in moments)
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
def integrand_block(stress: np.ndarray, fields: np.ndarray, transform: dict[str, Any]) -> np.ndarray:
    """Compressed integrand rows of one block of points ``(n_rows, n_points_k)``.

    ``rows="summed"``: rows ``(i, j)`` = ``sum_c (U^T sigma)_i,c eps_j,c`` with U the kept
    eigenvectors of the stress Gram matrix; ``rows="component"``: rows ``(c, i, j)`` =
    ``(U_c^T sigma_c)_i eps_j,c``. With all eigenvectors, J_compressed = Q^T J for an
    orthogonal Q: the same residual norms as the snapshot rows.
    """
    sigma = _components_first(stress)  # (6, n_snap, n_points_k)
    eps = _components_first(fields) * transform["scales"][None, :, None]  # (6, n_fields, n_points_k)
    n_points = sigma.shape[2]
    if transform["rows"] == "summed":
        basis_t = aligned(transform["bases"][0].T)
        out = np.zeros((basis_t.shape[0], eps.shape[1], n_points))
        for s, e in zip(sigma, eps):  # components in order 0..5
            out += (basis_t @ s)[:, None, :] * e[None, :, :]
        return out.reshape(-1, n_points)
    out = []
    for U, s, e in zip(transform["bases"], sigma, eps):
        T = aligned(U.T) @ s
        out.append((T[:, None, :] * e[None, :, :]).reshape(-1, n_points))
    return np.concatenate(out)


@one_blas_thread
def _global_ecm(J_blocks, weights, tol, initial=None) -> ECMResult:
    return ecm(np.hstack(J_blocks), weights, tol=tol, initial=initial, eliminate=True)


def _result(out: tuple[ECMResult, dict[str, Any]], fields: str, scope: str, ip_offsets: np.ndarray) -> Hyperreduction:
    result, transform = out
    points = np.asarray(result.points, np.int64)
    n_subdomains = len(ip_offsets) - 1
    per_subdomain = np.bincount(np.searchsorted(ip_offsets, points, side="right") - 1, minlength=n_subdomains)
    report = {"ecm_integrand_fields": fields, "ecm_rows": f"{transform['rows']} x {transform['n_rows']}",
              "ecm_time": float(result.time), "ecm_scope": scope, "ecm_residual": float(result.residual),
              "ecm_points": int(points.size), "points_per_subdomain": [int(c) for c in per_subdomain]}
    return Hyperreduction(points, np.asarray(result.weights, np.float64), report)


def hyperreduce(
    stress: da.Array,
    mode_strain: da.Array,
    lifting_strain: da.Array | None,
    weights: np.ndarray,
    ip_offsets: np.ndarray,
    *,
    tol: float = 1e-5,
    scope: str = "subdomains",
    rows: str = "summed",
    initial: np.ndarray | None = None,
) -> Delayed:
    """Lazy ECM on the reduced internal-force and reaction integrands, one task per subdomain.

    Parameters
    ----------
    stress : (n_snap, N, 6) stress snapshots, points in the store's ip-field order, one block
        per subdomain along the points
    mode_strain : (n, N, 6) strains of the modes, chunked alike
    lifting_strain : (n_l, N, 6) strains of the unit liftings, or None
    weights : (N,) full quadrature weights in the same order
    ip_offsets : (K + 1,) subdomain k's points are ``ip_offsets[k]:ip_offsets[k + 1]``
    tol : relative tolerance on the integrals of the rows
    scope : "subdomains" (:func:`~romdask.offline.ecm_subdomains_graph`, point blocks = the
        subdomains) or "global" (:func:`~romdask.offline.ecm` on the gathered compressed rows)
    rows : "summed" (one row per snapshot and mode or lifting: the reduced forces) or
        "component" (one per Voigt component too)
    initial : warm start, positions in the ip-field order (e.g. the previous model's ECM
        points after an enrichment of the basis)

    Returns
    -------
    dask.delayed.Delayed
        Computes to a :class:`Hyperreduction`; nothing is computed here.

    Raises
    ------
    ValueError
        Unknown ``scope`` or ``rows``.

    Notes
    -----
    The integrand blocks are built on the workers from the stress and strain blocks of each
    subdomain; only the stress Gram matrices and integrals (``n_snap^2``), the selected columns
    and the result travel (``"global"`` gathers the compressed rows in one task). The rows are
    rotated by the eigenvectors of the stress Gram matrix, dropping ``(1e-2 tol)^2`` of its
    trace (:func:`integrand_transform`). Measurements: docs/offline.md.

    References
    ----------
    J. A. Hernandez et al., CMAME 313 (2017) 687-722 (ECM); F. Casenave et al.,
    arXiv:1812.07228 (distributed hyper-reduction).
    """
    if scope not in ("global", "subdomains"):
        raise ValueError(f"scope must be 'global' or 'subdomains'; got {scope!r}")
    if rows not in ("summed", "component"):
        raise ValueError(f"ecm_rows must be 'summed' or 'component'; got {rows!r}")
    n_modes = mode_strain.shape[0]
    n_liftings = 0 if lifting_strain is None else lifting_strain.shape[0]
    fields = mode_strain if lifting_strain is None else da.concatenate([mode_strain, lifting_strain], axis=0)
    cuts = [slice(int(a), int(c)) for a, c in zip(ip_offsets[:-1], ip_offsets[1:])]
    pieces = [(stress[:, c], fields[:, c], weights[c]) for c in cuts]
    moments = [dask.delayed(integrand_moments, pure=True)(*p) for p in pieces]
    transform = dask.delayed(integrand_transform, pure=True)(moments, n_modes, rows, ECM_COMPRESSION * tol)
    J_blocks = [dask.delayed(integrand_block, pure=True)(S, F, transform) for S, F, _ in pieces]
    if scope == "subdomains":
        result = ecm_subdomains_graph(J_blocks, [w for *_, w in pieces], tol=tol, initial=initial)
    else:
        extra = () if initial is None else (np.asarray(initial, np.int64),)
        result = dask.delayed(_global_ecm, pure=True)(J_blocks, weights, tol, *extra)
    out = dask.delayed(tuple, pure=True)([result, transform])
    label = f"{n_modes} modes + {n_liftings} liftings"
    return dask.delayed(_result, pure=True)(out, label, scope, np.asarray(ip_offsets, np.int64))
