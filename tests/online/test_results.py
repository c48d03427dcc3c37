"""OnlineResult <-> .npz (romdask predict --out), no pickle."""

from dataclasses import fields

import numpy as np
import pytest

from romdask.online import OnlineResult
from romdask.online.results import load_result, save_result


def _result() -> OnlineResult:
    rng = np.random.default_rng(0)
    n_t, n, r = 5, 3, 4
    return OnlineResult(
        times=np.linspace(0, 1, n_t), coordinates=rng.normal(size=(n_t, n)), lifting_names=("top",),
        lifting_coefficients=rng.normal(size=(n_t, 1)), load_names=("p", "q"),
        load_coefficients=rng.normal(size=(n_t, 2)), iterations=np.arange(n_t - 1), subincrements=np.ones(n_t - 1, int),
        cuts=np.zeros(n_t - 1, int), residuals=[[1.0, 1e-3], [1.0], [], [0.5, 1e-9, 1e-12]],
        stress=rng.normal(size=(n_t, r, 6)), state=np.full((n_t, r, 2), np.nan), reactions=rng.normal(size=(n_t, 1)),
        gappy_coefficients={"stress": rng.normal(size=(n_t, 2)), "p": rng.normal(size=(n_t, 1))},
        indicator=rng.uniform(size=n_t), flagged=np.array([False, True, False, False, True]),
        max_von_mises=rng.uniform(size=n_t), wall_time=0.25, timings={"law": 0.1}, indicator_quantity="stress",
        indicators={"stress": rng.uniform(size=n_t), "p": rng.uniform(size=n_t)},
        predicted_error={"von_mises": rng.uniform(size=(n_t, 3))},
    )


def test_round_trip_is_exact(tmp_path):
    result = _result()
    path = save_result(tmp_path / "pred", result)
    assert path.name == "pred.npz"
    back = load_result(path)
    for f in fields(OnlineResult):
        a, b = getattr(result, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        elif f.name in ("gappy_coefficients", "indicators", "predicted_error"):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        else:
            assert a == b, f.name


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a romdask prediction"):
        load_result(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="text.npz"):
        load_result(tmp_path / "text.npz")
