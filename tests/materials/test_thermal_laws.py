"""Temperature tables and thermal expansion of the laws: exactness, CalculiX's table rules,
consistent tangents with the temperature changing within the increment.

Tangent tolerance: as in test_material_tangents.py (h = 1e-8, truncation error zero for the
piecewise-linear tables and O(h^2) ~ 1e-10 for the smooth laws, round-off ~1e-13 relative): a
relative error <= 1e-6 isolates a wrong formula. The temperature enters only the constants and
the thermal strain, which do not depend on the strain, so the tangent at a changing
temperature must be exactly as consistent as at a fixed one.
"""

import numpy as np
import pytest

from romdask.materials import (
    CalculixViscoplastic,
    Chaboche,
    LinearElastic,
    law_from_json,
    law_to_json,
)
from romdask.materials.calculix import _curve_at, _hardening

H = 1e-8
EPS = np.array([0.004, -0.001, -0.0012, 0.002, -0.001, 0.0005])
ELASTIC = [(200000.0, 0.3, 20.0), (180000.0, 0.31, 220.0), (150000.0, 0.33, 420.0)]
# three curves of different strain ranges and breakpoints (plmix merges them)
PLASTIC = [(200.0, 0.0, 20.0), (300.0, 0.01, 20.0), (400.0, 0.1, 20.0),
           (150.0, 0.0, 220.0), (200.0, 0.02, 220.0),
           (100.0, 0.0, 420.0), (120.0, 0.005, 420.0), (160.0, 0.05, 420.0)]  # fmt: skip
CYCLIC = [(200.0, 0.0, 20.0), (250.0, 0.02, 20.0), (120.0, 0.0, 420.0), (150.0, 0.03, 420.0)]
NORTON = [(1e-9, 3.0, 0.2, 20.0), (4e-9, 2.5, 0.1, 420.0)]
EXPANSION = [(1.2e-5, 20.0), (1.5e-5, 420.0)]
# (Tinit, Tn, Tn+1): inside a table interval, at a table node, above and below the tables
TEMPERATURES = {
    "inside": (20.0, 150.0, 170.0),
    "node": (60.0, 200.0, 220.0),
    "above": (20.0, 480.0, 500.0),
    "below": (100.0, 30.0, 0.0),
}


def integrate(law, eps, state, dt, t, temps, params=None):
    params = law.params if params is None else params
    stress, tangent, new = np.empty((1, 6)), np.empty((1, 6, 6)), np.empty((1, law.n_state))
    nf = law.kernel(eps[None], state[None], dt, t, np.array([temps], float), params, stress, tangent, new)
    assert nf == 0
    return stress[0], tangent[0], new[0]


def fd_error(law, eps, state, dt, t, temps, params):
    _, D, _ = integrate(law, eps, state, dt, t, temps, params)
    Dfd = np.empty((6, 6))
    for j in range(6):
        ep, em = eps.copy(), eps.copy()
        ep[j] += H
        em[j] -= H
        Dfd[:, j] = (integrate(law, ep, state, dt, t, temps, params)[0]
                     - integrate(law, em, state, dt, t, temps, params)[0]) / (2 * H)  # fmt: skip
    return np.abs(Dfd - D).max() / np.abs(D).max()


def eth(law, t_init, t1):
    """CalculiX's secant thermal strain, by hand."""
    rows = np.array(law.expansion)

    def alpha(t):
        return np.interp(t, rows[:, 1], rows[:, 0])

    return alpha(t1) * (t1 - law.expansion_zero) - alpha(t_init) * (t_init - law.expansion_zero)


def thermal_calculix(hardening="isotropic", norton=NORTON):
    return CalculixViscoplastic(
        plastic=PLASTIC, hardening=hardening, norton=norton, elastic=ELASTIC,
        cyclic_hardening=CYCLIC if hardening == "combined" else None, expansion=EXPANSION, expansion_zero=10.0,
    )  # fmt: skip


def thermal_chaboche():
    base = [200000.0, 0.3, 10.0, 50.0, 20.0, 300.0, 10.0, 1.0e5, 1.0e3]
    hot = [150000.0, 0.33, 5.0, 30.0, 10.0, 200.0, 5.0, 5.0e4, 5.0e2]
    return Chaboche(table=[base + [20.0], hot + [420.0]], expansion=EXPANSION, expansion_zero=10.0)


