"""Files users write by hand: law, loads (resolved on a mesh's sets) and amplitude tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from romdask.fem.mesh import Mesh
from romdask.materials import CalculixViscoplastic, LinearElastic, law_to_json
from romdask.problem import describe_loads, loads_from_description
from romdask.problem.files import read_amplitude_csv, read_law_file, read_loads_file, template
from romdask.problem.loads import NodalForce, Pressure
from romdask.problems.plate import plate_problem


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    """The small plate with gapped, shuffled solver ids (as a pre-processor numbers them)."""
    base = plate_problem(n=3).mesh
    rng = np.random.default_rng(0)
    node_ids = rng.permutation(np.arange(10, 10 + 7 * base.n_nodes, 7))
    blocks = tuple(type(b)(b.type, b.connectivity, rng.permutation(np.arange(1, 3 * len(b) + 1, 3)) + 5000)
                   for b in base.blocks)
    surface = np.column_stack([np.arange(4), np.full(4, 2)])
    return Mesh(base.nodes, blocks, node_ids, base.node_sets, {"HALF": np.arange(base.n_elements // 2)},
                {"LOAD": surface})


def test_law_template_is_a_valid_law_file(tmp_path):
    path = tmp_path / "law.yaml"
    path.write_text(template("law"))
    law = read_law_file(path)
    assert isinstance(law, CalculixViscoplastic) and law.norton == (1e-9, 3.0, 0.0)
    # JSON (what law_to_json writes) is read too
    (tmp_path / "law.json").write_text(json.dumps(law_to_json(LinearElastic(1000.0, 0.25))))
    assert read_law_file(tmp_path / "law.json") == LinearElastic(1000.0, 0.25)


def test_law_file_errors_name_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: Steel\nparameters: {young: 1}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown law type 'Steel'.*CalculixViscoplastic"):
        read_law_file(bad)
    bad.write_text("type: LinearElastic\nparameters: {young: 1, nu: 0.3}\n")
    with pytest.raises(ValueError, match=r"unknown parameters \['nu'\]"):
        read_law_file(bad)
    bad.write_text("type: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        read_law_file(bad)


def test_loads_template_resolves_on_a_mesh_with_those_sets(tmp_path, mesh):
    """The template's sets exist on this mesh: the description rebuilds every pattern with the
    mesh's solver ids, values, components and amplitudes (CSV beside the file)."""
    sets = {"BOTTOM": mesh.node_sets["ysym"], "TOP": mesh.node_sets["top"], "TIP": mesh.node_sets["right"]}
    mesh = Mesh(mesh.nodes, mesh.blocks, mesh.node_ids, {**mesh.node_sets, **sets}, mesh.element_sets,
                mesh.surfaces)
    (tmp_path / "loads.yaml").write_text(template("loads", mesh))
    (tmp_path / "pressure.csv").write_text("time, pressure\n0, 0\n5, 1  # peak\n10, 0\n")
    description = read_loads_file(tmp_path / "loads.yaml", mesh)
    dirichlet, loads = loads_from_description(mesh, description)
    assert [bc.name for bc in dirichlet] == ["fixed", "top_displacement"]
    assert np.array_equal(dirichlet[1].nodes, np.sort(sets["TOP"])) and dirichlet[1].components == (1,)
    assert dirichlet[1].value == 0.008 and dirichlet[1].amplitude(5.0) == 0.0
    pressure, tip = loads
    assert isinstance(pressure, Pressure) and np.array_equal(pressure.faces, mesh.surfaces["LOAD"])
    assert pressure.amplitude(2.5) == 0.5
    assert isinstance(tip, NodalForce) and tip.component == 2 and tip.value == 100.0
    # the per-run section changes a value for that run only
    other = read_loads_file(tmp_path / "loads.yaml", mesh, run="run-b")
    assert other["dirichlet"][1]["value"] == 0.004 and description["dirichlet"][1]["value"] == 0.008
    # solver ids round trip: the description equals describe_loads of the rebuilt problem
    problem = plate_problem(n=3)
    problem = type(problem)(mesh, problem.material, dirichlet, problem.times, loads)
    assert json.dumps(describe_loads(problem), sort_keys=True) == json.dumps(description, sort_keys=True)


