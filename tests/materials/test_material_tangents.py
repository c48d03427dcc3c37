"""Consistent tangents vs central finite differences of the kernel stress (engineering strain).

FD step h = 1e-8 on strains of ~1e-3: the stress change is ~2e-3 MPa, so the round-off error of
the difference quotient is ~1e-13 * 600 / 2e-3 / 2e5 ~ 1e-13 relative, and the truncation error
is zero for the piecewise-linear laws and O(h^2 * curvature) ~ 1e-10 for the smooth ones; a
relative error <= 1e-6 therefore isolates a wrong tangent formula. States are chosen away from
the kinks of the hardening tables.
"""

import numpy as np
import pytest

from romdask.materials import CalculixViscoplastic, Chaboche, LinearElastic

H = 1e-8
EPS = np.array([0.004, -0.001, -0.0012, 0.002, -0.001, 0.0005])


def _integrate(law, params, eps, state, dt, t):
    stress = np.empty((1, 6))
    tangent = np.empty((1, 6, 6))
    new = np.empty((1, law.n_state))
    nf = law.kernel(eps[None], state[None], dt, t, np.zeros((1, 3)), params, stress, tangent, new)
    assert nf == 0
    return stress[0], tangent[0], new[0]


def fd_error(law, eps, state, dt, t, params=None):
    params = law.params if params is None else params
    _, D, _ = _integrate(law, params, eps, state, dt, t)
    Dfd = np.empty((6, 6))
    for j in range(6):
        ep, em = eps.copy(), eps.copy()
        ep[j] += H
        em[j] -= H
        sp = _integrate(law, params, ep, state, dt, t)[0]
        sm = _integrate(law, params, em, state, dt, t)[0]
        Dfd[:, j] = (sp - sm) / (2 * H)
    return np.abs(Dfd - D).max() / np.abs(D).max()


def _states(law, params, dt):
    """(name, strain, state) at elastic, plastic loading, further loading, unloading, reversal."""
    s0 = law.initial_state(1)[0]
    _, _, s1 = _integrate(law, params, EPS, s0, dt, 1.0)
    assert s1[0] > 0.0  # the first increment is plastic
    return [
        ("elastic", 0.1 * EPS, s0),
        ("plastic from virgin", EPS, s0),
        ("further loading", 1.3 * EPS, s1),
        ("elastic unloading", 0.8 * EPS, s1),
        ("reverse plasticity", -EPS, s1),
    ]


TABLE = [(200.0, 0.0), (300.0, 0.01), (400.0, 0.1)]
CYCLIC = [(200.0, 0.0), (250.0, 0.02)]


def _calculix(hardening, norton):
    return CalculixViscoplastic(
        200000.0, 0.3, TABLE, hardening=hardening, norton=norton,
        cyclic_hardening=CYCLIC if hardening == "combined" else None,
    )  # fmt: skip


def test_elastic_tangent():
    law = LinearElastic(200000.0, 0.3)
    assert fd_error(law, EPS, law.initial_state(1)[0], 1.0, 1.0) < 1e-6


@pytest.mark.parametrize("hardening", ["isotropic", "kinematic", "combined"])
@pytest.mark.parametrize("norton", [None, (1e-9, 3.0, 0.2)])
def test_calculix_tangent_exact_local_solution(hardening, norton):
    # the tangent formula of incplas_lin.f is exact at the exact local solution: tighten the
    # Newton tolerance (params slot 8, CalculiX uses 1e-4) to test the formula at 1e-6
    law = _calculix(hardening, norton)
    params = law.params.copy()
    params[8] = 1e-14
    for name, eps, state in _states(law, params, 0.5):
        err = fd_error(law, eps, state, 0.5, 1.5, params)
        assert err < 1e-6, (name, err)


@pytest.mark.parametrize("hardening", ["isotropic", "kinematic", "combined"])
def test_calculix_tangent_with_calculix_tolerance(hardening):
    # with CalculiX's own stopping rule (|dcop| < 1e-4 cop) the Norton tangent is evaluated at
    # the previous Newton iterate, up to 1e-4 relative away from the returned one: the kernel's
    # tangent is then consistent to ~1e-4 only (CalculiX behaviour, reproduced on purpose);
    # rate-independent tables are piecewise linear, so Newton is exact there (1e-6 still holds)
    for norton, tol in ((None, 1e-6), ((1e-9, 3.0, 0.2), 1e-4)):
        law = _calculix(hardening, norton)
        for name, eps, state in _states(law, law.params, 0.5):
            err = fd_error(law, eps, state, 0.5, 1.5)
            assert err < tol, (name, norton, err)


@pytest.mark.parametrize(
    "kwargs", [{}, {"q": 50.0, "b": 20.0}, {"n": 5.0, "k": 100.0, "d": 0.0}]
)
@pytest.mark.parametrize("dt", [1.0, 1e-3])
def test_chaboche_tangent(kwargs, dt):
    law = Chaboche(**kwargs)
    for name, eps, state in _states(law, law.params, dt):
        err = fd_error(law, eps, state, dt, 1.0)
        assert err < 1e-6, (name, err)
