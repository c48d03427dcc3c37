"""Centrifugal and gravity body forces (romdask.fem.quadrature.body_force_vector) and the unit
vector of every load pattern (romdask.problem.unit_load_vector) against analytic integrals."""

import numpy as np
import pytest

from romdask.fem.quadrature import body_force_vector, nodal_force_vector, pressure_vector, quadrature
from romdask.problem import Centrifugal, Gravity, NodalForce, Pressure, Temperature, unit_load_vector
from romdask.problems.meshing import box, map_nodes

ELEMENTS = ["C3D8", "C3D10", "C3D20R"]
RHO, OMEGA2, G = 7.8e-9, 1.0e6, 9810.0


def quarter_ring(element, n, a=1.0, b=2.0, h=0.5):
    """Quarter of a ring a <= r <= b, 0 <= theta <= pi/2, 0 <= z <= h (midside nodes on the arcs)."""
    mesh = box((n, 2 * n, 1), (b - a, np.pi / 2, h), (a, 0.0, 0.0), element=element)
    return map_nodes(mesh, lambda x: np.column_stack([x[:, 0] * np.cos(x[:, 1]), x[:, 0] * np.sin(x[:, 1]), x[:, 2]]))


def ring_force_error(element, n):
    """Relative error of the total x force of a spinning quarter ring, axis z through the origin:
    rho omega^2 int x dV = rho omega^2 h (b^3 - a^3) / 3 (also the y force)."""
    a, b, h = 1.0, 2.0, 0.5
    mesh = quarter_ring(element, n, a, b, h)
    load = Centrifugal(np.arange(mesh.n_elements), OMEGA2, [0.0, 0.0, 0.0], [0.0, 0.0, 3.0], RHO)
    f = body_force_vector(mesh, load).reshape(-1, 3)
    exact = RHO * OMEGA2 * h * (b**3 - a**3) / 3
    assert abs(f[:, 2].sum()) <= 1e-12 * exact  # no axial force
    return max(abs(f[:, 0].sum() - exact), abs(f[:, 1].sum() - exact)) / exact


@pytest.mark.parametrize("element, tol, rate", [("C3D8", 1.2e-2, 1.9), ("C3D10", 4e-6, 3.9), ("C3D20R", 4e-6, 3.9)])
def test_centrifugal_resultant_of_a_ring_matches_the_integral_of_r(element, tol, rate):
    """The error is the geometry's: straight-edged C3D8 cut the arcs (measured 9.6e-3 on 4 x 8
    cells, then 2.4e-3: h^2); the quadratic C3D10 / C3D20R arcs are far closer (2.97e-6 and
    2.58e-6, then 1.9e-7 and 1.6e-7: h^4)."""
    err = ring_force_error(element, 4)
    assert err < tol, err
    assert np.log2(err / ring_force_error(element, 8)) > rate


@pytest.mark.parametrize("element", ELEMENTS)
def test_centrifugal_on_a_box_is_exact_for_a_tilted_offset_axis(element):
    """A linear force field on straight-edged elements: the resultant rho omega^2 V (c - p)_perp
    (c the centroid) and the work on any linear displacement field are exact to round-off."""
    mesh = box((2, 3, 2), (1.0, 2.0, 0.5), (3.0, -1.0, 0.2), element=element)
    point, axis = np.array([0.5, 0.3, -0.2]), np.array([1.0, 2.0, 2.0]) / 3.0
    elements = np.arange(mesh.n_elements)
    f = body_force_vector(mesh, Centrifugal(elements, OMEGA2, point, 3 * axis, RHO)).reshape(-1, 3)
    volume = 1.0 * 2.0 * 0.5
    q = np.array([3.5, 0.0, 0.45]) - point
    exact = RHO * OMEGA2 * volume * (q - (q @ axis) * axis)
    np.testing.assert_allclose(f.sum(axis=0), exact, rtol=1e-12, atol=1e-12 * np.abs(exact).max())
    # work on u = x: int rho omega^2 r_perp . x dV, with the 3x3x3 box integral of a quadratic
    x = mesh.nodes
    work = np.sum(f * x)
    g, w = np.polynomial.legendre.leggauss(3)
    lo, hi = np.array([3.0, -1.0, 0.2]), np.array([4.0, 1.0, 0.7])
    pts = np.stack(np.meshgrid(*[(lo[i] + hi[i]) / 2 + (hi[i] - lo[i]) / 2 * g for i in range(3)], indexing="ij"), -1)
    wts = np.einsum("i,j,k->ijk", w, w, w) * np.prod(hi - lo) / 8
    r = pts - point
    r = r - (r @ axis)[..., None] * axis
    reference = RHO * OMEGA2 * np.sum(wts * np.sum(r * pts, axis=-1))
    assert abs(work - reference) <= 1e-12 * abs(reference)


