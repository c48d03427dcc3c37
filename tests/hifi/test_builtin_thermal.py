"""The built-in solver with temperatures and body forces against analytic solutions (thermal
laws of romdask.materials: CalculiX's secant expansion ``alpha(T) (T - zero)``, temperature
tables of the constants)."""

import numpy as np
import pytest

from romdask.fem.quadrature import quadrature
from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.problem import Amplitude, Centrifugal, Dirichlet, Gravity, Problem, Temperature, ramp
from romdask.problems.meshing import box, map_nodes

E, NU, ALPHA, T0 = 200000.0, 0.3, 1.2e-5, 20.0
TIGHT = SolverOptions(rtol=1e-12, ctol=1e-8)


def symmetry(mesh):
    return (Dirichlet(mesh.node_sets["xmin"], (0,), name="xmin"),
            Dirichlet(mesh.node_sets["ymin"], (1,), name="ymin"),
            Dirichlet(mesh.node_sets["zmin"], (2,), name="zmin"))


def uniform_heating(mesh, t_end, amplitude=None):
    return Temperature(np.arange(mesh.n_nodes), t_end, amplitude or ramp(1.0), name="heat")


#: secant expansion rows (alpha, T): alpha grows by 1e-8 per K from T0 to T0 + 600
EXPANSION = [(ALPHA, T0), (ALPHA + 600.0 * 1e-8, T0 + 600.0)]


def thermoelastic(expansion=ALPHA):
    return LinearElastic(E, NU, expansion=expansion, expansion_zero=T0)


def eps_th(t, rows=EXPANSION):
    """alpha(T) (T - T0), alpha linear between the rows and constant outside (from T_init = T0)."""
    rows = np.asarray(rows, np.float64)
    return np.interp(t, rows[:, 1], rows[:, 0]) * (t - T0)


# ---- analytic thermoelastic references -------------------------------------------------------


@pytest.mark.parametrize("element", ["C3D8", "C3D10", "C3D20R"])
def test_free_thermal_expansion_is_stress_free(element):
    """A cube on symmetry planes, T = 620 a(t) with a ramp (CalculiX: amplitude x value, so
    T(0) = 0: the initial equilibrium contracts it from T0 = 20), alpha rows 1.2e-5 at 20, 1.8e-5 at 620:
    u = eps_th(T) x exactly and zero stress (to 1e-9 of E eps_th), every increment in one linear
    solve (the predictor takes the thermal out-of-balance), the nodal temperature as output."""
    mesh = box((2, 2, 2), (1.0, 2.0, 1.5), element=element)
    problem = Problem(mesh, thermoelastic(EXPANSION), symmetry(mesh), [0.0, 0.5, 1.0],
                      initial_temperature=T0, temperatures=(uniform_heating(mesh, 620.0),))
    res = solve(problem, fields=("displacement", "stress"))
    for k, t in enumerate(problem.times):
        th = eps_th(620.0 * t)
        np.testing.assert_allclose(res.displacement[k].reshape(-1, 3), th * mesh.nodes, rtol=0, atol=1e-12 * abs(th))
        assert np.abs(res.fields["stress"][k]).max() <= 1e-9 * E * abs(th)
        np.testing.assert_allclose(res.fields["temperature"][k], 620.0 * t, rtol=1e-15)
    assert np.all(res.newton_iterations == 1), res.residual_history
    assert np.all(res.n_subincrements == 1)