def states(law, temps, dt, params):
    s0 = law.initial_state(1)[0]
    _, _, s1 = integrate(law, EPS, s0, dt, 1.0, temps, params)
    assert s1[0] > 0.0
    return [("elastic", 0.05 * EPS, s0), ("plastic from virgin", EPS, s0), ("further loading", 1.3 * EPS, s1),
            ("elastic unloading", 0.8 * EPS, s1), ("reverse plasticity", -EPS, s1)]  # fmt: skip


@pytest.mark.parametrize("where", sorted(TEMPERATURES))
@pytest.mark.parametrize("hardening", ["isotropic", "kinematic", "combined"])
@pytest.mark.parametrize("norton", [None, NORTON])
def test_calculix_tangent_with_temperature(where, hardening, norton):
    law = thermal_calculix(hardening, norton)
    params = law.params.copy()
    params[8] = 1e-14  # exact local solution (see test_material_tangents.py)
    temps = TEMPERATURES[where]
    for name, eps, state in states(law, temps, 0.5, params):
        err = fd_error(law, eps, state, 0.5, 1.5, temps, params)
        assert err < 1e-6, (name, err)


@pytest.mark.parametrize("where", sorted(TEMPERATURES))
def test_chaboche_and_elastic_tangent_with_temperature(where):
    temps = TEMPERATURES[where]
    law = thermal_chaboche()
    for name, eps, state in states(law, temps, 1.0, law.params):
        assert fd_error(law, eps, state, 1.0, 1.0, temps, law.params) < 1e-6, name
    el = LinearElastic(elastic=ELASTIC, expansion=EXPANSION)
    assert fd_error(el, EPS, el.initial_state(1)[0], 1.0, 1.0, temps, el.params) < 1e-6


def history(law, temps):
    """Load, reverse, hold at varying temperature; stresses and states of every increment."""
    state = law.initial_state(1)[0]
    out = []
    for k in range(1, 13):
        amp = np.interp(k, [0, 4, 9, 12], [0.0, 1.5, -1.0, -1.0])
        s, _, state = integrate(law, amp * EPS, state, 0.25, 0.25 * k, temps(k))
        out.append(np.concatenate([s, state]))
    return np.array(out)


def test_one_row_tables_are_bit_identical_to_scalars():
    def temps(k):
        return (15.0, 300.0 + k, 301.0 + k)

    def zero(k):
        return (0.0, 0.0, 0.0)

    for hardening in ("isotropic", "kinematic", "combined"):
        cyc = [(200.0, 0.0), (250.0, 0.02)] if hardening == "combined" else None
        cyc_t = [r + (100.0,) for r in cyc] if cyc else None
        table = [(200.0, 0.0), (300.0, 0.01), (400.0, 0.1)]
        scalar = CalculixViscoplastic(200000.0, 0.3, table, hardening, (1e-9, 3.0, 0.2), cyc)
        rows = CalculixViscoplastic(plastic=[r + (50.0,) for r in table], hardening=hardening,
                                    norton=[(1e-9, 3.0, 0.2, 70.0)], cyclic_hardening=cyc_t,
                                    elastic=[(200000.0, 0.3, 90.0)])  # fmt: skip
        assert rows.thermal and not scalar.thermal
        ref = history(scalar, zero)
        assert ref[:, 6].max() > 1e-3
        assert np.array_equal(history(rows, temps), ref)
    constants = [200000.0, 0.3, 10.0, 50.0, 20.0, 300.0, 10.0, 1.0e5, 1.0e3]
    ref = history(Chaboche(*constants), zero)
    assert np.array_equal(history(Chaboche(table=[constants + [500.0]]), temps), ref)
    ref = history(LinearElastic(210000.0, 0.29), zero)
    assert np.array_equal(history(LinearElastic(elastic=[(210000.0, 0.29, 7.0)]), temps), ref)


@pytest.mark.parametrize("law", [LinearElastic(elastic=ELASTIC, expansion=EXPANSION, expansion_zero=10.0),
                                 thermal_calculix(), thermal_chaboche()], ids=["elastic", "calculix", "chaboche"])
