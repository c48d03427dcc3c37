"""Load-pattern descriptions (romdask.problem.patterns): solver ids, JSON round trip, store metadata."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.fem.partition import partition, renumber
from romdask.fem.quadrature import nodal_force_vector, pressure_vector
from romdask.problem.loads import Amplitude, Centrifugal, Dirichlet, Gravity, NodalForce, Pressure, Temperature, ramp
from romdask.problem.patterns import (
    describe_loads,
    load_signature,
    loads_from_description,
    mesh_fingerprint,
    problem_signature,
    run_metadata,
    signature_differences,
)
from romdask.problem.thermal import temperatures_from_description
from romdask.problem.vectors import unit_load_vector
from romdask.problem import Problem
from romdask.problems.cube import cube_problem
from romdask.problems.meshing import box
from romdask.problems.plate import plate_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from numbering import gmsh_like  # noqa: E402


def _amplitudes_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a.times, b.times) and np.array_equal(a.values, b.values)


def _mixed_problem() -> Problem:
    """A box with non-trivial solver ids, two blocks, every kind of condition, empty names."""
    m = box((3, 2, 2), lengths=(3.0, 2.0, 2.0))
    conn = m.blocks[0].connectivity
    half = len(conn) // 2
    ids = 900 - 11 * np.arange(len(conn))  # decreasing ids, far from index + 1
    blocks = (CellBlock("C3D8", conn[:half], ids[:half]), CellBlock("C3D8", conn[half:], ids[half:]))
    mesh = Mesh(m.nodes, blocks, 5000 + 7 * np.arange(m.n_nodes)[::-1], m.node_sets, m.element_sets, m.surfaces)
    rng = np.random.default_rng(0)  # shuffled nodes and elements: index order unrelated to ids or space
    offsets = mesh.block_offsets
    elements = np.concatenate([offsets[k] + rng.permutation(len(b)) for k, b in enumerate(mesh.blocks)])
    mesh = mesh.renumbered(rng.permutation(mesh.n_nodes), elements)
    problem = cube_problem(n=1, n_cycles=0.5, increments_per_cycle=4)
    dirichlet = (
        Dirichlet(mesh.node_sets["xmin"], (0, 1, 2)),
        Dirichlet(mesh.node_sets["xmax"], (0,), 0.01, ramp(1.0), name="pull"),
    )
    loads = (
        NodalForce(mesh.node_sets["zmax"], 2, -3.5, Amplitude([0.0, 0.5, 1.0], [0.0, 1.0, 0.2])),
        Pressure(mesh.surfaces["ymax"], 12.0, name="side pressure"),
        Pressure(mesh.surfaces["zmin"][::-1], -4.0, ramp(1.0)),
    )
    return Problem(mesh, problem.material, dirichlet, np.linspace(0.0, 1.0, 3), loads, name="mixed")


PROBLEMS = {
    "plate_displacement": lambda: plate_problem(n=3, n_cycles=0.5),
    "plate_pressure": lambda: plate_problem(n=3, n_cycles=0.5, loading="pressure"),
    "cube_displacement": lambda: cube_problem(n=2, n_cycles=0.5, increments_per_cycle=8),
    "cube_pressure": lambda: cube_problem(n=2, n_cycles=0.5, increments_per_cycle=8, loading="pressure"),
    "mixed": _mixed_problem,
}


def _round_trip(problem: Problem, mesh: Mesh | None = None):
    text = json.dumps(describe_loads(problem))
    return loads_from_description(problem.mesh if mesh is None else mesh, json.loads(text))


@pytest.mark.parametrize("key", sorted(PROBLEMS))
def test_round_trip_on_the_same_mesh_gives_the_same_conditions(key):
    problem = PROBLEMS[key]()
    dirichlet, loads = _round_trip(problem)
    assert len(dirichlet) == len(problem.dirichlet) and len(loads) == len(problem.loads)
    for i, (new, old) in enumerate(zip(dirichlet, problem.dirichlet)):
        assert np.array_equal(new.nodes, old.nodes) and new.components == old.components
        assert new.value == old.value and _amplitudes_equal(new.amplitude, old.amplitude)
        assert new.name == (old.name or f"dirichlet-{i}")
        assert np.array_equal(new.dofs, old.dofs)
    for i, (new, old) in enumerate(zip(loads, problem.loads)):
        assert type(new) is type(old) and new.value == old.value
        assert _amplitudes_equal(new.amplitude, old.amplitude) and new.name == (old.name or f"load-{i}")
        if isinstance(old, Pressure):
            assert np.array_equal(new.faces, old.faces)  # order kept
        else:
            assert np.array_equal(new.nodes, old.nodes) and new.component == old.component


def test_description_uses_solver_ids_and_generated_names():
    problem = _mixed_problem()
    mesh = problem.mesh
    d = describe_loads(problem)
    assert d["version"] == 2 and "temperature" not in d  # athermal
    assert [e["name"] for e in d["dirichlet"]] == ["dirichlet-0", "pull"]
    assert [e["name"] for e in d["loads"]] == ["load-0", "side pressure", "load-2"]
    assert d["dirichlet"][0]["node_ids"] == mesh.node_ids[problem.dirichlet[0].nodes].tolist()
    assert d["dirichlet"][0]["amplitude"] is None
    assert d["dirichlet"][1]["amplitude"] == {"times": [0.0, 1.0], "values": [0.0, 1.0]}
    assert d["loads"][0]["kind"] == "nodal_force" and d["loads"][0]["component"] == 2
    faces = problem.loads[1].faces
    assert d["loads"][1]["faces"] == [[int(mesh.element_ids[e]), int(f)] for e, f in faces]
    assert min(min(e["node_ids"]) for e in d["dirichlet"]) >= 5000  # ids, not indices
    assert describe_loads(problem) == json.loads(json.dumps(describe_loads(problem)))  # deterministic, plain JSON


def _check_same_physical_places(problem: Problem, mesh: Mesh, dirichlet, loads) -> None:
    """Conditions rebuilt on ``mesh`` (another numbering) act on the same nodes, faces, forces."""
    old_mesh = problem.mesh
    to_new = mesh.node_index(old_mesh.node_ids)  # old node index -> new node index
    for new, old in zip(dirichlet, problem.dirichlet):
        assert np.array_equal(np.sort(new.nodes), np.sort(to_new[old.nodes]))
        assert np.allclose(np.sort(mesh.nodes[new.nodes], axis=0), np.sort(old_mesh.nodes[old.nodes], axis=0))
        # prescribed dofs: same node coordinates and components
        old_dofs = old.dofs
        new_dofs = 3 * to_new[old_dofs // 3] + old_dofs % 3
        assert np.array_equal(np.sort(new.dofs), np.sort(new_dofs))
        assert new.components == old.components and new.value == old.value
        assert _amplitudes_equal(new.amplitude, old.amplitude)
    for new, old in zip(loads, problem.loads):
        if isinstance(old, Pressure):
            assert np.array_equal(mesh.element_ids[new.faces[:, 0]], old_mesh.element_ids[old.faces[:, 0]])
            assert np.array_equal(new.faces[:, 1], old.faces[:, 1])
            f_new = pressure_vector(mesh, new.faces, new.value)
            f_old = pressure_vector(old_mesh, old.faces, old.value)
        else:
            f_new = nodal_force_vector(mesh.n_dofs, new.nodes, new.component, new.value)
            f_old = nodal_force_vector(old_mesh.n_dofs, old.nodes, old.component, old.value)
        assert np.abs(f_old).max() > 0
        # the same force on the same physical node
        scale = np.abs(f_old).max()
        assert np.allclose(f_new.reshape(-1, 3)[to_new], f_old.reshape(-1, 3), rtol=1e-12, atol=1e-12 * scale)
        assert _amplitudes_equal(new.amplitude, old.amplitude) and new.value == old.value


@pytest.mark.parametrize("key", ["plate_displacement", "plate_pressure", "cube_pressure", "mixed"])
def test_round_trip_on_a_renumbered_mesh_names_the_same_physical_places(key):
    problem = PROBLEMS[key]()
    new_mesh, _ = renumber(problem.mesh, partition(problem.mesh, 2))
    assert not np.array_equal(new_mesh.node_ids, problem.mesh.node_ids)  # really renumbered
    dirichlet, loads = _round_trip(problem, new_mesh)
    _check_same_physical_places(problem, new_mesh, dirichlet, loads)


@pytest.mark.parametrize("loading", ["displacement", "pressure"])
def test_writer_metadata_idiom_through_a_real_store(tmp_path, loading):
    """The documented idiom: describe_loads as run metadata, rebuilt on the store's mesh."""
    from romdask.hifi import solve
    from romdask.store import SnapshotStore, create_store, open_run

    problem = plate_problem(n=3, n_cycles=0.5, loading=loading)
    path = tmp_path / "s.zarr"
    store = create_store(path, problem.mesh, n_subdomains=2)
    writer = store.writer("plate", mesh=problem.mesh, times=problem.times, solver="romdask-builtin",
                          metadata={"loads": describe_loads(problem)})
    solve(problem, writer=writer, fields=("displacement",))

    reopened = SnapshotStore.open(path, mode="r")
    description = reopened.runs()["plate"]["metadata"]["loads"]
    store_mesh = reopened.layout.mesh
    assert not np.array_equal(store_mesh.node_ids, problem.mesh.node_ids)
    dirichlet, loads = loads_from_description(store_mesh, description)
    _check_same_physical_places(problem, store_mesh, dirichlet, loads)
    assert len(loads) == (loading == "pressure")
    # the stored displacements honour the rebuilt conditions at the store's dofs
    ds = open_run(path, "plate")
    assert np.array_equal(ds.node_id.values[::3], store_mesh.node_ids)
    u = ds.displacement.values
    for bc in dirichlet:
        expected = np.array([bc.scale(t) for t in problem.times])
        assert np.allclose(u[:, bc.dofs], expected[:, None], rtol=0, atol=1e-12)
    if loading == "displacement":
        assert np.abs(u[:, dirichlet[-1].dofs]).max() > 0


