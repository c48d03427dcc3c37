"""Benchmark: a reduced model trained on CalculiX runs against CalculiX and the built-in solver.

Usage::

    python3 benchmarks/rom_calculix.py [--nodes 10000] [--cycles 1] [--threads 2]
                                       [--solver "ITERATIVE CHOLESKY"] [--out benchmarks/rom_calculix.json]

The plate with a hole (``plate_problem(n=plate_n_for_nodes(nodes))``, 40 increments per cycle):

1. two ccx training runs at other amplitudes (``--train``, one cycle each), one after the other,
   written into a snapshot store (displacement only);
2. ``reduce`` (tol_pod = tol_ecm = 1e-6; the law is replayed on the training runs);
3. the target amplitude (``--predict``, ``--cycles``): ccx (timed, written into the same store as
   the run "reference", not trained on), the built-in solver (timed, written as "builtin") and the
   reduced model online (timed after a numba warm-up on the first increment: the median of
   ``--repeats`` solves);
4. errors in the store's order: displacement ``||U_rom - U_ccx||_F / ||U_ccx||_F``; von Mises and p
   as the largest pointwise difference over all times relative to the largest HF value (HF stress
   and p: the law replayed on ccx's displacements, which reproduces ccx's stresses to 5e-5 MPa;
   ROM: the law replayed along the reduced strain history at every point, and Gappy-POD
   (`*_gappy`)); built-in vs ccx displacement likewise;
5. a second model with ``ReduceOptions(gappy_scales=--gappy-scales)`` (the Gappy bases also from the
   training loadings times each factor, solved by the first model and replayed): its points, online
   time and Gappy-POD errors (``*_gappy_scales``); both models' Gappy-POD reconstruction of stress and
   p at every output step, timed (``gappy_fields*_s``, median of 3);
6. one more model per ``--tol-ecm-sweep`` tolerance (the same POD): its points, online time and errors
   (``ecm_sweep``); the online times of these models and of the first one measured interleaved (median of
   ``--repeats`` rounds, in each the second of two solves of a model in a row; the first one's:
   ``online_wall_interleaved_s``).

``--train-solver builtin`` trains on the built-in solver's runs instead of ccx's (the same law; at
103,761 nodes not faster: its 0.004 mm run took 11 min, its 0.008 mm run more than 39 min and 13 GB);
``--lean`` keeps the displacement error against ccx only (steps 4 and 5 skipped, step 6 without
the law replay: over a 100k-node mesh's 41 steps it is the memory peak), the figures of target 1 of
issue 13 at large N (``run.py rom_calculix_large``).

Prints one JSON dict and writes it to ``--out``. No threshold is asserted. Runs in the current
process with dask's default scheduler (no cluster is started). Temporary files go to
``--workdir`` (default: a temporary folder, removed at the end unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# benchmark the checkout, not an installed romdask (dask worker processes too)
sys.path.insert(0, str(HERE.parent))
os.environ["PYTHONPATH"] = str(HERE.parent) + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")


def interleaved(models, scenario, repeats: int) -> list[float]:
    """The online times of ``models`` measured interleaved (this shared machine's load moves a ~10 ms
    solve by up to 2x within minutes: the same minutes for every model), each the second of two
    solves in a row (the first after another model's finds its arrays out of cache): medians."""
    import numpy as np

    times = [[] for _ in models]
    for _ in range(repeats):
        for m, t in zip(models, times):
            m.solve(scenario)
            t.append(m.solve(scenario).wall_time)
    return [float(np.median(t)) for t in times]


def benchmark(args, workdir: Path) -> dict:
    import numpy as np

    from romdask.demo import compare
    from romdask.hifi import solve
    from romdask.hifi.calculix import solve_calculix
    from romdask.problem.patterns import run_metadata
    from romdask.offline import ReduceOptions, reduce
    from romdask.offline.replay import replay
    from romdask.online import ReducedModel, Scenario, open_full, reconstruct_displacement, reconstruct_dual
    from romdask.online.compare import field_errors
    from romdask.problems.plate import plate_n_for_nodes, plate_problem
    from romdask.store import create_store, open_snapshots

    n = plate_n_for_nodes(args.nodes)

    def problem(amplitude: float, cycles: float):
        return plate_problem(amplitude=amplitude, n=n, n_cycles=cycles, increments_per_cycle=args.increments)

    training = [problem(a, args.train_cycles) for a in args.train]
    target = problem(args.predict, args.cycles)
    law = target.material
    mesh = target.mesh
    store_path = workdir / "store.zarr"
    store = create_store(store_path, mesh, n_subdomains=args.subdomains)
    deck_options = {"solver": args.solver} if args.solver else {}
    figures: dict = {
        "benchmark": "rom_calculix", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
        "python": platform.python_version(), "cores": len(os.sched_getaffinity(0)),
        "nodes": mesh.n_nodes, "elements": mesh.n_elements, "dofs": mesh.n_dofs, "plate_n": n,
        "train_amplitudes": list(args.train), "train_cycles": args.train_cycles,
        "predict_amplitude": args.predict, "cycles": args.cycles, "increments": len(target.times) - 1,
        "ccx_threads": args.threads, "ccx_solver": args.solver or "SPOOLES",
    }

    def ccx(p, name: str):
        writer = store.writer(name, mesh=p.mesh, times=p.times, fields=("displacement",), solver="calculix",
                              metadata=run_metadata(p))
        return solve_calculix(p, workdir / "ccx" / name, writer=writer, threads=args.threads, **deck_options)

    # 1. training runs, one after the other: ccx (each uses --threads cores) or the built-in solver
    names = [f"train-{a:g}" for a in args.train]
    if args.train_solver == "builtin":
        solve(plate_problem(n=2, n_cycles=0.5))  # numba caches warm
        runs = [solve(p, writer=store.writer(name, mesh=p.mesh, times=p.times, fields=("displacement",),
                                             solver="romdask", metadata=run_metadata(p)))
                for p, name in zip(training, names)]
        figures.update(train_solver="builtin", builtin_training_wall_s=[r.wall_time for r in runs])
    else:
        runs = [ccx(p, name) for p, name in zip(training, names)]
        figures.update(train_solver="calculix", ccx_training_wall_s=[r.run.wall_time for r in runs])

    # 2. offline
    t0 = time.perf_counter()
    reduction = reduce(store_path, law, runs=names, options=ReduceOptions(tol_pod=args.tol_pod, tol_ecm=args.tol_ecm))
    figures["offline_s"] = time.perf_counter() - t0
    report = reduction.report
    model_path = reduction.save(workdir / "model.zarr")
    model = ReducedModel.open(model_path)
    figures.update(n_modes=model.n_modes, n_points=model.n_points, n_points_full=report["n_points_full"],
                   ecm_residual=report["ecm_residual"], gappy_ranks=report["gappy_ranks"])

    # 3. the target: ccx, built-in solver, ROM
    reference = ccx(target, "reference")
    figures.update(ccx_wall_s=reference.run.wall_time, ccx_total_s=reference.wall_time,
                   ccx_timings_s=reference.timings)
    if not args.lean:
        solve(plate_problem(n=2, n_cycles=0.5))  # numba caches warm: the figure is the solve
        builtin_writer = store.writer("builtin", mesh=mesh, times=target.times, fields=("displacement",),
                                      solver="romdask", metadata=run_metadata(target))
        builtin = solve(target, writer=builtin_writer)
        figures.update(builtin_wall_s=builtin.wall_time,
                       builtin_newton_iterations=int(np.sum(builtin.newton_iterations)))
    scenario = Scenario.from_problem(target)
    t0 = time.perf_counter()
    model.solve(Scenario(scenario.times[:2], scenario.coefficients, scenario.homogeneous))
    figures["online_warmup_s"] = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):  # a solve is ~10 ms: the median of several
        rom = model.solve(scenario)
        times.append(rom.wall_time)
    figures.update(online_wall_s=float(np.median(times)), online_wall_min_s=min(times), online_repeats=args.repeats,
                   online_iterations=int(np.sum(rom.iterations)),
                   speedup_vs_ccx=reference.run.wall_time / float(np.median(times)))
    if args.lean:  # the displacement error only (no law replay over the whole mesh)
        u_hf = open_snapshots(store_path, runs=["reference"]).displacement.values

        def error_u(path, result) -> float:
            u_rom = reconstruct_displacement(open_full(path), result).compute()
            return field_errors({"displacement": u_rom}, {"displacement": u_hf})["displacement"]

        figures["error_displacement"] = error_u(model_path, rom)
        sweep, models = [], [model]
        for tol_ecm in args.tol_ecm_sweep:  # the same POD, looser ECM tolerances: points, time, error
            t0 = time.perf_counter()
            loose = reduce(store_path, law, runs=names, options=ReduceOptions(tol_pod=args.tol_pod, tol_ecm=tol_ecm))
            offline = time.perf_counter() - t0
            loose_path = loose.save(workdir / f"model-ecm-{tol_ecm:g}.zarr")
            models.append(ReducedModel.open(loose_path))
            sweep.append({"tol_ecm": tol_ecm, "offline_s": offline, "n_points": models[-1].n_points,
                          "ecm_points": loose.report["ecm_points"], "ecm_residual": loose.report["ecm_residual"],
                          "error_displacement": error_u(loose_path, models[-1].solve(scenario))})
        times = interleaved(models, scenario, args.repeats)
        for row, t in zip(sweep, times[1:]):
            row.update(online_wall_s=t, speedup_vs_ccx=reference.run.wall_time / t)
        figures.update(tol_ecm=args.tol_ecm, ecm_points=report["ecm_points"], ecm_sweep=sweep,
                       online_wall_interleaved_s=times[0],
                       peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return figures
    figures["speedup_vs_builtin"] = builtin.wall_time / float(np.median(times))

    # 4. errors in the store's order (HF stress: the law replayed on ccx's displacements)
    t0 = time.perf_counter()
    status = replay(store_path, law, runs=["reference"])
    figures["replay_reference_s"] = time.perf_counter() - t0
    if status != {"reference": "written"}:
        raise RuntimeError(f"the law replay on the ccx reference failed: {status}")
    hf = open_snapshots(store_path, runs=["reference"])
    errors, fields = compare(open_full(model_path), rom, hf, law)
    # 5. the Gappy bases also from replayed reduced solutions (ReduceOptions.gappy_scales)
    t0 = time.perf_counter()
    scaled = reduce(store_path, law, runs=names, options=ReduceOptions(tol_pod=args.tol_pod, tol_ecm=args.tol_ecm,
                                                                       gappy_scales=tuple(args.gappy_scales)))
    figures["offline_gappy_scales_s"] = time.perf_counter() - t0
    scaled_path = scaled.save(workdir / "model-scaled.zarr")
    scaled_model = ReducedModel.open(scaled_path)
    scaled_times = []
    for _ in range(args.repeats):
        scaled_rom = scaled_model.solve(scenario)
        scaled_times.append(scaled_rom.wall_time)
    scaled_errors, _ = compare(open_full(scaled_path), scaled_rom, hf, law)
    for key, path, result in (("gappy_fields_s", model_path, rom), ("gappy_fields_gappy_scales_s", scaled_path,
                                                                      scaled_rom)):
        full = open_full(path)
        times = []
        for _ in range(3):  # every output step's stress and p, in memory; the median of 3
            t0 = time.perf_counter()
            for quantity in ("stress", "p"):
                reconstruct_dual(full, result, quantity).compute()
            times.append(time.perf_counter() - t0)
        figures[key] = float(np.median(times))
    figures.update(gappy_scales=list(args.gappy_scales), n_points_gappy_scales=scaled_model.n_points,
                   gappy_ranks_gappy_scales=scaled.report["gappy_ranks"],
                   online_wall_gappy_scales_s=float(np.median(scaled_times)),
                   error_von_mises_gappy_scales=scaled_errors["error_von_mises_gappy"],
                   error_p_gappy_scales=scaled_errors["error_p_gappy"])
    # 6. looser ECM tolerances (issue 13, targets 1 and 6): points, online time and errors
    sweep, models = [], [model]
    for tol_ecm in args.tol_ecm_sweep:
        t0 = time.perf_counter()
        loose = reduce(store_path, law, runs=names, options=ReduceOptions(tol_pod=args.tol_pod, tol_ecm=tol_ecm))
        offline = time.perf_counter() - t0
        loose_path = loose.save(workdir / f"model-ecm-{tol_ecm:g}.zarr")
        models.append(ReducedModel.open(loose_path))
        loose_errors, _ = compare(open_full(loose_path), models[-1].solve(scenario), hf, law)
        sweep.append({"tol_ecm": tol_ecm, "offline_s": offline, "n_points": models[-1].n_points,
                      "ecm_points": loose.report["ecm_points"], "ecm_residual": loose.report["ecm_residual"],
                      **{k: v for k, v in loose_errors.items() if k.startswith("error_")}})
    times = interleaved(models, scenario, args.repeats)
    for row, t in zip(sweep, times[1:]):
        row.update(online_wall_s=t, speedup_vs_ccx=reference.run.wall_time / t)
    figures.update(tol_ecm=args.tol_ecm, ecm_points=report["ecm_points"], ecm_sweep=sweep,
                   online_wall_interleaved_s=times[0])
    u_builtin = open_snapshots(store_path, runs=["builtin"]).displacement.values
    figures.update(
        errors,
        builtin_vs_ccx_displacement=float(np.linalg.norm(u_builtin - fields["u_hf"]) / np.linalg.norm(fields["u_hf"])),
        max_von_mises_mpa=errors["max_von_mises"],
        max_indicator=float(np.nanmax(rom.indicator)),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10000, help="approximate plate node count (default 10000)")
    parser.add_argument("--cycles", type=float, default=1.0, help="cycles of the compared scenario (default 1)")
    parser.add_argument("--train", type=float, nargs="+", default=[0.004, 0.008], help="training amplitudes [mm]")
    parser.add_argument("--train-cycles", type=float, default=1.0)
    parser.add_argument("--predict", type=float, default=0.006, help="amplitude of the compared scenario [mm]")
    parser.add_argument("--increments", type=int, default=40, help="increments per cycle (multiple of 4)")
    parser.add_argument("--threads", type=int, default=2, help="ccx threads (default 2)")
    parser.add_argument("--solver", default="ITERATIVE CHOLESKY",
                        help='ccx SOLVER= of the steps (default "ITERATIVE CHOLESKY"; "" for SPOOLES)')
    parser.add_argument("--subdomains", type=int, default=2, help="store subdomains (default 2)")
    parser.add_argument("--repeats", type=int, default=7, help="online solves timed (the median is reported; default 7)")
    parser.add_argument("--gappy-scales", type=float, nargs="+", default=[0.8, 1.2],
                        help="a second model's ReduceOptions.gappy_scales (default 0.8 1.2)")
    parser.add_argument("--tol-pod", type=float, default=1e-6)
    parser.add_argument("--tol-ecm", type=float, default=1e-6)
    parser.add_argument("--tol-ecm-sweep", type=float, nargs="*", default=[1e-4, 1e-3, 1e-2],
                        help="further models at these ECM tolerances (points, online time, errors)")
    parser.add_argument("--train-solver", choices=("calculix", "builtin"), default="calculix",
                        help="solver of the training runs (default calculix; builtin: romdask's, same law)")
    parser.add_argument("--lean", action="store_true",
                        help="only the ROM against ccx on the target: no built-in solve of it, displacement error "
                             "only (no law replay, no gappy_scales model; the tol_ecm sweep's points, times and "
                             "displacement errors): for large meshes")
    parser.add_argument("--workdir", type=Path, default=None, help="folder of the store and ccx runs (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--out", type=Path, default=HERE / "rom_calculix.json")
    args = parser.parse_args(argv)
    if shutil.which(os.environ.get("ROMDASK_CCX", "ccx")) is None:
        parser.error("ccx not found: install the apt package calculix-ccx or set ROMDASK_CCX")
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="rom_calculix-")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        figures = benchmark(args, workdir)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(figures, indent=1)
    print(text, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return figures


if __name__ == "__main__":
    main()
