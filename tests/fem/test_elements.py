"""Element shape functions, node order, quadrature rules and faces vs CalculiX 2.20's source."""

from math import factorial

import numpy as np
import pytest

from romdask.fem.elements import ELEMENTS, get_element

NAMES = ["C3D4", "C3D10", "C3D8", "C3D20", "C3D20R"]
rng = np.random.default_rng(1)


def random_natural(name, m=7):
    if name in ("C3D4", "C3D10"):
        p = rng.dirichlet(np.ones(4), size=m)
        return p[:, 1:]
    return rng.uniform(-1, 1, size=(m, 3))


def random_face_natural(face, m=7):
    if face.name.startswith("tri"):
        return rng.dirichlet(np.ones(3), size=m)[:, 1:]
    return rng.uniform(-1, 1, size=(m, 2))


@pytest.mark.parametrize("name", NAMES)
def test_partition_of_unity_and_derivative_sum(name):
    el = get_element(name)
    xi = random_natural(name)
    np.testing.assert_allclose(el.shape(xi).sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(el.shape_derivatives(xi).sum(axis=1), 0.0, rtol=0, atol=1e-13)
    f = el.face
    s = random_face_natural(f)
    np.testing.assert_allclose(f.shape(s).sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(f.shape_derivatives(s).sum(axis=1), 0.0, rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_finite_differences(name):
    el = get_element(name)
    xi = random_natural(name, 5) * 0.9
    h = 1e-6
    fd = np.stack([(el.shape(xi + h * e) - el.shape(xi - h * e)) / (2 * h) for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(el.shape_derivatives(xi), fd, rtol=0, atol=1e-8)
    f = el.face
    s = random_face_natural(f, 5) * 0.9
    fd = np.stack([(f.shape(s + h * e) - f.shape(s - h * e)) / (2 * h) for e in np.eye(2)], axis=-1)
    np.testing.assert_allclose(f.shape_derivatives(s), fd, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_kronecker_property(name):
    el = get_element(name)
    np.testing.assert_allclose(el.shape(el.ref_nodes), np.eye(el.n_nodes), atol=1e-15)
    np.testing.assert_allclose(el.face.shape(el.face.ref_nodes), np.eye(el.face.n_nodes), atol=1e-15)


def test_natural_node_coordinates_match_calculix():
    # shape8h.f / shape20h.f: N1 = (1-xi)(1-eta)(1-zeta)/8 ..., midside 9 = (1-xi^2)(1-eta)(1-zeta)/4 ...
    hex20 = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                      [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1],
                      [0, -1, -1], [1, 0, -1], [0, 1, -1], [-1, 0, -1],
                      [0, -1, 1], [1, 0, 1], [0, 1, 1], [-1, 0, 1],
                      [-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    # shape10tet.f: N5 = 4 xi a, N6 = 4 xi eta, N7 = 4 eta a, N8 = 4 zeta a, N9 = 4 xi zeta, N10 = 4 eta zeta
    tet10 = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [.5, 0, 0], [.5, .5, 0],
                      [0, .5, 0], [0, 0, .5], [.5, 0, .5], [0, .5, .5]])
    np.testing.assert_array_equal(ELEMENTS["C3D8"].ref_nodes, hex20[:8])
    np.testing.assert_array_equal(ELEMENTS["C3D20"].ref_nodes, hex20)
    np.testing.assert_array_equal(ELEMENTS["C3D20R"].ref_nodes, hex20)
    np.testing.assert_array_equal(ELEMENTS["C3D10"].ref_nodes, tet10)
    np.testing.assert_array_equal(ELEMENTS["C3D4"].ref_nodes, tet10[:4])
    # a value straight from shape20h.f at an arbitrary point: N1 = -omg*omh*omr*(opg+oph+ze)/8
    xi, et, ze = 0.3, -0.2, 0.7
    n1 = -(1 - xi) * (1 - et) * (1 - ze) * ((1 + xi) + (1 + et) + ze) / 8
    n19 = (1 - ze) * (1 + ze) / 4 * (1 + xi) * (1 + et)
    n = ELEMENTS["C3D20"].shape([[xi, et, ze]])[0]
    assert n[0] == pytest.approx(n1, abs=1e-15) and n[18] == pytest.approx(n19, abs=1e-15)


# ---- CalculiX's gauss.f tables, copied verbatim (15 significant digits) ----
G2 = 0.577350269189626
GAUSS3D2 = np.array([[-G2, -G2, -G2], [G2, -G2, -G2], [-G2, G2, -G2], [G2, G2, -G2],
                     [-G2, -G2, G2], [G2, -G2, G2], [-G2, G2, G2], [G2, G2, G2]])
G3 = 0.774596669241483
GAUSS3D3 = np.array([
    [-G3, -G3, -G3], [0, -G3, -G3], [G3, -G3, -G3], [-G3, 0, -G3], [0, 0, -G3], [G3, 0, -G3],
    [-G3, G3, -G3], [0, G3, -G3], [G3, G3, -G3], [-G3, -G3, 0], [0, -G3, 0], [G3, -G3, 0],
    [-G3, 0, 0], [0, 0, 0], [G3, 0, 0], [-G3, G3, 0], [0, G3, 0], [G3, G3, 0],
    [-G3, -G3, G3], [0, -G3, G3], [G3, -G3, G3], [-G3, 0, G3], [0, 0, G3], [G3, 0, G3],
    [-G3, G3, G3], [0, G3, G3], [G3, G3, G3]])
WEIGHT3D3 = np.array([
    0.171467764060357, 0.274348422496571, 0.171467764060357,
    0.274348422496571, 0.438957475994513, 0.274348422496571,
    0.171467764060357, 0.274348422496571, 0.171467764060357,
    0.274348422496571, 0.438957475994513, 0.274348422496571,
    0.438957475994513, 0.702331961591221, 0.438957475994513,
    0.274348422496571, 0.438957475994513, 0.274348422496571,
    0.171467764060357, 0.274348422496571, 0.171467764060357,
    0.274348422496571, 0.438957475994513, 0.274348422496571,
    0.171467764060357, 0.274348422496571, 0.171467764060357])
GAUSS3D5 = np.array([[0.138196601125011, 0.138196601125011, 0.138196601125011],
                     [0.585410196624968, 0.138196601125011, 0.138196601125011],
                     [0.138196601125011, 0.585410196624968, 0.138196601125011],
                     [0.138196601125011, 0.138196601125011, 0.585410196624968]])
GAUSS2D2 = np.array([[-G2, -G2], [G2, -G2], [-G2, G2], [G2, G2]])
GAUSS2D5 = np.array([[0.166666666666667, 0.166666666666667], [0.666666666666667, 0.166666666666667],
                     [0.166666666666667, 0.666666666666667]])


def test_integration_points_match_calculix_tables():
    tol = dict(rtol=0, atol=2e-15)
    np.testing.assert_allclose(ELEMENTS["C3D8"].points, GAUSS3D2, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D8"].weights, np.ones(8), **tol)
    np.testing.assert_allclose(ELEMENTS["C3D20R"].points, GAUSS3D2, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D20"].points, GAUSS3D3, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D20"].weights, WEIGHT3D3, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D10"].points, GAUSS3D5, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D10"].weights, np.full(4, 0.041666666666667), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ELEMENTS["C3D4"].points, [[0.25, 0.25, 0.25]], **tol)
    np.testing.assert_allclose(ELEMENTS["C3D4"].weights, [0.166666666666667], rtol=0, atol=1e-15)
    # full precision as requested (a = (5 - sqrt 5)/20, b = (5 + 3 sqrt 5)/20)
    assert ELEMENTS["C3D10"].points[0, 0] == pytest.approx(0.1381966011250105, abs=1e-16)
    assert ELEMENTS["C3D10"].points[1, 0] == pytest.approx(0.5854101966249685, abs=1e-16)
    # face rules of e_c3d.f
    np.testing.assert_allclose(ELEMENTS["C3D8"].face.points, GAUSS2D2, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D20R"].face.points, GAUSS2D2, **tol)
    assert len(ELEMENTS["C3D20"].face.points) == 9
    np.testing.assert_allclose(ELEMENTS["C3D10"].face.points, GAUSS2D5, **tol)
    np.testing.assert_allclose(ELEMENTS["C3D4"].face.points, [[1 / 3, 1 / 3]], **tol)


def _hex_exact(a, b, c):
    return np.prod([(1 - (-1) ** (k + 1)) / (k + 1) for k in (a, b, c)])


def _tet_exact(a, b, c):
    return factorial(a) * factorial(b) * factorial(c) / factorial(a + b + c + 3)


def _monomials(max_degree, total):
    for a in range(max_degree + 1):
        for b in range(max_degree + 1):
            for c in range(max_degree + 1):
                if (a + b + c if total else max(a, b, c)) <= max_degree:
                    yield a, b, c


@pytest.mark.parametrize(
    "name, attr, degree, tet",
    [("C3D8", "points", 3, False), ("C3D20", "points", 5, False), ("C3D20R", "mass_points", 5, False),
     ("C3D4", "points", 1, True), ("C3D10", "points", 2, True), ("C3D10", "mass_points", 5, True),
     ("C3D4", "mass_points", 2, True)],
)
def test_volume_rules_integrate_monomials_exactly(name, attr, degree, tet):
    el = get_element(name)
    pts = getattr(el, attr)
    w = el.weights if attr == "points" else el.mass_weights
    exact = _tet_exact if tet else _hex_exact
    for a, b, c in _monomials(degree, tet):
        val = w @ (pts[:, 0] ** a * pts[:, 1] ** b * pts[:, 2] ** c)
        assert val == pytest.approx(exact(a, b, c), rel=1e-13, abs=1e-15), (a, b, c)
    # and the degree is sharp: some monomial of degree + 1 is not integrated exactly
    errs = [abs(w @ (pts[:, 0] ** a * pts[:, 1] ** b * pts[:, 2] ** c) - exact(a, b, c))
            for a, b, c in _monomials(degree + 1, tet)]
    assert max(errs) > 1e-6


@pytest.mark.parametrize("name, degree", [("C3D8", 3), ("C3D20", 5), ("C3D20R", 3), ("C3D4", 1), ("C3D10", 2)])
def test_face_rules_integrate_monomials_exactly(name, degree):
    f = get_element(name).face
    tri = f.name.startswith("tri")
    for a in range(degree + 1):
        for b in range(degree + 1):
            if (a + b if tri else max(a, b)) > degree:
                continue
            exact = (factorial(a) * factorial(b) / factorial(a + b + 2) if tri
                     else np.prod([(1 - (-1) ** (k + 1)) / (k + 1) for k in (a, b)]))
            val = f.weights @ (f.points[:, 0] ** a * f.points[:, 1] ** b)
            assert val == pytest.approx(exact, rel=1e-13, abs=1e-15)


# e_c3d.f: ifaceq / ifacet (1-based), copied verbatim
IFACEQ = [[4, 3, 2, 1, 11, 10, 9, 12], [5, 6, 7, 8, 13, 14, 15, 16], [1, 2, 6, 5, 9, 18, 13, 17],
          [2, 3, 7, 6, 10, 19, 14, 18], [3, 4, 8, 7, 11, 20, 15, 19], [4, 1, 5, 8, 12, 17, 16, 20]]
IFACET = [[1, 3, 2, 7, 6, 5], [1, 2, 4, 5, 9, 8], [2, 3, 4, 6, 10, 9], [1, 4, 3, 8, 10, 7]]
# Abaqus manual node sets: S1 = 1-2-3-4, S2 = 5-8-7-6, S3 = 1-5-6-2, S4 = 2-6-7-3, S5 = 3-7-8-4,
# S6 = 4-8-5-1; tet S1 = 1-2-3, S2 = 1-4-2, S3 = 2-4-3, S4 = 3-4-1
ABAQUS_HEX = [{1, 2, 3, 4}, {5, 8, 7, 6}, {1, 5, 6, 2}, {2, 6, 7, 3}, {3, 7, 8, 4}, {4, 8, 5, 1}]
ABAQUS_TET = [{1, 2, 3}, {1, 4, 2}, {2, 4, 3}, {3, 4, 1}]


@pytest.mark.parametrize("name", NAMES)
def test_faces_match_calculix_tables_and_point_outward(name):
    el = get_element(name)
    tet = name in ("C3D4", "C3D10")
    table = IFACET if tet else IFACEQ
    n_face = el.face.n_nodes
    assert [list(np.array(f) + 1) for f in el.faces] == [t[:n_face] for t in table]
    assert [set(np.array(f[: 3 if tet else 4]) + 1) for f in el.faces] == (ABAQUS_TET if tet else ABAQUS_HEX)
    centre = el.ref_nodes.mean(axis=0)
    fe = el.face
    for nodes in el.faces:
        X = el.ref_nodes[list(nodes)]
        # the face shape functions are the traces of the volume shape functions
        s = random_face_natural(fe, 4)
        x = fe.shape(s) @ X
        N = el.shape(x)
        expect = np.zeros_like(N)
        expect[:, list(nodes)] = fe.shape(s)
        np.testing.assert_allclose(N, expect, atol=1e-13)
        # outward normal dx/dxi x dx/deta (CalculiX's orientation)
        dN = fe.shape_derivatives(s)
        t = np.einsum("qad,ai->qdi", dN, X)
        normal = np.cross(t[:, 0], t[:, 1])
        assert np.all(np.einsum("qi,qi->q", normal, x - centre) > 0)


def test_get_element_unknown_name():
    with pytest.raises(ValueError, match="unknown element type 'C3D8R'.*C3D20R"):
        get_element("C3D8R")
    assert get_element("C3D10") is ELEMENTS["C3D10"]
