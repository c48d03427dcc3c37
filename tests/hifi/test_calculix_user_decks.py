"""Users' own CalculiX decks, written BY HAND here (not by romdask's write_deck), against ccx 2.20.

(a) A C3D10 bar meshed and numbered as gmsh does (node ids shuffled with gaps, midside nodes
    before the corners; the mesh in an ``*INCLUDE``), a pressure on a named element-face
    ``*SURFACE`` under two step-time amplitudes (loading step, unloading step), a force applied
    at once in the second step, CalculiX's viscoplastic law (``*PLASTIC`` + ``*CREEP,LAW=NORTON``
    in ``*VISCO``), fixed increments.
(b) A C3D20R cantilever numbered by another pre-processor (corners after the midside nodes,
    ids with gaps), ``*BOUNDARY`` on single nodes, ``*CLOAD`` on a node set, rate-independent
    plasticity in ``*STATIC`` steps with AUTOMATIC increments: romdask solves on the .frd's times.

For each: ccx runs the deck; ``read_problem`` + the built-in solver solve the same problem; the
displacements agree (tight ``*CONTROLS`` in the decks, as in docs/calculix.md). Then
``romdask ingest`` (a subprocess: a METIS crash cannot kill pytest) stores the run with its
load patterns and law, which rebuild the deck's patterns (``loads_from_description``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from romdask.hifi import solve
from romdask.hifi.calculix import run_ccx
from romdask.io.calculix import read_calculix, read_problem
from romdask.problem.patterns import describe_loads, loads_from_description
from romdask.problems.meshing import box
from romdask.store import SnapshotStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from numbering import gmsh_like  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx (apt package calculix-ccx) not installed")

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = "*CONTROLS, PARAMETERS=FIELD\n1e-9, 1e-9, , , 1e-9, 1e-9\n"


def _mesh_lines(mesh, etype: str, elset: str) -> list[str]:
    """*NODE / *ELEMENT lines as pre-processors write them: 10 node ids a line at most (an
    element runs over several lines, each but the last ending with a comma)."""
    lines = ["*NODE"] + [f"{i}, {x!r}, {y!r}, {z!r}" for i, (x, y, z) in zip(mesh.node_ids, mesh.nodes.tolist())]
    lines.append(f"*ELEMENT, TYPE={etype}, ELSET={elset}")
    for b in mesh.blocks:
        for eid, row in zip(b.ids, mesh.node_ids[b.connectivity]):
            items = [str(eid)] + [str(n) for n in row]
            chunks = [items[i : i + 10] for i in range(0, len(items), 10)]
            lines += [", ".join(c) + ("," if k < len(chunks) - 1 else "") for k, c in enumerate(chunks)]
    return lines


def _ingest_cli(tmp_path: Path, sources: list[Path], *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    store = tmp_path / "store.zarr"
    return subprocess.run([sys.executable, "-m", "romdask.cli", "ingest", *map(str, sources), "--store", str(store),
                           *extra], capture_output=True, text=True, timeout=300, env=env)


def _same_patterns(stored: dict, problem) -> None:
    """The stored description is the deck's, and rebuilds the same patterns on the run mesh."""
    assert json.dumps(stored, sort_keys=True) == json.dumps(json.loads(json.dumps(describe_loads(problem))),
                                                           sort_keys=True)
    dirichlet, loads = loads_from_description(problem.mesh, stored)
    for got, want in zip(dirichlet + loads, problem.dirichlet + problem.loads):
        assert got.name == want.name and got.value == want.value
        for t in problem.times:
            assert got.scale(t) == want.scale(t)


# ---- (a) gmsh-like C3D10, named-surface pressure, two amplitudes, include, *VISCO -------------


def _c3d10_deck(folder: Path) -> Path:
    mesh = gmsh_like(box((4, 2, 2), lengths=(40.0, 10.0, 10.0), element="C3D10"), seed=3, n_unused=0)
    faces = mesh.surfaces["xmax"]
    element_ids = mesh.element_ids
    (folder / "mesh").mkdir()
    (folder / "mesh" / "bar.msh.inp").write_text("\n".join(
        ["** written by a mesher: midside nodes first, shuffled, ids with gaps"] + _mesh_lines(mesh, "C3D10", "Volume1")
        + ["*NSET, NSET=Fixed"] + [f"{i}," for i in mesh.node_ids[mesh.node_sets["xmin"]]]
        + ["*NSET, NSET=Tip"] + [f"{i}," for i in mesh.node_ids[mesh.node_sets["xmax"]]]
        + ["*Surface, Name=Load, Type=Element"] + [f"{element_ids[e]}, S{f + 1}" for e, f in faces]) + "\n")
    deck = folder / "bar_p0.05.inp"
    deck.write_text(f"""*Heading
 gmsh-like C3D10 bar, pressure on a named surface
*Include, input=mesh/bar.msh.inp
*Material, name=Steel
*Elastic
200000., 0.3
*Plastic, Hardening=Isotropic
200., 0.
260., 0.005
300., 0.02
*Creep, Law=Norton
1e-10, 4., 0.
*Solid Section, Elset=Volume1, Material=Steel
*Amplitude, name=Up
0., 0., 1., 1.
*Amplitude, name=Down
0., 1., 2., -0.25
*Boundary
Fixed, 1, 3
*Step, inc=1000
*Visco, direct, cetol=1e6
0.125, 1.
*Dsload, amplitude=Up
Load, P, -290.
{CONTROLS}*Node output, double
U
*End step
*Step, inc=1000
*Visco, direct, cetol=1e6
0.25, 2.
*Dsload, amplitude=Down
Load, P, -290.
*Cload
Tip, 2, 2.
{CONTROLS}*Node output, double
U
*End step
""")
    return deck


