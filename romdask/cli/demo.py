"""``romdask demo``: the whole pipeline on a reference problem (the plate, or the spinning blade)."""

from __future__ import annotations

import argparse
from pathlib import Path

from romdask.cli.common import (HelpFormatter, finite_float, positive_float, positive_int, solver_progress,
                                writable_folder)

__all__ = ["register"]


def register(sub) -> None:
    demo = sub.add_parser(
        "demo", help="the whole pipeline on a reference problem: train (built-in solver), reduce, predict, compare",
        description="plate (default): the quarter plate with a hole under cyclic displacement; thermal: a spinning "
                    "blade under flight cycles (temperature field, temperature-dependent viscoplastic law, "
                    "thermal expansion, centrifugal load)",
        formatter_class=HelpFormatter,
    )
    demo.add_argument("--problem", choices=("plate", "thermal"), default="plate",
                      help="the reference problem")
    demo.add_argument("--nodes", type=positive_int, default=None,
                      help="approximate mesh size (plate: default 4000; thermal: default 525, blade size 6)")
    demo.add_argument("--train", nargs="+", default=None,
                      help="training runs: plate: top displacements [mm] (default 0.004 0.008); thermal: "
                           "PEAK:OMEGA flights, tip temperature [C] and rotation speed [rad/s] "
                           "(default 925:1350 975:1450, two cycles each)")
    demo.add_argument("--predict", default=None,
                      help="the predicted case: plate: amplitude [mm] (default 0.006); thermal: PEAK:OMEGA "
                           "(default 950:1400)")
    demo.add_argument("--cycles", type=positive_float, default=3, help="cycles of the prediction")
    demo.add_argument("--workers", type=positive_int, default=None, help="LocalCluster workers (default: one per core)")
    demo.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    demo.add_argument("--out", default=None, help="output folder (default ./romdask-demo, thermal: ./romdask-demo-thermal)")
    demo.set_defaults(func=run)


def _size(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e7 else f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def _print(figures: dict, rows, out: str) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    sizes = figures["output_bytes"]
    print(f"wrote {_size(sum(sizes.values()))} into {out}:")
    width = max(len(name) for name in sizes)
    for name, n in sizes.items():
        print(f"  {name:<{width}}  {_size(n):>8}")
    print(f"summary: {Path(out) / 'summary.json'} (the figures above, sizes and paths)")


def _plan(out: str, n_bytes: int) -> None:
    print(f"romdask demo: will write about {_size(n_bytes)} into {out} (snapshot store, model, VTU series, "
          "plots); delete the folder when done")


def _amplitude(text: str, option: str) -> float:
    try:
        return finite_float(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{option}: an amplitude [mm]: {exc}") from None


def _flight(text: str) -> tuple[float, float]:
    try:
        peak, omega = (finite_float(v) for v in text.split(":"))
    except (ValueError, argparse.ArgumentTypeError):
        raise SystemExit(f"romdask demo: error: a thermal flight is PEAK:OMEGA (e.g. 950:1400); got {text!r}") from None
    return peak, omega


def run(args: argparse.Namespace) -> int:
    writable_folder(args.out or ("romdask-demo-thermal" if args.problem == "thermal" else "romdask-demo"), "--out")
    if args.problem == "thermal":
        return _run_thermal(args)
    from romdask.demo import DemoSettings, planned_output, run_demo, summary_table

    defaults = DemoSettings()
    out = args.out or "romdask-demo"
    settings = DemoSettings(
        nodes=args.nodes or defaults.nodes,
        train=tuple(_amplitude(str(a), "--train") for a in args.train or defaults.train),
        predict=defaults.predict if args.predict is None else _amplitude(args.predict, "--predict"),
        cycles=args.cycles,
        workers=args.workers,
    )
    print(
        f"romdask demo: quarter plate with a hole (~{settings.nodes:,} nodes), training on "
        f"{', '.join(f'{a:g}' for a in settings.train)} mm ({settings.train_cycles:g} cycle each), "
        f"predicting {settings.predict:g} mm over {settings.cycles:g} cycles; output in {out}"
    )
    _plan(out, planned_output(settings))
    figures = run_demo(out, settings, progress=solver_progress, plots=not args.no_plots)
    _print(figures, summary_table(figures, settings), out)
    return 0


def _run_thermal(args: argparse.Namespace) -> int:
    from romdask.demo import estimate_output
    from romdask.demo_thermal import (
        ThermalDemoSettings,
        run_thermal_demo,
        thermal_summary_table,
    )
    from romdask.problems.thermal import blade_n_for_nodes, blade_node_count

    defaults = ThermalDemoSettings()
    if args.cycles != int(args.cycles) or args.cycles < 1:
        raise SystemExit(f"romdask demo: error: --cycles must be a whole number of flights >= 1; got {args.cycles:g}")
    out = args.out or "romdask-demo-thermal"
    settings = ThermalDemoSettings(
        size=blade_n_for_nodes(args.nodes) if args.nodes else defaults.size,
        train=tuple(_flight(f) for f in args.train) if args.train else defaults.train,
        predict=_flight(args.predict) if args.predict else defaults.predict,
        cycles=int(args.cycles), workers=args.workers,
    )
    flights = ", ".join(f"{p:g} C / {w:g} rad/s" for p, w in settings.train)
    print(
        f"romdask demo: spinning blade under flight cycles ({blade_node_count(settings.size):,} nodes), training on "
        f"{flights} ({settings.train_cycles} cycle each), predicting {settings.predict[0]:g} C / "
        f"{settings.predict[1]:g} rad/s over {settings.cycles} cycles; output in {out}"
    )
    _plan(out, estimate_output([*(settings.problem(f, settings.train_cycles) for f in settings.train),
                                settings.problem(settings.predict, settings.cycles)]))
    figures = run_thermal_demo(out, settings, progress=solver_progress, plots=not args.no_plots)
    _print(figures, thermal_summary_table(figures, settings), out)
    return 0
