"""romdask.cluster without a batch system: LocalCluster sizing and BLAS pinning, TLS (temporary
and openssl certificates from a site YAML), attaching to a running scheduler or Client, the job
scripts of SLURM and PBS from a site YAML, the CLI, and the error messages."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import distributed
import numpy as np
import pytest
import yaml
from dask.system import CPU_COUNT
from distributed.system import MEMORY_LIMIT

from romdask.cli import main
from romdask.cluster import BLAS_ENV, cluster_client, job_script, load_config
from romdask.online import ReducedModel

QUIET = {"dashboard_address": ":0"}  # no fixed dashboard port: several clusters may run at once


def _blas_threads():
    from threadpoolctl import threadpool_info

    return sorted({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"})


def test_local_cluster_is_sized_to_the_machine_with_blas_pinned(caplog):
    caplog.set_level(logging.INFO, logger="romdask.cluster")
    with cluster_client("local", **QUIET) as client:
        workers = client.scheduler_info()["workers"].values()
        assert len(workers) == CPU_COUNT
        assert all(w["nthreads"] == 1 for w in workers)
        assert all(w["memory_limit"] == MEMORY_LIMIT // CPU_COUNT for w in workers)
        envs = client.run(lambda: {k: os.environ.get(k) for k in BLAS_ENV})
        assert all(env == BLAS_ENV for env in envs.values())
        assert all(t == [1] for t in client.run(_blas_threads).values())
        assert distributed.default_client() is client  # dask computations go to it
        assert client.submit(sum, [1, 2]).result() == 3
    assert client.status == "closed"
    assert any("dask dashboard: http" in r.getMessage() for r in caplog.records)


def test_local_cluster_options_and_adaptive_workers():
    with cluster_client("local", n_workers=1, memory_limit="1GiB", **QUIET) as client:
        (worker,) = client.scheduler_info()["workers"].values()
        assert worker["memory_limit"] == 2**30
    with cluster_client("local", n_workers=1, minimum_jobs=1, maximum_jobs=2, **QUIET) as client:
        assert client.cluster._adaptive is not None
        assert client.submit(abs, -2).result() == 2


def test_an_existing_client_is_used_and_not_closed():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, **QUIET) as cluster, \
            distributed.Client(cluster) as mine:
        with cluster_client(mine) as client:
            assert client is mine
        assert mine.status == "running"
        # attach by address (with and without the scheme)
        for address in (cluster.scheduler_address, cluster.scheduler_address.removeprefix("tcp://")):
            with cluster_client(address) as other:
                assert other.submit(abs, -3).result() == 3
            assert other.status == "closed"
        assert mine.status == "running"


def test_temporary_tls_certificates():  # needs cryptography (in the test extra)
    with cluster_client("local", n_workers=1, security=True, **QUIET) as client:
        assert client.scheduler.address.startswith("tls://")
        assert client.submit(abs, -4).result() == 4


def _openssl_certificate(folder):
    """One self-signed certificate (CA:TRUE) used as CA and by every role: the docs' recipe."""
    key, cert = folder / "dask.key", folder / "dask.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=romdask-test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
def test_tls_from_a_site_yaml_with_openssl_certificates(tmp_path):
    key, cert = _openssl_certificate(tmp_path)
    roles = {role: {"key": str(key), "cert": str(cert)} for role in ("scheduler", "worker", "client")}
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"distributed": {"comm": {
        "require-encryption": True, "tls": {"ca-file": str(cert), **roles}}}}))
    with cluster_client("local", n_workers=1, config=site, **QUIET) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        assert client.submit(abs, -5).result() == 5
        with cluster_client(address, config=site) as other:  # attach with the same certificates
            assert other.submit(abs, -6).result() == 6


SITE = {"jobqueue": {
    "slurm": {"queue": "compute", "account": "proj42", "walltime": "02:30:00", "memory": "6GiB",
              "cores": 3, "processes": 1, "job-script-prologue": ["module load python/3.11"]},
    "pbs": {"queue": "workq", "account": "proj42", "walltime": "02:30:00", "memory": "6GiB",
            "cores": 3, "processes": 1, "job_script_prologue": ["module load python/3.11"]},
}}


@pytest.fixture
def site_yaml(tmp_path):
    path = tmp_path / "jobqueue.yaml"
    path.write_text(yaml.safe_dump(SITE))
    return path


def _worker_line(script):
    (line,) = [ln for ln in script.splitlines() if "distributed.cli.dask_worker" in ln]
    return line


