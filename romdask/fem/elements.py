"""Solid elements of CalculiX 2.20: shape functions, node order, quadrature rules and faces.

Everything below was checked line by line against CalculiX's own source (GitHub
``Dhondtguido/CalculiX``, commit 3593817, directory ``src/``):

- ``shape8h.f`` (C3D8 shape functions, node 1 at (-1,-1,-1), 2 (1,-1,-1), 3 (1,1,-1),
  4 (-1,1,-1), 5-8 the same at zeta = +1);
- ``shape20h.f`` (C3D20/C3D20R serendipity functions; midside nodes 9 (0,-1,-1), 10 (1,0,-1),
  11 (0,1,-1), 12 (-1,0,-1), 13-16 the same at zeta = +1, 17 (-1,-1,0), 18 (1,-1,0), 19 (1,1,0),
  20 (-1,1,0));
- ``shape4tet.f`` / ``shape10tet.f`` (N1 = 1 - xi - eta - zeta, N2 = xi, N3 = eta, N4 = zeta;
  midside 5 on 1-2, 6 on 2-3, 7 on 3-1, 8 on 1-4, 9 on 2-4, 10 on 3-4);
- ``gauss.f`` tables (line numbers of this commit): ``gauss3d2`` l. 99 (2x2x2, xi fastest, then
  eta, then zeta, weights 1), ``gauss3d3`` l. 110 and ``weight3d3`` l. 326 (3x3x3, same order,
  weights products of 5/9, 8/9), ``gauss3d4`` l. 140 (1 point (1/4, 1/4, 1/4), weight 1/6),
  ``gauss3d5`` l. 142 (4 points (a,a,a), (b,a,a), (a,b,a), (a,a,b), weights 1/24), ``gauss3d6``
  l. 149 / ``weight3d6`` l. 343 (15 points, used here only for the exact C3D10 mass),
  ``gauss2d2`` l. 58 / ``gauss2d3`` l. 64 (2x2 / 3x3 on quadrilateral faces, xi fastest),
  ``gauss2d4`` l. 75 / ``gauss2d5`` l. 78 (1 / 3 point triangle rules);
- ``e_c3d.f``: l. 106-115 face tables ``ifaceq``/``ifacet``; l. 275-330 and 489-595 rule per
  type (C3D8 and C3D20R -> ``gauss3d2``, C3D20 -> ``gauss3d3``, C3D10 -> ``gauss3d5``, C3D4 ->
  ``gauss3d4``; with ``intscheme=1``, used only for the initial acceleration of dynamic steps,
  C3D20R switches to ``gauss3d3`` and C3D4 to ``gauss3d5``; ``*FREQUENCY`` uses intscheme=0);
  l. 1460-1482 face rules (C3D8 and C3D20R 2x2, C3D20 3x3, C3D10 3 points, C3D4 1 point);
  l. 1612-1617 pressure ``ff -= N p xsj2 w``, ``xsj2 = dx/dxi x dx/deta`` of the face;
- ``shape8q.f``, ``shape4q.f``, ``shape6tri.f``, ``shape3tri.f`` (face shape functions, node order
  (-1,-1), (1,-1), (1,1), (-1,1), then midsides (0,-1), (1,0), (0,1), (-1,0); triangle (0,0),
  (1,0), (0,1), midsides (1/2,0), (1/2,1/2), (0,1/2)).

Also checked against the ccx 2.20 binary (``tests/fem/test_quadrature.py``): integration-point
strains (so the point order), point coordinates, internal forces and pressure loads of one
distorted element of each type agree to the 7 digits of the ``.dat`` file.

CalculiX stores the points with 15 digits; here they are given in full double precision
(relative differences ~1e-15).

Faces follow CalculiX's tables ``ifaceq``/``ifacet`` (the same in every routine of the source):
face k (0-based) is CalculiX's face k + 1 (Abaqus S(k+1)) and its nodes are ordered so that
dx/dxi x dx/deta points OUT of the element. This is the reverse of the orientation in the
Abaqus manual listing (S1 = 1-2-3-4), but the same node sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = ["Element", "FaceElement", "get_element", "ELEMENTS"]

# ---- 1-D Gauss-Legendre --------------------------------------------------------------------
_G2 = 1.0 / np.sqrt(3.0)
_G3 = np.sqrt(0.6)


def _tensor_rule(x: np.ndarray, w: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product rule with the first coordinate running fastest (CalculiX's order)."""
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    points = np.stack([g.ravel(order="F") for g in grids], axis=1)
    wgrid = np.meshgrid(*([w] * dim), indexing="ij")
    weights = np.prod(np.stack([g.ravel(order="F") for g in wgrid], axis=1), axis=1)
    return points, weights


