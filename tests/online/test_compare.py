"""Error figures of a prediction against a reference (romdask.online.compare)."""

import numpy as np
import pytest

from romdask.online.compare import cycle_index, error_table, field_errors


def test_field_errors_are_the_documented_norms():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(5, 12))
    vm = rng.uniform(100, 300, size=(5, 8))
    p = rng.uniform(0, 1e-3, size=(5, 8))
    du = rng.normal(size=u.shape) * 1e-3
    got = field_errors({"displacement": u + du, "von_mises": vm, "p": p + 2e-6},
                       {"displacement": u, "von_mises": vm, "p": p})
    assert got["displacement"] == pytest.approx(np.linalg.norm(du) / np.linalg.norm(u), rel=1e-12)
    assert got["von_mises"] == 0.0 and got["max_von_mises"] == vm.max()
    assert got["p"] == pytest.approx(2e-6 / p.max(), rel=1e-9)
    assert set(field_errors({"displacement": u}, {"displacement": u, "p": p})) == {"displacement"}
    with pytest.raises(ValueError, match="shape"):
        field_errors({"p": p[:4]}, {"p": p})
    with pytest.raises(ValueError, match="NaN"):
        field_errors({"p": p * np.nan}, {"p": p})


def test_cycles_split_the_history():
    times = np.linspace(0, 30, 13)  # 3 cycles of 10, 4 increments each
    cycles = cycle_index(times, 10.0)
    assert cycles.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    vm = np.ones((13, 2)) * 100
    rom = vm.copy()
    rom[10, 0] += 3.0  # an error in the third cycle only
    rows = error_table({"von_mises": rom}, {"von_mises": vm}, cycles)
    assert [r["cycle"] for r in rows] == ["all", 1, 2, 3]
    assert [r["von_mises"] for r in rows] == [0.03, 0.0, 0.0, 0.03]
    with pytest.raises(ValueError, match="period"):
        cycle_index(times, 0.0)
