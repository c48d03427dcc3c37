"""``romdask calibrate``: calibrate a reduced model's error indicator on held-out runs of a store
(made by ``romdask ingest``), so that its predictions carry a predicted error with an interval."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any

from romdask.cli.common import HelpFormatter, fraction, is_reduced_model

__all__ = ["calibration_lines", "not_calibrated_text", "predicted_error_line", "register"]

#: error measures in the order they are printed, with their names
LABELS = {"von_mises": "von Mises", "displacement": "displacement", "p": "p"}


def register(sub) -> None:
    cal = sub.add_parser(
        "calibrate", formatter_class=HelpFormatter,
        help="calibrate a reduced model's error indicator on held-out runs (predicted errors with an interval)",
        description="Predict each run of --runs with the model, measure its true errors against the run, fit "
                    "indicator -> error (a Gaussian process per error measure) and widen its interval to the "
                    "coverage measured by leaving one run out (split-conformal). The runs must be complete runs "
                    "of a store on the model's mesh with their load descriptions (romdask ingest of the decks and "
                    "results), not training runs; >= 3, and >= 9 for a 90 % interval that is conformal.")
    cal.add_argument("model", help="reduced-model folder (romdask reduce), rewritten with the calibration")
    cal.add_argument("--store", required=True, help="snapshot store holding the calibration runs")
    cal.add_argument("--runs", required=True, nargs="+", metavar="NAME", help="the store's calibration runs")
    cal.add_argument("--coverage", type=fraction, default=0.9, help="coverage of the prediction interval, 0 < C < 1")
    cal.add_argument("--dry-run", action="store_true", help="print the calibration, leave the model unchanged")
    cal.set_defaults(func=run)


def _pct(value: float) -> str:
    return f"{100 * value:.2g} %"


def _interval(values: Any, calibrated: bool = True) -> str:
    from romdask.online.indicator import MAX_HALF_WIDTH

    if not calibrated:
        return f"{_pct(values[0])} (not calibrated)"
    if not 0 < values[0] <= values[2] <= values[0] * 10.0**MAX_HALF_WIDTH:
        return f"{_pct(values[0])} (interval wider than a factor {10.0**MAX_HALF_WIDTH:g})"
    return f"{_pct(values[0])} ({100 * values[1]:.2g}-{100 * values[2]:.2g} %)"


def not_calibrated_text(spread: float) -> str:
    """``not calibrated (leave-one-out spread 2.4 decades)``."""
    return f"not calibrated (leave-one-out spread {spread:.3g} decades)"


def calibration_lines(calibration: Any, *, runs: bool = True) -> list[str]:
    """Readable lines of a :class:`~romdask.online.indicator.Calibration`: per run (``runs``), the
    indicator, true errors and leave-one-out predictions; Spearman correlations; coverage and
    spread; the measures not calibrated."""
    from romdask.online.indicator import MAX_SPREAD

    report: Mapping[str, Any] = calibration.report
    measures = [m for m in LABELS if m in calibration.errors]
    not_calibrated = calibration.not_calibrated
    share = f"{100 * calibration.coverage:.0f} %"
    lines = [f"calibrated on {len(report.get('runs', []))} run(s) ({calibration.quantity} indicator, {share} "
             f"interval): {', '.join(report.get('runs', []))}"]
    if report.get("training_runs"):
        lines.append(f"  warning: training run(s) among them (optimistic errors): {', '.join(report['training_runs'])}")
    if runs:
        lines.append(f"  per run: indicator, true error, predicted with the run left out: median ({share} interval)")
        for row in report.get("rows", []):
            parts = [f"{LABELS[m]} {_pct(row['error'][m])}, predicted "
                     f"{_interval(row['predicted'][m], m not in not_calibrated)}"
                     for m in measures if m in row.get("error", {})]
            lines.append(f"  {row['run']}: indicator {row['indicator']:.3g}; " + "; ".join(parts))
    rho = report.get("spearman", {})
    lines.append("  Spearman rank correlation of the runs' indicator and error: " + ", ".join(
        f"{LABELS[m]} {rho[m]:.3f}" if rho.get(m) is not None else f"{LABELS[m]} n/a" for m in measures))
    loo = report.get("leave_one_out", {})
    spread = calibration.spread
    lines.append("  leave-one-run-out coverage: " + ", ".join(
        f"{LABELS[m]} {100 * loo[m]['coverage']:.0f} % (z {loo[m]['z']:.2f}"
        + (f", spread {spread[m]:.3g} decades)" if math.isfinite(spread[m]) else ")") for m in measures if m in loo))
    if not_calibrated:
        lines.append(f"  {', '.join(LABELS[m] for m in measures if m in not_calibrated)}: not calibrated, no "
                     f"predicted error: a left-out run's final error was missed by more than a factor "
                     f"{10.0**MAX_SPREAD:g} (leave-one-out spread above {MAX_SPREAD:g} decade): calibrate on more "
                     "runs")
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    return lines


def predicted_error_line(result: Any, coverage: float, calibration: Any = None) -> str:
    """``predicted error (90 % interval): von Mises 0.8 % (0.5-1.3 %), ...`` at the last output time.

    With the ``calibration``: a measure not calibrated says so with its leave-one-out spread; a
    prediction at an indicator outside the calibration pairs' is marked extrapolated, and where
    there is none (its interval wider than a factor 100) the line says why.
    """
    import numpy as np

    from romdask.online.indicator import MAX_HALF_WIDTH, format_error

    finite = np.isfinite(result.indicator)
    indicator = float(np.max(result.indicator[finite])) if finite.any() else float("nan")
    parts = []
    for m, label in LABELS.items():
        if m not in result.predicted_error:
            continue
        value = result.predicted_error[m][-1]
        if calibration is None or m not in calibration.errors or np.isnan(indicator):
            parts.append(f"{label} {format_error(value)}")
            continue
        if m in calibration.not_calibrated:
            parts.append(f"{label} {not_calibrated_text(calibration.not_calibrated[m])}")
            continue
        low, high = calibration.calibrated_range(m)
        where = "below" if indicator < low else "above" if indicator > high else ""
        outside = f"indicator {indicator:.3g} {where} the calibrated {low:.3g} to {high:.3g}"
        if np.all(np.isfinite(value)):
            parts.append(f"{label} {format_error(value)}" + (f" extrapolated: {outside}" if where else ""))
        else:
            parts.append(f"{label} not predicted (interval wider than a factor {10.0**MAX_HALF_WIDTH:g} at "
                         + (outside if where else f"indicator {indicator:.3g}") + ")")
    return f"predicted error ({100 * coverage:.0f} % interval): " + ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from romdask.offline.calibration import calibration_pairs, fit_calibration, write_calibration

    if not is_reduced_model(args.model):
        raise ValueError(f"{args.model} is not a reduced model (romdask reduce writes one; a dictionary's local "
                         "models are calibrated one by one: MODEL/roms/NAME)")
    if len(set(args.runs)) < 3:
        raise ValueError(f"--runs: a calibration needs at least 3 distinct held-out runs; got {args.runs}")
    calibration = fit_calibration(calibration_pairs(args.model, args.store, args.runs), coverage=args.coverage)
    print(f"{args.model}: " + calibration_lines(calibration)[0])
    for line in calibration_lines(calibration)[1:]:
        print(line)
    if args.dry_run:
        print(f"--dry-run: {args.model} unchanged")
    else:
        write_calibration(args.model, calibration)
        print(f"wrote the calibration into {args.model} (romdask predict now prints predicted errors)")
    return 0
