"""``romdask predict`` and ``romdask compare``: a saved reduced model (or the local model a
dictionary picks) on a new case, its full fields where users look at them (ParaView, cgx), and its
errors against a high-fidelity run."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from romdask.cli.common import (
    PROGRESS_INTERVAL,
    HelpFormatter,
    finite_float,
    name_values,
    nonnegative_float,
    open_model,
    positive_float,
    positive_int,
    solver_progress,
)
from romdask.cli.dictionary import ROM_CHOICES, is_dictionary_dir, open_dictionary, rom_choice, selection_lines

__all__ = ["register"]


def register(sub) -> None:
    pred = sub.add_parser(
        "predict", formatter_class=HelpFormatter,
        help="run a saved reduced model on a new case: a deck, cyclic values or amplitude tables",
        description="The case is a CalculiX deck of the training mesh and load patterns (--deck: its values, "
                    "amplitudes and steps), a triangle wave of the patterns' peak values (--set NAME=VALUE and the "
                    "cyclic options), or any history per pattern (--amplitude NAME=file.csv). Values are in the "
                    "units of the training runs.",
    )
    pred.add_argument("model", help="reduced-model or dictionary folder (romdask reduce [--local])")
    pred.add_argument("--deck", default=None, help="CalculiX deck of the new case (same mesh and pattern names; its "
                      "temperatures and body forces too: any temperature fields, by node id)")
    pred.add_argument("--set", nargs="+", action="extend", metavar="NAME=VALUE",
                      help="cyclic case: the peak value of each pattern (e.g. top_displacement=0.006; a "
                           "centrifugal pattern's omega^2, a gravity pattern's acceleration); with --amplitude: a "
                           "factor on the table. Athermal models only (a thermal model predicts --deck cases)")
    pred.add_argument("--amplitude", nargs="+", action="extend", metavar="NAME=FILE",
                      help="the history of a pattern, a CSV 'time, value' (piecewise linear); every pattern needs one")
    pred.add_argument("--cycles", type=positive_float, default=1, help="cyclic case: number of cycles")
    pred.add_argument("--period", type=positive_float, default=10.0,
                      help="cyclic case: period [s]; any case longer than one period: the error indicator per cycle")
    pred.add_argument("--r-ratio", type=finite_float, default=-1.0,
                      help="cyclic case: load ratio min/max (-1: fully reversed)")
    pred.add_argument("--increments-per-cycle", type=positive_int, default=40,
                      help="cyclic case: time increments per cycle")
    pred.add_argument("--increments-per-segment", type=positive_int, default=10,
                      help="--amplitude case: increments between two times of the tables")
    pred.add_argument("--indicator-threshold", type=nonnegative_float, default=None,
                      help="model without calibration: flag output times whose error indicator (Gappy-POD misfit "
                           "of the stress at the reduced points, relative to the training's) exceeds this (default "
                           "0.01); a calibrated model flags where its predicted von Mises error exceeds 1 %%")
    pred.add_argument("--out", default="prediction.npz",
                      help="the result, reloadable by romdask compare")
    pred.add_argument("--vtu", default=None, metavar="STEM",
                      help="full fields as a ParaView series STEM.pvd (displacement, stress, von Mises, plastic "
                           "strain at nodes and cells, error indicator)")
    pred.add_argument("--frd", default=None, metavar="FILE", help="full fields as a CalculiX .frd (cgx)")
    pred.add_argument("--csv", default=None, metavar="FILE",
                      help="per output time: error indicator, largest von Mises at the reduced points, reactions")
    pred.add_argument("--fields", choices=("replay", "gappy"), default="replay",
                      help="stress and plastic strain everywhere by replaying the law along the reduced strains "
                           "(accurate) or by Gappy-POD from the reduced points (faster)")
    pred.add_argument("--store", default=None,
                      help="the training store: its mesh with its node sets, for --vtu (default: the model's mesh)")
    _add_rom_option(pred)
    pred.set_defaults(func=predict)

    cmp = sub.add_parser(
        "compare", formatter_class=HelpFormatter,
        help="errors of a prediction against a high-fidelity run (displacement, von Mises, plastic strain)")
    cmp.add_argument("model", help="reduced-model or dictionary folder")
    cmp.add_argument("prediction", help="a prediction (.npz of romdask predict --out) or a deck (.inp) to predict now")
    cmp.add_argument("reference", help="the reference CalculiX run's .frd (its .inp and .dat by stem)")
    cmp.add_argument("--inp", default=None, help="the reference's deck (default: the .frd's stem .inp)")
    cmp.add_argument("--dat", default=None,
                     help="the reference's .dat with S at the integration points (default: the stem's, if any; "
                          "without it the law is replayed on the reference's strains)")
    cmp.add_argument("--period", type=positive_float, default=None, help="cycle period [s]: errors per cycle too (default: over the whole history only)")
    cmp.add_argument("--fields", choices=("replay", "gappy"), default="replay",
                     help="the prediction's stress and plastic strain by law replay or Gappy-POD")
    cmp.add_argument("--json", default=None, metavar="FILE", help="also write the table as JSON")
    _add_rom_option(cmp)
    cmp.set_defaults(func=compare)


def _add_rom_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rom", default=None, metavar="|".join((*ROM_CHOICES, "NAME")),
                        help="a dictionary: which local model. auto: the classifier's (the nearest training run's "
                             "cluster), the better of its two first by the error indicator when it hesitates; "
                             "classifier: its first always; best-of-2: its two first always, the lower indicator "
                             "kept; NAME (rom0, rom1, ...): that one (default: auto)")


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    """(model, dictionary or None) of ``args.model``; the model of a dictionary is its first local
    model (they share the mesh and the pattern names: the case is read with it)."""
    if is_dictionary_dir(args.model):
        dictionary = open_dictionary(args.model)
        return dictionary.models[0], dictionary
    if args.rom is not None:
        raise ValueError(f"--rom picks a local model of a dictionary (romdask reduce --local); {args.model} is a "
                         "single reduced model: drop --rom")
    return open_model(args.model), None


def _use_local(args: argparse.Namespace, dictionary, index: int) -> Any:
    """The local model ``index``; ``args.model`` becomes its folder (full fields, messages)."""
    from romdask.online.dictionary import local_model_path

    args.model = str(local_model_path(args.model, dictionary.names[index]))
    return dictionary.models[index]


# ---- the case --------------------------------------------------------------------------------------


def _grid(tables: list, per_segment: int) -> np.ndarray:
    """The union of the tables' times (and 0), each interval split into ``per_segment`` increments."""
    if per_segment < 1:
        raise ValueError(f"--increments-per-segment must be >= 1; got {per_segment}")
    knots = np.unique(np.concatenate([[0.0], *(t.times for t in tables)]))
    knots = knots[knots >= 0.0]
    if knots.size < 2:
        raise ValueError("the amplitude tables end at t = 0: give times after 0")
    steps = [np.linspace(a, b, per_segment + 1)[:-1] for a, b in zip(knots[:-1], knots[1:])]
    return np.concatenate([*steps, knots[-1:]])


