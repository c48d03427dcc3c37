"""Ingest runs (files or Run objects) into a snapshot store, in parallel, resumably."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import dask
import numpy as np

from romdask.io.run import Run

from .layout import is_store
from .writer import SnapshotStore, create_store

__all__ = ["group_sources", "ingest", "with_user_files"]

log = logging.getLogger(__name__)

#: suffixes of CalculiX files: files of one stem in one folder form one run
_CALCULIX = (".frd", ".inp", ".dat")


def group_sources(sources: Iterable[str | Path | Run]) -> list[tuple[str, Run | list[Path]]]:
    """(run name, Run or the files of the run) for each run in ``sources``.

    CalculiX files (.frd, .inp, .dat) of the same folder and stem form one run, as do the
    subdomain results ``run-001.ut``, ``run-002.ut``... of a domain-decomposed Z-set run (read as
    ``run.ut``); any other file is a run of its own, named by its stem. Raises ValueError for two runs of the same name.
    """
    items: list[tuple[str, Run | list[Path]]] = []
    groups: dict[tuple[Path, str, bool], list[Path]] = {}
    for s in sources:
        if isinstance(s, Run):
            items.append((s.name, s))
            continue
        p = Path(s)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such source file")
        base = _zset_base(p)
        if p.suffix.lower() in _CALCULIX or base is not None:
            stem = base or p.stem
            key = (p.resolve().parent, stem, base is not None)
            if key not in groups:
                groups[key] = []
                items.append((stem, groups[key]))
            groups[key].append(p)
        else:
            items.append((p.stem, [p]))
    seen: dict[str, int] = {}
    for name, _ in items:
        seen[name] = seen.get(name, 0) + 1
    dup = sorted(n for n, c in seen.items() if c > 1)
    if dup:
        raise ValueError(f"several sources give the run name(s) {dup}; rename the files or pass Run objects with unique names")
    return items


def _zset_base(path: Path) -> str | None:
    """``run`` for a subdomain result ``run-001.ut`` of a domain-decomposed Z-set run (when
    there is no ``run.ut``), else None."""
    m = re.fullmatch(r"(.+)-\d{3}", path.stem) if path.suffix.lower() == ".ut" else None
    if m is None or (path.parent / f"{m[1]}.ut").exists():
        return None
    return m[1]


def _primary(paths: list[Path]) -> Path:
    """The file handed to the reader for a group (.frd first: it holds the results;
    ``run.ut`` for the subdomain files ``run-001.ut``... of a decomposed Z-set run)."""
    base = _zset_base(paths[0])
    if base is not None:
        return paths[0].parent / f"{base}.ut"
    for suffix in (".frd", ".dat", ".inp"):
        for p in paths:
            if p.suffix.lower() == suffix:
                return p
    return paths[0]


def _load(item: Run | list[Path], reader_options: Mapping) -> Run:
    if isinstance(item, Run):
        return item
    from romdask.io import read_run

    options = dict(reader_options)
    if all(p.suffix.lower() in _CALCULIX for p in item):
        # the named files exactly (the reader would otherwise look for siblings by stem)
        for p in item:
            options.setdefault(p.suffix.lower()[1:], p)
    return read_run(_primary(item), **options)


def with_user_files(run: Run, law: str | Path | None = None, loads: str | Path | None = None) -> Run:
    """``run`` with the law and / or the load patterns of the user's files in its metadata (they
    replace what its deck gave) and the files among its sources (so that an ingest with other
    files is a change of sources).

    Parameters
    ----------
    run : a Run read from a solver's files
    law : a law file (:func:`romdask.problem.files.read_law_file`)
    loads : a loads file, resolved on the run's mesh for the run's name
        (:func:`romdask.problem.files.read_loads_file`)

    Raises
    ------
    ValueError
        A file that cannot be read or resolved on the run's mesh (naming the file and the entry).
    """
    if law is None and loads is None:
        return run
    from romdask.materials import law_to_json
    from romdask.problem.files import read_law_file, read_loads_file

    metadata = dict(run.metadata)
    sources = list(run.sources)
    if law is not None:
        metadata["material"] = law_to_json(read_law_file(law))
        sources.append(Path(law))
    if loads is not None:
        metadata["loads"] = read_loads_file(loads, run.mesh, run=run.name)
        sources.append(Path(loads))
    if "material" in metadata and "loads" in metadata:
        metadata.pop("problem_error", None)  # the files supply what the deck could not
    return replace(run, metadata=metadata, sources=tuple(sources))


def _ingest_one(store_path: str, item, overwrite: bool, reader_options: Mapping,
                files: Mapping[str, str | None]) -> tuple[str, str, BaseException | None]:
    """A task: read one run and write it; returns (name, status, error)."""
    name = item.name if isinstance(item, Run) else item[0].stem
    try:
        run = with_user_files(_load(item, reader_options), **files)
        name = run.name
        store = SnapshotStore.open(store_path)
        return name, store.ingest_run(run, overwrite=overwrite), None
    except Exception as exc:  # noqa: BLE001 - reported per run after all runs ran
        return name, "failed", exc


def _n_parts(partition) -> int:
    """Subdomains of a Partition or of a subdomain-per-node array."""
    return int(partition.n_parts) if hasattr(partition, "n_parts") else int(np.asarray(partition).max(initial=-1)) + 1


def _interrupted_creation(path: Path) -> bool:
    """True for a store whose creation was killed before its mesh group was complete."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    mesh_done = "mesh" in root and bool(root["mesh"].attrs.get("complete", False))
    has_runs = (path / "runs").is_dir() and any(p.is_dir() for p in (path / "runs").iterdir())
    return not mesh_done and not has_runs


