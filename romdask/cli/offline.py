"""``romdask reduce``: a snapshot store -> a reduced model, or a dictionary of local reduced models
(``--local``), on a Dask cluster."""

from __future__ import annotations

import argparse

from romdask.cli.common import (HelpFormatter, add_cluster_options, cluster_context, fraction, is_reduced_model,
                                positive_float, positive_int, writable_folder)
from romdask.cli.dictionary import criterion_lines, local_count, model_lines, replace_folder

__all__ = ["register"]


def register(sub) -> None:
    red = sub.add_parser("reduce", formatter_class=HelpFormatter,
                         help="build a reduced model (or a dictionary of local ones) from a snapshot store (offline "
                              "stage)")
    red.add_argument("store", help="snapshot store folder")
    red.add_argument("--out", required=True,
                     help="reduced-model (or --local: dictionary) folder to write, with the full bases and mesh")
    red.add_argument("--tol-pod", type=fraction, default=1e-6,
                     help="POD truncation, 0 < TOL < 1: keep modes with s_i / s_0 above it (relative)")
    red.add_argument("--tol-ecm", type=fraction, default=1e-5,
                     help="ECM tolerance, 0 < TOL < 1: relative error of the reduced forces and reactions")
    red.add_argument("--law", default=None,
                     help="law file (YAML or JSON, `romdask template law`; default: the law the runs carry)")
    red.add_argument("--gappy-scales", type=positive_float, nargs="+", default=(), metavar="F",
                     help="also build the Gappy-POD bases (the stress and plastic strain fields rebuilt from the "
                          "reduced points) from the training runs' loadings times each F, solved by the reduced "
                          "model and the law replayed at every point: e.g. 0.8 1.2 (docs/offline.md)")
    red.add_argument("--local", type=local_count, default=None, metavar="K|auto",
                     help="a dictionary of K local reduced models, one per cluster of similar training runs "
                          "(k-medoids on the runs' dissimilarity); auto: the K of the lowest expected online cost, "
                          "a plain model when no dictionary lowers it below 0.7 of one global model's "
                          "(docs/local-roms.md)")
    red.add_argument("--k-max", type=positive_int, default=None,
                     help="--local auto: most local models tried (default: runs // --min-runs, at most 8)")
    red.add_argument("--min-runs", type=positive_int, default=None,
                     help="--local auto: fewest training runs per local model (default: 2)")
    add_cluster_options(red)
    red.add_argument("--overwrite", action="store_true",
                     help="replace an existing reduced model or dictionary at --out")
    red.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from romdask.offline import ReduceOptions, reduce, training_law

    if args.local != "auto" and (args.k_max is not None or args.min_runs is not None):
        raise ValueError("--k-max and --min-runs bound --local auto; drop them or pass --local auto")
    options = ReduceOptions(tol_pod=args.tol_pod, tol_ecm=args.tol_ecm, gappy_scales=tuple(args.gappy_scales))
    if args.law:
        from romdask.problem.files import read_law_file

        law = read_law_file(args.law)
    else:
        law = training_law(args.store)
    from romdask.online.dictionary import is_dictionary

    out = writable_folder(args.out, "--out")
    writable_folder(out.parent, "--out")  # the model is written aside and renamed into place
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    if out.exists() and not (is_reduced_model(out) or is_dictionary(out)):
        raise ValueError(f"{out} exists and is not a reduced model nor a dictionary: --overwrite replaces those "
                         "only; choose another --out")
    from romdask.cluster import progress_bar

    with cluster_context(args) as client:
        if client is not None:
            print(f"dask dashboard: {client.dashboard_link}", flush=True)
        with progress_bar(client):
            if args.local is None:
                reduction = reduce(args.store, law, options=options)
            else:
                from romdask.offline import reduce_local

                bounds = {k: v for k, v in (("k_max", args.k_max), ("min_runs", args.min_runs)) if v is not None}
                local = reduce_local(args.store, law, k=args.local, options=options, **bounds)
    from romdask.store import SnapshotStore

    units = SnapshotStore.open(args.store, mode="r").root.attrs.get("units")
    reductions = [reduction] if args.local is None else list(local.reductions)
    if units:  # the store's unit system (the reference problems: mm, N, s, MPa), for info and predict
        for r in reductions:
            r.model.metadata["units"] = dict(units)
    if args.local is not None:
        print(f"romdask reduce: a-priori criterion, the expected online cost of k local models relative to one "
              f"global model (lower is cheaper; auto needs < {_auto_gain():g}) and the smallest dissimilarity "
              f"between two clusters' medoids (auto needs >= {_auto_separation():g}: runs of another kind):")
        for line in criterion_lines(local.criterion):
            print(line)
        if args.local != "auto" or len(local.reductions) > 1:
            _save(out, args.overwrite, local.save, dictionary=True)
            _print_dictionary(out, local)
            return 0
        reduction = local.reductions[0]
        why = _why_global(local.criterion, len(local.dissimilarity.runs), args.min_runs or 2)
        print(f"romdask reduce: one global model: {why}")
    _save(out, args.overwrite, reduction.save, dictionary=False)
    model, report = reduction.model, reduction.report
    print(f"{out}: {report['n_modes']} modes, {model.n_points} reduced points "
          f"(ECM residual {report['ecm_residual']:.2e}), trained on {len(report['training_runs'])} run(s): "
          f"{', '.join(report['training_runs'])}")
    return 0


