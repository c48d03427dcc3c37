"""Built-in high-fidelity solver: small-strain quasi-static nonlinear FE with fixed increments.

It mirrors what CalculiX 2.20 does in a ``*VISCO`` step with fixed increments (see
``/work/shared/notes/calculix.md``): one increment per output interval, full Newton with the
consistent tangent, the material integrated from the last converged state with the total strain.
:func:`solve` is a short function over :class:`_HFSolver` (the assembled state, one Newton
attempt per sub-increment); the time stepping is :func:`romdask.stepping.march`, shared with the
online reduced solver.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from romdask.fem.quadrature import internal_force, quadrature, strain
from romdask.fem.temperature import temperature_operator
from romdask.hifi.assembly import assemble_stiffness, max_asymmetry, sparsity
from romdask.hifi.linear import LinearSolver, SingularMatrixError
from romdask.problem import Problem
from romdask.problem.vectors import unit_load_vector
from romdask.stepping import StepFailure, Stepping, collect_breakpoints, march
from romdask.threads import solver_threads

__all__ = ["ConvergenceError", "HFState", "SolverOptions", "Result", "MemoryWriter", "solve", "constrained_dofs"]

logger = logging.getLogger(__name__)

_FIELDS = ("displacement", "strain", "stress", "state")


class ConvergenceError(RuntimeError):
    """Newton did not converge even after cutting the increment down to the minimum size."""


@dataclass(frozen=True)
class SolverOptions:
    """Options of :func:`solve`.

    Parameters
    ----------
    rtol : float
        Residual tolerance: converged when ``||r_free||_2 <= rtol * F`` with
        ``F = max(||f_int||_2, ||f_ext||_2, F_prev)``, ``f_int`` the internal force over ALL dofs
        (at equilibrium ``f_int = f_ext + reactions``) and ``F_prev`` the largest ``F`` of the
        converged increments so far (a floor so that a nearly unloaded state still has a scale,
        like CalculiX's time-averaged force).
    ctol : float
        Correction tolerance: additionally the last Newton correction ``du`` or its estimated
        successor ``du * ||r_k|| / ||r_{k-1}||`` must satisfy
        ``<= ctol * max(||u - u_n||_inf, ||u||_inf)`` (infinity norms; skipped when the predictor
        already satisfies the residual test). A linear problem thus converges in one iteration.
    atol : float
        Absolute residual floor (force units): converged whenever ``||r_free|| <= atol``.
    max_iter : int
        Linear solves (predictor included) per (sub-)increment before the increment is cut.
    max_cuts : int
        The increment may be halved at most this many times in a row (minimum size
        ``dt / 2**max_cuts``); beyond, :class:`ConvergenceError`.
    linear_solver : {"auto", "pardiso", "superlu"}
    symmetric : bool or None
        Use the symmetric (upper-triangle) solver. None: when every law is known to have a
        symmetric tangent (class attribute ``symmetric_tangent``); an unsymmetric tangent met
        at run time switches to the unsymmetric solver.
    split_at_breakpoints : bool
        Split an output interval at the amplitude breakpoints inside it (load reversals).
    """

    rtol: float = 1e-8
    ctol: float = 1e-5
    atol: float = 0.0
    max_iter: int = 12
    max_cuts: int = 8
    linear_solver: str = "auto"
    symmetric: bool | None = None
    split_at_breakpoints: bool = True

    def __post_init__(self) -> None:
        if not (self.rtol > 0 and self.ctol > 0 and self.atol >= 0):
            raise ValueError(f"need rtol > 0, ctol > 0, atol >= 0; got {self.rtol}, {self.ctol}, {self.atol}")
        if self.max_iter < 1 or self.max_cuts < 0:
            raise ValueError(f"need max_iter >= 1 and max_cuts >= 0; got {self.max_iter}, {self.max_cuts}")


@dataclass(frozen=True)
class HFState:
    """The state :func:`solve` restarts from (``initial=``), at the problem's first time.

    Attributes
    ----------
    displacement : (n_dofs,) float64 in the problem mesh's dof order (node-major, x y z); the
        constrained dofs are replaced by their prescribed values at ``problem.times[0]``.
    state : (n_points, n_state) float64 internal variables at every integration point, in the
        solver's quadrature order: the layout of the ``"state"`` output field (``n_state`` the
        largest law's; the columns beyond a law's own ``n_state`` are padding, NaN in the
        output, ignored here).

    Notes
    -----
    :meth:`Result.state_at` gives the state of an output step of a run. The arrays are not
    copied; :func:`solve` only reads them.
    """

    displacement: np.ndarray
    state: np.ndarray


class MemoryWriter:
    """The default writer: keeps every output in lists."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.times: list[float] = []
        self.fields: dict[str, list[np.ndarray]] = {}

    def write(self, step: int, time: float, fields: dict[str, np.ndarray]) -> None:
        self.steps.append(int(step))
        self.times.append(float(time))
        for name, value in fields.items():
            self.fields.setdefault(name, []).append(np.array(value, copy=True))

    def close(self) -> None:
        pass


