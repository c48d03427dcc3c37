"""The online stage: the reduced model artifact, scenarios, the reduced Newton solver, the error
indicator and the reconstruction of full fields."""

from romdask.online.model import FORMAT, FULL_KEYS, LAWS, VERSION, ReducedModel, open_full_modes
from romdask.online.reconstruct import FullBases, open_full, reconstruct_displacement, reconstruct_dual, replay_law
from romdask.online.scenario import Scenario
from romdask.online.solver import OnlineConvergenceError, OnlineOptions, OnlineResult, solve

__all__ = [
    "FORMAT",
    "FULL_KEYS",
    "LAWS",
    "VERSION",
    "FullBases",
    "OnlineConvergenceError",
    "OnlineOptions",
    "OnlineResult",
    "ReducedModel",
    "Scenario",
    "open_full",
    "open_full_modes",
    "reconstruct_displacement",
    "reconstruct_dual",
    "replay_law",
    "solve",
]
