import numpy as np
import pytest

from romdask.problem.loads import Amplitude, Dirichlet, NodalForce, Pressure, cyclic, ramp


def test_amplitude_interpolates_and_holds_outside():
    a = Amplitude([0.0, 1.0, 3.0], [0.0, 2.0, -2.0])
    assert a(0.5) == pytest.approx(1.0)
    assert a(2.0) == pytest.approx(0.0)
    assert a(-1.0) == 0.0 and a(10.0) == -2.0  # CalculiX holds the end values


@pytest.mark.parametrize(
    "times, values, message",
    [([0, 2, 1], [0, 1, 2], "non-decreasing"), ([0, 1], [0, np.nan], "finite"), ([0, 1], [0], "equal length")],
)
def test_amplitude_rejects_bad_tables(times, values, message):
    with pytest.raises(ValueError, match=message):
        Amplitude(times, values)


def test_cyclic_fully_reversed_hits_peaks_at_quarter_periods():
    a = cyclic(period=4.0, n_cycles=2)
    np.testing.assert_allclose(a.times, [0, 1, 3, 4, 5, 7, 8])
    np.testing.assert_allclose(a.values, [0, 1, -1, 0, 1, -1, 0])
    np.testing.assert_allclose(a([0.5, 2.0, 6.5]), [0.5, 0.0, -0.5])


def test_cyclic_half_cycle_and_pulsating():
    half = cyclic(1.0, 0.5)  # up and back to zero; the reversal at 0.75 is beyond the end
    np.testing.assert_allclose(half.times, [0, 0.25, 0.5])
    np.testing.assert_allclose(half.values, [0, 1, 0])
    np.testing.assert_allclose(cyclic(1.0, 1.25).values, [0, 1, -1, 0, 1])
    pulsating = cyclic(2.0, 1, r_ratio=0.0)
    np.testing.assert_allclose(pulsating.values, [0, 1, 0])
    np.testing.assert_allclose(ramp(2.0)(1.0), 0.5)
    with pytest.raises(ValueError, match="period"):
        cyclic(period=0.0)


def test_boundary_conditions_validate_and_scale():
    bc = Dirichlet([3, 1, 1], components=(0, 2), value=0.5, amplitude=ramp(1.0))
    np.testing.assert_array_equal(bc.nodes, [1, 3])
    np.testing.assert_array_equal(bc.dofs, [3, 5, 9, 11])
    assert bc.scale(0.5) == pytest.approx(0.25)
    assert Dirichlet([0], 1).scale(7.0) == 0.0
    with pytest.raises(ValueError, match="components"):
        Dirichlet([0], (3,))
    with pytest.raises(ValueError, match="empty"):
        NodalForce([], 0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        Pressure(np.zeros((0, 2)), 1.0)
    assert NodalForce([2], 1, 5.0, cyclic(1.0)).scale(0.25) == pytest.approx(1.0)
