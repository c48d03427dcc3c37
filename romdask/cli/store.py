"""``romdask ingest``, ``romdask info`` and ``romdask template``: from a solver's files to a
snapshot store, and what a store, a model or a dictionary of local models holds."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from romdask.cli.common import (HelpFormatter, disk_size, human_bytes, is_reduced_model, open_model, positive_int,
                                writable_folder)
from romdask.cli.dictionary import (criterion_lines, dissimilarity_lines, is_dictionary_dir, model_lines,
                                    open_dictionary)

__all__ = ["register"]


def register(sub) -> None:
    ing = sub.add_parser(
        "ingest", formatter_class=HelpFormatter,
        help="ingest solver runs (CalculiX .inp/.frd/.dat, .xdmf, .pvd, Z-set .ut) into a snapshot store",
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

    info = sub.add_parser("info", formatter_class=HelpFormatter,
                          help="summarize a snapshot store (mesh, subdomains, runs), a reduced model or a "
                               "dictionary of local models")
    info.add_argument("store", help="snapshot store, reduced-model or dictionary folder")
    info.add_argument("--json", action="store_true",
                      help="a reduced model or a dictionary: every attribute as JSON (raw)")
    info.set_defaults(func=info_command)

    tpl = sub.add_parser("template", formatter_class=HelpFormatter,
                         help="print a commented starting file: a law or load patterns (YAML)")
    tpl.add_argument("kind", choices=("law", "loads"), help="law: the constitutive law; loads: the load patterns")
    tpl.add_argument("--store", default=None, help="a snapshot store: list its mesh's sets in the loads template")
    tpl.set_defaults(func=template)


def ingest(args: argparse.Namespace) -> int:
    from romdask.store import ingest as ingest_runs

    writable_folder(args.store, "--store")
    print(f"romdask ingest: {len(args.sources)} file(s) into {args.store}", flush=True)
    try:
        status = ingest_runs(args.sources, args.store, n_subdomains=args.subdomains,
                             compression=None if args.no_compression else "lz4", overwrite=args.overwrite,
                             progress=True, law=args.law, loads=args.loads)
    except ValueError as exc:
        if "not in the input deck" not in str(exc):
            raise
        frd = next((Path(s) for s in args.sources if str(s) in str(exc)), None)  # a .frd of another deck
        deck = frd.with_suffix(".inp") if frd is not None else "the .inp of the same stem"
        raise ValueError(f"{exc} (deck {deck}): a .frd and the .inp of its stem must come from the same run") from None
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


def _short(value) -> str:
    """A law parameter in a few characters: numbers, short lists, "table of N rows"."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return f"table of {len(value)} rows"
        return "[" + ", ".join(_short(v) for v in value) + "]" if len(value) <= 4 else f"{len(value)} values"
    return str(value)


def _law_line(law: dict, units: dict | None) -> str:
    from romdask.online.envelope import unit

    params = {k: v for k, v in (law.get("parameters") or {}).items() if v is not None}
    text = ", ".join(f"{k} {_short(v)}" for k, v in params.items())
    return f"{law.get('type', '?')} on {law.get('n_points', '?')} points: {text} (stresses in {unit(units, 'stress')})"


def _training_lines(loads: dict, pattern_units: dict, time_unit: str) -> list[str]:
    """One line per training run: its nonzero patterns, value x amplitude table and range."""
    import numpy as np

    lines = []
    for run, patterns in loads.items():
        parts = []
        for name, entry in (patterns or {}).items():
            value, table = float(entry.get("value", 0.0)), entry.get("amplitude")
            if value == 0.0:
                continue
            u = pattern_units.get(name, "[value]")
            if table:
                values = value * np.asarray(table["values"], float)
                times = table["times"]
                parts.append(f"{name} {value:g} {u} x a table of {len(times)} points over t = {times[0]:g}..{times[-1]:g} {time_unit} "
                             f"(range {values.min():.6g}..{values.max():.6g} {u})")
            else:
                parts.append(f"{name} {value:g} {u} (ramped)")
        lines.append(f"  {run}: {'; '.join(parts) or 'no nonzero pattern'}")
    return lines


