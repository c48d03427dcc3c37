"""Issue 18, items 5 and 6: nonsense arguments are refused naming the option, and every failure of
the `romdask` command is ONE `romdask <command>: error: ...` line naming the option or file (exit 1;
2 for usage errors), the traceback only with -v. Each case runs `python -m romdask.cli` in a
subprocess, as a user would. All fail on the code before this change except the --law cases and
the model dtype refusal, which already gave one line naming the file (kept against regressions).
A read-only folder is made with ``chmod 555``, or with ``chattr +i`` when the tests run as root
(root writes into mode-555 folders; not into immutable ones)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from romdask.hifi import solve
from romdask.materials import law_to_json
from romdask.offline import ReduceOptions, reduce
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_run, open_snapshots

ROOT = Path(__file__).resolve().parents[2]
CALCULIX = ROOT / "tests" / "io" / "data" / "calculix"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes into mode-555 folders


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` unwritable for this user for the block: chmod 555, or as root the immutable
    attribute (``chattr +i``, e2fsprogs; the test skips, saying so, where the file system or the
    container refuses it)."""
    if not AS_ROOT:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("as root a read-only folder needs chattr +i (e2fsprogs) on a file system that supports it")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def romdask(*argv, cwd=None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    return subprocess.run([sys.executable, "-m", "romdask.cli", *map(str, argv)], cwd=cwd, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=300)


def error_line(run: subprocess.CompletedProcess, command: str, code: int = 1) -> str:
    """The one `romdask <command>: error:` line of a failed run (no traceback)."""
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith(f"romdask {command}: error:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """A store of two small plate runs (n=3, half a cycle) and its reduced model."""
    path = tmp_path_factory.mktemp("plate")
    problems = [plate_problem(n=3, n_cycles=0.5, amplitude=a) for a in (0.006, 0.004)]
    store = create_store(path / "s.zarr", problems[0].mesh, n_subdomains=2)
    for name, problem in zip(("a", "b"), problems):
        meta = {"loads": describe_loads(problem), "material": law_to_json(problem.material)}
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta,
                              fields=("displacement", "stress", "state"), allow_nan=("state",))
        solve(problem, writer=writer, fields=("displacement", "stress", "state"))
    model = reduce(path / "s.zarr", problems[0].material, options=ReduceOptions(tol_ecm=1e-4)).save(path / "m.zarr")
    return path / "s.zarr", model


def calculix_run(folder: Path, frd: str = "c3d10_float64.frd") -> tuple[Path, Path]:
    """A CalculiX run x.inp / x.frd (with the deck's include) copied from tests/io/data."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CALCULIX / "c3d10.inp", folder / "x.inp")
    shutil.copy(CALCULIX / "c3d10_nodes.inc", folder)
    shutil.copy(CALCULIX / frd, folder / "x.frd")
    return folder / "x.inp", folder / "x.frd"


# ---- item 5: nonsense arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5"])
def test_predict_refuses_increments_per_cycle_below_one(plate, tmp_path, value):
    run = romdask("predict", plate[1], "--set", "top_displacement=0.005", "--increments-per-cycle", value,
                  "--out", tmp_path / "p.npz")
    assert "--increments-per-cycle" in error_line(run, "predict", 2)
    assert not (tmp_path / "p.npz").exists()


@pytest.mark.parametrize(("option", "value"), [("--tol-pod", "2"), ("--tol-pod", "inf"), ("--tol-pod", "nan"),
                                               ("--tol-pod", "-1"), ("--tol-ecm", "5"), ("--tol-ecm", "0")])
def test_reduce_refuses_tolerances_outside_0_1(plate, tmp_path, option, value):
    line = error_line(romdask("reduce", plate[0], "--out", tmp_path / "m.zarr", option, value), "reduce", 2)
    assert option in line and ("0 < value < 1" in line or "finite" in line)
    assert not (tmp_path / "m.zarr").exists()


def test_predict_refuses_a_pattern_set_twice(plate, tmp_path):
    run = romdask("predict", plate[1], "--set", "top_displacement=0.005", "--set", "top_displacement=0.006",
                  "--out", tmp_path / "p.npz")
    assert "--set: top_displacement given twice" in error_line(run, "predict")


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_predict_refuses_a_non_finite_set_value(plate, tmp_path, value):
    run = romdask("predict", plate[1], "--set", f"top_displacement={value}", "--out", tmp_path / "p.npz")
    assert "--set" in error_line(run, "predict") and not (tmp_path / "p.npz").exists()


def test_open_snapshots_takes_one_run_name_as_a_string(plate):
    assert open_snapshots(plate[0], runs="a").attrs["runs"] == ["a"]
    with pytest.raises(ValueError, match=r"no complete run\(s\) \['ab'\]"):
        open_snapshots(plate[0], runs="ab")  # not the runs 'a' and 'b'


@pytest.mark.parametrize("argv", [
    ["predict", "MODEL", "--set", "top_displacement=0.005", "--period", "-1"],
    ["predict", "MODEL", "--set", "top_displacement=0.005", "--cycles", "nan"],
    ["predict", "MODEL", "--amplitude", "top_displacement=t.csv", "--increments-per-segment", "0"],
    ["compare", "MODEL", "p.npz", "x.frd", "--period", "0"],
    ["reduce", "STORE", "--out", "m.zarr", "--cluster", "local", "--jobs", "0"],
    ["ingest", "x.frd", "--store", "s.zarr", "--subdomains", "0"],
    ["hifi", "--amplitudes", "0.004", "--store", "s.zarr", "--threads", "0"],
    ["demo", "--nodes", "-5"],
    ["demo", "--cycles", "inf"],
])
def test_every_numeric_option_is_checked_by_the_parser(plate, tmp_path, argv):
    argv = [{"MODEL": plate[1], "STORE": plate[0]}.get(a, a) for a in argv]
    line = error_line(romdask(*argv, cwd=tmp_path), argv[0], 2)
    assert f"argument {argv[-2]}" in line
    assert not any(tmp_path.iterdir())  # refused before anything is written


# ---- item 6: one error line naming the file ----------------------------------------------------------


@pytest.mark.parametrize("command", ["ingest", "hifi"])
def test_store_naming_a_regular_file(tmp_path, command):
    (tmp_path / "afile").write_text("not a store")
    inp, frd = calculix_run(tmp_path / "run")
    argv = ([inp, frd] if command == "ingest" else ["--solver", "builtin", "--amplitudes", "0.004", "--nodes", "50"])
    line = error_line(romdask(command, *argv, "--store", tmp_path / "afile"), command)
    assert "--store" in line and "afile" in line and "not a folder" in line


@pytest.mark.parametrize("command", ["ingest", "hifi", "reduce"])
def test_read_only_output_is_refused_before_computing(plate, tmp_path, command):
    locked = tmp_path / "locked"
    locked.mkdir()
    inp, frd = calculix_run(tmp_path / "run")
    argv = {"ingest": ["ingest", inp, frd, "--store", locked / "s.zarr"],
            "hifi": ["hifi", "--solver", "builtin", "--amplitudes", "0.004", "--nodes", "50", "--cycles", "0.25",
                     "--store", locked / "s.zarr"],
            "reduce": ["reduce", plate[0], "--out", locked / "m.zarr"]}[command]
    with read_only(locked):
        run = romdask(*argv)
    line = error_line(run, command)
    assert "not writable" in line and str(locked) in line
    assert "Completed" not in run.stderr and "romdask hifi:" not in run.stdout  # nothing computed
    assert not any(locked.iterdir())


@pytest.mark.parametrize(("option", "value"), [("--nodes", "0"), ("--nodes", "-5"), ("--cycles", "0"),
                                               ("--amplitudes", "nan")])
def test_hifi_checks_its_arguments_before_creating_the_store(tmp_path, option, value):
    argv = {"--nodes": "50", "--cycles": "0.25", "--amplitudes": "0.004", option: value}
    run = romdask("hifi", "--solver", "builtin", *[x for kv in argv.items() for x in kv], "--store",
                  tmp_path / "s.zarr")
    assert f"argument {option}" in error_line(run, "hifi", 2)
    assert not (tmp_path / "s.zarr").exists()  # no incomplete run left behind


@pytest.mark.parametrize(("text", "problem"), [(None, "No such file"), ("{bad", "not valid JSON")])
def test_reduce_law_file_missing_or_not_json(plate, tmp_path, text, problem):
    law = tmp_path / "law.json"
    if text is not None:
        law.write_text(text)
    line = error_line(romdask("reduce", plate[0], "--out", tmp_path / "m.zarr", "--law", law), "reduce")
    assert str(law) in line and problem in line


def test_frd_header_claiming_2e9_nodes_is_refused_before_allocating(tmp_path):
    inp, frd = calculix_run(tmp_path)
    data = frd.read_bytes()
    header = b"    2C                            27"
    assert header in data
    frd.write_bytes(data.replace(header, b"    2C                    2000000000"))
    line = error_line(romdask("ingest", inp, frd, "--store", tmp_path / "s.zarr"), "ingest")
    assert str(frd) in line and "2000000000 nodes" in line and "MemoryError" not in line


def corrupt_store(plate, tmp_path) -> Path:
    store = tmp_path / "s.zarr"
    shutil.copytree(plate[0], store)
    chunk = next(p for p in sorted((store / "runs" / "a" / "displacement" / "s0001").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[16:48] = b"x" * 32  # inside blosc's header and first block
    chunk.write_bytes(bytes(data))
    return store


def test_corrupt_store_chunk_names_the_array(plate, tmp_path):
    store = corrupt_store(plate, tmp_path)
    line = error_line(romdask("reduce", store, "--out", tmp_path / "m.zarr"), "reduce")
    assert "runs/a/displacement/s0001" in line and "blosc" in line and "--overwrite" in line


def test_corrupt_chunk_read_run_by_run_names_the_array(plate, tmp_path):
    store = corrupt_store(plate, tmp_path)
    with pytest.raises(ValueError, match=r"runs/a/displacement/s0001: cannot decode a chunk \(error during blosc"):
        open_run(store, "a").displacement.values


def test_verbose_shows_the_traceback(plate, tmp_path):
    store = corrupt_store(plate, tmp_path)
    run = romdask("-v", "reduce", store, "--out", tmp_path / "m.zarr")
    assert run.returncode == 1 and "Traceback" in run.stderr
    assert sum(line.startswith("romdask reduce: error:") for line in run.stderr.splitlines()) == 1


def test_predict_vtu_with_the_store_of_another_mesh(plate, tmp_path):
    other = create_store(tmp_path / "other.zarr", plate_problem(n=4).mesh, n_subdomains=1).path
    run = romdask("predict", plate[1], "--set", "top_displacement=0.005", "--out", tmp_path / "p.npz",
                  "--vtu", tmp_path / "v", "--store", other)
    line = error_line(run, "predict")
    assert "--store" in line and "other.zarr" in line and "nodes" in line


def test_info_into_a_closed_pipe_exits_quietly(plate):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "romdask.cli", "info", str(plate[0])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # `romdask info S | head -0`: the reader is gone before the first line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert stderr == ""


def test_dtype_refusal_of_a_model_names_the_folder(plate, tmp_path):
    model = tmp_path / "m.zarr"
    shutil.copytree(plate[1], model)
    meta = model / "point_ids" / "zarr.json"
    spec = json.loads(meta.read_text())
    spec["data_type"] = "float64"
    meta.write_text(json.dumps(spec))
    line = error_line(romdask("predict", model, "--set", "top_displacement=0.005", "--out", tmp_path / "p.npz"),
                      "predict")
    assert str(model) in line


def test_cli_messages_say_overwrite_option(tmp_path):
    inp, frd = calculix_run(tmp_path / "run")
    assert romdask("ingest", inp, frd, "--store", tmp_path / "s.zarr").returncode == 0
    frd.write_bytes(frd.read_bytes().replace(b"1UDATE", b"1UDATF", 1))  # other sources, same run name
    line = error_line(romdask("ingest", inp, frd, "--store", tmp_path / "s.zarr"), "ingest")
    assert "--overwrite" in line and "overwrite=True" not in line


def test_empty_store_says_it_holds_no_complete_run(tmp_path):
    store = create_store(tmp_path / "s.zarr", plate_problem(n=3).mesh, n_subdomains=1).path
    line = error_line(romdask("reduce", store, "--out", tmp_path / "m.zarr"), "reduce")
    assert "holds no complete run" in line


# ---- in process: failures a subprocess cannot provoke cheaply ------------------------------------------


def test_killed_workers_give_one_clear_line(plate, tmp_path, monkeypatch, capsys):
    from distributed.scheduler import KilledWorker

    from romdask.cli import main

    def killed(*args, **kwargs):
        raise KilledWorker("pod-gram-0", SimpleNamespace(address="tcp://127.0.0.1:4242"), 3)

    monkeypatch.setattr("romdask.offline.reduce", killed)
    assert main(["reduce", str(plate[0]), "--out", str(tmp_path / "m.zarr")]) == 1
    err = capsys.readouterr().err
    assert err.count("romdask reduce: error:") == 1 and "Traceback" not in err
    assert "every Dask worker that ran task 'pod-gram-0' died" in err


def test_an_unexpected_exception_is_one_line_with_a_hint(plate, monkeypatch, capsys):
    from romdask.cli import main

    def bug(args):
        raise KeyError("mesh")

    monkeypatch.setattr("romdask.cli.store.info_command", bug)
    assert main(["info", str(plate[0])]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "romdask info: error: KeyError: 'mesh' (run with -v for the traceback)"
