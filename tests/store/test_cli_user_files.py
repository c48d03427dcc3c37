"""Runs without a solver deck (ParaView .pvd series written by meshio, gapped node ids) become a
reduced model through the command line only: `romdask template`, `ingest --law --loads`, `info`,
`reduce`, `predict`; the prediction matches the built-in solver on an unseen amplitude."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest
import yaml

from romdask.hifi import solve
from romdask.materials import law_to_json
from romdask.online import ReducedModel, open_full, reconstruct_displacement
from romdask.online.results import load_result
from romdask.problems.plate import plate_problem
from romdask.store import SnapshotStore

INCREMENTS = 16
IDS = lambda n: 1000 + 7 * np.arange(n)[::-1]  # noqa: E731  gapped, decreasing solver ids


def _romdask(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "romdask.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert (proc.returncode == 0) == ok, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


def _problem(amplitude: float):
    return plate_problem(amplitude=amplitude, n=3, n_cycles=1, increments_per_cycle=INCREMENTS)


def _write_pvd(folder: Path, name: str, problem) -> Path:
    """A ParaView series written with meshio alone (no romdask writer): displacement + node_id."""
    mesh = problem.mesh
    u = solve(problem).displacement.reshape(len(problem.times), -1, 3)
    cells = [(b.type.replace("C3D8", "hexahedron"), b.connectivity) for b in mesh.blocks]
    entries = []
    for k, t in enumerate(problem.times):
        file = f"{name}_{k:03d}.vtu"
        meshio.write(folder / file, meshio.Mesh(mesh.nodes, cells, point_data={
            "displacement": u[k], "node_id": IDS(mesh.n_nodes)}))
        entries.append(f'<DataSet timestep="{float(t)!r}" file="{file}"/>')
    path = folder / f"{name}.pvd"
    path.write_text('<?xml version="1.0"?><VTKFile type="Collection"><Collection>' + "".join(entries)
                    + "</Collection></VTKFile>")
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user-files")
    a = _problem(0.006)
    _write_pvd(folder, "run-a", a)
    _write_pvd(folder, "run-b", _problem(0.004))
    ids = IDS(a.mesh.n_nodes)
    loads = {"version": 1, "dirichlet": [
        {"name": bc.name, "node_ids": ids[bc.nodes].tolist(), "components": ["xyz"[c] for c in bc.components],
         "value": bc.value, **({"amplitude": {"times": bc.amplitude.times.tolist(),
                                              "values": bc.amplitude.values.tolist()}} if bc.amplitude else {})}
        for bc in a.dirichlet], "runs": {"run-b": {"top_displacement": {"value": 0.004}}}}
    (folder / "loads.yaml").write_text(yaml.safe_dump(loads))
    (folder / "law.yaml").write_text(yaml.safe_dump(law_to_json(a.material)))
    return folder


def test_templates_are_printed(work):
    law = _romdask("template", "law", cwd=work).stdout
    assert law.startswith("# romdask law file") and "type: CalculixViscoplastic" in law
    assert "version: 1" in _romdask("template", "loads", cwd=work).stdout


def test_runs_without_deck_need_the_files_and_say_so(work, tmp_path):
    _romdask("ingest", str(work / "run-a.pvd"), "--store", str(tmp_path / "bare.zarr"), cwd=work)
    assert "NOT ready for reduce: no loads nor material" in _romdask("info", str(tmp_path / "bare.zarr"), cwd=work).stdout
    err = _romdask("reduce", str(tmp_path / "bare.zarr"), "--out", str(tmp_path / "m.zarr"), cwd=work, ok=False).stderr
    assert "romdask reduce: error: runs ['run-a'] carry no metadata['material']" in err and "--law" in err
    bad = tmp_path / "loads.yaml"
    bad.write_text("dirichlet:\n  - {name: top, node_set: TOP, components: [y]}\n")
    err = _romdask("ingest", str(work / "run-b.pvd"), "--store", str(tmp_path / "b2.zarr"), "--loads", str(bad),
                   cwd=work, ok=False).stderr
    assert f"{bad}: dirichlet[0]: the mesh has no node set 'TOP'" in err


def test_files_make_a_model_that_predicts(work):
    _romdask("ingest", "run-a.pvd", "run-b.pvd", "--store", "s.zarr", "--law", "law.yaml", "--loads", "loads.yaml",
             cwd=work)
    assert _romdask("info", "s.zarr", cwd=work).stdout.count("ready for reduce") == 2
    runs = SnapshotStore.open(work / "s.zarr", mode="r").runs()
    values = {name: r["metadata"]["loads"]["dirichlet"][-1]["value"] for name, r in runs.items()}
    assert values == {"run-a": 0.006, "run-b": 0.004}  # the per-run section of the loads file
    _romdask("reduce", "s.zarr", "--out", "m.zarr", cwd=work)
    _romdask("predict", "m.zarr", "--set", "top_displacement=0.005", "--period", "10",
             "--increments-per-cycle", str(INCREMENTS), "--out", "p.npz", cwd=work)
    result = load_result(work / "p.npz")
    u_rom = np.asarray(reconstruct_displacement(open_full(work / "m.zarr"), result))
    hf = solve(_problem(0.005)).displacement  # the mesh order = the files' order
    store_mesh = ReducedModel.open(work / "m.zarr") and open_full(work / "m.zarr").mesh
    order = (store_mesh.node_ids[:, None] == IDS(store_mesh.n_nodes)[None, :]).argmax(axis=1)
    u_hf = hf.reshape(len(hf), -1, 3)[:, order].reshape(len(hf), -1)
    error = np.linalg.norm(u_rom - u_hf) / np.linalg.norm(u_hf)
    assert error < 1e-3, error
