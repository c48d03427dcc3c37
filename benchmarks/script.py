"""The command line shared by the benchmarks that run in their own process (local_roms.py,
adaptive.py): ``--smoke``, ``--out``, ``--workdir``, ``--keep``; the figures as one JSON dict."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def script_main(benchmark: Callable[[bool, Path], dict], description: str, smoke_help: str, prefix: str,
                argv=None) -> dict:
    """Parse the options, run ``benchmark(smoke, workdir)``, print and write its figures."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    parser.add_argument("--out", type=Path, default=None, help="write the figures (JSON) here")
    parser.add_argument("--workdir", type=Path, default=None, help="temporary files (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"romdask-bench-{prefix}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        figures = benchmark(args.smoke, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(figures)
    if args.out:
        args.out.write_text(text)
    print(text)
    return figures
