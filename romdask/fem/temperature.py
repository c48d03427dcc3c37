"""Nodal temperatures -> integration-point temperatures, by CalculiX's rule.

CalculiX 2.20 (``resultsmech.f`` and ``e_c3d.f``, mechanical part) does NOT interpolate the
temperature with the shape functions for every element type:

- C3D8: every integration point gets the MEAN of the 8 nodal temperatures (a constant thermal
  strain per element, which avoids the locking of a trilinear thermal strain);
- C3D4, C3D10, C3D20R: the shape functions at the point;
- C3D20 (full integration): a fixed 20 x 27 table (``lintemp.f``) that romdask does not
  reproduce: refused with a clear error.

The operator is the same for the initial temperature and the current one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from romdask.fem.elements import get_element
from romdask.fem.mesh import Mesh

__all__ = ["point_weights", "temperature_operator"]

_MEAN = ("C3D8",)
_SHAPE = ("C3D4", "C3D10", "C3D20R")


def point_weights(element_type: str) -> np.ndarray:
    """``(n_ip, n_en)`` weights: T at point q of an element = ``weights[q] @ T[element nodes]``.

    Raises
    ------
    ValueError
        An element type whose CalculiX rule romdask does not reproduce (C3D20).
    """
    el = get_element(element_type)
    if element_type in _MEAN:
        return np.full((el.n_points, el.n_nodes), 1.0 / el.n_nodes)
    if element_type in _SHAPE:
        return np.ascontiguousarray(el.shape(el.points))
    raise ValueError(
        f"temperatures on {element_type} elements: CalculiX uses a table of its own there (lintemp.f) that "
        f"romdask does not reproduce; use {', '.join(_MEAN + _SHAPE)} elements (e.g. C3D20R instead of C3D20)"
    )


def temperature_operator(mesh: Mesh) -> sp.csr_matrix:
    """The sparse ``(n_points, n_nodes)`` matrix ``O`` with ``T_points = O @ T_nodes``.

    Parameters
    ----------
    mesh : Mesh

    Returns
    -------
    scipy.sparse.csr_matrix
        Rows in romdask's integration-point order (block, element, CalculiX point order: the
        order of :func:`romdask.fem.quadrature.quadrature`), columns in the mesh's node order;
        each row sums to 1.

    Raises
    ------
    ValueError
        A C3D20 block (see the module docstring).

    Notes
    -----
    ``n_points * n_en`` entries; built in O(that).
    """
    rows, cols, vals = [], [], []
    offset = 0
    for b in mesh.blocks:
        weights = point_weights(b.type)  # (n_ip, n_en)
        n_el, n_en = b.connectivity.shape
        n_ip = weights.shape[0]
        point = offset + np.arange(n_el * n_ip).reshape(n_el, n_ip)
        rows.append(np.repeat(point[:, :, None], n_en, axis=2).ravel())
        cols.append(np.repeat(np.asarray(b.connectivity, np.int64)[:, None, :], n_ip, axis=1).ravel())
        vals.append(np.broadcast_to(weights, (n_el, n_ip, n_en)).ravel())
        offset += n_el * n_ip
    if not rows:
        return sp.csr_matrix((0, mesh.n_nodes))
    op = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(offset, mesh.n_nodes))
    op.sum_duplicates()
    return op
