"""The ``romdask`` entry point: the parser of every subcommand, logging, and one error policy."""

from __future__ import annotations

import argparse
import logging
import sys

from romdask.cli import demo, hifi, offline, online, store

__all__ = ["main"]

log = logging.getLogger("romdask")

#: errors a command reports as ``romdask <command>: error: <message>`` (exit 1); anything else is
#: a bug and keeps its traceback
_USER_ERRORS = (ValueError, OSError, ImportError, TimeoutError)


def _user_error(exc: BaseException) -> bool:
    # romdask's own RuntimeErrors (ConvergenceError, OnlineConvergenceError, CalculixError) say
    # what failed and how to fix it; other RuntimeErrors are bugs
    return isinstance(exc, _USER_ERRORS) or (
        isinstance(exc, RuntimeError) and type(exc).__module__.startswith("romdask"))


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    top = argparse.ArgumentParser(
        prog="romdask",
        description="Nonintrusive reduced-order models of elastoviscoplastic FE computations: ingest a solver's "
                    "runs, reduce them on a Dask cluster, predict new loadings in seconds.",
    )
    top.add_argument("-v", "--verbose", action="count", default=0,
                     help="more log output (-v: romdask's steps and dask warnings, -vv: everything)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, hifi, store, offline, online):
        module.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run ``romdask`` with ``argv`` (default: the command line); the exit code."""
    args = parser().parse_args(argv)
    restore = _logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        if not _user_error(exc):
            raise
        notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", ()))
        print(f"romdask {args.command}: error: {exc}{notes}", file=sys.stderr)
        return 1
    finally:
        restore()  # main() called in a process that goes on (tests, notebooks) leaves logging as it was


def _logging(verbose: int):
    """romdask's messages at WARNING (-v: INFO, -vv: DEBUG) on stderr; dask and distributed only
    from ERROR (-v: WARNING, -vv: INFO): a LocalCluster's start-up and shutdown lines (scheduler,
    nannies, closed comms) are not the user's business unless they ask. Returns a function that
    restores the previous levels."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    quiet = ("error", "warning", "info")[min(verbose, 2)]
    levels = {"romdask": logging.WARNING - 10 * min(verbose, 2),
              **dict.fromkeys(("distributed", "dask", "tornado", "bokeh"), getattr(logging, quiet.upper()))}
    previous = {name: logging.getLogger(name).level for name in levels}
    import dask.config  # distributed sets its loggers' levels from this config when first imported

    config = dask.config.set({f"logging.{name}": quiet for name in ("distributed", "bokeh", "tornado")})
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)

    def restore() -> None:
        config.__exit__(None, None, None)
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)

    return restore
