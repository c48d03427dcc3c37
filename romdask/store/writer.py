"""Creating a snapshot store and writing runs into it, frame by frame, with bounded memory."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
import time as _time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import zarr

from romdask.fem.mesh import Mesh
from romdask.io.run import FieldSpec, Run
from romdask.serialize import compressors, jsonable

from .atomic import RunLock, build_aside
from .layout import (
    FORMAT,
    STEP_CHUNK,
    VERSION,
    StoreLayout,
    ip_map,
    is_store,
    mesh_difference,
    node_map,
    read_layout,
    source_info,
    store_mesh,
    subdomain_key,
    write_mesh,
)

__all__ = ["RunWriter", "SnapshotStore", "create_store"]

log = logging.getLogger(__name__)

#: test hook: seconds to sleep after each flush (lets a test kill an ingest half-way)
_SLEEP_ENV = "ROMDASK_STORE_TEST_SLEEP"
#: arrays written concurrently by a flush
_WRITE_THREADS = 4

_DEFAULT_SPECS = {
    "displacement": FieldSpec("node", ("x", "y", "z")),
    "strain": FieldSpec("ip", ("xx", "yy", "zz", "xy", "xz", "yz")),
    "stress": FieldSpec("ip", ("xx", "yy", "zz", "xy", "xz", "yz")),
    "temperature": FieldSpec("node", ("T",)),
}


def _version() -> str:
    from romdask import __version__

    return f"romdask {__version__}"


def create_store(
    path: str | Path,
    mesh: Mesh,
    *,
    n_subdomains: int | None = None,
    partition=None,
    compression: str | None = "lz4",
    units: Mapping[str, str] | None = None,
    step_chunk: int = STEP_CHUNK,
    seed: int = 0,
    overwrite: bool = False,
) -> "SnapshotStore":
    """Create an empty snapshot store for ``mesh``.

    Parameters
    ----------
    path : folder of the Zarr v3 store (created)
    mesh : Mesh of the runs (any numbering: the store keeps its own, subdomain by subdomain)
    n_subdomains : number of subdomains K (METIS, deterministic for ``seed``); default
        :func:`romdask.fem.partition.default_subdomains` of the mesh and this machine (1 below
        40,000 dofs)
    partition : a :class:`~romdask.fem.partition.Partition` of ``mesh`` or a subdomain per
        node (n_nodes,) given by the solver, instead of METIS
    compression : "lz4" (Blosc byte-shuffle + lz4, default), "zstd" or None
    units : e.g. {"length": "mm", "stress": "MPa", "time": "s"}
    step_chunk : frames per chunk along the step axis (and frames buffered by a writer)
    overwrite : replace an existing store at ``path`` (never a folder that is not a store)

    Returns
    -------
    SnapshotStore

    Notes
    -----
    Writes only the mesh group (mesh-sized), into a temporary sibling renamed to ``path`` when
    complete; when another process created ``path`` meanwhile, FileExistsError. The mesh is renumbered with
    :func:`romdask.fem.partition.renumber` so that each subdomain's dofs are contiguous.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        if not is_store(path):
            raise FileExistsError(f"{path} exists and is not a romdask snapshot store; choose another path")
        if not overwrite:
            raise FileExistsError(f"{path} exists (a romdask snapshot store); open it with SnapshotStore.open or "
                                  "pass overwrite=True")
    compressors(compression)  # validate early
    if int(step_chunk) < 1:
        raise ValueError(f"step_chunk must be >= 1; got {step_chunk}")
    smesh, part = store_mesh(mesh, n_subdomains, partition, seed)

    def build(folder: Path) -> None:
        root = zarr.open_group(str(folder), mode="w")
        root.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "n_subdomains": int(part.n_parts),
                "compression": compression or None,
                "step_chunk": int(step_chunk),
                "units": jsonable(dict(units or {})),
                "created_by": _version(),
            }
        )
        write_mesh(root, smesh, part)
        root.create_group("runs")

    # built aside and renamed: a concurrent creator finds a complete store or none
    build_aside(path, build, overwrite)
    return SnapshotStore(path)