def test_duplicate_names_are_rejected():
    problem = _mixed_problem()
    clash = dataclasses.replace(problem, loads=(Pressure(problem.mesh.surfaces["ymax"], 1.0, name="pull"),))
    with pytest.raises(ValueError, match=r"unique.*\['pull'\]"):
        describe_loads(clash)
    # a given name equal to a generated one is a duplicate too
    renamed = dataclasses.replace(problem.dirichlet[1], name="dirichlet-0")
    clash = dataclasses.replace(problem, dirichlet=(problem.dirichlet[0], renamed))
    with pytest.raises(ValueError, match="dirichlet-0"):
        describe_loads(clash)
    d = describe_loads(problem)
    d["loads"][1]["name"] = "pull"
    with pytest.raises(ValueError, match="pull"):
        loads_from_description(problem.mesh, d)


def test_unknown_ids_version_and_kind_are_rejected():
    problem = _mixed_problem()
    d = describe_loads(problem)
    bad = json.loads(json.dumps(d))
    bad["dirichlet"][1]["node_ids"].append(123456)
    with pytest.raises(ValueError, match=r"'pull'.*unknown node id.*123456"):
        loads_from_description(problem.mesh, bad)
    bad = json.loads(json.dumps(d))
    bad["loads"][1]["faces"].append([424242, 0])
    with pytest.raises(ValueError, match=r"side pressure.*unknown element id.*424242"):
        loads_from_description(problem.mesh, bad)
    bad = json.loads(json.dumps(d))
    bad["loads"][0]["node_ids"] = [-1]
    with pytest.raises(ValueError, match=r"unknown node id.*-1"):
        loads_from_description(problem.mesh, bad)
    for version in (3, None, "1", True):
        bad = dict(d, version=version)
        with pytest.raises(ValueError, match="version"):
            loads_from_description(problem.mesh, bad)
    bad = json.loads(json.dumps(d))
    bad["loads"][2]["kind"] = "body_force"
    with pytest.raises(ValueError, match="unknown load kind 'body_force'"):
        loads_from_description(problem.mesh, bad)
    # a mesh from another model: the ids do not match
    other = plate_problem(n=3, n_cycles=0.5).mesh
    with pytest.raises(ValueError, match="unknown node id"):
        loads_from_description(other, d)


