"""`romdask reduce` on a small store written by the built-in solver."""

import json

import numpy as np

from romdask.cli import main
from romdask.hifi import solve
from romdask.online import ReducedModel, open_full
from romdask.materials import law_to_json
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store


def make_store(path, with_law=True):
    problems = [plate_problem(n=3, n_cycles=0.5, amplitude=a) for a in (0.006, 0.004)]
    store = create_store(path, problems[0].mesh, n_subdomains=2)
    for name, problem in zip(("a", "b"), problems):
        meta = {"loads": describe_loads(problem)}
        if with_law:
            meta["material"] = law_to_json(problem.material)
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta,
                              fields=("displacement", "stress", "state"), allow_nan=("state",))
        solve(problem, writer=writer, fields=("displacement", "stress", "state"))
    return problems[0].material


def test_reduce_command_writes_a_model(tmp_path, capsys):
    law = make_store(tmp_path / "s.zarr")
    out = tmp_path / "m.zarr"
    assert main(["reduce", str(tmp_path / "s.zarr"), "--out", str(out), "--tol-ecm", "1e-4"]) == 0
    text = capsys.readouterr().out
    model = ReducedModel.open(out)
    assert f"{model.n_points} reduced points" in text
    assert model.metadata["reduce"]["ecm_residual"] <= 1e-4
    assert model.materials[0][0] == law and np.all(model.weights >= 0)
    full = open_full(out)  # the bases for reconstructions, saved apart
    assert full.modes.shape[1] == model.n_modes and full.modes.shape[0] == full.lifting.shape[0]
    assert full.lifting.shape[1] == len(model.lifting["lifting_names"]) and "p" in full.gappy
    assert full.mesh.n_nodes == full.modes.shape[0] // 3  # the store's mesh, saved with the model
    # refuses to overwrite; --law from a file gives the same model
    assert main(["reduce", str(tmp_path / "s.zarr"), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    (tmp_path / "law.json").write_text(json.dumps(law_to_json(law)))
    assert main(["reduce", str(tmp_path / "s.zarr"), "--out", str(out), "--tol-ecm", "1e-4",
                 "--law", str(tmp_path / "law.json"), "--overwrite"]) == 0
    again = ReducedModel.open(out)
    np.testing.assert_array_equal(again.weights, model.weights)
    np.testing.assert_array_equal(again.modes_strain, model.modes_strain)


def test_reduce_without_a_law_says_how_to_give_one(tmp_path, capsys):
    make_store(tmp_path / "s.zarr", with_law=False)
    assert main(["reduce", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "m.zarr")]) == 1
    assert "--law" in capsys.readouterr().err
