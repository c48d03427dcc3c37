"""What romdask reduce says on a cluster, without a batch system: a network interface that this
host does not have is named with its setting and file before anything is submitted; at default
verbosity a LocalCluster's workers and distributed stay silent; the progress bar does not make the
scheduler log a line at every redraw."""

from __future__ import annotations

import contextlib
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import romdask
from romdask.cli import main
from romdask.cluster import check_interface

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NO_SUCH = "nosuch0"  # a network interface no test host has


def test_check_interface_names_the_setting_the_file_and_the_interfaces(tmp_path):
    check_interface("slurm", config={"jobqueue": {"slurm": {"interface": "lo"}}})
    check_interface("pbs")  # no interface set: distributed picks an address
    site = tmp_path / "jobqueue.yaml"
    site.write_text(yaml.safe_dump({"jobqueue": {"pbs": {"interface": NO_SUCH, "cores": 1, "memory": "1GiB"}}}))
    with pytest.raises(ValueError, match=rf"jobqueue.pbs.interface '{NO_SUCH}' \({site}\) is not a network "
                                         r"interface of this host .*have: .*lo 127.0.0.1.*remove it"):
        check_interface("pbs", config=site)
    with pytest.raises(ValueError, match=r"scheduler-options.interface 'eth9' \(keyword scheduler_options=\)"):
        check_interface("slurm", config=site, scheduler_options={"interface": "eth9"})
    with pytest.raises(ValueError, match=r"jobqueue.slurm.interface 'ib7' \(keyword interface=\)"):
        check_interface("slurm", interface="ib7")
    with pytest.raises(ValueError, match=r"'x0' \(config=\)"):
        check_interface("slurm", config={"jobqueue": {"slurm": {"scheduler_options": {"interface": "x0"}}}})


def test_cli_pbs_with_a_missing_interface_is_one_error_line_before_any_job(small_store, tmp_path, capsys):
    """The PBS example as shipped (interface ib0) on a host without that interface: one
    'romdask reduce: error:' line naming the setting and the file, before qsub is looked for."""
    store, _ = small_store
    site = tmp_path / "jobqueue.yaml"
    site.write_text((DEPLOY / "pbs" / "jobqueue.yaml").read_text().replace("interface: ib0", f"interface: {NO_SUCH}"))
    assert main(["reduce", str(store), "--out", str(tmp_path / "m.zarr"), "--cluster", "pbs",
                 "--cluster-config", str(site)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"romdask reduce: error: jobqueue.pbs.interface '{NO_SUCH}' ({site}) is not a network "
                             "interface of this host"), err
    assert "set it to the interface the compute nodes reach this host by" in err[0]
    assert not (tmp_path / "m.zarr").exists()


def _env(**extra: str) -> dict:
    code = str(Path(romdask.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": code, **extra}


@contextlib.contextmanager
def _port_taken(port: int):
    """Hold ``port`` (if nobody else does already) so that distributed must pick another one."""
    sock = socket.socket()
    try:
        with contextlib.suppress(OSError):
            sock.bind(("", port))
            sock.listen()
        yield
    finally:
        sock.close()


def test_cli_reduce_on_a_local_cluster_is_quiet_by_default(small_store, tmp_path):
    """No line from distributed at default verbosity, also when the workers warn (a memory target
    below what a worker process uses makes each one log "Unmanaged memory use is high", as big
    runs do) and the dashboard port is taken (distributed's UserWarning; the CLI prints the link)."""
    store, _ = small_store
    env = _env(DASK_DISTRIBUTED__WORKER__MEMORY__TARGET="0.001", DASK_DISTRIBUTED__WORKER__MEMORY__SPILL="0.002")
    with _port_taken(8787):
        run = subprocess.run([sys.executable, "-m", "romdask.cli", "reduce", str(store), "--out", str(tmp_path / "m.zarr"),
                              "--cluster", "local", "--jobs", "2"],
                             env=env, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stderr
    noise = [ln for ln in run.stderr.splitlines() if "distributed" in ln or "Warning" in ln or "warnings.warn" in ln]
    assert noise == [], run.stderr
    assert "100% Completed" in run.stderr and "dask dashboard: http" in run.stdout


def test_cli_progress_bar_on_a_terminal_logs_nothing_per_redraw(small_store, tmp_path):
    """The live bar (stderr a terminal) redraws every 0.5 s; reading the scheduler's counts must not
    log "Run out-of-band function '_counts'" each time (Client.run_on_scheduler did, at INFO: -vv
    shows distributed's INFO lines)."""
    store, _ = small_store
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "romdask.cli", "-vv", "reduce", str(store),
                             "--out", str(tmp_path / "m.zarr"), "--cluster", "local", "--jobs", "2"],
                            env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        assert proc.wait(timeout=240) == 0
    err = b"".join(chunks).decode(errors="replace")
    assert err.count("% Completed") >= 3, err  # the bar was redrawn while running
    assert "distributed.scheduler INFO" in err  # -vv: distributed's INFO lines are shown
    assert "out-of-band" not in err and "_counts" not in err, err
