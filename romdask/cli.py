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
    import numpy as np

    from romdask.fem.quadrature import quadrature
    from romdask.hifi import solve
    from romdask.io.vtu import write_vtu_series
    from romdask.materials import von_mises
    from romdask.problems.plate import plate_n_for_nodes, plate_problem

    problem = plate_problem(amplitude=args.amplitude, n_cycles=args.cycles, n=plate_n_for_nodes(args.nodes))
    mesh = problem.mesh
    print(
        f"romdask demo: quarter plate with a hole, {mesh.n_nodes:,} nodes, {mesh.n_elements:,} "
        f"{'/'.join(b.type for b in mesh.blocks)} elements, {len(problem.times) - 1} increments, "
        f"{args.cycles:g} cycle(s) of prescribed displacement {problem.metadata['amplitude']:g} mm "
        "(built-in solver)"
    )
    result = solve(problem, fields=("displacement", "stress", "state"), progress=_progress_bar("solve"))
    stress, state = result.fields["stress"], result.fields["state"]
    mises = von_mises(stress)
    top = result.reaction_names.index(problem.metadata["load_pattern"])
    quad = quadrature(mesh)
    counts = np.bincount(quad.element_of_point, minlength=mesh.n_elements)

    def cell_mean(field):  # (n_steps, n_points, ...) -> (n_steps, n_elements, ...)
        out = np.zeros((field.shape[0], mesh.n_elements) + field.shape[2:])
        np.add.at(out, (slice(None), quad.element_of_point), field)
        return out / counts.reshape((1, -1) + (1,) * (field.ndim - 2))

    pvd = write_vtu_series(
        Path(args.out) / "plate",
        mesh,
        result.times,
        {"displacement": result.displacement.reshape(len(result.times), -1, 3)},
        {"von_mises": cell_mean(mises), "p": cell_mean(state[..., 0]), "stress": cell_mean(stress)},
    )
    table = {
        "nodes / dofs": f"{mesh.n_nodes:,} / {mesh.n_dofs:,}",
        "increments / Newton iterations": f"{len(result.times) - 1} / {int(result.newton_iterations.sum())}",
        "max |u| [mm]": f"{np.abs(result.displacement).max():.4g}",
        "max von Mises [MPa]": f"{mises.max():.1f}",
        "max cumulated plastic strain": f"{np.nanmax(state[..., 0]):.3e}",
        "plastic integration points [%]": f"{100 * np.mean(state[-1, :, 0] > 0):.1f}",
        "peak reaction on top [N]": f"{np.abs(result.reactions[:, top, 1]).max():.1f}",
        "wall time [s]": f"{result.wall_time:.2f}",
    }
    width = max(len(k) for k in table)
    for key, value in table.items():
        print(f"  {key:<{width}}  {value}")
    print(f"fields written to {pvd} (open in ParaView)")
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


def _training_law(store, law_file: str | None):
    """The law: from --law (a JSON file as romdask.online.model.law_to_json writes) or from the
    runs' metadata["material"], which must then agree between runs."""
    import json

    from romdask.online.model import law_from_json

    if law_file:
        return law_from_json(json.loads(Path(law_file).read_text()))
    entries = {name: attrs.get("metadata", {}).get("material") for name, attrs in store.runs().items()
               if attrs.get("status") == "complete"}
    missing = sorted(n for n, e in entries.items() if e is None)
    if missing or not entries:
        raise ValueError(
            f"runs {missing or '(none)'} carry no metadata['material']: pass --law law.json "
            "(romdask.online.model.law_to_json of the law) or write runs with "
            "metadata={'material': law_to_json(law), ...}"
        )
    distinct = {json.dumps(e, sort_keys=True) for e in entries.values()}
    if len(distinct) > 1:
        raise ValueError(f"the runs were computed with different laws: {sorted(distinct)}; pass --law")
    return law_from_json(next(iter(entries.values())))


def _reduce(args: argparse.Namespace) -> int:
    from romdask.offline import reduce
    from romdask.store import SnapshotStore

    try:
        store = SnapshotStore.open(args.store, mode="r")
        law = _training_law(store, args.law)
    except ValueError as exc:
        print(f"romdask reduce: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"romdask reduce: error: {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1
    with _cluster(args.cluster) as client:
        if client is not None:
            print(f"dask dashboard: {client.dashboard_link}")
        progress = contextlib.nullcontext()
        if client is None:
            from dask.diagnostics import ProgressBar

            progress = ProgressBar()
        with progress:
            model, modes = reduce(args.store, law, tol_pod=args.tol_pod, tol_ecm=args.tol_ecm, return_modes=True)
    model.save(out, full_modes=modes.T, overwrite=args.overwrite)
    report = model.metadata["reduce"]
    print(f"{out}: {report['n_modes']} modes, {model.n_points} reduced points "
          f"(ECM residual {report['ecm_residual']:.2e}), trained on {len(report['training_runs'])} run(s)")
    return 0


@contextlib.contextmanager
def _cluster(spec: str | None):
    """None: dask's local threads; "local": a LocalCluster (one thread per worker, BLAS pinned
    by the tasks); anything else: the address of a running scheduler."""
    if not spec:
        yield None
        return
    from distributed import Client, LocalCluster

    if spec == "local":
        with LocalCluster(threads_per_worker=1) as cluster, Client(cluster) as client:
            yield client
    else:
        with Client(spec) as client:
            yield client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="romdask", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the built-in solver on the default reference problem (quarter plate with a hole)",
    )
    demo.add_argument("--nodes", type=int, default=1000, help="approximate mesh size (default 1000)")
    demo.add_argument("--cycles", type=float, default=1, help="number of load cycles (default 1)")
    demo.add_argument("--amplitude", type=float, default=None, help="displacement amplitude [mm]")
    demo.add_argument("--out", default="romdask-demo", help="output folder (default ./romdask-demo)")
    demo.set_defaults(func=_demo)

    ing = sub.add_parser(
        "ingest",
        help="ingest solver runs (CalculiX .inp/.frd/.dat, .xdmf, .pvd, Z-set .ut) into a snapshot store",
    )
    ing.add_argument("sources", nargs="+", help="result files; CalculiX files of one stem form one run")
    ing.add_argument("--store", required=True, help="snapshot store folder (created if absent)")
    ing.add_argument("--subdomains", type=int, default=None,
                     help="number of subdomains K of a new store (METIS); omit for an existing store")
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
    red.add_argument("--cluster", default=None, help="'local' (LocalCluster) or a scheduler address")
    red.add_argument("--overwrite", action="store_true", help="replace an existing model")
    red.set_defaults(func=_reduce)

    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