def ingest(
    sources: Iterable[str | Path | Run],
    store_path: str | Path,
    *,
    n_subdomains: int | None = None,
    partition=None,
    compression: str | None = "lz4",
    overwrite: bool = False,
    progress: bool = False,
    reader_options: Mapping | None = None,
    law: str | Path | None = None,
    loads: str | Path | None = None,
) -> dict[str, str]:
    """Ingest runs into a snapshot store, creating it from the first run if needed.

    Parameters
    ----------
    sources : file paths (grouped into runs: CalculiX .inp/.frd/.dat of one stem = one run;
        read with :func:`romdask.io.read_run`) and/or :class:`~romdask.io.run.Run` objects
    store_path : the store (created when absent)
    n_subdomains : K for a new store (METIS on the first run's mesh; default
        :func:`romdask.fem.partition.default_subdomains` of that mesh and this machine: 1 below
        40,000 dofs); for an existing store, must be None or its K
    partition : solver-given partition for a new store (default: the first run's
        ``Run.partition`` when it has one and ``n_subdomains`` is None or its number of
        subdomains, else METIS)
    compression : "lz4" (default), "zstd" or None, for a new store
    overwrite : replace complete runs whose sources changed (default: error)
    progress : show a progress bar (dask's, or distributed's under a Client)
    reader_options : keyword arguments for the readers
    law, loads : a law file and a loads file (YAML / JSON, ``romdask template law|loads``)
        recorded in every run's metadata, for sources without a deck (Z-set, XDMF / VTU series)
        or to replace what a deck gives (:func:`with_user_files`)

    Returns
    -------
    dict
        run name -> "written" or "skipped" (complete with the same source checksums).

    Raises
    ------
    ValueError
        After all other runs were written: the runs that failed (mesh differing from the
        store's -> nothing written for that run; NaN/Inf in a frame -> run left incomplete;
        changed sources of a complete run without ``overwrite``). One failure re-raises its
        own exception.

    Notes
    -----
    One dask task per run on the active scheduler (a distributed Client when one exists, else
    the local threaded scheduler); each task reads its sources (tasks carry file names, not
    data; only the first run of a new store, already read to create it, is handed over as is
    when no Client is active) and writes only its own ``runs/<name>`` group. Memory per task: the reader's mesh plus
    ``step_chunk`` frames. Resuming: complete runs with unchanged sources are skipped,
    incomplete ones (an interrupted ingest) rewritten, so a killed ingest followed by a rerun
    gives the same store as an uninterrupted one.
    """
    store_path = Path(store_path)
    items = group_sources(sources)
    if not items:
        raise ValueError("no sources to ingest")
    reader_options = dict(reader_options or {})
    files = {"law": None if law is None else str(law), "loads": None if loads is None else str(loads)}
    if law is not None:
        from romdask.problem.files import read_law_file

        read_law_file(law)  # a bad law file fails before anything is written
    if store_path.exists() and any(store_path.iterdir()):
        if not is_store(store_path):
            raise ValueError(f"{store_path} exists and is not a romdask snapshot store; choose another path")
        if _interrupted_creation(store_path):
            # runs are only written once the mesh group is complete: nothing else is lost
            log.warning("%s: incomplete store (interrupted creation): recreating it", store_path)
            shutil.rmtree(store_path)
            store = None
        else:
            store = SnapshotStore.open(store_path)
        if store is not None and n_subdomains is not None and int(n_subdomains) != store.n_subdomains:
            raise ValueError(
                f"{store_path} has {store.n_subdomains} subdomains, not {n_subdomains}; omit n_subdomains "
                "to add runs, or ingest into a new store"
            )
    else:
        store = None
    from romdask.cluster import active_client, progress_bar

    client = active_client()
    if store is None:
        first = _load(items[0][1], reader_options)
        if client is None:  # same process: hand the run already read to its task
            items[0] = (items[0][0], first)
        part = partition if partition is not None else first.partition
        if partition is None and part is not None and n_subdomains is not None and _n_parts(part) != n_subdomains:
            log.info("run %s: its solver's %d subdomains replaced by METIS into n_subdomains=%d", first.name,
                     _n_parts(part), n_subdomains)
            part = None  # an explicit n_subdomains wins over the run's own split
        try:
            store = create_store(store_path, first.mesh, n_subdomains=n_subdomains, partition=part,
                                 compression=compression, units=first.metadata.get("units"))
            log.info("created %s with %d subdomains from run %s", store_path, store.n_subdomains, first.name)
        except FileExistsError:
            if not is_store(store_path):
                raise
            # another ingest created it meanwhile: add to it (each run's mesh is checked)
            store = SnapshotStore.open(store_path)
            log.info("%s was created meanwhile by another process: the runs go into it", store_path)
            if n_subdomains is not None and int(n_subdomains) != store.n_subdomains:
                raise ValueError(f"{store_path} was created meanwhile by another process with {store.n_subdomains} "
                                 f"subdomains, not {n_subdomains}; omit n_subdomains to add runs to it") from None
    tasks = [
        dask.delayed(_ingest_one, pure=False)(str(store_path), item, overwrite, reader_options, files,
                                              dask_key_name=f"ingest-{name}-{dask.base.tokenize(str(store_path), name)}")
        for name, item in items
    ]
    with progress_bar(client) if progress else contextlib.nullcontext():
        results = client.gather(client.compute(tasks)) if client is not None else dask.compute(*tasks)
    status = {name: s for name, s, _ in results}
    errors = [(name, e) for name, _, e in results if e is not None]
    if len(errors) == 1:
        exc = errors[0][1]
        if len(results) > 1:
            exc.add_note(f"the other {len(results) - 1} run(s) were ingested")
        raise exc
    if errors:
        lines = "\n".join(f"- {name}: {e}" for name, e in errors)
        raise ValueError(f"{len(errors)} of {len(results)} runs failed (the others were ingested):\n{lines}")
    return status
