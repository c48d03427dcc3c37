"""romdask: nonintrusive, distributed reduced-order modeling of nonlinear structural mechanics.

Three stages: high-fidelity runs (CalculiX or the built-in solver), offline reduction on a Dask
cluster, and an in-process online reduced solver. This release holds the foundation: the finite-
element kernel (:mod:`romdask.fem`), constitutive laws (:mod:`romdask.materials`), the built-in
high-fidelity solver (:mod:`romdask.hifi`) and reference problems (:mod:`romdask.problems`).
"""

from romdask.fem.mesh import CellBlock, Mesh
from romdask.loads import Amplitude, Dirichlet, NodalForce, Pressure, cyclic, ramp
from romdask.problem import Problem

__version__ = "0.1.0"

__all__ = [
    "Amplitude",
    "CellBlock",
    "Dirichlet",
    "Mesh",
    "NodalForce",
    "Pressure",
    "Problem",
    "cyclic",
    "ramp",
    "__version__",
]
