"""Load patterns x amplitude tables: what a high-fidelity run and a reduced scenario are made of.

A load pattern is a fixed spatial distribution (prescribed displacement on nodes, nodal forces,
pressure on a surface, a centrifugal or gravity body force on elements) scaled in time by an
:class:`Amplitude`. A reduced model keeps one reduced vector per pattern; a new scenario changes
only the amplitudes. Temperatures are nodal patterns too (:class:`Temperature`), but they are
inputs of the laws, not forces: a reduced model maps ANY nodal temperature field to its reduced
points (:mod:`romdask.fem.temperature`), so a new scenario may change their shapes as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Amplitude", "BodyForce", "Centrifugal", "Dirichlet", "Gravity", "NodalForce", "Pressure", "Temperature",
           "cyclic", "ramp"]


@dataclass(frozen=True, eq=False)
class Amplitude:
    """A piecewise-linear amplitude table a(t) (CalculiX ``*AMPLITUDE``).

    Constant extrapolation outside the table (as CalculiX does).
    """

    times: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        t = np.array(self.times, np.float64)
        v = np.array(self.values, np.float64)
        if t.ndim != 1 or t.shape != v.shape or len(t) < 1:
            raise ValueError(f"amplitude needs 1-D times and values of equal length; got {t.shape}, {v.shape}")
        if np.any(np.diff(t) < 0):
            raise ValueError("amplitude times must be non-decreasing")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ValueError("amplitude times and values must be finite")
        t.setflags(write=False)
        v.setflags(write=False)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "values", v)

    def __call__(self, t):
        return np.interp(t, self.times, self.values)

    def breakpoints(self, t_end: float | None = None) -> np.ndarray:
        """Times of the table up to ``t_end``: where the load may change direction."""
        t = self.times if t_end is None else self.times[self.times <= t_end]
        return np.unique(t)


def ramp(t_end: float = 1.0) -> Amplitude:
    """0 at t=0 to 1 at ``t_end``."""
    return Amplitude([0.0, t_end], [0.0, 1.0])


def cyclic(period: float = 1.0, n_cycles: float = 1, *, r_ratio: float = -1.0) -> Amplitude:
    """Triangular cycles 0 -> 1 -> r_ratio -> ... -> 0 (fully reversed for ``r_ratio=-1``).

    Each cycle goes up to 1 at period/4, down to ``r_ratio`` at 3 period/4 and back to 0 at the
    end of the period (for r_ratio = 0: up at period/2, down at period). A fractional
    ``n_cycles`` cuts the last cycle at ``n_cycles * period`` (0.5: up to 1 and back to 0).
    """
    if period <= 0 or n_cycles <= 0:
        raise ValueError(f"cyclic needs period > 0 and n_cycles > 0; got {period}, {n_cycles}")
    if r_ratio == 0.0:
        one = [(0.5, 1.0), (1.0, 0.0)]
    else:
        one = [(0.25, 1.0), (0.75, r_ratio), (1.0, 0.0)]
    times, values = [0.0], [0.0]
    for c in range(int(np.ceil(n_cycles))):
        for frac, val in one:
            times.append((c + frac) * period)
            values.append(val)
    # a fractional last cycle ends where the triangle is at t_end (half a cycle: back at 0)
    t_end = n_cycles * period
    keep = np.asarray(times) < t_end * (1 - 1e-12)
    values = list(np.asarray(values)[keep]) + [float(np.interp(t_end, times, values))]
    times = list(np.asarray(times)[keep]) + [t_end]
    return Amplitude(times, values)


def _check_nodes(nodes, what: str) -> np.ndarray:
    a = np.unique(np.asarray(nodes, np.int64).ravel())
    if a.size == 0:
        raise ValueError(f"{what} on an empty node set")
    return a


@dataclass(frozen=True, eq=False)
class Dirichlet:
    """u[nodes, component] = value * amplitude(t) (homogeneous when value == 0).

    ``amplitude=None`` means the value is applied in full at all times (CalculiX default for
    *BOUNDARY without AMPLITUDE in a step ramps it; romdask keeps it explicit: pass ramp()).
    """

    nodes: np.ndarray
    components: tuple[int, ...]
    value: float = 0.0
    amplitude: Amplitude | None = None
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _check_nodes(self.nodes, "Dirichlet condition"))
        comps = tuple(int(c) for c in np.atleast_1d(self.components))
        if not comps or any(c not in (0, 1, 2) for c in comps):
            raise ValueError(f"Dirichlet components must be among 0, 1, 2; got {self.components}")
        object.__setattr__(self, "components", comps)

    @property
    def dofs(self) -> np.ndarray:
        return (3 * self.nodes[:, None] + np.asarray(self.components)[None, :]).ravel()

    def scale(self, t) -> float:
        return self.value * (1.0 if self.amplitude is None else float(self.amplitude(t)))


@dataclass(frozen=True, eq=False)
class NodalForce:
    """Force ``value * amplitude(t)`` on each node of ``nodes`` along ``component`` (*CLOAD)."""

    nodes: np.ndarray
    component: int
    value: float
    amplitude: Amplitude | None = None
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _check_nodes(self.nodes, "nodal force"))
        if self.component not in (0, 1, 2):
            raise ValueError(f"nodal force component must be 0, 1 or 2; got {self.component}")

    def scale(self, t) -> float:
        return 1.0 if self.amplitude is None else float(self.amplitude(t))


@dataclass(frozen=True, eq=False)
class Pressure:
    """Pressure ``value * amplitude(t)`` on faces (*DLOAD Pn); positive pushes into the body.

    ``faces``: int array (n_faces, 2) of (global element index, 0-based CalculiX face number),
    e.g. ``mesh.surfaces[name]``.
    """

    faces: np.ndarray
    value: float
    amplitude: Amplitude | None = None
    name: str = ""

    def __post_init__(self) -> None:
        f = np.array(self.faces, np.int64).reshape(-1, 2)
        if f.size == 0:
            raise ValueError("pressure on an empty surface")
        object.__setattr__(self, "faces", f)

    def scale(self, t) -> float:
        return 1.0 if self.amplitude is None else float(self.amplitude(t))


def _check_elements(elements, what: str) -> np.ndarray:
    a = np.unique(np.asarray(elements, np.int64).ravel())
    if a.size == 0:
        raise ValueError(f"{what} on an empty element set")
    if a[0] < 0:
        raise ValueError(f"{what}: element indices must be >= 0; got {a[0]}")
    return a


def _vector3(v, what: str, *, unit: bool = False) -> np.ndarray:
    a = np.array(v, np.float64).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be 3 finite numbers; got {v!r}")
    if unit:
        norm = float(np.linalg.norm(a))
        if norm == 0.0:
            raise ValueError(f"{what} must not be zero")
        a = a / norm
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Centrifugal:
    """Centrifugal body force of a rotation about an axis (CalculiX ``*DLOAD`` ``CENTRIF``).

    The force per unit volume at a point ``x`` of ``elements`` is
    ``density * value * amplitude(t) * r`` with ``r`` the part of ``x - point`` normal to
    ``axis``: ``value`` is omega^2 (rad^2/s^2 in consistent units), taken on the UNDEFORMED
    geometry as CalculiX does without NLGEOM (``e_c3d.f``: no spin softening in a static step).

    Parameters
    ----------
    elements : global element indices
    value : omega^2
    point, axis : a point of the axis and its direction (normalized here)
    density : mass density of the elements (``*DENSITY``)
    """

    elements: np.ndarray
    value: float
    point: np.ndarray
    axis: np.ndarray
    density: float
    amplitude: Amplitude | None = None
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", _check_elements(self.elements, "centrifugal load"))
        object.__setattr__(self, "point", _vector3(self.point, "centrifugal load point"))
        object.__setattr__(self, "axis", _vector3(self.axis, "centrifugal load axis", unit=True))
        if not (np.isfinite(self.density) and self.density > 0):
            raise ValueError(f"centrifugal load {self.name!r}: density must be > 0; got {self.density}")

    def scale(self, t) -> float:
        return 1.0 if self.amplitude is None else float(self.amplitude(t))


@dataclass(frozen=True, eq=False)
class Gravity:
    """Gravity body force ``density * value * amplitude(t) * direction`` per unit volume on
    ``elements`` (CalculiX ``*DLOAD`` ``GRAV``: value = acceleration, direction normalized)."""

    elements: np.ndarray
    value: float
    direction: np.ndarray
    density: float
    amplitude: Amplitude | None = None
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", _check_elements(self.elements, "gravity load"))
        object.__setattr__(self, "direction", _vector3(self.direction, "gravity direction", unit=True))
        if not (np.isfinite(self.density) and self.density > 0):
            raise ValueError(f"gravity load {self.name!r}: density must be > 0; got {self.density}")

    def scale(self, t) -> float:
        return 1.0 if self.amplitude is None else float(self.amplitude(t))


#: the body-force patterns
BodyForce = Centrifugal | Gravity


@dataclass(frozen=True, eq=False)
class Temperature:
    """A nodal temperature pattern: ``T[nodes] += values * amplitude(t)`` (CalculiX ``*TEMPERATURE``
    with ``AMPLITUDE=``: the nodal temperature is amplitude(t) x value).

    ``values`` is one number per node of ``nodes`` (or one for all); ``amplitude=None`` means
    the values hold at all times. See :meth:`romdask.problem.Problem.nodal_temperature` for how
    patterns and the initial temperature combine.
    """

    nodes: np.ndarray
    values: np.ndarray | float
    amplitude: Amplitude | None = None
    name: str = ""

    def __post_init__(self) -> None:
        raw = np.asarray(self.nodes, np.int64).ravel()
        if raw.size == 0:
            raise ValueError("temperature pattern on an empty node set")
        if np.unique(raw).size != raw.size:
            raise ValueError(f"temperature pattern {self.name!r} names a node twice")
        values = np.array(np.broadcast_to(np.asarray(self.values, np.float64), raw.shape))
        if not np.all(np.isfinite(values)):
            raise ValueError(f"temperature pattern {self.name!r} has non-finite values")
        order = np.argsort(raw)
        nodes, values = raw[order], values[order]
        nodes.setflags(write=False)
        values.setflags(write=False)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "values", values)

    def scale(self, t) -> float:
        return 1.0 if self.amplitude is None else float(self.amplitude(t))
