"""``romdask reduce``: a snapshot store -> a reduced model (on a Dask cluster)."""

from __future__ import annotations

import argparse

from romdask.cli.common import (HelpFormatter, add_cluster_options, cluster_context, fraction, is_reduced_model,
                                writable_folder)

__all__ = ["register"]


def register(sub) -> None:
    red = sub.add_parser("reduce", formatter_class=HelpFormatter,
                         help="build a reduced model from a snapshot store (offline stage)")
    red.add_argument("store", help="snapshot store folder")
    red.add_argument("--out", required=True, help="reduced-model folder to write (with its full bases and mesh)")
    red.add_argument("--tol-pod", type=fraction, default=1e-6,
                     help="POD truncation, 0 < TOL < 1: keep modes with s_i / s_0 above it (relative)")
    red.add_argument("--tol-ecm", type=fraction, default=1e-5,
                     help="ECM tolerance, 0 < TOL < 1: relative error of the reduced forces and reactions")
    red.add_argument("--law", default=None,
                     help="law file (YAML or JSON, `romdask template law`; default: the law the runs carry)")
    add_cluster_options(red)
    red.add_argument("--overwrite", action="store_true", help="replace an existing reduced model at --out")
    red.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from romdask.offline import ReduceOptions, reduce, training_law

    options = ReduceOptions(tol_pod=args.tol_pod, tol_ecm=args.tol_ecm)
    if args.law:
        from romdask.problem.files import read_law_file

        law = read_law_file(args.law)
    else:
        law = training_law(args.store)
    out = writable_folder(args.out, "--out")
    writable_folder(out.parent, "--out")  # the model is written aside and renamed into place
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    if out.exists() and not is_reduced_model(out):
        raise ValueError(f"{out} exists and is not a reduced model: --overwrite replaces models only; choose "
                         "another --out")
    from romdask.cluster import progress_bar

    with cluster_context(args) as client:
        if client is not None:
            print(f"dask dashboard: {client.dashboard_link}", flush=True)
        with progress_bar(client):
            reduction = reduce(args.store, law, options=options)
    from romdask.store import SnapshotStore

    units = SnapshotStore.open(args.store, mode="r").root.attrs.get("units")
    if units:  # the store's unit system (the reference problems: mm, N, s, MPa), for info and predict
        reduction.model.metadata["units"] = dict(units)
    reduction.save(out, overwrite=args.overwrite)  # with the full bases and the mesh, for reconstructions
    model, report = reduction.model, reduction.report
    print(f"{out}: {report['n_modes']} modes, {model.n_points} reduced points "
          f"(ECM residual {report['ecm_residual']:.2e}), trained on {len(report['training_runs'])} run(s): "
          f"{', '.join(report['training_runs'])}")
    return 0
