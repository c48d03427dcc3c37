"""Q-DEIM point selection and Gappy-POD reconstruction of dual quantities.

A dual quantity (stress, cumulated plastic strain) lives at the integration points; its POD
basis ``Phi`` (n_points * n_components, r) is known offline. Online it is only evaluated at the
reduced points; :class:`GappyPOD` fits the basis coefficients by least squares on those rows,
reconstructs the full field and gives the relative fit residual used as an error indicator.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.linalg

__all__ = ["qdeim", "qdeim_points", "GappyPOD", "gappy_pod", "point_rows"]


def _check_basis(basis) -> np.ndarray:
    basis = np.asarray(basis, dtype=np.float64)
    if basis.ndim != 2 or basis.shape[1] == 0:
        raise ValueError(f"basis must be 2-D (n_rows, n_modes) with n_modes >= 1; got {basis.shape}")
    if basis.shape[1] > basis.shape[0]:
        raise ValueError(f"basis has more modes ({basis.shape[1]}) than rows ({basis.shape[0]})")
    return basis


def _pivots(rows_t: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` pivots of a column-pivoted QR of ``rows_t`` (r, n)."""
    _, piv = scipy.linalg.qr(rows_t, mode="r", pivoting=True, check_finite=False)
    return piv[:k].astype(np.int64)


def qdeim(basis: np.ndarray, blocks: np.ndarray | None = None) -> np.ndarray:
    """Q-DEIM row selection: the first ``r`` pivots of a column-pivoted QR of ``basis^T``.

    Parameters
    ----------
    basis : ndarray, shape (n, r)
        Basis with linearly independent columns (need not be orthonormal).
    blocks : optional row bounds ``0 = b_0 < b_1 < ... < b_k = n`` (e.g. the subdomains' rows):
        the selection is then a tournament -- each block's first ``r`` pivots are the
        candidates, and the pivoted QR of the candidate rows picks the ``r`` rows -- so that no
        copy of the whole basis is made (the pivoted QR of one block at a time).

    Returns
    -------
    ndarray of int64, shape (r,)
        Selected rows, sorted.

    Notes
    -----
    Cost of the pivoted QR of the ``(r, n)`` matrix: ``O(n r^2)``, and about six times its size
    in memory (scipy's ``qr(pivoting=True)``, measured); by blocks, six times the largest block. Guarantee (Drmac &
    Gugercin): for orthonormal ``basis``, ``||basis[idx]^-1||_2 <= sqrt(n - r + 1) * O(2^r)``, in
    practice ``O(sqrt(n r))`` -- the interpolation error is at most that factor times the best
    approximation error. The tournament keeps the first pick (the row of largest norm is the
    first pivot of its block); its later picks can differ, with bounds of the same kind
    (tournament pivoting, Demmel et al. 2015). One block: the plain selection.

    References
    ----------
    Z. Drmac, S. Gugercin, "A new selection operator for the discrete empirical interpolation
    method -- improved a priori error bound and extensions", SIAM J. Sci. Comput. 38(2) (2016)
    A631-A648. J. Demmel, L. Grigori, M. Gu, H. Xiang, "Communication avoiding rank revealing QR
    factorization with column pivoting", SIAM J. Matrix Anal. Appl. 36(1) (2015) 55-89.
    """
    basis = _check_basis(basis)
    r = basis.shape[1]
    bounds = np.asarray([0, basis.shape[0]] if blocks is None else blocks, np.int64)
    if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or bounds[-1] != basis.shape[0] or np.any(np.diff(bounds) <= 0):
        raise ValueError(f"blocks must rise strictly from 0 to {basis.shape[0]}; got {bounds.tolist()}")
    if bounds.size == 2:
        return np.sort(_pivots(basis.T, r))
    candidates = np.concatenate([lo + _pivots(basis[lo:hi].T, min(r, hi - lo))
                                 for lo, hi in itertools.pairwise(bounds)])
    return np.sort(candidates[_pivots(basis[candidates].T, r)])


