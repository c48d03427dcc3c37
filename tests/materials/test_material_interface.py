"""Kernel interface: prange kernel == loop over the scalar function, state round trips, shapes,
parameter validation, isotropy of the elastic response."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from romdask.materials import CalculixViscoplastic, Chaboche, LinearElastic, Material
from romdask.materials.calculix import calculix_point
from romdask.materials.chaboche import chaboche_point
from romdask.materials.elastic import elastic_point

LAWS = {
    "elastic": (LinearElastic(200000.0, 0.3), elastic_point),
    "calculix-iso-norton": (
        CalculixViscoplastic(200000.0, 0.3, [(200.0, 0.0), (300.0, 0.01), (400.0, 0.1)],
                             norton=(1e-9, 3.0, 0.2)),
        calculix_point,
    ),
    "calculix-combined": (
        CalculixViscoplastic(200000.0, 0.3, [(200.0, 0.0), (300.0, 0.01)], hardening="combined",
                             cyclic_hardening=[(200.0, 0.0), (250.0, 0.02)]),
        calculix_point,
    ),
    "chaboche": (Chaboche(q=30.0, b=10.0), chaboche_point),
}  # fmt: skip


def _random_history(rng, n_points, n_steps):
    base = rng.normal(size=(n_points, 6)) * 3e-3
    amp = np.sin(np.linspace(0.3, 6.0, n_steps))
    return [a * base for a in amp]


@pytest.mark.parametrize("name", list(LAWS))
def test_parallel_kernel_equals_scalar_loop(name):
    law, point = LAWS[name]
    rng = np.random.default_rng(1)
    n = 257
    state = law.initial_state(n)
    for k, eps in enumerate(_random_history(rng, n, 6)):
        stress, tangent, new, nf = law.integrate(eps, state, 0.1, 0.1 * (k + 1))
        ref_s, ref_t, ref_n = np.empty((n, 6)), np.empty((n, 6, 6)), np.empty_like(state)
        nf_ref = 0
        for i in range(n):
            nf_ref += point(eps[i], state[i], 0.1, 0.1 * (k + 1), np.zeros(2), law.params,
                            ref_s[i], ref_t[i], ref_n[i])  # fmt: skip
        assert nf == nf_ref == 0
        # bit-for-bit: same scalar code, no reductions across points
        np.testing.assert_array_equal(stress, ref_s)
        np.testing.assert_array_equal(tangent, ref_t)
        np.testing.assert_array_equal(new, ref_n)
        state = new
    if law.n_state:
        assert state[:, 0].max() > 0.0  # some points went plastic


@pytest.mark.parametrize("name", list(LAWS))
def test_state_round_trip(name):
    law, _ = LAWS[name]
    rng = np.random.default_rng(2)
    n = 50
    hist = _random_history(rng, n, 8)
    state = law.initial_state(n)
    saved = []
    results = []
    for k, eps in enumerate(hist):
        saved.append(state.copy())
        s, _, state, _ = law.integrate(eps, state, 0.1, 0.1 * (k + 1))
        results.append(s)
    # restart from a saved state (copied through bytes) reproduces the rest of the history
    restart = 4
    state = np.frombuffer(saved[restart].tobytes()).reshape(saved[restart].shape).copy()
    for k in range(restart, len(hist)):
        s, _, state, _ = law.integrate(hist[k], state, 0.1, 0.1 * (k + 1))
        np.testing.assert_array_equal(s, results[k])
    # state_old is never modified, integrate twice from the same data gives the same result
    before = saved[3].copy()
    a = law.integrate(hist[3], saved[3], 0.1, 0.4)
    b = law.integrate(hist[3], saved[3], 0.1, 0.4)
    np.testing.assert_array_equal(saved[3], before)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", list(LAWS))
def test_interface_shapes_and_out(name):
    law, _ = LAWS[name]
    assert isinstance(law, Material) and dataclasses.is_dataclass(law)
    assert law.n_state == len(law.state_names)
    if law.n_state:
        assert law.state_names[0] == "p"
    assert law.params.dtype == np.float64 and law.params.ndim == 1
    n = 7
    eps = np.full((n, 6), 1e-3)
    state = law.initial_state(n)
    assert state.shape == (n, law.n_state)
    out = (np.empty((n, 6)), np.empty((n, 6, 6)), np.empty((n, law.n_state)))
    res = law.integrate(eps, state, 0.1, 0.1, out=out)
    for r, o in zip(res[:3], out):
        assert r is o
    ref = law.integrate(eps, state, 0.1, 0.1)
    np.testing.assert_array_equal(ref[0], out[0])
    empty = law.integrate(np.empty((0, 6)), law.initial_state(0), 0.1, 0.1)
    assert empty[0].shape == (0, 6) and empty[3] == 0
    with pytest.raises(ValueError, match="state_old"):
        law.integrate(eps, np.zeros((n, law.n_state + 1)), 0.1, 0.1)
    with pytest.raises(ValueError, match="strain"):
        law.integrate(np.zeros((n, 3)), state, 0.1, 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        law.young = 1.0


def test_elastic_bad_parameters():
    with pytest.raises(ValueError, match="young"):
        LinearElastic(-1.0, 0.3)
    with pytest.raises(ValueError, match="poisson"):
        LinearElastic(1.0, 0.5)


def _rotation_voigt(q):
    """Return a function rotating strain (engineering shear) -> rotated strain, and stress."""
    R = Rotation.from_quat(q).as_matrix()
    idx = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]

    def to_t(v, eng):
        t = np.empty((3, 3))
        for k, (i, j) in enumerate(idx):
            t[i, j] = t[j, i] = v[k] / (2.0 if (eng and i != j) else 1.0)
        return t

    def to_v(t, eng):
        return np.array([t[i, j] * (2.0 if (eng and i != j) else 1.0) for i, j in idx])

    return lambda v, eng: to_v(R @ to_t(v, eng) @ R.T, eng)


floats = st.floats(-1.0, 1.0)


@settings(max_examples=30, deadline=None)
@given(q=st.tuples(floats, floats, floats, floats).filter(lambda q: np.linalg.norm(q) > 0.1),
       e=st.lists(st.floats(-1e-2, 1e-2), min_size=6, max_size=6))  # fmt: skip
def test_isotropy_rotating_strain_rotates_stress(q, e):
    # isotropic laws: sigma(R eps R^T) = R sigma(eps) R^T (one increment from a virgin state,
    # elastic and plastic alike)
    rot = _rotation_voigt(np.array(q))
    eps = np.array(e)
    for law in (LAWS["elastic"][0], LAWS["calculix-iso-norton"][0], LAWS["chaboche"][0]):
        s0 = law.integrate(eps[None], law.initial_state(1), 0.1, 0.1)[0][0]
        s1 = law.integrate(rot(eps, True)[None], law.initial_state(1), 0.1, 0.1)[0][0]
        np.testing.assert_allclose(s1, rot(s0, False), rtol=0, atol=1e-9 * max(1.0, abs(s0).max()))


def test_von_mises_reference_values():
    from romdask.materials import von_mises

    # uniaxial 100 -> 100; pure shear tau -> sqrt(3) tau; hydrostatic -> 0; shape kept
    s = np.array([[100.0, 0, 0, 0, 0, 0], [0, 0, 0, 50.0, 0, 0], [7.0, 7.0, 7.0, 0, 0, 0]])
    np.testing.assert_allclose(von_mises(s), [100.0, 50.0 * np.sqrt(3.0), 0.0], atol=1e-12)
    assert von_mises(np.zeros((2, 3, 6))).shape == (2, 3)
    with pytest.raises(ValueError, match="6 components"):
        von_mises(np.zeros(5))
