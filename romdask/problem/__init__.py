"""The problem definition: a boundary-value :class:`Problem` (mesh, laws, conditions, times), its
load patterns x amplitude tables, and their JSON description in solver ids (what a stored run
keeps so that ``reduce`` and ``predict`` can rebuild the patterns on any numbering)."""

from romdask.problem.loads import (
    Amplitude,
    Centrifugal,
    Dirichlet,
    Gravity,
    NodalForce,
    Pressure,
    Temperature,
    cyclic,
    ramp,
)
from romdask.problem.patterns import (
    describe_loads,
    load_signature,
    loads_from_description,
    mesh_fingerprint,
    pattern_signatures,
    problem_signature,
    run_metadata,
    signature_differences,
)
from romdask.problem.problem import Problem
from romdask.problem.thermal import describe_temperatures, temperatures_from_description
from romdask.problem.vectors import unit_load_vector

__all__ = [
    "Amplitude",
    "Centrifugal",
    "Dirichlet",
    "Gravity",
    "NodalForce",
    "Pressure",
    "Problem",
    "Temperature",
    "cyclic",
    "describe_loads",
    "describe_temperatures",
    "load_signature",
    "loads_from_description",
    "mesh_fingerprint",
    "pattern_signatures",
    "problem_signature",
    "ramp",
    "run_metadata",
    "signature_differences",
    "temperatures_from_description",
    "unit_load_vector",
]