def test_loads_by_solver_ids_and_element_set_faces(tmp_path, mesh):
    ids = mesh.node_ids[mesh.node_sets["top"]].tolist()
    data = {"dirichlet": [{"name": "u", "node_ids": ids, "components": ["y"], "value": 0.01}],
            "loads": [{"name": "p", "kind": "pressure", "element_set": "half", "face": "S2", "value": 3.0},
                      {"name": "q", "kind": "pressure", "faces": [[int(mesh.element_ids[0]), "S6"]], "value": 1}]}
    (tmp_path / "l.json").write_text(json.dumps(data))
    description = read_loads_file(tmp_path / "l.json", mesh)
    _, (p, q) = loads_from_description(mesh, description)
    assert np.array_equal(p.faces[:, 1], np.full(len(mesh.element_sets["HALF"]), 1))
    assert q.faces.tolist() == [[0, 5]]


@pytest.mark.parametrize(("entry", "message"), [
    ({"dirichlet": [{"name": "a", "node_set": "NOPE", "components": ["x"]}]}, r"no node set 'NOPE' \(it has: .*TOP"),
    ({"dirichlet": [{"name": "a", "node_set": "top", "node_ids": [1]}]}, "exactly one of node_set, node_ids"),
    ({"dirichlet": [{"name": "a", "node_set": "top", "components": ["w"]}]}, "components are x, y, z"),
    ({"loads": [{"name": "a", "kind": "gravity"}]}, "kind must be 'pressure' or 'nodal_force'"),
    ({"loads": [{"name": "a", "kind": "pressure", "surface": "LOAD"}]}, "needs a finite value"),
    ({"loads": [{"name": "a", "kind": "nodal_force", "node_set": "top", "component": ["x", "y"], "value": 1}]},
     "one component"),
    ({"dirichlet": [{"name": "a", "node_set": "top"}], "loads": [{"name": "a", "kind": "pressure",
                                                                  "surface": "LOAD", "value": 1}]}, "duplicated"),
    ({"dirichlet": [{"name": "a", "node_set": "top", "amplitude": {"times": [1, 0], "values": [0, 1]}}]},
     "non-decreasing"),
    ({"dirichlet": [{"name": "a", "node_set": "top"}], "runs": {"r": {"b": {"value": 1}}}}, "no such pattern"),
    ({"dirichlets": []}, "unknown keys"),
])
def test_loads_file_errors_name_the_file_and_entry(tmp_path, mesh, entry, message):
    sets = {"TOP": mesh.node_sets["top"]}
    mesh = Mesh(mesh.nodes, mesh.blocks, mesh.node_ids, sets, mesh.element_sets, mesh.surfaces)
    path = tmp_path / "loads.yaml"
    path.write_text(yaml.safe_dump(entry))
    with pytest.raises(ValueError, match=message) as info:
        read_loads_file(path, mesh, run="r")
    assert str(path) in str(info.value)


def test_amplitude_csv(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("# a hold\n0 0\n1, 2.5\n3;2.5\n")
    amp = read_amplitude_csv(path)
    assert amp.times.tolist() == [0, 1, 3] and amp(2.0) == 2.5 and amp(10.0) == 2.5
    path.write_text("t, v\n0, 0\nx, 1\n")
    with pytest.raises(ValueError, match="line 3: expected 'time, value'"):
        read_amplitude_csv(path)
    path.write_text("0, 1, 2\n")
    with pytest.raises(ValueError, match="two columns"):
        read_amplitude_csv(path)
    path.write_text("1, 0\n0, 1\n")
    with pytest.raises(ValueError, match="non-decreasing"):
        read_amplitude_csv(path)
