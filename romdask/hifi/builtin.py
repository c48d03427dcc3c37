"""Built-in high-fidelity solver: small-strain quasi-static nonlinear FE with fixed increments.

It mirrors what CalculiX 2.20 does in a ``*VISCO`` step with fixed increments (see
``/work/shared/notes/calculix.md``): one increment per output interval, full Newton with the
consistent tangent, the material integrated from the last converged state with the total strain.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from romdask.fem.quadrature import internal_force, pressure_vector, quadrature, strain
from romdask.hifi.assembly import assemble_stiffness, max_asymmetry, sparsity
from romdask.hifi.linear import LinearSolver, SingularMatrixError
from romdask.problem.loads import NodalForce, Pressure
from romdask.problem import Problem

__all__ = ["ConvergenceError", "SolverOptions", "Result", "MemoryWriter", "solve", "constrained_dofs"]

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
    fields : requested integration-point fields, each (n_steps + 1, n_points, ...) (default writer).
    reactions : (n_steps + 1, n_dirichlet, 3) reaction-force resultant of each Dirichlet
        condition (sum over its dofs of ``f_int - f_ext``; 0 for components it does not fix).
    newton_iterations : (n_steps,) Newton iterations per output increment, counted as linear
        solves (the predictor included) over all its converged sub-increments.
    n_subincrements : (n_steps,) sub-increments per output increment.
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
    mesh = problem.mesh
    out = []
    for load in problem.loads:
        if isinstance(load, NodalForce):
            f = np.zeros(mesh.n_dofs)
            np.add.at(f, 3 * load.nodes + load.component, load.value)
        elif isinstance(load, Pressure):
            f = pressure_vector(mesh, load.faces, load.value)
        else:
            raise TypeError(f"unsupported load {type(load).__name__}; expected NodalForce or Pressure")
        out.append((load, f))
    return out


def _breakpoints(problem: Problem) -> np.ndarray:
    amps = [bc.amplitude for bc in problem.dirichlet] + [ld.amplitude for ld in problem.loads]
    pts = [a.breakpoints() for a in amps if a is not None]
    return np.unique(np.concatenate(pts)) if pts else np.zeros(0)


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
                                "temperature": np.zeros((n_pts, 2))})  # no thermal loads yet
        self.stress = np.zeros((n, 6))
        self.tangent = np.zeros((n, 6, 6))
        self.n_state = max((g["law"].n_state for g in self.groups), default=0)

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


class _Failure(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def solve(
    problem: Problem,
    *,
    writer=None,
    fields: tuple[str, ...] = ("displacement",),
    options: SolverOptions = SolverOptions(),
    progress: Callable[[int, int, dict], None] | None = None,
) -> Result:
    """Solve ``problem`` with fixed increments (one per interval of ``problem.times``).

    Parameters
    ----------
    problem : Problem
    writer : object with ``write(step, time, fields)`` and ``close()``, optional
        Receives, at every output time (step 0 = t=0 included), ``"displacement"`` (n_dofs,),
        the requested integration-point fields ``"strain"``, ``"stress"`` (n_points, 6),
        ``"state"`` (n_points, n_state; NaN-padded when laws have fewer variables) and
        ``"reactions"`` (n_dirichlet, 3). Default: in memory, returned in the :class:`Result`.
    fields : subset of ("displacement", "strain", "stress", "state")
    options : SolverOptions
    progress : callable ``progress(step, n_steps, info)``, optional
        Called after each output increment; ``info`` has time, iterations, residual, cuts.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        Rigid-body modes left free by the Dirichlet conditions, unknown fields.
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
    solves (the predictor included). A nonzero load or prescribed value at t = 0 is equilibrated
    first with dt = 0 (laws dividing by dt cannot do that). Convergence: see :class:`SolverOptions`. Failure (a material point failed,
    ``max_iter`` reached, residual growing twice in a row, singular or non-finite tangent, e.g.
    a mechanism that the rigid-body check does not see) halves the
    sub-increment; the state is committed only at converged sub-increments. Output intervals
    are split at amplitude breakpoints (load reversals) so that they are hit exactly.
    Cost per iteration: one strain + material + force pass and one assembly (numba, parallel),
    one PARDISO numerical factorization (the symbolic analysis is done once); when the tangent
    is bitwise that of the current factors (elastic increments) assembly and factorization are
    skipped. Memory: besides the factors, four (n_points, 6, 6) tangent arrays.
    """
    t_start = _time.perf_counter()
    bad = [f for f in fields if f not in _FIELDS]
    if bad:
        raise ValueError(f"unknown output fields {bad}; choose among {_FIELDS}")
    mesh = problem.mesh
    timings = dict.fromkeys(("setup", "strain", "material", "force", "assembly", "linear", "output"), 0.0)

    dofs_c, owner = constrained_dofs(problem)
    _check_rigid_modes(mesh, dofs_c)
    quad = quadrature(mesh)
    mats = _Materials(problem, quad)
    symmetric = _symmetric([g["law"] for g in mats.groups], options.symmetric)
    pattern = sparsity(mesh, dofs_c, symmetric=symmetric)
    solver = LinearSolver(symmetric=symmetric, backend=options.linear_solver)
    loads = _load_vectors(problem)
    bc_of = owner
    breakpoints = _breakpoints(problem) if options.split_at_breakpoints else np.zeros(0)
    free = pattern.free
    n_bc = len(problem.dirichlet)
    comp_c = dofs_c % 3
    timings["setup"] = _time.perf_counter() - t_start

    def prescribed(t: float) -> np.ndarray:
        values = np.array([bc.scale(t) for bc in problem.dirichlet])
        return values[bc_of] if len(bc_of) else np.zeros(0)

    def external(t: float) -> np.ndarray:
        f = np.zeros(mesh.n_dofs)
        for load, vec in loads:
            s = load.scale(t)
            if s != 0.0:
                f += s * vec
        return f

    u = np.zeros(mesh.n_dofs)
    eps = np.empty((quad.n_points, 6))
    f_int = np.zeros(mesh.n_dofs)
    data = np.zeros(pattern.nnz)
    force_scale = 0.0
    f_int_n = np.zeros(mesh.n_dofs)  # committed (converged) internal force and tangent
    tangent_n = np.zeros((quad.n_points, 6, 6))
    # the tangent of the current factorization: an identical tangent (elastic increments)
    # reuses the factors instead of refactorizing (exact: same matrix)
    factorized_tangent = np.zeros((quad.n_points, 6, 6))
    factorized_valid = [False]
    counts = {"factorizations": 0}

    def reactions(f_int, f_ext) -> np.ndarray:
        out = np.zeros((n_bc, 3))
        if len(dofs_c):
            np.add.at(out, (bc_of, comp_c), (f_int - f_ext)[dofs_c])
        return out

    def output(step: int, t: float, f_ext: np.ndarray) -> None:
        t0 = _time.perf_counter()
        out = {"displacement": u}
        if "strain" in fields:
            out["strain"] = eps
        if "stress" in fields:
            out["stress"] = mats.stress
        if "state" in fields:
            out["state"] = mats.state()
        out["reactions"] = reactions(f_int, f_ext)
        writer_.write(step, t, out)
        timings["output"] += _time.perf_counter() - t0

    def evaluate(t: float, dt: float) -> int:
        t0 = _time.perf_counter()
        strain(quad, u, out=eps)
        t1 = _time.perf_counter()
        n_failed = mats.evaluate(eps, dt, t)
        t2 = _time.perf_counter()
        internal_force(quad, mats.stress, out=f_int)
        t3 = _time.perf_counter()
        timings["strain"] += t1 - t0
        timings["material"] += t2 - t1
        timings["force"] += t3 - t2
        return n_failed

    def linear_step(tangent: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Assemble K(tangent) on the free dofs, factorize, solve K du = rhs."""
        nonlocal symmetric, pattern, solver, data
        t0 = _time.perf_counter()
        if symmetric and options.symmetric is None:
            if max_asymmetry(tangent) > 1e-8:
                logger.warning("unsymmetric material tangent met: switching to the unsymmetric solver")
                solver.free()
                factorized_valid[0] = False
                symmetric = False
                pattern = sparsity(mesh, dofs_c, symmetric=False)
                solver = LinearSolver(symmetric=False, backend=options.linear_solver)
                data = np.zeros(pattern.nnz)
        reuse = factorized_valid[0] and np.array_equal(tangent, factorized_tangent)
        if not reuse:
            assemble_stiffness(quad, pattern, tangent, out=data)
        t1 = _time.perf_counter()
        try:
            if not reuse:
                factorized_valid[0] = False
                counts["factorizations"] += 1
                solver.factorize(pattern.matrix(data))
                np.copyto(factorized_tangent, tangent)
                factorized_valid[0] = True
            du = solver.solve(rhs)
        except SingularMatrixError as exc:
            # also met legitimately: a saturated viscoplastic law under load control overshoots
            # to a near-zero tangent; a smaller increment cures it
            raise _Failure(f"singular tangent ({exc})") from exc
        timings["assembly"] += t1 - t0
        timings["linear"] += _time.perf_counter() - t1
        return du

    def newton(t_old: float, t_new: float, history: list[float]) -> int:
        """One sub-increment from the committed state (u_n, f_int_n, tangent_n); returns the
        number of linear solves. On success u, f_int, eps, stress hold the converged values."""
        nonlocal force_scale
        dt = t_new - t_old
        u_old = u.copy()
        f_ext = external(t_new)
        # linear predictor with the converged tangent: K_ff du_f = f_ext - f_int_n - K_fc du_c.
        # It keeps the prescribed-displacement jump from concentrating in the boundary elements
        # (no velocity extrapolation: robust at reversals).
        rhs_full = f_ext - f_int_n
        if len(dofs_c):
            du_c = prescribed(t_new) - u[dofs_c]
            if np.any(du_c != 0.0):
                v = np.zeros(mesh.n_dofs)
                v[dofs_c] = du_c
                t0 = _time.perf_counter()
                eps_v = strain(quad, v)
                sig_v = np.einsum("pij,pj->pi", tangent_n, eps_v)
                rhs_full = rhs_full - internal_force(quad, sig_v)
                timings["strain"] += _time.perf_counter() - t0
            u[dofs_c] += du_c
        rhs = rhs_full[free]
        norms = [float(np.linalg.norm(rhs))]
        n_solves = 0
        du_norm = None
        if norms[0] > 0.0:
            du = linear_step(tangent_n, rhs)
            n_solves = 1
            u[free] += du
            du_norm = float(np.abs(du).max())
        for k in range(options.max_iter + 1):
            n_failed = evaluate(t_new, dt)
            if n_failed:
                raise _Failure(f"local integration failed at {n_failed} integration point(s)")
            r = f_ext[free] - f_int[free]
            rn = float(np.linalg.norm(r))
            scale = max(float(np.linalg.norm(f_int)), float(np.linalg.norm(f_ext)), force_scale)
            norms.append(rn)
            history.append(rn / scale if scale > 0 else rn)
            if not np.isfinite(rn):
                raise _Failure("non-finite residual")
            if rn <= options.rtol * scale or rn <= options.atol:
                ref = max(np.abs(u - u_old).max(initial=0.0), np.abs(u).max(initial=0.0))
                # last correction small, or its estimated successor (linear-rate estimate
                # du * r_k / r_{k-1}, as CalculiX's checkconvergence does) small
                if du_norm is None or min(du_norm, du_norm * rn / max(norms[-2], 1e-300)) <= options.ctol * ref:
                    force_scale = max(force_scale, scale)
                    return n_solves
            if n_solves >= options.max_iter:
                raise _Failure(f"no convergence in {options.max_iter} iterations")
            if k >= 2 and norms[-1] > norms[-2] > norms[-3]:
                raise _Failure("residual growing")
            du = linear_step(mats.tangent, r)
            n_solves += 1
            u[free] += du
            du_norm = float(np.abs(du).max())
        raise AssertionError("unreachable")  # pragma: no cover

    def commit() -> None:
        mats.commit()
        np.copyto(tangent_n, mats.tangent)
        np.copyto(f_int_n, f_int)

    default_writer = writer is None
    writer_ = MemoryWriter() if default_writer else writer
    times = problem.times
    n_steps = len(times) - 1
    iterations = np.zeros(n_steps, np.int64)
    n_sub = np.zeros(n_steps, np.int64)
    histories: list[list[float]] = []
    reaction_rows = []

    try:
        # tangent of the virgin state (zero strain, elastic) for the first predictor
        if evaluate(0.0, float(times[1] - times[0])):
            raise ConvergenceError("the material fails at zero strain")
        np.copyto(tangent_n, mats.tangent)
        f_ext0 = external(0.0)
        if np.any(prescribed(0.0) != 0.0) or np.any(f_ext0 != 0.0):
            # nonzero prescribed values at t = 0: solve the initial equilibrium with dt = 0
            histories0: list[float] = []
            try:
                newton(0.0, 0.0, histories0)
            except _Failure as exc:
                raise ConvergenceError(f"initial equilibrium at t=0 failed: {exc.reason}; residuals {histories0}") from exc
            commit()
        reaction_rows.append(reactions(f_int, f_ext0))
        output(0, 0.0, f_ext0)
        for step in range(1, n_steps + 1):
            t_a, t_b = float(times[step - 1]), float(times[step])
            inner = breakpoints[(breakpoints > t_a) & (breakpoints < t_b)]
            # avoid slivers: drop breakpoints within 1e-9 of the interval ends
            inner = inner[(inner - t_a > 1e-9 * (t_b - t_a)) & (t_b - inner > 1e-9 * (t_b - t_a))]
            targets = list(inner) + [t_b]
            history: list[float] = []
            t_now = t_a
            for target in targets:
                seg = target - t_now
                dt = seg
                min_dt = seg * 0.5 ** options.max_cuts
                while t_now < target:
                    t_next = target if t_now + dt >= target - 1e-12 * seg else t_now + dt
                    u_saved = u.copy()
                    try:
                        its = newton(t_now, t_next, history)
                    except _Failure as exc:
                        u[:] = u_saved
                        if dt / 2 < min_dt * (1 - 1e-12):
                            raise ConvergenceError(
                                f"{problem.name}: no convergence at t={t_next:.6g} (increment {step}, "
                                f"from t={t_now:.6g}, sub-increment size {t_next - t_now:.3g} = "
                                f"{seg:.3g} / 2**{options.max_cuts}, the minimum): {exc.reason}; "
                                f"relative residuals of the increment: "
                                f"{[float(f'{h:.3e}') for h in history]}"
                            ) from exc
                        logger.info("t=%.6g: %s; cutting the increment to %.3g", t_next, exc.reason, dt / 2)
                        dt = dt / 2
                        continue
                    commit()
                    iterations[step - 1] += its
                    n_sub[step - 1] += 1
                    t_now = t_next
                    if dt < seg and its <= 4:  # easy after a cut: grow again
                        dt = min(2 * dt, seg)
                t_now = target
            histories.append(history)
            f_ext = external(t_b)
            reaction_rows.append(reactions(f_int, f_ext))
            output(step, t_b, f_ext)
            logger.info("increment %d/%d t=%.6g: %d iterations, %d sub-increments, residual %.3e",
                        step, n_steps, t_b, iterations[step - 1], n_sub[step - 1], history[-1])
            if progress is not None:
                progress(step, n_steps, {"time": t_b, "iterations": int(iterations[step - 1]),
                                         "subincrements": int(n_sub[step - 1]), "residual": history[-1]})
    finally:
        writer_.close()
        solver.free()

    wall = _time.perf_counter() - t_start
    timings["total"] = wall
    disp = None
    out_fields: dict[str, np.ndarray] = {}
    if default_writer:
        disp = np.array(writer_.fields["displacement"])
        out_fields = {k: np.array(v) for k, v in writer_.fields.items() if k in fields and k != "displacement"}
    return Result(
        times=np.array(times), displacement=disp, fields=out_fields,
        reactions=np.array(reaction_rows), reaction_names=tuple(bc.name for bc in problem.dirichlet),
        newton_iterations=iterations, n_subincrements=n_sub, residual_history=histories,
        wall_time=wall, timings=timings, n_factorizations=counts["factorizations"],
    )
