"""The ``romdask`` entry point: the parser of every subcommand, logging, and one error policy: any
exception becomes one ``romdask <command>: error: ...`` line and exit code 1 (the traceback with
-v); argparse's usage errors exit with 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings

from romdask.cli import adaptive, calibrate, demo, hifi, offline, online, store, train

__all__ = ["main"]

log = logging.getLogger("romdask")

#: errors whose message says what failed and how to fix it: printed as they are
_USER_ERRORS = (ValueError, OSError, ImportError, TimeoutError)


def _user_error(exc: BaseException) -> bool:
    # romdask's own RuntimeErrors (ConvergenceError, OnlineConvergenceError, CalculixError) say
    # what failed and how to fix it; other RuntimeErrors are not the user's doing
    return isinstance(exc, _USER_ERRORS) or (
        isinstance(exc, RuntimeError) and type(exc).__module__.startswith("romdask"))


def _message(exc: BaseException, verbose: int) -> str:
    """One line (and the exception's notes) for ``romdask <command>: error: ...``."""
    if type(exc).__name__ == "KilledWorker":  # distributed.scheduler.KilledWorker, without importing distributed
        text = (f"every Dask worker that ran task {getattr(exc, 'task', '?')!r} died: they ran out of memory or "
                "crashed; give the workers more memory (--cluster-config) or use more subdomains, and see the "
                "worker logs")
    elif isinstance(exc, MemoryError):
        text = f"out of memory{f' ({exc})' if str(exc) else ''}: use a cluster (--cluster) or smaller inputs"
    elif _user_error(exc):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" + ("" if verbose else " (run with -v for the traceback)")
    # the library's own advice, in the CLI's words
    text = text.replace("pass overwrite=True", "pass --overwrite").replace("overwrite=True", "--overwrite")
    return text + "".join(f"\n{note}" for note in getattr(exc, "__notes__", ()))


def _quiet_stdout() -> None:
    """stdout's reader went away (``romdask info S | head``): drop the rest of the output silently."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


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
    for module in (demo, hifi, store, offline, calibrate, train, online, adaptive):
        module.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run ``romdask`` with ``argv`` (default: the command line); the exit code."""
    args = parser().parse_args(argv)
    restore = _logging(args.verbose)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a broken pipe shows here rather than at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except Exception as exc:  # noqa: BLE001 - the one error policy of the command line
        if args.verbose:
            traceback.print_exc()
        print(f"romdask {args.command}: error: {_message(exc, args.verbose)}", file=sys.stderr)
        return 1
    finally:
        restore()  # main() called in a process that goes on (tests, notebooks) leaves logging as it was


def _logging(verbose: int):
    """romdask's messages at WARNING (-v: INFO, -vv: DEBUG) on stderr; dask and distributed only
    from ERROR (-v: WARNING, -vv: INFO): a LocalCluster's start-up and shutdown lines (scheduler,
    nannies, closed comms) are not the user's business unless they ask; a LocalCluster's worker
    processes follow (romdask.cluster). Returns a function that restores the previous levels."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    quiet = ("error", "warning", "info")[min(verbose, 2)]
    levels = {"romdask": logging.WARNING - 10 * min(verbose, 2),
              **dict.fromkeys(("distributed", "dask", "tornado", "bokeh"), getattr(logging, quiet.upper()))}
    previous = {name: logging.getLogger(name).level for name in levels}
    import dask.config  # distributed sets its loggers' levels from this config when first imported

    config = dask.config.set({f"logging.{name}": quiet for name in ("distributed", "bokeh", "tornado")})
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    caught = warnings.catch_warnings()
    caught.__enter__()
    if not verbose:  # distributed's "Port 8787 is already in use ... on port N instead": the CLI prints the link
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)

    def restore() -> None:
        caught.__exit__(None, None, None)
        config.__exit__(None, None, None)
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)

    return restore
