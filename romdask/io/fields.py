"""Full fields of a prediction where users look at them: a ParaView series and a CalculiX .frd.

Inputs are what :mod:`romdask.online.reconstruct` gives: displacement per node, stress and
cumulated plastic strain at every integration point, the error indicator per output time. Both
writers read one output time at a time (numpy, dask or zarr arrays) and derive the nodal fields
of that time only, so memory stays at a few times one frame, whatever the number of times.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from romdask.fem.elements import get_element
from romdask.fem.extrapolate import ip_to_elements, ip_to_nodes, node_element_counts
from romdask.fem.mesh import Mesh
from romdask.io.calculix.frd_writer import write_frd
from romdask.io.vtu import VTK_TENSOR_COMPONENTS, write_vtu_series
from romdask.materials import von_mises

__all__ = ["INDICATOR_BLOCK", "PredictionSeries", "write_prediction_frd", "write_prediction_vtu"]

logger = logging.getLogger(__name__)

#: .frd block of the error indicator (one value per output time, written at every node)
INDICATOR_BLOCK = "ERRIND"
_VOIGT_TO_VTK = np.array([0, 1, 2, 3, 5, 4])  # romdask xx yy zz xy xz yz -> VTK xx yy zz xy yz xz


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def _lazy(a: Any) -> Any:
    """Arrays are indexed one time at a time; other sequences become numpy arrays."""
    return a if hasattr(a, "shape") and hasattr(a, "__getitem__") else np.asarray(a, np.float64)


@dataclass(frozen=True, eq=False)
class _Inputs:
    mesh: Mesh
    times: np.ndarray
    displacement: Any
    stress: Any | None
    plastic_strain: Any | None
    indicator: np.ndarray | None
    ip_points: np.ndarray | None
    n_points: int


def _check_ip_points(ip_points, n_points: int) -> np.ndarray | None:
    if ip_points is None:
        return None
    ip_points = np.asarray(ip_points)
    if ip_points.shape != (n_points,) or not np.array_equal(np.sort(ip_points), np.arange(n_points)):
        raise ValueError(f"ip_points must be a permutation of the {n_points} integration points (position i holds "
                         f"global point ip_points[i], e.g. FullBases.ip_points); got shape {ip_points.shape}")
    return ip_points


def _check_inputs(mesh, times, displacement, stress, plastic_strain, indicator, ip_points) -> _Inputs:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"a romdask Mesh is needed; got {type(mesh).__name__}")
    times = np.asarray(times, np.float64)
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be a 1-D increasing sequence of finite numbers; got {times[:10]!r}")
    n_t, n_nodes = len(times), mesh.n_nodes
    n_points = sum(len(b) * get_element(b.type).n_points for b in mesh.blocks)
    displacement = _lazy(displacement)
    if _shape(displacement) not in ((n_t, n_nodes, 3), (n_t, 3 * n_nodes)):
        raise ValueError(f"displacement must have shape (n_times, n_nodes, 3) = ({n_t}, {n_nodes}, 3) or "
                         f"(n_times, n_dofs) = ({n_t}, {3 * n_nodes}); got {_shape(displacement)}")
    expected = {"stress": ((n_t, n_points, 6),), "plastic_strain": ((n_t, n_points), (n_t, n_points, 1))}
    given = {"stress": stress, "plastic_strain": plastic_strain}
    for name, value in given.items():
        if value is not None:
            given[name] = value = _lazy(value)
            if _shape(value) not in expected[name]:
                raise ValueError(f"{name} must have shape {' or '.join(map(str, expected[name]))} (n_times, "
                                 f"integration points of the mesh[, k]); got {_shape(value)}")
    if indicator is not None:
        indicator = np.asarray(indicator, np.float64)
        if indicator.shape != (n_t,):
            raise ValueError(f"indicator must have shape (n_times,) = ({n_t},); got {indicator.shape}")
    return _Inputs(mesh, times, displacement, given["stress"], given["plastic_strain"], indicator,
                   _check_ip_points(ip_points, n_points), n_points)


class _Frames:
    """The derived fields of one output time, computed on first use and kept until the next time
    is asked for; per-time maxima collected on the way."""

    def __init__(self, inputs: _Inputs, exact: bool):
        self.inputs, self.exact = inputs, exact
        self.counts = node_element_counts(inputs.mesh)
        self.step: int | None = None
        self.data: dict[str, np.ndarray] = {}
        n_t = len(inputs.times)
        self.maxima = {"max_von_mises": np.full(n_t, np.nan), "max_equivalent_plastic_strain": np.full(n_t, np.nan)}

    def _ip(self, field: Any, step: int, k: int) -> np.ndarray:
        values = np.asarray(field[step], np.float64).reshape(self.inputs.n_points, k)
        if self.inputs.ip_points is None:
            return values
        out = np.empty_like(values)
        out[self.inputs.ip_points] = values
        return out

    def get(self, step: int) -> dict[str, np.ndarray]:
        if step == self.step:
            return self.data
        inp, mesh = self.inputs, self.inputs.mesh
        data = {"displacement": np.asarray(inp.displacement[step], np.float64).reshape(mesh.n_nodes, 3)}
        if inp.stress is not None:
            ip = self._ip(inp.stress, step, 6)
            vm = von_mises(ip)
            nodal = ip_to_nodes(mesh, ip, exact=self.exact, counts=self.counts)
            data.update(stress_voigt=nodal, stress=nodal[:, _VOIGT_TO_VTK], von_mises=von_mises(nodal),
                        cell_stress=ip_to_elements(mesh, ip)[:, _VOIGT_TO_VTK],
                        cell_von_mises=ip_to_elements(mesh, vm))
            self.maxima["max_von_mises"][step] = vm.max(initial=-np.inf)
        if inp.plastic_strain is not None:
            ip = self._ip(inp.plastic_strain, step, 1)[:, 0]
            data.update(equivalent_plastic_strain=ip_to_nodes(mesh, ip, exact=self.exact, counts=self.counts),
                        cell_equivalent_plastic_strain=ip_to_elements(mesh, ip))
            self.maxima["max_equivalent_plastic_strain"][step] = ip.max(initial=-np.inf)
        self.step, self.data = step, data
        return data


def _indicator_text(value: float) -> str:
    """At most 12 characters for the 100CL description field: ``ind=1.23E-03``."""
    if not np.isfinite(value):
        return "ind=NaN"
    for text in (f"ind={value:.2E}", f"ind={value:.1E}", f"{value:.2E}", f"{value:.0E}"):
        if len(text) <= 12:
            return text
    return "ind=?"  # pragma: no cover - every finite float fits the last format


class _Column(Sequence):
    """One derived field as a lazy (n_times, ...) sequence for the writers."""

    def __init__(self, frames: _Frames, key: str, shape: tuple[int, ...]):
        self.frames, self.key, self.shape = frames, key, shape

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, step):  # type: ignore[override]
        if not isinstance(step, (int, np.integer)):
            raise TypeError("a lazy field column is indexed by one output time")
        return self.frames.get(int(step))[self.key]


@dataclass(frozen=True)
class PredictionSeries:
    """What :func:`write_prediction_vtu` wrote.

    Attributes
    ----------
    pvd : the ParaView collection; files : the ``.vtu`` files, one per output time
    table : per output time: ``time``, ``error_indicator`` (NaN when not given or unavailable),
        ``max_von_mises`` and ``max_equivalent_plastic_strain`` (over the integration points;
        NaN when the field was not given)
    """

    pvd: Path
    files: tuple[Path, ...]
    table: Mapping[str, np.ndarray]

    def write_csv(self, path: str | os.PathLike) -> Path:
        """The table as a CSV file (header line, one row per output time, full precision)."""
        path = Path(path)
        names = list(self.table)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(names)
            writer.writerows(zip(*(np.asarray(self.table[n]).tolist() for n in names)))
        return path


def write_prediction_vtu(
    stem: str | os.PathLike,
    mesh: Mesh,
    times: Sequence[float] | np.ndarray,
    displacement: Any,
    *,
    stress: Any | None = None,
    plastic_strain: Any | None = None,
    indicator: Sequence[float] | np.ndarray | None = None,
    ip_points: np.ndarray | None = None,
    exact: bool = False,
) -> PredictionSeries:
    """A prediction's full fields as a ParaView series (``<stem>.pvd`` + ``<stem>_NNNN.vtu``).

    Parameters
    ----------
    stem : path without suffix (folders created)
    mesh : Mesh of the fields (for a snapshot store: ``store.layout.mesh``, store order)
    times : (n_t,) increasing output times
    displacement : (n_t, n_nodes, 3) or (n_t, n_dofs) (e.g.
        :func:`~romdask.online.reconstruct_displacement`)
    stress : (n_t, n_points, 6) at the integration points, Voigt ``xx yy zz xy xz yz`` (e.g.
        :func:`~romdask.online.replay_law` or :func:`~romdask.online.reconstruct_dual`), or None
    plastic_strain : (n_t, n_points[, 1]) cumulated (equivalent) plastic strain, or None
    indicator : (n_t,) error indicator of the prediction (NaN allowed: unavailable), or None
    ip_points : None when the point fields are in romdask's global integration-point order of
        ``mesh``; else position i holds global point ``ip_points[i]`` (``FullBases.ip_points``
        for the store's ip-position order of reconstruct/replay)
    exact : exact extrapolation matrices instead of CalculiX's tables (:func:`~romdask.fem.ip_to_nodes`)

    Returns
    -------
    PredictionSeries: the files and the per-time table (``.write_csv(path)``).

    Point data: ``displacement``; ``stress`` (the CalculiX-style nodal extrapolation and mean,
    :func:`~romdask.fem.ip_to_nodes`, NaN at nodes of no element), in ParaView's tensor order
    ``XX YY ZZ XY YZ XZ`` with those component names; ``von_mises`` of that nodal stress (as cgx
    computes it from the .frd); ``equivalent_plastic_strain`` extrapolated the same way. Cell
    data: ``stress`` (same order), ``von_mises`` and ``equivalent_plastic_strain``, the plain
    means of the element's integration-point values (von Mises of each point, then the mean).
    Field data (one value per file): ``error_indicator`` and ``TimeValue``.

    Raises
    ------
    ValueError, TypeError
        Shapes that do not match the mesh and times (the message gives the expected shapes),
        non-increasing times, an ``ip_points`` that is not a permutation.

    Notes
    -----
    One output time at a time: its point fields are read (``a[step]``, so dask and zarr arrays
    are computed/read per time), extrapolated and written, then dropped. Memory: about
    ``8 (n_points 7 + n_nodes 11 + n_elements 8)`` bytes plus the VTU file of one time; cost per
    time dominated by the extrapolation (``n_el n_en n_ip 7`` multiply-adds) and zlib.
    """
    inputs = _check_inputs(mesh, times, displacement, stress, plastic_strain, indicator, ip_points)
    frames = _Frames(inputs, exact)
    n_t, n_nodes, n_el = len(inputs.times), mesh.n_nodes, mesh.n_elements
    point: dict[str, Any] = {"displacement": _Column(frames, "displacement", (n_t, n_nodes, 3))}
    cell: dict[str, Any] = {}
    if stress is not None:
        point.update(stress=_Column(frames, "stress", (n_t, n_nodes, 6)),
                     von_mises=_Column(frames, "von_mises", (n_t, n_nodes)))
        cell.update(stress=_Column(frames, "cell_stress", (n_t, n_el, 6)),
                    von_mises=_Column(frames, "cell_von_mises", (n_t, n_el)))
    if plastic_strain is not None:
        point["equivalent_plastic_strain"] = _Column(frames, "equivalent_plastic_strain", (n_t, n_nodes))
        cell["equivalent_plastic_strain"] = _Column(frames, "cell_equivalent_plastic_strain", (n_t, n_el))
    ind = inputs.indicator if inputs.indicator is not None else np.full(n_t, np.nan)
    pvd = write_vtu_series(stem, mesh, inputs.times, point, cell, field_data={"error_indicator": ind},
                           component_names={"stress": VTK_TENSOR_COMPONENTS})
    files = tuple(pvd.parent / f"{pvd.stem}_{k:04d}.vtu" for k in range(n_t))
    table = {"time": inputs.times.copy(), "error_indicator": ind.copy()}
    if stress is not None:
        table["max_von_mises"] = frames.maxima["max_von_mises"]
    if plastic_strain is not None:
        table["max_equivalent_plastic_strain"] = frames.maxima["max_equivalent_plastic_strain"]
    logger.info("%s: %d output times, point fields %s", pvd, n_t, sorted(point))
    return PredictionSeries(pvd, files, table)


def write_prediction_frd(
    path: str | os.PathLike,
    mesh: Mesh,
    times: Sequence[float] | np.ndarray,
    displacement: Any,
    *,
    stress: Any | None = None,
    plastic_strain: Any | None = None,
    indicator: Sequence[float] | np.ndarray | None = None,
    ip_points: np.ndarray | None = None,
    exact: bool = False,
    encoding: str = "ascii",
    steps: Sequence[int] | np.ndarray | None = None,
    description: str = "romdask prediction",
) -> Path:
    """A prediction's full fields as a CalculiX ``.frd`` (cgx), with CalculiX's nodal values.

    Parameters
    ----------
    path, encoding, steps, description : see :func:`~romdask.io.calculix.write_frd`
    mesh, times, displacement, stress, plastic_strain, indicator, ip_points, exact : see
        :func:`write_prediction_vtu`

    Returns
    -------
    Path of the file. Blocks per output time: ``DISP``; ``STRESS`` (extrapolated to the nodes
    and averaged as ccx does, so that cgx shows what it shows for a CalculiX run; cgx computes
    von Mises and principal stresses itself); ``PE`` (the plastic strain, extrapolated the same
    way); ``ERRIND`` (the indicator, the same value at every node) unless the indicator is
    missing or has NaN. The indicator is also written as ``ind=1.23E-03`` in the description
    field of every ``100CL`` line of the time (cgx lists it with each dataset).

    Raises
    ------
    ValueError, TypeError
        As :func:`write_prediction_vtu` and :func:`~romdask.io.calculix.write_frd`.

    Notes
    -----
    Memory and cost per output time as :func:`write_prediction_vtu` (von Mises and cell means
    are computed too, they are cheap); formatting as :func:`~romdask.io.calculix.write_frd`.
    """
    inputs = _check_inputs(mesh, times, displacement, stress, plastic_strain, indicator, ip_points)
    frames = _Frames(inputs, exact)
    n_t, n_nodes = len(inputs.times), mesh.n_nodes
    fields: dict[str, Any] = {"DISP": _Column(frames, "displacement", (n_t, n_nodes, 3))}
    if stress is not None:
        fields["STRESS"] = _Column(frames, "stress_voigt", (n_t, n_nodes, 6))
    if plastic_strain is not None:
        fields["PE"] = _Column(frames, "equivalent_plastic_strain", (n_t, n_nodes))
    texts = None
    if inputs.indicator is not None:
        texts = [_indicator_text(v) for v in inputs.indicator.tolist()]
        if np.all(np.isfinite(inputs.indicator)):
            fields[INDICATOR_BLOCK] = inputs.indicator
        else:
            logger.warning("%s: the error indicator is NaN at some output times: no %s block written", path,
                           INDICATOR_BLOCK)
    return write_frd(path, mesh, inputs.times, fields, steps=steps, encoding=encoding, description=description,
                     frame_text=texts)
