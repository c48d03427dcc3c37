"""Benchmark: one global reduced model against a dictionary of local ones (issue 16).

Usage::

    python3 benchmarks/local_roms.py [--smoke] [--out figures.json] [--workdir DIR] [--keep]

The quarter plate under tractions that vary in kind (``plate_traction_problem``): a ``top``
family (traction along y on the top face) and a ``right`` family (along x on the right face).

1. HF (built-in solver, :func:`romdask.demo._hf_run`'s way, all in one store): the training runs
   (:data:`TRAIN`, amplitude x R-ratio x period spread over 140-200 MPa, R -1 and 0, 5-20 s), the
   held-out scenarios (:data:`HELD_OUT`: other amplitudes, R-ratios and periods inside those
   ranges) and a few slightly mixed ones (:data:`MIXED`, both tractions, reported apart);
2. offline, same :class:`~romdask.offline.ReduceOptions` for both (defaults, one global ECM):
   ``reduce`` on every training run (the global model) and ``reduce_local`` (k "auto"; the full
   run also k = 2, one model per family), all on dask's default scheduler;
3. online, after a numba warm-up of every model (as ``demo.pipeline``): per held-out scenario the
   global model and ``ModelDictionary.solve`` (choice "auto", selection included in its time),
   best of 2; every local model is also solved on every scenario (forced) to know which one has
   the lowest error (the "oracle"); a local model that fails to converge counts as worst;
4. errors by :func:`romdask.demo.compare` (displacement time-space L2; von Mises and p relative to
   the largest HF value, law replay).

Prints one JSON dict and writes it to ``--out``. ``--smoke``: n = 4, 20 increments per cycle,
2 + 2 training runs, 2 + 2 held-out, no mixed ones. No threshold is asserted.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

from script import script_main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ["PYTHONPATH"] = str(HERE.parent) + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")

#: (amplitude MPa, R-ratio, period s) of each family's training runs: a Latin-square-like spread
TRAIN = ((140, -1, 10), (170, -1, 5), (200, -1, 20), (140, 0, 20), (170, 0, 10), (200, 0, 5))
#: each family's held-out scenarios, inside the training ranges
HELD_OUT = ((150, -1, 10), (160, -1, 15), (180, -1, 8), (190, -1, 12), (155, -0.5, 10), (185, -0.5, 15),
            (145, 0, 8), (165, 0, 15), (175, 0, 12), (195, 0, 8))
#: (top, right, R-ratio, period): both tractions, one dominant (its family)
MIXED = ((170, 30, -1, 10), (30, 170, -1, 10), (160, 40, 0, 10), (40, 160, 0, 10))
SMOKE_TRAIN = ((150, -1, 10), (190, -1, 10))
SMOKE_HELD_OUT = ((170, -1, 10), (160, -1, 10))
FAMILIES = ("top", "right")


def _tractions(family: str, amplitude: float) -> tuple[float, float]:
    return (amplitude, 0.0) if family == "top" else (0.0, amplitude)


def design(smoke: bool) -> dict:
    """name -> (set, family, top, right, R-ratio, period)."""
    train, held, mixed = (SMOKE_TRAIN, SMOKE_HELD_OUT, ()) if smoke else (TRAIN, HELD_OUT, MIXED)
    cases = {}
    for family in FAMILIES:
        for i, (a, r, period) in enumerate(train):
            cases[f"train-{family}-{i}"] = ("train", family, *_tractions(family, a), r, period)
    for family in FAMILIES:
        for i, (a, r, period) in enumerate(held):
            cases[f"held-{family}-{i}"] = ("held-out", family, *_tractions(family, a), r, period)
    for i, (top, right, r, period) in enumerate(mixed):
        cases[f"mixed-{i}"] = ("mixed", "top" if top > right else "right", top, right, r, period)
    return cases


def _timed_solve(solve, repeats: int = 2):
    best, out = None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = solve()
        wall = time.perf_counter() - t0
        best = wall if best is None else min(best, wall)
    return out, best


def benchmark(smoke: bool, workdir: Path) -> dict:
    import numpy as np

    from romdask.demo import FIELDS, compare
    from romdask.hifi.builtin import solve
    from romdask.offline import ReduceOptions, reduce, reduce_local
    from romdask.online import (
        ModelDictionary,
        OnlineOptions,
        ReducedModel,
        Scenario,
        local_model_path,
        open_full,
    )
    from romdask.online.solver import OnlineConvergenceError, TrainingEnvelopeWarning
    from romdask.problem.patterns import run_metadata
    from romdask.problems import plate_traction_problem
    from romdask.store import create_store, open_snapshots

    n, increments = (4, 20) if smoke else (8, 40)
    # the defaults, for both (ECM per subdomain of the store's 2, then a greedy ECM on the union of their points)
    options = ReduceOptions()
    online = OnlineOptions()
    cases = design(smoke)
    problems = {name: plate_traction_problem(top, right, period=period, r_ratio=r, increments_per_cycle=increments,
                                             n=n)
                for name, (_, _, top, right, r, period) in cases.items()}
    mesh = next(iter(problems.values())).mesh
    store_path = workdir / "store.zarr"
    store = create_store(store_path, mesh, n_subdomains=2, overwrite=True)
    solve(plate_traction_problem(150, 0, n=2, increments_per_cycle=8))  # numba warm-up
    hf = {}
    for name, problem in problems.items():
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, fields=FIELDS, solver="romdask",
                              metadata=run_metadata(problem), overwrite=True, allow_nan=("state",))
        t0 = time.perf_counter()
        solve(problem, writer=writer, fields=FIELDS)
        hf[name] = time.perf_counter() - t0
        print(f"HF {name}: {hf[name]:.1f} s", file=sys.stderr, flush=True)
    train = [name for name, c in cases.items() if c[0] == "train"]
    law = problems[train[0]].material

    t0 = time.perf_counter()
    reduction = reduce(store_path, runs=train, options=options)
    global_path = reduction.save(workdir / "global.zarr", overwrite=True)
    global_offline = time.perf_counter() - t0
    print(f"global reduce: {global_offline:.1f} s", file=sys.stderr, flush=True)
    model = ReducedModel.open(global_path)
    global_full = open_full(global_path)
    first = Scenario.from_problem(problems[train[0]])
    first = Scenario(first.times[:2], first.coefficients, first.homogeneous, first.temperature)
    model.solve(first, online)  # numba warm-up on the first increment (demo.pipeline)
    others = [name for name, c in cases.items() if c[0] != "train"]
    scenarios = {name: Scenario.from_problem(problems[name]) for name in others}
    references = {name: open_snapshots(store_path, runs=[name]) for name in others}
    keys = ("error_displacement", "error_von_mises", "error_p")
    rows_by_name = {}
    for name in others:
        kind, family, top, right, r, period = cases[name]
        g, g_time = _timed_solve(lambda name=name: model.solve(scenarios[name], online))
        g_err, _ = compare(global_full, g, references[name], law)
        rows_by_name[name] = {"name": name, "set": kind, "family": family, "top": top, "right": right, "r_ratio": r,
                              "period": period, "hf_s": hf[name], "global_s": g_time, "global_solver_s": g.wall_time,
                              **{f"global_{key}": g_err[key] for key in keys},
                              "global_max_indicator": float(np.nanmax(g.indicator)), "dictionaries": {}}

    # the dictionary that reduce_local chooses (k auto); the full run also one model per family (k = 2), to see
    # what the choice of k costs in accuracy
    dictionaries = {}
    for requested in (("auto",) if smoke else ("auto", 2)):
        label = f"k {requested}"
        t0 = time.perf_counter()
        local = reduce_local(store_path, runs=train, options=options, k=requested)
        dict_path = local.save(workdir / f"dictionary-{requested}.zarr", overwrite=True)
        offline = time.perf_counter() - t0
        print(f"reduce_local k={requested}: {offline:.1f} s, clusters {local.clusters}", file=sys.stderr, flush=True)
        dictionary = ModelDictionary.open(dict_path)
        k = len(dictionary.models)
        local_full = [open_full(local_model_path(dict_path, name)) for name in dictionary.names]
        family_clusters = {f: sorted({c for c, members in enumerate(dictionary.clusters) for run in members
                                      if cases[run][1] == f}) for f in FAMILIES}
        for c in range(k):
            dictionary.solve(first, online, choice=c)
        dictionaries[label] = {"requested": requested, "offline_s": offline, "dictionary": dictionary,
                               "local": local}
        for name in others:
            family = cases[name][1]
            pred, d_time = _timed_solve(lambda name=name, d=dictionary: d.solve(scenarios[name], online))
            per_model = []
            for c in range(k):
                try:
                    with warnings.catch_warnings():  # another family's model: outside its training envelope
                        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
                        result = (pred.result if c == pred.rom else
                                  dictionary.solve(scenarios[name], online, choice=c).result)
                except OnlineConvergenceError:
                    per_model.append(None)
                    continue
                e, _ = compare(local_full[c], result, references[name], law)
                per_model.append({key: e[key] for key in keys})
            finite = [c for c in range(k) if per_model[c] is not None]
            oracle = min(finite, key=lambda c: per_model[c]["error_von_mises"]) if finite else None
            entry = {"s": d_time, "solver_s": pred.result.wall_time, **per_model[pred.rom], "rom": pred.rom,
                     "reason": pred.reason, "classifier": pred.ranking.order[0], "ambiguous": pred.ranking.ambiguous,
                     "distances": list(pred.ranking.distances), "family_cluster": pred.rom in family_clusters[family],
                     "classifier_family_cluster": pred.ranking.order[0] in family_clusters[family],
                     "oracle": oracle, "chosen_is_oracle": pred.rom == oracle, "per_model": per_model,
                     "max_indicator": float(np.nanmax(pred.result.indicator))}
            rows_by_name[name]["dictionaries"][label] = entry
            g = rows_by_name[name]
            print(f"{name} {label}: global u {g['global_error_displacement']:.1e} vm {g['global_error_von_mises']:.2%} "
                  f"{g['global_s']:.3f} s | rom{pred.rom} u {entry['error_displacement']:.1e} "
                  f"vm {entry['error_von_mises']:.2%} {d_time:.3f} s | oracle {oracle}", file=sys.stderr, flush=True)

    scenario_rows = list(rows_by_name.values())
    rows = []
    for kind in ("held-out", "mixed"):
        sel = [s for s in scenario_rows if s["set"] == kind]
        if not sel:
            continue
        for who in ("global", *dictionaries):
            values = [s if who == "global" else {f"global_{k}": v for k, v in s["dictionaries"][who].items()}
                      for s in sel]

            def stat(key, fn, values=values):
                return float(fn([v[f"global_{key}"] for v in values]))

            row = {"set": kind, "model": "global" if who == "global" else "dictionary", "scenarios": len(sel),
                   "online_mean_s": stat("s", np.mean), "online_median_s": stat("s", np.median),
                   **{f"{key}_{fn.__name__}": stat(key, fn) for key in keys for fn in (np.mean, np.max)}}
            if who == "global":
                row.update(k=1, n_modes=[model.n_modes], n_points=[model.n_points], offline_s=global_offline)
            else:
                d = dictionaries[who]["dictionary"]
                entries = [s["dictionaries"][who] for s in sel]
                row.update(k_requested=str(dictionaries[who]["requested"]), k=len(d.models),
                           n_modes=[m.n_modes for m in d.models], n_points=[m.n_points for m in d.models],
                           offline_s=dictionaries[who]["offline_s"],
                           classifier_accuracy=float(np.mean([e["classifier_family_cluster"] for e in entries])),
                           chosen_accuracy=float(np.mean([e["family_cluster"] for e in entries])),
                           oracle_rate=float(np.mean([e["chosen_is_oracle"] for e in entries])),
                           best_of_2=int(sum(e["reason"] != "classifier" for e in entries)))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    chosen = dictionaries["k auto"]
    dis = chosen["local"].dissimilarity
    return {
        "store": {"nodes": mesh.n_nodes, "dofs": mesh.n_dofs, "increments_per_cycle": increments, "plate_n": n,
                  "training_runs": len(train), "held_out": sum(c[0] == "held-out" for c in cases.values()),
                  "mixed": sum(c[0] == "mixed" for c in cases.values()),
                  "hf_training_s": sum(hf[t] for t in train),
                  "hf_mean_s": float(np.mean([hf[name] for name in others])),
                  "options": options.settings(), "ecm_scope": options.ecm_scope,
                  "ecm_points_full": model.metadata["reduce"].get("n_points_full")},
        "clusters": {label: [list(c) for c in d["dictionary"].clusters] for label, d in dictionaries.items()},
        "criterion": [dict(r) for r in chosen["local"].criterion],
        "dissimilarity": {"runs": list(dis.runs), "matrix": dis.matrix.tolist()},
        "rows": rows, "scenarios": scenario_rows, "load_avg": os.getloadavg()[0],
    }


def main(argv=None) -> dict:
    return script_main(benchmark, __doc__.split("\n\n")[0], "tiny size: n=4, 2+2 training, 2+2 held-out", "local", argv)


if __name__ == "__main__":
    main()