@dataclass
class Result:
    """Outcome of :func:`solve`.

    Attributes
    ----------
    times : (n_steps + 1,) output times (``problem.times``).
    displacement : (n_steps + 1, n_dofs) float64, or None when a writer was given.
    fields : requested integration-point fields, each (n_steps + 1, n_points, ...), and for a
        thermal problem ``"temperature"`` (n_steps + 1, n_nodes) (default writer).
    reactions : (n_steps + 1, n_dirichlet, 3) reaction-force resultant of each Dirichlet
        condition (sum over its dofs of ``f_int - f_ext``; 0 for components it does not fix).
    newton_iterations : (n_steps,) Newton iterations per output increment, counted as linear
        solves (the predictor included) over all its converged sub-increments.
    n_subincrements : (n_steps,) sub-increments per output increment.
    n_cuts : (n_steps,) halvings of a failed sub-increment per output increment.
    residual_history : per output increment, the list of relative residuals of all iterations.
    wall_time : seconds; ``timings`` splits it (assembly, material, linear, ...).
    n_factorizations : numerical factorizations done (<= total iterations: reused when the
        tangent is unchanged).
    """

    times: np.ndarray
    displacement: np.ndarray | None
    fields: dict[str, np.ndarray]
    reactions: np.ndarray
    reaction_names: tuple[str, ...]
    newton_iterations: np.ndarray
    n_subincrements: np.ndarray
    residual_history: list[list[float]]
    wall_time: float
    timings: dict[str, float] = field(default_factory=dict)
    n_factorizations: int = 0
    n_cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def state_at(self, step: int) -> HFState:
        """The :class:`HFState` of output ``step`` (copies), to restart :func:`solve` from it.

        Raises
        ------
        ValueError
            The run had a writer (no displacement kept), no ``"state"`` field, or ``step`` is
            out of range.
        """
        if self.displacement is None or "state" not in self.fields:
            raise ValueError("state_at needs the displacement and the 'state' field in the result: solve with the "
                             "default writer and fields=(..., 'state')")
        n_t = len(self.displacement)
        if not -n_t <= step < n_t:
            raise ValueError(f"step {step} is out of range for {n_t} output times")
        return HFState(np.array(self.displacement[step]), np.array(self.fields["state"][step]))


# ---- problem set-up --------------------------------------------------------------------------


