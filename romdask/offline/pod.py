"""Snapshot POD on a snapshot array with one Dask block per subdomain.

Functions: :func:`inner` / :func:`gram` (lazy small matrices summed over subdomains),
:func:`pod` (method of snapshots, R-only TSQR, or randomized range finder) and
:func:`pod_update` (exact incremental update when runs are added). The inner product is the
Euclidean one (``product=None``) or the L2 one of the consistent mass matrix
(``product="l2"`` with ``layout=``, or a :class:`ProductOperator` from :func:`mass_product`).

Snapshots are the ROWS of ``U`` (n_snap, n_dof) (the store's ``displacement``); modes are
rows of ``POD.modes`` (n_modes, n_dof), chunked like ``U`` along dof.

BLAS threads: every per-block task runs its dense products with one BLAS thread
(:func:`romdask.threads.blas_single_thread`). Dask already runs one task per worker
thread; letting BLAS spawn threads on top made an exact SVD 5x slower on this machine
(shared/notes/stack.md).
The driver-side factorizations (eigh / SVD of n_snap-sized matrices) run with one BLAS thread
too: their bytes then do not depend on the process's BLAS thread count (and on this 2-core
machine one thread was also faster).

Determinism: the block products take C-contiguous operands (numpy's ``matmul`` on views with no
unit stride, e.g. what ``einsum(..., optimize=True)`` passes it, was measured to take BLAS in
some processes and its own loop in others: other roundings), the per-subdomain partial sums are
added in a fixed tree (:func:`inner`, :func:`tsqr_r`) and the randomized method is seeded, so the
same snapshots give the same bytes on any scheduler (docs/offline.md, "Determinism").

References
----------
F. Casenave, N. Akkari, F. Bordeu, C. Rey, D. Ryckelynck, "A nonintrusive distributed
reduced-order modeling framework for nonlinear structural mechanics", arXiv 1812.07228.
L. Sirovich, "Turbulence and the dynamics of coherent structures" (1987) (method of snapshots).
J. Demmel, L. Grigori, M. Hoemmen, J. Langou, "Communication-optimal parallel and sequential QR
and LU factorizations" (2012) (TSQR). N. Halko, P.-G. Martinsson, J. Tropp, "Finding structure
with randomness" (2011) (randomized range finder, power iterations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from romdask.fem.quadrature import mass_matrix
from romdask.store.layout import StoreLayout

from romdask.threads import aligned, blas_single_thread
from .halo import (
    StoreSubmesh,
    SubdomainHalo,
    check_subdomain_chunks,
    load_submesh,
    local_snapshots,
    resolve_layout,
    store_submeshes,
    submesh,
    subdomain_halos,
)

__all__ = ["POD", "ProductOperator", "combine", "gram", "inner", "mass_product", "pod", "pod_update", "tsqr_r"]

log = logging.getLogger(__name__)

_SPLIT_EVERY = 8  # fan-in of the summation / QR trees


# ---- inner products -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProductOperator:
    """A symmetric positive (semi)definite inner product given subdomain by subdomain.

    ``<a, b> = sum_k a_loc_k^T M_k b_loc_k`` with ``a_loc_k`` the local (owned + halo) values of
    subdomain k (see :mod:`romdask.offline.halo`) and ``M_k`` the matrix of k's elements on its
    local dofs. For the mass matrix this is exact: M is the sum of the subdomain (element-set)
    mass matrices.

    Attributes
    ----------
    halos : one SubdomainHalo per subdomain
    matrices : one scipy.sparse CSR matrix (n_local_dofs_k, n_local_dofs_k) per subdomain, or
        None for the mass product (each task assembles its matrix from its sub-mesh: see
        :meth:`matrix`)
    dof_offsets : (K + 1,) the layout's dof offsets
    name : e.g. "l2"
    meshes : for the mass product, per subdomain its sub-mesh, or (product built from a store)
        a :class:`~romdask.offline.halo.StoreSubmesh` reference that the tasks read
    densities : for the mass product, per subdomain a float (uniform density) or the
        densities of k's elements (in sub-mesh order)
    """

    halos: tuple[SubdomainHalo, ...]
    matrices: tuple[sp.csr_matrix, ...] | None
    dof_offsets: np.ndarray
    name: str = "l2"
    meshes: tuple | None = field(default=None, repr=False)
    densities: tuple | None = field(default=None, repr=False)

    @property
    def n_subdomains(self) -> int:
        return len(self.halos)

    @property
    def embed_free(self) -> bool:
        """True when graphs carry store references only (no mesh-sized data)."""
        return (self.meshes is not None and all(isinstance(m, StoreSubmesh) for m in self.meshes)
                and all(np.ndim(d) == 0 for d in self.densities))

    def matrix(self, k: int) -> sp.csr_matrix:
        """M_k (assembled from the sub-mesh for the mass product)."""
        if self.matrices is not None:
            return self.matrices[k]
        return _subdomain_mass(load_submesh(self.meshes[k]), self.densities[k])

    def __dask_tokenize__(self):
        if self.matrices is None:
            return ("romdask-product", self.name, self.dof_offsets.tolist(),
                    [m if isinstance(m, StoreSubmesh) else tokenize(m.nodes, [b.connectivity for b in m.blocks])
                     for m in self.meshes], [tokenize(d) for d in self.densities])
        return ("romdask-product", self.name, self.dof_offsets.tolist(),
                [tokenize(m.data, m.indices, m.indptr, m.shape) for m in self.matrices])


def _subdomain_mass(mesh, density) -> sp.csr_matrix:
    return mass_matrix(mesh, density).tocsr()


def _scalar_mass(mesh, density) -> sp.csr_matrix:
    """The scalar consistent mass matrix (n_nodes, n_nodes) of ``mesh``: ``M = M_s (x) I_3``
    in the interleaved dof order, integrated as :func:`romdask.fem.quadrature.mass_matrix`."""
    from romdask.fem.elements import get_element
    from romdask.fem.quadrature import jacobians

    rho = np.broadcast_to(np.asarray(density, np.float64), (mesh.n_elements,))
    rows, cols, vals = [], [], []
    start = 0
    for block in mesh.blocks:
        el = get_element(block.type)
        conn = np.asarray(block.connectivity)
        _, det = jacobians(mesh.nodes[conn], el.shape_derivatives(el.mass_points))
        N = el.shape(el.mass_points)
        w = det * el.mass_weights * rho[start : start + len(conn), None]
        start += len(conn)
        me = np.einsum("eq,qa,qb->eab", w, N, N, optimize=True)
        n_en = conn.shape[1]
        rows.append(np.repeat(conn, n_en, axis=1).ravel())
        cols.append(np.tile(conn, (1, n_en)).ravel())
        vals.append(me.ravel())
    n = mesh.n_nodes
    if not rows:
        return sp.csr_matrix((n, n))
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()


def mass_product(layout, density: float | np.ndarray = 1.0) -> ProductOperator:
    """The L2 inner product of the consistent mass matrix, split by subdomain.

    Parameters
    ----------
    layout : the store (a path or a :class:`~romdask.store.SnapshotStore`: recommended) or its
        :class:`~romdask.store.layout.StoreLayout`
    density : float or (n_elements,) per store element

    Returns
    -------
    ProductOperator
        ``M_k`` = :func:`romdask.fem.quadrature.mass_matrix` of k's elements on k's local nodes.

    Notes
    -----
    No assembly in the driver. Given a store, the graphs carry a reference per subdomain (the
    store path, k and a mesh fingerprint, ~200 bytes) and each task reads k's sub-mesh from the
    store (cached per worker process, :func:`~romdask.offline.halo.read_submesh`) and assembles
    the scalar mass matrix ``M_s`` (``M_k = M_s (x) I_3``, a third of the entries) once per
    task: the graph size does not depend on the mesh. Given only a layout, the sub-meshes are
    embedded in the graph (one delayed object per subdomain, ~11 MB in all at 100k nodes, which
    distributed reports as a "large graph"). A non-uniform ``density`` is embedded as k's
    element densities (mesh-sized / K per subdomain).
    """
    layout, store = resolve_layout(layout)
    halos = subdomain_halos(layout)
    uniform = np.ndim(density) == 0
    rho = np.broadcast_to(np.asarray(density, np.float64), (layout.mesh.n_elements,))
    meshes = store_submeshes(layout, store) if store is not None else tuple(submesh(layout, h) for h in halos)
    dens = []
    for h in halos:
        if uniform:
            dens.append(float(density))
            continue
        # submesh elements come block by block in increasing store order = halo.elements sorted by block
        order = np.concatenate([h.elements[(h.elements >= a) & (h.elements < b)]
                                for a, b in zip(layout.mesh.block_offsets[:-1], layout.mesh.block_offsets[1:])])
        dens.append(np.ascontiguousarray(rho[order]))
    return ProductOperator(halos, None, np.asarray(layout.dof_offsets, np.int64), "l2", tuple(meshes), tuple(dens))


def _product_mesh(product: ProductOperator, k: int, token: str) -> tuple[list, object, object]:
    """(dependencies, mesh argument, density argument) of subdomain k's tasks: store references
    and scalar densities go into the task as literals; in-memory sub-meshes / density arrays as
    delayed objects with deterministic keys."""
    mesh, density = product.meshes[k], product.densities[k]
    deps = []
    if not isinstance(mesh, StoreSubmesh):
        d = dask.delayed(mesh, pure=True, name=f"romdask-product-mesh-{token}-{k}")
        deps.append(d)
        mesh = d.key
    if np.ndim(density) != 0:
        d = dask.delayed(density, pure=True, name=f"romdask-product-density-{token}-{k}")
        deps.append(d)
        density = d.key
    return deps, mesh, density


def _resolve_product(product, layout) -> ProductOperator | None:
    if product is None or isinstance(product, ProductOperator):
        return product
    if isinstance(product, str) and product.lower() in ("l2", "mass"):
        if layout is None:
            raise ValueError('product="l2" needs the store layout: pass layout=SnapshotStore.open(path).layout, '
                             "or product=mass_product(layout)")
        return mass_product(layout)
    raise ValueError(f"product must be None (Euclidean), 'l2' or a ProductOperator; got {product!r}")


def _as_dask(U) -> da.Array:
    data = getattr(U, "data", U) if not isinstance(U, da.Array) else U
    if not isinstance(data, da.Array):
        raise TypeError(f"expected a dask array (snapshot, dof); got {type(U).__name__}. "
                        "Use open_snapshots(path).displacement (or its .data)")
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D array (snapshot, dof); got shape {data.shape}")
    return data


def _one_row_chunk(U: da.Array) -> da.Array:
    """U with one chunk along the snapshots. Merging row chunks read by different workers moves
    them between workers (measured: a read pass 2x slower); open the store with
    ``open_snapshots(path, row_chunks="subdomain")`` to get one block per subdomain directly."""
    if U.numblocks[0] == 1:
        return U
    log.debug("merging %d row chunks per subdomain (moves snapshot data between workers); use "
              "open_snapshots(path, row_chunks='subdomain') for one block per subdomain", U.numblocks[0])
    return U.rechunk({0: -1})


def _euclidean_block(a, b):
    with blas_single_thread():
        if a is b:
            a = aligned(a)
            return a @ a.T  # numpy calls syrk for a @ a.T: half the flops of a @ b.T
        return aligned(a) @ aligned(b).T


def _product_block(a_loc, b_loc, matrix):
    with blas_single_thread():
        return aligned(a_loc) @ (matrix @ aligned(b_loc).T)


def _node_major(x: np.ndarray) -> np.ndarray:
    """(m, 3 n) local values, dofs interleaved ``3 node + c`` -> (n, 3 m) with column ``c m + s``."""
    m = x.shape[0]
    return np.ascontiguousarray(x.reshape(m, -1, 3).transpose(1, 2, 0)).reshape(-1, 3 * m)


_TRIANGLE_SPLIT = 4  # row blocks of the symmetric Gram: 10/16 of the full product's flops


def _scalar_product(a_loc, b_loc, Ms, symmetric: bool) -> np.ndarray:
    """``a_loc (M_s (x) I_3) b_loc^T`` with the scalar mass matrix M_s (n_nodes, n_nodes):
    one sparse product with 3 m_b dense columns, then 3 dense products (only the upper block
    triangle when symmetric)."""
    m_a, m_b = a_loc.shape[0], b_loc.shape[0]
    if a_loc.size == 0 or b_loc.size == 0:
        return np.zeros((m_a, m_b))
    Tb = _node_major(b_loc)
    W = Ms @ Tb  # (n, 3 m_b)
    G = np.zeros((m_a, m_b))
    if not symmetric:
        Ta = _node_major(a_loc)
        for c in range(3):
            G += Ta[:, c * m_a : (c + 1) * m_a].T @ W[:, c * m_b : (c + 1) * m_b]
        return G
    m = m_b
    edges = np.linspace(0, m, min(_TRIANGLE_SPLIT, m) + 1).astype(int)
    for c in range(3):
        for lo, hi in zip(edges[:-1], edges[1:]):
            G[lo:hi, lo:] += Tb[:, c * m + lo : c * m + hi].T @ W[:, c * m + lo : (c + 1) * m]
    upper = np.triu_indices(m, 1)
    G[upper[1], upper[0]] = G[upper]
    return G


def _mass_product_block(a_loc, b_loc, mesh, density, symmetric=False):
    """Subdomain block of ``A M B^T``: reads/assembles k's scalar mass matrix in the task."""
    with blas_single_thread():
        Ms = _scalar_mass(load_submesh(mesh), density)
        return _scalar_product(aligned(a_loc), aligned(b_loc), Ms, symmetric)