def _scenario(args: argparse.Namespace, model) -> tuple[Any, str]:
    """(Scenario, a description of the case) from --deck, --amplitude or --set."""
    from romdask.online import Scenario, problem_scenario
    from romdask.problem.files import read_amplitude_csv
    from romdask.problem.loads import Amplitude, cyclic

    if args.deck:
        if args.set or args.amplitude:
            raise ValueError("--deck gives every value, amplitude and step of the case: drop --set / --amplitude")
        from romdask.io.calculix import read_problem

        problem = read_problem(args.deck)
        try:
            return problem_scenario(model, problem), str(args.deck)
        except ValueError as exc:
            raise ValueError(f"{exc} (model {args.model})") from None
    if getattr(model, "thermal", False):
        raise ValueError(f"{args.model} is a thermal model: its cases need temperatures; give a deck with them "
                         "(--deck new.inp: *INITIAL CONDITIONS,TYPE=TEMPERATURE and *TEMPERATURE), or use the Python "
                         "API (romdask.online.Scenario with a ScenarioTemperature)")
    values = name_values(args.set, "--set")
    tables = name_values(args.amplitude, "--amplitude", parse=read_amplitude_csv)
    if tables:
        alone = sorted(set(values) - set(tables))
        if alone:
            raise ValueError(f"--set {alone} without --amplitude: with amplitude tables every pattern needs its table "
                             "(a constant is a one-row CSV)")
        coefficients = {n: Amplitude(t.times, values.get(n, 1.0) * t.values) for n, t in tables.items()}
        times = _grid(list(tables.values()), args.increments_per_segment)
        return Scenario(times, coefficients), f"amplitude tables of {', '.join(tables)}"
    if not values:
        raise ValueError("give the case: --deck new.inp, --set NAME=VALUE (a cyclic case) or --amplitude NAME=file.csv")
    amplitude = cyclic(period=args.period, n_cycles=args.cycles, r_ratio=args.r_ratio)
    n_steps = max(1, round(args.increments_per_cycle * args.cycles))
    times = np.linspace(0.0, args.period * args.cycles, n_steps + 1)
    coefficients = {name: Amplitude(amplitude.times, v * amplitude.values) for name, v in values.items()}
    return Scenario(times, coefficients), f"{args.cycles:g} cycle(s) of period {args.period:g} s"


