"""The built-in solver against the CalculiX 2.20 binary on the quarter plate with a hole.

Same mesh, same law (*PLASTIC + *CREEP,LAW=NORTON in *VISCO), same fixed increments, one
*STEP per monotonic load segment (/work/shared/notes/calculix.md, trap 3), tight CalculiX
convergence controls. Displacements come from ``*NODE PRINT`` (.dat, 7 significant digits), which
bounds the agreement to ~1e-6 of the largest displacement; the requirement is 1e-5.
"""

import shutil
import subprocess

import numpy as np
import pytest

from romdask.hifi import solve
from romdask.problems.plate import plate_problem

pytestmark = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")


def _ids(values, per_line=10):
    v = [str(int(i)) for i in values]
    return [", ".join(v[i:i + per_line]) for i in range(0, len(v), per_line)]


def write_deck(path, problem, segments, n_inc_per_time):
    mesh = problem.mesh
    law = problem.material
    lines = ["*NODE"] + [f"{i}, {x[0]:.13e}, {x[1]:.13e}, {x[2]:.13e}" for i, x in zip(mesh.node_ids, mesh.nodes)]
    for b in mesh.blocks:
        lines.append(f"*ELEMENT, TYPE={b.type}, ELSET=EALL")
        for eid, conn in zip(b.ids, b.connectivity):
            lines.append(", ".join([str(eid)] + [str(mesh.node_ids[n]) for n in conn]))
    lines += ["*NSET, NSET=NALL"] + _ids(mesh.node_ids)
    for k, bc in enumerate(problem.dirichlet):
        lines += [f"*NSET, NSET=N{k}"] + _ids(mesh.node_ids[bc.nodes])
    lines += ["*MATERIAL, NAME=M", "*ELASTIC", f"{float(law.young)!r}, {float(law.poisson)!r}", "*PLASTIC, HARDENING=ISOTROPIC"]
    lines += [f"{float(s)!r}, {float(e)!r}" for s, e in law.plastic]
    lines += ["*CREEP, LAW=NORTON", ", ".join(repr(float(v)) for v in law.norton)]
    lines += ["*SOLID SECTION, ELSET=EALL, MATERIAL=M"]
    pressure = problem.loads[0] if problem.loads else None
    fixed = problem.dirichlet if pressure is not None else problem.dirichlet[:-1]
    amp = pressure.amplitude if pressure is not None else problem.dirichlet[-1].amplitude
    lines += ["*AMPLITUDE, NAME=A, TIME=TOTAL TIME"] + [f"{float(t)!r}, {float(a)!r}" for t, a in zip(amp.times, amp.values)]
    lines += ["*BOUNDARY"] + [f"N{k}, {c + 1}, {c + 1}, 0." for k, bc in enumerate(fixed) for c in bc.components]
    eids = mesh.element_ids
    for t0, t1 in segments:
        dt = (t1 - t0) / round((t1 - t0) * n_inc_per_time)
        lines += ["*STEP, INC=1000", "*VISCO, DIRECT, CETOL=1e6", f"{dt!r}, {t1 - t0!r}",
                  "*CONTROLS, PARAMETERS=FIELD", "1e-9, 1e-9, , , 1e-9, 1e-9"]
        if pressure is None:
            loaded = problem.dirichlet[-1]
            c = loaded.components[0] + 1
            lines += ["*BOUNDARY, AMPLITUDE=A", f"N{len(problem.dirichlet) - 1}, {c}, {c}, {float(loaded.value)!r}"]
        else:
            lines += ["*DLOAD, AMPLITUDE=A"] + [f"{eids[e]}, P{f + 1}, {float(pressure.value)!r}" for e, f in pressure.faces]
        lines += ["*NODE PRINT, NSET=NALL", "U", "*END STEP"]
    path.write_text("\n".join(lines) + "\n")


def read_displacements(path):
    """{time: (n_nodes, 4) rows node id, ux, uy, uz} from the .dat file."""
    out = {}
    rows = None
    for line in path.read_text().splitlines():
        if line.strip().startswith("displacements"):
            rows = []
            out[float(line.split()[-1])] = rows
        elif line.strip() and rows is not None:
            rows.append([float(v) for v in line.split()])
        elif not line.strip() and rows:
            rows = None
    return {t: np.array(r) for t, r in out.items()}


@pytest.mark.parametrize("loading", ["displacement", "pressure"])
def test_plate_cycle_agrees_with_calculix(tmp_path, loading):
    """One cycle (40 increments, reversals at 2.5 s and 7.5 s), prescribed displacement or
    traction (Pressure on the top face: load control, also checks the pressure vector)."""
    problem = plate_problem(n=2, loading=loading)
    period = 10.0
    segments = [(0.0, 2.5), (2.5, 7.5), (7.5, 10.0)]
    write_deck(tmp_path / "plate.inp", problem, segments, 40 / period)
    run = subprocess.run(["ccx", "-i", "plate"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and "ERROR" not in run.stdout, run.stdout[-3000:]
    ccx = read_displacements(tmp_path / "plate.dat")
    res = solve(problem, fields=("displacement", "state"))
    assert res.fields["state"][:, :, 0].max() > 1e-4  # the hole yields
    times = problem.times
    assert len(ccx) == len(times) - 1
    order = np.argsort(problem.mesh.node_ids)
    scale = np.abs(res.displacement).max()
    worst = 0.0
    for k, t in enumerate(times[1:], start=1):
        t_ccx = min(ccx, key=lambda s: abs(s - t))
        assert abs(t_ccx - t) < 1e-6
        rows = ccx[t_ccx]
        np.testing.assert_array_equal(rows[:, 0], problem.mesh.node_ids[order])
        ours = res.displacement[k].reshape(-1, 3)[order]
        worst = max(worst, np.abs(rows[:, 1:] - ours).max() / scale)
    print(f"worst relative displacement difference vs ccx: {worst:.2e}")
    assert worst < 1e-5, worst