class SnapshotStore:
    """A snapshot store on disk (see ``docs/store.md``).

    Use :func:`create_store` or :meth:`SnapshotStore.open`; read with
    :func:`romdask.store.open_snapshots`.
    """

    def __init__(self, path: str | Path, mode: str = "r+"):
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' (read only) or 'r+'; got {mode!r}")
        self.path = Path(path)
        if not is_store(self.path):
            raise ValueError(
                f"{self.path} is not a romdask snapshot store (no zarr group with format={FORMAT!r}); "
                "create one with romdask.store.create_store or `romdask ingest`"
            )
        self.root = zarr.open_group(str(self.path), mode=mode)
        version = self.root.attrs.get("version")
        if version != VERSION:
            raise ValueError(f"{self.path}: store format version {version}; this romdask reads version {VERSION}")
        if "mesh" not in self.root or not self.root["mesh"].attrs.get("complete", False):
            raise ValueError(
                f"{self.path}: the mesh group is incomplete (interrupted creation); delete the store and ingest again"
            )
        self._layout: StoreLayout | None = None

    @classmethod
    def open(cls, path: str | Path, mode: str = "r+") -> "SnapshotStore":
        """Open an existing store for reading and appending runs (``mode="r"``: read only)."""
        return cls(path, mode)

    @property
    def layout(self) -> StoreLayout:
        """The store mesh and its subdomain layout (read once, cached)."""
        if self._layout is None:
            self._layout = read_layout(self.root)
        return self._layout

    @property
    def n_subdomains(self) -> int:
        return int(self.root.attrs["n_subdomains"])

    @property
    def compression(self) -> str | None:
        return self.root.attrs.get("compression")

    @property
    def step_chunk(self) -> int:
        return int(self.root.attrs.get("step_chunk", STEP_CHUNK))

    def runs(self, complete_only: bool = False) -> dict[str, dict]:
        """Run name -> run attributes (status "complete" or "incomplete"), sorted by name."""
        runs = self.root["runs"]
        with warnings.catch_warnings():  # temporary files of a killed write: handled below
            warnings.filterwarnings("ignore", message=".*not recognized as a component")
            names = set(runs.group_keys())
        folder = self.path / "runs"
        if folder.is_dir():  # a run killed before its group metadata was written
            names |= {p.name for p in folder.iterdir() if p.is_dir()}
        out = {}
        for name in sorted(names):
            try:
                attrs = dict(runs[name].attrs)
            except KeyError:
                attrs = {"name": name, "status": "incomplete"}
            if complete_only and attrs.get("status") != "complete":
                continue
            out[name] = attrs
        return out

    def delete_run(self, name: str) -> None:
        """Remove a run (complete or not); RunBusyError while a writer holds it."""
        with RunLock(self.path, name):
            self._remove_run(name)

    def _remove_run(self, name: str) -> None:
        folder = self.path / "runs" / name
        if folder.is_dir():
            shutil.rmtree(folder)
        else:
            runs = self.root["runs"]
            if name in runs:
                del runs[name]

    def check_mesh(self, mesh: Mesh, where: str) -> None:
        """Raise ValueError naming ``where`` when ``mesh`` is not the store mesh."""
        diff = mesh_difference(self.layout.mesh, mesh)
        if diff is not None:
            raise ValueError(
                f"{where}: the mesh differs from the store's ({self.path}): {diff}. "
                "A store holds runs of one mesh; ingest this run into another store"
            )

    def writer(
        self,
        run_name: str,
        *,
        mesh: Mesh,
        times: Sequence[float] | None = None,
        fields: Mapping[str, FieldSpec] | Sequence[str] = ("displacement",),
        solver: str = "unknown",
        solver_version: str = "",
        sources: Sequence[str | Path] | Sequence[dict] = (),
        metadata: Mapping[str, object] | None = None,
        overwrite: bool = False,
        allow_nan: Sequence[str] = (),
    ) -> "RunWriter":
        """A writer for one run with the built-in solver's protocol ``write(step, time, fields)``
        / ``close()``.

        Parameters
        ----------
        run_name : unique name of the run in the store
        mesh : the mesh the arrays given to ``write`` refer to (e.g. ``problem.mesh``); must be
            the store mesh up to node / element numbering
        times : the output times, when known (then ``close`` checks that all were written)
        fields : the fields to keep, as FieldSpecs or names ("displacement", "strain",
            "stress", "temperature" (node, T) have default specs; others take "ip" and the
            components c0, c1, ...);
            arrays given to ``write`` under other names (e.g. "reactions") are ignored
        overwrite : replace a complete run of the same name: the new run is written aside and
            replaces the old one only once complete (an incomplete one is always replaced)
        allow_nan : fields in which NaN is legitimate (e.g. the solver's NaN-padded "state")
        """
        return RunWriter(self, run_name, mesh=mesh, times=times, fields=fields, solver=solver,
                         solver_version=solver_version, sources=sources, metadata=metadata,
                         overwrite=overwrite, allow_nan=allow_nan)

    def ingest_run(self, run: Run, *, overwrite: bool = False, sources_info: list[dict] | None = None) -> str:
        """Stream ``run`` frame by frame into the store.

        Returns "skipped" when a complete run of that name with the same source checksums is
        already there, "written" otherwise.

        Raises
        ------
        ValueError
            The mesh differs from the store's (nothing written), a complete run of that name has
            other sources (pass overwrite=True), or a frame holds NaN/Inf (run left incomplete).
        """
        info = sources_info if sources_info is not None else source_info(run.sources)
        lock = RunLock(self.path, run.name)  # before looking at the run: one writer at a time
        try:
            existing = self.runs().get(run.name)
            if existing is not None and existing.get("status") == "complete" and not overwrite:
                if _same_sources(existing, info, run):
                    log.info("run %s already complete with the same sources: skipped", run.name)
                    lock.release()
                    return "skipped"
                raise ValueError(
                    f"{_where(run)}: the store {self.path} already holds a complete run {run.name!r} made from "
                    "other sources (checksums, times or fields differ); pass overwrite=True to replace it"
                )
            w = RunWriter(self, run.name, mesh=run.mesh, times=run.times, fields=dict(run.fields), solver=run.solver,
                          solver_version=run.solver_version, sources=info, metadata=run.metadata,
                          overwrite=True, allow_nan=(), where=_where(run), lock=lock)
        except BaseException:
            lock.release()
            raise
        try:
            for frame in run.frames():
                w.write(frame.step, frame.time, frame.data)
        except BaseException:
            w.abort()
            raise
        if not w.close():
            raise ValueError(
                f"{_where(run)}: the reader gave {w.n_written} frames for {run.n_steps} output times; "
                "the run is left incomplete"
            )
        return "written"


