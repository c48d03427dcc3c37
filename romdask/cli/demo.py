"""``romdask demo``: the whole pipeline on the reference plate."""

from __future__ import annotations

import argparse

from romdask.cli.common import solver_progress

__all__ = ["register"]


def register(sub) -> None:
    demo = sub.add_parser(
        "demo", help="the whole pipeline on the plate with a hole: train (built-in solver), reduce, predict, compare",
    )
    demo.add_argument("--nodes", type=int, default=None, help="approximate mesh size (default 4000)")
    demo.add_argument("--train", type=float, nargs="+", default=None,
                      help="training amplitudes, top displacement [mm] (default 0.004 0.008)")
    demo.add_argument("--predict", type=float, default=None, help="predicted amplitude [mm] (default 0.006)")
    demo.add_argument("--cycles", type=float, default=3, help="cycles of the prediction (default 3)")
    demo.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    demo.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    demo.add_argument("--out", default="romdask-demo", help="output folder (default ./romdask-demo)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from romdask.demo import DemoSettings, run_demo, summary_table

    defaults = DemoSettings()
    settings = DemoSettings(
        nodes=args.nodes or defaults.nodes, train=tuple(args.train or defaults.train),
        predict=defaults.predict if args.predict is None else args.predict, cycles=args.cycles,
        workers=args.workers,
    )
    print(
        f"romdask demo: quarter plate with a hole (~{settings.nodes:,} nodes), training on "
        f"{', '.join(f'{a:g}' for a in settings.train)} mm ({settings.train_cycles:g} cycle each), "
        f"predicting {settings.predict:g} mm over {settings.cycles:g} cycles; output in {args.out}"
    )
    figures = run_demo(args.out, settings, progress=solver_progress, plots=not args.no_plots)
    rows = summary_table(figures, settings)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    for path in figures["files"]:
        print(f"wrote {path}")
    return 0
