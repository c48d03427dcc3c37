"""Numba assembly of the tangent stiffness and the internal force on a fixed CSR pattern.

The pattern is built once per (mesh, constrained dofs, symmetric flag): the CSR arrays of the
stiffness restricted to the free dofs (optionally only its upper triangle, for a symmetric
solver) and, for each element, the position of each of its ``(3 n_en)^2`` entries in the CSR
data array (-1 where the entry is dropped: a constrained row or column, or the lower triangle).
Elements are colored (no two elements of one color share a node), so that the kernel scatters
in parallel over the elements of one color without races. Strains and internal forces come from
:mod:`romdask.fem.quadrature`.

Conventions (docs/conventions.md): dof ``3 node + c``; Voigt ``xx yy zz xy xz yz`` with
engineering shear in strains; ``K = sum_q w_q B_q^T D_q B_q``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["Pattern", "sparsity", "assemble_stiffness", "free_matrix", "max_asymmetry"]


@dataclass(frozen=True, eq=False)
class Pattern:
    """CSR sparsity of the free-dof stiffness and the element -> CSR-data positions.

    Attributes
    ----------
    n_dofs : int
        Number of dofs of the mesh (3 n_nodes).
    free : ndarray of int64
        Free dofs, increasing; row/column ``i`` of the matrix is dof ``free[i]``.
    dof_map : ndarray of int64, shape (n_dofs,)
        Free index of each dof, -1 for constrained dofs.
    indptr, indices : ndarray of int32
        The CSR structure (sorted column indices).
    symmetric : bool
        True when only the upper triangle (with the diagonal) is stored.
    positions : tuple of ndarray of int32, shape (n_el, 3 n_en, 3 n_en), one per block
        CSR data position of each element-matrix entry (local dof ``3 a + c``), -1 if dropped.
    color_ptr, color_elements : tuple of ndarray of int64, one per block
        Elements of color ``k`` in block ``b``:
        ``color_elements[b][color_ptr[b][k]:color_ptr[b][k + 1]]``.
    """

    n_dofs: int
    free: np.ndarray
    dof_map: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    symmetric: bool
    positions: tuple
    color_ptr: tuple
    color_elements: tuple

    @property
    def n_free(self) -> int:
        return len(self.free)

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def matrix(self, data: np.ndarray) -> sp.csr_matrix:
        """A scipy CSR matrix sharing ``data`` with this pattern (no copy)."""
        m = sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n_free, self.n_free), copy=False)
        m.has_sorted_indices = True
        return m


# ---- pattern ---------------------------------------------------------------------------------


def _node_adjacency(connectivities, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    keys = []
    for conn in connectivities:
        n_en = conn.shape[1]
        a = np.repeat(conn, n_en, axis=1).ravel()
        b = np.tile(conn, (1, n_en)).ravel()
        keys.append(np.unique(a * n_nodes + b))
    key = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    rows = key // n_nodes
    cols = key % n_nodes
    ptr = np.zeros(n_nodes + 1, np.int64)
    np.add.at(ptr, rows + 1, 1)
    return np.cumsum(ptr), cols.astype(np.int64)


@numba.njit(cache=True)
def _dof_csr(node_ptr, node_cols, dof_map, n_free, symmetric):
    n_nodes = len(node_ptr) - 1
    counts = np.zeros(n_free + 1, np.int64)
    for i in range(n_nodes):
        for c in range(3):
            r = dof_map[3 * i + c]
            if r < 0:
                continue
            n = 0
            for k in range(node_ptr[i], node_ptr[i + 1]):
                j = node_cols[k]
                for d in range(3):
                    f = dof_map[3 * j + d]
                    if f >= 0 and (not symmetric or f >= r):
                        n += 1
            counts[r + 1] = n
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[-1], np.int32)
    for i in range(n_nodes):
        for c in range(3):
            r = dof_map[3 * i + c]
            if r < 0:
                continue
            p = indptr[r]
            for k in range(node_ptr[i], node_ptr[i + 1]):
                j = node_cols[k]
                for d in range(3):
                    f = dof_map[3 * j + d]
                    if f >= 0 and (not symmetric or f >= r):
                        indices[p] = f
                        p += 1
    return indptr.astype(np.int32), indices


@numba.njit(parallel=True, cache=True)
def _positions(conn, dof_map, indptr, indices, symmetric):
    n_el, n_en = conn.shape
    nd = 3 * n_en
    pos = np.full((n_el, nd, nd), -1, np.int32)
    for e in numba.prange(n_el):
        for a in range(n_en):
            for c in range(3):
                r = dof_map[3 * conn[e, a] + c]
                if r < 0:
                    continue
                lo0 = indptr[r]
                hi0 = indptr[r + 1]
                for b in range(n_en):
                    for d in range(3):
                        f = dof_map[3 * conn[e, b] + d]
                        if f < 0 or (symmetric and f < r):
                            continue
                        lo = lo0
                        hi = hi0
                        while lo < hi:
                            mid = (lo + hi) // 2
                            if indices[mid] < f:
                                lo = mid + 1
                            else:
                                hi = mid
                        pos[e, 3 * a + c, 3 * b + d] = lo
    return pos


@numba.njit(cache=True)
def _color(conn, n_nodes):
    """Greedy coloring: elements of one color share no node (up to 64 x 16 colors)."""
    n_el, n_en = conn.shape
    n_words = 16
    used = np.zeros((n_nodes, n_words), np.uint64)
    color = np.empty(n_el, np.int64)
    n_colors = 0
    for e in range(n_el):
        chosen = -1
        for w in range(n_words):
            m = np.uint64(0)
            for a in range(n_en):
                m |= used[conn[e, a], w]
            if m != np.uint64(0xFFFFFFFFFFFFFFFF):
                for bit in range(64):
                    if (m >> np.uint64(bit)) & np.uint64(1) == np.uint64(0):
                        chosen = 64 * w + bit
                        break
                break
        if chosen < 0:
            return color, -1
        color[e] = chosen
        w = chosen // 64
        bit = np.uint64(chosen % 64)
        for a in range(n_en):
            used[conn[e, a], w] |= np.uint64(1) << bit
        n_colors = max(n_colors, chosen + 1)
    return color, n_colors


def sparsity(mesh, constrained=None, *, symmetric: bool = False) -> Pattern:
    """Build the CSR pattern of the free-dof stiffness of ``mesh``.

    Parameters
    ----------
    mesh : Mesh
    constrained : array of int, optional
        Dofs eliminated from the system (Dirichlet conditions).
    symmetric : bool
        Store only the upper triangle (for a symmetric solver).

    Notes
    -----
    Memory: 4 (3 n_en)^2 bytes per element for the positions (2.3 kB per C3D8, 14 kB per
    C3D20) plus the CSR arrays. Cost: a few tenths of a second per 10^5 elements.
    """
    n_nodes = mesh.n_nodes
    n_dofs = 3 * n_nodes
    dof_map = np.zeros(n_dofs, np.int64)
    if constrained is not None and len(constrained):
        dof_map[np.asarray(constrained, np.int64)] = -1
    free = np.flatnonzero(dof_map == 0)
    dof_map[free] = np.arange(len(free))
    conns = [np.ascontiguousarray(b.connectivity, dtype=np.int64) for b in mesh.blocks]
    node_ptr, node_cols = _node_adjacency(conns, n_nodes)
    indptr, indices = _dof_csr(node_ptr, node_cols, dof_map, len(free), bool(symmetric))
    positions, cptrs, celems = [], [], []
    for conn in conns:
        positions.append(_positions(conn, dof_map, indptr, indices, bool(symmetric)))
        color, n_colors = _color(conn, n_nodes)
        if n_colors < 0:  # pragma: no cover - pathological meshes: serial assembly
            color, n_colors = np.arange(len(conn)), len(conn)
        order = np.argsort(color, kind="stable")
        cptr = np.zeros(n_colors + 1, np.int64)
        np.add.at(cptr, color + 1, 1)
        cptrs.append(np.cumsum(cptr))
        celems.append(order.astype(np.int64))
    for a in (free, dof_map, indptr, indices):
        a.setflags(write=False)
    return Pattern(n_dofs, free, dof_map, indptr, indices, bool(symmetric), tuple(positions),
                   tuple(cptrs), tuple(celems))


# ---- kernels ---------------------------------------------------------------------------------


@numba.njit(parallel=True, cache=True)
def _stiffness_block(dNdx, w, tangent, offset, positions, color_ptr, color_el, data):
    n_el, n_ip, n_en, _ = dNdx.shape
    nd = 3 * n_en
    for k in range(len(color_ptr) - 1):
        for ii in numba.prange(color_ptr[k], color_ptr[k + 1]):
            e = color_el[ii]
            Ke = np.zeros((nd, nd))
            DB = np.empty((n_en, 6, 3))
            for q in range(n_ip):
                p = offset + e * n_ip + q
                D = tangent[p]
                wq = w[e, q]
                for b in range(n_en):
                    gx = dNdx[e, q, b, 0]
                    gy = dNdx[e, q, b, 1]
                    gz = dNdx[e, q, b, 2]
                    for i in range(6):
                        DB[b, i, 0] = gx * D[i, 0] + gy * D[i, 3] + gz * D[i, 4]
                        DB[b, i, 1] = gy * D[i, 1] + gx * D[i, 3] + gz * D[i, 5]
                        DB[b, i, 2] = gz * D[i, 2] + gx * D[i, 4] + gy * D[i, 5]
                for a in range(n_en):
                    gx = wq * dNdx[e, q, a, 0]
                    gy = wq * dNdx[e, q, a, 1]
                    gz = wq * dNdx[e, q, a, 2]
                    for b in range(n_en):
                        for d in range(3):
                            X0 = DB[b, 0, d]
                            X1 = DB[b, 1, d]
                            X2 = DB[b, 2, d]
                            X3 = DB[b, 3, d]
                            X4 = DB[b, 4, d]
                            X5 = DB[b, 5, d]
                            Ke[3 * a, 3 * b + d] += gx * X0 + gy * X3 + gz * X4
                            Ke[3 * a + 1, 3 * b + d] += gy * X1 + gx * X3 + gz * X5
                            Ke[3 * a + 2, 3 * b + d] += gz * X2 + gx * X4 + gy * X5
            for i in range(nd):
                for j in range(nd):
                    pos = positions[e, i, j]
                    if pos >= 0:
                        data[pos] += Ke[i, j]


def assemble_stiffness(quad, pattern: Pattern, tangent: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """CSR data of ``K = sum w B^T D B`` on ``pattern`` (free dofs; upper triangle if symmetric).

    Notes
    -----
    Parallel over the elements of one color (numba ``prange``); no per-thread buffers.
    """
    if out is None:
        out = np.zeros(pattern.nnz)
    else:
        out[:] = 0.0
    for k, bq in enumerate(quad.blocks):
        _stiffness_block(bq.dNdx, bq.weights, tangent, int(bq.ip_offset), pattern.positions[k],
                         pattern.color_ptr[k], pattern.color_elements[k], out)
    return out


def free_matrix(pattern: Pattern, data: np.ndarray) -> sp.csr_matrix:
    """The full (both triangles) free-dof matrix, also for a symmetric (upper) pattern."""
    m = pattern.matrix(data)
    if pattern.symmetric:
        m = (m + sp.triu(m, k=1, format="csr").T).tocsr()
    return m


@numba.njit(parallel=True, cache=True)
def _asymmetry(tangent):
    n = tangent.shape[0]
    diff = np.zeros(n)
    size = np.zeros(n)
    for p in numba.prange(n):
        d = 0.0
        m = 0.0
        for i in range(6):
            for j in range(6):
                m = max(m, abs(tangent[p, i, j]))
                if j > i:
                    d = max(d, abs(tangent[p, i, j] - tangent[p, j, i]))
        diff[p] = d
        size[p] = m
    return diff.max(), size.max()


def max_asymmetry(tangent: np.ndarray) -> float:
    """``max |D_ij - D_ji| / max |D|`` over all points of tangents ``(n_points, 6, 6)``."""
    if len(tangent) == 0:
        return 0.0
    d, m = _asymmetry(tangent)
    return d / m if m > 0 else 0.0