@pytest.mark.parametrize("element", ELEMENTS)
def test_gravity_resultant_is_rho_g_volume(element):
    mesh = quarter_ring(element, 2)
    elements = np.arange(mesh.n_elements)
    f = body_force_vector(mesh, Gravity(elements, G, [0.0, 0.0, -2.0], RHO)).reshape(-1, 3)
    volume = quadrature(mesh).weights.sum()  # the discrete volume (the arcs' chords for C3D8)
    np.testing.assert_allclose(f.sum(axis=0), [0.0, 0.0, -RHO * G * volume], rtol=1e-13, atol=1e-18)
    exact_volume = 0.5 * np.pi / 4 * (4.0 - 1.0)
    assert abs(volume - exact_volume) < (4e-2 if element == "C3D8" else 1e-4) * exact_volume  # chords of the arcs
    # on a box the volume is exact
    cube = box((2, 2, 2), (1.0, 2.0, 3.0), element=element)
    f = body_force_vector(cube, Gravity(np.arange(cube.n_elements), G, [1.0, 0.0, 0.0], RHO)).reshape(-1, 3)
    np.testing.assert_allclose(f.sum(axis=0), [RHO * G * 6.0, 0.0, 0.0], rtol=1e-13)


def test_body_force_on_an_element_subset_and_errors():
    mesh = box((2, 1, 1), element="C3D8")
    f = body_force_vector(mesh, Gravity([1], G, [0.0, 1.0, 0.0], RHO)).reshape(-1, 3)
    loaded = np.unique(mesh.blocks[0].connectivity[1])
    assert np.all(f[np.setdiff1d(np.arange(mesh.n_nodes), loaded)] == 0.0)
    np.testing.assert_allclose(f[loaded, 1], RHO * G * 0.5 / 8, rtol=1e-14)  # a box element: volume / 8 per node
    with pytest.raises(ValueError, match="element indices"):
        body_force_vector(mesh, Gravity([5], G, [0.0, 1.0, 0.0], RHO))
    with pytest.raises(TypeError, match="Centrifugal or Gravity"):
        body_force_vector(mesh, Pressure(mesh.surfaces["xmin"], 1.0))


def test_unit_load_vector_of_every_pattern():
    mesh = box((2, 2, 1), element="C3D20R")
    everything = np.arange(mesh.n_elements)
    force = NodalForce(mesh.node_sets["xmax"], 1, 7.0)
    pressure = Pressure(mesh.surfaces["zmax"], 3.0)
    spin = Centrifugal(everything, 5.0, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], RHO)
    gravity = Gravity(everything, 2.0, [0.0, 0.0, -1.0], RHO)
    np.testing.assert_array_equal(unit_load_vector(mesh, force), nodal_force_vector(mesh.n_dofs, force.nodes, 1, 1.0))
    np.testing.assert_array_equal(unit_load_vector(mesh, pressure), pressure_vector(mesh, pressure.faces, 1.0))
    for load in (spin, gravity):  # value x unit vector = the load's vector: density in, value out
        np.testing.assert_allclose(load.value * unit_load_vector(mesh, load), body_force_vector(mesh, load),
                                   rtol=1e-14, atol=1e-14 * np.abs(body_force_vector(mesh, load)).max())
    np.testing.assert_allclose(unit_load_vector(mesh, gravity).reshape(-1, 3).sum(axis=0), [0, 0, -RHO * 1.0],
                               rtol=1e-13)
    with pytest.raises(TypeError, match="Temperature"):
        unit_load_vector(mesh, Temperature([0], 1.0))