def qdeim_points(basis: np.ndarray, n_components: int, blocks: np.ndarray | None = None) -> np.ndarray:
    """Integration points chosen by Q-DEIM, keeping all components of each chosen point.

    Parameters
    ----------
    basis : ndarray, shape (n_points * n_components, r)
        Rows point-major, component-minor (row ``n_components * k + c``).
    n_components : int
        Components per point (6 for stress, 1 for the cumulated plastic strain).
    blocks : optional row bounds of a tournament selection (:func:`qdeim`)

    Returns
    -------
    ndarray of int64
        Sorted distinct points (at most ``r``): the points owning the Q-DEIM rows. Their rows
        (:func:`point_rows`) contain the Q-DEIM rows, so the Gappy fit on them is at least as
        well conditioned as Q-DEIM interpolation.

    Notes
    -----
    Same cost as :func:`qdeim`.

    References
    ----------
    Z. Drmac, S. Gugercin, SIAM J. Sci. Comput. 38(2) (2016); F. Casenave et al.,
    arXiv:1812.07228 (Q-DEIM points added to the ECM points so that Gappy-POD is well posed).
    """
    basis = _check_basis(basis)
    if n_components < 1 or basis.shape[0] % n_components:
        raise ValueError(f"basis has {basis.shape[0]} rows, not a multiple of n_components="
                         f"{n_components} (rows must be point-major, component-minor)")
    return np.unique(qdeim(basis, blocks) // n_components)


def point_rows(points: np.ndarray, n_components: int) -> np.ndarray:
    """Rows ``n_components * k + c`` of every point ``k`` (point-major, component-minor)."""
    points = np.asarray(points, dtype=np.int64).ravel()
    return (points[:, None] * n_components + np.arange(n_components)).ravel()


@dataclass(frozen=True, eq=False)
class GappyPOD:
    """Least-squares fit of a POD basis on sampled rows (build it with :func:`gappy_pod`).

    Attributes
    ----------
    rows : ndarray of int64, shape (n_sampled,)
        Sampled rows of the full field (e.g. ``point_rows(reduced_points, 6)``), in the order
        the values are given to :meth:`fit`.
    sampled_basis : ndarray, shape (n_sampled, r)
        ``basis[rows]``.
    q, r : ndarray, shapes (n_sampled, r) and (r, r)
        Thin QR factors of ``sampled_basis``.
    condition : float
        Condition number of ``sampled_basis`` (the amplification of the data error).
    """

    rows: np.ndarray
    sampled_basis: np.ndarray
    q: np.ndarray
    r: np.ndarray
    condition: float

    @property
    def n_modes(self) -> int:
        return self.sampled_basis.shape[1]

    def _values(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.shape[:1] != (self.rows.size,) or values.ndim > 2:
            raise ValueError(f"values must have shape ({self.rows.size},) or ({self.rows.size}, "
                             f"n_samples) (one per sampled row); got {values.shape}")
        return values

    def fit(self, values_at_points: np.ndarray) -> np.ndarray:
        """Coefficients ``g`` minimizing ``||values - sampled_basis @ g||``.

        ``values_at_points`` has shape (n_sampled,) or (n_sampled, n_samples) (e.g. one column
        per time step); the result has shape (r,) or (r, n_samples). Cost ``O(n_sampled r)``.
        """
        values = self._values(values_at_points)
        return scipy.linalg.solve_triangular(self.r, self.q.T @ values, check_finite=False)

    def reconstruct(self, coefficients: np.ndarray, full_basis: np.ndarray) -> np.ndarray:
        """The full field ``full_basis @ coefficients`` (shape (n_rows,) or (n_rows, n_samples))."""
        full_basis = np.asarray(full_basis)
        if full_basis.ndim != 2 or full_basis.shape[1] != self.n_modes:
            raise ValueError(f"full_basis must have shape (n_rows, {self.n_modes}); got {full_basis.shape}")
        return full_basis @ np.asarray(coefficients)

    def residual(self, values: np.ndarray) -> float | np.ndarray:
        """Relative fit residual ``||p - Phi[rows] g|| / ||p||`` (0 where ``p`` is 0).

        The online error indicator of Casenave & Akkari (2019): it needs only the values at the
        reduced points. For 2-D ``values`` one residual per column. Cost ``O(n_sampled r)``.
        """
        values = self._values(values)
        fit = self.q @ (self.q.T @ values)
        num = np.linalg.norm(values - fit, axis=0)
        den = np.linalg.norm(values, axis=0)
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        return float(out) if values.ndim == 1 else out


def gappy_pod(basis: np.ndarray, rows: np.ndarray) -> GappyPOD:
    """Gappy-POD fit of ``basis`` on the sampled ``rows``.

    Parameters
    ----------
    basis : ndarray, shape (n_rows, r)
        Full POD basis of the dual quantity (rows point-major, component-minor).
    rows : ndarray of int, shape (n_sampled,)
        Sampled rows, ``n_sampled >= r`` (use :func:`point_rows` for whole points, e.g. the ECM
        points united with :func:`qdeim_points`).

    Returns
    -------
    GappyPOD

    Raises
    ------
    ValueError
        If ``basis[rows]`` is rank deficient: add the Q-DEIM points of the basis.

    Notes
    -----
    Thin QR of the ``(n_sampled, r)`` sampled basis: ``O(n_sampled r^2)``; only the sampled
    rows are stored (nothing scales with the mesh).

    References
    ----------
    R. Everson, L. Sirovich, "Karhunen-Loeve procedure for gappy data", JOSA A 12(8) (1995);
    F. Casenave, N. Akkari, "An error indicator-based adaptive reduced order model for
    nonlinear structural mechanics", Math. Comput. Appl. 24(2) (2019).
    """
    basis = _check_basis(basis)
    rows = np.asarray(rows, dtype=np.int64).ravel()
    if rows.size and (rows.min() < 0 or rows.max() >= basis.shape[0]):
        raise ValueError(f"rows must be in 0..{basis.shape[0] - 1}")
    r = basis.shape[1]
    if rows.size < r:
        raise ValueError(f"{rows.size} sampled rows cannot determine {r} coefficients: add the "
                         "Q-DEIM points of the basis (qdeim_points)")
    sampled = np.ascontiguousarray(basis[rows])
    s = scipy.linalg.svdvals(sampled, check_finite=False)
    condition = float(s[0] / s[-1]) if s[-1] > 0 else np.inf
    if not condition < 1e12:
        raise ValueError(f"basis restricted to the sampled rows is rank deficient (condition "
                         f"{condition:.1e}): add the Q-DEIM points of the basis (qdeim_points)")
    q, rr = scipy.linalg.qr(sampled, mode="economic", check_finite=False)
    for a in (rows, sampled, q, rr):
        a.setflags(write=False)
    return GappyPOD(rows, sampled, q, rr, condition)
