"""`romdask predict`: a saved model on a cyclic scenario from the command line equals the Python API."""

from __future__ import annotations

import meshio
import numpy as np

from romdask.cli import main
from romdask.problem.loads import cyclic
from romdask.offline import reduce
from romdask.online import ReducedModel, Scenario

INCREMENTS = 16  # tests/online/conftest.py: increments per cycle of the stored runs


def test_predict_matches_the_python_api_and_writes_arrays_and_vtu(training, tmp_path, capsys):
    t = training("displacement")
    model, full = reduce(t.path, t.law, runs=t.train, tol_pod=1e-6, tol_ecm=1e-5, return_full=True)
    path = model.save(tmp_path / "m.zarr", full=full)
    out = tmp_path / "pred.npz"
    argv = ["predict", str(path), "--set", "top_displacement=0.005", "--cycles", "2", "--period", "10",
            "--increments-per-cycle", str(INCREMENTS), "--out", str(out), "--vtu", str(tmp_path / "u"),
            "--store", str(t.path)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "32 increments over 2 cycle(s)" in text and "reaction top_displacement" in text

    amplitude = cyclic(period=10, n_cycles=2)
    expected = ReducedModel.open(path).solve(
        Scenario(np.linspace(0, 20, 2 * INCREMENTS + 1), {"top_displacement": lambda s: 0.005 * amplitude(s)}))
    got = np.load(out)
    np.testing.assert_array_equal(got["coordinates"], expected.coordinates)
    np.testing.assert_array_equal(got["reactions"], expected.reactions)
    assert got["reaction_names"].tolist() == ["top_displacement"]
    peak = meshio.read(tmp_path / f"u_{INCREMENTS // 4:04d}.vtu")  # first peak: the top is at 0.005
    top = peak.point_data["nset:top"].astype(bool)
    np.testing.assert_allclose(peak.point_data["displacement"][top, 1], 0.005, rtol=1e-12)


def test_predict_errors_name_the_problem(training, tmp_path, capsys):
    t = training("displacement")
    path = reduce(t.path, t.law, runs=t.train, tol_ecm=1e-4).save(tmp_path / "m.zarr")
    assert main(["predict", str(path), "--set", "top=1", "--out", str(tmp_path / "p.npz")]) == 1
    assert "top_displacement" in capsys.readouterr().err  # what the model expects
    assert main(["predict", str(path), "--set", "top_displacement", "--out", str(tmp_path / "p.npz")]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing.zarr"), "--set", "a=1"]) == 1
    assert "nothing.zarr" in capsys.readouterr().err