def _sum(parts):
    out = np.array(parts[0], dtype=np.float64, copy=True)  # a fresh (aligned) array; then in order
    for p in parts[1:]:
        out += p
    return out


def _tree(dsk: dict, name: str, keys: list, func) -> tuple:
    """Reduce ``keys`` with ``func(list)`` in a tree of fan-in _SPLIT_EVERY; returns the root key."""
    level = 0
    while len(keys) > 1 or level == 0:
        nxt = []
        for j in range(0, len(keys), _SPLIT_EVERY):
            key = (f"{name}-l{level}", j // _SPLIT_EVERY)
            dsk[key] = (func, list(keys[j:j + _SPLIT_EVERY]))
            nxt.append(key)
        keys = nxt
        level += 1
    return keys[0]


def inner(A, B, product: ProductOperator | str | None = None, *, layout: StoreLayout | str | Path | None = None) -> da.Array:
    """The matrix of inner products ``A P B^T`` of the rows of A and B, lazily.

    Parameters
    ----------
    A, B : dask arrays (m_a, n_dof), (m_b, n_dof), one block per subdomain along dof
    product : None (Euclidean), "l2" (needs ``layout``) or a ProductOperator
    layout : for ``product="l2"``: the store (path or SnapshotStore; then the tasks read the
        sub-meshes from it and the graph stays small) or its StoreLayout (sub-meshes embedded)

    Returns
    -------
    dask array (m_a, m_b), one chunk: the sum over subdomains of the per-subdomain products.

    Notes
    -----
    Builds the graph only. One task per subdomain (``A_k B_k^T``, or
    ``A_loc_k M_k B_loc_k^T`` with the local arrays of :func:`~romdask.offline.halo.local_snapshots`),
    then a summation tree of fan-in 8 over (m_a, m_b) matrices. Memory per task: the subdomain's
    blocks (and its neighbors' for the L2 product) plus one m_a x m_b matrix. Flops:
    ``2 m_a m_b n_dof`` (plus the sparse product).
    """
    A = _one_row_chunk(_as_dask(A))
    B = _one_row_chunk(_as_dask(B))
    product = _resolve_product(product, layout)
    if product is not None:
        check_subdomain_chunks(A, product.dof_offsets, "A")
        check_subdomain_chunks(B, product.dof_offsets, "B")
    elif A.chunks[1] != B.chunks[1]:
        raise ValueError(f"A and B must be chunked alike along dof; got {A.chunks[1]} and {B.chunks[1]}")
    token = tokenize(A, B, product)
    name = "romdask-inner-" + token
    dsk: dict = {}
    deps = [A, B]
    partial = []
    if product is None:
        for k in range(A.numblocks[1]):
            key = (name + "-part", k)
            dsk[key] = (_euclidean_block, (A.name, 0, k), (B.name, 0, k))
            partial.append(key)
    else:
        LA = local_snapshots(A, product.halos)
        LB = LA if B.name == A.name else local_snapshots(B, product.halos)
        deps = [LA, LB]
        ptoken = tokenize(product)
        for k in range(product.n_subdomains):
            key = (name + "-part", k)
            if product.matrices is not None:
                mkey = ("romdask-product-matrix-" + ptoken, k)
                dsk[mkey] = product.matrices[k]
                dsk[key] = (_product_block, (LA.name, 0, k), (LB.name, 0, k), mkey)
            else:
                extra, m, d = _product_mesh(product, k, ptoken)
                deps += extra
                dsk[key] = (_mass_product_block, (LA.name, 0, k), (LB.name, 0, k), m, d, LA.name == LB.name)
            partial.append(key)
    root = _tree(dsk, name + "-sum", partial, _sum)
    dsk[(name, 0, 0)] = root
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return da.Array(graph, name, chunks=((A.shape[0],), (B.shape[0],)), dtype=np.float64)


def gram(U, product: ProductOperator | str | None = None, *, layout: StoreLayout | str | Path | None = None) -> da.Array:
    """The snapshot Gram matrix ``U P U^T`` (n_snap, n_snap), lazily (see :func:`inner`).

    Euclidean: ``sum_k U_k U_k^T`` over subdomain blocks. L2: ``sum_k U_loc_k M_k U_loc_k^T``
    with the subdomain mass matrices (exact: they add up to M).
    """
    U = _as_dask(U)
    return inner(U, U, product, layout=layout)


# ---- lazy modes -----------------------------------------------------------------------------


def _left_multiply(w, u):
    with blas_single_thread():
        return aligned(w) @ aligned(u)


def combine(weights: np.ndarray, U: da.Array) -> da.Array:
    """``weights @ U`` lazily, one task per subdomain block (chunked like U along dof)."""
    W = da.from_array(np.ascontiguousarray(weights, np.float64), chunks=weights.shape,
                      name="romdask-weights-" + tokenize(weights))
    return da.blockwise(_left_multiply, "ij", W, "ik", U, "kj", concatenate=True, dtype=np.float64)


# ---- POD -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class POD:
    """Result of :func:`pod` / :func:`pod_update`.

    Attributes
    ----------
    singular_values : (n_computed,) all the computed singular values, decreasing (snapshot
        method / TSQR: n_snap of them; randomized: the sketch size)
    n_modes : number of modes kept
    modes : LAZY dask array (n_modes, n_dof), chunked like U along dof; rows orthonormal in
        the product
    right_vectors : (n_snap, n_computed) right singular vectors (Gram eigenvectors xi)
    method : "snapshots", "tsqr" or "randomized"
    tol, energy : the truncation criterion used (relative singular value / discarded energy)
    truncation_error : sqrt(sum of the discarded squared singular values) = the projection
        error ``||U - U P Phi^T Phi||_F`` in the product norm (over the computed values)
    product : None (Euclidean) or the ProductOperator
    gram : (n_snap, n_snap) Gram matrix (method of snapshots; kept for :func:`pod_update`)
    snapshots : the lazy snapshot array the modes are built from
    """

    singular_values: np.ndarray
    n_modes: int
    modes: da.Array
    right_vectors: np.ndarray
    method: str
    tol: float | None
    energy: float | None
    truncation_error: float
    product: ProductOperator | None = None
    gram: np.ndarray | None = field(default=None, repr=False)
    snapshots: da.Array | None = field(default=None, repr=False)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Squared singular values (the Gram eigenvalues)."""
        return self.singular_values ** 2


def _truncate(s: np.ndarray, tol: float | None, energy: float | None, n_modes: int | None) -> int:
    """Number of modes kept (never a zero singular value)."""
    if len(s) == 0 or s[0] <= 0:
        return 0
    n_pos = int(np.count_nonzero(s > s[0] * 1e-15 * max(len(s), 1)))
    if n_modes is not None:
        if int(n_modes) < 0:
            raise ValueError(f"n_modes must be >= 0; got {n_modes}")
        return min(int(n_modes), n_pos)
    if energy is not None:
        if not 0 <= energy < 1:
            raise ValueError(f"energy must be in [0, 1); got {energy}")
        cum = np.cumsum(s ** 2) / np.sum(s ** 2)
        return min(int(np.argmax(cum >= 1.0 - energy)) + 1, n_pos)
    if tol is None or tol < 0:
        raise ValueError(f"tol must be >= 0; got {tol}")
    return min(int(np.count_nonzero(s / s[0] > tol)), n_pos)


def _check_args(method: str, product, tol, energy, n_modes) -> None:
    if method not in ("snapshots", "tsqr", "randomized"):
        raise ValueError(f"method must be 'snapshots', 'tsqr' or 'randomized'; got {method!r}")
    if method == "tsqr" and product is not None and product.meshes is None:
        raise ValueError("method='tsqr' needs the Euclidean product or a mass product from mass_product() "
                         "(it factors the element mass matrices); use method='snapshots' for other products")


def _eig_pod(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    G = 0.5 * (G + G.T)
    lam, V = np.linalg.eigh(G)
    order = np.argsort(lam)[::-1]
    lam, V = lam[order], V[:, order]
    return np.sqrt(np.clip(lam, 0.0, None)), V


def gram_accuracy(m: int) -> float:
    """The smallest ``s_i / s_0`` the Gram method resolves for ``m`` snapshots: eigenvalue errors
    ~ m eps lambda_0, so smaller ratios than ``sqrt(10 m eps)`` carry no digits."""
    return float(np.sqrt(10 * m * np.finfo(float).eps))


def _gram_floor(s: np.ndarray) -> np.ndarray:
    """Zero the singular values below the Gram method's noise level (:func:`gram_accuracy`)."""
    if len(s) == 0 or s[0] <= 0:
        return s
    floor = s[0] * gram_accuracy(len(s))
    out = s.copy()
    if np.any((out > 0) & (out < floor)):
        log.info("method of snapshots: %d singular values below its accuracy floor s_0 * %.1e set to 0 "
                 "(use method='tsqr' for deeper modes)", int(np.count_nonzero((out > 0) & (out < floor))), floor / s[0])
    out[out < floor] = 0.0
    return out


def _finish(U, s, V, method, tol, energy, n_modes, product, G=None) -> POD:
    n = _truncate(s, tol, energy, n_modes)
    W = (V[:, :n] / s[:n]).T
    modes = combine(W, U)
    err = float(np.sqrt(np.sum(s[n:] ** 2)))
    return POD(s, n, modes, V, method, tol, energy, err, product, G, U)


_QR_ROWS = 1024  # rows per incremental QR step inside a block (in-cache panels)


def _qr_r_block(u):
    """R of ``u^T`` (u: (m, n)) by incremental QR over 1024-row slices: ``R <- qr([R; u^T_slice])``
    (measured 1.3-2x faster than one Householder QR of the whole (n, m) block, same accuracy)."""
    with blas_single_thread():
        ut = aligned(u).T
        R = np.zeros((0, u.shape[0]))
        for start in range(0, ut.shape[0], _QR_ROWS):
            R = np.linalg.qr(np.concatenate([R, ut[start : start + _QR_ROWS]], axis=0), mode="r")
        return R


def _qr_r_stack(parts):
    with blas_single_thread():
        return np.linalg.qr(np.concatenate(parts, axis=0), mode="r")


def tsqr_r(U: da.Array, product: ProductOperator | None = None) -> da.Array:
    """R of the QR factorization ``U^T = Q R`` (n_snap, n_snap) lazily, Q never formed.

    Per subdomain ``np.linalg.qr(U_k^T, mode="r")``, then the stacked R factors re-QR'd in a
    tree of fan-in 8. Householder QR costs ``2 n_k n_snap^2`` flops per block (10-25x slower per
    byte than the Gram product here) but is accurate to eps * s_0 for every singular value.

    With a mass product (from :func:`mass_product`): ``U M U^T = T^T T`` with T stacking, per
    element e and component c, ``(U_loc[:, conn_e, c] C_e)^T`` where ``M_e = C_e C_e^T`` is the
    Cholesky factor of the scalar element mass matrix (exact: M is the sum of the element
    matrices). T has ``3 n_en`` rows per element (8x the dofs for C3D8), so this costs about
    8x the Euclidean TSQR; it is done by incremental QR over chunks of 4096 elements.
    """
    U = _one_row_chunk(_as_dask(U))
    name = "romdask-tsqr-" + tokenize(U, product)
    dsk: dict = {}
    parts = []
    deps = [U]
    if product is None:
        for k in range(U.numblocks[1]):
            key = (name + "-block", k)
            dsk[key] = (_qr_r_block, (U.name, 0, k))
            parts.append(key)
    else:
        check_subdomain_chunks(U, product.dof_offsets)
        L = local_snapshots(U, product.halos)
        deps = [L]
        ptoken = tokenize(product)
        for k in range(product.n_subdomains):
            extra, m, d = _product_mesh(product, k, ptoken)
            deps += extra
            key = (name + "-block", k)
            dsk[key] = (_qr_r_weighted_block, (L.name, 0, k), m, d)
            parts.append(key)
    root = _tree(dsk, name + "-stack", parts, _qr_r_stack)
    dsk[(name + "-pad", 0, 0)] = (_pad_square, root, U.shape[0])
    graph = HighLevelGraph.from_collections(name + "-pad", dsk, dependencies=deps)
    return da.Array(graph, name + "-pad", chunks=((U.shape[0],), (U.shape[0],)), dtype=np.float64)


_ELEMENT_CHUNK = 4096  # elements per incremental QR in the M-weighted TSQR


def _element_mass_factors(mesh, connectivity, element_type, density):
    """Lower Cholesky factors (n_el, n_en, n_en) of the scalar element mass matrices of some
    elements of one type, integrated as :func:`romdask.fem.quadrature.mass_matrix` ("exact")."""
    from romdask.fem.elements import get_element
    from romdask.fem.quadrature import jacobians

    el = get_element(element_type)
    X = mesh.nodes[connectivity]
    _, det = jacobians(X, el.shape_derivatives(el.mass_points))
    N = el.shape(el.mass_points)
    w = det * el.mass_weights * density[:, None]
    me = np.einsum("eq,qa,qb->eab", w, N, N, optimize=True)
    return np.linalg.cholesky(me)


def _qr_r_weighted_block(u_local, mesh, density):
    """R of the QR of the tall matrix T with T^T T = U_loc M_k U_loc^T: rows
    ``(X[:, conn_e, c] C_e)^T`` for every element e of k and component c, M_e = C_e C_e^T."""
    with blas_single_thread():
        mesh = load_submesh(mesh)
        density = np.broadcast_to(np.asarray(density, np.float64), (mesh.n_elements,))
        n_snap = u_local.shape[0]
        X = aligned(u_local).reshape(n_snap, -1, 3)
        R = np.zeros((0, n_snap))
        start = 0
        for block in mesh.blocks:
            dens = density[start : start + len(block)]
            start += len(block)
            for a in range(0, len(block), _ELEMENT_CHUNK):
                conn = np.asarray(block.connectivity[a : a + _ELEMENT_CHUNK])
                C = _element_mass_factors(mesh, conn, block.type, dens[a : a + _ELEMENT_CHUNK])
                # Z[e, b, c, s] = sum_a C[e, a, b] X[s, conn[e, a], c]: one BLAS product per
                # element on C-contiguous operands (see Determinism above)
                Y = np.ascontiguousarray(X[:, conn, :].transpose(1, 2, 3, 0)).reshape(len(conn), -1, 3 * n_snap)
                Z = np.matmul(np.ascontiguousarray(C.transpose(0, 2, 1)), Y).reshape(-1, n_snap)
                R = np.linalg.qr(np.concatenate([R, Z], axis=0), mode="r")
        return R


def _pad_square(r, n):
    out = np.zeros((n, n))
    out[: r.shape[0]] = r
    return out


def _orthonormalize(W: np.ndarray, U: da.Array, product, passes: int = 2) -> np.ndarray:
    """Weights T W such that the rows of (T W) U are orthonormal in the product (Gram-based,
    rank-revealing, repeated ``passes`` times: each pass re-reads U)."""
    for _ in range(passes):
        Y = combine(W, U)
        C = aligned(inner(Y, Y, product).compute())
        d, V = np.linalg.eigh(0.5 * (C + C.T))
        keep = d > d.max() * 1e-13 if d.size and d.max() > 0 else np.zeros(d.shape, bool)
        W = (V[:, keep] / np.sqrt(d[keep])).T @ W
    return W


def _randomized(U, product, rank, oversampling, power_iterations, seed):
    n_snap = U.shape[0]
    l = min(n_snap, rank + oversampling)
    rng = np.random.default_rng(seed)
    W = _orthonormalize(rng.standard_normal((l, n_snap)), U, product)
    for _ in range(power_iterations):
        # subspace iteration: Z = orth(U P Q^T) (small, driver), Q = orth(Z^T U) (re-orthonormalized)
        Z = aligned(inner(U, combine(W, U), product).compute())
        Qz, _ = np.linalg.qr(Z)
        W = _orthonormalize(Qz.T, U, product)
    return _rayleigh_ritz(W, U, product)


def _rayleigh_ritz(W, U, product):
    """SVD of B = Q P U^T for Q = W U with orthonormal rows: (s, right vectors, mode weights)."""
    B = aligned(inner(combine(W, U), U, product).compute())  # (l, n_snap)
    Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
    return s, Vt.T, Ub.T @ W


def pod(
    U,
    *,
    product: ProductOperator | str | None = None,
    layout: StoreLayout | str | Path | None = None,
    tol: float = 1e-6,
    energy: float | None = None,
    n_modes: int | None = None,
    method: str = "snapshots",
    rank: int | None = None,
    power_iterations: int = 2,
    oversampling: int = 10,
    seed: int = 0,
    reorthonormalize: bool = False,
) -> POD:
    """Proper orthogonal decomposition of the snapshots (rows of U).

    Parameters
    ----------
    U : dask array or xarray DataArray (n_snap, n_dof), one block per subdomain along dof,
        best with one block along the snapshots too
        (``open_snapshots(path, row_chunks="subdomain").displacement``: then every subdomain's
        Gram / QR runs where its block was read; several row chunks are merged first, which
        moves them between workers)
    product : None (Euclidean), "l2" (consistent mass, needs ``layout``) or a ProductOperator
    layout : for ``product="l2"``: the store (path or SnapshotStore: the tasks read their
        sub-meshes from it, so the graph does not grow with the mesh) or its StoreLayout
    tol : keep the modes with ``s_i / s_0 > tol`` (relative singular value)
    energy : instead, keep the fewest modes with captured energy fraction ``>= 1 - energy``
    n_modes : instead, keep exactly this many (fewer if the rank is smaller)
    method : "snapshots" (Gram + eigh; default, one read pass; accurate to s_i/s_0 ~ 1e-6),
        "tsqr" (R-only TSQR + SVD of R; accurate to eps; with the mass product through the
        element mass Cholesky factors, see :func:`tsqr_r`), "randomized"
        (range finder on a sketch of ``rank + oversampling`` rows with ``power_iterations``)
    rank : randomized only: target rank (default ``n_modes``, else min(n_snap, 50))
    power_iterations, oversampling, seed : randomized only
    reorthonormalize : snapshots only: refine the kept modes by one orthonormalization from
        fresh products and a Rayleigh-Ritz step (two more passes over U): modes orthonormal to
        round-off even for s_i / s_0 ~ 1e-6, where the plain Gram modes lose about
        eps (s_0 / s_i)^2

    Returns
    -------
    POD
        The modes are a LAZY dask array ``lambda^-1/2 xi^T U`` (one task per subdomain);
        compute or store them (``da.to_zarr``) when needed.

    Notes
    -----
    Cost (N dofs, m snapshots): "snapshots" one pass over U plus ``m^2 N`` flops, eigh
    ``O(m^3)`` in the driver (the only array gathered: m x m); memory per task one subdomain
    block (+ neighbors' halo for L2). "tsqr": one pass, ``2 N m^2`` flops; the driver gathers
    R (m x m). "randomized": ``2 + 3 p + 1`` passes over U (p power iterations, every
    orthonormalization done twice), ``O(N m l)`` flops per pass. Modes: one more pass when
    computed. Gram accuracy: errors grow like eps (s_0/s_i)^2, so below s_i/s_0 ~ 1e-7 use
    "tsqr". With ``power_iterations=0`` the randomized subspace is poor on POD-like spectra.

    References
    ----------
    Casenave et al., arXiv 1812.07228, sec. "snapshot POD"; Halko, Martinsson, Tropp (2011).
    """
    U = _as_dask(U)
    product = _resolve_product(product, layout)
    _check_args(method, product, tol, energy, n_modes)
    if product is not None:
        check_subdomain_chunks(U, product.dof_offsets)
    with blas_single_thread():  # the driver's factorizations: same bytes whatever the BLAS threads
        return _pod(U, product, tol, energy, n_modes, method, rank, power_iterations, oversampling, seed,
                    reorthonormalize)


def _pod(U, product, tol, energy, n_modes, method, rank, power_iterations, oversampling, seed,
         reorthonormalize) -> POD:
    if method == "snapshots":
        G = aligned(gram(U, product).compute())
        s, V = _eig_pod(G)
        s = _gram_floor(s)
        result = _finish(U, s, V, method, tol, energy, n_modes, product, G)
        if not reorthonormalize or result.n_modes == 0:
            return result
        # CholeskyQR2-like refinement: orthonormalize the modes from fresh products, then
        # Rayleigh-Ritz on their span (two more passes over U)
        W0 = (V[:, : result.n_modes] / s[: result.n_modes]).T
        s2, V2, W2 = _rayleigh_ritz(_orthonormalize(W0, U, product, passes=1), U, product)
        n = result.n_modes
        s_all = np.concatenate([s2[:n], s[n:]])
        V_all = np.concatenate([V2[:, :n], V[:, n:]], axis=1)
        return POD(s_all, n, combine(W2[:n], U), V_all, method, tol, energy, result.truncation_error,
                   product, G, U)
    if method == "tsqr":
        R = aligned(tsqr_r(U, product).compute())
        _, s, Vt = np.linalg.svd(R)
        return _finish(U, s, Vt.T, method, tol, energy, n_modes, product)
    target = int(rank if rank is not None else (n_modes if n_modes is not None else min(U.shape[0], 50)))
    s, V, W_all = _randomized(U, product, target, int(oversampling), int(power_iterations), seed)
    n = _truncate(s, tol, energy, n_modes)
    return POD(s, n, combine(W_all[:n], U), V, method, tol, energy, float(np.sqrt(np.sum(s[n:] ** 2))),
               product, None, U)


def pod_update(
    previous: POD,
    U_new,
    *,
    tol: float | None = None,
    energy: float | None = None,
    n_modes: int | None = None,
) -> POD:
    """POD of the previous snapshots followed by ``U_new`` (new runs), reusing the old Gram.

    Parameters
    ----------
    previous : a POD (keeps its ``snapshots`` and, for the method of snapshots, ``gram``)
    U_new : dask array (m_new, n_dof) chunked like the previous snapshots along dof
    tol, energy, n_modes : truncation (default: the previous criterion)

    Returns
    -------
    POD
        method "snapshots", exactly the POD of ``concatenate([U_old, U_new])`` (same product).

    Notes
    -----
    Exact update of the method of snapshots: only the new blocks ``U_new P U_old^T`` and
    ``U_new P U_new^T`` are computed (one pass over U_old and U_new, ``(m_new m_old + m_new^2) N``
    flops instead of ``(m_old + m_new)^2 N``), then eigh of the (m_old + m_new)^2 Gram. A
    previous POD without a Gram (tsqr / randomized) costs one more pass over U_old.
    """
    if previous.snapshots is None:
        raise ValueError("pod_update needs previous.snapshots (the POD object from pod())")
    U_old = previous.snapshots
    U_new = _as_dask(U_new)
    if U_new.chunks[1] != U_old.chunks[1]:
        raise ValueError(f"U_new must be chunked like the previous snapshots along dof: {U_old.chunks[1]}; got {U_new.chunks[1]}")
    product = previous.product
    todo = [inner(U_new, U_old, product), inner(U_new, U_new, product)]
    if previous.gram is None:
        todo.append(gram(U_old, product))
    results = dask.compute(*todo)
    G_old = results[2] if previous.gram is None else previous.gram
    cross, G_nn = results[0], results[1]
    G = np.block([[G_old, cross.T], [cross, G_nn]])
    if tol is None and energy is None and n_modes is None:
        tol, energy = previous.tol, previous.energy
        if tol is None and energy is None:
            n_modes = previous.n_modes
    U = da.concatenate([U_old, U_new], axis=0)
    with blas_single_thread():
        s, V = _eig_pod(aligned(G))
    s = _gram_floor(s)
    return _finish(U, s, V, "snapshots", tol, energy, n_modes, product, G)
