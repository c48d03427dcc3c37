"""deploy/slurm/reduce.sbatch as submitted, on the test SLURM: SLURM runs a spooled copy of the
script (/var/spool/slurmd/job<id>/slurm_script), so the script must find the jobqueue.yaml next to
the submitted file some other way, and it must run where there is no `module` command and no
/shared environment (those are settings). Needs a SLURM that answers `sinfo`
(scripts/ci/slurm-up.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import romdask
from romdask.cli import main
from romdask.online import ReducedModel

pytestmark = pytest.mark.usefixtures("slurm")  # skips when no SLURM answers (conftest.py)

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "reduce.sbatch"


def _wait_for(job_id: str, timeout: float) -> bool:
    """True once the job has left squeue (finished, failed or cancelled), False after ``timeout`` s
    (sacct needs accounting, which the test SLURM has not)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                             check=False)
        if out.returncode == 0 and not out.stdout.strip() or "Invalid job id" in out.stderr:
            return True
        time.sleep(0.5)
    return False


def test_reduce_sbatch_runs_as_submitted_and_gives_the_local_model(small_store, site_yaml, tmp_path, slurm_job_name,
                                                                   no_jobs_left, assert_same_model):
    """The real script (copied next to the site's jobqueue.yaml, as deploy/slurm/ holds it) submitted
    from another directory with relative paths; only --mem given on sbatch's command line (the
    script's 8G is the whole test node, and the worker jobs need room)."""
    store, _ = small_store
    site, work = tmp_path / "site", tmp_path / "work"
    site.mkdir()
    work.mkdir()
    shutil.copy(SCRIPT, site / "reduce.sbatch")
    shutil.copy(site_yaml, site / "jobqueue.yaml")  # 1-core worker jobs on the loopback interface
    (work / "runs.zarr").symlink_to(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROMDASK_", "SLURM_"))}
    env["PYTHONPATH"] = str(Path(romdask.__file__).resolve().parents[1])  # this checkout, in the batch job
    submit = subprocess.run(
        ["sbatch", "--parsable", "--mem=1G", "-J", slurm_job_name, "-o", "reduce.out",
         "../site/reduce.sbatch", "runs.zarr", "model.zarr", "--jobs", "2"],
        cwd=work, env=env, capture_output=True, text=True, check=False, timeout=30)
    assert submit.returncode == 0, submit.stderr
    job_id = submit.stdout.strip().split(";")[0]
    try:
        finished = _wait_for(job_id, timeout=150)
    finally:
        subprocess.run(["scancel", job_id], check=False)
    log = (work / "reduce.out").read_text() if (work / "reduce.out").exists() else "(no output file)"
    assert finished, f"job {job_id} still running after 150 s:\n{log}"
    assert (work / "model.zarr").is_dir(), f"no model.zarr; the job's output:\n{log}"
    assert f"cluster config {site / 'jobqueue.yaml'}" in log, log
    assert no_jobs_left() == [], "worker jobs left in squeue after the batch job"
    assert main(["reduce", str(store), "--out", str(tmp_path / "local.zarr"), "--cluster", "local",
                 "--jobs", "2"]) == 0
    assert_same_model(ReducedModel.open(work / "model.zarr"), ReducedModel.open(tmp_path / "local.zarr"))


def _submit_and_read(script: Path, cwd: Path, env: dict, timeout: float = 30) -> str:
    """Submit ``script runs.zarr model.zarr`` from ``cwd`` (a relative path to the script), wait,
    return the job's output."""
    submit = subprocess.run(["sbatch", "--parsable", "--mem=100M", "-o", "job.out",
                             os.path.relpath(script, cwd), "runs.zarr", "model.zarr"],
                            cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=30)
    assert submit.returncode == 0, submit.stderr
    job_id = submit.stdout.strip().split(";")[0]
    try:
        assert _wait_for(job_id, timeout), f"job {job_id} still running after {timeout} s"
    finally:
        subprocess.run(["scancel", job_id], check=False)
    return (cwd / "job.out").read_text()


@pytest.mark.parametrize("case", ["from its folder", "config named", "modules without module"])
def test_reduce_sbatch_settings_are_checked_in_the_job(tmp_path, case):
    """Submitted from the folder that holds it (``sbatch reduce.sbatch ...``) the script finds its
    jobqueue.yaml (and stops at the next check, romdask missing from PATH here); ROMDASK_CLUSTER_CONFIG
    and ROMDASK_MODULES are checked with messages that say what to set."""
    shutil.copy(SCRIPT, tmp_path / "reduce.sbatch")
    (tmp_path / "jobqueue.yaml").write_text("jobqueue: {slurm: {cores: 1, memory: 1GiB}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROMDASK_", "SLURM_"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "romdask").exists())  # no romdask in the job
    cwd = tmp_path
    if case == "config named":
        env["ROMDASK_CLUSTER_CONFIG"] = str(tmp_path / "nowhere.yaml")
        cwd = tmp_path / "elsewhere"
        cwd.mkdir()
    elif case == "modules without module":
        env["ROMDASK_MODULES"] = "python/3.11"
    out = _submit_and_read(tmp_path / "reduce.sbatch", cwd, env)
    expected = {
        "from its folder": "romdask is not on PATH in the job: set ROMDASK_ENV",
        "config named": f"no cluster config {tmp_path / 'nowhere.yaml'}",
        "modules without module": "ROMDASK_MODULES=python/3.11 but this node has no 'module' command",
    }[case]
    assert f"reduce.sbatch: {expected}" in out, out
