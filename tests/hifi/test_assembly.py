"""Assembly of the tangent stiffness and the internal force (romdask.hifi.assembly)."""

import numpy as np
import pytest

import romdask.fem as fem
from romdask.fem.quadrature import internal_force, strain
from romdask.hifi.assembly import assemble_stiffness, free_matrix, sparsity
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.problems.meshing import box, map_nodes

ELEMENTS = ["C3D8", "C3D20", "C3D20R", "C3D4", "C3D10"]


def distorted_box(element, shape=(2, 2, 2), seed=0, amount=0.08):
    mesh = box(shape, (1.0, 1.2, 0.9), element=element)
    rng = np.random.default_rng(seed)
    return map_nodes(mesh, lambda x: x + amount * np.sin(3.0 * x[:, [1, 2, 0]] + rng.uniform(0, 1, 3)))


def plastic_law():
    # rate independent, linear hardening: the local Newton is exact (one step), so the
    # consistent tangent is the exact derivative of the computed stress
    return CalculixViscoplastic(200000.0, 0.3, [[200.0, 0.0], [1200.0, 1.0]], hardening="isotropic")


def force_of(quad, law, state, u, dt=1.0):
    eps = strain(quad, u)
    stress, tangent, _, failed = law.integrate(eps, state, dt, 1.0)
    assert failed == 0
    return internal_force(quad, stress), tangent


@pytest.mark.parametrize("element", ["C3D8", "C3D20", "C3D10"])
def test_tangent_is_finite_difference_jacobian(element):
    """K u = FD of f_int(u) in a plastic state; FD error ~ h^2 + roundoff -> 1e-6 relative."""
    mesh = distorted_box(element, (2, 1, 1))
    quad = fem.quadrature(mesh)
    pattern = sparsity(mesh)
    law = plastic_law()
    rng = np.random.default_rng(1)
    x = mesh.nodes
    u = np.zeros((mesh.n_nodes, 3))
    u[:, 0] = 0.004 * x[:, 0] + 0.001 * x[:, 1] ** 2  # beyond yield (200 MPa / E = 0.001)
    u[:, 1] = -0.001 * x[:, 1] + 0.0005 * x[:, 2] * x[:, 0]
    u = u.ravel() + 1e-4 * rng.standard_normal(mesh.n_dofs)
    state = law.initial_state(quad.n_points)
    f0, tangent = force_of(quad, law, state, u)
    assert np.count_nonzero(tangent[:, 0, 0] < 0.9 * tangent.max()) > 0  # some points plastic
    K = free_matrix(pattern, assemble_stiffness(quad, pattern, tangent)).toarray()
    h = 1e-7
    for trial in range(3):
        v = rng.standard_normal(mesh.n_dofs)
        fp, _ = force_of(quad, law, state, u + h * v)
        fm, _ = force_of(quad, law, state, u - h * v)
        fd = (fp - fm) / (2 * h)
        np.testing.assert_allclose(K @ v, fd, rtol=0, atol=1e-6 * np.abs(fd).max())
    # symmetric for this associative law
    np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-12 * np.abs(K).max())


@pytest.mark.parametrize("element", ELEMENTS)
def test_elastic_stiffness_properties(element):
    """Elastic K: symmetric, K u = f_int(D eps(u)), rigid-body modes in the kernel."""
    mesh = distorted_box(element)
    quad = fem.quadrature(mesh)
    law = LinearElastic(1000.0, 0.3)
    _, D, _, _ = law.integrate(np.zeros((quad.n_points, 6)), law.initial_state(quad.n_points), 1.0, 1.0)
    pattern = sparsity(mesh)
    K = free_matrix(pattern, assemble_stiffness(quad, pattern, D))
    Kd = K.toarray()
    np.testing.assert_allclose(Kd, Kd.T, rtol=0, atol=1e-12 * np.abs(Kd).max())
    u = np.random.default_rng(4).standard_normal(mesh.n_dofs)
    f = internal_force(quad, np.einsum("pij,pj->pi", D, strain(quad, u)))
    np.testing.assert_allclose(K @ u, f, rtol=0, atol=1e-11 * np.abs(f).max())
    x = mesh.nodes
    rot = np.cross([0.3, -0.2, 0.5], x).ravel()
    assert np.abs(K @ rot).max() < 1e-11 * np.abs(Kd).max() * np.abs(rot).max()
    # symmetric (upper) pattern holds the upper triangle of the same matrix
    up = sparsity(mesh, symmetric=True)
    Ku = up.matrix(assemble_stiffness(quad, up, D)).toarray()
    np.testing.assert_array_equal(Ku, np.triu(Ku))
    np.testing.assert_allclose(Ku, np.triu(Kd), rtol=0, atol=1e-12 * np.abs(Kd).max())


def test_constrained_pattern_is_free_submatrix_and_stable():
    mesh = distorted_box("C3D20", (2, 2, 1))
    quad = fem.quadrature(mesh)
    law = LinearElastic(1000.0, 0.25)
    _, D, _, _ = law.integrate(np.zeros((quad.n_points, 6)), law.initial_state(quad.n_points), 1.0, 1.0)
    full = free_matrix(sparsity(mesh), assemble_stiffness(quad, sparsity(mesh), D)).toarray()
    fixed = np.concatenate([3 * mesh.node_sets["xmin"], 3 * mesh.node_sets["zmin"] + 2])
    for symmetric in (False, True):
        p1 = sparsity(mesh, fixed, symmetric=symmetric)
        p2 = sparsity(mesh, fixed, symmetric=symmetric)
        np.testing.assert_array_equal(p1.indptr, p2.indptr)
        np.testing.assert_array_equal(p1.indices, p2.indices)
        for a, b in zip(p1.positions, p2.positions):
            np.testing.assert_array_equal(a, b)
        assert p1.indptr.dtype == np.int32 and p1.indices.dtype == np.int32
        assert not np.isin(p1.free, fixed).any() and len(p1.free) + len(np.unique(fixed)) == mesh.n_dofs
        d1 = assemble_stiffness(quad, p1, D)
        d2 = assemble_stiffness(quad, p1, D, out=np.full(p1.nnz, 7.0))  # out is reset
        np.testing.assert_array_equal(d1, d2)
        K = free_matrix(p1, d1).toarray()
        np.testing.assert_allclose(K, full[np.ix_(p1.free, p1.free)], rtol=0, atol=1e-12 * np.abs(full).max())
        # every stored entry is structurally reachable, and the rows are sorted
        for r in range(p1.n_free):
            cols = p1.indices[p1.indptr[r]:p1.indptr[r + 1]]
            assert np.all(np.diff(cols) > 0)


@pytest.mark.parametrize("element", ["C3D8", "C3D10"])
def test_coloring_separates_elements(element):
    mesh = distorted_box(element, (3, 3, 2))
    pattern = sparsity(mesh)
    conn = mesh.blocks[0].connectivity
    ptr, els = pattern.color_ptr[0], pattern.color_elements[0]
    assert np.array_equal(np.sort(els), np.arange(len(conn)))
    for k in range(len(ptr) - 1):
        nodes = conn[els[ptr[k]:ptr[k + 1]]].ravel()
        assert len(np.unique(nodes)) == len(nodes), f"color {k} has elements sharing nodes"
