"""romdask.hifi.calculix: deck writer, read_problem, run_ccx, solve_calculix, run_many, CLI.

ccx-dependent tests skip without the binary (CI installs the apt package calculix-ccx).
"""

import json
import shutil

import numpy as np
import pytest

from romdask.fem.mesh import Mesh
from romdask.fem.quadrature import quadrature, strain
from romdask.hifi.calculix import (
    CalculixError, read_problem, run_ccx, run_many, solve_calculix, write_deck,
)  # fmt: skip
from romdask.io.run import ReaderError
from romdask.problem.loads import Amplitude, Dirichlet, NodalForce, Pressure, cyclic
from romdask.materials import CalculixViscoplastic, LinearElastic
from romdask.offline.replay import integrate_history
from romdask.problem.patterns import describe_loads, run_metadata
from romdask.problem import Problem
from romdask.problems.plate import plate_problem

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")

TABLE = [(200.0, 0.0), (260.0, 0.005), (300.0, 0.02), (340.0, 0.1)]


def _law(hardening="isotropic", norton=(4e-11, 5.0, 0.0)):
    return CalculixViscoplastic(200000.0, 0.3, TABLE, hardening=hardening, norton=norton)


def _mixed_problem(element):
    """Plate mesh, two laws on two element sets, Dirichlet + nodal force + pressure."""
    base = plate_problem(n=2, element=element, n_cycles=0.5, increments_per_cycle=8)
    mesh = base.mesh
    half = np.arange(mesh.n_elements // 2)
    mesh = Mesh(mesh.nodes, mesh.blocks, mesh.node_ids + 100, mesh.node_sets,
                {"left": half, "rest": np.arange(len(half), mesh.n_elements)}, mesh.surfaces)  # fmt: skip
    amp = cyclic(10.0, 0.5)
    corner = np.flatnonzero((mesh.nodes[:, 0] > 9.99) & (mesh.nodes[:, 1] > 9.99))
    laws = {"left": _law("kinematic"), "rest": LinearElastic(210000.0, 0.29)}
    bcs = [Dirichlet(mesh.node_sets[s], (c,), name=s) for s, c in (("xsym", 0), ("ysym", 1), ("zsym", 2))]
    bcs.append(Dirichlet(mesh.node_sets["top"], (1,), 0.004, amp, name="top pull"))
    loads = (NodalForce(corner, 0, 2.5, amp, name="corner"),
             Pressure(mesh.surfaces["right"], -30.0, Amplitude([0, 5], [0, 1.0]), name="right traction"))
    return Problem(mesh, laws, tuple(bcs), base.times, loads, name="mixed")


# ---- deck writer and read_problem (no ccx needed) --------------------------------------------


@pytest.mark.parametrize("element", ["C3D4", "C3D8", "C3D10", "C3D20", "C3D20R"])
def test_write_read_round_trip(tmp_path, element):
    """write_deck -> read_problem gives the same mesh, laws, load patterns (names, nodes, faces,
    values, amplitudes) and times, for every element type."""
    problem = _mixed_problem(element)
    deck = write_deck(problem, tmp_path / "deck.inp", ip_output=True)
    text = deck.read_text()
    assert "np.float64" not in text and "nan" not in text.lower()
    data = text.split("*NODE\n", 1)[1].splitlines()  # after the heading
    numbers = [t.strip() for line in data if not line.startswith("*") for t in line.split(",")]
    assert max(len(t) for t in numbers) <= 20
    back = read_problem(deck)
    m0, m1 = problem.mesh, back.mesh
    np.testing.assert_array_equal(m1.node_ids, m0.node_ids)
    np.testing.assert_allclose(m1.nodes, m0.nodes, rtol=1e-13, atol=1e-13)
    assert [b.type for b in m1.blocks] == [b.type for b in m0.blocks]
    for b0, b1 in zip(m0.blocks, m1.blocks):
        np.testing.assert_array_equal(b1.connectivity, b0.connectivity)
        np.testing.assert_array_equal(b1.ids, b0.ids)
    for name, nodes in m0.node_sets.items():
        np.testing.assert_array_equal(m1.node_sets[name.upper()], np.unique(nodes))
    for name, faces in m0.surfaces.items():
        np.testing.assert_array_equal(m1.surfaces[name.upper()], faces)
    assert {k: v for k, v in back.material.items()} == {"LEFT": problem.material["left"], "REST": problem.material["rest"]}
    np.testing.assert_array_equal(back.times, problem.times)
    a, b = describe_loads(problem), describe_loads(back)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_read_problem_lists_every_unsupported_keyword(tmp_path):
    deck = write_deck(plate_problem(n=1, n_cycles=0.25, increments_per_cycle=4), tmp_path / "p.inp")
    text = deck.read_text()
    text = text.replace("*STEP, INC=100000", "*STEP, INC=100000, NLGEOM", 1)
    text = text.replace("*SOLID SECTION", "*DENSITY\n7.8e-9\n*HYPERELASTIC, NEO HOOKE\n1., 1.\n*SOLID SECTION", 1)
    text = text.replace("*STEP", "*EQUATION\n2\n1,1,1.,2,1,-1.\n*STEP", 1)
    text = text.replace("*END STEP", "*CFLUX\n1, 11, 100.\n*END STEP", 1)
    bad = tmp_path / "bad.inp"
    bad.write_text(text)
    with pytest.raises(ReaderError) as err:
        read_problem(bad)
    msg = str(err.value)
    assert str(bad) in msg and "4 unsupported" in msg
    for item in ("*EQUATION", "*HYPERELASTIC", "*CFLUX", "NLGEOM"):
        assert item in msg
    assert "*DENSITY" not in msg.split(". romdask reads")[0]  # read (body forces)
    lines = text.splitlines()
    assert f"line {lines.index('*HYPERELASTIC, NEO HOOKE') + 1}: keyword *HYPERELASTIC" in msg


def test_read_problem_step_semantics(tmp_path):
    """CalculiX's step rules on the total time: a condition without amplitude is ramped over its
    *STATIC step from its previous value; a step-time amplitude holds its last value in later
    steps (CalculiX drops it); OP=NEW is a clear error."""
    deck = tmp_path / "one.inp"
    deck.write_text("""*NODE
1,0,0,0
2,1,0,0
3,1,1,0
4,0,1,0
5,0,0,1
6,1,0,1
7,1,1,1
8,0,1,1
*ELEMENT,TYPE=C3D8,ELSET=E
1,1,2,3,4,5,6,7,8
*NSET,NSET=LEFT
1,4,5,8
*NSET,NSET=RIGHT
2,3,6,7
*MATERIAL,NAME=STEEL
*ELASTIC
210000,0.3
*SOLID SECTION,ELSET=E,MATERIAL=STEEL
*BOUNDARY
LEFT,1,3
*STEP
*STATIC
0.25,1.
*CLOAD
RIGHT,1,10.
*NODE FILE
U
*END STEP
""")
    p = read_problem(deck)
    assert isinstance(p.material, LinearElastic) and p.material.young == 210000.0
    np.testing.assert_allclose(p.times, [0, 0.25, 0.5, 0.75, 1.0])
    (bc,), (force,) = p.dirichlet, p.loads
    assert bc.name == "LEFT" and bc.components == (0, 1, 2) and bc.value == 0.0
    assert force.name == "RIGHT" and force.component == 0 and force.value == 10.0
    assert force.scale(0.5) == 0.5  # ramped over the step
    two = tmp_path / "two.inp"
    two.write_text(deck.read_text() + "*STEP\n*STATIC\n0.5,1.\n*CLOAD\nRIGHT,1,20.\n*END STEP\n")
    (force,) = read_problem(two).loads
    assert force.value == 10.0
    np.testing.assert_allclose(force.amplitude.times, [0, 1, 2])
    np.testing.assert_allclose(force.amplitude.values, [0, 1, 2])  # ramped on from 10 to 20 in step 2
    amp = tmp_path / "amp.inp"
    amp.write_text(deck.read_text().replace("*STEP\n", "*AMPLITUDE,NAME=A\n0,0,1,1\n*STEP\n", 1)
                   .replace("*CLOAD\n", "*CLOAD,AMPLITUDE=A\n") + "*STEP\n*STATIC\n0.5,1.\n*END STEP\n")
    (force,) = read_problem(amp).loads
    np.testing.assert_allclose(force.amplitude(np.array([0.5, 1.0, 1.5, 2.0])), [0.5, 1, 1, 1])  # held in step 2
    new = tmp_path / "new.inp"
    new.write_text(two.read_text().replace("*CLOAD\nRIGHT,1,20.", "*CLOAD,OP=NEW\nRIGHT,1,20."))
    with pytest.raises(ReaderError, match=r"new.inp: 1 unsupported .* line 3\d: \*CLOAD option\(s\) OP=NEW"):
        read_problem(new)


def test_write_deck_errors(tmp_path):
    p = plate_problem(n=1, n_cycles=1, increments_per_cycle=4)
    odd = Problem(p.mesh, p.material, p.dirichlet, [0.0, 1.0, 3.0, 10.0], name="odd")
    with pytest.raises(ValueError, match="breakpoint .* at t=2.5 falls between"):
        write_deck(odd, tmp_path / "odd.inp")
    from romdask.materials import Chaboche

    chaboche = Problem(p.mesh, Chaboche(), p.dirichlet, p.times, name="chab")
    with pytest.raises(ValueError, match="CalculiX has no built-in Chaboche"):
        write_deck(chaboche, tmp_path / "c.inp")
    with pytest.raises(ValueError, match="element_set_prints names unknown"):
        write_deck(p, tmp_path / "x.inp", ip_output=True, element_set_prints=["NOPE"])


# ---- running ccx ---------------------------------------------------------------------------


def test_ccx_missing_names_the_package(tmp_path, monkeypatch):
    deck = write_deck(plate_problem(n=1, n_cycles=0.25, increments_per_cycle=4), tmp_path / "p.inp")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ROMDASK_CCX", raising=False)
    with pytest.raises(FileNotFoundError, match="calculix-ccx"):
        run_ccx(deck)


@needs_ccx
def test_run_ccx_error_quotes_calculix(tmp_path):
    deck = write_deck(plate_problem(n=1, n_cycles=0.25, increments_per_cycle=4), tmp_path / "p.inp")
    deck.write_text(deck.read_text().replace("MATERIAL=M1", "MATERIAL=NOSUCH"))
    with pytest.raises(CalculixError) as err:
        run_ccx(deck, timeout=60)
    msg = str(err.value)
    assert "*ERROR" in msg and "NOSUCH" in msg.upper() and str(tmp_path / "p.log") in msg
    assert err.value.log.is_file()


@needs_ccx
def test_run_ccx_divergence_is_an_error(tmp_path):
    """Fixed increments too large for the kinematic law at a reversal: ccx stops; CalculixError."""
    law = _law("kinematic")
    p = plate_problem(amplitude=0.03, n=1, element="C3D8", material=law, n_cycles=1, increments_per_cycle=4)
    with pytest.raises(CalculixError, match="diverge|increment size|ERROR"):
        solve_calculix(p, tmp_path, timeout=60)


# ---- law replay against CalculiX's integration points ---------------------------------------


@needs_ccx
@pytest.mark.parametrize("element", ["C3D8", "C3D10"])
@pytest.mark.parametrize("hardening", ["isotropic", "kinematic"])
def test_law_replay_matches_calculix(tmp_path, element, hardening):
    """From CalculiX's float64 displacements, romdask's strain + law reproduce CalculiX's
    integration-point stresses (<= 1e-3 MPa; .dat rounding 5e-5) and plastic strain (<= 1e-7)
    over one and a half cycles with two load reversals."""
    law = _law(hardening)
    p = plate_problem(amplitude=0.010, n=2, element=element, material=law, n_cycles=1.5, increments_per_cycle=24)
    res = solve_calculix(p, tmp_path, fields=("displacement", "stress", "state"), timeout=120)
    assert res.displacement.shape == (len(p.times), p.mesh.n_dofs)
    quad = quadrature(p.mesh)
    eps = np.array([strain(quad, u) for u in res.displacement])
    stress, state, n_failed = integrate_history(law, eps, res.times)
    assert n_failed == 0
    p_ccx = res.fields["state"][..., 0]
    assert p_ccx.max() > 5e-3  # well into the plastic range, reversed plasticity included
    err_s = np.abs(stress - res.fields["stress"]).max()
    err_p = np.abs(state[..., 0] - p_ccx).max()
    print(f"{element} {hardening}: stress {err_s:.2e} MPa (peak {np.abs(stress).max():.0f}), p {err_p:.2e}")
    assert err_s <= 1e-3
    assert err_p <= 1e-7


# ---- store: run_many, reduce, CLI ------------------------------------------------------------


@needs_ccx
def test_run_many_into_store_then_reduce(tmp_path):
    from romdask.offline import reduce
    from romdask.store import SnapshotStore, open_snapshots

    problems = [plate_problem(amplitude=a, n=2, n_cycles=1, increments_per_cycle=16) for a in (0.004, 0.006)]
    names = ["amp-0.004", "amp-0.006"]
    status = run_many(problems, tmp_path / "store.zarr", tmp_path / "work", names=names, n_subdomains=2, timeout=120)
    assert sorted(status) == names and all(s["status"] == "written" for s in status.values())
    store = SnapshotStore.open(tmp_path / "store.zarr", mode="r")
    runs = store.runs(complete_only=True)
    assert sorted(runs) == names
    assert runs[names[0]]["solver"] == "calculix"
    assert runs[names[0]]["metadata"] == json.loads(json.dumps(run_metadata(problems[0])))
    ds = open_snapshots(tmp_path / "store.zarr")
    assert ds.displacement.shape == (2 * len(problems[0].times), problems[0].mesh.n_dofs)
    # the stored run is the in-memory run, node by node (store dof order: node_id, component)
    mem = solve_calculix(problems[1], tmp_path / "mem")
    sel = ds.displacement.sel(snapshot=ds.run == names[1])
    np.testing.assert_array_equal(sel.time.values, problems[1].times)
    comp = np.searchsorted(["x", "y", "z"], sel.component.values.astype(str))
    dofs = 3 * problems[1].mesh.node_index(sel.node_id.values) + comp
    np.testing.assert_array_equal(sel.values, mem.displacement[:, dofs])
    report = reduce(tmp_path / "store.zarr").report  # the law from the runs' metadata
    assert report["n_modes"] >= 1 and report["training_runs"] == names


@needs_ccx
@pytest.mark.parametrize("solver", ["calculix", "builtin"])
def test_cli_hifi(tmp_path, solver, capsys):
    from romdask.cli import main
    from romdask.store import SnapshotStore

    store = tmp_path / "store.zarr"
    rc = main(["hifi", "--solver", solver, "--problem", "plate", "--amplitudes", "0.004", "0.006",
               "--cycles", "0.5", "--nodes", "50", "--store", str(store), "--workdir", str(tmp_path / "w")])
    assert rc == 0, capsys.readouterr().err
    runs = SnapshotStore.open(store, mode="r").runs(complete_only=True)
    assert sorted(runs) == ["amp-0.004", "amp-0.006"]
    assert {r["solver"] for r in runs.values()} == ({"calculix"} if solver == "calculix" else {"romdask"})
    assert "amp-0.006" in capsys.readouterr().out
