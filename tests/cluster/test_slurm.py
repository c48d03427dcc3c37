"""romdask on a real SLURM (dask-jobqueue SLURMCluster): `romdask reduce` with 2 worker jobs gives
the LocalCluster's model, cancels its jobs at the end, and survives a worker job scancelled in the
middle of the run. Needs a SLURM that answers `sinfo`: scripts/ci/slurm-up.sh starts a
single-node one (as root), scripts/ci/slurm-down.sh stops it; .ci/run does both."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from distributed.diagnostics.plugin import SchedulerPlugin

import romdask
from romdask.cli import main
from romdask.cluster import cluster_client
from romdask.offline.reduce import reduce
from romdask.online import ReducedModel


def _slurm_answers() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in out.stdout.split())


pytestmark = pytest.mark.skipif(
    not _slurm_answers(),
    reason="no SLURM answers sinfo: start the test SLURM with scripts/ci/slurm-up.sh (as root; "
           "stop it with scripts/ci/slurm-down.sh)",
)

JOB_NAME = f"romdask-test-{os.getpid()}"


def _squeue(name=JOB_NAME) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True,
                         check=True)
    return out.stdout.split("\n")[:-1]


def _no_jobs_left(timeout=20) -> list[str]:
    """The test's jobs still in squeue after ``timeout`` s (cancelled jobs take a moment)."""
    end = time.monotonic() + timeout
    while (left := _squeue()) and time.monotonic() < end:
        time.sleep(0.5)
    return left


@pytest.fixture
def site_yaml(tmp_path):
    """Settings for the single-node test SLURM: 1-core jobs, everything on the loopback
    interface, job logs in tmp_path, workers importing this romdask (the checkout under test)."""
    path = tmp_path / "site.yaml"
    code = Path(romdask.__file__).resolve().parents[1]
    path.write_text(yaml.safe_dump({
        "jobqueue": {"slurm": {
            "name": JOB_NAME, "cores": 1, "processes": 1, "memory": "2GiB", "walltime": "00:10:00",
            "interface": "lo", "log-directory": str(tmp_path / "logs"),
            "job-script-prologue": [f"export PYTHONPATH={code}"],
            "scheduler-options": {"dashboard_address": ":0"},
        }},
        # a lost worker job is replaced after 2 s (default 15 s)
        "distributed": {"deploy": {"lost-worker-timeout": "2s"}},
    }))
    return path


def _assert_same(a: ReducedModel, b: ReducedModel) -> None:
    """The same model up to round-off: same points, modes and singular values bit for bit (one
    BLAS thread in every task); ECM weights within 1e-6 relative (measured 2e-8 .. 2e-7 between
    processes since the ECM runs in worker tasks, although those pin one BLAS thread too; likely
    MKL's alignment-dependent code paths -- not pinned down)."""
    np.testing.assert_array_equal(a.point_ids, b.point_ids)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-6, atol=1e-12 * a.weights.max())
    np.testing.assert_array_equal(a.modes_strain, b.modes_strain)
    assert a.metadata["reduce"]["singular_values"] == b.metadata["reduce"]["singular_values"]


def test_cli_reduce_on_2_slurm_jobs_gives_the_local_model(small_store, site_yaml, tmp_path, capsys):
    """The same model (see _assert_same): the same graph, the same per-task numpy calls on the
    same CPU with BLAS pinned to one thread, the same reduction tree; only where tasks run differs."""
    store, _ = small_store
    out_slurm, out_local = tmp_path / "slurm.zarr", tmp_path / "local.zarr"
    assert main(["reduce", str(store), "--out", str(out_slurm), "--cluster", "slurm",
                 "--cluster-config", str(site_yaml), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "dask dashboard: http" in captured.out and "100% Completed" in captured.err
    assert _no_jobs_left() == [], "worker jobs left in squeue after romdask reduce"
    logs = sorted((tmp_path / "logs").glob("*.err"))
    registered = [p for p in logs if "Registered to" in p.read_text()]
    assert len(registered) >= 2, f"expected 2 worker jobs to have run, logs: {logs}"
    assert main(["reduce", str(store), "--out", str(out_local), "--cluster", "local", "--jobs", "2"]) == 0
    _assert_same(ReducedModel.open(out_slurm), ReducedModel.open(out_local))


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


def test_a_scancelled_worker_job_loses_nothing(small_store, site_yaml):
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
            _assert_same(out["model"], reference)
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
            jobs = {line.split()[0]: line.split()[1] for line in _squeue()}
            if job_id not in jobs and list(jobs.values()).count("RUNNING") == 2:
                break
            time.sleep(0.5)
        assert job_id not in jobs and list(jobs.values()).count("RUNNING") == 2, jobs
    assert _no_jobs_left() == [], "worker jobs left in squeue after the cluster closed"
