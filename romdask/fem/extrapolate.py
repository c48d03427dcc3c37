"""Integration-point values to nodes, as CalculiX does for its ``.frd`` output.

CalculiX 2.20 (``extrapolate.f``, GitHub ``Dhondtguido/CalculiX`` commit 3593817) builds nodal
values element by element, then takes at every node the plain mean of the values of the elements
that share it (no volume weighting):

- C3D8, C3D20R (2x2x2 points): the trilinear field through the 8 points, evaluated at the 8
  corners; C3D20R mid-edge nodes get the mean of the edge's two corners;
- C3D20 (27 points): the least-squares fit of the 20-node serendipity field to the 27 values
  (pseudo-inverse of the shape functions at the points), evaluated at the 20 nodes;
- C3D10 (4 points): the linear field through the 4 points at the corners, mid-edge nodes the
  mean of the edge's corners;
- C3D4 (1 point): the constant value.

CalculiX stores these matrices as rounded decimal tables: the exact matrices rounded to 4
significant digits (2x2x2: 2.549, -0.683, 0.183, -0.04904) and to 5 decimals (the tetrahedron
and 27-point tables). Rows then sum to 0.99996-1.00005, not 1, so that CalculiX's nodal stress
of a uniform field is off by up to 5e-5 relative: :func:`ip_to_nodes` reproduces those tables by
default (``exact=False``) to agree with CalculiX to print precision, and the exact matrices on
request.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .elements import get_element
from .mesh import Mesh

__all__ = ["extrapolation_matrix", "ip_to_elements", "ip_to_nodes", "node_element_counts"]

#: element types whose corner values come from the linear element through their points
_CORNER_RULES = {"C3D8": "C3D8", "C3D20R": "C3D8", "C3D10": "C3D4"}


def _round_significant(a: np.ndarray, digits: int) -> np.ndarray:
    out = np.zeros_like(a)
    nonzero = a != 0.0
    exponent = np.floor(np.log10(np.abs(a[nonzero])))
    scale = 10.0 ** (digits - 1 - exponent)
    out[nonzero] = np.round(a[nonzero] * scale) / scale
    return out


def _midside_pairs(element_type: str) -> list[tuple[int, int]]:
    """(corner i, corner j) of each mid-edge node, found from the reference coordinates."""
    ref = get_element(element_type).ref_nodes
    n_corners = 8 if element_type.startswith(("C3D8", "C3D20")) else 4
    pairs = []
    for m in range(n_corners, len(ref)):
        found = [(i, j) for i in range(n_corners) for j in range(i + 1, n_corners)
                 if np.allclose((ref[i] + ref[j]) / 2.0, ref[m])]  # fmt: skip
        pairs.append(found[0])
    return pairs


@cache
def _matrix(element_type: str, exact: bool) -> np.ndarray:
    element = get_element(element_type)
    if element_type == "C3D4":
        return np.ones((4, 1))
    if element_type == "C3D20":
        a = np.linalg.pinv(element.shape(element.points))
        return a if exact else np.round(a, 5)
    linear = get_element(_CORNER_RULES[element_type])
    corners = np.linalg.inv(linear.shape(element.points))  # (n_corners, n_ip): corner from points
    if not exact:
        corners = _round_significant(corners, 4) if element_type != "C3D10" else np.round(corners, 5)
    mid = [(corners[i] + corners[j]) / 2.0 for i, j in _midside_pairs(element_type)]
    return np.vstack([corners] + mid)


def extrapolation_matrix(element_type: str, *, exact: bool = False) -> np.ndarray:
    """The (n_nodes, n_points) matrix giving one element's nodal values from its
    integration-point values (CalculiX's node and point orders).

    Parameters
    ----------
    element_type : "C3D4", "C3D10", "C3D8", "C3D20" or "C3D20R"
    exact : False: CalculiX's rounded tables (see the module notes); True: the exact matrices
        (a uniform field is reproduced to rounding)

    Returns
    -------
    ndarray (n_nodes, n_points), read-only.

    Raises
    ------
    ValueError
        Unknown element type (the message lists the supported ones).
    """
    get_element(element_type)  # raises for unknown names
    a = _matrix(element_type, bool(exact))
    a.setflags(write=False)
    return a


def node_element_counts(mesh: Mesh) -> np.ndarray:
    """Number of element-node incidences of every node (0 for nodes of no element): the divisor
    of CalculiX's nodal mean."""
    counts = np.zeros(mesh.n_nodes, np.int64)
    for b in mesh.blocks:
        counts += np.bincount(b.connectivity.ravel(), minlength=mesh.n_nodes)
    return counts


def _check_values(mesh: Mesh, values: np.ndarray) -> tuple[np.ndarray, bool]:
    n_points = sum(len(b) * get_element(b.type).n_points for b in mesh.blocks)
    values = np.asarray(values, dtype=np.float64)
    squeeze = values.ndim == 1
    if squeeze:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != n_points:
        raise ValueError(
            f"ip_to_nodes needs values of shape (n_points, k) or (n_points,) with n_points = {n_points} "
            f"integration points of the mesh (romdask's global point order); got {np.shape(values)}"
        )
    return values, squeeze


def ip_to_nodes(mesh: Mesh, values: np.ndarray, *, exact: bool = False,
                counts: np.ndarray | None = None) -> np.ndarray:
    """Integration-point values extrapolated to the nodes and averaged, as CalculiX's ``.frd``.

    Parameters
    ----------
    mesh : Mesh
    values : (n_points, k) or (n_points,) in romdask's global integration-point order
        (block, element, CalculiX point order: docs/conventions.md), e.g. stresses (Voigt
        ``xx yy zz xy xz yz``) or the cumulated plastic strain; components are extrapolated
        independently.
    exact : use the exact extrapolation matrices instead of CalculiX's rounded tables
        (:func:`extrapolation_matrix`).
    counts : :func:`node_element_counts` of ``mesh``, when already computed (saves a pass over
        the connectivity when called once per time step).

    Returns
    -------
    ndarray (n_nodes, k) or (n_nodes,) float64: at each node the plain mean of the values its
    elements extrapolate to it; NaN at nodes used by no element (CalculiX writes no value there).

    Raises
    ------
    ValueError
        ``values`` of the wrong shape (the message gives the expected point count).

    Notes
    -----
    Cost: one small matrix product per block, ``n_el * n_nodes_per_el * n_points_per_el * k``
    multiply-adds, and ``k`` ``bincount`` scatters. Memory: the output plus a transient
    ``(n_el, n_nodes_per_el, k)`` float64 array of the largest block. Nonlinear quantities
    (von Mises stress) should be computed from the extrapolated components, as CalculiX's
    viewer does, or extrapolated themselves: both are in use, they differ.

    References
    ----------
    CalculiX 2.20 source, ``extrapolate.f`` (G. Dhondt).
    """
    values, squeeze = _check_values(mesh, values)
    k = values.shape[1]
    sums = np.zeros((mesh.n_nodes, k))
    start = 0
    for b in mesh.blocks:
        matrix = extrapolation_matrix(b.type, exact=exact)
        n_ip = matrix.shape[1]
        stop = start + len(b) * n_ip
        nodal = np.matmul(matrix, values[start:stop].reshape(len(b), n_ip, k))  # (n_el, n_en, k)
        flat = b.connectivity.ravel()
        for c in range(k):
            sums[:, c] += np.bincount(flat, weights=nodal[:, :, c].ravel(), minlength=mesh.n_nodes)
        start = stop
    if counts is None:
        counts = node_element_counts(mesh)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / counts[:, None]
    out[counts == 0] = np.nan
    return out[:, 0] if squeeze else out


def ip_to_elements(mesh: Mesh, values: np.ndarray) -> np.ndarray:
    """Plain mean of each element's integration-point values (cell data for VTU output).

    Parameters
    ----------
    mesh : Mesh
    values : (n_points, k) or (n_points,) in romdask's global integration-point order

    Returns
    -------
    ndarray (n_elements, k) or (n_elements,) in global element order.

    Raises
    ------
    ValueError
        ``values`` of the wrong shape.

    Notes
    -----
    The unweighted mean over the points (as the demo's VTU output), not the volume average:
    they differ for distorted elements and for C3D20's 27-point rule. Cost O(n_points k).
    """
    values, squeeze = _check_values(mesh, values)
    k = values.shape[1]
    parts, start = [], 0
    for b in mesh.blocks:
        n_ip = get_element(b.type).n_points
        stop = start + len(b) * n_ip
        parts.append(values[start:stop].reshape(len(b), n_ip, k).mean(axis=1))
        start = stop
    out = np.concatenate(parts) if parts else np.zeros((0, k))
    return out[:, 0] if squeeze else out
