"""A small thermomechanical bar for the thermal reduced-model tests: 6 x 3 x 3 C3D8 (112 nodes),
symmetry conditions on xmin / ymin / zmin, a prescribed displacement on xmax, CalculiX's
viscoplastic law with thermal expansion, nodal temperature patterns x amplitudes.

Every run is written by the built-in solver (tight tolerance: the references are exact) into a
store with the "temperature" node field."""

from __future__ import annotations

import numpy as np

from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
from romdask.io.run import FieldSpec
from romdask.problem import Dirichlet, Problem
from romdask.problem.loads import Amplitude, Temperature
from romdask.problem.patterns import describe_loads
from romdask.problems.meshing import box
from romdask.store import create_store, open_snapshots

FIELDS = ("displacement", "stress", "state", "temperature")
_VOIGT = ("xx", "yy", "zz", "xy", "xz", "yz")
_SPECS = {"displacement": FieldSpec("node", ("x", "y", "z")), "stress": FieldSpec("ip", _VOIGT),
          "state": FieldSpec("ip", ())}
ROOM = 20.0
TIMES = np.linspace(0.0, 2.0, 13)
HEAT = Amplitude([0.0, 1.0, 2.0], [0.0, 1.0, 0.4])
PULL = Amplitude([0.0, 1.0, 2.0], [0.0, 1.0, -0.5])


def bar_mesh(element: str = "C3D8", shape=(6, 3, 3)):
    return box(shape, (6.0, 2.0, 2.0), element=element)


def bar_law():
    from romdask.materials import CalculixViscoplastic

    plastic = np.array([[200.0, 0.0], [260.0, 0.005], [300.0, 0.02], [340.0, 0.1]])
    return CalculixViscoplastic(200000.0, 0.3, plastic, hardening="isotropic", norton=(4e-11, 5.0, 0.0),
                                expansion=1.2e-5)


def gradient(mesh, dy: float, dz: float) -> np.ndarray:
    """Nodal temperature rise ``dy y / 2 + dz z / 2`` (a shape)."""
    return dy * mesh.nodes[:, 1] / 2.0 + dz * mesh.nodes[:, 2] / 2.0


def bar_problem(pull: float, dy: float, dz: float, times=TIMES, *, name: str = "bar", room: float = ROOM,
                mesh=None) -> Problem:
    """``pull`` (mm) x PULL on xmax; T = room + gradient(dy, dz) x HEAT (initial room)."""
    mesh = bar_mesh() if mesh is None else mesh
    sets = mesh.node_sets
    dirichlet = (Dirichlet(sets["xmin"], (0,), name="xsym"), Dirichlet(sets["ymin"], (1,), name="ysym"),
                 Dirichlet(sets["zmin"], (2,), name="zsym"),
                 Dirichlet(sets["xmax"], (0,), pull, PULL, name="pull"))
    nodes = np.arange(mesh.n_nodes)
    temperatures = (Temperature(nodes, room, None, name="room"),
                    Temperature(nodes, gradient(mesh, dy, dz), HEAT, name="heat"))
    return Problem(mesh, bar_law(), dirichlet, np.asarray(times), name=name, initial_temperature=room,
                   temperatures=temperatures)


#: name -> (pull, dy, dz[, times]) (write_runs also takes Problems)
RUNS = {"train_a": (0.004, 300.0, 0.0), "train_b": (-0.002, 0.0, 250.0), "train_c": (0.002, 200.0, -150.0)}


def write_runs(path, runs=RUNS, n_subdomains: int = 2, fields=FIELDS):
    problems = {name: spec if isinstance(spec, Problem) else bar_problem(*spec, name=name)
                for name, spec in runs.items()}
    first = next(iter(problems.values()))
    store = create_store(path, first.mesh, n_subdomains=n_subdomains)
    for name, pb in problems.items():
        specs = {f: FieldSpec("node", ("T",)) if f == "temperature" else _SPECS[f] for f in fields}
        writer = store.writer(name, mesh=pb.mesh, times=pb.times, fields=specs,
                              metadata={"loads": describe_loads(pb)}, allow_nan=("state",))
        solve(pb, writer=writer, fields=tuple(f for f in fields if f != "temperature"),
              options=SolverOptions(rtol=1e-12))
    return store, problems


def read_run(path, name: str, fields=FIELDS) -> dict[str, np.ndarray]:
    ds = open_snapshots(path, runs=[name])
    return {f: ds[f].values for f in fields if f in ds}
