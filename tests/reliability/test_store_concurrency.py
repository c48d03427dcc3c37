"""Concurrent writers on one snapshot store, as real processes (issue 18, items 1 and 3).

Three spawned worker processes race on one store, released together by a barrier, round after
round (writes slowed a little by the flush hook so that they overlap): 50 rounds, plus 4 writers
killed with SIGKILL. Every complete run must
equal exactly one writer's data, bit for bit; a loser gets a clear error. Plus: stale locks of
killed (SIGKILL) writers, simultaneous store creation, and ``--overwrite`` with a bad source
keeping the old run.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from romdask.io.run import FieldSpec, Frame, Run
from romdask.problems.meshing import box
from romdask.store import RunBusyError, SnapshotStore, create_store, ingest, open_run
from romdask.store.atomic import WRITING, RunLock

ROOT = Path(__file__).resolve().parents[2]
CALCULIX = ROOT / "tests" / "io" / "data" / "calculix"
N_WORKERS = 3
N_STEPS = 6
SLEEP = "ROMDASK_STORE_TEST_SLEEP"
BUSY = r"run '[^']+' is being written by pid \d+ on host \S+ since \S+"


# ---- data: each writer's run is made from its seed ---------------------------------------------


def small_mesh(shape=(2, 2, 1)):
    return box(shape, lengths=(2.0, 2.0, 1.0))


def reference(seed: int, mesh) -> np.ndarray:
    """u[step, node_id, c] of the writer ``seed``."""
    return np.random.default_rng(seed).standard_normal((N_STEPS, int(mesh.node_ids.max()) + 1, 3))


def make_run(name: str, seed: int, *, shape=(2, 2, 1), nan_at: int | None = None) -> Run:
    mesh = small_mesh(shape)
    u = reference(seed, mesh)
    times = 0.5 * np.arange(N_STEPS)

    def frames():
        for k in range(N_STEPS):
            frame = u[k, mesh.node_ids].copy()
            if k == nan_at:
                frame[1, 2] = np.nan
            yield Frame(k, times[k], {"displacement": frame})

    return Run(name, mesh, times, {"displacement": FieldSpec("node", ("x", "y", "z"))}, frames,
               solver="test", metadata={"seed": seed})


def writer_of(path: Path, name: str, seeds, shape=(2, 2, 1)) -> int | None:
    """The seed whose data the complete run ``name`` holds bit for bit (None: no writer's)."""
    ds = open_run(path, name)  # raises unless complete
    comp = np.tile([0, 1, 2], len(ds.node_id) // 3)
    stored = ds.displacement.values
    mesh = small_mesh(shape)
    same = [s for s in seeds if np.array_equal(stored, reference(s, mesh)[:, ds.node_id.values, comp])]
    return same[0] if len(same) == 1 and ds.attrs["metadata"]["seed"] == same[0] else None


def leftovers(path: Path) -> list[str]:
    """Temporary folders of writers (runs written aside, replaced runs, half-built stores)."""
    aside = [p.name for p in (path / WRITING).glob("*/*") if p.name != "lock"]
    return aside + [p.name for p in path.parent.glob(f".{path.name}.*")]


# ---- the worker processes ------------------------------------------------------------------


def _act(kind: str, path: str, name: str, seed: int, options: dict) -> str:
    if kind == "ingest_run":
        return SnapshotStore.open(path).ingest_run(make_run(name, seed), **options)
    if kind == "ingest":  # creates the store when absent
        return ingest([make_run(name, seed, **options)], path)[name]
    raise ValueError(kind)


def _worker(tasks, results, barrier) -> None:
    os.environ[SLEEP] = "0.003"  # after each flush (3 per run): the writes overlap
    while (task := tasks.get()) is not None:
        barrier.wait()
        try:
            out = _act(*task)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out = f"{type(exc).__name__}: {exc}"
        results.put((task[3], out))


@pytest.fixture(scope="module")
def race():
    """``race(tasks)``: one task per worker, started at once; {seed: result or error text}."""
    ctx = mp.get_context("spawn")
    tasks = [ctx.Queue() for _ in range(N_WORKERS)]
    results = ctx.Queue()
    barrier = ctx.Barrier(N_WORKERS)
    procs = [ctx.Process(target=_worker, args=(q, results, barrier), daemon=True) for q in tasks]
    for p in procs:
        p.start()

    def run(round_tasks):
        assert len(round_tasks) == N_WORKERS
        for q, task in zip(tasks, round_tasks):
            q.put(task)
        return dict(results.get(timeout=120) for _ in round_tasks)

    yield run
    for q in tasks:
        q.put(None)
    for p in procs:
        p.join(30)


def new_store(path: Path) -> Path:
    create_store(path, small_mesh(), n_subdomains=2, step_chunk=2)
    return path


# ---- races ---------------------------------------------------------------------------------


def test_same_run_name_without_overwrite_one_wins_the_others_get_an_error(tmp_path, race):
    path = new_store(tmp_path / "s.zarr")
    n_busy = 0
    for i in range(20):
        seeds = [100 * i + w for w in range(N_WORKERS)]
        out = race([("ingest_run", str(path), f"r{i}", s, {}) for s in seeds])
        winners = [s for s in seeds if out[s] == "written"]
        assert len(winners) == 1, out  # never two "written" (a silent replacement)
        for s in seeds:
            if s != winners[0]:
                assert out[s].startswith(("RunBusyError", "ValueError")), out
                assert "already holds a complete run" in out[s] or str(path) in out[s]
        n_busy += sum("is being written by pid" in o for o in out.values())
        assert writer_of(path, f"r{i}", seeds) == winners[0]
    assert n_busy > 0  # the lock was met, not only the complete run
    assert leftovers(path) == []


def test_same_run_name_with_overwrite_keeps_one_writers_run(tmp_path, race):
    path = new_store(tmp_path / "s.zarr")
    for i in range(18):
        SnapshotStore.open(path).ingest_run(make_run(f"r{i}", 7))  # the run being replaced
        seeds = [100 * i + w for w in range(N_WORKERS)]
        out = race([("ingest_run", str(path), f"r{i}", s, {"overwrite": True}) for s in seeds])
        written = [s for s in seeds if out[s] == "written"]
        assert written, out
        assert all(o == "written" or o.startswith("RunBusyError") for o in out.values()), out
        assert writer_of(path, f"r{i}", seeds) in written
    assert leftovers(path) == []


def test_simultaneous_store_creation(tmp_path, race):
    for i in range(12):
        path = tmp_path / f"s{i}.zarr"
        foreign = i % 6 == 5  # the third writer has another mesh: it fails, the store is intact
        seeds = [100 * i + w for w in range(N_WORKERS)]
        tasks = [("ingest", str(path), f"w{w}", s, {}) for w, s in enumerate(seeds)]
        if foreign:
            tasks[2] = ("ingest", str(path), "w2", seeds[2], {"shape": (3, 2, 1)})
        out = race(tasks)
        written = [w for w, s in enumerate(seeds) if out[s] == "written"]
        # with another mesh: whoever created the store first wins, the others say why
        assert written in ([[0, 1], [2]] if foreign else [[0, 1, 2]]), out
        assert all("mesh differs from the store's" in out[s] for w, s in enumerate(seeds) if w not in written), out
        runs = SnapshotStore.open(path, mode="r").runs(complete_only=True)
        assert sorted(runs) == [f"w{w}" for w in written]
        for w in written:
            shape = (3, 2, 1) if foreign and w == 2 else (2, 2, 1)
            assert writer_of(path, f"w{w}", seeds, shape) == seeds[w]
        assert leftovers(path) == []


# ---- a killed writer, a live writer, overwrite with bad data --------------------------------


def _slow_write(path: str, name: str, seed: int, overwrite: bool) -> None:
    os.environ[SLEEP] = "30"  # killed during the sleep after the first flush
    SnapshotStore.open(path).ingest_run(make_run(name, seed), overwrite=overwrite)


def _kill_mid_write(path: Path, name: str, seed: int, overwrite: bool) -> int:
    proc = mp.get_context("spawn").Process(target=_slow_write, args=(str(path), name, seed, overwrite))
    proc.start()
    chunks = f"{WRITING}/{name}/new-*/displacement/s0000/c/*" if overwrite else f"runs/{name}/displacement/s0000/c/*"
    deadline = time.monotonic() + 60
    while not list(path.glob(chunks)):  # a chunk on disk
        assert time.monotonic() < deadline and proc.is_alive(), "the writer did not start writing"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    return proc.pid


@pytest.mark.parametrize("overwrite", [False, True])
def test_stale_lock_of_a_killed_writer_is_taken_over(tmp_path, caplog, overwrite):
    path = new_store(tmp_path / "s.zarr")
    store = SnapshotStore.open(path)
    for i in range(2):
        if overwrite:
            store.ingest_run(make_run(f"k{i}", 1))
        pid = _kill_mid_write(path, f"k{i}", 2, overwrite)
        assert (path / WRITING / f"k{i}" / "lock").read_text().startswith(f'{{"pid": {pid},')
        if overwrite:  # killed while writing aside: the old run is untouched
            assert writer_of(path, f"k{i}", [1, 2]) == 1
        else:
            assert store.runs()[f"k{i}"]["status"] == "incomplete"
        with caplog.at_level(logging.WARNING, logger="romdask.store"):
            assert store.ingest_run(make_run(f"k{i}", 3), overwrite=overwrite) == "written"
        assert f"took over the stale lock of pid {pid}" in caplog.text
        assert writer_of(path, f"k{i}", [1, 2, 3]) == 3
        assert leftovers(path) == []


def _romdask(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "romdask.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _calculix_run(folder: Path, nan: bool = False) -> list[str]:
    """The shipped CalculiX run as ``folder/x.*``; ``nan``: a NaN displacement in its last step."""
    folder.mkdir()
    shutil.copy(CALCULIX / "c3d10.inp", folder / "x.inp")
    shutil.copy(CALCULIX / "c3d10_nodes.inc", folder)
    lines = (CALCULIX / "c3d10_ascii.frd").read_text().splitlines(keepends=True)
    if nan:
        assert lines[133].startswith(" -1       102-1.00000E-03")
        lines[133] = lines[133].replace("-1.00000E-03", "         NaN", 1)
    (folder / "x.frd").write_text("".join(lines))
    return [f"{folder.name}/x.inp", f"{folder.name}/x.frd"]


def _errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip() and "% Completed" not in line]


def test_cli_second_writer_and_overwrite_with_nan(tmp_path):
    """Through ``romdask ingest``: a live writer's lock is one error line (exit 1); a NaN source
    with --overwrite keeps the complete run."""
    good = _calculix_run(tmp_path / "a")
    bad = _calculix_run(tmp_path / "b", nan=True)
    assert _romdask("ingest", *good, "--store", "s.zarr", cwd=tmp_path).returncode == 0
    before = open_run(tmp_path / "s.zarr", "x").displacement.values
    with RunLock(tmp_path / "s.zarr", "x"):  # this (live) process writes run x
        proc = _romdask("ingest", *good, "--store", "s.zarr", cwd=tmp_path)
    assert proc.returncode == 1
    err = _errors(proc)
    assert len(err) == 1 and err[0].startswith("romdask ingest: error: "), proc.stderr
    assert re.search("s.zarr: " + BUSY, err[0]) and f"pid {os.getpid()} on host" in err[0], err[0]
    proc = _romdask("ingest", *bad, "--store", "s.zarr", "--overwrite", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(_errors(proc)) == 1 and "non-finite" in proc.stderr, proc.stderr
    assert np.array_equal(open_run(tmp_path / "s.zarr", "x").displacement.values, before)
    assert leftovers(tmp_path / "s.zarr") == []


def test_overwrite_with_nan_keeps_the_old_run(tmp_path):
    path = new_store(tmp_path / "s.zarr")
    store = SnapshotStore.open(path)
    store.ingest_run(make_run("a", 1))
    with pytest.raises(ValueError, match=r"run 'a'.*non-finite.*step 4"):
        store.ingest_run(make_run("a", 2, nan_at=4), overwrite=True)
    assert writer_of(path, "a", [1, 2]) == 1 and store.runs()["a"]["status"] == "complete"
    # the writer protocol (the built-in solver's): a failed replacement leaves the old run too
    writer = store.writer("a", mesh=small_mesh(), times=0.5 * np.arange(N_STEPS), overwrite=True)
    for frame in make_run("a", 2).frames():
        if frame.step == 3:
            break
        writer.write(frame.step, frame.time, frame.data)
    assert writer.close() is False  # 3 of 6 frames
    assert writer_of(path, "a", [1, 2]) == 1 and leftovers(path) == []
    with pytest.raises(ValueError, match="already holds a complete run 'a'; pass overwrite=True"):
        store.writer("a", mesh=small_mesh())
    assert store.ingest_run(make_run("a", 2), overwrite=True) == "written"
    assert writer_of(path, "a", [1, 2]) == 2


def test_a_second_writer_in_one_process_and_an_abandoned_writer(tmp_path, caplog):
    path = new_store(tmp_path / "s.zarr")
    store = SnapshotStore.open(path)
    held = store.writer("b", mesh=small_mesh())
    for action in (lambda: store.writer("b", mesh=small_mesh()), lambda: store.delete_run("b"),
                   lambda: store.ingest_run(make_run("b", 1))):
        with pytest.raises(RunBusyError, match=r"s\.zarr: run 'b' is being written by pid \d+ \(this process\) on"):
            action()
    del held  # dropped without close: its lock is abandoned
    with caplog.at_level(logging.WARNING, logger="romdask.store"):
        assert store.ingest_run(make_run("b", 1)) == "written"
    assert f"took over the stale lock of pid {os.getpid()}" in caplog.text
    assert writer_of(path, "b", [1]) == 1