def test_bar_clamped_axially_gets_minus_e_alpha_dt():
    """Both ends fixed axially, free laterally, heated from T0 = 20 to 120: uniaxial
    sigma_xx = -E alpha dT (to 1e-10), the other components zero, the lateral expansion
    (1 + nu) alpha dT; the end reaction carries the force."""
    mesh = box((4, 1, 1), (4.0, 1.0, 1.0), element="C3D20R")
    bcs = symmetry(mesh) + (Dirichlet(mesh.node_sets["xmax"], (0,), name="xmax"),)
    heat = Temperature(np.arange(mesh.n_nodes), 120.0, Amplitude([0.0, 1.0], [T0 / 120.0, 1.0]), name="heat")
    problem = Problem(mesh, thermoelastic(), bcs, [0.0, 0.5, 1.0], initial_temperature=T0,
                      temperatures=(heat,))
    res = solve(problem, fields=("displacement", "stress"))
    assert np.abs(res.displacement[0]).max() == 0.0  # T(0) = T0: nothing happens at t = 0
    sigma = -E * ALPHA * 100.0
    expected = np.zeros(6)
    expected[0] = sigma
    stress = res.fields["stress"][-1]
    np.testing.assert_allclose(stress, np.broadcast_to(expected, stress.shape), rtol=0, atol=1e-10 * abs(sigma))
    u = res.displacement[-1].reshape(-1, 3)
    np.testing.assert_allclose(u[:, 0], 0.0, atol=1e-14)
    np.testing.assert_allclose(u[:, 1:], (1 + NU) * ALPHA * 100.0 * mesh.nodes[:, 1:], rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.reactions[-1, 3, 0], sigma * 1.0, rtol=1e-10)  # the wall pushes along -x
    assert np.all(res.newton_iterations == 1)


def free_beam(element, n_z, gradient=200.0):
    """A 3-2-1 supported beam 4 x 1 x 1 at T = T0 + g z (no amplitude: from t = 0 on)."""
    mesh = box((4, 2, n_z), (4.0, 1.0, 1.0), element=element)
    x = mesh.nodes
    corner = lambda p: int(np.flatnonzero(np.all(np.isclose(x, p), axis=1))[0])  # noqa: E731
    bcs = (Dirichlet([corner([0, 0, 0])], (0, 1, 2), name="o"), Dirichlet([corner([4, 0, 0])], (1, 2), name="x"),
           Dirichlet([corner([0, 1, 0])], (2,), name="y"))
    heat = Temperature(np.arange(mesh.n_nodes), T0 + gradient * x[:, 2], name="gradient")
    return Problem(mesh, thermoelastic(), bcs, [0.0, 1.0], initial_temperature=T0, temperatures=(heat,))


@pytest.mark.parametrize("element", ["C3D10", "C3D20R"])
def test_linear_temperature_through_a_free_beam_is_stress_free(element):
    """T - T0 = g z with constant alpha and E: the thermal strain alpha g z is compatible,
    u = alpha g (x z, y z, (z^2 - x^2 - y^2) / 2) + w x x with w = alpha g (W / 2, -L / 2, 0) the
    rotation the 3-2-1 supports impose, and the stress is zero. C3D10 and C3D20R carry the
    linear T through their shape functions (CalculiX's rule) and the quadratic u exactly:
    round-off (u to 1e-10, stress to 1e-9 of E alpha dT_max)."""
    g = 200.0
    problem = free_beam(element, 2, g)
    res = solve(problem, fields=("displacement", "stress"))
    x = problem.mesh.nodes
    ag = ALPHA * g
    u = ag * np.column_stack([x[:, 0] * x[:, 2], x[:, 1] * x[:, 2], (x[:, 2] ** 2 - x[:, 0] ** 2 - x[:, 1] ** 2) / 2])
    u += np.cross(ag * np.array([0.5, -2.0, 0.0]), x)
    for k in range(2):  # the initial equilibrium already has the full temperature
        np.testing.assert_allclose(res.displacement[k].reshape(-1, 3), u, rtol=0, atol=1e-10 * np.abs(u).max())
        assert np.abs(res.fields["stress"][k]).max() <= 1e-9 * E * ag
    assert res.newton_iterations[0] <= 1  # nothing changes after t = 0 (at most a round-off predictor)


def test_linear_temperature_through_a_c3d8_beam_leaves_layer_stresses():
    """C3D8 takes the element MEAN temperature (CalculiX): a piecewise-constant thermal strain
    is not compatible with a linear T, so self-equilibrated stresses remain; their RMS falls
    with the layer thickness (measured 0.137, 0.091, 0.066 of E alpha g for 2, 4, 8 layers; one
    layer: uniform strain, no stress)."""
    rms = []
    for n_z in (1, 2, 4):
        res = solve(free_beam("C3D8", n_z), fields=("displacement", "stress"))
        rms.append(np.sqrt(np.mean(res.fields["stress"][-1] ** 2)) / (E * ALPHA * 200.0))
    assert rms[0] < 1e-12
    assert 0.1 < rms[1] < 0.15 and 0.6 * rms[1] < rms[2] < 0.75 * rms[1], rms


