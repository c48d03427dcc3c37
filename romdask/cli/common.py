"""Helpers shared by the subcommands: a solver progress bar, sizes, cluster options, NAME=VALUE,
argument types that refuse nonsense (``type=`` of argparse), and checks of output folders."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["HelpFormatter", "add_cluster_options", "cluster_context", "disk_size", "finite_float", "fraction",
           "human_bytes", "is_reduced_model", "name_values", "nonnegative_float", "open_model", "positive_float",
           "positive_int", "solver_progress", "writable_folder"]

#: seconds between two progress lines when stderr is not a terminal (a log file, a CI job)
PROGRESS_INTERVAL = 5.0


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` with every option's default once: " (default: X)" appended unless the help
    already says "default" (options without a value, default None or False, show none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default in (None, False, argparse.SUPPRESS)
                or action.nargs == 0):
            return text
        default = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {default})"


# ---- argument types: argparse reports their ArgumentTypeError as "argument --x: <message>" (exit 2) ---


def _number(text: str, kind: type = float) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}; "
                                         f"got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite number (no nan, inf)."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {text!r}")
    return value


def fraction(text: str) -> float:
    """A relative tolerance: 0 < value < 1."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a relative tolerance, 0 < value < 1; got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1; got {text!r}")
    return value


def writable_folder(path: str | Path, option: str) -> Path:
    """``path`` as a folder romdask may create or write into, checked before any long computation:
    ValueError naming ``option`` for an existing regular file or a read-only folder (or parent)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: exists and is not a folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    try:  # a real write, not os.access: root, ACLs, immutable or read-only mounts
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path}: {existing} is not writable ({exc.strerror})") from None
    return path


def solver_progress(label: str, *, interval: float = PROGRESS_INTERVAL, delay: float = 0.0, stream: Any = None,
                    unit: str = "s") -> Callable[[int, int, dict], None]:
    """The ``progress`` callback of the built-in and reduced solvers, on stderr: a one-line bar
    redrawn in a terminal; otherwise a line at the first increment, then every ``interval``
    seconds, and at the last ("<label>: increment 12/40, t = 3 s, 4 Newton iterations, 0 cuts,
    1.2 s"). With ``delay`` > 0, nothing before ``delay`` seconds (a short computation stays
    quiet)."""
    stream = sys.stderr if stream is None else stream
    start = time.perf_counter()
    live = stream.isatty()
    last = [-math.inf]

    def progress(step: int, n_steps: int, info: dict) -> None:
        now = time.perf_counter()
        elapsed = now - start
        if elapsed < delay or (delay and step == n_steps and last[0] == -math.inf):
            return
        text = (f"{step}/{n_steps}, t = {info.get('time', 0.0):.4g} {unit}, {info.get('iterations', 0)} Newton "
                f"iterations, {info.get('cuts', 0)} cuts, {elapsed:.1f} s")
        if live:
            width = 30
            done = int(width * step / max(n_steps, 1))
            stream.write(f"\r{label} [{'#' * done}{'.' * (width - done)}] {text}" + ("\n" if step == n_steps else ""))
        elif step == 1 or step == n_steps or now - last[0] >= interval or last[0] == -math.inf:
            stream.write(f"{label}: increment {text}\n")
        else:
            return
        last[0] = now
        stream.flush()

    return progress


def disk_size(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--cluster``, ``--cluster-config``, ``--jobs``, ``--min-jobs``, ``--max-jobs``."""
    parser.add_argument("--cluster", default=None,
                        help="'local' (LocalCluster, a worker per core), 'slurm', 'pbs' (dask-jobqueue) or the "
                             "address of a running scheduler (default: dask's threads in this process)")
    parser.add_argument("--cluster-config", default=None,
                        help="site settings, YAML in dask's config format (deploy/slurm/jobqueue.yaml)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="slurm/pbs: number of worker jobs (default: 1); local: number of workers")
    parser.add_argument("--min-jobs", type=positive_int, default=None,
                        help="adaptive scaling: fewest jobs (workers; default: fixed size)")
    parser.add_argument("--max-jobs", type=positive_int, default=None,
                        help="adaptive scaling: most jobs (workers; default: fixed size)")


def cluster_context(args: argparse.Namespace) -> Any:
    """No --cluster: dask's local threads (yields None); else :func:`romdask.cluster.cluster_client`
    ("local", "slurm", "pbs" or a scheduler address; --jobs = workers of a local cluster)."""
    if not args.cluster:
        if args.cluster_config or args.jobs is not None or args.min_jobs is not None or args.max_jobs is not None:
            raise ValueError("--cluster-config / --jobs / --min-jobs / --max-jobs need --cluster")
        return contextlib.nullcontext(None)
    from romdask.cluster import cluster_client

    local = args.cluster == "local"
    return cluster_client(args.cluster, config=args.cluster_config,
                          n_workers=args.jobs if local else None, jobs=None if local else args.jobs,
                          minimum_jobs=args.min_jobs, maximum_jobs=args.max_jobs)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number; got {text!r}")
    return value


def name_values(items: list[str] | None, option: str, parse: Callable[[str], Any] = _finite) -> dict[str, Any]:
    """``["a=1", "b=2"]`` -> ``{"a": parse("1"), ...}``; ValueError naming ``option`` otherwise."""
    values: dict[str, Any] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{option} takes NAME=VALUE (a load pattern of the model and its value); got {item!r}")
        if name in values:
            raise ValueError(f"{option}: {name} given twice")
        try:
            values[name] = parse(value)
        except ValueError as exc:
            raise ValueError(f"{option} {item!r}: {exc}") from None
    return values


def is_reduced_model(path: Path) -> bool:
    """True for a folder written by ``ReducedModel.save`` (its root attributes say so)."""
    from romdask.online.integrity import is_model_dir
    from romdask.online.model import FORMAT

    return is_model_dir(Path(path), FORMAT)


def opened(open_: Callable[[Any], Any], path: str | Path) -> Any:
    """``open_(path)``, its ValueError naming the folder when it does not already."""
    try:
        return open_(path)
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: {exc}") from exc


def open_model(path: str | Path) -> Any:
    """:meth:`ReducedModel.open`, its refusals (codec, dtype, checksum) naming the folder."""
    from romdask.online import ReducedModel

    return opened(ReducedModel.open, path)