def _where(run: Run) -> str:
    return f"{run.sources[0]} (run {run.name!r})" if run.sources else f"run {run.name!r}"


def _same_sources(attrs: Mapping, info: list[dict], run: Run) -> bool:
    old = {(s["name"], s["sha256"]) for s in attrs.get("sources", [])}
    new = {(s["name"], s["sha256"]) for s in info}
    if old != new:
        return False
    fields = {k: {"location": v.location, "components": list(v.components)} for k, v in run.fields.items()}
    return attrs.get("fields") == fields and np.array_equal(np.asarray(attrs.get("times")), run.times)


class RunWriter:
    """Writes one run into a store: see :meth:`SnapshotStore.writer`.

    Holds at most ``step_chunk`` frames (in store order) before writing them to every
    subdomain's arrays. The run's status is "incomplete" until :meth:`close` succeeds. Holds the
    run's lock (:class:`~romdask.store.atomic.RunLock`) until :meth:`close` / :meth:`abort` or a
    failed frame. A complete run being replaced stays untouched until the new one is complete:
    the new one is written aside (``.writing/<run>/new-*``) and renamed into ``runs/<run>``.
    """

    def __init__(self, store: SnapshotStore, run_name: str, *, mesh: Mesh, times, fields, solver,
                 solver_version, sources, metadata, overwrite, allow_nan, where: str | None = None,
                 lock: RunLock | None = None):
        if not run_name or "/" in run_name or run_name.startswith("."):
            raise ValueError(f"invalid run name {run_name!r}: use a non-empty name without '/'")
        self.store = store
        self.name = run_name
        self.where = where or f"run {run_name!r}"
        layout = store.layout
        store.check_mesh(mesh, self.where)
        self.layout = layout
        self.n_nodes = mesh.n_nodes
        self.node_perm = node_map(layout.mesh, mesh)
        self._mesh = mesh
        self.specs = _specs(fields)
        self.allow_nan = set(allow_nan)
        self.times = None if times is None else np.asarray(times, np.float64)
        self.step_chunk = store.step_chunk
        if self.times is not None and len(self.times):
            # same number of chunks, as even as possible: the padded last chunk stays small
            n_chunks = -(-len(self.times) // self.step_chunk)
            self.step_chunk = -(-len(self.times) // n_chunks)
        self.compressors = compressors(store.compression)
        # file paths are checksummed; dicts are source_info() records already
        sources = [dict(s) if isinstance(s, Mapping) else source_info([s])[0] for s in sources]
        self._lock = lock or RunLock(store.path, run_name)
        self._aside: Path | None = None  # where a replacement of a complete run is written
        try:
            existing = store.runs().get(run_name)
            if existing is not None and existing.get("status") == "complete":
                if not overwrite:
                    raise ValueError(f"the store {store.path} already holds a complete run {run_name!r}; "
                                     "pass overwrite=True to replace it")
                self._aside = self._lock.folder / f"new-{self._lock.tag}"
                self.group = zarr.open_group(str(self._aside), mode="w")
            else:
                if existing is not None:  # an interrupted write: replaced
                    store._remove_run(run_name)
                self.group = store.root["runs"].create_group(run_name)
        except BaseException:
            self._lock.release()
            raise
        self.attrs = {
            "name": run_name,
            "solver": solver,
            "solver_version": solver_version,
            "sources": jsonable(list(sources)),
            "metadata": jsonable(dict(metadata or {})),
            "fields": {k: {"location": v.location, "components": list(v.components)} for k, v in self.specs.items()},
            "times": None if self.times is None else self.times.tolist(),
            "step_chunk": int(self.step_chunk),
            "status": "incomplete",
        }
        self.group.attrs.update(self.attrs)
        self._buffers: dict[str, list[np.ndarray]] = {}  # per field, per subdomain (step_chunk, n_k, n_comp)
        self._gathers: dict[str, list[np.ndarray]] = {}  # per field, per subdomain: source rows
        self._n_buffered = 0
        self._arrays: dict[str, list[zarr.Array]] = {}
        self._steps: list[int] = []
        self._times: list[float] = []
        self.n_written = 0
        self._failed = False
        self._closed = False

    # -- ordering -----------------------------------------------------------------------------

    def _checked(self, name: str, value, step: int) -> np.ndarray:
        """``value`` as (n, n_comp) float64 in the writer mesh's order, validated."""
        spec = self.specs[name]
        a = np.asarray(value, dtype=np.float64)
        n = self.n_nodes if spec.location == "node" else len(self.layout.ip_element)
        if not spec.components and n and a.size % n == 0 and a.size:  # components from the data
            spec = FieldSpec(spec.location, tuple(f"c{i}" for i in range(a.size // n)))
            self.specs[name] = spec
            self.attrs["fields"][name] = {"location": spec.location, "components": list(spec.components)}
            self.group.attrs["fields"] = self.attrs["fields"]
        n_comp = len(spec.components)
        if a.size != n * n_comp:
            self._fail()
            raise ValueError(
                f"{self.where}: field {name!r} at step {step} has shape {a.shape}; expected "
                f"({n}, {n_comp}) for {spec.location} field with components {list(spec.components)}"
            )
        a = a.reshape(n, n_comp)
        # a sum is finite when all values are (overflow only gives a false alarm, checked below)
        if name not in self.allow_nan and not np.isfinite(a.sum()) and not np.all(np.isfinite(a)):
            bad = int(np.count_nonzero(~np.isfinite(a)))
            self._fail()
            raise ValueError(
                f"{self.where}: {bad} non-finite value(s) (NaN/Inf) in field {name!r} at step {step}; "
                "the run is left incomplete: fix the source and ingest again"
            )
        return a

    def _gather(self, name: str) -> list[np.ndarray]:
        """Rows of the writer-ordered array that make each subdomain's store-ordered block."""
        if name not in self._gathers:
            lay = self.layout
            if self.specs[name].location == "node":
                self._gathers[name] = [self.node_perm[lay.node_slice(k)] for k in range(lay.n_subdomains)]
            else:
                perm = ip_map(lay, self._mesh)
                self._gathers[name] = [perm[lay.points_of(k)] for k in range(lay.n_subdomains)]
        return self._gathers[name]

    # -- protocol -----------------------------------------------------------------------------

    def write(self, step: int, time: float, fields: Mapping[str, np.ndarray]) -> None:
        """Add one output time (arrays in the order of the writer's mesh)."""
        if self._closed:
            raise ValueError(f"{self.where}: write after close")
        if self._failed:
            raise ValueError(f"{self.where}: an earlier frame failed; the run was not written")
        time = float(time)
        if self._times and not time > self._times[-1]:
            self._fail()
            raise ValueError(f"{self.where}: time {time:g} at step {step} does not increase (previous {self._times[-1]:g})")
        missing = [k for k in self.specs if k not in fields]
        if missing:
            self._fail()
            raise ValueError(f"{self.where}: step {step} lacks field(s) {missing}; got {sorted(fields)}")
        data = {k: self._checked(k, fields[k], step) for k in self.specs}  # all checked first
        i = self._n_buffered
        for name, a in data.items():
            rows = self._gather(name)
            if name not in self._buffers:
                self._buffers[name] = [np.empty((self.step_chunk, len(r), a.shape[1])) for r in rows]
            for r, buf in zip(rows, self._buffers[name]):
                np.take(a, r, axis=0, out=buf[i])
        self._n_buffered += 1
        self._steps.append(int(step))
        self._times.append(time)
        if self._n_buffered >= self.step_chunk:
            self.flush()

    def _create(self, name: str, n_comp: int) -> list[zarr.Array]:
        lay = self.layout
        arrays = []
        fg = self.group.create_group(name)
        for k in range(lay.n_subdomains):
            if name == "displacement":
                shape = (0, int(lay.dof_offsets[k + 1] - lay.dof_offsets[k]))
            elif self.specs[name].location == "node":
                sl = lay.node_slice(k)
                shape = (0, sl.stop - sl.start, n_comp)
            else:
                shape = (0, int(lay.ip_offsets[k + 1] - lay.ip_offsets[k]), n_comp)
            chunks = (self.step_chunk,) + tuple(max(s, 1) for s in shape[1:])
            arrays.append(fg.create_array(subdomain_key(k), shape=shape, chunks=chunks, dtype="f8",
                                          compressors=self.compressors, fill_value=np.nan))
        return arrays

    def flush(self) -> None:
        """Write the buffered frames (one chunk along steps per subdomain and field)."""
        n = self._n_buffered
        if not n:
            return
        start = self.n_written
        jobs = []
        for name, buffers in self._buffers.items():
            if name not in self._arrays:
                self._arrays[name] = self._create(name, buffers[0].shape[2])
            for arr, buf in zip(self._arrays[name], buffers):
                jobs.append((arr, buf[:n].reshape(n, -1) if name == "displacement" else buf[:n]))

        def put(job) -> None:
            arr, part = job
            arr.resize((start + n,) + arr.shape[1:])
            arr[start : start + n] = part

        # a few arrays at a time: compression and file writes overlap (1.7x measured)
        with ThreadPoolExecutor(max_workers=min(_WRITE_THREADS, len(jobs))) as pool:
            list(pool.map(put, jobs))
        self.n_written += n
        self._n_buffered = 0
        delay = float(os.environ.get(_SLEEP_ENV, "0") or 0)
        if delay:
            _time.sleep(delay)

    def _fail(self) -> None:
        """No commit from now on: drop a run written aside (the old run stays) and unlock."""
        self._failed = True
        if self._aside is not None:
            shutil.rmtree(self._aside, ignore_errors=True)
        self._lock.release()

    def abort(self) -> None:
        """Stop without completing: the run stays "incomplete" (invisible to readers), or a
        complete run being replaced stays as it was."""
        self._fail()
        self._buffers.clear()
        self._n_buffered = 0
        self._closed = True

    def _commit(self) -> None:
        """Mark the run complete: its status last (in place), or the rename of the complete
        run written aside onto ``runs/<run>`` (the old run is removed after)."""
        self.group.attrs["status"] = "complete"  # last in place: the run becomes visible
        if self._aside is None:
            return
        run = self.store.path / "runs" / self.name
        old = self._lock.folder / f"old-{self._lock.tag}"
        if run.exists():
            os.rename(run, old)
        os.rename(self._aside, run)  # the commit of a replacement
        self._aside = None
        shutil.rmtree(old, ignore_errors=True)

    def close(self) -> bool:
        """Flush and mark the run complete (its last write). Returns False (and leaves the run
        incomplete) after a failed write or when fewer frames than ``times`` were written."""
        if self._closed:
            return not self._failed
        self._closed = True
        if self._failed:
            return False
        try:
            self.flush()
            if self.n_written == 0 or (self.times is not None and self.n_written != len(self.times)):
                log.warning("%s: %d frames written for %s output times; not written", self.where,
                            self.n_written, "?" if self.times is None else len(self.times))
                self._fail()
                return False
            times = np.asarray(self._times)
            if self.times is not None and not np.allclose(times, self.times, rtol=1e-12, atol=0):
                log.warning("%s: written times differ from the announced ones; not written", self.where)
                self._fail()
                return False
            self.group.create_array("time", data=times)
            self.group.create_array("step", data=np.asarray(self._steps, np.int64))
            self.attrs["times"] = times.tolist()
            self.attrs["n_steps"] = int(self.n_written)
            self.group.attrs.update({"times": self.attrs["times"], "n_steps": self.attrs["n_steps"]})
            self._commit()
        except BaseException:
            self._fail()
            raise
        self._lock.release()
        return True

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def _specs(fields) -> dict[str, FieldSpec]:
    if isinstance(fields, Mapping):
        specs = {str(k): v for k, v in fields.items()}
    else:
        specs = {}
        for name in fields:
            specs[name] = _DEFAULT_SPECS.get(name) or FieldSpec("ip", ())
    if "displacement" not in specs:
        raise ValueError(f"a run needs a 'displacement' field; got {sorted(specs)}")
    d = specs["displacement"]
    if d.location != "node" or len(d.components) != 3:
        raise ValueError(f"'displacement' must be a node field with 3 components; got {d}")
    return specs