def _model_info(path: Path, raw: bool = False) -> int:
    """A reduced model: a readable summary, or (``raw``) every attribute as JSON."""
    from romdask.online.envelope import pattern_units, unit

    model = open_model(path)
    info = model.info()
    if raw:
        print(json.dumps({**info, "metadata": model.metadata}, indent=1, default=str))
        return 0
    meta = model.metadata
    report = meta.get("reduce", {})
    units = meta.get("units")
    print(f"{path}: reduced model ({info['format']} v{info['version']}), created by romdask "
          f"{meta.get('romdask_version', report.get('romdask_version', '?'))}, {human_bytes(disk_size(path))} on disk "
          f"({human_bytes(info['nbytes'])} online arrays), {'thermal' if model.thermal else 'athermal'}")
    print(f"units: {', '.join(f'{k} {v}' for k, v in units.items())}" if units else
          "units: the training decks' (not recorded: [length], [force], [stress] below)")
    gappy = ", ".join(f"{k} {v[1]}" for k, v in info["gappy"].items()) or "none"
    print(f"modes: {model.n_modes} displacement (POD of {report.get('n_snapshots', '?')} snapshots: "
          f"{report.get('pod_method', '?')} method, {report.get('product', '?')} inner product); Gappy-POD: {gappy}")
    per_subdomain = report.get("points_per_subdomain") or []
    added = report.get("qdeim_points_added", 0)
    n_full = report.get("n_points_full")
    enrichments = meta.get("enrichments") or []
    if enrichments:  # the reduce report's counts are the model's as trained
        last, indicator = enrichments[-1], report.get("indicator_points") or []
        print(f"reduced points: {model.n_points} of {f'{n_full:,}' if n_full else '?'} integration points "
              f"({last.get('ecm_points', '?')} by ECM, the others for Gappy-POD and the indicator)")
        print(f"enriched {len(enrichments)} time(s) with {sum(e.get('snapshots', 0) for e in enrichments)} "
              f"high-fidelity snapshots: +{sum(e.get('new_modes', 0) for e in enrichments)} mode(s); the error "
              f"indicator at the {len(indicator)} reduced points of the model as trained")
    else:
        print(f"reduced points: {model.n_points} of {f'{n_full:,}' if n_full else '?'} integration points "
              f"({len(per_subdomain)} subdomain(s): {', '.join(map(str, per_subdomain)) or '?'} by ECM"
              + (f", {added} added for Gappy-POD" if added else "") + ")")
    tolerances = {k: report[k] for k in ("tol_pod", "tol_ecm", "gappy_tol") if k in report}
    residual = (enrichments[-1] if enrichments else report).get("ecm_residual", float("nan"))
    print(f"tolerances (relative): {', '.join(f'{k} {v:g}' for k, v in tolerances.items())}; ECM residual "
          f"{residual:.2e}")
    names = info["lifting_names"] + info["load_names"]
    pattern_unit = pattern_units(model)
    print(f"patterns: {', '.join(f'{n} (in {pattern_unit.get(n, chr(63))})' for n in names) or 'none'}")
    runs = report.get("training_runs") or []
    print(f"training runs: {len(runs)}")
    for line in _training_lines(report.get("training_loads") or {r: {} for r in runs}, pattern_unit,
                               unit(units, "time")):
        print(line)
    print(f"laws: {len(info['laws'])}")
    for law in info["laws"]:
        print(f"  {_law_line(law, units)}")
    calibration = model.calibration
    if calibration is None:
        print("error indicator: not calibrated (romdask calibrate)")
    else:
        from romdask.cli.calibrate import calibration_lines

        lines = calibration_lines(calibration, runs=False)
        print(f"error indicator: {lines[0]}")
        for line in lines[1:]:
            print(line)
    print(f"time in {unit(units, 'time')}; `romdask info {path} --json` for every attribute")
    return 0


def _dictionary_info(path: Path, raw: bool = False) -> int:
    """A dictionary of local models: its models, selector, criterion and dissimilarities, or
    (``raw``) all of it as JSON."""
    from romdask.online.dictionary import FORMAT, VERSION

    dictionary = open_dictionary(path)
    info = dictionary.info()
    if raw:
        print(json.dumps({"format": FORMAT, "version": VERSION, **info, "metadata": dictionary.metadata}, indent=1,
                         default=str))
        return 0
    units = dictionary.metadata.get("units")
    n_runs = sum(len(c) for c in dictionary.clusters)
    print(f"{path}: dictionary of {len(dictionary.models)} local reduced model(s) ({FORMAT} v{VERSION}), "
          f"{human_bytes(disk_size(path))} on disk, trained on {n_runs} run(s)")
    print(f"units: {', '.join(f'{k} {v}' for k, v in units.items())}" if units else
          "units: the training decks' (not recorded)")
    print("local models (one per cluster of similar training runs; medoid: the run most like the others):")
    for line in model_lines(dictionary):
        print(line)
    thermal = " and the temperatures (mean and extreme rise, spread)" if info["selector"].get("temperature") else ""
    print(f"selector: {info['selector']['kind']} on the load description (each pattern's peak relative to the "
          f"training runs', and which patterns act together) over {', '.join(info['selector']['patterns'])}{thermal}")
    rows = info["criterion"]
    if rows:
        print("criterion: the expected online cost of k local models relative to one global model "
              "(sum of (runs share x modes^2) / global modes^2) and the smallest dissimilarity between medoids:")
        for line in criterion_lines(rows):
            print(line)
    for line in dissimilarity_lines(dictionary.metadata):
        print(line)
    print(f"each local model: `romdask info {path}/roms/NAME`; `romdask info {path} --json` for every attribute")
    return 0


def info_command(args: argparse.Namespace) -> int:
    import numpy as np

    from romdask.store import SnapshotStore

    path = Path(args.store)
    if is_reduced_model(path):
        return _model_info(path, raw=args.json)
    if is_dictionary_dir(path):
        return _dictionary_info(path, raw=args.json)
    if args.json:
        raise ValueError(f"--json prints a reduced model's or a dictionary's attributes; {path} is neither")
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
