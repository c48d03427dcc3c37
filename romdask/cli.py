"""The ``romdask`` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("romdask")


def _progress_bar(label: str):
    """A one-line text progress bar on stderr (a callback for the built-in solver)."""
    start = time.perf_counter()
    live = sys.stderr.isatty()

    def progress(step: int, n_steps: int, info: dict) -> None:
        if not live and step != n_steps:
            return
        width = 30
        done = int(width * step / max(n_steps, 1))
        elapsed = time.perf_counter() - start
        its = info.get("iterations", "")
        sys.stderr.write(
            f"\r{label} [{'#' * done}{'.' * (width - done)}] {step}/{n_steps} "
            f"t={info.get('time', 0.0):.4g} newton={its} {elapsed:6.1f}s"
        )
        if step == n_steps:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return progress


def _demo(args: argparse.Namespace) -> int:
    from romdask.demo import DemoSettings, run_demo, summary_table

    defaults = DemoSettings()
    settings = DemoSettings(
        nodes=args.nodes or defaults.nodes, train=tuple(args.train or defaults.train),
        predict=defaults.predict if args.predict is None else args.predict, cycles=args.cycles,
        workers=args.workers,
    )
    print(
        f"romdask demo: quarter plate with a hole (~{settings.nodes:,} nodes), training on "
        f"{', '.join(f'{a:g}' for a in settings.train)} mm ({settings.train_cycles:g} cycle each), "
        f"predicting {settings.predict:g} mm over {settings.cycles:g} cycles; output in {args.out}"
    )
    figures = run_demo(args.out, settings, progress=_progress_bar, plots=not args.no_plots)
    rows = summary_table(figures, settings)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    for path in figures["files"]:
        print(f"wrote {path}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from romdask.store import ingest

    try:
        status = ingest(
            args.sources,
            args.store,
            n_subdomains=args.subdomains,
            compression=None if args.no_compression else "lz4",
            overwrite=args.overwrite,
            progress=True,
        )
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as exc:
        notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", ()))
        print(f"romdask ingest: error: {exc}{notes}", file=sys.stderr)
        return 1
    for state in ("written", "skipped"):
        names = [n for n, s in status.items() if s == state]
        if names:
            print(f"{state}: {len(names)} run(s): {', '.join(names)}")
    print(f"store: {args.store}")
    return 0


def _disk_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _is_reduced_model(path: Path) -> bool:
    import json

    meta = path / "zarr.json"
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    from romdask.online.model import FORMAT

    return attrs.get("format") == FORMAT


def _model_info(path: Path) -> int:
    import json

    from romdask.online import ReducedModel

    try:
        model = ReducedModel.open(path)
    except ValueError as exc:
        print(f"romdask info: error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: reduced model, {_bytes(_disk_size(path))} on disk")
    print(json.dumps(model.info(), indent=1))
    return 0


def _info(args: argparse.Namespace) -> int:
    from collections import Counter

    import numpy as np

    from romdask.store import SnapshotStore

    path = Path(args.store)
    if _is_reduced_model(path):
        return _model_info(path)
    try:
        store = SnapshotStore.open(path, mode="r")
    except ValueError as exc:
        print(f"romdask info: error: {exc}", file=sys.stderr)
        return 1
    attrs = dict(store.root.attrs)
    lay = store.layout
    mesh = lay.mesh
    types = Counter()
    for b in mesh.blocks:
        types[b.type] += len(b)
    print(f"{path}: {attrs['format']} v{attrs['version']}, created by {attrs.get('created_by', '?')}, "
          f"compression {attrs.get('compression') or 'none'}, {_bytes(_disk_size(path))} on disk")
    print(f"mesh: {mesh.n_nodes:,} nodes, {mesh.n_elements:,} elements "
          f"({', '.join(f'{n:,} {t}' for t, n in types.items())}), {mesh.n_dofs:,} dofs, "
          f"{lay.n_points:,} integration points; {len(mesh.node_sets)} node sets, "
          f"{len(mesh.element_sets)} element sets, {len(mesh.surfaces)} surfaces")
    if attrs.get("units"):
        print(f"units: {attrs['units']}")
    dofs = np.diff(lay.dof_offsets)
    points = np.diff(lay.ip_offsets)
    print(f"subdomains: {lay.n_subdomains} (dofs min/max {dofs.min():,}/{dofs.max():,})")
    for k in range(lay.n_subdomains):
        print(f"  s{k:04d}: {dofs[k]:,} dofs, {points[k]:,} integration points")
    runs = store.runs()
    n_complete = sum(r.get("status") == "complete" for r in runs.values())
    print(f"runs: {len(runs)} ({n_complete} complete, {len(runs) - n_complete} incomplete)")
    for name, r in runs.items():
        times = r.get("times") or []
        span = f"t={times[0]:g}..{times[-1]:g}" if times else "t=?"
        steps = r.get("n_steps", "?")
        fields = ", ".join(r.get("fields", {}))
        size = _bytes(_disk_size(path / "runs" / name))
        print(f"  {name}: {r.get('status')}, {steps} steps, {span}, fields {fields}, {size}, "
              f"solver {r.get('solver', '?')} {r.get('solver_version', '')}".rstrip())
    return 0


def _law(store: str, law_file: str | None):
    """The law: from --law (a JSON file as romdask.materials.law_to_json writes) or from the
    runs' metadata["material"] (romdask.offline.training_law: they must agree)."""
    import json

    from romdask.materials import law_from_json
    from romdask.offline import training_law

    if law_file:
        try:
            return law_from_json(json.loads(Path(law_file).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--law {law_file}: cannot read the law ({exc}); give a JSON file written from "
                             "romdask.materials.law_to_json(law)") from None
    return training_law(store)


def _reduce(args: argparse.Namespace) -> int:
    from romdask.offline import ReduceOptions, reduce

    try:
        options = ReduceOptions(tol_pod=args.tol_pod, tol_ecm=args.tol_ecm)
        law = _law(args.store, args.law)
    except ValueError as exc:
        print(f"romdask reduce: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"romdask reduce: error: {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1
    from romdask.cluster import progress_bar

    try:
        with _cluster(args) as client:
            if client is not None:
                print(f"dask dashboard: {client.dashboard_link}", flush=True)
            with progress_bar(client):
                reduction = reduce(args.store, law, options=options)
    except (ValueError, FileNotFoundError, TimeoutError, ImportError) as exc:
        print(f"romdask reduce: error: {exc}", file=sys.stderr)
        return 1
    reduction.save(out, overwrite=args.overwrite)  # with the full bases and the mesh, for reconstructions
    model, report = reduction.model, reduction.report
    print(f"{out}: {report['n_modes']} modes, {model.n_points} reduced points "
          f"(ECM residual {report['ecm_residual']:.2e}), trained on {len(report['training_runs'])} run(s)")
    return 0


def _cluster(args: argparse.Namespace):
    """No --cluster: dask's local threads (yields None); else romdask.cluster.cluster_client
    ("local", "slurm", "pbs" or a scheduler address; --jobs = workers of a local cluster)."""
    if not args.cluster:
        if args.cluster_config or args.jobs is not None or args.min_jobs is not None or args.max_jobs is not None:
            raise ValueError("--cluster-config / --jobs / --min-jobs / --max-jobs need --cluster")
        return contextlib.nullcontext(None)
    from romdask.cluster import cluster_client

    local = args.cluster == "local"
    return cluster_client(args.cluster, config=args.cluster_config,
                          n_workers=args.jobs if local else None, jobs=None if local else args.jobs,
                          minimum_jobs=args.min_jobs, maximum_jobs=args.max_jobs)


def _pattern_values(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            values[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ValueError(f"--set takes NAME=VALUE (a pattern of the model and its peak value); got {item!r}")
    return values


def _predict(args: argparse.Namespace) -> int:
    """Cyclic scenario on a saved model: summary, arrays (.npz) and optionally VTU fields."""
    import numpy as np

    from romdask.problem.loads import cyclic
    from romdask.online import OnlineConvergenceError, OnlineOptions, ReducedModel, Scenario

    try:
        model = ReducedModel.open(args.model)
        values = _pattern_values(args.set)
        amplitude = cyclic(period=args.period, n_cycles=args.cycles, r_ratio=args.r_ratio)
        n_steps = max(1, round(args.increments_per_cycle * args.cycles))
        times = np.linspace(0.0, args.period * args.cycles, n_steps + 1)
        coefficients = {name: (lambda t, v=v: v * amplitude(t)) for name, v in values.items()}
        options = OnlineOptions(indicator_threshold=args.indicator_threshold)
        result = model.solve(Scenario(times, coefficients), options)
    except (ValueError, OnlineConvergenceError) as exc:
        print(f"romdask predict: error: {exc}", file=sys.stderr)
        return 1
    lifting = list(result.lifting_names)
    print(f"{args.model}: {len(times) - 1} increments over {args.cycles:g} cycle(s) of period {args.period:g} "
          f"in {result.wall_time:.3f} s ({int(result.iterations.sum())} Newton iterations, "
          f"{int(result.cuts.sum())} cuts)")
    for i, name in enumerate(lifting):
        print(f"  reaction {name}: min {result.reactions[:, i].min():.6g}, max {result.reactions[:, i].max():.6g}")
    print(f"  max von Mises at the reduced points: {result.max_von_mises.max():.6g}")
    print(f"  max error indicator: {np.nanmax(result.indicator):.3g}; {int(result.flagged.sum())} flagged step(s) "
          f"(threshold {options.indicator_threshold:g})")
    out = Path(args.out)
    np.savez(out, times=result.times, coordinates=result.coordinates, reactions=result.reactions,
             reaction_names=np.array(lifting), indicator=result.indicator, flagged=result.flagged,
             max_von_mises=result.max_von_mises, stress=result.stress, state=result.state)
    print(f"wrote {out}")
    if args.vtu:
        from romdask.io.vtu import write_vtu_series
        from romdask.online import open_full, reconstruct_displacement
        from romdask.store import SnapshotStore

        try:
            full = open_full(args.model)
            # the training store's mesh (with its sets) if given, else the one saved with the model
            mesh = SnapshotStore.open(args.store, mode="r").layout.mesh if args.store else full.mesh
            if mesh is None:
                raise ValueError("--vtu needs the mesh: the model holds none (saved without it); pass --store "
                                 "(the training store) or re-save the model with `romdask reduce`")
            u = np.asarray(reconstruct_displacement(full, result))
        except ValueError as exc:
            print(f"romdask predict: error: {exc}", file=sys.stderr)
            return 1
        pvd = write_vtu_series(args.vtu, mesh, result.times, {"displacement": u.reshape(len(result.times), -1, 3)})
        print(f"wrote {pvd}")
    return 0


def _hifi(args: argparse.Namespace) -> int:
    """Training plan (one run per amplitude) on a reference problem, solved and stored."""
    from romdask.hifi.calculix import CalculixError, run_many
    from romdask.problem.patterns import run_metadata
    from romdask.problems.plate import plate_n_for_nodes, plate_problem
    from romdask.store import SnapshotStore, create_store

    problems = [plate_problem(amplitude=a, n_cycles=args.cycles, n=plate_n_for_nodes(args.nodes))
                for a in args.amplitudes]
    names = [f"amp-{a:g}" for a in args.amplitudes]
    mesh = problems[0].mesh
    print(f"romdask hifi: {args.problem}, {mesh.n_nodes:,} nodes, {len(problems)} run(s) "
          f"({', '.join(names)}), {args.cycles:g} cycle(s), solver {args.solver}")
    start = time.perf_counter()
    try:
        if args.solver == "calculix":
            status = run_many(problems, args.store, args.workdir, names=names, threads=args.threads,
                              n_subdomains=args.subdomains, overwrite=True)
        else:
            from romdask.hifi import solve

            path = Path(args.store)
            store = (SnapshotStore.open(path) if path.exists() and any(path.iterdir())
                     else create_store(path, mesh, n_subdomains=args.subdomains))
            status = {}
            for name, problem in zip(names, problems):
                writer = store.writer(name, mesh=problem.mesh, times=problem.times, solver="romdask",
                                      metadata=run_metadata(problem), overwrite=True)
                result = solve(problem, writer=writer)
                status[name] = {"status": "written", "wall_time": result.wall_time}
    except (ValueError, FileNotFoundError, CalculixError) as exc:
        notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", ()))
        print(f"romdask hifi: error: {exc}{notes}", file=sys.stderr)
        return 1
    for name, info in status.items():
        print(f"  {name}: {info['status']}")
    print(f"store: {args.store} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="romdask", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="the whole pipeline on the plate with a hole: train (built-in solver), reduce, predict, compare",
    )
    demo.add_argument("--nodes", type=int, default=None, help="approximate mesh size (default 4000)")
    demo.add_argument("--train", type=float, nargs="+", default=None, help="training amplitudes [mm]")
    demo.add_argument("--predict", type=float, default=None, help="predicted amplitude [mm]")
    demo.add_argument("--cycles", type=float, default=3, help="cycles of the prediction (default 3)")
    demo.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    demo.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    demo.add_argument("--out", default="romdask-demo", help="output folder (default ./romdask-demo)")
    demo.set_defaults(func=_demo)

    ing = sub.add_parser(
        "ingest",
        help="ingest solver runs (CalculiX .inp/.frd/.dat, .xdmf, .pvd, Z-set .ut) into a snapshot store",
    )
    ing.add_argument("sources", nargs="+", help="result files; CalculiX files of one stem form one run")
    ing.add_argument("--store", required=True, help="snapshot store folder (created if absent)")
    ing.add_argument("--subdomains", type=int, default=None,
                     help="number of subdomains K of a new store (METIS; default: 1 below 40,000 dofs, "
                          "else one per core with >= 20,000 dofs each and <= 200,000 dofs each, see "
                          "romdask.fem.default_subdomains); omit for an existing store")
    ing.add_argument("--no-compression", action="store_true", help="store uncompressed (default: Blosc lz4)")
    ing.add_argument("--overwrite", action="store_true", help="replace complete runs whose sources changed")
    ing.set_defaults(func=_ingest)

    info = sub.add_parser("info", help="summarize a snapshot store (mesh, subdomains, runs) or a reduced model")
    info.add_argument("store", help="snapshot store or reduced-model folder")
    info.set_defaults(func=_info)

    red = sub.add_parser("reduce", help="build a reduced model from a snapshot store")
    red.add_argument("store", help="snapshot store folder")
    red.add_argument("--out", required=True, help="reduced-model folder to write")
    red.add_argument("--tol-pod", type=float, default=1e-6, help="POD truncation, relative singular value")
    red.add_argument("--tol-ecm", type=float, default=1e-5, help="ECM relative integration error")
    red.add_argument("--law", default=None, help="law as JSON (default: the runs' metadata)")
    red.add_argument("--cluster", default=None,
                     help="'local' (LocalCluster, a worker per core), 'slurm', 'pbs' (dask-jobqueue) or the "
                          "address of a running scheduler (default: dask's threads in this process)")
    red.add_argument("--cluster-config", default=None,
                     help="site settings, YAML in dask's config format (deploy/slurm/jobqueue.yaml)")
    red.add_argument("--jobs", type=int, default=None,
                     help="slurm/pbs: number of worker jobs (default 1); local: number of workers")
    red.add_argument("--min-jobs", type=int, default=None, help="adaptive scaling: fewest jobs (workers)")
    red.add_argument("--max-jobs", type=int, default=None, help="adaptive scaling: most jobs (workers)")
    red.add_argument("--overwrite", action="store_true", help="replace an existing model")
    red.set_defaults(func=_reduce)

    pred = sub.add_parser("predict", help="run a saved reduced model on a cyclic scenario (online stage)")
    pred.add_argument("model", help="reduced-model folder (romdask reduce)")
    pred.add_argument("--set", nargs="+", required=True, metavar="NAME=VALUE",
                      help="peak value of each pattern of the model (e.g. top_displacement=0.006)")
    pred.add_argument("--cycles", type=float, default=1, help="number of cycles (default 1)")
    pred.add_argument("--period", type=float, default=10.0, help="cycle period (default 10)")
    pred.add_argument("--r-ratio", type=float, default=-1.0, help="load ratio min/max (default -1)")
    pred.add_argument("--increments-per-cycle", type=int, default=40, help="default 40")
    pred.add_argument("--indicator-threshold", type=float, default=0.1,
                      help="flag steps whose error indicator exceeds this (default 0.1)")
    pred.add_argument("--out", default="prediction.npz", help="arrays of the result (default prediction.npz)")
    pred.add_argument("--vtu", default=None, help="also write the displacement as a VTU series (path stem)")
    pred.add_argument("--store", default=None,
                      help="the training store (its mesh with its sets, for --vtu; default: the mesh saved with "
                           "the model)")
    pred.set_defaults(func=_predict)

    hifi = sub.add_parser("hifi", help="run a training plan (one run per amplitude) with CalculiX or the "
                                       "built-in solver into a snapshot store")
    hifi.add_argument("--solver", choices=("calculix", "builtin"), default="calculix",
                      help="high-fidelity solver (default calculix: the ccx binary)")
    hifi.add_argument("--problem", choices=("plate",), default="plate", help="reference problem")
    hifi.add_argument("--amplitudes", type=float, nargs="+", required=True, help="amplitudes [mm], one run each")
    hifi.add_argument("--cycles", type=float, default=1, help="load cycles per run (default 1)")
    hifi.add_argument("--nodes", type=int, default=1000, help="approximate mesh size (default 1000)")
    hifi.add_argument("--store", required=True, help="snapshot store folder (created if absent)")
    hifi.add_argument("--workdir", default="romdask-hifi", help="folder of the CalculiX decks and results")
    hifi.add_argument("--threads", type=int, default=1, help="ccx threads per run (default 1)")
    hifi.add_argument("--subdomains", type=int, default=None,
                      help="subdomains of a new store (default: romdask.fem.default_subdomains, 1 below 40,000 dofs)")
    hifi.set_defaults(func=_hifi)

    args = parser.parse_args(argv)
    _logging(args.verbose)
    return args.func(args)


def _logging(verbose: int) -> None:
    """romdask's messages at WARNING (-v: INFO, -vv: DEBUG) on stderr; dask and distributed only
    from ERROR (-v: WARNING, -vv: INFO): a LocalCluster's start-up and shutdown lines (scheduler,
    nannies, closed comms) are not the user's business unless they ask."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.WARNING - 10 * min(verbose, 2))
    quiet = ("error", "warning", "info")[min(verbose, 2)]
    import dask.config  # distributed sets its loggers' levels from this config when first imported

    dask.config.set({f"logging.{name}": quiet for name in ("distributed", "bokeh", "tornado")})
    for name in ("distributed", "dask", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(quiet.upper())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