_GAUSS2 = (np.array([-_G2, _G2]), np.array([1.0, 1.0]))
_GAUSS3 = (np.array([-_G3, 0.0, _G3]), np.array([5.0, 8.0, 5.0]) / 9.0)

# tetrahedron rules (gauss3d4, gauss3d5, gauss3d6)
_TET_A = (5.0 - np.sqrt(5.0)) / 20.0  # 0.1381966011250105
_TET_B = (5.0 + 3.0 * np.sqrt(5.0)) / 20.0  # 0.5854101966249685
_TET1 = (np.array([[0.25, 0.25, 0.25]]), np.array([1.0 / 6.0]))
_TET4 = (
    np.array([[_TET_A, _TET_A, _TET_A], [_TET_B, _TET_A, _TET_A],
              [_TET_A, _TET_B, _TET_A], [_TET_A, _TET_A, _TET_B]]),
    np.full(4, 1.0 / 24.0),
)


def _tet15() -> tuple[np.ndarray, np.ndarray]:
    s = np.sqrt(15.0)
    a, b = (7.0 - s) / 34.0, (13.0 + 3.0 * s) / 34.0
    c, d = (7.0 + s) / 34.0, (13.0 - 3.0 * s) / 34.0
    e, f = (10.0 - 2.0 * s) / 40.0, (10.0 + 2.0 * s) / 40.0
    pts = [[0.25, 0.25, 0.25],
           [a, a, a], [b, a, a], [a, b, a], [a, a, b],
           [c, c, c], [d, c, c], [c, d, c], [c, c, d],
           [e, e, f], [f, e, e], [f, f, e], [e, f, f], [e, f, e], [f, e, f]]
    w = [8.0 / 405.0] + [(2665.0 + 14.0 * s) / 226800.0] * 4 + [(2665.0 - 14.0 * s) / 226800.0] * 4
    w += [5.0 / 567.0] * 6
    return np.array(pts), np.array(w)


_TET15 = _tet15()

# ---- shape functions (value, derivative) on natural coordinates ----------------------------


