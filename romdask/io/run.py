"""The in-memory run object every reader produces and the snapshot store ingests.

A run is a mesh plus a sequence of frames (one per output time). Frames are produced lazily by a
re-iterable callable, so that a run never needs to fit in memory: the store writes it frame by
frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.fem.partition import Partition

__all__ = ["FieldSpec", "Frame", "Run", "ReaderError", "sha256"]


class ReaderError(ValueError):
    """A source file is unreadable or inconsistent; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class FieldSpec:
    """What one field of a run holds.

    ``location``: "node" -> arrays (n_nodes, n_components) in the run mesh's node order;
    "ip" -> (n_points, n_components) in romdask's integration-point order
    (docs/conventions.md: block, element, CalculiX point order).
    Conventions: "displacement" (node, 3); "strain" (ip, 6, engineering shear, Voigt
    xx yy zz xy xz yz); "stress" (ip, 6, same order, tensor components); "state" (ip, n,
    state[:, 0] = cumulated plastic strain p when known); "p" (ip, 1) when only that is known.
    """

    location: str
    components: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.location not in ("node", "ip"):
            raise ValueError(f"field location must be 'node' or 'ip'; got {self.location!r}")


@dataclass(frozen=True)
class Frame:
    """One output time of a run: ``data[name]`` has the shape its FieldSpec says (float64)."""

    step: int
    time: float
    data: Mapping[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Run:
    """A high-fidelity run as read from its files.

    Parameters
    ----------
    name : run identifier (unique inside a store)
    mesh : Mesh (the solver's ids kept in node_ids / CellBlock.ids)
    times : (n_steps,) output times, strictly increasing
    fields : name -> FieldSpec; "displacement" is required
    frames : callable returning a fresh iterator of Frame, in time order, each call re-reading
        the sources (so an interrupted ingest can start again)
    solver, solver_version : e.g. "calculix", "2.20"; "romdask-builtin", romdask.__version__
    sources : the files read (checksummed by the store)
    partition : the solver's own subdomains: a :class:`~romdask.fem.partition.Partition` of
        ``mesh`` (element and node subdomains) or a subdomain per node (n_nodes,) (elements then
        go to their lowest node's subdomain); None: the store partitions with METIS
    metadata : load description and anything else (JSON-serializable). Readers record there
        ``"omitted_fields"``: {source variable: why it is not among ``fields``} for every
        variable of the source that no field holds (empty or absent: nothing left out), and
        ``"partition"``: where ``partition`` comes from.
    """

    name: str
    mesh: Mesh
    times: np.ndarray
    fields: Mapping[str, FieldSpec]
    frames: Callable[[], Iterator[Frame]]
    solver: str = "unknown"
    solver_version: str = ""
    sources: tuple[Path, ...] = ()
    partition: Partition | np.ndarray | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = np.array(self.times, np.float64)
        where = self.sources[0] if self.sources else self.name
        if t.ndim != 1 or len(t) == 0:
            raise ReaderError(where, "the run has no output times")
        if not np.all(np.isfinite(t)):
            raise ReaderError(where, "non-finite output times")
        if np.any(np.diff(t) <= 0):
            k = int(np.flatnonzero(np.diff(t) <= 0)[0])
            raise ReaderError(where, f"non-increasing times: step {k + 1} at t={t[k + 1]:g} after t={t[k]:g}")
        object.__setattr__(self, "times", t)
        if "displacement" not in self.fields:
            raise ReaderError(where, "the run has no displacement field")
        object.__setattr__(self, "sources", tuple(Path(s) for s in self.sources))
        if isinstance(self.partition, Partition):
            n_el, n_nodes = len(self.partition.element_part), len(self.partition.node_part)
            if (n_el, n_nodes) != (self.mesh.n_elements, self.mesh.n_nodes):
                raise ReaderError(where, f"partition has {n_el} elements / {n_nodes} nodes, the mesh "
                                         f"{self.mesh.n_elements} / {self.mesh.n_nodes}")
        elif self.partition is not None:
            part = np.asarray(self.partition, np.int64)
            if part.shape != (self.mesh.n_nodes,):
                raise ReaderError(where, f"partition has {part.shape} entries for {self.mesh.n_nodes} nodes")
            object.__setattr__(self, "partition", part)

    @property
    def n_steps(self) -> int:
        return len(self.times)


def sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
