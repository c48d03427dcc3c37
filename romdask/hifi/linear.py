"""Sparse direct solver wrapper: MKL PARDISO through pypardiso when importable, SuperLU otherwise.

The symbolic analysis (reordering) of PARDISO is done once per sparsity pattern and reused by
every later factorization with the same pattern (Newton iterations, increments).
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["LinearSolver", "SingularMatrixError", "have_pardiso"]

logger = logging.getLogger(__name__)


class SingularMatrixError(RuntimeError):
    """The (tangent) matrix is singular or numerically so."""


@functools.cache
def _mkl_runtime() -> str | None:
    """The MKL runtime library pypardiso loads, found once per process (None: not available).

    pypardiso looks for it at every ``PyPardisoSolver()``, by a recursive glob of ``sys.prefix``
    when ``find_library`` fails (0.3-0.6 s each here: most of a short restarted run); the path it
    found is given back through its ``PYPARDISO_MKL_RT`` variable, unless the user set one.
    """
    # MKL's OpenMP threads (pardiso's factorization) idle without spinning: spinning for 200 ms
    # after each solve they slowed the numba assembly and laws (7,425-node plate, 2 cores: 33.6 s
    # -> 29.9 s a cycle with KMP_BLOCKTIME=0; romdask.threads). Read when the runtime starts.
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    try:
        import pypardiso

        path = pypardiso.PyPardisoSolver().libmkl._name
    except Exception:  # ImportError, or MKL runtime missing
        return None
    if path:
        os.environ.setdefault("PYPARDISO_MKL_RT", path)
    return path or None


def have_pardiso() -> bool:
    """True when pypardiso and its MKL runtime load."""
    return _mkl_runtime() is not None


class LinearSolver:
    """Factorize-and-solve for a sequence of matrices sharing one CSR pattern.

    Parameters
    ----------
    symmetric : bool
        The matrices are symmetric and given as their upper triangle (with the diagonal), as
        built by :func:`romdask.hifi.assembly.sparsity` with ``symmetric=True``. PARDISO then
        runs in real symmetric indefinite mode (mtype -2, about 2x faster than the unsymmetric
        mode); SuperLU gets the full matrix.
    backend : {"auto", "pardiso", "superlu"}
    check : float
        After each solve the relative residual ``||A x - b|| / ||b||`` is checked; above this
        value :class:`SingularMatrixError` is raised (singular matrix: rigid-body mode, mechanism).

    Notes
    -----
    Memory: the factor (PARDISO keeps it internally). Threads: MKL uses its own thread pool;
    numba kernels and the solve never run at the same time here.
    """

    def __init__(self, *, symmetric: bool = False, backend: str = "auto", check: float = 1e-4):
        if backend not in ("auto", "pardiso", "superlu"):
            raise ValueError(f"backend must be 'auto', 'pardiso' or 'superlu'; got {backend!r}")
        if backend == "auto":
            backend = "pardiso" if have_pardiso() else "superlu"
        self.backend = backend
        self.symmetric = bool(symmetric)
        self.check = float(check)
        self._matrix: sp.csr_matrix | None = None
        self._full: sp.csr_matrix | None = None
        self._lu = None
        self._pardiso = None
        self._analysed_pattern: tuple | None = None
        self.n_factorizations = 0
        self.n_analyses = 0

    # ---- PARDISO -------------------------------------------------------------------------

    def _call(self, phase: int, rhs: np.ndarray) -> np.ndarray:
        ps = self._pardiso
        ps.set_phase(phase)
        return ps._call_pardiso(self._matrix, rhs)

    def factorize(self, matrix: sp.csr_matrix) -> None:
        """Factorize ``matrix`` (CSR, sorted indices). The analysis is redone only when the
        pattern (the ``indptr``/``indices`` arrays) changes."""
        if not sp.issparse(matrix) or matrix.format != "csr":
            raise TypeError("LinearSolver.factorize needs a scipy CSR matrix")
        if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValueError(f"LinearSolver needs a non-empty square matrix; got shape {matrix.shape}")
        if not np.all(np.isfinite(matrix.data)):
            raise SingularMatrixError("the matrix has non-finite entries (a material tangent is NaN/inf)")
        self._matrix = matrix
        self._full = None
        self.n_factorizations += 1
        if self.backend == "pardiso":
            import pypardiso
            from pypardiso.pardiso_wrapper import PyPardisoError

            if self._pardiso is None:
                self._pardiso = pypardiso.PyPardisoSolver(mtype=-2 if self.symmetric else 11)
                self._pardiso._check_A(matrix)  # sets iparm(12) for CSR, rejects empty rows
            dummy = np.zeros((matrix.shape[0], 1))
            try:
                if not self._same_pattern(matrix):
                    self._call(11, dummy)
                    self._analysed_pattern = (matrix.indptr.copy(), matrix.indices.copy())
                    self.n_analyses += 1
                self._call(22, dummy)
            except PyPardisoError as exc:
                raise SingularMatrixError(f"PARDISO factorization failed: {exc}") from exc
            if self._pardiso.iparm[13] > 0:
                logger.debug("PARDISO perturbed %d pivots", self._pardiso.iparm[13])
        else:
            full = self._full_matrix()
            try:
                self._lu = spla.splu(full.tocsc())
            except RuntimeError as exc:
                raise SingularMatrixError(f"SuperLU factorization failed: {exc}") from exc

    def _same_pattern(self, matrix: sp.csr_matrix) -> bool:
        if self._analysed_pattern is None:
            return False
        indptr, indices = self._analysed_pattern
        return (matrix.indptr is indptr or np.array_equal(matrix.indptr, indptr)) and (
            matrix.indices is indices or np.array_equal(matrix.indices, indices))

    def _full_matrix(self) -> sp.csr_matrix:
        if self._full is None:
            m = self._matrix
            self._full = (m + sp.triu(m, k=1, format="csr").T).tocsr() if self.symmetric else m
        return self._full

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        m = self._matrix
        if not self.symmetric:
            return m @ x
        return m @ x + m.T @ x - m.diagonal() * x

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve with the last factorized matrix."""
        if self._matrix is None:
            raise RuntimeError("LinearSolver.solve called before factorize")
        b = np.ascontiguousarray(rhs, dtype=np.float64)
        if self.backend == "pardiso":
            x = self._call(33, b.reshape(-1, 1)).reshape(b.shape)
        else:
            x = self._lu.solve(b)
        if self.check > 0:
            nb = np.linalg.norm(b)
            res = np.linalg.norm(self._matvec(x) - b)
            if not np.all(np.isfinite(x)) or (nb > 0 and res > self.check * nb):
                raise SingularMatrixError(
                    f"linear solve is inaccurate (relative residual {res / nb if nb else res:.2e}): "
                    "the tangent matrix is singular. Check that the Dirichlet conditions remove "
                    "all rigid-body modes and that no part of the mesh is disconnected."
                )
        return x

    def free(self) -> None:
        """Release PARDISO's memory."""
        if self._pardiso is not None and self._matrix is not None:
            try:
                self._call(-1, np.zeros((self._matrix.shape[0], 1)))
            except Exception:  # pragma: no cover
                pass
        self._pardiso = None
        self._analysed_pattern = None

    def __del__(self):  # pragma: no cover
        try:
            self.free()
        except Exception:
            pass
