"""`romdask predict`: a saved model on a cyclic case or amplitude tables from the command line equals
the Python API; full fields (VTU, .frd, CSV) are the reconstructions of the Python API."""

from __future__ import annotations

import csv

import meshio
import numpy as np
import pytest

from romdask.cli import main
from romdask.io.calculix import read_frd
from romdask.offline import ReduceOptions, reduce
from romdask.online import ReducedModel, Scenario, open_full, prediction_fields
from romdask.online.results import load_result
from romdask.problem.loads import Amplitude, cyclic

INCREMENTS = 16  # tests/online/conftest.py: increments per cycle of the stored runs


@pytest.fixture(scope="module")
def model_path(training, tmp_path_factory):
    t = training("displacement")
    reduction = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
    return reduction.save(tmp_path_factory.mktemp("predict") / "m.zarr")


def _expected(path, times, amplitude, value):
    """The Python API's result of the same case."""
    scenario = Scenario(times, {"top_displacement": Amplitude(amplitude.times, value * amplitude.values)})
    return ReducedModel.open(path).solve(scenario)


def test_cyclic_case_matches_the_python_api_with_full_fields(model_path, training, tmp_path, capsys):
    t = training("displacement")
    out = tmp_path / "pred.npz"
    argv = ["predict", str(model_path), "--set", "top_displacement=0.005", "--cycles", "2", "--period", "10",
            "--increments-per-cycle", str(INCREMENTS), "--out", str(out), "--vtu", str(tmp_path / "u"),
            "--frd", str(tmp_path / "u.frd"), "--csv", str(tmp_path / "u.csv"), "--store", str(t.path)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 cycle(s) of period 10 s: 32 increments, t = 0..20 s" in text and "reaction of top_displacement" in text
    expected = _expected(model_path, np.linspace(0, 20, 2 * INCREMENTS + 1), cyclic(period=10, n_cycles=2), 0.005)
    got = load_result(out)
    np.testing.assert_array_equal(got.coordinates, expected.coordinates)
    np.testing.assert_array_equal(got.reactions, expected.reactions)
    assert got.lifting_names == ("top_displacement",)
    # full fields: the law replayed along the reduced strains (the Python API's prediction_fields)
    full = open_full(model_path)
    fields = prediction_fields(full, expected, ReducedModel.open(model_path).materials[0][0])
    peak = meshio.read(tmp_path / f"u_{INCREMENTS // 4:04d}.vtu")  # first peak: the top is at 0.005
    top = peak.point_data["nset:top"].astype(bool)
    np.testing.assert_allclose(peak.point_data["displacement"][top, 1], 0.005, rtol=1e-12)
    p_cells = np.concatenate(peak.cell_data["equivalent_plastic_strain"])
    ip_element = full.ip_element
    p_mean = np.bincount(ip_element, fields["p"][INCREMENTS // 4]) / np.bincount(ip_element)
    np.testing.assert_allclose(p_cells, p_mean, rtol=1e-12, atol=1e-15)  # cell data = element means of the replay
    assert p_cells.max() > 0 and np.concatenate(peak.cell_data["von_mises"]).max() > 200.0
    # the .frd: DISP, STRESS, PE at every output time (cgx reads it: tests/io/test_frd_cgx.py)
    frd = read_frd(tmp_path / "u.frd")
    assert {"DISP", "STRESS", "PE"} <= set(frd.fields()) and len(frd.select("DISP")) == 2 * INCREMENTS + 1
    rows = list(csv.DictReader(open(tmp_path / "u.csv")))
    assert len(rows) == 2 * INCREMENTS + 1
    np.testing.assert_allclose([float(r["reaction_top_displacement"]) for r in rows], expected.reactions[:, 0],
                               rtol=1e-8)
    # without --store: the mesh saved with the model (no sets), the same fields
    argv = [a for a in argv if a not in ("--store", str(t.path))]
    argv[argv.index("--vtu") + 1] = str(tmp_path / "v")
    assert main(argv) == 0
    again = meshio.read(tmp_path / f"v_{INCREMENTS // 4:04d}.vtu")
    np.testing.assert_array_equal(again.points, peak.points)
    np.testing.assert_array_equal(again.point_data["displacement"], peak.point_data["displacement"])


def test_amplitude_tables_give_the_same_case(model_path, tmp_path, capsys):
    """The triangle wave as a CSV table, scaled by --set: the same scenario on the tables' grid."""
    amplitude = cyclic(period=10, n_cycles=1)
    table = tmp_path / "top.csv"  # with t = 5 (a point of the line): four segments of 2.5 s
    table.write_text("time, amplitude\n0, 0\n2.5, 1\n5, 0\n7.5, -1\n10, 0\n")
    argv = ["predict", str(model_path), "--amplitude", f"top_displacement={table}", "--set", "top_displacement=0.005",
            "--increments-per-segment", "4", "--out", str(tmp_path / "a.npz")]
    assert main(argv) == 0
    assert "amplitude tables of top_displacement: 16 increments" in capsys.readouterr().out
    got = load_result(tmp_path / "a.npz")
    expected = _expected(model_path, np.linspace(0, 10, INCREMENTS + 1), amplitude, 0.005)
    np.testing.assert_allclose(got.times, expected.times, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.coordinates, expected.coordinates, rtol=1e-12, atol=1e-15)


def test_predict_errors_name_the_problem(training, model_path, tmp_path, capsys):
    t = training("displacement")
    out = ["--out", str(tmp_path / "p.npz")]
    assert main(["predict", str(model_path), "--set", "top=1", *out]) == 1
    assert "top_displacement" in capsys.readouterr().err  # what the model expects
    assert main(["predict", str(model_path), "--set", "top_displacement", *out]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["predict", str(model_path), *out]) == 1
    assert "give the case: --deck new.inp, --set NAME=VALUE" in capsys.readouterr().err
    table = tmp_path / "t.csv"
    table.write_text("0, 0\n1, 1\n")
    assert main(["predict", str(model_path), "--amplitude", f"top_displacement={table}", "--set", "other=1", *out]) == 1
    assert "--set ['other'] without --amplitude" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing.zarr"), "--set", "a=1"]) == 1
    assert "nothing.zarr" in capsys.readouterr().err
    # --vtu with a model saved without its full bases: say how to save them
    bare = reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_ecm=1e-4)).model.save(tmp_path / "bare.zarr")
    assert main(["predict", str(bare), "--set", "top_displacement=0.005", *out, "--vtu", str(tmp_path / "u")]) == 1
    assert "holds no full bases; save the model with reduce(...).save(path)" in capsys.readouterr().err
