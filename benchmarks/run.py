"""Benchmark runner: writes ``benchmarks/results.json``; ``benchmarks/table.py`` makes the docs table.

Usage::

    python benchmarks/run.py builtin_solver [--nodes 1000 10000 50000] [--cycles 1]
    python benchmarks/run.py ingest [--nodes 10000] [--runs 2]
    python benchmarks/run.py calculix_ingest [--plate-n 8 18] [--repeats 2]   (needs ccx)
    python benchmarks/run.py rom [--nodes 10000] [--cycles 3]   (romdask demo: HF vs ROM, built-in solver)
    python benchmarks/run.py rom_calculix [--nodes 10000] [--cycles 1]   (needs ccx; benchmarks/rom_calculix.py)
    python benchmarks/run.py rom_calculix_large [--nodes 105000]   (needs ccx; the same at >100k nodes, lean)
    python benchmarks/run.py cluster [--nodes 10000]   (reduce on threads / LocalCluster / SLURM jobs)
    python benchmarks/run.py own_deck   (needs ccx; a user's decks, examples/calculix-part, via the CLI)
    python benchmarks/run.py thermal [--nodes 10000] [--cycles 1]   (needs ccx; the spinning blade's decks via the CLI)
    python benchmarks/run.py local [--smoke]   (global ROM vs a dictionary of local ROMs; benchmarks/local_roms.py)
    python benchmarks/run.py adaptive [--smoke]   (error indicator, calibration, adaptive ROM; benchmarks/adaptive.py)
    python benchmarks/run.py threads [--smoke]   (the thread policy: solves quiet and beside a busy process; benchmarks/threads.py)
    python benchmarks/run.py cyclic [--nodes 4000 1100] [--cycles 100]   (needs ccx; train on one cycle, predict 100; benchmarks/cyclic.py)
    python benchmarks/run.py pod [--cells 68] [--runs 4] [--steps 96] [--repeats 2]   (~3 GB in a temp dir)
    python benchmarks/run.py ecm [--nodes 1000]          (plate store, ECM vs tolerance, global / per subdomain)
    python benchmarks/run.py scaling [--nodes 10000] [--repeats 2]   (reduce end to end, 1 vs 2 workers)
    python benchmarks/run.py driver_memory [--nodes 10000 25000 50000] [--steps 20]   (reduce's peak memory vs N)
    python benchmarks/run.py all                         (every case in turn, hours)
    python benchmarks/run.py all --smoke [--results PATH]   (every case at a tiny size: a few minutes)
    python benchmarks/run.py pod ecm --smoke             (several cases in turn)

``--results PATH`` writes elsewhere than benchmarks/results.json (the published figures). ``--smoke``
runs each case at a tiny size (``SMOKE``; sizes given on the command line win), writes to a temporary
file unless ``--results`` says where (never results.json), fails when a case gives no rows or a
non-finite figure, and renders the tables of the smoke results next to them (``.md``). With several
cases (or ``all``), the cases after a failing one still run and the exit status is 1.

Each case runs in a fresh subprocess so that its peak memory (VmHWM, see ``_own_peak_kb``) is its own; the cases on a
``LocalCluster`` start a new cluster per measured method instead of restarting the workers
(see ``_fresh_cluster``).
No wall-clock threshold is asserted anywhere: the figures are recorded, compared by ratio and
published in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
#: where ``--smoke`` writes by default (outside the checkout)
SMOKE_RESULTS = Path(tempfile.gettempdir()) / "romdask-benchmarks-smoke.json"
# benchmark the checkout, not an installed romdask (children and dask worker processes too)
sys.path.insert(0, str(HERE.parent))
os.environ["PYTHONPATH"] = str(HERE.parent) + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")


def _builtin_solver_case(nodes: int, cycles: float) -> dict:
    """Run in the child process: one plate solve, return its figures."""
    from romdask.hifi import solve
    from romdask.problems.plate import plate_n_for_nodes, plate_problem

    problem = plate_problem(n=plate_n_for_nodes(nodes), n_cycles=cycles)
    mesh = problem.mesh
    # warm the numba caches so the figure is the solve, not the compilation
    solve(plate_problem(n=2, n_cycles=0.5))
    t0 = time.perf_counter()
    result = solve(problem)
    wall = time.perf_counter() - t0
    return {
        "nodes": mesh.n_nodes,
        "elements": mesh.n_elements,
        "dofs": mesh.n_dofs,
        "increments": len(problem.times) - 1,
        "cycles": cycles,
        "newton_iterations": int(sum(result.newton_iterations)),
        "wall_s": wall,
        "factorizations": int(result.n_factorizations),
        "timings_s": result.timings,
        "peak_rss_mb": _own_peak_kb() / 1024,
    }


def run_builtin_solver(args) -> list[dict]:
    rows = []
    for nodes in args.nodes:
        cmd = [sys.executable, __file__, "_child", "builtin_solver", str(nodes), str(args.cycles)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _ingest_case(nodes: int, n_runs: int) -> dict:
    """Run in the child process: ingest solver-made runs into a snapshot store.

    One plate solve (displacement, stress, state), saved as plain .npy files (the "source");
    ``n_runs`` runs are made from it by scaling (so the bytes differ between runs). Measures a
    plain frame-by-frame read of the sources, the ingest into an lz4-compressed and an
    uncompressed store, and one full read of each store through ``open_snapshots``.
    Sources are fresh in the page cache (the figures are not disk-bound).
    """
    import os
    import shutil
    import tempfile

    import dask
    import numpy as np

    from romdask.hifi import solve
    from romdask.io.run import FieldSpec, Frame, Run
    from romdask.problems.plate import plate_n_for_nodes, plate_problem
    from romdask.store import ingest, open_snapshots

    problem = plate_problem(n=plate_n_for_nodes(nodes), n_cycles=1)
    mesh = problem.mesh
    fields = ("displacement", "stress", "state")
    t0 = time.perf_counter()
    result = solve(problem, fields=fields)
    solve_s = time.perf_counter() - t0
    n_steps = len(result.times)
    arrays = {
        "displacement": result.displacement.reshape(n_steps, -1, 3),
        "stress": result.fields["stress"],
        "state": np.nan_to_num(result.fields["state"]),  # NaN padding is not a snapshot value
    }
    specs = {
        "displacement": FieldSpec("node", ("x", "y", "z")),
        "stress": FieldSpec("ip", ("xx", "yy", "zz", "xy", "xz", "yz")),
        "state": FieldSpec("ip", tuple(f"s{i}" for i in range(arrays["state"].shape[2]))),
    }
    work = Path(tempfile.mkdtemp(prefix="romdask-bench-ingest-"))
    try:
        sources = []
        for r in range(n_runs):
            files = {}
            for name, a in arrays.items():
                files[name] = work / f"run{r}_{name}.npy"
                np.save(files[name], a * (1.0 + 0.1 * r))
            sources.append(files)
        del result, arrays
        source_bytes = sum(f.stat().st_size for files in sources for f in files.values())

        def make_run(r: int, files: dict) -> Run:
            def frames():
                maps = {k: np.load(f, mmap_mode="r") for k, f in files.items()}
                for k in range(n_steps):
                    yield Frame(k, problem.times[k], {name: np.array(m[k]) for name, m in maps.items()})

            return Run(f"run{r}", mesh, problem.times, specs, frames, solver="romdask-builtin",
                       sources=tuple(files.values()))

        t0 = time.perf_counter()
        for r, files in enumerate(sources):
            for frame in make_run(r, files).frames():
                pass
        plain_s = time.perf_counter() - t0
        row = {"nodes": mesh.n_nodes, "dofs": mesh.n_dofs, "runs": n_runs, "steps": n_steps,
               "source_mb": source_bytes / 1e6, "solve_s": solve_s, "plain_read_s": plain_s,
               "plain_read_mb_s": source_bytes / 1e6 / plain_s}
        subdomains = 4
        for label, compression in (("lz4", "lz4"), ("none", None)):
            path = work / f"{label}.zarr"
            t0 = time.perf_counter()
            ingest([make_run(r, f) for r, f in enumerate(sources)], path, n_subdomains=subdomains,
                   compression=compression)
            wall = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in (path / "runs").rglob("*") if f.is_file())
            for field in specs:
                field_bytes = sum(f.stat().st_size for f in (path / "runs").glob(f"*/{field}/**/*") if f.is_file())
                field_source = sum(files[field].stat().st_size for files in sources)
                row[f"ratio_{label}_{field}"] = field_source / field_bytes
            ds = open_snapshots(path)
            t0 = time.perf_counter()
            with dask.config.set(scheduler="threads"):
                dask.compute(*(ds[v].data.sum() for v in ds.data_vars))
            read_s = time.perf_counter() - t0
            row.update({f"ingest_{label}_s": wall, f"ingest_{label}_mb_s": source_bytes / 1e6 / wall,
                        f"store_{label}_mb": size / 1e6, f"ratio_{label}": source_bytes / size,
                        f"read_{label}_s": read_s, f"read_{label}_mb_s": source_bytes / 1e6 / read_s})
        row["subdomains"] = subdomains
        row["cores"] = len(os.sched_getaffinity(0))
        row["peak_rss_mb"] = _own_peak_kb() / 1024
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_ingest(args) -> list[dict]:
    rows = []
    for nodes in args.nodes:
        cmd = [sys.executable, __file__, "_child", "ingest", str(nodes), str(args.runs)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _ccx_plate_deck(path: Path, problem, encoding: str, solver: str = "ITERATIVE CHOLESKY") -> None:
    """The plate problem as a CalculiX deck: one *STEP per monotonic segment of the prescribed uy,
    *VISCO,DIRECT with the problem's fixed increments and a huge CETOL (/work/shared/notes/calculix.md),
    *AMPLITUDE in total time, U written to the .frd as ASCII (*NODE FILE) or float64
    (*NODE OUTPUT,DOUBLE). Same approach as tests/hifi/test_calculix_agreement.py; numbers go
    through float() (numpy 2 reprs would break the deck) and stay within 20 characters."""

    import numpy as np

    def num(x) -> str:
        return repr(float(x))

    def ids(values):
        v = [str(int(i)) for i in values]
        return [", ".join(v[i:i + 10]) for i in range(0, len(v), 10)]

    mesh, law = problem.mesh, problem.material
    lines = ["*HEADING", f"romdask benchmark: {problem.name}, {mesh.n_nodes} nodes, {encoding} .frd", "*NODE"]
    lines += [f"{i}, {x:.12e}, {y:.12e}, {z:.12e}" for i, (x, y, z) in zip(mesh.node_ids, mesh.nodes)]
    for b in mesh.blocks:
        lines.append(f"*ELEMENT, TYPE={b.type}, ELSET=EALL")
        lines += [", ".join([str(e)] + [str(mesh.node_ids[n]) for n in c]) for e, c in zip(b.ids, b.connectivity)]
    for k, bc in enumerate(problem.dirichlet):
        lines += [f"*NSET, NSET=N{k}"] + ids(mesh.node_ids[bc.nodes])
    lines += ["*MATERIAL, NAME=M", "*ELASTIC", f"{num(law.young)}, {num(law.poisson)}",
              "*PLASTIC, HARDENING=ISOTROPIC"] + [f"{num(s)}, {num(e)}" for s, e in law.plastic]
    lines += ["*CREEP, LAW=NORTON", ", ".join(num(v) for v in law.norton), "*SOLID SECTION, ELSET=EALL, MATERIAL=M"]
    *fixed, loaded = problem.dirichlet
    amp = loaded.amplitude
    lines += ["*AMPLITUDE, NAME=A, TIME=TOTAL TIME"] + [f"{num(t)}, {num(a)}" for t, a in zip(amp.times, amp.values)]
    lines += ["*BOUNDARY"] + [f"N{k}, {c + 1}, {c + 1}, 0." for k, bc in enumerate(fixed) for c in bc.components]
    times = np.asarray(problem.times, float)
    dt = float(times[1] - times[0])
    cuts = sorted({float(t) for t in amp.breakpoints() if times[0] < t < times[-1]} | {float(times[0]), float(times[-1])})
    output = {"ascii": "*NODE FILE", "float64": "*NODE OUTPUT, DOUBLE"}[encoding]
    c = loaded.components[0] + 1
    for t0, t1 in zip(cuts[:-1], cuts[1:]):
        lines += ["*STEP, INC=1000", f"*VISCO, DIRECT, CETOL=1e6, SOLVER={solver}", f"{num(dt)}, {num(t1 - t0)}",
                  "*BOUNDARY, AMPLITUDE=A", f"N{len(fixed)}, {c}, {c}, {num(loaded.value)}",
                  output, "U", "*END STEP"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def _run_ccx(directory: Path, stem: str, threads: int = 2) -> float:
    import os
    import shutil

    env = {"OMP_NUM_THREADS": str(threads), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    t0 = time.perf_counter()
    proc = subprocess.run([shutil.which("ccx") or "ccx", "-i", stem], cwd=directory, capture_output=True,
                          text=True, env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "*ERROR" in proc.stdout:
        raise RuntimeError(f"ccx failed in {directory}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall


def _calculix_ingest_case(n: int, repeats: int) -> list[dict]:
    """Run in the child process: ingest real CalculiX results (.inp + .frd) into snapshot stores.

    The quarter plate with a hole (``plate_problem(n=n, n_cycles=1)``, 40 increments, default
    viscoplastic material, cyclic prescribed uy) is solved twice by ccx (2 threads, SOLVER=ITERATIVE
    CHOLESKY): U written as an ASCII .frd and as a float64 binary .frd. For each encoding (one row),
    the sources are ``plate.inp`` + ``plate.frd`` (the nearly empty .dat is removed) and, best of
    ``repeats``, in this process:

    * raw read: ``open(f, "rb").read()`` of the source bytes (page-cache floor; the files were just
      written, so they are cached);
    * plain read: ``read_inp`` + ``read_frd`` (index) + ``FrdResults.read`` of every DISP frame,
      and ``read_calculix(...).frames()`` (the reader path used by the ingest);
    * ingest into a new store, lz4 and uncompressed, 2 and 4 subdomains; store size (whole folder,
      and the run's arrays only) vs the source size.
    """
    import os
    import shutil
    import tempfile

    from romdask.io.calculix import read_calculix, read_frd, read_inp
    from romdask.problems.plate import plate_problem
    from romdask.store import ingest

    problem = plate_problem(n=n, n_cycles=1)
    mesh = problem.mesh
    work = Path(tempfile.mkdtemp(prefix="romdask-bench-ccx-"))

    def folder_bytes(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    rows = []
    try:
        for encoding in ("ascii", "float64"):
            d = work / encoding
            d.mkdir()
            _ccx_plate_deck(d / "plate.inp", problem, encoding)
            ccx_s = _run_ccx(d, "plate")
            (d / "plate.dat").unlink(missing_ok=True)
            inp, frd = d / "plate.inp", d / "plate.frd"
            sources = [inp, frd]
            inp_b, frd_b = inp.stat().st_size, frd.stat().st_size
            src_mb = (inp_b + frd_b) / 1e6
            res = read_frd(frd)
            disp = res.select("DISP")
            n_steps = len(disp)
            payload_mb = n_steps * mesh.n_dofs * 8 / 1e6  # the displacements as raw float64

            def raw():
                for f in sources:
                    with open(f, "rb") as fh:
                        fh.read()

            def frames():
                r = read_frd(frd)
                for b in r.select("DISP"):
                    r.read(b)

            def reader():
                for _ in read_calculix(inp=inp, frd=frd).frames():
                    pass

            raw_s = best(raw)
            inp_s = best(lambda: read_inp(inp))
            index_s = best(lambda: read_frd(frd))
            frd_s = best(frames)
            reader_s = best(reader)
            plain_s = inp_s + frd_s
            row = {
                "nodes": mesh.n_nodes, "elements": mesh.n_elements, "dofs": mesh.n_dofs, "plate_n": n,
                "encoding": encoding, "frames": n_steps, "ccx_s": ccx_s, "ccx_threads": 2,
                "ccx_solver": "ITERATIVE CHOLESKY", "inp_mb": inp_b / 1e6, "frd_mb": frd_b / 1e6,
                "source_mb": src_mb, "payload_mb": payload_mb,
                "raw_read_s": raw_s, "raw_read_mb_s": src_mb / raw_s,
                "read_inp_s": inp_s, "frd_index_s": index_s, "frd_read_s": frd_s,
                "frd_read_mb_s": frd_b / 1e6 / frd_s,
                "plain_read_s": plain_s, "plain_read_mb_s": src_mb / plain_s,
                "reader_s": reader_s, "reader_mb_s": src_mb / reader_s,
            }
            for label, compression in (("lz4", "lz4"), ("none", None)):
                for k in (2, 4):
                    path = work / f"{encoding}-{label}-{k}.zarr"

                    def one():
                        shutil.rmtree(path, ignore_errors=True)
                        ingest(sources, path, n_subdomains=k, compression=compression)

                    wall = best(one)
                    store_b = folder_bytes(path)
                    run_b = folder_bytes(path / "runs")
                    key = f"{label}_k{k}"
                    row.update({f"ingest_{key}_s": wall, f"ingest_{key}_mb_s": src_mb / wall,
                                f"store_{key}_mb": store_b / 1e6, f"store_runs_{key}_mb": run_b / 1e6,
                                f"ratio_{key}": src_mb * 1e6 / store_b})
                    shutil.rmtree(path, ignore_errors=True)
            row["repeats"] = repeats
            row["cores"] = len(os.sched_getaffinity(0))
            row["peak_rss_mb"] = _own_peak_kb() / 1024
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_calculix_ingest(args) -> list[dict]:
    rows = []
    for n in args.plate_n:
        cmd = [sys.executable, __file__, "_child", "calculix_ingest", str(n), str(args.repeats)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        for row in json.loads(out.stdout.strip().splitlines()[-1]):
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


class _NullSink:
    """A ``da.store`` target that drops what it is given (a read / compute pass without a write)."""

    def __setitem__(self, key, value) -> None:
        pass


def _pod_store(path: Path, cells: int, n_runs: int, steps: int, n_modes: int, subdomains: int) -> dict:
    """Write the synthetic POD store: ``n_runs`` runs x ``steps`` frames of a displacement field
    ``sum_j a_j(t) phi_j(x) + noise`` on ``box((cells,) * 3)`` (C3D8), uncompressed, K subdomains.

    ``phi_j``: smooth products of sines over the unit cube (wave numbers 1-4 per axis, a random
    direction per mode); amplitudes ``10^(-5 j / (n_modes - 1))``; time coefficients
    ``sin(2 pi f_j t + phase_rj)`` (per run); noise 1e-9 x the leading amplitude.
    """
    import numpy as np

    from romdask.io.run import FieldSpec, Frame, Run
    from romdask.problems.meshing import box
    from romdask.store import create_store

    rng = np.random.default_rng(0)
    mesh = box((cells, cells, cells))
    x = mesh.nodes
    n_nodes = mesh.n_nodes
    waves = rng.integers(1, 5, size=(n_modes, 3))
    phases = rng.uniform(0, np.pi, size=(n_modes, 3))
    dirs = rng.standard_normal((n_modes, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    phi = np.empty((n_modes, n_nodes, 3))
    for j in range(n_modes):
        shape = np.prod(np.sin(np.pi * waves[j] * x + phases[j]), axis=1)
        phi[j] = shape[:, None] * dirs[j]
    phi = phi.reshape(n_modes, -1)
    amp = 10.0 ** (-5.0 * np.arange(n_modes) / (n_modes - 1))
    freqs = rng.uniform(0.5, 3.0, size=n_modes)
    times = np.linspace(0.0, 1.0, steps)
    spec = {"displacement": FieldSpec("node", ("x", "y", "z"))}
    store = create_store(path, mesh, n_subdomains=subdomains, compression=None)
    t0 = time.perf_counter()
    for r in range(n_runs):
        run_phase = rng.uniform(0, 2 * np.pi, size=n_modes)
        coef = amp * np.sin(2 * np.pi * freqs * times[:, None] + run_phase)  # (steps, n_modes)

        def frames(coef=coef, r=r):
            noise = np.random.default_rng(100 + r)
            for k in range(steps):
                u = coef[k] @ phi + 1e-9 * noise.standard_normal(phi.shape[1])
                yield Frame(k, times[k], {"displacement": u.reshape(n_nodes, 3)})

        store.ingest_run(Run(f"run{r}", mesh, times, spec, frames, solver="synthetic"))
    write_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in (path / "runs").rglob("*") if f.is_file())
    return {"nodes": n_nodes, "dofs": mesh.n_dofs, "runs": n_runs, "steps": steps,
            "snapshots": n_runs * steps, "synthetic_modes": n_modes, "subdomains": subdomains,
            "store_gb": size / 1e9, "payload_gb": n_runs * steps * mesh.n_dofs * 8 / 1e9,
            "write_s": write_s, "compression": None}


@contextmanager
def _fresh_cluster(n_workers: int, memory_limit: str, timings: dict | None = None):
    """A new ``LocalCluster`` (new worker processes, 1 thread each) and its ``Client``, closed on exit.

    One per measured case instead of ``client.restart()``: with distributed 2026.8, a restart that
    begins about ``distributed.deploy.lost-worker-timeout`` (15 s) after the previous one makes the
    LocalCluster close its nannies for good (the timer armed by the previous restart's worker removal
    finds the workers absent again), and the restart then waits forever for workers that never come
    back (cf. dask/distributed#8534 and #7312). Fresh processes also give each case its own peak memory.
    Start-up and shut-down are outside the timed regions (the callers time inside the block); their
    durations go to ``timings`` (``cluster_start_s``, ``cluster_close_s``) when given.
    """
    from distributed import Client, LocalCluster

    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit,
                      dashboard_address=":0", processes=True) as cluster, Client(cluster) as client:
        client.wait_for_workers(n_workers, timeout=120)
        client.run(lambda: __import__("romdask.offline") and None)
        timings["cluster_start_s"] = time.perf_counter() - t0
        yield client
        t0 = time.perf_counter()
    timings["cluster_close_s"] = time.perf_counter() - t0


def _warm_view(path: Path, row_chunks: str):
    """The displacement matrix of the store, after one tiny compute (workers' imports, zarr metadata)."""
    import romdask

    U = romdask.open_snapshots(path, row_chunks=row_chunks).displacement.data
    U[:1, :10].sum().compute()
    return U


def _own_peak_kb() -> int:
    """This process's peak resident memory in kB: ``VmHWM`` of /proc/self/status (Linux), else ``ru_maxrss``.

    Not ``ru_maxrss`` where ``VmHWM`` exists: Linux keeps ``ru_maxrss`` across fork + exec, so a
    spawned worker reports at least its parent's peak (a worker of a process that peaked at 800 MB
    says 790 MB where ``VmHWM`` says 28 MB)."""
    try:
        return _status_kb("VmHWM")
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _status_kb(key: str) -> int:
    """A memory figure of this process in kB from /proc/self/status (Linux): ``VmHWM``, ``VmRSS``."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{key}:"))


def _peak_worker_mb(client) -> float:
    """Largest peak resident memory over the client's workers (each its own, see ``_own_peak_kb``), in MB."""
    return max(client.run(_own_peak_kb).values()) / 1024


def _graph_sizes(path: Path, layout) -> dict:
    """Pickled (cloudpickle) graph bytes of the L2 Gram / strains, with the sub-meshes embedded
    (product built from the layout, as before) and read inside the tasks (from the store path)."""
    import cloudpickle

    import romdask
    from romdask.offline import gram, mass_product, strains

    def size(*arrays) -> int:
        graph = {}
        for a in arrays:
            graph.update(dict(a.__dask_graph__()))
        return len(cloudpickle.dumps(graph))

    U = romdask.open_snapshots(path, row_chunks="subdomain").displacement.data
    out = {"nodes": layout.mesh.n_nodes, "subdomains": layout.n_subdomains}
    for label, source in (("embedded", layout), ("store", str(path))):
        out[f"gram_l2_{label}"] = size(gram(U, mass_product(source)))
        out[f"strains_{label}"] = size(strains(U[:2], source))
    out["gram_euclidean"] = size(gram(U))
    return out


def _pod_case(cells: int, n_runs: int, steps: int, repeats: int) -> dict:
    """Run in the child process: POD of a several-GB store against one read pass of it.

    Builds (in a temp dir, deleted at the end) the uncompressed store of :func:`_pod_store`
    (16 subdomains), then for a ``LocalCluster`` of 2 and of 1 worker(s) (1 thread each, 3 GB
    memory limit), every figure best of ``repeats``, a new cluster (fresh worker processes, see
    :func:`_fresh_cluster`) for each method so that their peak memory (``VmHWM``) is that method's:

    * read: one pass over ``U = open_snapshots(path).displacement.data`` through dask, to a null
      ``da.store`` target (and ``U.sum()``);
    * ``pod(U, method="snapshots")``, ``pod(U, product="l2", layout=)`` (mass product built
      before, timed apart) and ``pod(U, method="tsqr")``, tol 1e-6: time to the singular values
      + lazy modes, then the time to compute the modes to a null target;
    * throughput = store payload bytes / time, and the fraction of the read pass throughput.

    Then, without a cluster, the whole matrix is loaded in this process (threads) and
    ``np.linalg.svd(X, full_matrices=False)`` is timed (BLAS free to use both cores); the singular
    values of the dask methods are compared with it.
    """
    import os
    import shutil
    import tempfile

    import dask
    import dask.array as da
    import numpy as np

    import romdask
    from romdask.offline import mass_product, pod
    from romdask.store import SnapshotStore

    work = Path(tempfile.mkdtemp(prefix="romdask-bench-pod-"))
    path = work / "pod.zarr"
    try:
        info = _pod_store(path, cells, n_runs, steps, n_modes=30, subdomains=16)
        print(json.dumps(info), file=sys.stderr, flush=True)
        nbytes = info["payload_gb"] * 1e9
        layout = SnapshotStore.open(path, mode="r").layout
        sv = {}
        rows = []

        def best(fn):
            out, times = None, []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return out, min(times)

        graph_bytes = _graph_sizes(path, layout)
        print(json.dumps(graph_bytes), file=sys.stderr, flush=True)
        cases = (("snapshots", None, "run"), ("snapshots", None, "subdomain"), ("snapshots", "l2", "subdomain"),
                 ("tsqr", None, "subdomain"))
        for n_workers in (2, 1):
            base = {"workers": n_workers, "threads_per_worker": 1, "memory_limit_gb": 3.0,
                    "load_avg": os.getloadavg()[0]}
            for chunking in ("run", "subdomain"):
                with _fresh_cluster(n_workers, "3GB", timings := {}) as client:
                    U = _warm_view(path, chunking)
                    _, read_s = best(lambda U=U: da.store(U, _NullSink(), lock=False))
                    _, sum_s = best(lambda U=U: U.sum().compute())
                    rows.append({**base, "method": "read", "product": None, "row_chunks": chunking, "time_s": read_s,
                                 "gb_s": nbytes / 1e9 / read_s, "fraction_of_read": 1.0, "sum_s": sum_s,
                                 "peak_worker_mb": _peak_worker_mb(client), "chunks": [len(c) for c in U.chunks]})
                rows[-1].update(timings)
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            for method, prod, chunking in cases:
                with _fresh_cluster(n_workers, "3GB", timings := {}) as client:
                    product = mass_product(path) if prod else None  # store references: sub-meshes read in the tasks
                    U = _warm_view(path, chunking)
                    U_read = romdask.open_snapshots(path).displacement.data
                    reads, pods, ratios = [], [], []
                    for _ in range(repeats):  # interleaved: read pass, then the method
                        t0 = time.perf_counter()
                        da.store(U_read, _NullSink(), lock=False)
                        reads.append(time.perf_counter() - t0)
                        t0 = time.perf_counter()
                        p = pod(U, method=method, product=product, tol=1e-6)
                        pods.append(time.perf_counter() - t0)
                        ratios.append(reads[-1] / pods[-1])
                    _, modes_s = best(lambda basis=p: da.store(basis.modes, _NullSink(), lock=False))
                    s = np.asarray(p.singular_values)
                    sv[(n_workers, method, prod, chunking)] = s
                    pod_s, read_s = min(pods), min(reads)
                    total = pod_s + modes_s
                    rows.append({**base, "method": method, "product": prod, "row_chunks": chunking, "time_s": pod_s,
                                 "gb_s": nbytes / 1e9 / pod_s, "read_s": read_s,
                                 "fraction_of_read": float(np.median(ratios)), "fractions": ratios,
                                 "modes_s": modes_s, "total_s": total, "total_gb_s": nbytes / 1e9 / total,
                                 "total_fraction_of_read": read_s / total, "n_modes": int(p.n_modes),
                                 "peak_worker_mb": _peak_worker_mb(client), "load_avg_after": os.getloadavg()[0]})
                    del p
                rows[-1].update(timings)
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        for r in rows:  # scaling 1 -> 2 workers
            if r["workers"] == 2:
                one = next(q for q in rows if q["workers"] == 1 and q["method"] == r["method"]
                           and q["product"] == r["product"] and q["row_chunks"] == r["row_chunks"])
                r["speedup_vs_1_worker"] = one["time_s"] / r["time_s"]
                if "total_s" in r:
                    r["total_speedup_vs_1_worker"] = one["total_s"] / r["total_s"]

        # numpy in memory
        U = romdask.open_snapshots(path).displacement.data
        t0 = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            X = np.ascontiguousarray(U.compute())
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, s_np, _ = np.linalg.svd(X, full_matrices=False)
        svd_s = time.perf_counter() - t0
        del X
        read2 = next(r for r in rows if r["workers"] == 2 and r["method"] == "read" and r["row_chunks"] == "run")
        numpy_row = {"load_s": load_s, "svd_s": svd_s, "gb_s": nbytes / 1e9 / svd_s,
                     "fraction_of_read_2_workers": read2["time_s"] / svd_s,
                     "peak_rss_mb": _own_peak_kb() / 1024}
        for r in rows:
            s = sv.get((r["workers"], r["method"], r["product"], r.get("row_chunks")))
            if s is None or r["product"] is not None:
                continue
            kept = s_np / s_np[0] > 1e-6
            n = int(kept.sum())
            rel = np.abs(s[:n] - s_np[:n]) / s_np[:n]
            r["sv_max_rel_err_kept"] = float(rel.max())
            r["sv_max_err_over_s0"] = float(np.max(np.abs(s[: len(s_np)] - s_np[: len(s)])) / s_np[0])
            r["sv_compared"] = n
            r["speedup_vs_numpy_svd"] = svd_s / r["time_s"]
        numpy_row["n_sv_above_1e-6"] = int((s_np / s_np[0] > 1e-6).sum())
        numpy_row["s_over_s0"] = [float(v) for v in (s_np / s_np[0])[[i for i in (0, 9, 19, 29, 30) if i < len(s_np)] + [-1]]]
        return {"graph_bytes": graph_bytes,
                "store": {**info, "cores": len(os.sched_getaffinity(0)), "repeats": repeats,
                          "cluster_per_method": True, "peak_memory": "VmHWM",
                          "page_cache": "store just written; 24 GB RAM, so reads come from the page cache"},
                "numpy": numpy_row, "rows": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _plate_store(path: Path, nodes: int, n_subdomains: int, amplitudes=(0.006, 0.004), cycles: float = 1,
                 increments: int = 40) -> dict:
    """Two built-in-solver runs of the quarter plate (displacement loading, ``cycles`` cycles of
    ``increments``, amplitudes 6 and 4 per mil) written to a store with K subdomains; returns figures
    + the law."""
    from romdask.hifi import solve
    from romdask.problem.patterns import describe_loads
    from romdask.problems.plate import plate_n_for_nodes, plate_problem
    from romdask.store import create_store

    fields = ("displacement", "stress", "state")
    n = plate_n_for_nodes(nodes)
    mesh = plate_problem(n=n, n_cycles=cycles).mesh
    store = create_store(path, mesh, n_subdomains=n_subdomains)
    t0 = time.perf_counter()
    for name, amplitude in zip(("a", "b"), amplitudes):
        problem = plate_problem(amplitude=amplitude, n=n, n_cycles=cycles, loading="displacement",
                                increments_per_cycle=increments)
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, fields=fields,
                              metadata={"loads": describe_loads(problem)}, allow_nan=("state",))
        solve(problem, writer=writer, fields=fields)
    layout = store.layout
    return {"nodes": mesh.n_nodes, "dofs": mesh.n_dofs, "elements": mesh.n_elements, "points": layout.n_points,
            "runs": len(amplitudes), "steps": len(problem.times), "subdomains": n_subdomains,
            "solve_and_write_s": time.perf_counter() - t0, "law": problem.material}


def _ecm_case(nodes: int, n_subdomains: int, tols=(1e-3, 1e-4, 1e-5, 1e-6)) -> dict:
    """Run in the child process: ECM time and point count vs tolerance, as ``reduce`` runs it.

    A plate store written by the built-in solver (two runs, one cycle); for every tolerance,
    integrand row design (``ecm_rows``: reduced forces and reactions summed over the Voigt
    components, or one row per component) and scope (global, per subdomain + global NNLS
    correction), one ``reduce`` with dask's threads; its report gives the ECM time (the greedy
    loop and NNLS on the compressed rows), the points and the residual on the uncompressed rows.
    """
    import shutil
    import tempfile

    import dask

    from romdask.offline import ReduceOptions, reduce

    work = Path(tempfile.mkdtemp(prefix="romdask-bench-ecm-"))
    path = work / "plate.zarr"
    try:
        info = _plate_store(path, nodes, n_subdomains)
        law = info.pop("law")
        print(json.dumps(info), file=sys.stderr, flush=True)
        rows = []
        for tol in tols:
            for ecm_rows in ("summed", "component"):
                for scope in ("global", "subdomains"):
                    t0 = time.perf_counter()
                    with dask.config.set(scheduler="threads"):
                        options = ReduceOptions(tol_ecm=tol, ecm_rows=ecm_rows, ecm_scope=scope)
                        report = reduce(path, law, options=options).report
                    rows.append({"tol": tol, "rows": report["ecm_rows"], "scope": scope,
                                 "ecm_s": report["ecm_time"], "reduce_s": time.perf_counter() - t0,
                                 "points": report["ecm_points"], "residual": report["ecm_residual"],
                                 "n_modes": report["n_modes"], "load_avg": os.getloadavg()[0],
                                 "points_per_subdomain": report["points_per_subdomain"]})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        return {"store": info, "rows": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _scaling_case(nodes: int, repeats: int) -> dict:
    """Run in the child process: the offline stage, ``romdask.offline.reduce`` end to end (POD L2,
    stress from the solver, ECM, Gappy, reduced loads) on a plate store (2 runs x 1 cycle, built-in
    solver, 4 subdomains), on a LocalCluster of 1 and of 2 workers (1 thread each); best of
    ``repeats``. Also the L2 POD alone, per-run chunks + layout vs one block per subdomain + store."""
    import shutil
    import tempfile

    from distributed import Client, LocalCluster

    import romdask
    from romdask.offline import pod
    from romdask.offline.reduce import reduce
    from romdask.store import SnapshotStore

    work = Path(tempfile.mkdtemp(prefix="romdask-bench-scaling-"))
    path = work / "plate.zarr"
    try:
        info = _plate_store(path, nodes, 4)
        law = info.pop("law")
        print(json.dumps(info), file=sys.stderr, flush=True)
        layout = SnapshotStore.open(path, mode="r").layout
        rows = []
        for n_workers in (1, 2):
            with LocalCluster(n_workers=n_workers, threads_per_worker=1, memory_limit="4GB",
                              dashboard_address=":0", processes=True) as cluster, Client(cluster) as client:
                client.run(lambda: __import__("romdask.offline") and None)
                cases = {
                    "reduce": lambda: reduce(path, law),
                    "pod l2, per-run chunks + layout": lambda: pod(
                        romdask.open_snapshots(path).displacement, product="l2", layout=layout).modes.compute(),
                    "pod l2, subdomain blocks + store": lambda: pod(
                        romdask.open_snapshots(path, row_chunks="subdomain").displacement, product="l2",
                        layout=path).modes.compute(),
                }
                for label, fn in cases.items():
                    times = []
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        out = fn()
                        times.append(time.perf_counter() - t0)
                    row = {"workers": n_workers, "case": label, "wall_s": min(times), "times": times,
                           "load_avg": os.getloadavg()[0]}
                    if label == "reduce":
                        rep = out.report  # reduce returns a Reduction (was a ReducedModel)
                        row.update({"n_modes": rep["n_modes"], "ecm_points": rep.get("ecm_points"),
                                    "n_snapshots": rep["n_snapshots"]})
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
        for r in rows:
            if r["workers"] == 2:
                one = next(q for q in rows if q["workers"] == 1 and q["case"] == r["case"])
                r["speedup_vs_1_worker"] = one["wall_s"] / r["wall_s"]
        return {"store": info, "rows": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _driver_memory_store(path: str, nodes: int, increments: int) -> dict:
    """Run in a child process: the plate store that ``_driver_memory_reduce`` reduces (4 subdomains)."""
    info = _plate_store(Path(path), nodes, 4, increments=increments)
    info.pop("law")
    return info


def _driver_memory_reduce(path: str) -> dict:
    """Run in a fresh child process: ``reduce`` on a LocalCluster of 2 worker processes (1 thread
    each, 4 GB); the driver's (this process's) peak memory (VmHWM) against its memory just before
    (the imports, the cluster started, the store opened), the workers' peaks, the arrays' sizes."""
    from distributed import Client, LocalCluster

    import romdask
    from romdask.offline import ReduceOptions, reduce
    from romdask.problems.plate import plate_problem

    law = plate_problem(n=2).material  # the plate's law at every size
    ds = romdask.open_snapshots(path)
    n_snap, n_points = ds.stress.shape[:2]
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="4GB", dashboard_address=":0",
                      processes=True) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("romdask.offline") and None)
        before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        reduction = reduce(path, law, options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
        wall = time.perf_counter() - t0
        workers_mb = _peak_worker_mb(client)
    report = reduction.report
    n_modes, ranks = report["n_modes"], report["gappy_ranks"]
    mb = 1 / 1e6
    return {"snapshots": n_snap, "points": n_points, "dofs": int(ds.displacement.shape[1]), "modes": n_modes,
            "gappy_ranks": ranks, "reduced_points": reduction.model.n_points, "reduce_s": wall,
            "rss_before_mb": before / 1024, "peak_mb": _own_peak_kb() / 1024,
            "reduce_peak_mb": (_own_peak_kb() - before) / 1024, "worker_peak_mb": workers_mb,
            "stress_snapshots_mb": 48 * n_snap * n_points * mb, "mode_strains_mb": 48 * n_modes * n_points * mb,
            "gappy_bases_mb": 8 * (6 * ranks["stress"] + ranks.get("p", 0)) * n_points * mb,
            "load_avg": os.getloadavg()[0]}


def run_driver_memory(args) -> list[dict]:
    """Issue 13, target 5: the driver's peak memory in ``reduce`` against the mesh size (plate stores of
    two built-in-solver runs, one cycle of ``--steps`` increments; store written, then reduced in a
    fresh process on a 2-worker LocalCluster)."""
    rows = []
    for nodes in args.nodes:
        with tempfile.TemporaryDirectory(prefix="romdask-bench-driver-") as tmp:
            path = str(Path(tmp) / "plate.zarr")
            out = subprocess.run([sys.executable, __file__, "_child", "driver_memory_store", str(nodes),
                                  f"{path}:{args.steps}"], check=True, stdout=subprocess.PIPE, text=True)
            store = json.loads(out.stdout.strip().splitlines()[-1])
            out = subprocess.run([sys.executable, __file__, "_child", "driver_memory_reduce", str(nodes), path],
                                 check=True, stdout=subprocess.PIPE, text=True)
            rows.append({**store, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _child_rows(name: str, nodes: int, extra: str) -> dict:
    """Run one case in a fresh child process (its own peak memory); print and return its rows."""
    cmd = [sys.executable, __file__, "_child", name, str(nodes), extra]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for row in result["rows"]:
        print(json.dumps(row), flush=True)
    return result


def run_ecm(args) -> dict:
    return _child_rows("ecm", args.nodes[0] if args.nodes else 1000, "4")


def run_scaling(args) -> dict:
    return _child_rows("scaling", args.nodes[0] if args.nodes else 10000, str(args.repeats))


def run_pod(args) -> list[dict]:
    cmd = [sys.executable, __file__, "_child", "pod", str(args.cells), f"{args.runs}:{args.steps}:{args.repeats}"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for row in result["rows"]:
        print(json.dumps(row), flush=True)
    print(json.dumps(result["numpy"]), flush=True)
    return result


def _cluster_case(nodes: int, repeats: int) -> dict:
    """Run in the child process: ``reduce`` of one plate store on dask's threads, a LocalCluster
    of 1 and 2 workers and, when a SLURM answers (``sinfo``; ``scripts/ci/slurm-up.sh`` starts
    one here), SLURMCluster with 1 and 2 single-core jobs. Times: start (until the workers are
    up), reduce, close; best of the repeats."""
    import shutil
    import tempfile

    from romdask.cluster import cluster_client
    from romdask.offline import reduce

    work = Path(tempfile.mkdtemp(prefix="romdask-bench-cluster-"))
    path = work / "plate.zarr"
    try:
        info = _plate_store(path, nodes, 4)
        law = info.pop("law")
        slurm = {"jobqueue": {"slurm": {
            "cores": 1, "processes": 1, "memory": "4GiB", "interface": "lo", "log-directory": str(work / "logs"),
            "job-script-prologue": [f"export PYTHONPATH={HERE.parent}"], "scheduler-options": {"dashboard_address": ":0"}}}}
        cases = [("threads", None, 0), ("local", {"n_workers": 1, "dashboard_address": ":0"}, 1),
                 ("local", {"n_workers": 2, "dashboard_address": ":0"}, 2)]
        if shutil.which("sinfo") and subprocess.run(["sinfo"], capture_output=True).returncode == 0:
            cases += [("slurm", {"config": slurm, "jobs": 1}, 1), ("slurm", {"config": slurm, "jobs": 2}, 2)]
        rows = []
        for spec, kwargs, workers in cases:
            best = None
            for _ in range(repeats):
                t0 = time.perf_counter()
                if spec == "threads":
                    t1 = t0
                    reduce(path, law)
                    t2 = t3 = time.perf_counter()
                else:
                    with cluster_client(spec, **kwargs) as client:
                        client.wait_for_workers(workers, timeout=300)
                        t1 = time.perf_counter()
                        reduce(path, law)
                        t2 = time.perf_counter()
                    t3 = time.perf_counter()
                row = {"scheduler": spec, "workers": workers, "start_s": t1 - t0, "reduce_s": t2 - t1,
                       "close_s": t3 - t2, "load_avg": os.getloadavg()[0]}
                best = row if best is None or row["reduce_s"] < best["reduce_s"] else best
            rows.append(best)
            print(json.dumps(best), file=sys.stderr, flush=True)
        return {"store": info, "rows": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_cluster(args) -> dict:
    return _child_rows("cluster", args.nodes[0] if args.nodes else 10000, str(args.repeats))


def _rom_case(nodes: int, cycles: float) -> dict:
    """Run in the child process: the demo pipeline (built-in solver) without plots and VTU."""
    import os
    import tempfile

    from romdask.demo import DemoSettings, run_demo

    with tempfile.TemporaryDirectory() as tmp:
        figures = run_demo(tmp, DemoSettings(nodes=nodes, cycles=cycles), plots=False, vtu=False)
    figures.pop("files")
    figures.update(cycles=cycles, load_avg=os.getloadavg()[0],
                   peak_rss_mb=_own_peak_kb() / 1024)
    return figures


def run_rom(args) -> list[dict]:
    rows = []
    for nodes in args.nodes:
        cmd = [sys.executable, __file__, "_child", "rom", str(nodes), str(args.cycles)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_rom_calculix(args, *options: str) -> list[dict]:
    """benchmarks/rom_calculix.py per mesh size (ccx training runs, reduce, ccx vs built-in vs ROM)."""
    import os
    import tempfile

    rows = []
    for nodes in args.nodes:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "figures.json"
            cmd = [sys.executable, str(HERE / "rom_calculix.py"), "--nodes", str(nodes),
                   "--cycles", str(args.cycles), "--out", str(out), *options]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            rows.append({**json.loads(out.read_text()), "load_avg": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_rom_calculix_large(args) -> list[dict]:
    """rom_calculix.py at a large mesh (issue 13, target 1 at >= 100k nodes): trained on ccx's runs,
    the ROM against ccx, displacement error only. Hours on 2 cores (three ccx runs at 103,761 nodes;
    the built-in solver is no faster there: its 0.008 mm run alone took more than 39 min): run it on
    a quiet machine."""
    return run_rom_calculix(args, "--lean")


def _run_script(script: str, args) -> dict:
    """A benchmark script run in its own process (``--smoke`` passed on), its JSON figures."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, str(HERE / script), "--out", str(out), *(["--smoke"] if args.smoke else [])]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
    for row in result["rows"]:
        print(json.dumps(row), flush=True)
    return result


def run_local(args) -> dict:
    """benchmarks/local_roms.py (its own process): a global ROM against a dictionary of local ROMs on
    the plate's two traction families; ``--smoke`` runs its tiny design."""
    return _run_script("local_roms.py", args)


def run_adaptive(args) -> dict:
    """benchmarks/adaptive.py (its own process): the error indicator against true errors, the
    calibration's coverage and the adaptive computation on the plate with a hole; ``--smoke`` runs
    its tiny design."""
    return _run_script("adaptive.py", args)


def run_threads(args) -> dict:
    """benchmarks/threads.py (its own process): online and HF solves under each thread policy, on a
    quiet machine and beside a busy process; ``--smoke`` runs its tiny design."""
    return _run_script("threads.py", args)


def run_cyclic(args) -> list[dict]:
    """benchmarks/cyclic.py, one process per solver: trained on two one-cycle runs, the reduced model
    predicts ``--cycles`` cycles of another amplitude against the HF computation of those cycles; the
    built-in solver on the plate of ``--nodes[0]`` nodes, ccx on that of ``--nodes[-1]``. The
    error-vs-cycle plot goes next to the results file (``cyclic.png``)."""
    import tempfile

    rows = []
    for solver, nodes in (("builtin", args.nodes[0]), ("calculix", args.nodes[-1])):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "figures.json"
            cmd = [sys.executable, str(HERE / "cyclic.py"), "--solver", solver, "--nodes", str(nodes),
                   "--cycles", str(int(args.cycles)), "--out", str(out), *(["--increments", "20"] if args.smoke else [])]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            rows += json.loads(out.read_text())["rows"]
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "errors"}), flush=True)
    cyclic = _load_script("cyclic.py")
    cyclic.plot(rows, args.results.parent / ("cyclic-smoke.png" if args.smoke else "cyclic.png"))
    return rows


def run_own_deck(args) -> list[dict]:
    """The CLI session of docs/own-decks.md on examples/calculix-part: each step's wall time as a
    user sees it (a fresh process each, imports and numba loading included), ccx on the new deck
    against the reduced model's online solve (warm, Python API, best of 3), and the errors of
    ``romdask compare``."""
    import shutil
    import tempfile

    example = HERE.parent / "examples" / "calculix-part"
    row: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "part"
        shutil.copytree(example, work)

        def timed(key: str, *cmd: str) -> None:
            t0 = time.perf_counter()
            _run_quiet(list(cmd), cwd=work)
            row[key] = time.perf_counter() - t0

        romdask = (sys.executable, "-m", "romdask.cli")
        for name in ("train-90", "train-130", "new-110"):
            timed(f"ccx_{name.replace('-', '_')}_s", "ccx", "-i", name)
        timed("ingest_s", *romdask, "ingest", *(f"{r}.{e}" for r in ("train-90", "train-130")
                                             for e in ("inp", "frd", "dat")), "--store", "runs.zarr")
        timed("reduce_s", *romdask, "reduce", "runs.zarr", "--out", "model.zarr")
        timed("predict_cli_s", *romdask, "predict", "model.zarr", "--deck", "new-110.inp", "--out", "p.npz")
        timed("predict_cli_full_fields_s", *romdask, "predict", "model.zarr", "--deck", "new-110.inp", "--out",
              "p.npz", "--vtu", "rom/new", "--frd", "rom.frd")
        timed("compare_s", *romdask, "compare", "model.zarr", "p.npz", "new-110.frd", "--period", "10",
              "--json", "errors.json")
        code = ("import json, sys; from romdask.io.calculix import read_problem; "
                "from romdask.online import ReducedModel, problem_scenario; "
                "m = ReducedModel.open('model.zarr'); s = problem_scenario(m, read_problem('new-110.inp')); "
                "t = [m.solve(s).wall_time for _ in range(4)]; "
                "print(json.dumps({'online_s': min(t[1:]), 'n_modes': m.n_modes, 'n_points': m.n_points}))")
        out = subprocess.run([sys.executable, "-c", code], cwd=work, check=True, stdout=subprocess.PIPE, text=True)
        row.update(json.loads(out.stdout.strip().splitlines()[-1]))
        errors = json.loads((work / "errors.json").read_text())["rows"]
    row.update(error_displacement=errors[0]["displacement"], error_von_mises=errors[0]["von_mises"],
               error_p=errors[0]["p"], max_von_mises=errors[0]["max_von_mises"], max_p=errors[0]["max_p"],
               error_von_mises_per_cycle=[r["von_mises"] for r in errors[1:]],
               speedup_vs_ccx=row["ccx_new_110_s"] / row["online_s"], load_avg=os.getloadavg()[0])
    print(json.dumps(row), flush=True)
    return [row]


#: the thermal benchmark's default training flights (peak temperature C : omega rad/s)
DEFAULT_FLIGHTS = ("925:1350", "975:1450")


def run_thermal(args) -> list[dict]:
    """The thermal reference problem (the spinning blade, tests/thermal_deck.py) at ``--nodes``
    (the blade size with at least that many nodes), through the command line as in
    tests/test_thermal_cli.py: ccx training flights (``--flights``, default 925 C / 1350 rad/s and
    975 C / 1450 rad/s, one cycle each), ingest, reduce, predict the new flight (950 C / 1400 rad/s,
    ``--cycles``) from its deck, ccx on that deck, compare. ccx: 2 threads, ITERATIVE CHOLESKY.
    Online = the reduced solve alone (Python API, warm, best of 3), in the same run as ccx on the
    same deck: the ratio is measured, not combined from two runs."""
    import shutil
    import tempfile

    sys.path.insert(0, str(HERE.parent / "tests"))
    from thermal_deck import write_blade

    from romdask.problems.thermal import blade_node_count

    target = args.nodes[0]
    size = next(n for n in range(1, 200) if blade_node_count(n) >= target)
    cycles = int(args.cycles)
    flights = args.flights or list(DEFAULT_FLIGHTS)
    training = {}
    for flight in flights:
        peak, omega = (float(v) for v in flight.split(":"))
        training[f"train-{peak:g}-{omega:g}"] = (peak, omega, 1)
    cases = {**training, "new-950": (950.0, 1400.0, cycles)}
    row: dict = {"nodes": blade_node_count(size), "blade_size": size, "cycles": cycles,
                 "increments": 40 * cycles, "training_flights": flights}
    env = {**os.environ, "OMP_NUM_THREADS": "2", "CCX_NPROC_EQUATION_SOLVER": "2"}
    work = Path(tempfile.mkdtemp(prefix="romdask-bench-thermal-"))
    try:
        write_blade(work, cases, size=size, solver="ITERATIVE CHOLESKY")

        def timed(key: str, *cmd: str) -> None:
            t0 = time.perf_counter()
            _run_quiet(list(cmd), cwd=work, env=env)
            row[key] = time.perf_counter() - t0
            print(f"{key}: {row[key]:.1f} s", file=sys.stderr, flush=True)

        romdask = (sys.executable, "-m", "romdask.cli")
        for name in cases:
            timed(f"ccx_{name.replace('-', '_')}_s", "ccx", "-i", name)
        timed("ingest_s", *romdask, "ingest", *(f"{r}.{e}" for r in training for e in ("inp", "frd", "dat")),
              "--store", "runs.zarr")
        timed("reduce_s", *romdask, "reduce", "runs.zarr", "--out", "model.zarr")
        timed("predict_cli_s", *romdask, "predict", "model.zarr", "--deck", "new-950.inp", "--out", "p.npz")
        timed("compare_s", *romdask, "compare", "model.zarr", "p.npz", "new-950.frd", "--period", "100",
              "--json", "errors.json")
        code = ("import json; from romdask.io.calculix import read_problem; "
                "from romdask.online import ReducedModel, problem_scenario; "
                "m = ReducedModel.open('model.zarr'); s = problem_scenario(m, read_problem('new-950.inp')); "
                "t = [m.solve(s).wall_time for _ in range(4)]; "
                "print(json.dumps({'online_s': min(t[1:]), 'n_modes': m.n_modes, 'n_points': m.n_points}))")
        out = subprocess.run([sys.executable, "-c", code], cwd=work, check=True, stdout=subprocess.PIPE, text=True)
        row.update(json.loads(out.stdout.strip().splitlines()[-1]))
        errors = json.loads((work / "errors.json").read_text())["rows"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    row.update(error_displacement=errors[0]["displacement"], error_von_mises=errors[0]["von_mises"],
               error_p=errors[0]["p"], max_von_mises=errors[0]["max_von_mises"], max_p=errors[0]["max_p"],
               speedup_vs_ccx=row["ccx_new_950_s"] / row["online_s"], load_avg=os.getloadavg()[0])
    print(json.dumps(row), flush=True)
    # one row per training set: keep the rows of the other sets from the results file
    results = args.results
    old = json.loads(results.read_text()).get("thermal", {}).get("rows", []) if results.exists() else []
    key = (row["nodes"], row["cycles"], tuple(flights))
    kept = [r for r in old if (r["nodes"], r["cycles"], tuple(r.get("training_flights", DEFAULT_FLIGHTS))) != key]
    return kept + [row]


def _record(results: Path, name: str, rows: list[dict] | dict, wall_s: float, smoke: bool) -> None:
    extra = {}
    if isinstance(rows, dict):  # {"rows": [...], other keys recorded next to them}
        extra = {k: v for k, v in rows.items() if k != "rows"}
        rows = rows["rows"]
    data = json.loads(results.read_text()) if results.exists() else {}
    data[name] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores",
        **({"smoke": True} if smoke else {}),
        "run_wall_s": wall_s,
        **extra,
        "rows": rows,
    }
    results.write_text(json.dumps(data, indent=1) + "\n")


def _run_quiet(cmd: list[str], **kwargs) -> None:
    """Run a command without its output; if it fails, raise with the end of its stderr."""
    proc = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}) in {kwargs.get('cwd')}:\n"
                           f"{proc.stderr[-3000:]}")


def _numbers(value, key: str = ""):
    """(key, number) for every int / float inside nested dicts and lists (bools excluded)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{key}[{i}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield key, float(value)


def check_rows(name: str, result: list[dict] | dict) -> list[str]:
    """What is wrong with a case's result: no rows, a row without figures, a non-finite figure."""
    rows = result["rows"] if isinstance(result, dict) else result
    problems = [] if rows else [f"{name}: no rows"]
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not any(True for _ in _numbers(row)):
            problems.append(f"{name}: row {i} has no figures: {row!r}")
    bad = [k for k, v in _numbers(result) if not math.isfinite(v)]
    if bad:
        problems.append(f"{name}: non-finite figures: {', '.join(bad[:10])}")
    return problems


#: The cases, in the order ``all`` runs them.
CASES = ("builtin_solver", "ingest", "calculix_ingest", "pod", "ecm", "scaling", "cluster", "rom", "rom_calculix",
         "rom_calculix_large", "own_deck", "thermal", "local", "adaptive", "threads", "cyclic", "driver_memory")

#: The sizes of the published figures (docs/benchmarks.md), per case; an option given on the command line wins.
DEFAULTS = {
    "builtin_solver": {"nodes": [1000, 10000, 50000], "cycles": 1},
    "ingest": {"nodes": [10000], "runs": 2},
    "calculix_ingest": {"plate_n": [8, 18], "repeats": 2},
    "pod": {"cells": 68, "runs": 4, "steps": 96, "repeats": 2},
    "ecm": {"nodes": [1000]},
    "scaling": {"nodes": [10000], "repeats": 2},
    "cluster": {"nodes": [10000], "repeats": 2},
    "rom": {"nodes": [10000], "cycles": 3},
    "rom_calculix": {"nodes": [10000], "cycles": 1},
    "rom_calculix_large": {"nodes": [105000], "cycles": 1},  # plate n = 40: 103,761 nodes
    "own_deck": {},
    "thermal": {"nodes": [10000], "cycles": 1},
    "local": {},  # the design is fixed in benchmarks/local_roms.py (plate n = 8, 12 training + 24 other runs)
    "adaptive": {},  # fixed in benchmarks/adaptive.py (plate n = 8, 2 training + 24 held-out runs)
    "threads": {},  # fixed in benchmarks/threads.py (plate n = 8, 4 training runs)
    "cyclic": {"nodes": [4000, 1100], "cycles": 100},  # built-in solver's plate, ccx's plate
    "driver_memory": {"nodes": [10000, 25000, 50000], "steps": 20},
}

#: ``--smoke``: every case at a tiny size, seconds to a minute each; the figures only show that the
#: case runs to the end and fills its rows (own_deck has no size: examples/calculix-part as it is).
SMOKE = {
    "builtin_solver": {"nodes": [100], "cycles": 0.5},
    "ingest": {"nodes": [100], "runs": 2},
    "calculix_ingest": {"plate_n": [3], "repeats": 1},
    "pod": {"cells": 8, "runs": 2, "steps": 24, "repeats": 1},
    "ecm": {"nodes": [100]},
    "scaling": {"nodes": [100], "repeats": 1},
    "cluster": {"nodes": [100], "repeats": 1},
    "rom": {"nodes": [100], "cycles": 1},
    "rom_calculix": {"nodes": [100], "cycles": 1},
    "rom_calculix_large": {"nodes": [100], "cycles": 1},
    "own_deck": {},
    "thermal": {"nodes": [30], "cycles": 1},
    "local": {},  # local_roms.py --smoke: n = 4, 4 training + 4 held-out runs
    "adaptive": {},  # adaptive.py --smoke: n = 4, 2 training + 5 held-out runs
    "threads": {},  # threads.py --smoke: n = 4, 20 increments, 2 repeats
    "cyclic": {"nodes": [100], "cycles": 3},  # 20 increments per cycle
    "driver_memory": {"nodes": [100, 400], "steps": 8},
}

RUNNERS = {"builtin_solver": run_builtin_solver, "ingest": run_ingest, "calculix_ingest": run_calculix_ingest,
           "pod": run_pod, "ecm": run_ecm, "scaling": run_scaling, "rom": run_rom, "rom_calculix": run_rom_calculix,
           "rom_calculix_large": run_rom_calculix_large,
           "cluster": run_cluster, "own_deck": run_own_deck, "thermal": run_thermal,
           "local": run_local, "adaptive": run_adaptive, "threads": run_threads,
           "cyclic": run_cyclic, "driver_memory": run_driver_memory}

SIZE_OPTIONS = ("nodes", "cycles", "runs", "cells", "steps", "plate_n", "repeats")


def case_args(name: str, args: argparse.Namespace) -> argparse.Namespace:
    """The options of one case: those given on the command line, else the smoke or published sizes."""
    sizes = (SMOKE if args.smoke else DEFAULTS)[name]
    out = argparse.Namespace(**vars(args))
    for option in SIZE_OPTIONS:
        if getattr(out, option) is None:
            setattr(out, option, sizes.get(option))
    return out


def _load_script(name: str):
    """A module of this folder (``table.py``, ``cyclic.py``) loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"romdask_benchmarks_{Path(name).stem}", HERE / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render_tables(results: Path) -> Path:
    """benchmarks/table.py on a results file (not docs/benchmarks.md): ``<results>.md``."""
    table = _load_script("table.py")
    out = results.with_suffix(".md")
    out.write_text(table.render(json.loads(results.read_text()), source=results))
    return out


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        _, name, nodes, extra = argv
        if name == "ingest":
            print(json.dumps(_ingest_case(int(nodes), int(extra))))
        elif name == "pod":
            runs, steps, repeats = (int(v) for v in extra.split(":"))
            print(json.dumps(_pod_case(int(nodes), runs, steps, repeats)))
        elif name == "ecm":
            print(json.dumps(_ecm_case(int(nodes), int(extra))))
        elif name == "scaling":
            print(json.dumps(_scaling_case(int(nodes), int(extra))))
        elif name == "cluster":
            print(json.dumps(_cluster_case(int(nodes), int(extra))))
        elif name == "rom":
            print(json.dumps(_rom_case(int(nodes), float(extra))))
        elif name == "driver_memory_store":
            path, increments = extra.rsplit(":", 1)
            print(json.dumps(_driver_memory_store(path, int(nodes), int(increments))))
        elif name == "driver_memory_reduce":
            print(json.dumps(_driver_memory_reduce(extra)))
        elif name == "calculix_ingest":
            print(json.dumps(_calculix_ingest_case(int(nodes), int(extra))))
        else:
            print(json.dumps({"builtin_solver": _builtin_solver_case}[name](int(nodes), float(extra))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("benchmark", nargs="+", choices=[*CASES, "all"], help="cases, or all of them, in turn")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (all cases together: a few minutes); results to --results, by default\n"
                             f"{SMOKE_RESULTS} (never {RESULTS.name}); fails if a case gives no\n"
                             "rows or a non-finite figure; the tables are rendered next to the results (.md)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file (default {RESULTS.relative_to(HERE.parent)}; with --smoke {SMOKE_RESULTS})")
    parser.add_argument("--nodes", type=int, nargs="+", default=None,
                        help="mesh sizes (builtin_solver: 1000 10000 50000; ecm: 1000; cyclic: 4000 1100 (built-in, ccx); "
                             "others: 10000)")
    parser.add_argument("--cycles", type=float, default=None, help="cycles (rom: 3; cyclic: 100; others: 1)")
    parser.add_argument("--flights", nargs="+", default=None,
                        help="thermal: training flights PEAK_C:OMEGA (default 925:1350 975:1450)")
    parser.add_argument("--runs", type=int, default=None, help="ingest: number of runs (default 2); pod: (default 4)")
    parser.add_argument("--cells", type=int, default=None,
                        help="pod: box((cells,)*3) C3D8 mesh (default 68: 328,509 nodes, 985,527 dofs)")
    parser.add_argument("--steps", type=int, default=None,
                        help="pod: frames per run (default 96); driver_memory: increments of the cycle (default 20)")
    parser.add_argument("--plate-n", type=int, nargs="+", default=None,
                        help="calculix_ingest: plate_problem n (default 8 18: 1,105 and 10,360 nodes)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="calculix_ingest, pod, scaling, cluster: timings are the best of this many (default 2)")
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = SMOKE_RESULTS if args.smoke else RESULTS
    args.results = args.results.resolve()
    if args.smoke and args.results == RESULTS.resolve():
        parser.error(f"--smoke figures are not benchmark figures: write them elsewhere than {RESULTS}")
    names = CASES if "all" in args.benchmark else tuple(dict.fromkeys(args.benchmark))
    if args.smoke and len(names) > 1:
        args.results.unlink(missing_ok=True)  # the file holds this smoke run only
    failures, summary = [], []
    for name in names:
        t0 = time.perf_counter()
        try:
            rows = RUNNERS[name](case_args(name, args))
            problems = check_rows(name, rows)
        except Exception as exc:  # reported, and the run fails at the end
            if len(names) == 1:
                raise
            problems, rows = [f"{name}: {type(exc).__name__}: {exc}"], None
        wall = time.perf_counter() - t0
        if rows is not None and not problems:
            _record(args.results, name, rows, wall, args.smoke)
        n_rows = len(rows["rows"] if isinstance(rows, dict) else rows) if rows is not None else 0
        summary.append(f"{name}: {'FAILED' if problems else 'ok'}, {n_rows} rows, {wall:.1f} s")
        print(summary[-1], file=sys.stderr, flush=True)
        failures += problems
    if len(names) > 1:
        print("\n".join(["summary:", *summary]), file=sys.stderr)
    if failures:
        raise SystemExit("benchmark failed:\n" + "\n".join(failures))
    if args.smoke:
        print(f"smoke results in {args.results}; tables in {_render_tables(args.results)}")
    else:
        print(f"results in {args.results}; run benchmarks/table.py to refresh docs/benchmarks.md")


if __name__ == "__main__":
    main()