# ---- signatures: the mesh and patterns a reduced model needs a new deck to share -------------


@pytest.mark.parametrize("key", ["plate_displacement", "plate_pressure", "cube_pressure", "mixed"])
def test_signature_is_invariant_to_renumbering(key):
    """A store renumbers nodes (and elements) subdomain by subdomain: the signature of the
    patterns rebuilt on the store's mesh is the problem's; also with the blocks split otherwise."""
    problem = PROBLEMS[key]()
    reference = problem_signature(problem)
    new_mesh, _ = renumber(problem.mesh, partition(problem.mesh, 3))
    assert not np.array_equal(new_mesh.node_ids, problem.mesh.node_ids)
    dirichlet, loads = _round_trip(problem, new_mesh)
    assert load_signature(new_mesh, dirichlet, loads) == reference
    rng = np.random.default_rng(1)
    offsets = problem.mesh.block_offsets
    elements = np.concatenate([offsets[k] + rng.permutation(len(b)) for k, b in enumerate(problem.mesh.blocks)])
    shuffled = problem.mesh.renumbered(rng.permutation(problem.mesh.n_nodes), elements)
    assert load_signature(shuffled, *_round_trip(problem, shuffled)) == reference
    merged = Mesh(problem.mesh.nodes, (CellBlock(problem.mesh.blocks[0].type,
                                                 np.concatenate([b.connectivity for b in problem.mesh.blocks]),
                                                 problem.mesh.element_ids),), problem.mesh.node_ids)
    assert mesh_fingerprint(merged) == reference["mesh"]
    assert signature_differences(reference, json.loads(json.dumps(reference))) == []


