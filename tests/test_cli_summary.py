"""What a user reads: `romdask hifi --problem` with progress lines on stderr and the unit system
recorded, `romdask info` summarizing a model (and --json), `--help` with defaults once, the
training-envelope warning of `predict`, and cross-file errors naming both files (issue 17)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from romdask.cli import main
from romdask.cli.main import parser


def _romdask(*argv, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "romdask.cli", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    """Two built-in runs of the 27-node cube (0.004 and 0.008 mm) and their model."""
    work = tmp_path_factory.mktemp("summary")
    hifi = _romdask("hifi", "--solver", "builtin", "--problem", "cube", "--nodes", "27", "--amplitudes", "0.004",
                    "0.008", "--store", "s.zarr", cwd=work)
    assert hifi.returncode == 0, hifi.stderr
    assert main(["reduce", str(work / "s.zarr"), "--out", str(work / "m.zarr")]) == 0
    return work, hifi


def test_hifi_problem_progress_and_units(cube, capsys):
    work, hifi = cube
    assert "romdask hifi: cube, 27 nodes, 2 run(s)" in hifi.stdout and "peak displacement 0.004, 0.008 mm" in hifi.stdout
    lines = hifi.stderr.splitlines()  # not a terminal: start, first and last increments (and one every 5 s)
    assert "run amp-0.004: started, 40 increments to t = 10 s" in lines
    for run in ("amp-0.004", "amp-0.008"):
        assert any(re.match(rf"run {run}: increment 1/40, t = 0.25 s, \d+ Newton iterations", line) for line in lines)
        assert any(line.startswith(f"run {run}: increment 40/40, t = 10 s") for line in lines)
    assert main(["info", str(work / "s.zarr")]) == 0
    assert "units: {'length': 'mm'" in capsys.readouterr().out
    # options that do not apply are refused
    assert main(["hifi", "--solver", "builtin", "--threads", "2", "--amplitudes", "0.004",
                 "--store", str(work / "x.zarr")]) == 1
    assert "--threads sets ccx's threads" in capsys.readouterr().err


def test_info_summarizes_a_model_and_json_is_complete(cube, capsys):
    work, _ = cube
    assert main(["info", str(work / "m.zarr")]) == 0
    out = capsys.readouterr().out
    for text in ("reduced model (romdask-reduced-model", "athermal", "units: length mm, force N, stress MPa",
                 "modes: ", "reduced points: ", "1 subdomain(s)", "tolerances (relative): tol_pod 1e-06, tol_ecm 1e-05",
                 "patterns: zmax_displacement (in mm)", "training runs: 2",
                 ("amp-0.004: zmax_displacement 0.004 mm x a table of 4 points over t = 0..10 s "
                  "(range -0.004..0.004 mm)"), "laws: 1", "CalculixViscoplastic on", "young 200000", "on disk"):
        assert text in out, (text, out)
    assert "<dict of" not in out
    assert main(["info", str(work / "m.zarr"), "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["metadata"]["reduce"]["training_runs"] == ["amp-0.004", "amp-0.008"]
    assert raw["metadata"]["units"]["length"] == "mm"
    assert main(["info", str(work / "s.zarr"), "--json"]) == 1  # --json is for models


def test_predict_warns_outside_the_training_envelope_only(cube, capsys):
    from romdask.online.results import load_result

    work, _ = cube
    inside, outside = work / "in.npz", work / "out.npz"
    assert main(["predict", str(work / "m.zarr"), "--set", "zmax_displacement=0.006", "--out", str(inside)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "training envelope: inside" in captured.out
    assert re.search(r"reaction of zmax_displacement: min \S+ N, max \S+ N", captured.out)
    assert re.search(r"largest von Mises stress at the reduced points: \S+ MPa", captured.out)
    assert load_result(inside).warnings == []
    assert main(["predict", str(work / "m.zarr"), "--set", "zmax_displacement=0.02", "--out", str(outside)]) == 0
    captured = capsys.readouterr()
    expected = ("pattern zmax_displacement reaches 0.02 mm, 2.5x the largest training value 0.008 mm (outside the "
                "training envelope [-0.008, 0.008] mm: expect larger errors)")
    assert f"romdask predict: warning: {expected}" in captured.err
    assert "training envelope: OUTSIDE for 1 pattern(s)" in captured.out
    assert load_result(outside).warnings == [expected]  # stored with the result


def test_python_api_warns_too(cube):
    from romdask.online import ReducedModel, Scenario
    from romdask.online.solver import TrainingEnvelopeWarning
    from romdask.problem.loads import Amplitude

    model = ReducedModel.open(cube[0] / "m.zarr")
    scenario = Scenario(np.linspace(0, 1, 5), {"zmax_displacement": Amplitude([0, 1], [0, -0.01])})
    with pytest.warns(TrainingEnvelopeWarning, match="reaches -0.01 mm, 1.25x the smallest training value -0.008"):
        result = model.solve(scenario)
    assert len(result.warnings) == 1


def test_store_of_another_mesh_with_as_many_nodes_is_refused(cube, capsys):
    from romdask.problems import cube_mesh
    from romdask.store import create_store

    work, _ = cube
    create_store(work / "tets.zarr", cube_mesh(2, element="C3D4"))  # 27 nodes, another connectivity
    argv = ["predict", str(work / "m.zarr"), "--set", "zmax_displacement=0.004", "--out", str(work / "p.npz"),
            "--vtu", str(work / "v")]
    assert main([*argv, "--store", str(work / "tets.zarr")]) == 1
    err = capsys.readouterr().err
    assert f"--store {work / 'tets.zarr'}: its mesh" in err and f"the model {work / 'm.zarr'}" in err
    assert main([*argv, "--store", str(work / "m.zarr")]) == 1  # a model is no store
    assert f"romdask predict: error: --store {work / 'm.zarr'}: " in capsys.readouterr().err


def test_deck_of_another_mesh_names_deck_and_model(cube, capsys):
    from romdask.hifi.calculix.deck import write_deck
    from romdask.problems import cube_problem, default_plate_material

    work, _ = cube
    deck = write_deck(cube_problem(0.004, n=3, material=default_plate_material()), work / "other.inp")
    assert main(["predict", str(work / "m.zarr"), "--deck", str(deck), "--out", str(work / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"romdask predict: error: {deck}: not the model's mesh") and f"(model {work / 'm.zarr'})" in err


def _options_help(text: str) -> list[str]:
    """The help of each option of a ``--help`` text (continuation lines joined)."""
    entries: list[str] = []
    for line in text.split("options:", 1)[-1].splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif entries:
            entries[-1] += " " + line.strip()
    return entries


@pytest.mark.parametrize("command", ["hifi", "ingest", "reduce", "predict", "compare", "info", "calibrate", "adapt",
                                     "train"])
def test_help_shows_every_default_once(command):
    sub = next(a for a in parser()._actions if a.dest == "command").choices[command]
    text = sub.format_help()
    for entry in _options_help(text):
        assert entry.count("(default") + entry.count("; default") <= 1, entry
    for action in sub._actions:
        if action.option_strings and action.default not in (None, False, "==SUPPRESS==") and action.nargs != 0:
            entry = next(e for e in _options_help(text) if action.option_strings[-1] in e.split()[0:3][0])
            assert "default" in entry, entry
    if command == "predict":
        assert re.search(r"--period PERIOD\s+cyclic case: period \[s\];[^(]*\(default: 10.0\)", text)
    if command == "reduce":
        assert "(default: 1e-06)" in text and "(default: 1e-05)" in text
