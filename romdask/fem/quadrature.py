"""Integration-point data of a mesh and the small-strain kernels built on it.

The point numbering follows ``docs/conventions.md``: block by block, element by element, then
CalculiX's own point order inside the element. Strains carry engineering shear in the order
``xx, yy, zz, xy, xz, yz``; stresses carry tensor components in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from .elements import Element, get_element
from .mesh import Mesh

__all__ = [
    "BlockQuadrature",
    "Quadrature",
    "jacobians",
    "quadrature",
    "strain",
    "internal_force",
    "strain_matrix",
    "mass_matrix",
    "pressure_vector",
    "nodal_force_vector",
    "body_force_vector",
]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class BlockQuadrature:
    """Integration-point data of one cell block.

    Attributes
    ----------
    block : int
        Index of the block in ``mesh.blocks``.
    element : Element
    connectivity : ndarray of int64, shape (n_el, n_en)
    dNdx : ndarray of float64, shape (n_el, n_ip, n_en, 3)
        Physical shape-function gradients at the points.
    weights : ndarray of float64, shape (n_el, n_ip)
        Quadrature weight times det J.
    ip_offset : int
        Global index of the block's first integration point.
    element_offset : int
        Global index of the block's first element.
    """

    block: int
    element: Element
    connectivity: np.ndarray
    dNdx: np.ndarray
    weights: np.ndarray
    ip_offset: int
    element_offset: int

    @property
    def n_points(self) -> int:
        return self.weights.size


@dataclass(frozen=True, eq=False)
class Quadrature:
    """Integration points of a whole mesh (see :func:`quadrature`).

    Attributes
    ----------
    blocks : tuple of BlockQuadrature
    n_points : int
    n_dofs : int
    weights : ndarray, shape (n_points,)
        Quadrature weight times det J (the volume attached to each point).
    element_of_point : ndarray of int64, shape (n_points,)
        Global element index of each point.
    local_point : ndarray of int64, shape (n_points,)
        Index of each point inside its element (CalculiX's order, 0-based).
    coordinates : ndarray, shape (n_points, 3)
        Physical coordinates of the points.
    """

    blocks: tuple[BlockQuadrature, ...]
    n_points: int
    n_dofs: int
    weights: np.ndarray
    element_of_point: np.ndarray
    local_point: np.ndarray
    coordinates: np.ndarray


# ---- geometry ----------------------------------------------------------------------------


def jacobians(X: np.ndarray, dN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J[e, q, i, j] = dx_i / dxi_j and det J for element coordinates X (n_el, n_en, 3)."""
    J = np.einsum("eai,qaj->eqij", X, dN, optimize=True)
    det = (
        J[..., 0, 0] * (J[..., 1, 1] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 1])
        - J[..., 0, 1] * (J[..., 1, 0] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 0])
        + J[..., 0, 2] * (J[..., 1, 0] * J[..., 2, 1] - J[..., 1, 1] * J[..., 2, 0])
    )
    return J, det


def _check_det(det: np.ndarray, mesh: Mesh, block: int) -> None:
    bad = np.flatnonzero(~(det > 0.0).all(axis=1))
    if bad.size:
        b = mesh.blocks[block]
        ids = b.ids[bad][:10].tolist()
        more = f" (and {bad.size - 10} more)" if bad.size > 10 else ""
        raise ValueError(
            f"non-positive Jacobian determinant in {b.type} element(s) with id {ids}{more}: "
            "the element is inverted or its node order is wrong (CalculiX/Abaqus order expected)"
        )