def test_signature_changes_with_a_pattern_and_says_what_differs():
    problem = PROBLEMS["mixed"]()
    reference = problem_signature(problem)
    pull = problem.dirichlet[1]
    fewer = dataclasses.replace(pull, nodes=pull.nodes[1:])
    other = dataclasses.replace(pull, nodes=np.setdiff1d(np.arange(problem.mesh.n_nodes), pull.nodes)[: len(pull.nodes)])
    cases = {
        "fewer nodes": (fewer, "pattern 'pull' has 8 nodes instead of 9"),
        "other nodes": (other, "pattern 'pull' has other nodes (same count, 9)"),
        "component": (dataclasses.replace(pull, components=(1,)), "pattern 'pull' acts on components [1] instead of [0]"),
        "renamed": (dataclasses.replace(pull, name="push"), "patterns missing: ['pull']"),
    }
    assert len(pull.nodes) == 9
    for label, (bc, message) in cases.items():
        changed = dataclasses.replace(problem, dirichlet=(problem.dirichlet[0], bc))
        differences = signature_differences(reference, problem_signature(changed))
        assert message in differences, (label, differences)
    # values and amplitudes are not part of the signature: they are a new scenario
    scaled = dataclasses.replace(problem, dirichlet=(problem.dirichlet[0], dataclasses.replace(pull, value=5.0)))
    assert problem_signature(scaled) == reference
    # a pressure on other faces, another mesh
    side = problem.loads[1]
    moved = dataclasses.replace(side, faces=problem.mesh.surfaces["zmax"])
    differences = signature_differences(reference, problem_signature(
        dataclasses.replace(problem, loads=(problem.loads[0], moved, problem.loads[2]))))
    assert any(d.startswith("pattern 'side pressure' has") for d in differences), differences
    coarse = PROBLEMS["cube_pressure"]()
    differences = signature_differences(reference, problem_signature(coarse))
    assert differences[0].startswith("the mesh has") and "patterns missing" in " ".join(differences)
    with pytest.raises(ValueError, match="version"):
        signature_differences(reference, {"mesh": reference["mesh"]})