# ---- viscoplasticity with temperatures changing within increments --------------------------


def norton():
    plastic = [[200.0, 0.0], [260.0, 0.005], [300.0, 0.02], [340.0, 0.1]]
    return CalculixViscoplastic(plastic=plastic, hardening="isotropic", norton=(4e-11, 5.0, 0.0),
                                elastic=[(E, NU, T0), (0.8 * E, NU, 620.0)], expansion=EXPANSION, expansion_zero=T0)


def drive_clamped(law, times, temperature):
    """One material point with eps_xx = 0 and the other stresses 0 (Newton on eps_yy, eps_zz),
    at the point temperatures [T0, T(t_n), T(t_n+1)]."""
    state = law.initial_state(1)
    eps = np.zeros((1, 6))
    out = []
    for k in range(1, len(times)):
        T = np.array([[T0, temperature(times[k - 1]), temperature(times[k])]])
        for _ in range(60):
            s, D, s_new, failed = law.integrate(eps, state, times[k] - times[k - 1], times[k], temperature=T)
            assert failed == 0
            r = -s[0, 1:3]
            if np.abs(r).max() <= 1e-12 * max(1.0, np.abs(s).max()):
                break
            eps[0, 1:3] += np.linalg.solve(D[0][1:3, 1:3], r)
        else:
            raise RuntimeError("material driver did not converge")
        state = s_new
        out.append((s[0].copy(), s_new[0].copy()))
    return [np.array(v) for v in zip(*out)]


def clamped_bar_problem(times, amplitude):
    mesh = box((2, 1, 1), (2.0, 1.0, 1.0), element="C3D8")
    bcs = symmetry(mesh) + (Dirichlet(mesh.node_sets["xmax"], (0,), name="xmax"),)
    heat = Temperature(np.arange(mesh.n_nodes), 420.0, amplitude, name="heat")
    return Problem(mesh, norton(), bcs, times, initial_temperature=T0, temperatures=(heat,))