def quadrature(mesh: Mesh) -> Quadrature:
    """Integration-point gradients, weights and coordinates of every element.

    Parameters
    ----------
    mesh : Mesh

    Returns
    -------
    Quadrature

    Raises
    ------
    ValueError
        If det J <= 0 at a point of some element (inverted element or wrong node order); the
        message names the solver's element ids.

    Notes
    -----
    Vectorized over elements with ``einsum``. Memory: ``dNdx`` holds
    ``n_el * n_ip * n_en * 3`` doubles (about 70 MB for 45k C3D8), plus a transient
    ``n_el * n_ip * 9`` Jacobian array.
    """
    blocks = []
    weights, elem, local, coords = [], [], [], []
    ip_offset = 0
    el_offsets = mesh.block_offsets
    for k, b in enumerate(mesh.blocks):
        el = get_element(b.type)
        conn = np.ascontiguousarray(b.connectivity, dtype=np.int64)
        X = mesh.nodes[conn]  # (n_el, n_en, 3)
        dN = el.shape_derivatives(el.points)  # (n_ip, n_en, 3)
        J, det = jacobians(X, dN)
        _check_det(det, mesh, k)
        inv = np.linalg.inv(J)  # (n_el, n_ip, 3, 3): dxi_j / dx_i
        dNdx = np.einsum("qaj,eqji->eqai", dN, inv, optimize=True)
        del J, inv
        w = det * el.weights[None, :]
        n_el, n_ip = w.shape
        blocks.append(BlockQuadrature(k, el, _readonly(conn), _readonly(np.ascontiguousarray(dNdx)),
                                      _readonly(w), ip_offset, int(el_offsets[k])))
        weights.append(w.ravel())
        elem.append(np.repeat(np.arange(n_el, dtype=np.int64) + el_offsets[k], n_ip))
        local.append(np.tile(np.arange(n_ip, dtype=np.int64), n_el))
        coords.append(np.einsum("qa,eai->eqi", el.shape(el.points), X).reshape(-1, 3))
        ip_offset += n_el * n_ip

    def cat(parts, shape, dtype):
        return _readonly(np.concatenate(parts) if parts else np.zeros(shape, dtype))

    return Quadrature(
        tuple(blocks), ip_offset, mesh.n_dofs,
        cat(weights, (0,), np.float64), cat(elem, (0,), np.int64),
        cat(local, (0,), np.int64), cat(coords, (0, 3), np.float64),
    )


# ---- kernels -----------------------------------------------------------------------------


@numba.njit(parallel=True, cache=True)
def _strain_kernel(conn, dNdx, u, offset, out):  # pragma: no cover - compiled
    n_el, n_ip, n_en, _ = dNdx.shape
    for e in numba.prange(n_el):
        for q in range(n_ip):
            h00 = h01 = h02 = h10 = h11 = h12 = h20 = h21 = h22 = 0.0
            for a in range(n_en):
                n = conn[e, a]
                gx = dNdx[e, q, a, 0]
                gy = dNdx[e, q, a, 1]
                gz = dNdx[e, q, a, 2]
                ux = u[n, 0]
                uy = u[n, 1]
                uz = u[n, 2]
                h00 += ux * gx
                h01 += ux * gy
                h02 += ux * gz
                h10 += uy * gx
                h11 += uy * gy
                h12 += uy * gz
                h20 += uz * gx
                h21 += uz * gy
                h22 += uz * gz
            p = offset + e * n_ip + q
            out[p, 0] = h00
            out[p, 1] = h11
            out[p, 2] = h22
            out[p, 3] = h01 + h10
            out[p, 4] = h02 + h20
            out[p, 5] = h12 + h21


@numba.njit(cache=True)
def _force_kernel(conn, dNdx, w, stress, offset, out):  # pragma: no cover - compiled
    n_el, n_ip, n_en, _ = dNdx.shape
    for e in range(n_el):
        for q in range(n_ip):
            p = offset + e * n_ip + q
            wq = w[e, q]
            sxx = stress[p, 0] * wq
            syy = stress[p, 1] * wq
            szz = stress[p, 2] * wq
            sxy = stress[p, 3] * wq
            sxz = stress[p, 4] * wq
            syz = stress[p, 5] * wq
            for a in range(n_en):
                gx = dNdx[e, q, a, 0]
                gy = dNdx[e, q, a, 1]
                gz = dNdx[e, q, a, 2]
                d = 3 * conn[e, a]
                out[d] += sxx * gx + sxy * gy + sxz * gz
                out[d + 1] += sxy * gx + syy * gy + syz * gz
                out[d + 2] += sxz * gx + syz * gy + szz * gz