def _auto_gain() -> float:
    from romdask.offline.local import AUTO_GAIN

    return AUTO_GAIN


def _auto_separation() -> float:
    from romdask.offline.local import AUTO_SEPARATION

    return AUTO_SEPARATION


def _why_global(rows: list, n_runs: int, min_runs: int) -> str:
    """Why --local auto kept one model (the rows of choose_clusters)."""
    others = [r for r in rows if r["k"] > 1]
    if not others:
        return (f"only k = 1 was tried ({n_runs} runs, --k-max / --min-runs {min_runs} allow no more); "
                "a plain reduced model is written")
    sized = [r for r in others if r["min_runs"] >= min_runs]
    if not sized:
        return (f"no clustering into k = 2..{max(r['k'] for r in others)} keeps {min_runs} runs (--min-runs) in every "
                "local model; a plain reduced model is written")
    admissible = [r for r in sized if r["separation"] >= _auto_separation()]
    if not admissible:
        closest = max(r["separation"] for r in sized)
        return (f"the runs are of one kind: no clustering separates them (largest separation {closest:.3f} < "
                f"{_auto_separation():g}; a split by amplitude alone would extrapolate between the clusters); a "
                "plain reduced model is written; --local K forces a dictionary")
    best = min(admissible, key=lambda r: r["cost_ratio"])
    return (f"a dictionary would not pay (best cost ratio {best['cost_ratio']:.2f} at k = {best['k']}, needs < "
            f"{_auto_gain():g}); a plain reduced model is written")


def _save(out, overwrite: bool, save, dictionary: bool) -> None:
    """``save(path, overwrite=...)``; --overwrite of a model by a dictionary or the reverse goes
    through a swap (each kind's save replaces its own kind only)."""
    from romdask.online.dictionary import is_dictionary

    if out.exists() and overwrite and any(out.iterdir()):
        if not (is_dictionary(out) if dictionary else is_reduced_model(out)):
            replace_folder(out, lambda tmp: save(tmp), (is_reduced_model, is_dictionary))
            return
    save(out, overwrite=overwrite)


def _print_dictionary(out, local) -> None:
    d = local.dictionary()
    print(f"{out}: dictionary of {len(d.models)} local reduced model(s), selector on the patterns "
          f"{', '.join(d.selector.names)}")
    for line in model_lines(d):
        print(line)
