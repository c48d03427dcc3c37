"""romdask on a real SLURM (dask-jobqueue SLURMCluster): `romdask reduce` with 2 worker jobs gives
the LocalCluster's model, cancels its jobs at the end, and survives a worker job scancelled in the
middle of the run. Needs a SLURM that answers `sinfo`: scripts/ci/slurm-up.sh starts a
single-node one (as root), scripts/ci/slurm-down.sh stops it; .ci/run does both."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from distributed.diagnostics.plugin import SchedulerPlugin

from romdask.cli import main
from romdask.cluster import cluster_client
from romdask.offline.reduce import reduce
from romdask.online import ReducedModel

pytestmark = pytest.mark.usefixtures("slurm")  # skips when no SLURM answers (conftest.py)


def test_cli_reduce_on_2_slurm_jobs_gives_the_local_model(small_store, site_yaml, tmp_path, capsys, no_jobs_left,
                                                           assert_same_model):
    """The same model (see conftest._assert_same): the same graph, the same per-task numpy calls on the
    same CPU with BLAS pinned to one thread, the same reduction tree; only where tasks run differs."""
    store, _ = small_store
    out_slurm, out_local = tmp_path / "slurm.zarr", tmp_path / "local.zarr"
    assert main(["reduce", str(store), "--out", str(out_slurm), "--cluster", "slurm",
                 "--cluster-config", str(site_yaml), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "dask dashboard: http" in captured.out and "100% Completed" in captured.err
    assert no_jobs_left() == [], "worker jobs left in squeue after romdask reduce"
    logs = sorted((tmp_path / "logs").glob("*.err"))
    registered = [p for p in logs if "Registered to" in p.read_text()]
    assert len(registered) >= 2, f"expected 2 worker jobs to have run, logs: {logs}"
    assert main(["reduce", str(store), "--out", str(out_local), "--cluster", "local", "--jobs", "2"]) == 0
    assert_same_model(ReducedModel.open(out_slurm), ReducedModel.open(out_local))


class _ScancelOnce(SchedulerPlugin):
    """Scheduler plugin (the SLURMCluster's scheduler runs in this process): scancel the SLURM job
    of the worker a task is sent to, once ``after`` tasks are in memory and that worker holds
    results (so they are lost and must be recomputed elsewhere)."""

    def __init__(self, scheduler, cluster, after):
        self.scheduler, self.cluster, self.after = scheduler, cluster, after
        self.in_memory = 0
        self.cancelled = []

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory":
            self.in_memory += 1
        if finish != "processing" or self.cancelled or self.in_memory < self.after:
            return
        ws = self.scheduler.tasks[key].processing_on
        job = self.cluster.workers.get(ws.name) if ws is not None else None
        if job is None or getattr(job, "job_id", None) is None:
            return
        held = sum(1 for ts in self.scheduler.tasks.values() if ws in (ts.who_has or ()))
        if held == 0:
            return
        self.cancelled.append((ws.name, job.job_id, key, held))
        subprocess.Popen(["scancel", job.job_id])  # non-blocking: this runs in the event loop


def test_a_scancelled_worker_job_loses_nothing(small_store, site_yaml, squeue, no_jobs_left, assert_same_model):
    store, law = small_store
    with cluster_client("slurm", config=site_yaml, jobs=2) as client:
        cluster = client.cluster
        client.wait_for_workers(2, timeout=120)
        reference = reduce(store, law).model
        landed = None
        for attempt in range(3):
            client.wait_for_workers(2, timeout=120)
            plugin = _ScancelOnce(cluster.scheduler, cluster, after=3 + 2 * attempt)
            cluster.scheduler.add_plugin(plugin, name=f"scancel-{attempt}")
            out = {}

            def run():
                try:
                    out["model"] = reduce(store, law).model
                except BaseException as exc:  # reported below
                    out["error"] = exc

            try:
                thread = threading.Thread(target=run)
                thread.start()
                thread.join(300)
                assert not thread.is_alive(), "reduce hung after a worker job was cancelled"
            finally:
                cluster.scheduler.remove_plugin(name=f"scancel-{attempt}")
            assert "model" in out, f"reduce failed after scancel: {out.get('error')!r}"
            assert_same_model(out["model"], reference)
            if plugin.cancelled:
                landed = plugin.cancelled[0]
                break
        assert landed is not None, "the scancel never landed during reduce"
        # the cluster keeps 2 jobs: the cancelled one is replaced by a new job
        _, job_id, _, held = landed
        assert held > 0
        client.wait_for_workers(2, timeout=120)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            jobs = {line.split()[0]: line.split()[1] for line in squeue()}
            if job_id not in jobs and list(jobs.values()).count("RUNNING") == 2:
                break
            time.sleep(0.5)
        assert job_id not in jobs and list(jobs.values()).count("RUNNING") == 2, jobs
    assert no_jobs_left() == [], "worker jobs left in squeue after the cluster closed"
