"""`romdask predict`: a saved model on a cyclic scenario from the command line equals the Python API."""

from __future__ import annotations

import meshio
import numpy as np

from romdask.cli import main
from romdask.problem.loads import cyclic
from romdask.offline import ReduceOptions, reduce
from romdask.online import ReducedModel, Scenario

INCREMENTS = 16  # tests/online/conftest.py: increments per cycle of the stored runs


def test_predict_matches_the_python_api_and_writes_arrays_and_vtu(training, tmp_path, capsys):
    t = training("displacement")
    reduction = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
    path = reduction.save(tmp_path / "m.zarr")
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
    # without --store: the mesh saved with the model (no sets), the same fields
    argv = [a for a in argv if a not in ("--store", str(t.path))]
    argv[argv.index("--vtu") + 1] = str(tmp_path / "v")
    assert main(argv) == 0
    again = meshio.read(tmp_path / f"v_{INCREMENTS // 4:04d}.vtu")
    np.testing.assert_array_equal(again.points, peak.points)
    np.testing.assert_array_equal(again.point_data["displacement"], peak.point_data["displacement"])


def test_predict_errors_name_the_problem(training, tmp_path, capsys):
    t = training("displacement")
    path = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_ecm=1e-4)).model.save(tmp_path / "m.zarr")
    assert main(["predict", str(path), "--set", "top=1", "--out", str(tmp_path / "p.npz")]) == 1
    assert "top_displacement" in capsys.readouterr().err  # what the model expects
    assert main(["predict", str(path), "--set", "top_displacement", "--out", str(tmp_path / "p.npz")]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing.zarr"), "--set", "a=1"]) == 1
    assert "nothing.zarr" in capsys.readouterr().err
    # --vtu with a model saved without its full bases: say how to save them
    assert main(["predict", str(path), "--set", "top_displacement=0.005", "--out", str(tmp_path / "p.npz"),
                 "--vtu", str(tmp_path / "u")]) == 1
    assert "holds no full bases; save the model with reduce(...).save(path)" in capsys.readouterr().err