def test_viscoplastic_bar_heated_and_cooled_matches_the_material_driver():
    """A bar clamped axially, heated 20 -> 420 and cooled back (E alpha dT ~ 1000 MPa >> yield
    200; E falls by 20 % and alpha rises by 33 % from 20 to 620): compressive yielding, then
    tensile yielding on cooling. Homogeneous: the FE stress
    and state equal one material point on the same increments to 1e-9; Newton converges
    quadratically (log r_k+1 <= 1.7 log r_k for 1e-2 > r_k, r_k+1 > 1e-12); the temperature breakpoint inside
    the coarse output interval splits it, with the same answer as the fine output times."""
    amplitude = Amplitude([0.0, 1.0, 2.0], [T0 / 420.0, 1.0, T0 / 420.0])
    times = np.linspace(0.0, 2.0, 17)
    problem = clamped_bar_problem(times, amplitude)
    res = solve(problem, fields=("displacement", "stress", "state"), options=TIGHT)
    assert np.all(res.n_subincrements == 1) and np.all(res.n_cuts == 0)
    sig, state = drive_clamped(problem.material, times, lambda t: 420.0 * amplitude(t))
    stress = res.fields["stress"][1:]
    np.testing.assert_allclose(stress, np.broadcast_to(sig[:, None, :], stress.shape), rtol=0, atol=1e-9 * 300)
    np.testing.assert_allclose(res.fields["state"][1:, :, :13],
                               np.broadcast_to(state[:, None, :13], (len(state), stress.shape[1], 13)),
                               rtol=0, atol=1e-11)
    assert sig[7, 0] < -200.0 and sig[-1, 0] > 200.0  # yielded in compression, then in tension
    assert state[-1, 0] > 2e-3  # cumulated plastic strain
    # quadratic down to ~1e-12 (measured 3.8e-3, 2.9e-8, 2.9e-13: below 1e-12 the law's local
    # Newton limits the rate, as in the athermal relaxation test)
    pairs = [(a, b) for h in res.residual_history for a, b in zip(h[:-1], h[1:]) if a < 1e-2 and b > 1e-12]
    assert len(pairs) >= 5
    assert all(np.log10(b) <= 1.7 * np.log10(a) for a, b in pairs), pairs
    coarse = solve(clamped_bar_problem([0.0, 0.5, 2.0], amplitude), fields=("displacement", "state"))
    fine = solve(clamped_bar_problem([0.0, 0.5, 1.0, 2.0], amplitude), fields=("displacement", "state"))
    assert coarse.n_subincrements[1] >= 2  # split at t = 1
    np.testing.assert_allclose(coarse.displacement[-1], fine.displacement[-1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(coarse.fields["state"][-1], fine.fields["state"][-1], rtol=0, atol=1e-12)


# ---- body forces -----------------------------------------------------------------------------


def annulus(element, n, a=0.2, b=1.0, h=0.05):
    """Quarter of the annular disc a <= r <= b, 0 <= z <= h (midside nodes on the arcs)."""
    mesh = box((n, 2 * n, 1), (b - a, np.pi / 2, h), (a, 0.0, 0.0), element=element)
    return map_nodes(mesh, lambda x: np.column_stack([x[:, 0] * np.cos(x[:, 1]), x[:, 0] * np.sin(x[:, 1]), x[:, 2]]))


def disc_bcs(mesh):
    return (Dirichlet(mesh.node_sets["ymin"], (1,), name="theta0"), Dirichlet(mesh.node_sets["ymax"], (0,), name="theta90"),
            Dirichlet(mesh.node_sets["zmin"], (2,), name="midplane"))


def polar_stress(mesh, stress):
    x = quadrature(mesh).coordinates
    r = np.hypot(x[:, 0], x[:, 1])
    c, s = x[:, 0] / r, x[:, 1] / r
    srr = c * c * stress[:, 0] + s * s * stress[:, 1] + 2 * c * s * stress[:, 3]
    stt = s * s * stress[:, 0] + c * c * stress[:, 1] - 2 * c * s * stress[:, 3]
    return r, srr, stt


def radial_displacement(mesh, u):
    u = u.reshape(-1, 3)
    r = np.hypot(mesh.nodes[:, 0], mesh.nodes[:, 1])
    return r, (u[:, 0] * mesh.nodes[:, 0] + u[:, 1] * mesh.nodes[:, 1]) / r


RHO, OMEGA2 = 1.0, 1000.0


def spinning_disc_errors(n):
    """Relative errors (to max sigma_theta) of sigma_r, sigma_theta at the points and of u_r
    at the nodes against the plane-stress rotating annular disc (Timoshenko & Goodier):
    sigma_r = (3 + nu) / 8 rho w^2 (b^2 + a^2 - a^2 b^2 / r^2 - r^2),
    sigma_t = (3 + nu) / 8 rho w^2 (b^2 + a^2 + a^2 b^2 / r^2 - (1 + 3 nu) / (3 + nu) r^2)."""
    a, b = 0.2, 1.0
    mesh = annulus("C3D20R", n, a, b)
    spin = Centrifugal(np.arange(mesh.n_elements), OMEGA2, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], RHO, ramp(), name="spin")
    res = solve(Problem(mesh, LinearElastic(E, NU), disc_bcs(mesh), [0.0, 1.0], (spin,)), fields=("displacement", "stress"))
    k = (3 + NU) / 8 * RHO * OMEGA2
    sigma_r = lambda r: k * (b**2 + a**2 - a**2 * b**2 / r**2 - r**2)  # noqa: E731
    sigma_t = lambda r: k * (b**2 + a**2 + a**2 * b**2 / r**2 - (1 + 3 * NU) / (3 + NU) * r**2)  # noqa: E731
    r, srr, stt = polar_stress(mesh, res.fields["stress"][-1])
    ref = np.abs(sigma_t(r)).max()
    rn, ur = radial_displacement(mesh, res.displacement[-1])
    ur_exact = rn / E * (sigma_t(rn) - NU * sigma_r(rn))
    assert res.newton_iterations[0] == 1
    return (np.abs(srr - sigma_r(r)).max() / ref, np.abs(stt - sigma_t(r)).max() / ref,
            np.abs(ur - ur_exact).max() / np.abs(ur_exact).max())


def test_spinning_annular_disc_matches_the_plane_stress_solution():
    """C3D20R, thickness 0.05 for a 0.2 / 1.0 annulus: the point stresses converge like h^2
    (measured 5.5e-3, 7.1e-3 on 4 x 8 elements, 1.4e-3, 1.7e-3 on 8 x 16) to the plane-stress
    solution; u_r stays at the 1.5e-3 of the 3-D disc against plane stress. Tolerances 2e-3
    (stresses, 8 x 16) and 2.5e-3 (u_r)."""
    coarse = spinning_disc_errors(4)
    fine = spinning_disc_errors(8)
    assert fine[0] < 2e-3 and fine[1] < 2e-3 and fine[2] < 2.5e-3, fine
    assert coarse[0] / fine[0] > 3.5 and coarse[1] / fine[1] > 3.5, (coarse, fine)


def test_spinning_disc_with_a_prescribed_inner_radius():
    """The same disc (C3D20R, 8 x 16) spinning with the inner radius pushed out by u_a (one
    Dirichlet condition per node and component, ramped as the spin): plane stress
    u_r = C1 r + C2 / r - (1 - nu^2) rho w^2 r^3 / (8 E) with u_r(a) = u_a, sigma_r(b) = 0.
    Measured errors (to the largest stress) 2.6e-3 (sigma_r, steep at a), 1.4e-3 (sigma_theta) and
    2.0e-3 (u_r, to its largest value); tolerance 4e-3.
    Linear elastic: at t = 0.5 everything is half."""
    a, b, u_a = 0.2, 1.0, 5e-7
    mesh = annulus("C3D20R", 8, a, b)
    spin = Centrifugal(np.arange(mesh.n_elements), OMEGA2, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], RHO, ramp(), name="spin")
    inner = mesh.node_sets["xmin"]
    c = mesh.nodes[inner, :2] / a
    push = tuple(Dirichlet([n], (k,), u_a * c[i, k], ramp(), name=f"push-{n}-{k}")
                 for i, n in enumerate(inner) for k in range(2))
    problem = Problem(mesh, LinearElastic(E, NU), disc_bcs(mesh) + push, [0.0, 0.5, 1.0], (spin,))
    res = solve(problem, fields=("displacement", "stress"))
    K = (1 - NU**2) * RHO * OMEGA2 / (8 * E)
    C1, C2 = np.linalg.solve([[a, 1 / a], [1 + NU, -(1 - NU) / b**2]], [u_a + K * a**3, (3 + NU) * K * b**2])
    f = E / (1 - NU**2)
    ur_exact = lambda r: C1 * r + C2 / r - K * r**3  # noqa: E731
    sigma_r = lambda r: f * ((1 + NU) * C1 - (1 - NU) * C2 / r**2 - (3 + NU) * K * r**2)  # noqa: E731
    sigma_t = lambda r: f * ((1 + NU) * C1 + (1 - NU) * C2 / r**2 - (1 + 3 * NU) * K * r**2)  # noqa: E731
    r, srr, stt = polar_stress(mesh, res.fields["stress"][-1])
    ref = max(np.abs(sigma_t(r)).max(), np.abs(sigma_r(r)).max())
    rn, ur = radial_displacement(mesh, res.displacement[-1])
    errors = (np.abs(srr - sigma_r(r)).max() / ref, np.abs(stt - sigma_t(r)).max() / ref,
              np.abs(ur - ur_exact(rn)).max() / np.abs(ur_exact(rn)).max())
    assert max(errors) < 4e-3, errors
    assert sigma_r(a) > 0.1 * ref  # the push matters (the spin alone leaves sigma_r(a) = 0)
    np.testing.assert_allclose(res.displacement[1], 0.5 * res.displacement[2], rtol=0,
                               atol=1e-12 * np.abs(res.displacement[2]).max())