def _hex8(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = _HEX_CORNERS
    x, y, z = (xi[:, None, k] for k in range(3))
    fx, fy, fz = 1 + r[:, 0] * x, 1 + r[:, 1] * y, 1 + r[:, 2] * z
    n = fx * fy * fz / 8.0
    d = np.stack([r[:, 0] * fy * fz, fx * r[:, 1] * fz, fx * fy * r[:, 2]], axis=-1) / 8.0
    return n, d


def _hex20(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = len(xi)
    n = np.empty((m, 20))
    d = np.empty((m, 20, 3))
    x, y, z = (xi[:, None, k] for k in range(3))
    r = _HEX20_NODES
    # corners: N = (1+x0 x)(1+y0 y)(1+z0 z)(x0 x + y0 y + z0 z - 2)/8
    c = r[:8]
    fx, fy, fz = 1 + c[:, 0] * x, 1 + c[:, 1] * y, 1 + c[:, 2] * z
    g = c[:, 0] * x + c[:, 1] * y + c[:, 2] * z - 2.0
    n[:, :8] = fx * fy * fz * g / 8.0
    d[:, :8, 0] = c[:, 0] * fy * fz * (g + fx) / 8.0
    d[:, :8, 1] = c[:, 1] * fx * fz * (g + fy) / 8.0
    d[:, :8, 2] = c[:, 2] * fx * fy * (g + fz) / 8.0
    # midsides: the zero natural coordinate gets (1 - s^2), the others (1 + s0 s); / 4
    for k in range(8, 20):
        node = r[k]
        axis = int(np.flatnonzero(node == 0.0)[0])
        s = [x[:, 0], y[:, 0], z[:, 0]]
        f = [1 + node[j] * s[j] for j in range(3)]
        df = [np.full(m, node[j]) for j in range(3)]
        f[axis] = 1 - s[axis] ** 2
        df[axis] = -2 * s[axis]
        n[:, k] = f[0] * f[1] * f[2] / 4.0
        d[:, k, 0] = df[0] * f[1] * f[2] / 4.0
        d[:, k, 1] = f[0] * df[1] * f[2] / 4.0
        d[:, k, 2] = f[0] * f[1] * df[2] / 4.0
    return n, d


def _tet4(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.column_stack([1.0 - xi.sum(axis=1), xi])
    d = np.broadcast_to(np.array([[-1.0, -1, -1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]), (len(xi), 4, 3))
    return n, d.copy()


def _tet10(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lin, dlin = _tet4(xi)  # barycentric L1..L4 and their constant derivatives
    n = np.empty((len(xi), 10))
    d = np.empty((len(xi), 10, 3))
    n[:, :4] = lin * (2 * lin - 1)
    d[:, :4] = (4 * lin - 1)[:, :, None] * dlin
    for k, (i, j) in enumerate(_TET10_EDGES):
        n[:, 4 + k] = 4 * lin[:, i] * lin[:, j]
        d[:, 4 + k] = 4 * (lin[:, i, None] * dlin[:, j] + lin[:, j, None] * dlin[:, i])
    return n, d


def _quad4(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = _QUAD8_NODES[:4]
    x, y = xi[:, None, 0], xi[:, None, 1]
    fx, fy = 1 + r[:, 0] * x, 1 + r[:, 1] * y
    return fx * fy / 4.0, np.stack([r[:, 0] * fy, fx * r[:, 1]], axis=-1) / 4.0


def _quad8(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = len(xi)
    n = np.empty((m, 8))
    d = np.empty((m, 8, 2))
    x, y = xi[:, None, 0], xi[:, None, 1]
    c = _QUAD8_NODES[:4]
    fx, fy = 1 + c[:, 0] * x, 1 + c[:, 1] * y
    g = c[:, 0] * x + c[:, 1] * y - 1.0
    n[:, :4] = fx * fy * g / 4.0
    d[:, :4, 0] = c[:, 0] * fy * (g + fx) / 4.0
    d[:, :4, 1] = c[:, 1] * fx * (g + fy) / 4.0
    x, y = xi[:, 0], xi[:, 1]
    for k in range(4, 8):
        x0, y0 = _QUAD8_NODES[k]
        if x0 == 0.0:
            n[:, k] = (1 - x * x) * (1 + y0 * y) / 2.0
            d[:, k, 0] = -x * (1 + y0 * y)
            d[:, k, 1] = (1 - x * x) * y0 / 2.0
        else:
            n[:, k] = (1 + x0 * x) * (1 - y * y) / 2.0
            d[:, k, 0] = x0 * (1 - y * y) / 2.0
            d[:, k, 1] = -(1 + x0 * x) * y
    return n, d


def _tri3(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.column_stack([1.0 - xi.sum(axis=1), xi])
    d = np.broadcast_to(np.array([[-1.0, -1], [1, 0], [0, 1]]), (len(xi), 3, 2))
    return n, d.copy()


def _tri6(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lin, dlin = _tri3(xi)
    n = np.empty((len(xi), 6))
    d = np.empty((len(xi), 6, 2))
    n[:, :3] = lin * (2 * lin - 1)
    d[:, :3] = (4 * lin - 1)[:, :, None] * dlin
    for k, (i, j) in enumerate(((0, 1), (1, 2), (2, 0))):
        n[:, 3 + k] = 4 * lin[:, i] * lin[:, j]
        d[:, 3 + k] = 4 * (lin[:, i, None] * dlin[:, j] + lin[:, j, None] * dlin[:, i])
    return n, d


_HEX_CORNERS = np.array(
    [[-1.0, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]]
)
_HEX20_NODES = np.vstack([
    _HEX_CORNERS,
    [[0.0, -1, -1], [1, 0, -1], [0, 1, -1], [-1, 0, -1],
     [0, -1, 1], [1, 0, 1], [0, 1, 1], [-1, 0, 1],
     [-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],
])
_TET_CORNERS = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
_TET10_EDGES = ((0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3))
_TET10_NODES = np.vstack([_TET_CORNERS, [(_TET_CORNERS[i] + _TET_CORNERS[j]) / 2 for i, j in _TET10_EDGES]])
_QUAD8_NODES = np.array([[-1.0, -1], [1, -1], [1, 1], [-1, 1], [0, -1], [1, 0], [0, 1], [-1, 0]])
_TRI6_NODES = np.array([[0.0, 0], [1, 0], [0, 1], [0.5, 0], [0.5, 0.5], [0, 0.5]])

# CalculiX e_c3d.f: ifaceq (hex) and ifacet (tet), 1-based, outward dx/dxi x dx/deta
_IFACEQ = ((4, 3, 2, 1, 11, 10, 9, 12), (5, 6, 7, 8, 13, 14, 15, 16), (1, 2, 6, 5, 9, 18, 13, 17),
           (2, 3, 7, 6, 10, 19, 14, 18), (3, 4, 8, 7, 11, 20, 15, 19), (4, 1, 5, 8, 12, 17, 16, 20))
_IFACET = ((1, 3, 2, 7, 6, 5), (1, 2, 4, 5, 9, 8), (2, 3, 4, 6, 10, 9), (1, 4, 3, 8, 10, 7))

_SHAPES = {"C3D4": _tet4, "C3D10": _tet10, "C3D8": _hex8, "C3D20": _hex20, "C3D20R": _hex20,
           "quad4": _quad4, "quad8": _quad8, "tri3": _tri3, "tri6": _tri6}


def _check_xi(xi, dim: int) -> np.ndarray:
    xi = np.asarray(xi, dtype=np.float64)
    if xi.ndim == 1:
        xi = xi[None, :]
    if xi.ndim != 2 or xi.shape[1] != dim:
        raise ValueError(f"natural coordinates must have shape (m, {dim}); got {xi.shape}")
    return xi


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class FaceElement:
    """A face of a solid element: 2-D shape functions and CalculiX's face quadrature.

    Attributes
    ----------
    name : str
        ``"quad4"``, ``"quad8"``, ``"tri3"`` or ``"tri6"``.
    n_nodes : int
    ref_nodes : ndarray, shape (n_nodes, 2)
        Natural coordinates of the face nodes (in the order of :attr:`Element.faces`).
    points, weights : ndarray, shapes (n_fp, 2), (n_fp,)
        The face rule used by CalculiX for distributed loads (exact for the pressure integrand
        on flat faces with straight edges).
    """

    name: str
    n_nodes: int
    ref_nodes: np.ndarray
    points: np.ndarray
    weights: np.ndarray

    def shape(self, xi) -> np.ndarray:
        """Shape functions at ``xi`` (m, 2): shape (m, n_nodes)."""
        return _SHAPES[self.name](_check_xi(xi, 2))[0]

    def shape_derivatives(self, xi) -> np.ndarray:
        """Derivatives dN/dxi at ``xi`` (m, 2): shape (m, n_nodes, 2)."""
        return _SHAPES[self.name](_check_xi(xi, 2))[1]


@dataclass(frozen=True, eq=False)
class Element:
    """A CalculiX solid element type.

    Attributes
    ----------
    name : str
        CalculiX name: ``"C3D4"``, ``"C3D10"``, ``"C3D8"``, ``"C3D20"`` or ``"C3D20R"``.
    n_nodes : int
    ref_nodes : ndarray, shape (n_nodes, 3)
        Natural coordinates of the nodes in CalculiX/Abaqus node order.
    points, weights : ndarray, shapes (n_ip, 3), (n_ip,)
        The volume rule CalculiX uses for stiffness and stresses, in CalculiX's point order.
    mass_points, mass_weights : ndarray
        A rule that integrates N_a N_b exactly on undistorted elements (C3D4: the 4-point rule,
        C3D10: the 15-point rule ``gauss3d6``, C3D20R: the 3x3x3 rule, others: ``points``).
    faces : tuple of tuple of int
        0-based element node indices of each face, face k = CalculiX face k + 1, ordered as in
        CalculiX's ``ifaceq``/``ifacet`` tables (corners, then midsides; outward normal).
    face : FaceElement
        Shape functions and quadrature of the faces.
    """

    name: str
    n_nodes: int
    ref_nodes: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    mass_points: np.ndarray
    mass_weights: np.ndarray
    faces: tuple[tuple[int, ...], ...]
    face: FaceElement

    @property
    def n_points(self) -> int:
        """Number of integration points of the volume rule."""
        return len(self.weights)

    def shape(self, xi) -> np.ndarray:
        """Shape functions at natural coordinates ``xi`` (m, 3): shape (m, n_nodes)."""
        return _SHAPES[self.name](_check_xi(xi, 3))[0]

    def shape_derivatives(self, xi) -> np.ndarray:
        """Derivatives dN/dxi at ``xi`` (m, 3): shape (m, n_nodes, 3)."""
        return _SHAPES[self.name](_check_xi(xi, 3))[1]


def _face(name: str, ref, rule) -> FaceElement:
    return FaceElement(name, len(ref), _readonly(ref), _readonly(rule[0]), _readonly(rule[1]))


def _make_elements() -> dict[str, Element]:
    quad2 = _tensor_rule(*_GAUSS2, 2)
    quad3 = _tensor_rule(*_GAUSS3, 2)
    tri1 = (np.array([[1.0 / 3.0, 1.0 / 3.0]]), np.array([0.5]))
    tri3 = (np.array([[1 / 6, 1 / 6], [2 / 3, 1 / 6], [1 / 6, 2 / 3]]), np.full(3, 1.0 / 6.0))
    hex2 = _tensor_rule(*_GAUSS2, 3)
    hex3 = _tensor_rule(*_GAUSS3, 3)
    hex_faces8 = tuple(tuple(i - 1 for i in f[:4]) for f in _IFACEQ)
    hex_faces20 = tuple(tuple(i - 1 for i in f) for f in _IFACEQ)
    tet_faces4 = tuple(tuple(i - 1 for i in f[:3]) for f in _IFACET)
    tet_faces10 = tuple(tuple(i - 1 for i in f) for f in _IFACET)
    spec = {
        "C3D4": (_TET_CORNERS, _TET1, _TET4, tet_faces4, _face("tri3", _TRI6_NODES[:3], tri1)),
        "C3D10": (_TET10_NODES, _TET4, _TET15, tet_faces10, _face("tri6", _TRI6_NODES, tri3)),
        "C3D8": (_HEX_CORNERS, hex2, hex2, hex_faces8, _face("quad4", _QUAD8_NODES[:4], quad2)),
        "C3D20": (_HEX20_NODES, hex3, hex3, hex_faces20, _face("quad8", _QUAD8_NODES, quad3)),
        "C3D20R": (_HEX20_NODES, hex2, hex3, hex_faces20, _face("quad8", _QUAD8_NODES, quad2)),
    }
    out = {}
    for name, (ref, rule, mass_rule, faces, face) in spec.items():
        out[name] = Element(name, len(ref), _readonly(ref), _readonly(rule[0]), _readonly(rule[1]),
                            _readonly(mass_rule[0]), _readonly(mass_rule[1]), faces, face)
    return out


#: All supported element types by CalculiX name.
ELEMENTS: Mapping[str, Element] = MappingProxyType(_make_elements())


def get_element(name: str) -> Element:
    """The :class:`Element` of CalculiX type ``name`` (e.g. ``"C3D8"``).

    Raises
    ------
    ValueError
        For an unsupported name, listing the supported ones.
    """
    try:
        return ELEMENTS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown element type {name!r}; supported: {', '.join(ELEMENTS)}"
        ) from None