def constrained_dofs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Constrained dofs and the index of the Dirichlet condition owning each.

    A dof named by several conditions belongs to the LAST one in ``problem.dirichlet``
    (later wins, like a later ``*BOUNDARY`` card); a DEBUG message reports the overlap.
    """
    owner = np.full(problem.mesh.n_dofs, -1, np.int64)
    for k, bc in enumerate(problem.dirichlet):
        dofs = bc.dofs
        if np.any(owner[dofs] >= 0):
            logger.debug("Dirichlet condition %d (%r) overrides earlier conditions on %d dofs",
                         k, bc.name, int(np.sum(owner[dofs] >= 0)))
        owner[dofs] = k
    dofs = np.flatnonzero(owner >= 0)
    return dofs, owner[dofs]


def _check_rigid_modes(mesh, dofs: np.ndarray) -> None:
    """Raise if the constrained dofs leave a rigid-body mode free (singular stiffness)."""
    x = mesh.nodes - mesh.nodes.mean(axis=0)
    names = ("translation x", "translation y", "translation z",
             "rotation about x", "rotation about y", "rotation about z")
    modes = np.zeros((mesh.n_dofs, 6))
    for c in range(3):
        modes[c::3, c] = 1.0
    modes[1::3, 3], modes[2::3, 3] = -x[:, 2], x[:, 1]
    modes[0::3, 4], modes[2::3, 4] = x[:, 2], -x[:, 0]
    modes[0::3, 5], modes[1::3, 5] = -x[:, 1], x[:, 0]
    modes /= np.linalg.norm(modes, axis=0)
    sub = modes[dofs]
    if len(dofs) == 0:
        raise ValueError("the problem has no Dirichlet condition: the stiffness is singular "
                         "(all 6 rigid-body modes are free). Add Dirichlet conditions.")
    _, s, v = np.linalg.svd(sub, full_matrices=True)  # v: (6, 6)
    s = np.concatenate([s, np.zeros(6 - len(s))])
    free = np.flatnonzero(s <= 1e-8 * max(s[0], 1e-300))  # right singular vectors = free modes
    if free.size:
        dominant = sorted({names[int(np.argmax(np.abs(v[i])))] for i in free})
        raise ValueError(
            f"the Dirichlet conditions leave {free.size} rigid-body mode(s) free ({', '.join(dominant)}): "
            "the stiffness is singular. Constrain these motions (e.g. symmetry conditions)."
        )


def _load_vectors(problem: Problem) -> list[tuple[object, np.ndarray]]:
    """(load, force vector of its value, amplitude excluded) per load pattern."""
    return [(load, load.value * unit_load_vector(problem.mesh, load)) for load in problem.loads]


def _breakpoints(problem: Problem) -> np.ndarray:
    patterns = (*problem.dirichlet, *problem.loads, *problem.temperatures)
    return collect_breakpoints(p.amplitude.breakpoints() for p in patterns if p.amplitude is not None)


def _symmetric(laws, option: bool | None) -> bool:
    if option is not None:
        return bool(option)
    return all(law.symmetric_tangent for law in laws)


class _Materials:
    """Evaluates every law on its points; states kept per law."""

    def __init__(self, problem: Problem, quad) -> None:
        n = quad.n_points
        elem = quad.element_of_point
        self.groups = []
        for law, elements in problem.material_elements():
            if len(elements) == problem.mesh.n_elements:
                pts = None
                n_pts = n
            else:
                mask = np.zeros(problem.mesh.n_elements, bool)
                mask[elements] = True
                pts = np.flatnonzero(mask[elem])
                n_pts = len(pts)
            buf = None if pts is None else (np.empty((n_pts, 6)), np.empty((n_pts, 6)), np.empty((n_pts, 6, 6)))
            self.groups.append({"law": law, "points": pts, "state": law.initial_state(n_pts),
                                "trial": law.initial_state(n_pts), "buf": buf,
                                "temperature": np.zeros((n_pts, 3))})
        self.stress = np.zeros((n, 6))
        self.tangent = np.zeros((n, 6, 6))
        self.n_state = max((g["law"].n_state for g in self.groups), default=0)

    @property
    def thermal(self) -> bool:
        """True when some law has a temperature behaviour (the others ignore the temperature)."""
        return any(getattr(g["law"], "thermal", False) for g in self.groups)

    def set_temperature(self, temperature: np.ndarray) -> None:
        """Every point's (initial, start, end) temperature, ``temperature (n_points, 3)``."""
        for g in self.groups:
            pts = g["points"]
            g["temperature"][:] = temperature if pts is None else temperature[pts]

    def evaluate(self, eps: np.ndarray, dt: float, t: float) -> int:
        failed = 0
        for g in self.groups:
            law, pts = g["law"], g["points"]
            if pts is None:
                failed += int(law.kernel(eps, g["state"], dt, t, g["temperature"], law.params, self.stress, self.tangent,
                                         g["trial"]))
            else:
                e, s, d = g["buf"]
                np.take(eps, pts, axis=0, out=e)
                failed += int(law.kernel(e, g["state"], dt, t, g["temperature"], law.params, s, d, g["trial"]))
                self.stress[pts] = s
                self.tangent[pts] = d
        return failed

    def commit(self) -> None:
        for g in self.groups:
            g["state"], g["trial"] = g["trial"], g["state"]

    def check_state(self, state: np.ndarray) -> None:
        """Raise ValueError unless ``state`` has the layout of :meth:`state`, finite in every
        law's own columns (the padding is not read)."""
        expected = (len(self.stress), self.n_state)
        if state.shape != expected:
            raise ValueError(f"the initial state must have shape {expected} (integration points in the solver's "
                             f"quadrature order, the largest law's state size); got {state.shape}")
        for i, g in enumerate(self.groups):
            k = g["law"].n_state
            rows = state[:, :k] if g["points"] is None else state[g["points"], :k]
            if not np.all(np.isfinite(rows)):
                raise ValueError(f"the initial state of the points of law {i} ({type(g['law']).__name__}) has "
                                 f"{int(np.sum(~np.isfinite(rows)))} non-finite value(s) in its first {k} columns; "
                                 "only the padding beyond a law's state size may be NaN")

    def set_state(self, state: np.ndarray) -> None:
        """Every law's committed state from ``state`` (the layout of :meth:`state`)."""
        for g in self.groups:
            k = g["law"].n_state
            g["state"][:] = state[:, :k] if g["points"] is None else state[g["points"], :k]

    def state(self) -> np.ndarray:
        n = len(self.stress)
        if len(self.groups) == 1:
            return self.groups[0]["state"]
        out = np.full((n, self.n_state), np.nan)
        for g in self.groups:
            k = g["law"].n_state
            if g["points"] is None:
                out[:, :k] = g["state"]
            else:
                out[g["points"], :k] = g["state"]
        return out


