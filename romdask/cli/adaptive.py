"""``romdask adapt``: a saved reduced model on a new case, enriched with high-fidelity increments
(the built-in solver on the case's deck) wherever its error indicator flags the reduced result."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from romdask.cli.common import HelpFormatter, nonnegative_float, positive_float, positive_int

__all__ = ["register"]


def register(sub) -> None:
    adapt = sub.add_parser(
        "adapt", formatter_class=HelpFormatter,
        help="predict a deck's case with a reduced model, enriched with built-in high-fidelity increments where "
             "its error indicator flags it",
        description="The reduced model steps the case; where it is flagged (calibrated model: the predicted error "
                    "above --error-tolerance; otherwise the error indicator above --indicator-threshold) the built-in "
                    "solver runs --window increments of the deck from the reduced state, the model takes those "
                    "snapshots (new modes, Gappy bases, reduced points) and the reduced model goes on. The deck must "
                    "be of the training mesh and load patterns, with a law the built-in solver has (CalculiX's "
                    "elastic / *PLASTIC / *CREEP Norton).",
    )
    adapt.add_argument("model", help="reduced-model folder saved with its full bases (romdask reduce)")
    adapt.add_argument("--deck", required=True, help="CalculiX deck of the new case (mesh, conditions, law)")
    adapt.add_argument("--save-model", required=True, metavar="FOLDER",
                       help="where to write the enriched model (reusable by every romdask command)")
    adapt.add_argument("--out", default="prediction.npz", help="the result, reloadable by romdask compare "
                       "(with --model the enriched model)")
    adapt.add_argument("--window", type=positive_int, default=3, help="high-fidelity increments of the first "
                       "enrichment; doubled (up to --max-window) while the reduced model flags again before "
                       "stepping as far as the last window")
    adapt.add_argument("--max-window", type=positive_int, default=None,
                       help="largest window (default 4 x --window; = --window keeps it fixed)")
    adapt.add_argument("--solver", choices=("builtin", "calculix"), default="builtin",
                       help="high-fidelity solver of the enrichments: builtin (the deck's increments from the "
                            "reduced state) or calculix (ccx on the deck from t = 0 to the window's end: each "
                            "enrichment costs a run up to its time)")
    adapt.add_argument("--workdir", default=None, help="calculix: folder of its decks and results (default: a "
                       "temporary folder, removed)")
    adapt.add_argument("--max-enrichments", type=positive_int, default=20, help="at most this many enrichments")
    adapt.add_argument("--indicator-threshold", type=nonnegative_float, default=None,
                       help="model without calibration: enrich where the error indicator exceeds this "
                            "(default 0.005, romdask.adaptive.loop.THRESHOLD)")
    adapt.add_argument("--error-tolerance", type=positive_float, default=None,
                       help="calibrated model: enrich where the predicted von Mises error so far exceeds this "
                            "fraction of the largest (default 0.005: the calibration of the model under-predicts "
                            "the enriched model's errors)")
    adapt.add_argument("--overwrite", action="store_true", help="replace an existing --save-model folder")
    adapt.set_defaults(func=run_adapt)


def run_adapt(args: argparse.Namespace) -> int:
    from romdask.adaptive import AdaptiveOptions, adaptive_solve
    from romdask.adaptive.loop import THRESHOLD, TOLERANCE
    from romdask.io.calculix import read_problem
    from romdask.online import OnlineOptions
    from romdask.online.results import save_result
    from romdask.online.solver import TrainingEnvelopeWarning

    problem = read_problem(args.deck)
    online = OnlineOptions(indicator_threshold=THRESHOLD if args.indicator_threshold is None
                           else args.indicator_threshold,
                           error_tolerance=TOLERANCE if args.error_tolerance is None else args.error_tolerance)
    if args.max_window is not None and args.max_window < args.window:
        raise SystemExit(f"romdask adapt: error: --max-window {args.max_window} is smaller than --window {args.window}")
    options = AdaptiveOptions(online=online, window=args.window, max_window=args.max_window,
                              max_enrichments=args.max_enrichments,
                              solver=args.solver, workdir=args.workdir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        adaptive = adaptive_solve(args.model, problem, options)
    result, times = adaptive.result, adaptive.timings
    calibrated = adaptive.enriched.model.calibration is not None
    trigger = (f"predicted von Mises error above {online.error_tolerance:g}" if calibrated
               else f"error indicator above {online.indicator_threshold:g} (not calibrated)")
    print(f"{args.model}: {args.deck}: {result.times.size - 1} increments, {len(adaptive.enrichments)} enrichment(s) "
          f"where the {trigger}, {adaptive.hf_increments} high-fidelity increment(s) ({args.solver})")
    for i, e in enumerate(adaptive.enrichments, 1):
        predicted = "".join(f", predicted {m} {100 * v:.2g} %" for m, v in e["predicted"].items() if m == "von_mises")
        print(f"  {i}: flagged at t={result.times[e['flagged_step']]:g} (indicator {e['indicator']:.3g}{predicted}); "
              f"snapshots t={e['time']:g}..{result.times[e['step'] + e['hf_increments']]:g}; +{e['new_modes']} mode(s) -> "
              f"{e['n_modes']} modes, {e['n_points']} reduced points")
    if adaptive.stopped:
        print(f"  stopped: {adaptive.stopped}")
    print(f"  time: {times['total']:.2f} s (reduced {times['online']:.2f} s, high-fidelity {times['hf']:.2f} s, "
          f"enrichment {times['enrich']:.2f} s, state rebuild {times['replay']:.2f} s)")
    print(f"  error indicator of the enriched model along the case: max {result.indicator.max():.3g}")
    for message in result.warnings:
        print(f"romdask adapt: warning: {message}")
    saved = adaptive.save(Path(args.save_model), overwrite=args.overwrite)
    print(f"wrote {saved} (the enriched model)")
    print(f"wrote {save_result(args.out, result)}")
    return 0