def test_free_expansion_is_stress_free_and_constrained_gives_thermal_stress(law):
    for t_init, t1 in ((20.0, 300.0), (100.0, 500.0), (300.0, 0.0)):
        e = eth(law, t_init, t1)
        free = np.array([e, e, e, 0.0, 0.0, 0.0])
        s, _, state = integrate(law, free, law.initial_state(1)[0], 1.0, 1.0, (t_init, 0.5 * (t_init + t1), t1))
        assert np.abs(s).max() < 1e-9 and np.all(state == 0.0)
    # fully constrained, elastic (small dT): sigma_ii = -E(T1) / (1 - 2 nu(T1)) eth
    t_init, t1 = 100.0, 120.0
    s, _, _ = integrate(law, np.zeros(6), law.initial_state(1)[0], 1.0, 1.0, (t_init, t_init, t1))
    young, nu = (np.interp(t1, [20.0, 220.0, 420.0], [200000.0, 180000.0, 150000.0]),
                 np.interp(t1, [20.0, 220.0, 420.0], [0.3, 0.31, 0.33])) if not isinstance(law, Chaboche) else (
                 np.interp(t1, [20.0, 420.0], [200000.0, 150000.0]), np.interp(t1, [20.0, 420.0], [0.3, 0.33]))
    expected = -young / (1 - 2 * nu) * eth(law, t_init, t1)
    assert expected < -100.0  # heating a clamped point: compression
    assert np.allclose(s[:3], expected, rtol=1e-12, atol=0) and np.all(s[3:] == 0.0)


def test_hardening_curves_follow_plmix_and_plcopy():
    law = CalculixViscoplastic(200000.0, 0.3, [(200.0, 0.0, 20.0), (300.0, 0.01, 20.0), (400.0, 0.1, 20.0),
                                               (100.0, 0.0, 220.0), (150.0, 0.02, 220.0)])  # fmt: skip
    p = law.params

    def fiso(t, ep):
        return _hardening(p, _curve_at(p, int(p[6]), t), _curve_at(p, int(p[7]), t), ep)[:2]

    c1_002 = 300.0 + 100.0 * 0.01 / 0.09  # first curve at ep = 0.02
    # halfway: both curves on the union of their strains, cut to the common range [0, 0.02]
    assert np.allclose(fiso(120.0, 0.0), (150.0, (212.5 - 150.0) / 0.01))
    assert np.allclose(fiso(120.0, 0.01), (0.5 * (300.0 + 125.0), (0.5 * (c1_002 + 150.0) - 212.5) / 0.01))
    assert np.allclose(fiso(120.0, 0.05), (0.5 * (c1_002 + 150.0), 0.0))  # constant beyond 0.02
    # at the first node temperature: ratio 0 of the merged pair (cut at 0.02 too), not curve 1
    assert np.allclose(fiso(20.0, 0.05), (c1_002, 0.0))
    # at the last node, above and below: the curve itself (plcopy)
    assert np.allclose(fiso(220.0, 0.05), (150.0, 0.0)) and np.allclose(fiso(900.0, 0.01), (125.0, 2500.0))
    assert np.allclose(fiso(-50.0, 0.05), (300.0 + 100.0 * 0.04 / 0.09, 100.0 / 0.09))


def test_constants_at_the_end_temperature_and_norton_at_elastic_temperatures():
    law = CalculixViscoplastic(elastic=[(200000.0, 0.3, 0.0), (100000.0, 0.2, 100.0)], plastic=[(1e6, 0.0)],
                               norton=[(1e-9, 3.0, 0.0, 50.0), (3e-9, 5.0, 1.0, 150.0)])  # fmt: skip
    # creeps.f: Norton resampled at the *ELASTIC temperatures 0 and 100 -> (1e-9, 3, 0), (2e-9, 4, 0.5)
    assert np.allclose(law.params[9:21].reshape(2, 6), [[0.0, 2e5, 0.3, 1e-9, 3.0, 0.0],
                                                        [100.0, 1e5, 0.2, 2e-9, 4.0, 0.5]], rtol=1e-15)  # fmt: skip
    # uniaxial-like stress at T1 = 75 with T_n = 0: E(75) = 125000, nu(75) = 0.225 (not E(T_n))
    eps = np.array([1e-3, 0, 0, 0, 0, 0.0])
    s, _, _ = integrate(law, eps, law.initial_state(1)[0], 1.0, 1.0, (0.0, 0.0, 75.0))
    young, nu = 125000.0, 0.225
    lam, mu = young * nu / ((1 + nu) * (1 - 2 * nu)), young / (2 * (1 + nu))
    assert np.allclose(s[:3], [(lam + 2 * mu) * 1e-3, lam * 1e-3, lam * 1e-3], rtol=1e-13)