def strain(quad: Quadrature, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Small strain at every integration point.

    Parameters
    ----------
    quad : Quadrature
    u : ndarray, shape (n_dofs,)
        Displacement, dof ``3 * node + component``.
    out : ndarray, shape (n_points, 6), optional
        Overwritten with the result.

    Returns
    -------
    ndarray, shape (n_points, 6)
        ``xx, yy, zz, xy, xz, yz`` with ENGINEERING shear (gamma = 2 eps).

    Notes
    -----
    A numba kernel parallel over elements: ``n_points * n_en * 9`` multiply-adds.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.size != quad.n_dofs or u.ndim not in (1, 2):
        raise ValueError(f"u must have {quad.n_dofs} dofs (shape ({quad.n_dofs},)); got shape {u.shape}")
    u3 = np.ascontiguousarray(u.reshape(-1, 3))
    if out is None:
        out = np.empty((quad.n_points, 6))
    elif out.shape != (quad.n_points, 6) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape ({quad.n_points}, 6)")
    for b in quad.blocks:
        if b.n_points:
            _strain_kernel(b.connectivity, b.dNdx, u3, b.ip_offset, out)
    return out


def internal_force(quad: Quadrature, stress: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Internal force ``sum_points w B^T sigma``.

    Parameters
    ----------
    quad : Quadrature
    stress : ndarray, shape (n_points, 6)
        Tensor components ``xx, yy, zz, xy, xz, yz``.
    out : ndarray, shape (n_dofs,), optional
        Overwritten with the result (zeroed first).

    Returns
    -------
    ndarray, shape (n_dofs,)

    Notes
    -----
    Serial numba scatter, ``n_points * n_en * 9`` multiply-adds.
    """
    stress = np.ascontiguousarray(stress, dtype=np.float64)
    if stress.shape != (quad.n_points, 6):
        raise ValueError(f"stress must have shape ({quad.n_points}, 6); got {stress.shape}")
    if out is None:
        out = np.zeros(quad.n_dofs)
    else:
        if out.shape != (quad.n_dofs,) or out.dtype != np.float64:
            raise ValueError(f"out must be a float64 array of shape ({quad.n_dofs},); got {out.dtype} {out.shape}")
        out[:] = 0.0
    for b in quad.blocks:
        if b.n_points:
            _force_kernel(b.connectivity, b.dNdx, b.weights, stress, b.ip_offset, out)
    return out


def strain_matrix(quad: Quadrature) -> sp.csr_matrix:
    """The strain-displacement matrix B with ``B @ u == strain(quad, u).ravel()``.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (6 * n_points, n_dofs)
        Rows point-major, component-minor; engineering shear. Built directly in CSR form
        (``n_en`` entries in the normal rows, ``2 n_en`` in the shear rows), sorted indices.

    Notes
    -----
    ``9 * n_en`` stored entries per point: 12 bytes each with int32 indices (about 320 MB for
    45k C3D8).
    """
    index_type = np.int32 if max(quad.n_dofs, 9 * 20 * quad.n_points) < 2**31 - 1 else np.int64
    indices, data, lengths = [], [], []
    for b in quad.blocks:
        n_el, n_ip, n_en, _ = b.dNdx.shape
        c = (3 * b.connectivity).astype(index_type)[:, None, :]
        c = np.broadcast_to(c, (n_el, n_ip, n_en))
        g = b.dNdx
        # per point: rows xx, yy, zz (n_en entries), xy, xz, yz (2 n_en entries)
        indices.append(np.concatenate(
            [c, c + 1, c + 2, c, c + 1, c, c + 2, c + 1, c + 2], axis=-1).reshape(-1))
        data.append(np.concatenate(
            [g[..., 0], g[..., 1], g[..., 2], g[..., 1], g[..., 0], g[..., 2], g[..., 0], g[..., 2], g[..., 1]],
            axis=-1).reshape(-1))
        lengths.append(np.tile(np.array([1, 1, 1, 2, 2, 2]) * n_en, n_el * n_ip))
    shape = (6 * quad.n_points, quad.n_dofs)
    if not indices:
        return sp.csr_matrix(shape)
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(index_type)
    B = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=shape)
    B.sort_indices()
    return B


def mass_matrix(mesh: Mesh, density: float | np.ndarray = 1.0, *, rule: str = "exact") -> sp.csr_matrix:
    """Consistent mass matrix for the vector displacement.

    Parameters
    ----------
    mesh : Mesh
    density : float or ndarray of shape (n_elements,)
    rule : {"exact", "element"}
        ``"exact"`` (default): :attr:`Element.mass_points`; ``"element"``: the element's own
        stiffness rule, as CalculiX's ``*FREQUENCY`` mass (``intscheme=0``).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_dofs, n_dofs)
        ``M[3a+c, 3b+c] = sum_e int rho N_a N_b``, the scalar mass on each component.

    Notes
    -----
    Integrated with :attr:`Element.mass_points`, exact on undistorted elements: C3D4 with the
    4-point rule, C3D10 with CalculiX's 15-point rule ``gauss3d6``, C3D8 2x2x2, C3D20 AND C3D20R
    with the 3x3x3 rule. For C3D4, C3D8, C3D20 and C3D20R this is CalculiX's mass with
    ``intscheme=1`` (initial acceleration of dynamic steps). CalculiX's ``*FREQUENCY`` mass
    (``intscheme=0``) uses the stiffness rule instead (C3D4 1 point, C3D20R 2x2x2), and its C3D10
    mass always uses the 4-point rule, which is not exact for N_a N_b (degree 4): for C3D4,
    C3D10 and C3D20R this matrix therefore differs from CalculiX's exported ``.mas``.
    Memory: transient COO arrays of ``3 * n_en^2`` entries per element before summation.
    """
    if rule not in ("exact", "element"):
        raise ValueError(f"rule must be 'exact' or 'element'; got {rule!r}")
    rho = np.broadcast_to(np.asarray(density, dtype=np.float64), (mesh.n_elements,))
    if not np.all(np.isfinite(rho)):
        raise ValueError("density must be finite")
    rows, cols, vals = [], [], []
    offsets = mesh.block_offsets
    for k, b in enumerate(mesh.blocks):
        el = get_element(b.type)
        conn = b.connectivity
        X = mesh.nodes[conn]
        pts, wts = (el.mass_points, el.mass_weights) if rule == "exact" else (el.points, el.weights)
        _, det = jacobians(X, el.shape_derivatives(pts))
        _check_det(det, mesh, k)
        N = el.shape(pts)  # (n_q, n_en)
        w = det * wts * rho[offsets[k] : offsets[k + 1], None]
        Me = np.einsum("eq,qa,qb->eab", w, N, N, optimize=True)
        for c in range(3):
            rows.append(np.broadcast_to(3 * conn[:, :, None] + c, Me.shape).ravel())
            cols.append(np.broadcast_to(3 * conn[:, None, :] + c, Me.shape).ravel())
            vals.append(Me.ravel())
    if not rows:
        return sp.csr_matrix((mesh.n_dofs, mesh.n_dofs))
    M = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(mesh.n_dofs, mesh.n_dofs),
    )
    return M.tocsr()


def pressure_vector(mesh: Mesh, faces: np.ndarray, pressure: float | np.ndarray = 1.0) -> np.ndarray:
    """Consistent nodal forces of a pressure on element faces (CalculiX ``*DLOAD``, ``Pn``).

    Parameters
    ----------
    mesh : Mesh
    faces : int array, shape (n_faces, 2)
        (global element index, 0-based CalculiX face number: S1 -> 0), e.g. a value of
        ``mesh.surfaces``.
    pressure : float or ndarray of shape (n_faces,)
        Positive pressure pushes INTO the body (force along the inward normal).

    Returns
    -------
    ndarray, shape (n_dofs,)

    Notes
    -----
    Uses CalculiX's face rules (``e_c3d.f``): 2x2 for C3D8 and C3D20R, 3x3 for C3D20,
    3 points for C3D10, 1 point for C3D4, which are exact on flat faces with straight edges.
    The load acts on the undeformed geometry.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 2)
    p = np.broadcast_to(np.asarray(pressure, dtype=np.float64), (len(faces),))
    out = np.zeros(mesh.n_dofs)
    if not len(faces):
        return out
    if faces[:, 0].min() < 0 or faces[:, 0].max() >= mesh.n_elements:
        raise ValueError(f"face element indices must be in 0..{mesh.n_elements - 1}")
    block, local = mesh.element_block(faces[:, 0])
    for k in np.unique(block):
        b = mesh.blocks[k]
        el = get_element(b.type)
        sel = np.flatnonzero(block == k)
        numbers = faces[sel, 1]
        if numbers.min() < 0 or numbers.max() >= len(el.faces):
            raise ValueError(
                f"{b.type} has faces 0..{len(el.faces) - 1} (CalculiX S1..S{len(el.faces)}, 0-based); "
                f"got {sorted(set(numbers.tolist()) - set(range(len(el.faces))))}"
            )
        table = np.array(el.faces, dtype=np.int64)
        fnodes = b.connectivity[local[sel][:, None], table[numbers]]  # (n_f, n_fn)
        X = mesh.nodes[fnodes]
        fe = el.face
        N = fe.shape(fe.points)  # (n_fp, n_fn)
        dN = fe.shape_derivatives(fe.points)  # (n_fp, n_fn, 2)
        t = np.einsum("fai,qad->fqid", X, dN)
        normal = np.cross(t[..., 0], t[..., 1])  # outward, |n| = surface Jacobian
        force = -np.einsum("f,q,qa,fqi->fai", p[sel], fe.weights, N, normal)
        np.add.at(out, (3 * fnodes[:, :, None] + np.arange(3)).ravel(), force.ravel())
    return out


def nodal_force_vector(n_dofs: int, nodes, component: int, value: float | np.ndarray) -> np.ndarray:
    """A force vector with ``value`` on dof ``3 * node + component`` of each node in ``nodes``.

    Repeated nodes accumulate.
    """
    if component not in (0, 1, 2):
        raise ValueError(f"component must be 0, 1 or 2 (x, y, z); got {component!r}")
    nodes = np.asarray(nodes, dtype=np.int64).ravel()
    if nodes.size and (nodes.min() < 0 or 3 * nodes.max() + component >= n_dofs):
        raise ValueError(f"nodes must be in 0..{n_dofs // 3 - 1}")
    out = np.zeros(n_dofs)
    np.add.at(out, 3 * nodes + component, np.broadcast_to(np.asarray(value, np.float64), nodes.shape))
    return out


def _body_force_density(load, x: np.ndarray) -> np.ndarray:
    """Force per unit volume (amplitude excluded) of a Centrifugal or Gravity load at points ``x`` (..., 3)."""
    coefficient = float(load.density) * float(load.value)
    if hasattr(load, "axis"):  # Centrifugal: rho omega^2 (q - (q.a) a), q = x - point (e_c3d.f)
        axis = np.asarray(load.axis, np.float64)
        q = x - np.asarray(load.point, np.float64)
        return coefficient * (q - (q @ axis)[..., None] * axis)
    if hasattr(load, "direction"):  # Gravity: rho g direction
        return np.broadcast_to(coefficient * np.asarray(load.direction, np.float64), x.shape)
    raise TypeError(f"body_force_vector takes a Centrifugal or Gravity load; got {type(load).__name__}")


def body_force_vector(mesh: Mesh, load) -> np.ndarray:
    """Consistent nodal forces of a centrifugal or gravity body force (CalculiX ``*DLOAD``
    ``CENTRIF`` / ``GRAV``), amplitude excluded.

    Parameters
    ----------
    mesh : Mesh
    load : romdask.problem.loads.Centrifugal or Gravity
        Acts on ``load.elements`` with the coefficient ``load.value * load.density``: the force
        per unit volume is ``density * omega^2 * (q - (q.a) a)`` with ``q = x - point`` and ``a``
        the unit axis (centrifugal), or ``density * g * direction`` (gravity).

    Returns
    -------
    ndarray, shape (n_dofs,)
        ``f[3 b + i] = sum_elements sum_q N_b(x_q) force_i(x_q) w_q det J_q``.

    Raises
    ------
    ValueError
        Element indices outside the mesh, or an inverted element.
    TypeError
        Another kind of load.

    Notes
    -----
    As CalculiX (``e_c3d.f``, "body forces"): the element's own volume rule (the stiffness
    rule: C3D20R 2x2x2, C3D10 4 points, C3D4 1 point) and the UNDEFORMED coordinates of the
    points (no NLGEOM). On straight-edged elements: gravity exactly; the centrifugal force
    (linear in x) exactly on C3D8 and C3D20R parallelepipeds, and on C3D10 its resultant and its
    work on linear displacement fields (C3D4's one point is exact for neither). Vectorized over
    the loaded elements: O(n_elements * n_ip * n_en).
    """
    if not hasattr(load, "elements") or not (hasattr(load, "axis") or hasattr(load, "direction")):
        raise TypeError(f"body_force_vector takes a Centrifugal or Gravity load; got {type(load).__name__}")
    elements = np.asarray(load.elements, np.int64).ravel()
    out = np.zeros(mesh.n_dofs)
    if not elements.size:
        return out
    if elements.min() < 0 or elements.max() >= mesh.n_elements:
        raise ValueError(f"body force {getattr(load, 'name', '')!r}: element indices must be in "
                         f"0..{mesh.n_elements - 1}")
    block, local = mesh.element_block(elements)
    for k in np.unique(block):
        b = mesh.blocks[k]
        el = get_element(b.type)
        conn = np.asarray(b.connectivity, np.int64)[local[block == k]]
        X = mesh.nodes[conn]  # (n_el, n_en, 3)
        _, det = jacobians(X, el.shape_derivatives(el.points))
        _check_det(det, mesh, k)
        N = el.shape(el.points)  # (n_ip, n_en)
        x = np.einsum("qa,eai->eqi", N, X)
        force = np.einsum("eq,qa,eqi->eai", det * el.weights[None, :], N, _body_force_density(load, x))
        out += np.bincount((3 * conn[:, :, None] + np.arange(3)).ravel(), force.ravel(), minlength=mesh.n_dofs)
    return out