# ---- body forces and temperatures (description version 2, signature version 2) ---------------


def _thermal_problem() -> Problem:
    """The mixed problem plus a rotation about a tilted axis on some elements, gravity on all,
    a non-uniform initial temperature and two temperature patterns."""
    base = _mixed_problem()
    mesh = base.mesh
    everything = np.arange(mesh.n_elements)
    x = mesh.nodes
    loads = base.loads + (Centrifugal(everything[::2], 2.5e5, [0.3, -1.0, 0.5], [0.0, 1.0, 1.0], 7.8e-9, ramp(1.0), name="spin"),
             Gravity(everything, 9810.0, [0.0, 0.0, -1.0], 7.8e-9))
    heat = (Temperature(mesh.node_sets["zmax"], 300.0 + x[mesh.node_sets["zmax"], 0],
                        Amplitude([0.0, 0.5, 1.0], [0.1, 1.0, 0.4]), name="top"),
            Temperature(mesh.node_sets["zmin"], 50.0))
    return Problem(mesh, base.material, base.dirichlet, base.times, loads, name="thermal",
                   initial_temperature=20.0 + 0.1 * x[:, 1], temperatures=heat)


def test_body_forces_and_temperatures_round_trip_on_renumbered_meshes():
    """JSON round trip onto the store's renumbering and onto a shuffled numbering: the body
    forces give the same nodal forces on the same physical nodes, the temperatures the same
    nodal temperature field at every time."""
    problem = _thermal_problem()
    d = json.loads(json.dumps(describe_loads(problem)))
    assert d["version"] == 2 and [e["kind"] for e in d["loads"]][-2:] == ["centrifugal", "gravity"]
    assert d["loads"][-1]["name"] == "load-4" and d["loads"][-2]["axis"] == pytest.approx([0, 2**-0.5, 2**-0.5])
    assert [p["name"] for p in d["temperature"]["patterns"]] == ["top", "temperature-1"]
    assert d == run_metadata(problem)["loads"]
    rng = np.random.default_rng(3)
    store_mesh, _ = renumber(problem.mesh, partition(problem.mesh, 2))
    offsets = problem.mesh.block_offsets
    elements = np.concatenate([offsets[k] + rng.permutation(len(b)) for k, b in enumerate(problem.mesh.blocks)])
    shuffled = problem.mesh.renumbered(rng.permutation(problem.mesh.n_nodes), elements)
    for mesh in (store_mesh, shuffled):
        dirichlet, loads = loads_from_description(mesh, d)
        initial, temperatures = temperatures_from_description(mesh, d)
        to_new = mesh.node_index(problem.mesh.node_ids)
        for i, (new, old) in enumerate(zip(loads, problem.loads)):
            assert type(new) is type(old) and new.name == (old.name or f"load-{i}") and new.value == old.value
            assert _amplitudes_equal(new.amplitude, old.amplitude) and getattr(new, "density", 0) == getattr(old, "density", 0)
            f_new = unit_load_vector(mesh, new).reshape(-1, 3)[to_new]
            f_old = unit_load_vector(problem.mesh, old).reshape(-1, 3)
            assert np.abs(f_old).max() > 0
            np.testing.assert_allclose(f_new, f_old, rtol=1e-12, atol=1e-12 * np.abs(f_old).max())
        rebuilt = Problem(mesh, problem.material, dirichlet, problem.times, loads, initial_temperature=initial,
                          temperatures=temperatures)
        for t in (0.0, 0.25, 0.5, 1.0):
            np.testing.assert_array_equal(rebuilt.nodal_temperature(t)[to_new], problem.nodal_temperature(t))
        assert problem_signature(rebuilt) == problem_signature(problem)