def test_column_under_its_own_weight():
    """A column 1 x 1 x 4 on its base, gravity -z, nu = 0: sigma_zz = -rho g (H - z) and
    u_z = -rho g (H z - z^2 / 2) / E, quadratic: exact on C3D20R (1e-10)."""
    H, g, rho = 4.0, 9810.0, 7.8e-9
    mesh = box((1, 1, 4), (1.0, 1.0, H), element="C3D20R")
    weight = Gravity(np.arange(mesh.n_elements), g, [0.0, 0.0, -1.0], rho, ramp(), name="weight")
    problem = Problem(mesh, LinearElastic(E, 0.0), symmetry(mesh), [0.0, 1.0], (weight,))
    res = solve(problem, fields=("displacement", "stress"))
    z = quadrature(mesh).coordinates[:, 2]
    stress = res.fields["stress"][-1]
    np.testing.assert_allclose(stress[:, 2], -rho * g * (H - z), rtol=0, atol=1e-10 * rho * g * H)
    assert np.abs(stress[:, [0, 1, 3, 4, 5]]).max() <= 1e-10 * rho * g * H
    zn = mesh.nodes[:, 2]
    uz = res.displacement[-1][2::3]
    np.testing.assert_allclose(uz, -rho * g * (H * zn - zn**2 / 2) / E, rtol=0, atol=1e-10 * rho * g * H**2 / E)
    np.testing.assert_allclose(res.reactions[-1, 2, 2], rho * g * H, rtol=1e-12)  # the base carries the weight


