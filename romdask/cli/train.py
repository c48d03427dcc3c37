"""``romdask train``: greedy training of a reduced model over a parameter box of a reference problem
(:func:`romdask.adaptive.greedy_train`, built-in high-fidelity solver)."""

from __future__ import annotations

import argparse
import functools
import itertools
import time
from typing import Any

from romdask.cli.common import (
    HelpFormatter,
    fraction,
    positive_float,
    positive_int,
    writable_folder,
)
from romdask.cli.hifi import PROBLEMS

__all__ = ["grid", "register"]


def grid(text: str) -> list[float]:
    """``start:stop:count`` (count evenly spaced values, ends included) or one value."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return [float(parts[0])]
        if len(parts) == 3:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 1:
                raise ValueError
            if count == 1:
                return [start]
            return [start + (stop - start) * i / (count - 1) for i in range(count)]
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected start:stop:count (count >= 1 whole values, e.g. 0.004:0.016:7) or "
                                     f"one value; got {text!r}")


def register(sub) -> None:
    train = sub.add_parser(
        "train", formatter_class=HelpFormatter,
        help="greedy training over a parameter box: add the HF run of the worst-predicted scenario until all are "
             "predicted within a tolerance",
        description="Candidates: the grid of --amplitude x --r-ratio x --period (start:stop:count, or one value to "
                    "fix a parameter) of a reference problem ("
                    + "; ".join(f"{k}: {v}" for k, v in PROBLEMS.items())
                    + "). Starts from the HF runs at the two ends of the --amplitude range (the other parameters "
                      "at their first value), then adds, one at a time, the run of the candidate whose (calibrated) "
                      "error indicator is worst; each added run is predicted first and gives a held-out (indicator, "
                      "true error) pair; from 3 of them the indicator is calibrated, and the loop stops when the "
                      "upper end of every candidate's predicted error interval is <= --tolerance. Built-in solver.")
    train.add_argument("--problem", choices=tuple(PROBLEMS), default="plate", help="reference problem")
    train.add_argument("--amplitude", type=grid, required=True,
                       help="peak prescribed displacement of the loaded face [mm]: start:stop:count or a value")
    train.add_argument("--r-ratio", type=grid, default=[-1.0],
                       help="load ratio of the cycles (plate only): -1 fully reversed, 0 from zero; a range starting below 0 "
                            "needs the = form: --r-ratio=-1:0:3")
    train.add_argument("--period", type=grid, default=[10.0], help="cycle period [s]")
    train.add_argument("--cycles", type=positive_float, default=1, help="load cycles per run")
    train.add_argument("--increments", type=positive_int, default=40, help="increments per cycle (a multiple of 4)")
    train.add_argument("--nodes", type=positive_int, default=None,
                       help="approximate mesh size [nodes] (default: the problem's Python constructor's mesh)")
    train.add_argument("--store", required=True, help="snapshot store of the HF runs (created if absent; complete "
                                                      "runs of the same scenarios are reused)")
    train.add_argument("--out", required=True, help="the reduced model (folder, replaced)")
    train.add_argument("--tolerance", type=fraction, default=0.01,
                       help="the predicted error every candidate must be under (fraction: 0.01 = 1 %%)")
    train.add_argument("--max-runs", type=positive_int, default=8, help="the most HF training runs (initial included)")
    train.add_argument("--measure", choices=("von_mises", "displacement", "p"), default="von_mises",
                       help="the error measure of the tolerance")
    train.set_defaults(func=run)


def _make_problem(problem: str, nodes: int | None, cycles: float, increments: int, params: dict) -> Any:
    """A reference problem of the box's parameters (module level: picklable for Dask)."""
    from romdask.problems import (
        cube_problem,
        default_plate_material,
        plate_n_for_nodes,
        plate_problem,
        specimen_problem,
    )

    common = {"n_cycles": cycles, "increments_per_cycle": increments, "material": default_plate_material()}
    if problem == "plate":
        mesh = {} if nodes is None else {"n": plate_n_for_nodes(nodes)}
        return plate_problem(**params, **common, **mesh)
    if problem == "specimen":
        mesh = {} if nodes is None else {"n": plate_n_for_nodes(nodes, element="C3D10")}
        return specimen_problem(**params, **common, **mesh)
    mesh = {} if nodes is None else {"n": max(1, round(nodes ** (1 / 3)) - 1)}
    return cube_problem(**params, **common, **mesh)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3g} %"


def run(args: argparse.Namespace) -> int:
    """Greedy training, one line per iteration."""
    from romdask.adaptive import greedy_train

    if args.problem != "plate" and args.r_ratio != [-1.0]:
        raise ValueError(f"--r-ratio: only --problem plate has a load ratio; {args.problem} is fully reversed "
                         "(leave --r-ratio out)")
    if args.increments % 4:
        raise ValueError(f"--increments {args.increments}: give a multiple of 4 (the reversals fall on increment ends)")
    writable_folder(args.store, "--store")
    writable_folder(args.out, "--out")
    axes = {"amplitude": args.amplitude, "period": args.period}
    if args.problem == "plate":
        axes["r_ratio"] = args.r_ratio
    names = list(axes)
    candidates = [dict(zip(names, values)) for values in itertools.product(*axes.values())]
    ends = sorted({args.amplitude[0], args.amplitude[-1]})
    initial = [{**candidates[0], "amplitude": a} for a in ends]
    make_problem = functools.partial(_make_problem, args.problem, args.nodes, args.cycles, args.increments)
    mesh = make_problem(candidates[0]).mesh
    print(f"romdask train: {args.problem}, {mesh.n_nodes:,} nodes, {len(candidates)} candidates "
          f"({' x '.join(f'{k} {len(v)}' for k, v in axes.items())}), tolerance {_pct(args.tolerance)} "
          f"{args.measure} (upper end of the 90 % interval), at most {args.max_runs} runs", flush=True)
    start = time.perf_counter()
    result = greedy_train(make_problem, candidates, args.store, args.out, initial=initial, tolerance=args.tolerance,
                          max_runs=args.max_runs, measure=args.measure)
    for h in result.history:
        line = (f"iteration {h['iteration']}: {len(h['training'])} runs, {h['n_modes']} modes, {h['n_points']} "
                f"points; worst candidate indicator {h['max_indicator']:.3g}")
        if h["max_predicted"] is not None:
            line += f", predicted {args.measure} error <= {_pct(h['max_predicted'])}"
        if h["added"] is not None:
            predicted = h["predicted"]
            line += (f"; added {h['added']}: indicator {h['indicator']:.3g}, predicted "
                     f"{'-' if predicted is None else f'{_pct(predicted[0])} ({_pct(predicted[1])}-{_pct(predicted[2])})'}"
                     f", true {_pct(h['true_error'].get(args.measure))}")
        print(line + f" ({h['seconds']:.1f} s)")
    print(f"{'converged' if result.converged else 'NOT converged'}: {result.stop_reason}")
    print(f"model: {args.out} ({len(result.runs)} training runs: {', '.join(result.runs)}; "
          f"{'calibrated' if result.calibration is not None else 'not calibrated: fewer than 3 added runs'}); "
          f"store: {args.store} ({time.perf_counter() - start:.1f} s)")
    return 0