# ---- solver ----------------------------------------------------------------------------------


class _HFSolver:
    """The assembled state of one :func:`solve`: a :class:`romdask.stepping.Stepper`.

    Holds the quadrature, the laws' states, the sparsity pattern and linear solver, the
    displacement ``u`` and the committed ``u_n``, ``f_int_n`` and tangent ``tangent_n`` of the
    last converged (sub-)increment, the tangent of the current factorization (reused while the
    tangent is bitwise unchanged), the force scale and the timings.

    Notes
    -----
    Memory: besides the factors, four (n_points, 6, 6) tangent arrays (the laws', the committed,
    the factorized one, and a partial-group buffer when laws cover element sets) and a few
    n_dofs vectors.
    """

    def __init__(self, problem: Problem, options: SolverOptions, fields: tuple[str, ...], writer) -> None:
        t_start = _time.perf_counter()
        self.problem, self.options, self.fields = problem, options, fields
        self.timings = dict.fromkeys(("setup", "strain", "material", "force", "assembly", "linear", "output"), 0.0)
        mesh = problem.mesh
        self.dofs_c, self.owner = constrained_dofs(problem)
        _check_rigid_modes(mesh, self.dofs_c)
        self.quad = quadrature(mesh)
        self.mats = _Materials(problem, self.quad)
        self.symmetric = _symmetric([g["law"] for g in self.mats.groups], options.symmetric)
        self.pattern = sparsity(mesh, self.dofs_c, symmetric=self.symmetric)
        self.linear = LinearSolver(symmetric=self.symmetric, backend=options.linear_solver)
        self.loads = _load_vectors(problem)
        self.free = self.pattern.free
        self.comp_c = self.dofs_c % 3
        n_dofs, n_points = mesh.n_dofs, self.quad.n_points
        self.u, self.u_n = np.zeros(n_dofs), np.zeros(n_dofs)
        self.eps = np.empty((n_points, 6))
        self.f_int, self.f_int_n = np.zeros(n_dofs), np.zeros(n_dofs)
        self.data = np.zeros(self.pattern.nnz)
        self.tangent_n = np.zeros((n_points, 6, 6))
        # the tangent of the current factorization: an identical tangent (elastic increments)
        # reuses the factors instead of refactorizing (exact: same matrix)
        self.factorized_tangent = np.zeros((n_points, 6, 6))
        self.factorized = False
        self.n_factorizations = 0
        self.force_scale = 0.0
        self._init_temperatures()
        self.default_writer = writer is None
        self.writer = MemoryWriter() if writer is None else writer
        self.reaction_rows: list[np.ndarray] = []
        self.timings["setup"] = _time.perf_counter() - t_start

    def _init_temperatures(self) -> None:
        """Point temperatures (initial, start, end) of the current attempt, all initial for now;
        ``committed_temperature``: the end temperature of the committed state."""
        n_points = self.quad.n_points
        self.thermal = self.problem.thermal
        self.thermal_laws = self.thermal and self.mats.thermal
        self.point_temperature = np.zeros((n_points, 3))
        self.temperature_operator = temperature_operator(self.problem.mesh) if self.thermal else None
        if self.thermal:
            self.point_temperature[:] = (self.temperature_operator @ self.problem.initial_temperature)[:, None]
        self.committed_temperature = self.point_temperature[:, 2].copy()
        self.mats.set_temperature(self.point_temperature)

    # ---- loads and outputs -------------------------------------------------------------------
    def set_temperature(self, t_new: float) -> bool:
        """The points' temperatures of a sub-increment ending at ``t_new``: initial, committed,
        ``t_new``'s; returns whether the end temperature differs from the committed one."""
        if not self.thermal:
            return False
        T = self.point_temperature
        T[:, 1] = self.committed_temperature
        T[:, 2] = self.temperature_operator @ self.problem.nodal_temperature(t_new)
        self.mats.set_temperature(T)
        return not np.array_equal(T[:, 2], self.committed_temperature)

    def prescribed(self, t: float) -> np.ndarray:
        """Prescribed values of the constrained dofs at ``t``."""
        values = np.array([bc.scale(t) for bc in self.problem.dirichlet])
        return values[self.owner] if len(self.owner) else np.zeros(0)

    def external(self, t: float) -> np.ndarray:
        """External force vector at ``t`` (all dofs)."""
        f = np.zeros(self.problem.mesh.n_dofs)
        for load, vec in self.loads:
            s = load.scale(t)
            if s != 0.0:
                f += s * vec
        return f

    def reactions(self, f_ext: np.ndarray) -> np.ndarray:
        """(n_dirichlet, 3) resultant of ``f_int - f_ext`` over each condition's dofs."""
        out = np.zeros((len(self.problem.dirichlet), 3))
        if len(self.dofs_c):
            np.add.at(out, (self.owner, self.comp_c), (self.f_int - f_ext)[self.dofs_c])
        return out

    def output(self, step: int, t: float) -> None:
        """Write the committed state of output time ``t`` (the :func:`march` ``on_step``)."""
        t0 = _time.perf_counter()
        row = self.reactions(self.external(t))
        self.reaction_rows.append(row)
        out = {"displacement": self.u}
        if "strain" in self.fields:
            out["strain"] = self.eps
        if "stress" in self.fields:
            out["stress"] = self.mats.stress
        if "state" in self.fields:
            out["state"] = self.mats.state()
        if self.thermal:
            out["temperature"] = self.problem.nodal_temperature(t)
        out["reactions"] = row.copy()
        self.writer.write(step, t, out)
        self.timings["output"] += _time.perf_counter() - t0

    # ---- one iteration -----------------------------------------------------------------------
    def evaluate(self, t: float, dt: float) -> int:
        """Strain, laws and internal force of ``u``; returns the number of failed points."""
        t0 = _time.perf_counter()
        strain(self.quad, self.u, out=self.eps)
        t1 = _time.perf_counter()
        n_failed = self.mats.evaluate(self.eps, dt, t)
        t2 = _time.perf_counter()
        internal_force(self.quad, self.mats.stress, out=self.f_int)
        t3 = _time.perf_counter()
        self.timings["strain"] += t1 - t0
        self.timings["material"] += t2 - t1
        self.timings["force"] += t3 - t2
        return n_failed

    def _unsymmetric_if_needed(self, tangent: np.ndarray) -> None:
        """Switch to the unsymmetric solver when an automatic symmetric run meets an unsymmetric tangent."""
        if self.symmetric and self.options.symmetric is None and max_asymmetry(tangent) > 1e-8:
            logger.warning("unsymmetric material tangent met: switching to the unsymmetric solver")
            self.linear.free()
            self.factorized = False
            self.symmetric = False
            self.pattern = sparsity(self.problem.mesh, self.dofs_c, symmetric=False)
            self.linear = LinearSolver(symmetric=False, backend=self.options.linear_solver)
            self.data = np.zeros(self.pattern.nnz)

    def correct(self, tangent: np.ndarray, rhs: np.ndarray) -> float:
        """Solve ``K(tangent)_ff du = rhs``, add ``du`` to the free dofs; returns ``||du||_inf``.

        The factors are reused when ``tangent`` equals that of the current factorization.
        """
        t0 = _time.perf_counter()
        self._unsymmetric_if_needed(tangent)
        reuse = self.factorized and np.array_equal(tangent, self.factorized_tangent)
        if not reuse:
            assemble_stiffness(self.quad, self.pattern, tangent, out=self.data)
        t1 = _time.perf_counter()
        try:
            if not reuse:
                self.factorized = False
                self.n_factorizations += 1
                self.linear.factorize(self.pattern.matrix(self.data))
                np.copyto(self.factorized_tangent, tangent)
                self.factorized = True
            du = self.linear.solve(rhs)
        except SingularMatrixError as exc:
            # also met legitimately: a saturated viscoplastic law under load control overshoots
            # to a near-zero tangent; a smaller increment cures it
            raise StepFailure(f"singular tangent ({exc})") from exc
        self.timings["assembly"] += t1 - t0
        self.timings["linear"] += _time.perf_counter() - t1
        self.u[self.free] += du
        return float(np.abs(du).max())

    def start_force(self, t_new: float, dt: float) -> np.ndarray:
        """The internal force the predictor starts from: ``f_int_n``, or, when the temperature of
        a thermal law changes, the internal force of ``u_n`` at the new temperature (so that the
        predictor takes up the thermal out-of-balance: one extra law evaluation)."""
        if not self.set_temperature(t_new) or not self.thermal_laws:
            return self.f_int_n
        n_failed = self.evaluate(t_new, dt)
        if n_failed:
            raise StepFailure(f"local integration failed at {n_failed} integration point(s) "
                              "(temperature change at the converged displacement)")
        return self.f_int.copy()

    def predictor_rhs(self, t_new: float, f_ext: np.ndarray, f_start: np.ndarray) -> np.ndarray:
        """Set the prescribed values of ``t_new``; the predictor's right-hand side
        ``f_ext - f_start - K_fc du_c`` on the free dofs, with the converged tangent
        (``f_start``: :meth:`start_force`).

        It keeps the prescribed-displacement jump from concentrating in the boundary elements
        (no velocity extrapolation: robust at reversals).
        """
        rhs = f_ext - f_start
        if len(self.dofs_c):
            du_c = self.prescribed(t_new) - self.u[self.dofs_c]
            if np.any(du_c != 0.0):
                v = np.zeros(self.problem.mesh.n_dofs)
                v[self.dofs_c] = du_c
                t0 = _time.perf_counter()
                eps_v = strain(self.quad, v)
                sig_v = np.einsum("pij,pj->pi", self.tangent_n, eps_v)
                rhs = rhs - internal_force(self.quad, sig_v)
                self.timings["strain"] += _time.perf_counter() - t0
            self.u[self.dofs_c] += du_c
        return rhs[self.free]

    def converged(self, norms: list[float], scale: float, du_norm: float | None) -> bool:
        """Residual test (rtol, atol) and, unless the predictor alone passed it, the correction test.

        The last correction must be small, or its estimated successor (linear-rate estimate
        ``du * r_k / r_{k-1}``, as CalculiX's checkconvergence does).
        """
        opts, rn = self.options, norms[-1]
        if not (rn <= opts.rtol * scale or rn <= opts.atol):
            return False
        if du_norm is None:
            return True
        ref = max(np.abs(self.u - self.u_n).max(initial=0.0), np.abs(self.u).max(initial=0.0))
        return min(du_norm, du_norm * rn / max(norms[-2], 1e-300)) <= opts.ctol * ref

    # ---- the Stepper protocol ----------------------------------------------------------------
    def attempt(self, t_old: float, t_new: float, history: list[float]) -> int:
        """One sub-increment from the committed state: the predictor, then full Newton.

        Returns the number of linear solves; on success ``u``, ``f_int``, ``eps`` and the
        laws' stress, tangent and trial state hold the converged values. Raises
        :class:`~romdask.stepping.StepFailure`.
        """
        opts = self.options
        dt = t_new - t_old
        f_ext = self.external(t_new)
        f_start = self.start_force(t_new, dt)
        # the thermal out-of-balance acts as a load: it is part of the force scale
        thermal_force = 0.0 if f_start is self.f_int_n else float(np.linalg.norm(f_start - self.f_int_n))
        rhs = self.predictor_rhs(t_new, f_ext, f_start)
        norms = [float(np.linalg.norm(rhs))]
        n_solves = 0
        du_norm = None
        if norms[0] > 0.0:
            du_norm = self.correct(self.tangent_n, rhs)
            n_solves = 1
        for k in range(opts.max_iter + 1):
            n_failed = self.evaluate(t_new, dt)
            if n_failed:
                raise StepFailure(f"local integration failed at {n_failed} integration point(s)")
            r = f_ext[self.free] - self.f_int[self.free]
            rn = float(np.linalg.norm(r))
            scale = max(float(np.linalg.norm(self.f_int)), float(np.linalg.norm(f_ext)), thermal_force,
                        self.force_scale)
            norms.append(rn)
            history.append(rn / scale if scale > 0 else rn)
            if not np.isfinite(rn):
                raise StepFailure("non-finite residual")
            if self.converged(norms, scale, du_norm):
                self.force_scale = max(self.force_scale, scale)
                return n_solves
            if n_solves >= opts.max_iter:
                raise StepFailure(f"no convergence in {opts.max_iter} iterations")
            if k >= 2 and norms[-1] > norms[-2] > norms[-3]:
                raise StepFailure("residual growing")
            du_norm = self.correct(self.mats.tangent, r)
            n_solves += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def commit(self) -> None:
        """The converged state becomes the committed one (laws' states, tangent, f_int, u)."""
        self.mats.commit()
        np.copyto(self.tangent_n, self.mats.tangent)
        np.copyto(self.f_int_n, self.f_int)
        np.copyto(self.u_n, self.u)
        np.copyto(self.committed_temperature, self.point_temperature[:, 2])

    def restore(self) -> None:
        """Back to the committed u (everything else is recomputed from it or kept committed)."""
        np.copyto(self.u, self.u_n)

    # ---- a run -------------------------------------------------------------------------------
    def start(self, initial: HFState | None = None) -> bool:
        """Evaluate the virgin state (its tangent serves the first predictor); returns whether a
        load or prescribed value is nonzero at t = 0 (then the initial equilibrium is needed).
        With ``initial`` (checked by :func:`_check_initial`): :meth:`restart`."""
        if initial is not None:
            return self.restart(initial)
        times = self.problem.times
        if self.evaluate(0.0, float(times[1] - times[0])):
            raise ConvergenceError(f"{self.problem.name}: the material fails at zero strain; check the law's parameters")
        np.copyto(self.tangent_n, self.mats.tangent)
        thermal_start = self.thermal_laws and self.set_temperature(0.0)
        return bool(np.any(self.prescribed(0.0) != 0.0) or np.any(self.external(0.0) != 0.0) or thermal_start)

    def restart(self, initial: HFState) -> bool:
        """Start from ``initial`` at ``times[0]``: u = u_n = its displacement with the prescribed
        values of ``times[0]``, the laws' committed states from its state, evaluated there with
        dt = 0 (stress, tangent -> ``tangent_n``, ``f_int_n``); returns True: a given state is
        always equilibrated first (e.g. one reconstructed from a reduced model is not)."""
        t0 = float(self.problem.times[0])
        self.mats.set_state(initial.state)
        self.u[:] = initial.displacement
        self.u[self.dofs_c] = self.prescribed(t0)
        n_failed = self.evaluate(t0, 0.0)
        if n_failed:
            raise ConvergenceError(f"{self.problem.name}: the laws fail at {n_failed} integration point(s) in the "
                                   f"initial state of the restart at t={t0:g}; check initial.state")
        np.copyto(self.tangent_n, self.mats.tangent)
        np.copyto(self.f_int_n, self.f_int)
        np.copyto(self.u_n, self.u)
        return True

    def close(self) -> None:
        """Close the writer and free the linear solver's memory."""
        self.writer.close()
        self.linear.free()

    def result(self, stepping: Stepping, wall: float) -> Result:
        """The :class:`Result` of the run (fields from the default writer)."""
        self.timings["total"] = wall
        disp = None
        out_fields: dict[str, np.ndarray] = {}
        if self.default_writer:
            disp = np.array(self.writer.fields["displacement"])
            out_fields = {k: np.array(v) for k, v in self.writer.fields.items()
                          if (k in self.fields or k == "temperature") and k != "displacement"}
        return Result(
            times=np.array(self.problem.times), displacement=disp, fields=out_fields,
            reactions=np.array(self.reaction_rows), reaction_names=tuple(bc.name for bc in self.problem.dirichlet),
            newton_iterations=stepping.iterations, n_subincrements=stepping.subincrements,
            residual_history=stepping.residuals, wall_time=wall, timings=self.timings,
            n_factorizations=self.n_factorizations, n_cuts=stepping.cuts,
        )