# ---- input handling and outputs --------------------------------------------------------------


def test_thermal_law_in_an_athermal_problem_is_refused():
    mesh = box((1, 1, 1))
    with pytest.raises(ValueError, match=r"\['LinearElastic'\].*athermal.*initial_temperature"):
        Problem(mesh, thermoelastic(), symmetry(mesh), [0.0, 1.0])
    with pytest.raises(ValueError, match="LinearElastic"):
        Problem(mesh, {"all": thermoelastic()}, symmetry(mesh), [0.0, 1.0])
    Problem(mesh, thermoelastic(), symmetry(mesh), [0.0, 1.0], initial_temperature=T0)


def test_athermal_law_in_a_thermal_problem_ignores_the_temperature():
    """Temperatures are written, the law ignores them: no stress."""
    mesh = box((1, 1, 1))
    problem = Problem(mesh, LinearElastic(E, NU), symmetry(mesh), [0.0, 1.0], initial_temperature=T0,
                      temperatures=(uniform_heating(mesh, 500.0),))
    res = solve(problem, fields=("displacement", "stress"))
    assert np.abs(res.displacement).max() == 0.0 and np.abs(res.fields["stress"]).max() == 0.0
    np.testing.assert_allclose(res.fields["temperature"][:, 0], [0.0, 500.0])


def test_temperature_field_through_a_store(tmp_path):
    """The nodal temperature is a 1-component node field of the store (default spec)."""
    from romdask.store import SnapshotStore, create_store, open_run

    mesh = box((2, 2, 2), element="C3D8")
    heat = Temperature(np.arange(mesh.n_nodes), 100.0 + mesh.nodes[:, 0], ramp(1.0), name="heat")
    problem = Problem(mesh, thermoelastic(), symmetry(mesh), [0.0, 0.5, 1.0], initial_temperature=T0,
                      temperatures=(heat,))
    store = create_store(tmp_path / "s.zarr", mesh, n_subdomains=2)
    writer = store.writer("heat", mesh=mesh, times=problem.times, fields=("displacement", "temperature"))
    solve(problem, writer=writer)
    ds = open_run(tmp_path / "s.zarr", "heat")
    store_mesh = SnapshotStore.open(tmp_path / "s.zarr", mode="r").layout.mesh
    order = mesh.node_index(store_mesh.node_ids)  # problem node of each store node
    stored = np.asarray(ds.temperature.values).reshape(3, mesh.n_nodes)
    np.testing.assert_allclose(stored, [problem.nodal_temperature(t)[order] for t in problem.times], rtol=1e-15)
