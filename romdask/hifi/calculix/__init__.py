"""CalculiX 2.20 (``ccx``) as the external high-fidelity solver: decks, runs, results, stores."""

from romdask.hifi.calculix.deck import deck_segments, format_number, write_deck
from romdask.hifi.calculix.runner import CalculixError, CalculixRun, ccx_path, run_ccx
from romdask.hifi.calculix.solve import CalculixResult, calculix_run, run_many, solve_calculix
from romdask.io.calculix.problem import read_problem

__all__ = [
    "CalculixError",
    "CalculixResult",
    "CalculixRun",
    "calculix_run",
    "ccx_path",
    "deck_segments",
    "format_number",
    "read_problem",
    "run_ccx",
    "run_many",
    "solve_calculix",
    "write_deck",
]
