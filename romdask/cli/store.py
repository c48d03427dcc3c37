"""``romdask ingest``, ``romdask info`` and ``romdask template``: from a solver's files to a
snapshot store, and what a store or a model holds."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from romdask.cli.common import disk_size, human_bytes, is_reduced_model, open_model, positive_int, writable_folder

__all__ = ["register"]


def register(sub) -> None:
    ing = sub.add_parser(
        "ingest", help="ingest solver runs (CalculiX .inp/.frd/.dat, .xdmf, .pvd, Z-set .ut) into a snapshot store",
        description="CalculiX runs keep the load patterns and the law of their deck (the .inp next to the .frd); "
                    "runs without a deck need --law and --loads (romdask template law|loads).",
    )
    ing.add_argument("sources", nargs="+", help="result files; CalculiX files of one stem form one run")
    ing.add_argument("--store", required=True, help="snapshot store folder (created if absent)")
    ing.add_argument("--subdomains", type=positive_int, default=None,
                     help="number of subdomains of a new store (METIS; default: the first run's own split when its "
                          "solver gives one (Z-set domains), else 1 below 40,000 dofs, else one per core with "
                          ">= 20,000 and <= 200,000 dofs each, romdask.fem.default_subdomains); omit for an existing "
                          "store")
    ing.add_argument("--law", default=None,
                     help="law file (YAML or JSON, `romdask template law`) for every run: replaces the deck's")
    ing.add_argument("--loads", default=None,
                     help="load patterns file (YAML or JSON, `romdask template loads`) for every run, resolved on its "
                          "mesh: replaces the deck's")
    ing.add_argument("--no-compression", action="store_true", help="store uncompressed (default: Blosc lz4)")
    ing.add_argument("--overwrite", action="store_true", help="replace complete runs whose sources changed")
    ing.set_defaults(func=ingest)

    info = sub.add_parser("info", help="summarize a snapshot store (mesh, subdomains, runs) or a reduced model")
    info.add_argument("store", help="snapshot store or reduced-model folder")
    info.set_defaults(func=info_command)

    tpl = sub.add_parser("template", help="print a commented starting file: a law or load patterns (YAML)")
    tpl.add_argument("kind", choices=("law", "loads"), help="law: the constitutive law; loads: the load patterns")
    tpl.add_argument("--store", default=None, help="a snapshot store: list its mesh's sets in the loads template")
    tpl.set_defaults(func=template)


def ingest(args: argparse.Namespace) -> int:
    from romdask.store import ingest as ingest_runs

    writable_folder(args.store, "--store")
    status = ingest_runs(args.sources, args.store, n_subdomains=args.subdomains,
                         compression=None if args.no_compression else "lz4", overwrite=args.overwrite,
                         progress=True, law=args.law, loads=args.loads)
    for state in ("written", "skipped"):
        names = [n for n, s in status.items() if s == state]
        if names:
            print(f"{state}: {len(names)} run(s): {', '.join(names)}")
    print(f"store: {args.store}")
    return 0


def template(args: argparse.Namespace) -> int:
    from romdask.problem.files import template as make_template

    mesh = None
    if args.store:
        from romdask.store import SnapshotStore

        mesh = SnapshotStore.open(args.store, mode="r").layout.mesh
    print(make_template(args.kind, mesh), end="")
    return 0


def _model_info(path: Path) -> int:
    model = open_model(path)
    print(f"{path}: reduced model, {human_bytes(disk_size(path))} on disk")
    print(json.dumps(model.info(), indent=1))
    return 0


def info_command(args: argparse.Namespace) -> int:
    import numpy as np

    from romdask.store import SnapshotStore

    path = Path(args.store)
    if is_reduced_model(path):
        return _model_info(path)
    store = SnapshotStore.open(path, mode="r")
    attrs = dict(store.root.attrs)
    lay = store.layout
    mesh = lay.mesh
    types: Counter = Counter()
    for b in mesh.blocks:
        types[b.type] += len(b)
    print(f"{path}: {attrs['format']} v{attrs['version']}, created by {attrs.get('created_by', '?')}, "
          f"compression {attrs.get('compression') or 'none'}, {human_bytes(disk_size(path))} on disk")
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
        fields = ", ".join(r.get("fields", {}))
        size = human_bytes(disk_size(path / "runs" / name))
        meta = r.get("metadata") or {}
        ready = "ready for reduce" if "loads" in meta and "material" in meta else \
            f"NOT ready for reduce: {meta['problem_error']}" if meta.get("problem_error") else \
            "NOT ready for reduce: no " + " nor ".join(k for k in ("loads", "material") if k not in meta)
        print(f"  {name}: {r.get('status')}, {r.get('n_steps', '?')} steps, {span}, fields {fields}, {size}, "
              f"solver {r.get('solver', '?')} {r.get('solver_version', '')}".rstrip() + f"; {ready}")
        _print_omitted(meta.get("omitted_fields"))
        if meta.get("partition"):
            print(f"    solver's subdomains: {meta['partition']}")
    return 0


def _print_omitted(omitted) -> None:
    """The source fields a reader left out of a run (``metadata["omitted_fields"]``), by reason."""
    if omitted is None:
        return  # the reader keeps no such record
    if not omitted:
        print("    omitted fields: none (the reader stored every field of the source)")
        return
    by_reason: dict[str, list[str]] = {}
    for source, reason in dict(omitted).items():
        by_reason.setdefault(str(reason), []).append(str(source))
    print(f"    omitted fields: {len(omitted)}")
    for reason, names in by_reason.items():
        print(f"      {', '.join(names)}: {reason}")
