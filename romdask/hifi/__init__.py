"""High-fidelity solvers: the built-in small-strain nonlinear FE solver (CalculiX-compatible)."""

from romdask.hifi.assembly import Pattern, assemble_stiffness, sparsity
from romdask.hifi.builtin import (
    ConvergenceError,
    HFState,
    MemoryWriter,
    Result,
    SolverOptions,
    constrained_dofs,
    solve,
)
from romdask.hifi.linear import LinearSolver, SingularMatrixError, have_pardiso

__all__ = [
    "solve",
    "HFState",
    "SolverOptions",
    "Result",
    "MemoryWriter",
    "ConvergenceError",
    "constrained_dofs",
    "Pattern",
    "sparsity",
    "assemble_stiffness",
    "LinearSolver",
    "SingularMatrixError",
    "have_pardiso",
]
