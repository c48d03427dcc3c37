"""Chaboche: backward Euler kernel vs an independent ODE integration (scipy Radau)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from romdask.materials import Chaboche

DIRECTION = np.array([1.0, -0.3, -0.2, 0.5, 0.2, -0.4])
W = np.array([1, 1, 1, 2, 2, 2.0])  # tensor-Voigt double contraction weights


def cyclic_strain(t):
    """0 -> +0.006 (t=1) -> -0.004 (t=3) -> hold (relaxation) until t=4."""
    return np.interp(t, [0.0, 1.0, 3.0, 4.0], [0.0, 0.006, -0.004, -0.004]) * DIRECTION


def ode_reference(law, t_eval):
    """Integrate the Chaboche ODEs (state eps_p (6), p, X (6), tensor shear) with Radau."""
    mu = law.young / (2 * (1 + law.poisson))

    def rhs(t, y):
        ep, p, x = y[0:6], y[6], y[7:13]
        eps = cyclic_strain(t).copy()
        eps[3:] *= 0.5
        e = eps - ep
        s = 2 * mu * e
        s[:3] -= 2 * mu * e[:3].sum() / 3
        xi = s - x
        j = np.sqrt(1.5 * np.sum(W * xi * xi))
        f = j - (law.r0 + law.q * (1 - np.exp(-law.b * p)))
        pdot = (f / law.k) ** law.n if f > 0 else 0.0
        epdot = 1.5 * pdot * xi / j if j > 0 else 0 * xi
        xdot = 2.0 / 3.0 * law.c * epdot - law.d * x * pdot
        return np.concatenate([epdot, [pdot], xdot])

    sol = solve_ivp(rhs, (0.0, t_eval[-1]), np.zeros(13), method="Radau", t_eval=t_eval,
                    rtol=1e-10, atol=1e-13, max_step=0.005)  # fmt: skip
    assert sol.success
    return sol.y.T


def run(law, times):
    st = law.initial_state(1)
    t0 = 0.0
    out = []
    for t in times:
        s, _, st, nf = law.integrate(cyclic_strain(t)[None], st, t - t0, t)
        assert nf == 0
        out.append(np.concatenate([s[0], st[0]]))
        t0 = t
    return np.array(out)


@pytest.mark.parametrize("kwargs", [{}, {"q": 40.0, "b": 30.0, "n": 8.0, "k": 150.0}])
def test_chaboche_converges_to_ode(kwargs):
    law = Chaboche(**kwargs)
    t_check = np.arange(1, 41) * 0.1
    ref = ode_reference(law, t_check)
    errors = []
    for dt in (0.02, 0.01, 0.005):
        times = np.arange(1, int(round(4.0 / dt)) + 1) * dt
        res = run(law, times)
        pick = np.searchsorted(times, t_check - 1e-9)
        # res: stress (6), p, eps_p (6), X (6); ref: eps_p (6), p, X (6)
        ep_err = max(
            np.abs(res[pick, 7:13] - ref[:, 0:6]).max(), np.abs(res[pick, 6] - ref[:, 6]).max()
        )
        x_err = np.abs(res[pick, 13:19] - ref[:, 7:13]).max() / np.abs(ref[:, 7:13]).max()
        errors.append(max(ep_err / ref[-1, 6], x_err))
    # first order: halving dt roughly halves the error
    r1, r2 = errors[0] / errors[1], errors[1] / errors[2]
    assert 1.5 < r1 < 2.5 and 1.5 < r2 < 2.5, errors
    assert errors[-1] < 0.01, errors  # < 1 % (relative to p and to max |X|) at dt = 5 ms


def test_chaboche_large_increments_stay_robust():
    # n = 30: an explicit or naive Newton solve overflows; the safeguarded solve must converge
    # for strain increments from 1e-6 to 1e-2 and time steps from 1e-6 to 1e3
    law = Chaboche()
    for de in (1e-6, 1e-4, 1e-2):
        for dt in (1e-6, 1e-2, 1e3):
            s, D, st, nf = law.integrate((de * DIRECTION)[None], law.initial_state(1), dt, dt)
            assert nf == 0 and np.all(np.isfinite(s)) and np.all(np.isfinite(D))
            assert st[0, 0] >= 0.0


def test_bad_parameters():
    with pytest.raises(ValueError, match="young"):
        Chaboche(young=0.0)
    with pytest.raises(ValueError, match="poisson"):
        Chaboche(poisson=0.6)
    with pytest.raises(ValueError, match="k"):
        Chaboche(k=-1.0)
    with pytest.raises(ValueError, match="n"):
        Chaboche(n=0.5)
    with pytest.raises(ValueError, match="d"):
        Chaboche(d=-1.0)