def test_gmsh_c3d10_surface_pressure_visco(tmp_path):
    start = time.perf_counter()
    deck = _c3d10_deck(tmp_path)
    run_ccx(deck, timeout=120)
    ccx = read_calculix(deck)
    assert ccx.name == "bar_p0.05" and "problem_error" not in ccx.metadata
    problem = read_problem(deck)
    np.testing.assert_allclose(problem.times[1:], ccx.times, rtol=1e-6)
    res = solve(problem, fields=("displacement", "state"))
    assert res.fields["state"][:, :, 0].max() > 1e-3  # well into the plastic range
    u_ccx = np.array([f.data["displacement"] for f in ccx.frames()]).reshape(len(ccx.times), -1)
    u = res.displacement[1:]
    worst = np.abs(u - u_ccx).max() / np.abs(u_ccx).max()
    print(f"(a) C3D10 gmsh-like, *VISCO: worst relative displacement difference vs ccx {worst:.2e}")
    assert worst < 1e-7, worst
    # romdask ingest (a subprocess; the default subdomains, then a store split in 3)
    proc = _ingest_cli(tmp_path, [deck, deck.with_suffix(".frd")], "--subdomains", "3")
    assert proc.returncode == 0, f"romdask ingest exited with {proc.returncode}:\n{proc.stderr}"
    store = SnapshotStore.open(tmp_path / "store.zarr", mode="r")
    assert store.n_subdomains == 3
    meta = store.runs()["bar_p0.05"]["metadata"]
    assert meta["material"]["type"] == "CalculixViscoplastic"
    _same_patterns(meta["loads"], problem)
    print(f"(a) wall time {time.perf_counter() - start:.1f} s")


# ---- (b) C3D20R cantilever, *BOUNDARY on single nodes, *CLOAD on a set, automatic increments ----


def _c3d20r_deck(folder: Path) -> Path:
    mesh = gmsh_like(box((6, 2, 2), lengths=(60.0, 10.0, 10.0), element="C3D20R"), seed=11, n_unused=0)
    clamp = mesh.node_ids[mesh.node_sets["xmin"]]
    boundary = []
    for k, node in enumerate(clamp):  # the forms users write, node by node
        boundary += [f"{node}, 1, 3"] if k % 2 else [f"{node}, 1", f"{node}, 2, 2", f"{node}, 3, 3, 0."]
    deck = folder / "beam.inp"
    deck.write_text("\n".join(
        ["*HEADING", "C3D20R cantilever, other pre-processor"] + _mesh_lines(mesh, "C3D20R", "EALL")
        + ["*NSET, NSET=TIP"] + [", ".join(map(str, mesh.node_ids[mesh.node_sets["xmax"]][i : i + 8])) + ","
                                 for i in range(0, len(mesh.node_sets["xmax"]), 8)]
        + ["*MATERIAL, NAME=STEEL", "*ELASTIC", "200000., 0.3", "*PLASTIC", "200., 0.", "250., 0.01",
           "300., 0.1", "*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL", "*BOUNDARY"] + boundary) + f"""
*STEP, INC=200
*STATIC
0.3, 1., 1e-5, 0.5
*CLOAD
TIP, 2, -50.
{CONTROLS}*NODE OUTPUT, DOUBLE
U
*END STEP
*STEP, INC=200
*STATIC
0.25, 1.
*CLOAD
TIP, 2, 0.
{CONTROLS}*NODE OUTPUT, DOUBLE
U
*END STEP
""")
    return deck


def test_c3d20r_cload_automatic_increments(tmp_path):
    start = time.perf_counter()
    deck = _c3d20r_deck(tmp_path)
    run_ccx(deck, timeout=120)
    ccx = read_calculix(deck)
    with pytest.raises(ValueError, match="not a whole number of increments"):
        read_problem(deck)  # automatic increments: the times are the .frd's
    problem = read_problem(deck, times=ccx.times)
    (clamp,) = problem.dirichlet  # the nodes of one *BOUNDARY card, line by line: one pattern
    assert clamp.components == (0, 1, 2) and len(clamp.nodes) == np.sum(problem.mesh.nodes[:, 0] == 0.0)
    np.testing.assert_array_equal(problem.times[1:], ccx.times)
    res = solve(problem, fields=("displacement", "state"))
    assert res.fields["state"][:, :, 0].max() > 1e-3
    u_ccx = np.array([f.data["displacement"] for f in ccx.frames()]).reshape(len(ccx.times), -1)
    u = res.displacement[1:]
    worst = np.abs(u - u_ccx).max() / np.abs(u_ccx).max()
    print(f"(b) C3D20R, *STATIC automatic increments (times {np.round(ccx.times, 4).tolist()}): worst relative "
          f"displacement difference vs ccx {worst:.2e}")
    assert worst < 1e-7, worst
    proc = _ingest_cli(tmp_path, [deck.with_suffix(".frd"), deck])
    assert proc.returncode == 0, f"romdask ingest exited with {proc.returncode}:\n{proc.stderr}"
    store = SnapshotStore.open(tmp_path / "store.zarr", mode="r")
    assert store.n_subdomains == 1  # default_subdomains of a small mesh
    meta = store.runs()["beam"]["metadata"]
    assert meta["material"]["parameters"]["norton"] is None
    _same_patterns(meta["loads"], problem)
    # what the user could not do: reduce an ingested CalculiX run from the command line
    proc = subprocess.run([sys.executable, "-m", "romdask.cli", "reduce", str(tmp_path / "store.zarr"), "--out",
                           str(tmp_path / "model.zarr")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "trained on 1 run(s)" in proc.stdout
    print(f"(b) wall time {time.perf_counter() - start:.1f} s")