def test_slurm_job_script_from_the_site_yaml(site_yaml):
    script = job_script("slurm", config=site_yaml)
    for directive in ("#SBATCH -p compute", "#SBATCH -A proj42", "#SBATCH -t 02:30:00",
                      "#SBATCH --cpus-per-task=3", "#SBATCH --mem=6G"):
        assert directive in script.splitlines(), (directive, script)
    lines = script.splitlines()
    assert lines.index("module load python/3.11") < lines.index("export OMP_NUM_THREADS=1")
    assert _worker_line(script).startswith(f"{sys.executable} -m distributed.cli.dask_worker")
    assert "--nthreads 3" in script and "--memory-limit 6.00GiB" in script
    # keywords override the YAML; the YAML stays out of the global config afterwards
    other = job_script("slurm", config=site_yaml, queue="debug", walltime="00:10:00")
    assert "#SBATCH -p debug" in other and "#SBATCH -t 00:10:00" in other and "-A proj42" in other
    import dask

    assert dask.config.get("jobqueue.slurm.queue") is None


def test_pbs_job_script_from_the_site_yaml(site_yaml):
    script = job_script("pbs", config=site_yaml)
    lines = script.splitlines()
    for directive in ("#PBS -q workq", "#PBS -A proj42", "#PBS -l walltime=02:30:00"):
        assert directive in lines, (directive, script)
    assert any(ln.startswith("#PBS -l select=1:ncpus=3:mem=") for ln in lines), script
    assert "module load python/3.11" in lines and "export MKL_NUM_THREADS=1" in lines
    assert _worker_line(script).startswith(f"{sys.executable} -m distributed.cli.dask_worker")


@pytest.mark.skipif(shutil.which("qsub") is not None, reason="a PBS qsub is installed here")
def test_pbs_without_qsub_names_the_command(site_yaml):
    with pytest.raises(FileNotFoundError, match="'qsub'"):
        with cluster_client("pbs", config=site_yaml):
            pass


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown cluster 'lcoal'"):
        with cluster_client("lcoal"):
            pass
    with pytest.raises(TimeoutError, match="tcp://127.0.0.1:9 within 1 s"):
        with cluster_client("tcp://127.0.0.1:9", timeout=1):
            pass
    with pytest.raises(ValueError, match="speaks TLS"):  # no certificates in the config
        with cluster_client("tls://127.0.0.1:9", timeout=1):
            pass
    with pytest.raises(ValueError, match="not both"):
        with cluster_client("slurm", jobs=2, maximum_jobs=3):
            pass
    with pytest.raises(ValueError, match="minimum_jobs=3 > maximum_jobs=2"):
        with cluster_client("slurm", minimum_jobs=3, maximum_jobs=2):
            pass
    with pytest.raises(ValueError, match="not to a running scheduler"):
        with cluster_client("localhost:8786", jobs=2):
            pass
    with pytest.raises(ValueError, match="jobqueue.slurm.cores"):
        with cluster_client("slurm", memory="1GiB"):
            pass
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobqueue: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        with cluster_client("local", config=bad):
            pass
    with pytest.raises(ValueError, match="job scripts exist"):
        job_script("local")


def test_cli_reduce_on_a_local_cluster_gives_the_threads_model(small_store, tmp_path, capsys):
    store, _ = small_store
    assert main(["reduce", str(store), "--out", str(tmp_path / "threads.zarr")]) == 0
    assert main(["reduce", str(store), "--out", str(tmp_path / "local.zarr"), "--cluster", "local",
                 "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "dask dashboard: http" in captured.out
    assert "100% Completed" in captured.err  # the progress bar of a distributed cluster
    a, b = ReducedModel.open(tmp_path / "threads.zarr"), ReducedModel.open(tmp_path / "local.zarr")
    np.testing.assert_array_equal(a.point_ids, b.point_ids)
    # ECM weights: MKL in worker processes (other memory alignment) rounds differently, see test_slurm
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-6, atol=1e-12 * a.weights.max())
    np.testing.assert_array_equal(a.modes_strain, b.modes_strain)
    # errors of --cluster are reported, not raised
    assert main(["reduce", str(store), "--out", str(tmp_path / "x.zarr"), "--jobs", "2"]) == 1
    assert "need --cluster" in capsys.readouterr().err
    assert main(["reduce", str(store), "--out", str(tmp_path / "x.zarr"), "--cluster", "nowhere"]) == 1
    assert "unknown cluster 'nowhere'" in capsys.readouterr().err


@pytest.mark.parametrize("kind, directive", [("slurm", "#SBATCH -p compute"), ("pbs", "#PBS -q workq")])
def test_the_deploy_examples_give_job_scripts(kind, directive):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "deploy" / kind / "jobqueue.yaml"
    script = job_script(kind, config=path)
    assert directive in script.splitlines()
    assert "source /shared/envs/romdask/bin/activate" in script and "--interface ib0" in script
