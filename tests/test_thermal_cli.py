"""Thermomechanics end to end through the `romdask` command line only (subprocesses): ccx runs two
training flights of the spinning blade (925 C / 1350 rad/s and 975 C / 1450 rad/s, two cycles each), `romdask ingest`, `romdask reduce`, `romdask predict
--deck` of an unseen flight (950 C / 1400 rad/s) over three cycles, ccx
runs that deck, `romdask compare` against it.

The decks (tests/thermal_deck.py) are what a user writes: the quarter blade (C3D8, 525 nodes) in
``blade.inp``, a temperature-dependent viscoplastic law (``*ELASTIC``, ``*PLASTIC``, ``*CREEP``
with temperature columns, ``*EXPANSION,ZERO=``), ``*DENSITY``, the initial temperature, one
``*TEMPERATURE,AMPLITUDE=`` per chord row, ``*DLOAD`` ``CENTRIF`` with a spin amplitude, one
``*VISCO`` step per segment of the flight cycle.

Tolerances (the issue's targets): displacement <= 1e-3 (time-space L2), von Mises <= 1 % and
plastic strain <= 2 % of the reference's maxima, over all points and times. Measured here: see
docs/thermomechanics.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from thermal_deck import CASES, write_blade

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _romdask(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _run(sys.executable, "-m", "romdask.cli", *args, cwd=cwd)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> dict:
    """The whole user session, once; the tests check its pieces."""
    work = tmp_path_factory.mktemp("thermal-decks")
    write_blade(work, CASES)
    for name in CASES:
        _run("ccx", "-i", name, cwd=work)
    out = {"work": work}
    out["ingest"] = _romdask("ingest", "train-925.inp", "train-925.frd", "train-925.dat", "train-975.inp",
                             "train-975.frd", "train-975.dat", "--store", "runs.zarr", cwd=work)
    out["info"] = _romdask("info", "runs.zarr", cwd=work)
    out["reduce"] = _romdask("reduce", "runs.zarr", "--out", "model.zarr", cwd=work)
    out["predict"] = _romdask("predict", "model.zarr", "--deck", "new-950.inp", "--out", "new-950-rom.npz",
                              "--vtu", "rom/new-950", cwd=work)
    out["compare"] = _romdask("compare", "model.zarr", "new-950-rom.npz", "new-950.frd",
                              "--period", "100", "--json", "errors.json", cwd=work)
    return out


def test_ingest_reads_the_thermal_decks(session):
    assert "written: 2 run(s)" in session["ingest"].stdout
    info = session["info"].stdout
    assert info.count("ready for reduce") == 2 and "NOT ready" not in info, info


def test_reduce_and_predict_from_the_command_line(session):
    assert "modes" in session["reduce"].stdout and "trained on 2 run(s)" in session["reduce"].stdout
    text = session["predict"].stdout
    assert "new-950.inp: 120 increments, t = 0..300 s" in text, text
    pvd = (session["work"] / "rom" / "new-950.pvd").read_text()
    assert pvd.count("<DataSet") == 121


def test_prediction_agrees_with_calculix(session):
    rows = json.loads((session["work"] / "errors.json").read_text())["rows"]
    total = rows[0]
    figures = f"{total}"
    assert total["max_p"] > 5e-4, figures  # the reference plastifies
    assert total["displacement"] <= 1e-3, figures
    assert total["von_mises"] <= 0.01, figures
    assert total["p"] <= 0.02, figures
    assert [r["cycle"] for r in rows[1:]] == [1, 2, 3]
    assert "cycle 3" in session["compare"].stdout
    assert np.isfinite([r["von_mises"] for r in rows]).all()
