"""Running the ``ccx`` binary: threads, timeout, log file, failures as :class:`CalculixError`."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CalculixError", "CalculixRun", "ccx_path", "run_ccx"]

logger = logging.getLogger(__name__)

_INSTALL = "install it with `apt-get install calculix-ccx` (Debian/Ubuntu package calculix-ccx) or put ccx on PATH"
_FAILURE = re.compile(r"\*ERROR|increment size smaller than minimum|too many cutbacks",
                      re.IGNORECASE)


class CalculixError(RuntimeError):
    """ccx failed; the message quotes CalculiX's own lines and names the log file."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message + (f" (full output: {log})" if log is not None else ""))
        self.log = log


@dataclass(frozen=True)
class CalculixRun:
    """Files and figures of one ccx run.

    Attributes
    ----------
    deck : the ``.inp`` run
    frd, dat, sta, cvg : result, printed-output, status and convergence files (may be absent)
    log : stdout and stderr of ccx
    wall_time : seconds
    threads : threads given to ccx
    """

    deck: Path
    frd: Path
    dat: Path
    sta: Path
    cvg: Path
    log: Path
    wall_time: float
    threads: int


def ccx_path() -> str:
    """The ``ccx`` executable (``$ROMDASK_CCX`` or ``ccx`` on PATH).

    Raises
    ------
    FileNotFoundError
        No ccx: names the apt package ``calculix-ccx``.
    """
    exe = os.environ.get("ROMDASK_CCX") or shutil.which("ccx")
    if not exe:
        raise FileNotFoundError(f"CalculiX `ccx` not found: {_INSTALL}")
    return exe


def _failure_lines(text: str) -> list[str]:
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if _FAILURE.search(line):
            out.append(" ".join(" ".join(lines[i : i + 3]).split()))
    return out


def run_ccx(
    deck: str | Path,
    *,
    threads: int = 1,
    timeout: float | None = None,
    workdir: str | Path | None = None,
) -> CalculixRun:
    """Run CalculiX on ``deck``.

    Parameters
    ----------
    deck : the ``.inp`` file
    threads : OpenMP threads and ``CCX_NPROC_EQUATION_SOLVER`` / ``_STIFFNESS`` / ``_RESULTS``
        (on small models one thread is faster)
    timeout : seconds before ccx is killed (None: no limit)
    workdir : folder of the run (default: the deck's); the deck is copied there when elsewhere
        (``*INCLUDE`` files are not: give absolute include paths then)

    Returns
    -------
    CalculixRun

    Raises
    ------
    FileNotFoundError
        No deck, or no ccx (with the apt package to install).
    CalculixError
        Nonzero exit status, ``*ERROR`` lines, divergence (``increment size smaller than
        minimum``, too many cutbacks) or the timeout: the message quotes ccx's lines and names
        the log file.

    Notes
    -----
    ccx writes ``<stem>.frd/.dat/.sta/.cvg`` next to the deck in ``workdir``; stdout and stderr go
    to ``<stem>.log`` there. Old result files of the same stem are removed first, so a failed
    run never leaves a previous run's results looking current.
    """
    deck = Path(deck)
    if not deck.is_file():
        raise FileNotFoundError(f"{deck}: no such CalculiX deck")
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    exe = ccx_path()
    folder = deck.parent if workdir is None else Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    if deck.resolve().parent != folder.resolve():
        shutil.copyfile(deck, folder / deck.name)
    stem = deck.stem
    files = {s: folder / f"{stem}.{s}" for s in ("frd", "dat", "sta", "cvg", "log")}
    for f in files.values():
        f.unlink(missing_ok=True)
    n = str(int(threads))
    env = dict(os.environ, OMP_NUM_THREADS=n, CCX_NPROC_EQUATION_SOLVER=n, CCX_NPROC_STIFFNESS=n,
               CCX_NPROC_RESULTS=n)  # fmt: skip
    start = time.perf_counter()
    with open(files["log"], "w") as log:
        try:
            proc = subprocess.run([exe, "-i", stem], cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout, env=env, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise CalculixError(f"{deck}: ccx did not finish within {timeout:g} s (killed)", files["log"]) from None
    wall = time.perf_counter() - start
    text = files["log"].read_text(errors="replace")
    failures = _failure_lines(text)
    if proc.returncode != 0 or failures:
        quoted = "; ".join(failures[:5]) or "\n".join(text.splitlines()[-5:])
        raise CalculixError(f"{deck}: ccx failed (exit status {proc.returncode}): {quoted}", files["log"])
    logger.info("%s: ccx finished in %.2f s (%s threads)", deck, wall, n)
    return CalculixRun(deck=folder / deck.name, frd=files["frd"], dat=files["dat"], sta=files["sta"],
                       cvg=files["cvg"], log=files["log"], wall_time=wall, threads=int(threads))  # fmt: skip
