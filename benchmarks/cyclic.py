"""Benchmark: cyclic extrapolation (issue 13, target 7), the method's headline use.

Usage::

    python3 benchmarks/cyclic.py [--solver builtin|calculix] [--nodes 4000] [--cycles 100]
                                 [--smoke] [--out figures.json] [--plot errors.png] [--workdir DIR] [--keep]

The plate with a hole (``plate_problem``, 40 increments per cycle), prescribed displacement:

1. training: two high-fidelity runs of ONE cycle at 0.004 and 0.008 mm (built-in solver, one after
   the other; or ccx, ``SOLVER=ITERATIVE CHOLESKY``: side by side with one thread each, as a
   cluster runs independent runs, or with ``--sequential-training`` one after the other with 2
   threads), written into a snapshot store (displacement only);
2. offline: ``reduce`` (tol_pod = 1e-6, tol_ecm = ``--tol-ecm`` (1e-6), the law replayed on the training runs, dask's
   threads in this process) and ``save``;
3. online: the reduced model predicts ``--cycles`` cycles at 0.006 mm (an amplitude it was not
   trained on), timed after a warm-up solve of two increments (also reported);
4. reference: the same ``--cycles`` cycles by the high-fidelity solver (timed: the built-in
   solver's wall, ccx's own run without deck writing and result reading).

Errors, per sampled cycle (1, 2, 3, 5, 10, 20, 50, 100 and the last; every increment of that
cycle, the store's order): displacement ``||U_rom - U_hf||_F / ||U_hf||_F``; von Mises and p as the
largest pointwise difference over the cycle relative to the largest HF value of that cycle. HF
stress and p: the built-in solver's own fields; for ccx, the law replayed along ccx's
displacements (it reproduces ccx's stresses to 5e-5 MPa, docs/calculix.md). ROM: the law replayed
along the reduced strain history at every point (``replay_law``) and Gappy-POD (``*_gappy``).

Ratios: ``hf_s`` (the reference) over the end-to-end reduced computation ``train_hf_s + offline_s
+ online_warmup_s + online_s`` (ccx's training runs with their deck writing and result reading);
with full fields, plus the Gappy reconstruction of the last cycle or plus the law replay over every
cycle. Prints one JSON dict (``{"rows": [...]}``), writes it to ``--out`` and the error-vs-cycle
plot to ``--plot``. ``--smoke``: 3 cycles of a tiny plate. No threshold is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# benchmark the checkout, not an installed romdask (dask worker processes too)
sys.path.insert(0, str(HERE.parent))
os.environ["PYTHONPATH"] = str(HERE.parent) + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")

#: cycles whose every increment is compared (those within the run, and always the last one)
SAMPLED = (1, 2, 3, 5, 10, 20, 50, 100)
TRAIN, PREDICT = (0.004, 0.008), 0.006


class SampledWriter:
    """Forwards the output steps in ``steps`` (sorted) to ``inner`` (a store writer made with
    their times): the reference keeps the compared cycles only."""

    def __init__(self, inner, steps: np.ndarray) -> None:
        self.inner, self.steps = inner, set(int(s) for s in steps)

    def write(self, step: int, t: float, fields) -> None:
        if step in self.steps:
            self.inner.write(step, t, fields)

    def close(self):
        return self.inner.close()


def cycle_steps(cycle: int, increments: int) -> np.ndarray:
    """Output steps of cycle ``cycle`` (1-based): its ``increments`` ends of increment."""
    return np.arange((cycle - 1) * increments + 1, cycle * increments + 1)


def benchmark(args, workdir: Path) -> dict:
    from romdask.hifi import solve
    from romdask.hifi.calculix import solve_calculix
    from romdask.materials.base import von_mises
    from romdask.offline import ReduceOptions, reduce
    from romdask.offline.replay import replay
    from romdask.online import ReducedModel, Scenario, open_full, reconstruct_displacement, reconstruct_dual, replay_law
    from romdask.online.compare import field_errors
    from romdask.problem.patterns import run_metadata
    from romdask.problems.plate import plate_n_for_nodes, plate_problem
    from romdask.store import create_store, open_snapshots

    n, inc = plate_n_for_nodes(args.nodes), args.increments

    def problem(amplitude: float, cycles: float):
        return plate_problem(amplitude=amplitude, n=n, n_cycles=cycles, increments_per_cycle=inc)

    target = problem(PREDICT, args.cycles)
    mesh, law = target.mesh, target.material
    sampled = sorted({c for c in SAMPLED if c <= args.cycles} | {args.cycles})
    steps = np.concatenate([cycle_steps(c, inc) for c in sampled])
    store_path = workdir / "store.zarr"
    store = create_store(store_path, mesh, n_subdomains=2)
    row: dict = {
        "benchmark": "cyclic", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
        "python": platform.python_version(), "cores": len(os.sched_getaffinity(0)), "solver": args.solver,
        "nodes": mesh.n_nodes, "elements": mesh.n_elements, "dofs": mesh.n_dofs, "plate_n": n,
        "train_amplitudes": list(TRAIN), "train_cycles": 1, "predict_amplitude": PREDICT, "cycles": args.cycles,
        "increments": len(target.times) - 1, "sampled_cycles": sampled,
    }

    def writer(name, p, fields=("displacement",), times=None):
        return store.writer(name, mesh=p.mesh, times=p.times if times is None else times, fields=fields,
                            solver=args.solver, metadata=run_metadata(p), allow_nan=("state",))

    def hf(p, name: str, reference: bool = False, threads: int = 2) -> float:
        """One high-fidelity run into the store, its time: a training run as a user pays it (ccx:
        with the deck writing and the result reading), the reference as the solver's own run; the
        built-in solver's reference keeps its own stress and state, at the sampled steps only."""
        if args.solver == "calculix":
            result = solve_calculix(p, workdir / "ccx" / name, writer=writer(name, p), threads=threads,
                                    solver="ITERATIVE CHOLESKY")
            return result.run.wall_time if reference else result.wall_time
        if not reference:
            return solve(p, writer=writer(name, p)).wall_time
        fields = ("displacement", "stress", "state")
        return solve(p, writer=SampledWriter(writer(name, p, fields, p.times[steps]), steps), fields=fields).wall_time

    solve(plate_problem(n=2, n_cycles=0.5))  # numba caches warm: the figures are the solves
    names = [f"train-{a:g}" for a in TRAIN]
    side_by_side = args.solver == "calculix" and not args.sequential_training
    t0 = time.perf_counter()
    if side_by_side:  # independent runs, one ccx thread each (the store takes concurrent writers)
        with ThreadPoolExecutor(len(TRAIN)) as pool:
            row["train_hf_run_s"] = list(pool.map(lambda a, name: hf(problem(a, 1), name, threads=1), TRAIN, names))
    else:
        row["train_hf_run_s"] = [hf(problem(a, 1), name) for a, name in zip(TRAIN, names)]
    row.update(train_hf_s=time.perf_counter() - t0, train_side_by_side=side_by_side)

    t0 = time.perf_counter()
    reduction = reduce(store_path, law, runs=names, options=ReduceOptions(tol_pod=1e-6, tol_ecm=args.tol_ecm))
    model_path = reduction.save(workdir / "model.zarr")
    row["offline_s"] = time.perf_counter() - t0
    model = ReducedModel.open(model_path)
    row.update(n_modes=model.n_modes, n_points=model.n_points, n_points_full=reduction.report["n_points_full"])

    scenario = Scenario.from_problem(target)
    t0 = time.perf_counter()
    model.solve(Scenario(scenario.times[:3], scenario.coefficients, scenario.homogeneous))
    row["online_warmup_s"] = time.perf_counter() - t0
    rom = model.solve(scenario)
    row.update(online_s=rom.wall_time, online_iterations=int(np.sum(rom.iterations)),
               online_cuts=int(np.sum(rom.cuts)))

    # full fields: Gappy-POD of the last cycle, the law replayed over every cycle (the sampled kept)
    full = open_full(model_path)
    last = cycle_steps(args.cycles, inc)
    t0 = time.perf_counter()
    for a in (reconstruct_displacement(full, rom, last), reconstruct_dual(full, rom, "stress", last),
              reconstruct_dual(full, rom, "p", last)):
        a.compute()
    row["fields_gappy_last_cycle_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    replayed = replay_law(full, rom, law, steps=steps)
    row["fields_replay_s"] = time.perf_counter() - t0

    # the reference (ccx: all its steps, the law replayed along them; built-in: the sampled
    # steps with its own stress and state), then the errors per sampled cycle
    row["hf_s"] = hf(target, "reference", reference=True)
    reference = open_snapshots(store_path, runs=["reference"])
    if args.solver == "calculix":
        lazy = replay(store_path, law, runs=["reference"], write=False)["reference"]
        hf_u, hf_stress, hf_p = (reference.displacement.values[steps], np.asarray(lazy["stress"][steps]),
                                 np.asarray(lazy["state"][steps])[..., 0])
    else:
        hf_u, hf_stress, hf_p = (reference.displacement.values, reference.stress.values,
                                 reference.state.values[..., 0])
    u_rom = np.asarray(reconstruct_displacement(full, rom, steps))
    gappy = {"von_mises": von_mises(np.asarray(reconstruct_dual(full, rom, "stress", steps))),
             "p": np.asarray(reconstruct_dual(full, rom, "p", steps))}
    by_cycle = []
    for i, cycle in enumerate(sampled):
        at = slice(i * inc, (i + 1) * inc)
        ref = {"displacement": hf_u[at], "von_mises": von_mises(hf_stress[at]), "p": hf_p[at]}
        by_replay = field_errors({"displacement": u_rom[at], "von_mises": von_mises(replayed["stress"][at]),
                                  "p": replayed["p"][at]}, ref)
        by_gappy = field_errors({name: a[at] for name, a in gappy.items()}, ref)
        by_cycle.append({"cycle": cycle, "displacement": by_replay["displacement"],
                         "von_mises": by_replay["von_mises"], "p": by_replay["p"],
                         "von_mises_gappy": by_gappy["von_mises"], "p_gappy": by_gappy["p"],
                         "max_von_mises": by_replay["max_von_mises"], "max_p": by_replay["max_p"]})
    end_to_end = row["train_hf_s"] + row["offline_s"] + row["online_warmup_s"] + row["online_s"]
    row.update(
        errors=by_cycle, **{f"last_{k}": v for k, v in by_cycle[-1].items() if k != "cycle"},
        end_to_end_s=end_to_end, speedup_end_to_end=row["hf_s"] / end_to_end,
        speedup_end_to_end_gappy=row["hf_s"] / (end_to_end + row["fields_gappy_last_cycle_s"]),
        speedup_end_to_end_replay=row["hf_s"] / (end_to_end + row["fields_replay_s"]),
        speedup_online=row["hf_s"] / row["online_s"], hf_cycle_s=row["hf_s"] / args.cycles,
        load_avg=os.getloadavg()[0],
    )
    return row


def plot(rows: list[dict], path: Path) -> None:
    """Error vs cycle, one panel per solver (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(5.5 * len(rows), 4), squeeze=False)
    for ax, row in zip(axes[0], rows):
        cycles = [e["cycle"] for e in row["errors"]]
        for key, label in (("von_mises", "von Mises (law replay)"), ("von_mises_gappy", "von Mises (Gappy-POD)"),
                           ("p", "p (law replay)"), ("p_gappy", "p (Gappy-POD)"), ("displacement", "displacement")):
            ax.loglog(cycles, [max(e[key], 1e-12) for e in row["errors"]], "o-", label=label)
        ax.axhline(0.02, color="k", lw=0.8, ls="--", label="2 % (issue 13)")
        ax.set(xlabel="cycle", ylabel="relative error", title=f"{row['solver']}, {row['nodes']:,} nodes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--solver", choices=("builtin", "calculix"), nargs="+", default=["builtin"])
    parser.add_argument("--nodes", type=int, default=4000, help="approximate plate node count (default 4000)")
    parser.add_argument("--cycles", type=int, default=100, help="cycles predicted (default 100)")
    parser.add_argument("--increments", type=int, default=40, help="increments per cycle (multiple of 4)")
    parser.add_argument("--tol-ecm", type=float, default=1e-6, help="reduce's ECM tolerance (default 1e-6)")
    parser.add_argument("--sequential-training", action="store_true",
                        help="ccx's training runs one after the other with 2 threads (default: side by side, 1 each)")
    parser.add_argument("--smoke", action="store_true", help="3 cycles of a ~100-node plate")
    parser.add_argument("--out", type=Path, default=None, help="write the figures (JSON) here")
    parser.add_argument("--plot", type=Path, default=None, help="write the error-vs-cycle plot (PNG) here")
    parser.add_argument("--workdir", type=Path, default=None, help="temporary files (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    args = parser.parse_args(argv)
    if args.smoke:
        args.nodes, args.cycles, args.increments = 100, 3, 20
    if "calculix" in args.solver and shutil.which(os.environ.get("ROMDASK_CCX", "ccx")) is None:
        parser.error("ccx not found: install the apt package calculix-ccx or set ROMDASK_CCX")
    rows = []
    for solver in args.solver:
        workdir = Path(tempfile.mkdtemp(prefix=f"romdask-bench-cyclic-{solver}-", dir=args.workdir))
        try:
            rows.append(benchmark(argparse.Namespace(**{**vars(args), "solver": solver}), workdir))
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "errors"}), flush=True)
    figures = {"rows": rows}
    if args.out:
        args.out.write_text(json.dumps(figures))
    if args.plot:
        plot(rows, args.plot)
    return figures


if __name__ == "__main__":
    main()