def test_uniform_initial_temperature_and_version_1_descriptions():
    problem = dataclasses.replace(_thermal_problem(), initial_temperature=20.0, temperatures=())
    d = describe_loads(problem)
    assert d["temperature"] == {"initial": {"value": 20.0}, "patterns": []}
    assert temperatures_from_description(problem.mesh, d) == (20.0, ())
    old = describe_loads(PROBLEMS["mixed"]())
    old["version"] = 1  # as romdask wrote it before body forces and temperatures
    dirichlet, loads = loads_from_description(PROBLEMS["mixed"]().mesh, old)
    assert len(loads) == 3 and temperatures_from_description(PROBLEMS["mixed"]().mesh, old) == (None, ())


def test_temperature_descriptions_that_miss_nodes_are_rejected():
    problem = _thermal_problem()
    d = json.loads(json.dumps(describe_loads(problem)))
    d["temperature"]["initial"]["node_ids"] = d["temperature"]["initial"]["node_ids"][1:]
    d["temperature"]["initial"]["values"] = d["temperature"]["initial"]["values"][1:]
    with pytest.raises(ValueError, match=f"gives {problem.mesh.n_nodes - 1} of the mesh's {problem.mesh.n_nodes} nodes"):
        temperatures_from_description(problem.mesh, d)
    d = json.loads(json.dumps(describe_loads(problem)))
    d["temperature"]["patterns"][0]["node_ids"].append(424242)
    with pytest.raises(ValueError, match=r"'top'.*unknown node id.*424242"):
        temperatures_from_description(problem.mesh, d)
    d = json.loads(json.dumps(describe_loads(problem)))
    d["loads"][3]["axis"] = [0.0, 0.0]
    with pytest.raises(ValueError, match="axis must be 3 finite numbers"):
        loads_from_description(problem.mesh, d)


def test_signature_of_body_forces_and_temperatures():
    """A moved or turned axis, another gravity direction or density are other patterns; another
    point ON the axis, the reversed axis, other values (omega^2, g), amplitudes and temperatures
    are not; temperatures on one side only are a difference in words."""
    problem = _thermal_problem()
    reference = problem_signature(problem)
    assert reference["version"] == 2 and reference["thermal"] is True
    spin, gravity = problem.loads[3], problem.loads[4]
    assert reference["patterns"][5]["geometry"] == {"point": [0.3, -0.75, 0.75], "axis": [0.0, 0.707107, 0.707107]}

    def signature(*replaced, **changes):
        loads = list(problem.loads)
        for i, load in replaced:
            loads[i] = load
        return problem_signature(dataclasses.replace(problem, loads=tuple(loads), **changes))

    same = [
        (3, dataclasses.replace(spin, point=spin.point + 2.0 * spin.axis)),  # another point of the axis
        (3, dataclasses.replace(spin, axis=-spin.axis, value=1.0, amplitude=None)),
        (4, dataclasses.replace(gravity, value=1.0, density=7.8e-9 * (1 + 1e-9))),  # 7 digits
    ]
    for change in same:
        assert signature(change) == reference, change
    assert signature(temperatures=(), initial_temperature=100.0) == reference
    moved = signature((3, dataclasses.replace(spin, point=spin.point + [0.01, 0.0, 0.0])))
    assert signature_differences(reference, moved) == [
        "pattern 'spin' has another axis: point [0.31, -0.75, 0.75], axis [0.0, 0.707107, 0.707107] instead of "
        "point [0.3, -0.75, 0.75], axis [0.0, 0.707107, 0.707107]"]
    turned = signature((3, dataclasses.replace(spin, axis=[0.0, 1.0, 0.9])))
    assert signature_differences(reference, turned)[0].startswith("pattern 'spin' has another axis")
    down = signature((4, dataclasses.replace(gravity, direction=[0.0, -1.0, 0.0])))
    assert signature_differences(reference, down) == [
        "pattern 'load-4' has another direction: direction [0.0, -1.0, 0.0] instead of direction [0.0, 0.0, -1.0]"]
    heavier = signature((4, dataclasses.replace(gravity, density=7.9e-9)))
    assert signature_differences(reference, heavier) == [
        "pattern 'load-4' has density 7.9e-09 instead of 7.8e-09 (the density is part of the model's load vector; "
        "omega^2 or g may change)"]
    fewer = signature((3, dataclasses.replace(spin, elements=spin.elements[1:])))
    assert signature_differences(reference, fewer) == [
        f"pattern 'spin' has {len(spin.elements) - 1} elements instead of {len(spin.elements)}"]
    athermal = signature(initial_temperature=None, temperatures=())
    assert signature_differences(reference, athermal) == [
        "the model was trained with temperatures but this case has none: give it an initial temperature "
        "(CalculiX: *INITIAL CONDITIONS,TYPE=TEMPERATURE)"]
    assert signature_differences(athermal, reference)[0].startswith("this case has temperatures but the model")


