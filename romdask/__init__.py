"""romdask: nonintrusive, distributed reduced-order modeling of nonlinear structural mechanics.

Three stages: high-fidelity runs (CalculiX or the built-in solver), offline reduction on a Dask
cluster, and an in-process online reduced solver. This release holds the foundation: the finite-
element kernel (:mod:`romdask.fem`), constitutive laws (:mod:`romdask.materials`), the built-in
high-fidelity solver (:mod:`romdask.hifi`) and reference problems (:mod:`romdask.problems`).
"""

from romdask.fem.mesh import CellBlock, Mesh
from romdask.problem.loads import (
    Amplitude, Centrifugal, Dirichlet, Gravity, NodalForce, Pressure, Temperature, cyclic, ramp,
)  # fmt: skip
from romdask.problem import Problem

__version__ = "0.1.0"


def __getattr__(name: str):
    # imported on first use: the store pulls in zarr, xarray and dask (~0.6 s)
    if name == "open_snapshots":
        from romdask.store import open_snapshots

        return open_snapshots
    raise AttributeError(f"module 'romdask' has no attribute {name!r}")


__all__ = [
    "Amplitude",
    "CellBlock",
    "Centrifugal",
    "Dirichlet",
    "Gravity",
    "Mesh",
    "NodalForce",
    "Pressure",
    "Problem",
    "Temperature",
    "cyclic",
    "open_snapshots",
    "ramp",
    "__version__",
]