# ---- predict ---------------------------------------------------------------------------------------


def _summary(args: argparse.Namespace, case: str, result, options, units: dict | None, calibration=None) -> None:
    from romdask.cli.calibrate import LABELS, not_calibrated_text, predicted_error_line
    from romdask.online.envelope import unit

    threshold = options.indicator_threshold
    t = result.times
    seconds, force, stress = unit(units, "time"), unit(units, "force"), unit(units, "stress")
    print(f"{args.model}: {case}: {t.size - 1} increments, t = {t[0]:g}..{t[-1]:g} {seconds}, solved in "
          f"{result.wall_time:.3f} s ({int(result.iterations.sum())} Newton iterations, {int(result.cuts.sum())} cuts)")
    for i, name in enumerate(result.lifting_names):
        r = result.reactions[:, i]
        print(f"  reaction of {name}: min {r.min():.6g} {force}, max {r.max():.6g} {force}")
    print(f"  largest von Mises stress at the reduced points: {result.max_von_mises.max():.6g} {stress}")
    indicator = result.indicator
    peak = "unavailable (no Gappy basis)" if np.all(np.isnan(indicator)) else f"max {np.nanmax(indicator):.3g}"
    quantity = f" ({result.indicator_quantity} misfit)" if result.indicator_quantity else ""
    measure = LABELS.get(options.error_measure, options.error_measure)
    spread = calibration.not_calibrated.get(options.error_measure) if calibration is not None else None
    if result.predicted_error and spread is not None:
        print(f"  error indicator{quantity}: {peak}; {int(result.flagged.sum())} output time(s) above {threshold:g}; "
              f"{measure} {not_calibrated_text(spread)}")
    elif result.predicted_error and calibration is not None:
        print(f"  error indicator{quantity}: {peak}; {int(result.flagged.sum())} output time(s) with a predicted "
              f"{measure} error above {100 * options.error_tolerance:g} %")
    else:
        why = "" if calibration is None else f" for the {calibration.quantity} indicator"
        print(f"  error indicator{quantity}: {peak}; {int(result.flagged.sum())} output time(s) above {threshold:g}; "
              f"not calibrated{why} (romdask calibrate)")
    period = getattr(args, "period", None)
    if period and t[-1] - t[0] > period * (1 + 1e-9) and np.any(np.isfinite(indicator)):
        from romdask.online.compare import cycle_index

        cycles = cycle_index(t, period)
        peaks = [np.nanmax(indicator[cycles == c]) for c in range(int(cycles.max()) + 1)]
        print(f"  error indicator per cycle of {period:g} {seconds} (largest): {', '.join(f'{v:.3g}' for v in peaks)}")
    envelope = f"OUTSIDE for {len(result.warnings)} pattern(s)" if result.warnings else "inside"
    print(f"  training envelope: {envelope}")
    if result.predicted_error and calibration is not None:
        print(f"  {predicted_error_line(result, calibration.coverage, calibration)}")


def _write_csv(path: str, result) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", "error_indicator", "flagged", "max_von_mises_reduced_points",
                      *(f"reaction_{n}" for n in result.lifting_names),
                      *(f"coefficient_{n}" for n in (*result.lifting_names, *result.load_names))])
        for k, t in enumerate(result.times):
            out.writerow([f"{t:.9g}", f"{result.indicator[k]:.6g}", int(result.flagged[k]),
                          f"{result.max_von_mises[k]:.9g}", *(f"{v:.9g}" for v in result.reactions[k]),
                          *(f"{v:.9g}" for v in result.lifting_coefficients[k]),
                          *(f"{v:.9g}" for v in result.load_coefficients[k])])
    return path


def _law(model, fields: str):
    if fields == "gappy":
        return None
    if len(model.materials) != 1:
        raise ValueError("the model has several laws: the law replay needs one; use --fields gappy")
    return model.materials[0][0]


