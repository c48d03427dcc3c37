"""CalculiX runs of romdask problems: one run in memory or into a store, many runs as Dask tasks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from romdask.hifi.calculix.deck import loaded_at_start, write_deck
from romdask.hifi.calculix.runner import CalculixRun, run_ccx
from romdask.io.calculix import read_calculix
from romdask.io.run import Frame, Run
from romdask.problem.patterns import run_metadata
from romdask.problem import Problem

__all__ = ["CalculixResult", "calculix_run", "run_many", "solve_calculix"]

logger = logging.getLogger(__name__)

_IP_KEYS = {"stress": "S", "strain": "E", "state": "SDV"}
_FIELDS = ("displacement", "strain", "stress", "state", "temperature")


@dataclass
class CalculixResult:
    """Outcome of :func:`solve_calculix` (the built-in solver's :class:`~romdask.hifi.Result` subset).

    Attributes
    ----------
    times : output times (``problem.times``; without t = 0 when a condition is nonzero there)
    displacement : (n_times, n_dofs) float64 from the binary .frd, or None when a writer was given
    fields : "strain", "stress", "state" (n_times, n_points, k) from the .dat (7 digits)
    run : the ccx run (files, wall time)
    wall_time : seconds for deck + ccx + reading
    """

    times: np.ndarray
    displacement: np.ndarray | None
    fields: dict[str, np.ndarray]
    run: CalculixRun
    wall_time: float
    timings: dict[str, float] = field(default_factory=dict)


def _ip_output(fields: Sequence[str]) -> tuple[str, ...]:
    bad = [f for f in fields if f not in _FIELDS]
    if bad:
        raise ValueError(f"unknown output fields {bad}; choose among {_FIELDS}")
    return tuple(_IP_KEYS[f] for f in fields if f in _IP_KEYS)


def calculix_run(problem: Problem, ccx: CalculixRun, *, name: str | None = None,
                 fields: Sequence[str] = ("displacement",), metadata: Mapping | None = None) -> Run:
    """The finished ccx run of ``problem`` as a :class:`~romdask.io.run.Run` on the problem's times.

    Frames at ``problem.times``: t = 0 (zero displacement, stress and state) unless a condition
    is nonzero there, then CalculiX's increments. ``metadata`` defaults to
    :func:`romdask.problem.patterns.run_metadata`.

    Raises
    ------
    ValueError
        The .frd holds other times than the problem's (e.g. ccx cut an increment), or the deck's
        mesh is not the problem's.
    """
    run = read_calculix(inp=ccx.deck, frd=ccx.frd, dat=ccx.dat if ccx.dat.is_file() else None, name=name,
                        problem_metadata=False)
    mesh = problem.mesh
    if not (np.array_equal(run.mesh.node_ids, mesh.node_ids) and np.array_equal(run.mesh.element_ids, mesh.element_ids)):
        raise ValueError(f"{ccx.deck}: the deck's node / element numbering is not the problem's {problem.name!r}")
    got = run.times
    expected = problem.times[1:]
    if len(got) != len(expected) or np.any(np.abs(got - expected) > 1e-5 * np.abs(expected) + 1e-12 * expected[-1]):
        raise ValueError(
            f"{ccx.frd}: CalculiX output {len(got)} increments at t={got[:4].tolist()}..., the problem "
            f"{problem.name!r} has {len(expected)} at t={expected[:4].tolist()}...; did ccx cut increments? "
            f"(see {ccx.sta})"
        )
    wanted = {k: v for k, v in run.fields.items() if k in fields or k == "displacement"}
    missing = [f for f in fields if f not in wanted]
    if missing:
        raise ValueError(f"{ccx.dat}: fields {missing} not in the CalculiX output (write_deck(ip_output=...); "
                         "temperature: NT output of a thermal problem)")
    zero_frame = not loaded_at_start(problem)
    used = np.zeros(mesh.n_nodes, bool)
    for block in mesh.blocks:
        used[np.asarray(block.connectivity).ravel()] = True
    unused = np.flatnonzero(~used)

    def frames() -> Iterator[Frame]:
        if zero_frame:
            data = {k: np.zeros((mesh.n_nodes if s.location == "node" else _n_points(mesh), len(s.components)))
                    for k, s in wanted.items()}
            if "temperature" in data:  # the initial temperature (loaded_at_start: nothing else at t = 0)
                data["temperature"] = problem.nodal_temperature(0.0)[:, None]
            yield Frame(0, 0.0, data)
        for frame in run.frames():
            t = float(expected[frame.step])
            data = {k: frame.data[k] for k in wanted}
            if "temperature" in data and unused.size:  # nodes of no element: not in the .frd
                data["temperature"] = data["temperature"].copy()
                data["temperature"][unused, 0] = problem.nodal_temperature(t)[unused]
            yield Frame(frame.step + 1, t, data)

    out_times = problem.times if zero_frame else expected
    return replace(run, times=out_times, fields=wanted, frames=frames, solver="calculix",
                   metadata=dict(metadata if metadata is not None else run_metadata(problem)))


def _n_points(mesh) -> int:
    from romdask.io.calculix.dat import ip_layout

    return int(ip_layout(mesh)[0].sum())


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name) or "run"


def solve_calculix(
    problem: Problem,
    workdir: str | Path,
    *,
    writer=None,
    fields: Sequence[str] = ("displacement",),
    threads: int = 1,
    timeout: float | None = None,
    name: str | None = None,
    **deck_options,
) -> CalculixResult:
    """Solve ``problem`` with CalculiX: write the deck, run ccx, read the results.

    Parameters
    ----------
    problem : Problem
    workdir : folder of the deck and ccx's files (created)
    writer : object with ``write(step, time, fields)`` / ``close()`` (e.g.
        ``store.writer(name, mesh=problem.mesh, times=problem.times, fields=...,
        metadata=run_metadata(problem))``), as for :func:`romdask.hifi.solve`; default:
        in memory
    fields : subset of ("displacement", "strain", "stress", "state", "temperature"); strain,
        stress and state come from ``*EL PRINT`` (7 significant digits), "state" is CalculiX's
        SDV; "temperature" (node, 1) is the .frd's ``NDTEMP`` (thermal problems; nodes of no
        element, which ccx does not write, get the problem's temperature)
    threads, timeout : see :func:`run_ccx`
    name : deck stem (default: the problem's name)
    deck_options : passed to :func:`write_deck` (``controls``, ``solver``, ...)

    Returns
    -------
    CalculixResult

    Raises
    ------
    CalculixError
        ccx failed (message quoting ccx and the log path).
    ValueError
        A problem CalculiX cannot run (see :func:`write_deck`), or ccx's output times differ
        from the problem's.

    Notes
    -----
    Displacements are the float64 binary .frd values. CalculiX outputs nothing at t = 0: the
    frame at t = 0 is written as zeros (the unloaded initial state) unless a condition is
    nonzero there, in which case the outputs start at ``problem.times[1]``. Memory: one frame
    at a time with a writer, else all frames.
    """
    start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ip = _ip_output(fields)
    deck = write_deck(problem, workdir / f"{_safe_name(name or problem.name)}.inp",
                      ip_output=ip if ip else False, **deck_options)  # fmt: skip
    t_deck = time.perf_counter() - start
    ccx = run_ccx(deck, threads=threads, timeout=timeout)
    t_read = time.perf_counter()
    run = calculix_run(problem, ccx, fields=fields, metadata={})
    own = writer is None
    disp: list[np.ndarray] = []
    out: dict[str, list[np.ndarray]] = {}
    try:
        for frame in run.frames():
            data = {"displacement": frame.data["displacement"].ravel()}
            data.update({k: v for k, v in frame.data.items() if k != "displacement"})
            if own:
                disp.append(data.pop("displacement"))
                for k, v in data.items():
                    out.setdefault(k, []).append(v)
            else:
                writer.write(frame.step, frame.time, data)
    finally:
        if not own:
            writer.close()
    t_end = time.perf_counter()
    return CalculixResult(
        times=np.array(run.times), displacement=np.array(disp) if own else None,
        fields={k: np.array(v) for k, v in out.items()}, run=ccx, wall_time=t_end - start,
        timings={"deck": t_deck, "ccx": ccx.wall_time, "read": t_end - t_read},
    )


def _run_task(deck: str, store_path: str, name: str, metadata: dict,
              fields: tuple[str, ...], threads: int, timeout: float | None, overwrite: bool,
              problem: Problem | None) -> tuple[str, str, float, BaseException | None]:
    """One Dask task: run ccx on a written deck and ingest the run; (name, status, wall, error)."""
    from romdask.store import SnapshotStore

    try:
        ccx = run_ccx(deck, threads=threads, timeout=timeout)
        run = calculix_run(problem, ccx, name=name, fields=fields, metadata=metadata)
        status = SnapshotStore.open(store_path).ingest_run(run, overwrite=overwrite)
        return name, status, ccx.wall_time, None
    except Exception as exc:  # noqa: BLE001 - reported per run after all ran
        return name, "failed", 0.0, exc


def run_many(
    problems: Sequence[Problem],
    store_path: str | Path,
    workdir: str | Path,
    *,
    names: Sequence[str] | None = None,
    client=None,
    threads: int = 1,
    timeout: float | None = None,
    fields: Sequence[str] = ("displacement",),
    n_subdomains: int | None = None,
    overwrite: bool = False,
    **deck_options,
) -> dict[str, dict[str, Any]]:
    """Run CalculiX on many problems in parallel (Dask tasks), each ingested into a store.

    Parameters
    ----------
    problems : problems on one mesh (the store's)
    store_path : snapshot store (created from the first problem's mesh when absent)
    workdir : one subfolder per run (``workdir/<name>``)
    names : run names (default: the problems' names, which must then be unique)
    client : a distributed Client (default: the active one, else dask's threads)
    threads : ccx threads per run
    fields : stored fields (see :func:`solve_calculix`)
    n_subdomains : subdomains of a new store (default
        :func:`romdask.fem.partition.default_subdomains`: 1 below 40,000 dofs)
    overwrite : replace complete runs of the same names
    deck_options : passed to :func:`write_deck`

    Returns
    -------
    dict
        run name -> {"status": "written" | "skipped", "ccx_wall_time": s}.

    Raises
    ------
    ValueError / CalculixError
        After every run finished: the failures (one failure re-raises its own exception, with
        a note on the others).

    Notes
    -----
    Decks are written here (cheap); each task carries a deck path and the small problem
    description, runs ccx and streams the run into ``runs/<name>`` of the store. Concurrent
    tasks write different run groups only, as :func:`romdask.store.ingest` does, so ingesting
    in parallel is safe. Run ``n_workers x threads`` within the machine's cores. Each problem
    (its mesh included) is sent to its task: under a distributed Client prefer few, big runs.
    """
    import dask

    from romdask.store import SnapshotStore, create_store

    problems = list(problems)
    if not problems:
        raise ValueError("run_many needs at least one problem")
    names = [p.name for p in problems] if names is None else list(names)
    if len(names) != len(problems) or len(set(names)) != len(names):
        raise ValueError(f"run_many needs one unique name per problem; got {names}")
    ip = _ip_output(fields)
    store_path = Path(store_path)
    if not (store_path.exists() and any(store_path.iterdir())):
        create_store(store_path, problems[0].mesh, n_subdomains=n_subdomains)
    else:
        SnapshotStore.open(store_path).check_mesh(problems[0].mesh, f"run_many({names[0]!r})")
    workdir = Path(workdir)
    tasks = []
    for problem, name in zip(problems, names):
        folder = workdir / _safe_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        deck = write_deck(problem, folder / f"{_safe_name(name)}.inp", ip_output=ip if ip else False, **deck_options)
        tasks.append(dask.delayed(_run_task, pure=False)(
            str(deck), str(store_path), name, run_metadata(problem), tuple(fields), threads,
            timeout, overwrite, problem, dask_key_name=f"ccx-{name}-{dask.base.tokenize(str(deck))}"))
    if client is None:
        from romdask.cluster import active_client

        client = active_client()
    results = client.gather(client.compute(tasks)) if client is not None else dask.compute(*tasks)
    errors = [(n, e) for n, _, _, e in results if e is not None]
    if errors:
        exc = errors[0][1]
        others = [n for n, _ in errors[1:]]
        exc.add_note(f"run {errors[0][0]!r} failed" + (f"; also failed: {others}" if others else "")
                     + f"; {len(results) - len(errors)} other run(s) were ingested")
        raise exc
    return {n: {"status": s, "ccx_wall_time": w} for n, s, w, _ in results}