def test_json_round_trip_and_old_json():
    for law in (thermal_calculix("combined"), thermal_chaboche(), LinearElastic(elastic=ELASTIC, expansion=1e-5)):
        back = law_from_json(law_to_json(law))
        assert back == law and np.array_equal(back.params, law.params) and back.thermal
    old = {"type": "CalculixViscoplastic", "parameters": {"young": 2e5, "poisson": 0.3, "plastic": [[200.0, 0.0]],
                                                          "hardening": "isotropic", "norton": [1e-9, 3.0, 0.0],
                                                          "cyclic_hardening": None}}  # fmt: skip
    law = law_from_json(old)
    assert not law.thermal and law.norton == (1e-9, 3.0, 0.0) and law.plastic == ((200.0, 0.0),)
    assert not law_from_json({"type": "LinearElastic", "parameters": {"young": 2e5, "poisson": 0.3}}).thermal


def test_bad_thermal_parameters():
    with pytest.raises(ValueError, match="not both"):
        CalculixViscoplastic(2e5, 0.3, [(200.0, 0.0)], elastic=ELASTIC)
    with pytest.raises(ValueError, match="young and poisson"):
        LinearElastic()
    with pytest.raises(ValueError, match="strictly increasing"):
        LinearElastic(elastic=ELASTIC[::-1])
    with pytest.raises(ValueError, match="temperature 220.0.*poisson"):
        LinearElastic(elastic=[(2e5, 0.3, 20.0), (2e5, 0.6, 220.0)])
    with pytest.raises(ValueError, match="increase from curve to curve"):
        CalculixViscoplastic(elastic=ELASTIC, plastic=[(200.0, 0.0, 20.0), (100.0, 0.0, 220.0), (210.0, 0.1, 20.0)])
    with pytest.raises(ValueError, match="disjoint"):
        CalculixViscoplastic(2e5, 0.3, [(200.0, 0.0, 20.0), (210.0, 0.01, 20.0), (100.0, 0.02, 220.0),
                                        (110.0, 0.03, 220.0)])  # fmt: skip
    with pytest.raises(ValueError, match="need elastic rows"):
        CalculixViscoplastic(2e5, 0.3, [(200.0, 0.0)], norton=NORTON)
    with pytest.raises(ValueError, match="A and n"):
        CalculixViscoplastic(elastic=ELASTIC, plastic=[(200.0, 0.0)], norton=[(1e-9, -3.0, 0.0, 20.0)])
    with pytest.raises(ValueError, match="expansion_zero"):
        LinearElastic(2e5, 0.3, expansion_zero=20.0)
    with pytest.raises(ValueError, match="defaults"):
        Chaboche(young=1e5, table=[[2e5, 0.3, 10.0, 0.0, 0.0, 300.0, 30.0, 1e5, 1e3, 20.0]])
    with pytest.raises(ValueError, match="n \\(Norton exponent\\).*temperature 420"):
        Chaboche(table=[[2e5, 0.3, 10.0, 0.0, 0.0, 300.0, 30.0, 1e5, 1e3, 20.0],
                        [2e5, 0.3, 10.0, 0.0, 0.0, 300.0, 0.5, 1e5, 1e3, 420.0]])  # fmt: skip


def test_law_file_with_temperature_tables(tmp_path):
    from romdask.problem.files import read_law_file, template

    path = tmp_path / "law.yaml"
    path.write_text("""type: CalculixViscoplastic
parameters:
  elastic: [[200000.0, 0.3, 20.0], [180000.0, 0.31, 220.0], [150000.0, 0.33, 420.0]]
  plastic: [[200.0, 0.0, 20.0], [300.0, 0.01, 20.0], [400.0, 0.1, 20.0], [150.0, 0.0, 220.0], [200.0, 0.02, 220.0],
            [100.0, 0.0, 420.0], [120.0, 0.005, 420.0], [160.0, 0.05, 420.0]]
  norton: [[1.0e-9, 3.0, 0.2, 20.0], [4.0e-9, 2.5, 0.1, 420.0]]
  expansion: [[1.2e-5, 20.0], [1.5e-5, 420.0]]
  expansion_zero: 10.0
""")
    assert read_law_file(path) == thermal_calculix()
    text = template("law")
    for key in ("elastic:", "norton: [[", "expansion:", "expansion_zero:", "table: rows"):
        assert key in text