def _full_fields(args: argparse.Namespace, model, result) -> None:
    from romdask.io.fields import write_prediction_frd, write_prediction_vtu
    from romdask.online import open_full, prediction_fields

    full = open_full(args.model)
    mesh = full.mesh
    if args.store:
        from romdask.problem.patterns import mesh_fingerprint
        from romdask.store import SnapshotStore

        try:
            mesh = SnapshotStore.open(args.store, mode="r").layout.mesh  # the same order, with its sets
        except ValueError as exc:
            raise ValueError(f"--store {args.store}: {exc}") from None
        n_nodes = full.modes.shape[0] // 3 if full.modes is not None else mesh.n_nodes
        if mesh.n_nodes != n_nodes:
            raise ValueError(f"--store {args.store}: its mesh has {mesh.n_nodes:,} nodes, the model {args.model} "
                             f"{n_nodes:,}: pass the model's training store, or omit --store")
        trained = (model.metadata.get("reduce", {}).get("signature") or {}).get("mesh")
        if trained and mesh_fingerprint(mesh)["sha256"] != trained.get("sha256"):
            raise ValueError(f"--store {args.store}: its mesh (node and element ids, connectivity) differs from "
                             f"the training mesh of the model {args.model}, with as many nodes: pass the model's "
                             "training store, or omit --store")
    if mesh is None:
        raise ValueError(f"{args.model} holds no mesh (saved by an older romdask): pass --store (the training "
                         "store) or re-run `romdask reduce`")
    fields = prediction_fields(full, result, _law(model, args.fields), dual=args.fields)
    options = {"stress": fields["stress"], "plastic_strain": fields["p"], "indicator": result.indicator,
               "ip_points": full.ip_points}
    if args.vtu:
        series = write_prediction_vtu(args.vtu, mesh, result.times, fields["displacement"], **options)
        print(f"wrote {series.pvd} ({len(series.files)} files)")
    if args.frd:
        path = write_prediction_frd(args.frd, mesh, result.times, fields["displacement"], **options,
                                    description=f"romdask {Path(args.model).name}")
        print(f"wrote {path}")


def _solve(model, scenario, options, units: dict | None, command: str = "predict"):
    """The reduced solve with progress lines after 5 s and the training-envelope warnings as
    ``romdask <command>: warning:`` lines on stderr (they stay in ``result.warnings``)."""
    import sys
    import warnings

    from romdask.online.envelope import unit
    from romdask.online.solver import TrainingEnvelopeWarning, solve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        result = solve(model, scenario, options, progress=solver_progress(
            f"romdask {command}", delay=PROGRESS_INTERVAL, unit=unit(units, "time")))
    for message in result.warnings:
        print(f"romdask {command}: warning: {message}", file=sys.stderr)
    return result


def _solve_local(args: argparse.Namespace, dictionary, scenario, options, command: str = "predict"):
    """:meth:`ModelDictionary.solve` with ``--rom``; prints which local model and why. Returns the
    LocalPrediction (its training-envelope warnings as ``romdask <command>: warning:`` lines)."""
    import sys
    import warnings

    from romdask.online.envelope import unit
    from romdask.online.solver import TrainingEnvelopeWarning

    choice = rom_choice(args.rom or "auto", dictionary, args.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingEnvelopeWarning)
        prediction = dictionary.solve(scenario, options, choice=choice, progress=solver_progress(
            f"romdask {command}", delay=PROGRESS_INTERVAL, unit=unit(dictionary.metadata.get("units"), "time")))
    lines = selection_lines(dictionary, prediction)
    print(f"{args.model}: {lines[0]}")
    for line in lines[1:]:
        print(line)
    for message in prediction.result.warnings:
        print(f"romdask {command}: warning: {message}", file=sys.stderr)
    return prediction


def predict(args: argparse.Namespace) -> int:
    from romdask.online import OnlineOptions
    from romdask.online.results import save_result

    model, dictionary = _open(args)
    scenario, case = _scenario(args, model)
    options = OnlineOptions() if args.indicator_threshold is None else OnlineOptions(
        indicator_threshold=args.indicator_threshold)
    local_model = None
    if dictionary is None:
        result = _solve(model, scenario, options, model.metadata.get("units"))
    else:
        prediction = _solve_local(args, dictionary, scenario, options)
        result, local_model = prediction.result, dictionary.names[prediction.rom]
        model = _use_local(args, dictionary, prediction.rom)
    units = model.metadata.get("units")
    _summary(args, case, result, options, units, model.calibration)
    print(f"wrote {save_result(args.out, result, local_model=local_model)}")
    if args.csv:
        print(f"wrote {_write_csv(args.csv, result)}")
    if args.vtu or args.frd:
        _full_fields(args, model, result)
    return 0


# ---- compare ---------------------------------------------------------------------------------------


