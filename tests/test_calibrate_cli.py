"""`romdask calibrate` on the plate store of tests/calibration_case.py, then `romdask predict` and
`romdask info` print the calibration."""

from __future__ import annotations

import shutil

import pytest

from romdask.cli import main
from romdask.online import ReducedModel

from calibration_case import INCREMENTS


def test_calibrate_then_predict_and_info(calibration_case, tmp_path, capsys):
    case = calibration_case
    model = tmp_path / "m.zarr"
    shutil.copytree(case.model, model)
    predict = ["predict", str(model), "--set", "top_displacement=0.0075", "--increments-per-cycle", str(INCREMENTS),
               "--out", str(tmp_path / "p.npz")]
    assert main(predict) == 0
    assert "not calibrated (romdask calibrate)" in capsys.readouterr().out

    argv = ["calibrate", str(model), "--store", str(case.store), "--runs", *case.calibration]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"--dry-run: {model} unchanged" in out and ReducedModel.open(model).calibration is None
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"{model}: calibrated on 5 run(s) (stress indicator, 90 % interval)")
    for run in case.calibration:  # one row per run: indicator, true errors, predictions
        row = next(line for line in lines if line.startswith(f"  {run}: indicator "))
        assert "von Mises" in row and "displacement" in row and "; p " in row and row.count("predicted") == 3
    assert "Spearman rank correlation of the runs' indicator and error: von Mises 1.000" in out
    assert "leave-one-run-out coverage: von Mises 100 % (z " in out
    assert "5 runs are too few for a conformal 90 % interval (needs >= 9)" in out
    assert f"wrote the calibration into {model}" in out
    calibration = ReducedModel.open(model).calibration
    assert calibration is not None and calibration.report["runs"] == case.calibration

    assert main(predict) == 0
    out = capsys.readouterr().out
    assert "not calibrated" not in out
    assert "output time(s) with a predicted von Mises error above 1 %" in out
    line = next(line for line in out.splitlines() if "predicted error (90 % interval): " in line)
    assert "von Mises " in line and "displacement " in line and " p " in line and "%" in line

    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "error indicator: calibrated on 5 run(s) (stress indicator, 90 % interval)" in out
    assert "leave-one-run-out coverage" in out


@pytest.mark.parametrize("extra, message", [
    (["--runs", "c_005", "c_007"], "at least 3 distinct held-out runs"),
    (["--runs", "c_005", "c_007", "nope"], "no run(s) ['nope']"),
])
def test_calibrate_refuses_bad_runs(calibration_case, extra, message, capsys):
    case = calibration_case
    assert main(["calibrate", str(case.model), "--store", str(case.store), *extra]) == 1
    assert message in capsys.readouterr().err


def test_calibrate_refuses_a_store_as_model(calibration_case, capsys):
    case = calibration_case
    assert main(["calibrate", str(case.store), "--store", str(case.store), "--runs", "a", "b", "c"]) == 1
    assert "is not a reduced model" in capsys.readouterr().err
