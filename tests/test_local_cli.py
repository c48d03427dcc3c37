"""The command line of local reduced models: `romdask reduce --local`, `predict` / `compare --rom`
on a dictionary, `romdask info` of a dictionary, and their errors.

One store of the two-traction plate (n=4, 20 increments per cycle): two runs pulled along y (t1,
t2), two along x (r1, r2); the dissimilarity splits them into two clusters."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from romdask.cli import main
from romdask.demo import FIELDS
from romdask.hifi.builtin import solve
from romdask.online import ModelDictionary, Scenario
from romdask.online.dictionary import is_dictionary
from romdask.online.envelope import REFERENCE_UNITS
from romdask.online.integrity import is_model_dir
from romdask.online.model import FORMAT as MODEL_FORMAT
from romdask.online.results import load_result, save_result, saved_local_model
from romdask.problem.patterns import run_metadata
from romdask.problems import plate_traction_problem
from romdask.store import create_store

RUNS = {"t1": (150, 0), "t2": (190, 0), "r1": (0, 150), "r2": (0, 190)}
CASE = ["--set", "top_traction=-170", "right_traction=0", "--increments-per-cycle", "20"]


def _problem(top, right):
    return plate_traction_problem(top, right, n=4, increments_per_cycle=20)


def romdask(*argv) -> tuple[int, str, str]:
    """``romdask ARGV`` in this process: (exit code, stdout, stderr); argparse's exit as its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The store, then reduce --local auto (a dictionary), --local auto --min-runs 3 (one global
    model: a plain model) and --local 2 --overwrite over a copy of that plain model."""
    tmp = tmp_path_factory.mktemp("local-cli")
    store = create_store(tmp / "s.zarr", _problem(150, 0).mesh, n_subdomains=2, units=REFERENCE_UNITS)
    for name, (top, right) in RUNS.items():
        p = _problem(top, right)
        w = store.writer(name, mesh=p.mesh, times=p.times, fields=FIELDS, solver="romdask",
                         metadata=run_metadata(p), allow_nan=("state",))
        solve(p, writer=w, fields=FIELDS)
    out = {"tmp": tmp}
    out["auto"] = romdask("reduce", tmp / "s.zarr", "--out", tmp / "d.zarr", "--local", "auto")
    out["global"] = romdask("reduce", tmp / "s.zarr", "--out", tmp / "g.zarr", "--local", "auto", "--min-runs", "3")
    shutil.copytree(tmp / "g.zarr", tmp / "d2.zarr")
    out["two"] = romdask("reduce", tmp / "s.zarr", "--out", tmp / "d2.zarr", "--local", "2", "--overwrite")
    return out


def test_reduce_local_auto_writes_a_dictionary_and_prints_the_criterion(session):
    code, text, err = session["auto"]
    assert code == 0, err
    d = session["tmp"] / "d.zarr"
    assert is_dictionary(d)
    rows = re.findall(r"^ +(\d) +([\d, ]+?) {2,}([\d, ]+?) {2,}(\d+) +([\d.]+) +([\d.]+|-)( +<- chosen)?$", text,
                      re.M)
    assert [(int(k), chosen != "") for k, *_, chosen in rows] == [(1, False), (2, True)]
    assert float(rows[1][4]) < 0.7 and float(rows[0][4]) == 1.0
    assert rows[0][5] == "-" and float(rows[1][5]) > 0.5  # the separation of the two families
    assert re.search(r"^  rom0: 2 run\(s\) \(r1, r2\), medoid r\d, \d+ modes, \d+ reduced points$", text, re.M)
    assert re.search(r"^  rom1: 2 run\(s\) \(t1, t2\), medoid t\d, \d+ modes, \d+ reduced points$", text, re.M)
    dictionary = ModelDictionary.open(d)
    assert dictionary.clusters == (("r1", "r2"), ("t1", "t2"))
    # like a plain reduce: the store's units in each local model, the full bases and mesh saved
    assert all(m.metadata["units"] == REFERENCE_UNITS for m in dictionary.models)
    assert dictionary.metadata["units"] == REFERENCE_UNITS
    assert (d / "roms" / "rom0" / "full").is_dir()


def test_reduce_local_auto_keeping_one_model_writes_a_plain_model(session):
    code, text, err = session["global"]
    assert code == 0, err
    assert "one global model: only k = 1 was tried" in text
    g = session["tmp"] / "g.zarr"
    assert is_model_dir(g, MODEL_FORMAT) and not is_dictionary(g)
    assert re.search(r"g\.zarr: \d+ modes, \d+ reduced points .* trained on 4 run\(s\)", text)


def test_reduce_local_2_replaces_a_plain_model_with_overwrite(session):
    code, text, err = session["two"]
    assert code == 0, err
    d2 = session["tmp"] / "d2.zarr"
    assert is_dictionary(d2) and not is_model_dir(d2, MODEL_FORMAT)
    assert len(re.findall(r"<- chosen", text)) == 1 and re.search(r"^ +2 .*<- chosen$", text, re.M)
    assert ModelDictionary.open(d2).clusters == ModelDictionary.open(session["tmp"] / "d.zarr").clusters
    assert not list(session["tmp"].glob("d2.zarr.*"))  # no temporary left


@pytest.mark.filterwarnings("ignore::romdask.online.solver.TrainingEnvelopeWarning")  # rom0's solve below
@pytest.mark.parametrize("rom, used, reason", [
    (None, "rom1", "the classifier's choice"),
    ("classifier", "rom1", "the classifier's choice"),
    ("best-of-2", "rom1", "the lower error indicator of the classifier's two first"),
    ("rom0", "rom0", "forced by --rom"),
])
def test_predict_on_a_dictionary_says_which_local_model(session, rom, used, reason):
    tmp = session["tmp"]
    out = tmp / f"p-{rom}.npz"
    files = ["--frd", tmp / "p.frd", "--csv", tmp / "p.csv"] if rom is None else []  # full fields: the local model's
    code, text, err = romdask("predict", tmp / "d.zarr", *CASE, "--out", out, *(["--rom", rom] if rom else []), *files)
    assert code == 0, err
    if files:
        assert f"wrote {tmp / 'p.frd'}" in text and (tmp / "p.frd").stat().st_size > 0
        assert len((tmp / "p.csv").read_text().splitlines()) == 22  # header + 21 output times
    assert f"local model {used} (trained on {'t1, t2' if used == 'rom1' else 'r1, r2'}): {reason}" in text
    ranking = re.search(r"closest first: rom1 ([\d.e-]+) \(t1\); rom0 ([\d.e-]+) \(r1\)", text)
    assert ranking and float(ranking.group(1)) < float(ranking.group(2))  # a pull along y: the t runs
    tried = re.search(r"tried, largest error indicator: rom1 ([\d.e-]+); rom0 ([\d.e-]+)", text)
    assert (tried is not None) == (rom == "best-of-2")
    if tried:
        assert float(tried.group(1)) < float(tried.group(2))
    # everything else on that local model, as the Python API
    assert re.search(rf"d\.zarr/roms/{used}: 1 cycle\(s\)", text)
    assert saved_local_model(out) == used
    dictionary = ModelDictionary.open(tmp / "d.zarr")
    expected = dictionary.solve(Scenario.from_problem(_problem(170, 0)),
                                choice=dictionary.names.index(used)).result
    np.testing.assert_allclose(load_result(out).coordinates, expected.coordinates, rtol=1e-10, atol=1e-12)
    if rom == "rom0":  # the wrong family: the indicator and the envelope say so
        assert "training envelope: OUTSIDE" in text and "warning: pattern top_traction" in err


def test_saved_result_without_local_model_still_loads(session, tmp_path):
    result = load_result(session["tmp"] / "p-None.npz")
    path = save_result(tmp_path / "old.npz", result)
    assert saved_local_model(path) is None and load_result(path).coordinates.shape == result.coordinates.shape


@pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")
def test_compare_uses_the_local_model_of_the_prediction(session):
    from romdask.hifi.calculix import write_deck

    tmp = session["tmp"]
    write_deck(_problem(170, 0), tmp / "ref.inp")
    subprocess.run(["ccx", "-i", "ref"], cwd=tmp, check=True, capture_output=True)
    errors = {}
    for rom in ("None", "rom0"):
        code, text, err = romdask("compare", tmp / "d.zarr", tmp / f"p-{rom}.npz", tmp / "ref.frd")
        assert code == 0, err
        used = "rom1" if rom == "None" else "rom0"
        assert f"by {tmp / 'd.zarr' / 'roms' / used} against ref.frd" in text
        errors[used] = float(re.search(r"^  all +(\S+)", text, re.M).group(1))
    assert errors["rom1"] < 0.01 < errors["rom0"]  # measured: 2.7e-3 and 0.85
    code, text, err = romdask("compare", tmp / "d.zarr", tmp / "ref.inp", tmp / "ref.frd")  # predicts now
    assert code == 0, err
    assert "local model rom1" in text and float(re.search(r"^  all +(\S+)", text, re.M).group(1)) == \
        pytest.approx(errors["rom1"], rel=1e-6)
    code, _, err = romdask("compare", tmp / "d.zarr", tmp / "p-None.npz", tmp / "ref.frd", "--rom", "rom0")
    assert code == 1 and "was predicted by local model rom1; drop --rom" in err
    old = save_result(tmp / "old.npz", load_result(tmp / "p-None.npz"))
    code, _, err = romdask("compare", tmp / "d.zarr", old, tmp / "ref.frd")
    assert code == 1 and "records no local model" in err


def test_info_of_a_dictionary(session):
    d = session["tmp"] / "d.zarr"
    code, text, err = romdask("info", d)
    assert code == 0, err
    assert "dictionary of 2 local reduced model(s)" in text and "units: length mm" in text
    assert re.search(r"^  rom1: 2 run\(s\) \(t1, t2\), medoid t\d, \d+ modes, \d+ reduced points$", text, re.M)
    assert "over top_traction, right_traction" in text
    assert re.search(r"^ +2 .*<- chosen$", text, re.M)
    matrix = re.findall(r"^  (r1|r2|t1|t2) +([\d. ]+)$", text, re.M)
    assert [run for run, _ in matrix] == ["r1", "r2", "t1", "t2"]
    values = np.array([row.split() for _, row in matrix], float)
    assert np.allclose(values, values.T) and np.all(np.diag(values) == 0)
    assert values[0, 1] < 0.2 < values[0, 2]  # same family close, the other far
    code, text, err = romdask("info", d, "--json")
    assert code == 0, err
    info = json.loads(text)
    assert [r["name"] for r in info["roms"]] == ["rom0", "rom1"] and info["roms"][1]["runs"] == ["t1", "t2"]
    assert info["metadata"]["dissimilarity"]["runs"] == ["r1", "r2", "t1", "t2"]
    assert [row["k"] for row in info["criterion"]] == [1, 2]


def test_errors(session):
    tmp = session["tmp"]
    for value in ("0", "x"):
        code, _, err = romdask("reduce", tmp / "s.zarr", "--out", tmp / "x.zarr", "--local", value)
        assert code == 2 and f"argument --local: expected a number of local models (>= 1) or 'auto'; got '{value}'" in err
    code, _, err = romdask("reduce", tmp / "s.zarr", "--out", tmp / "x.zarr", "--local", "2", "--k-max", "3")
    assert code == 1 and "--k-max and --min-runs bound --local auto" in err
    code, _, err = romdask("reduce", tmp / "s.zarr", "--out", tmp / "s.zarr", "--local", "2", "--overwrite")
    assert code == 1 and "is not a reduced model nor a dictionary" in err
    code, _, err = romdask("predict", tmp / "d.zarr", *CASE, "--rom", "rom9")
    assert code == 1 and err.startswith("romdask predict: error: --rom rom9:") and "local models rom0, rom1" in err
    code, _, err = romdask("predict", tmp / "g.zarr", *CASE, "--rom", "rom1")
    assert code == 1 and "is a single reduced model: drop --rom" in err
    bad = tmp / "bad.zarr"
    shutil.copytree(tmp / "d.zarr", bad)
    meta = json.loads((bad / "zarr.json").read_text())
    meta["attributes"]["medoids"] = ["t2", "r2"]
    (bad / "zarr.json").write_text(json.dumps(meta))
    code, _, err = romdask("predict", bad, *CASE)
    assert code == 1 and err.startswith("romdask predict: error: ") and "checksum mismatch" in err
    (bad / "zarr.json").unlink()  # what is left of a dictionary is still reported as one
    code, _, err = romdask("info", bad)
    assert code == 1 and "romdask model dictionary" in err