def _check_initial(problem: Problem, hf: _HFSolver, initial: HFState | None) -> None:
    """Raise ValueError on a restart state that does not fit ``problem`` (or a later start without one)."""
    if initial is None:
        if problem.times[0] != 0.0:
            raise ValueError(f"{problem.name}: the times start at {problem.times[0]:g}, not 0: a restart needs the "
                             "state there, solve(problem, initial=HFState(displacement, state))")
        return
    if not isinstance(initial, HFState):
        raise ValueError(f"initial must be a romdask.hifi.HFState; got {type(initial).__name__}")
    if problem.thermal:
        raise ValueError(f"{problem.name}: restart of thermal problems is not supported yet (the committed "
                         "temperatures of the given state are not restored); solve the whole history")
    displacement = np.asarray(initial.displacement)
    n_dofs = problem.mesh.n_dofs
    if displacement.shape != (n_dofs,) or not np.all(np.isfinite(displacement)):
        raise ValueError(f"the initial displacement must be {n_dofs} finite values (the mesh's dofs); got shape "
                         f"{displacement.shape} with {int(np.sum(~np.isfinite(displacement)))} non-finite value(s)")
    hf.mats.check_state(np.asarray(initial.state))


def solve(
    problem: Problem,
    *,
    writer=None,
    fields: tuple[str, ...] = ("displacement",),
    options: SolverOptions = SolverOptions(),
    progress: Callable[[int, int, dict], None] | None = None,
    initial: HFState | None = None,
) -> Result:
    """Solve ``problem`` with fixed increments (one per interval of ``problem.times``).

    Parameters
    ----------
    problem : Problem
    writer : object with ``write(step, time, fields)`` and ``close()``, optional
        Receives, at every output time (step 0 = t=0 included), ``"displacement"`` (n_dofs,),
        the requested integration-point fields ``"strain"``, ``"stress"`` (n_points, 6),
        ``"state"`` (n_points, n_state; NaN-padded when laws have fewer variables),
        ``"temperature"`` (n_nodes,) when ``problem.thermal`` and ``"reactions"``
        (n_dirichlet, 3). Default: in memory, returned in the :class:`Result` (its ``fields``
        then hold ``"temperature"`` too).
    fields : subset of ("displacement", "strain", "stress", "state")
    options : SolverOptions
    progress : callable ``progress(step, n_steps, info)``, optional
        Called after each output increment; ``info`` has time, iterations, subincrements,
        cuts and residual (see :func:`romdask.stepping.march`).
    initial : HFState, optional
        Restart: the displacement and internal variables at ``problem.times[0]`` (the rest of a
        history, e.g. ``dataclasses.replace(problem, times=problem.times[k:])`` with
        ``result.state_at(k)``); it is equilibrated there first (see Notes) and step 0 of the
        output is the equilibrated state. Required when ``problem.times[0] > 0``.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        Rigid-body modes left free by the Dirichlet conditions, unknown fields; an ``initial``
        of the wrong shape or non-finite (NaN is allowed only in the padding columns of the
        state), given for a thermal problem (not supported yet), or missing when the times
        start after 0.
    ConvergenceError
        Newton failed even on the smallest sub-increment (message: time, size, residuals).

    Notes
    -----
    Each (sub-)increment t_n -> t_{n+1} starts from the converged u_n with the prescribed values
    of t_{n+1} on the constrained dofs (no velocity extrapolation: robust at load reversals) and
    one linear predictor solve with the converged tangent of t_n,
    ``K_ff du_f = f_ext(t_{n+1}) - f_int(u_n) - K_fc du_c`` (as CalculiX's first iteration: without
    it the prescribed jump concentrates in the boundary elements and makes them yield
    spuriously); then full Newton on the free dofs with the consistent tangent, the material
    integrated from the state of t_n with the total strain. Iterations are counted as linear
    solves (the predictor included). Convergence: see :class:`SolverOptions`.

    The time stepping is :func:`romdask.stepping.march`, shared with the reduced solver: a
    nonzero load or prescribed value at t = 0 is equilibrated first with dt = 0 (laws dividing
    by dt cannot do that); output intervals are split at amplitude breakpoints (load reversals)
    so that they are hit exactly; a failure (a material point failed, ``max_iter`` reached,
    residual growing twice in a row, singular or non-finite tangent, e.g. a mechanism that the
    rigid-body check does not see) halves the sub-increment; the state is committed only at
    converged sub-increments.

    Cost per iteration: one strain + material + force pass and one assembly (numba, parallel),
    one PARDISO numerical factorization (the symbolic analysis is done once); when the tangent
    is bitwise that of the current factors (elastic increments) assembly and factorization are
    skipped. Memory: besides the factors, four (n_points, 6, 6) tangent arrays.

    Temperatures (``problem.thermal``): every law gets, per point, [initial, committed,
    t_{n+1}] temperatures from :func:`romdask.fem.temperature.temperature_operator` applied to
    ``problem.nodal_temperature`` (CalculiX's rule per element type). When the end temperature
    of a thermal law (``law.thermal``) changes, the laws are first evaluated at ``u_n`` with
    the new temperature: the predictor's right-hand side is ``f_ext - f_int(u_n, T_{n+1}) -
    K_fc du_c`` and the norm of the thermal out-of-balance ``f_int(u_n, T_{n+1}) - f_int_n``
    joins the force scale (a free thermal expansion has no other force). Cost: one extra law
    evaluation per such sub-increment. Temperature amplitudes' breakpoints split the output
    intervals as the loads' do. Body forces (Centrifugal, Gravity) are load patterns
    (:func:`romdask.problem.unit_load_vector`) on the undeformed geometry.

    Restart (``initial``): ``u = u_n`` = the given displacement with the prescribed values of
    ``times[0]`` on the constrained dofs, every law's committed state = its rows and columns of
    the given state; the laws are evaluated there with dt = 0 (their tangent serves the first
    predictor), then the equilibrium at ``times[0]`` is always solved with dt = 0 (the laws
    respond elastically from the given state): a state that was already converged moves by
    about the Newton tolerance, a reconstructed one (e.g. from a reduced model) is brought to
    equilibrium. The force scale of the tolerance (:class:`SolverOptions`, ``F_prev``) starts
    again at 0: after a restart near a load reversal the test is tighter than in the
    uninterrupted run. Cost: one more law evaluation than a run from t = 0.
    """
    t_start = _time.perf_counter()
    bad = [f for f in fields if f not in _FIELDS]
    if bad:
        raise ValueError(f"unknown output fields {bad}; choose among {_FIELDS}")
    hf = _HFSolver(problem, options, fields, writer)
    breakpoints = _breakpoints(problem) if options.split_at_breakpoints else None
    with solver_threads(sparse=True):  # OpenBLAS on one thread, numba on the laws and the assembly
        try:
            _check_initial(problem, hf, initial)
            stepping = march(hf, problem.times, breakpoints, max_cuts=options.max_cuts, equilibrate=hf.start(initial),
                             on_step=hf.output, progress=progress, error=ConvergenceError, name=problem.name,
                             log=logger, summary_level=logging.INFO)
        finally:
            hf.close()
    return hf.result(stepping, _time.perf_counter() - t_start)