def _prediction(args: argparse.Namespace, model, dictionary=None):
    """(the prediction, what it is, the model that made it)."""
    from romdask.online import OnlineOptions
    from romdask.online.results import load_result, saved_local_model

    path = Path(args.prediction)
    if path.suffix.lower() == ".inp":
        from romdask.io.calculix import read_problem
        from romdask.online import problem_scenario

        try:
            scenario = problem_scenario(model, read_problem(path))
        except ValueError as exc:
            raise ValueError(f"{exc} (model {args.model})") from None
        if dictionary is not None:
            prediction = _solve_local(args, dictionary, scenario, OnlineOptions(), "compare")
            return prediction.result, f"prediction of {path.name}", _use_local(args, dictionary, prediction.rom)
        result = _solve(model, scenario, OnlineOptions(), model.metadata.get("units"), "compare")
        return result, f"prediction of {path.name}", model
    if dictionary is not None:
        name = saved_local_model(path)
        if name is None:
            raise ValueError(f"{path}: records no local model (a plain model's prediction, or written by an older "
                             f"romdask): compare it with the model that predicted it, or give {args.model}/roms/NAME")
        if name not in dictionary.names:
            raise ValueError(f"{path}: predicted by local model {name!r}; {args.model} has "
                             f"{', '.join(dictionary.names)}: compare with the dictionary that predicted it")
        if args.rom is not None and args.rom != name:
            raise ValueError(f"--rom {args.rom}: {path} was predicted by local model {name}; drop --rom")
        model = _use_local(args, dictionary, dictionary.names.index(name))
    result = load_result(path)
    lifting = tuple(model.lifting["lifting_names"]) if model.lifting is not None else ()
    if (result.coordinates.shape[1] != model.n_modes or tuple(result.lifting_names) != lifting
            or tuple(result.load_names) != tuple(model.load_names)):
        raise ValueError(f"{path}: a prediction of another model ({result.coordinates.shape[1]} modes, patterns "
                         f"{[*result.lifting_names, *result.load_names]}) than {args.model} ({model.n_modes} modes, "
                         f"patterns {[*lifting, *model.load_names]}): compare with the model that predicted it")
    return result, f"prediction {path.name}", model


def _reference_files(args: argparse.Namespace) -> tuple[Path, Path, Path | None]:
    frd = Path(args.reference)
    inp = Path(args.inp) if args.inp else frd.with_suffix(".inp")
    dat = Path(args.dat) if args.dat else frd.with_suffix(".dat")
    if args.dat and not dat.is_file():
        raise FileNotFoundError(f"--dat {dat}: no such file")
    return inp, frd, dat if dat.is_file() else None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3g} %"


def compare(args: argparse.Namespace) -> int:
    from romdask.online import open_full, prediction_fields
    from romdask.online.compare import (
        ERROR_NORMS,
        calculix_reference,
        compare_prediction,
    )

    model, dictionary = _open(args)
    result, what, model = _prediction(args, model, dictionary)
    full = open_full(args.model)
    law = model.materials[0][0]
    inp, frd, dat = _reference_files(args)
    try:
        reference = calculix_reference(full, law, inp, frd, dat)
    except ValueError as exc:
        if "not the model's mesh" not in str(exc):
            raise
        raise ValueError(f"{exc} (model {args.model}): compare with a run on the model's training mesh") from None
    fields = prediction_fields(full, result, _law(model, args.fields), dual=args.fields)
    rows = compare_prediction(fields, result.times, reference, period=args.period)
    print(f"romdask compare: {what} by {args.model} against {frd.name} ({reference.times.size} output times; "
          f"reference stress from {'the .dat' if reference.stress_source == 'dat' else 'the law replayed on its strains'}"
          f"; prediction's stress by {'law replay' if args.fields == 'replay' else 'Gappy-POD'})")
    print(f"  {'':10} {'displacement':>14} {'von Mises':>12} {'plastic strain':>15}")
    for row in rows:
        label = "all" if row["cycle"] == "all" else f"cycle {row['cycle']}"
        print(f"  {label:10} {row['displacement']:>14.3e} {_percent(row.get('von_mises')):>12} "
              f"{_percent(row.get('p')):>15}")
    first = rows[0]
    from romdask.online.envelope import unit

    print(f"  errors are relative (see below); reference max von Mises {first['max_von_mises']:.6g} "
          f"{unit(model.metadata.get('units'), 'stress')}, max plastic strain {first.get('max_p', 0.0):.4g}")
    for name, norm in ERROR_NORMS.items():
        print(f"  {name}: {norm}")
    if args.json:
        Path(args.json).write_text(json.dumps({"prediction": what, "reference": str(frd), "rows": rows,
                                               "norms": ERROR_NORMS, "stress_source": reference.stress_source},
                                              indent=1))
        print(f"wrote {args.json}")
    return 0