def test_version_1_signatures_still_compare():
    """Signatures of models reduced before signature version 2 (no "thermal" flag, no body forces)
    compare as athermal; unknown versions are refused clearly."""
    problem = PROBLEMS["mixed"]()
    new = problem_signature(problem)
    old = {key: value for key, value in new.items() if key != "thermal"}
    old["version"] = 1
    assert signature_differences(old, new) == [] and signature_differences(new, old) == []
    thermal = problem_signature(dataclasses.replace(problem, initial_temperature=20.0))
    assert signature_differences(old, thermal)[0].startswith("this case has temperatures")
    with pytest.raises(ValueError, match=r"version 3; this romdask compares versions 1, 2"):
        signature_differences(old, dict(new, version=3))


def test_thermal_description_on_a_gmsh_numbered_mesh():
    """A pre-processor's numbering (midside nodes first, unused nodes, id gaps; tests/numbering.py)
    through JSON onto the store's renumbering: the same temperatures and body forces per node id."""
    mesh = gmsh_like(box((2, 2, 1), element="C3D20R"), seed=4)
    x = mesh.nodes
    spin = Centrifugal(np.arange(mesh.n_elements), 4.0e4, [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], 2.7e-9, name="spin")
    heat = Temperature(mesh.node_sets["zmax"], 100.0 + x[mesh.node_sets["zmax"], 0], ramp(1.0), name="heat")
    problem = Problem(mesh, "law", (Dirichlet(mesh.node_sets["zmin"], (0, 1, 2), name="clamp"),), [0.0, 1.0],
                      (spin,), initial_temperature=20.0 + x[:, 1], temperatures=(heat,))
    d = json.loads(json.dumps(describe_loads(problem)))
    store_mesh, _ = renumber(mesh, partition(mesh, 2))
    _, loads = loads_from_description(store_mesh, d)
    initial, temperatures = temperatures_from_description(store_mesh, d)
    rebuilt = Problem(store_mesh, "law", (), [0.0, 1.0], loads, initial_temperature=initial, temperatures=temperatures)
    to_new = store_mesh.node_index(mesh.node_ids)
    for t in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(rebuilt.nodal_temperature(t)[to_new], problem.nodal_temperature(t))
    f_old = unit_load_vector(mesh, spin).reshape(-1, 3)
    f_new = unit_load_vector(store_mesh, loads[0]).reshape(-1, 3)[to_new]
    np.testing.assert_allclose(f_new, f_old, rtol=1e-12, atol=1e-12 * np.abs(f_old).max())
