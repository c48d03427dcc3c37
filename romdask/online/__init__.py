"""The online stage: the reduced model artifact, scenarios, the reduced Newton solver, the error
indicator and the reconstruction of full fields.

Importing it loads numpy, numba and zarr only: the reconstruction of full fields
(:mod:`romdask.online.reconstruct`, lazy dask arrays over the model's full bases) is imported on
first use of its names.
"""

from romdask.online.full_mesh import read_full_mesh
from romdask.online.model import FORMAT, FULL_KEYS, VERSION, ReducedModel, open_full_modes, open_model_group
from romdask.online.dictionary import LocalPrediction, ModelDictionary, is_dictionary, local_model_path
from romdask.online.scenario import Scenario, ScenarioTemperature, problem_scenario
from romdask.online.solver import OnlineConvergenceError, OnlineOptions, OnlineResult, OnlineState, solve

_RECONSTRUCT = ("FullBases", "open_full", "prediction_fields", "reconstruct_displacement", "reconstruct_dual",
                "replay_law")


def __getattr__(name: str):
    if name in _RECONSTRUCT:
        from romdask.online import reconstruct

        return getattr(reconstruct, name)
    raise AttributeError(f"module 'romdask.online' has no attribute {name!r}")


__all__ = [
    "FORMAT",
    "FULL_KEYS",
    "VERSION",
    "FullBases",
    "LocalPrediction",
    "ModelDictionary",
    "OnlineConvergenceError",
    "OnlineOptions",
    "OnlineResult",
    "OnlineState",
    "ReducedModel",
    "Scenario",
    "ScenarioTemperature",
    "is_dictionary",
    "local_model_path",
    "open_full",
    "open_full_modes",
    "open_model_group",
    "prediction_fields",
    "problem_scenario",
    "read_full_mesh",
    "reconstruct_displacement",
    "reconstruct_dual",
    "replay_law",
    "solve",
]
