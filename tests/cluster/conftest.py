"""Shared by the cluster tests: a small snapshot store (the idiom of tests/offline/test_cli_reduce),
the test SLURM (skip when none answers, site settings, squeue), the comparison of two models."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import romdask
from romdask.hifi import solve
from romdask.materials import law_to_json
from romdask.online import ReducedModel
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store

FIELDS = ("displacement", "stress", "state")


def make_store(path, n=3, n_subdomains=2):
    """Two runs of the plate with a hole (amplitudes 0.006 and 0.004 mm, half a cycle), with
    their load patterns and law in the run metadata; returns the law."""
    problems = [plate_problem(n=n, n_cycles=0.5, amplitude=a) for a in (0.006, 0.004)]
    store = create_store(path, problems[0].mesh, n_subdomains=n_subdomains)
    for name, problem in zip(("a", "b"), problems):
        meta = {"loads": describe_loads(problem), "material": law_to_json(problem.material)}
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta,
                              fields=FIELDS, allow_nan=("state",))
        solve(problem, writer=writer, fields=FIELDS)
    return problems[0].material


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """(store path, law) of a 2-subdomain store of the smallest plate."""
    path = tmp_path_factory.mktemp("cluster-store") / "s.zarr"
    law = make_store(path)
    return path, law


# ---- the test SLURM (scripts/ci/slurm-up.sh) ---------------------------------------------------

SLURM_REASON = ("no SLURM answers sinfo: start the test SLURM with scripts/ci/slurm-up.sh (as root; "
                "stop it with scripts/ci/slurm-down.sh)")


def slurm_answers() -> bool:
    """sinfo and sbatch exist and a node is idle, mixed or allocated."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in out.stdout.split())


@pytest.fixture(scope="session")
def slurm():
    """Skips the test when no SLURM answers (``pytestmark = pytest.mark.usefixtures("slurm")``)."""
    if not slurm_answers():
        pytest.skip(SLURM_REASON)


@pytest.fixture(scope="session")
def slurm_job_name() -> str:
    """The name of this test session's SLURM jobs (squeue -n)."""
    return f"romdask-test-{os.getpid()}"


def slurm_site(job_name: str, log_directory: Path) -> dict:
    """Settings for the single-node test SLURM: 1-core jobs, everything on the loopback
    interface, job logs in ``log_directory``, workers importing this romdask (the checkout under
    test, through PYTHONPATH: a job does not see the test's sys.path)."""
    code = Path(romdask.__file__).resolve().parents[1]
    return {
        "jobqueue": {"slurm": {
            "name": job_name, "cores": 1, "processes": 1, "memory": "2GiB", "walltime": "00:10:00",
            "interface": "lo", "log-directory": str(log_directory),
            "job-script-prologue": [f"export PYTHONPATH={code}"],
            "scheduler-options": {"dashboard_address": ":0"},
        }},
        # a lost worker job is replaced after 2 s (default 15 s)
        "distributed": {"deploy": {"lost-worker-timeout": "2s"}},
    }


@pytest.fixture
def site_yaml(tmp_path, slurm_job_name):
    """:func:`slurm_site` as a YAML file, job logs in tmp_path/logs."""
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(slurm_site(slurm_job_name, tmp_path / "logs")))
    return path


def _squeue(name: str) -> list[str]:
    """``"<id> <state>"`` of the jobs called ``name``."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True,
                         check=True)
    return out.stdout.split("\n")[:-1]


def _no_jobs_left(name: str, timeout: float = 20) -> list[str]:
    """The jobs called ``name`` still in squeue after ``timeout`` s (cancelled jobs take a moment)."""
    end = time.monotonic() + timeout
    while (left := _squeue(name)) and time.monotonic() < end:
        time.sleep(0.5)
    return left


@pytest.fixture
def squeue(slurm_job_name):
    """``squeue()``: ``"<id> <state>"`` of this session's jobs."""
    return lambda: _squeue(slurm_job_name)


@pytest.fixture
def no_jobs_left(slurm_job_name):
    """``no_jobs_left(timeout=20)``: this session's jobs still in squeue after ``timeout`` s."""
    return lambda timeout=20: _no_jobs_left(slurm_job_name, timeout)


def _assert_same(a: ReducedModel, b: ReducedModel) -> None:
    """The same model up to round-off: same points, modes and singular values bit for bit (one
    BLAS thread in every task); ECM weights within 1e-6 relative (measured 2e-8 .. 2e-7 between
    processes since the ECM runs in worker tasks, although those pin one BLAS thread too; likely
    MKL's alignment-dependent code paths -- not pinned down)."""
    np.testing.assert_array_equal(a.point_ids, b.point_ids)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-6, atol=1e-12 * a.weights.max())
    np.testing.assert_array_equal(a.modes_strain, b.modes_strain)
    assert a.metadata["reduce"]["singular_values"] == b.metadata["reduce"]["singular_values"]


@pytest.fixture
def assert_same_model():
    """``assert_same_model(a, b)``: two ReducedModels equal up to round-off (see _assert_same)."""
    return _assert_same
