"""Start or attach a Dask cluster: a LocalCluster, SLURM or PBS jobs (dask-jobqueue), or a running
scheduler. The one place in romdask that creates clusters; only the CLI and users call it.

Library functions (``romdask.offline.reduce`` ...) never create a Client: they run on dask's
current scheduler, i.e. on the Client that :func:`cluster_client` (or the user) made active.

Site settings (queue, account, walltime, cores and memory per job, the job-script prologue that
loads modules, TLS certificates) live outside the code in a YAML file in dask's own config format::

    jobqueue:
      slurm:
        queue: compute
        account: myproject
        cores: 8
        memory: 32GiB
        walltime: "01:00:00"
        job-script-prologue: ["module load python/3.11", "source ~/venvs/romdask/bin/activate"]

Examples: ``deploy/slurm/jobqueue.yaml``, ``deploy/pbs/jobqueue.yaml``; guide: ``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dask
import dask.config
import dask_jobqueue  # noqa: F401  (registers the jobqueue.* defaults before any dask.config.set)
from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["BLAS_ENV", "active_client", "check_interface", "cluster_client", "job_script", "load_config",
           "progress_bar"]

log = logging.getLogger(__name__)

#: Environment of every worker process: BLAS / OpenMP / numba pinned to one thread (dask runs one
#: task per worker thread; BLAS threads on top made an exact SVD 5x slower here, numba's law
#: kernels multiplied with the workers: romdask.threads)
BLAS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}

_SUBMIT = {"slurm": "sbatch", "pbs": "qsub"}
_ADDRESS = re.compile(r"[A-Za-z0-9_.\-]+:\d+|\[[0-9A-Fa-f:]+\]:\d+")


# ---- configuration --------------------------------------------------------------------------


def load_config(path: str | Path) -> dict:
    """Read a site config file (YAML, dask's config format) without applying it.

    Parameters
    ----------
    path : a YAML file such as ``deploy/slurm/jobqueue.yaml``: top-level keys ``jobqueue``
        (dask-jobqueue's settings per scheduler: ``slurm``, ``pbs``) and ``distributed``
        (e.g. ``distributed.comm.tls.*``)

    Returns
    -------
    dict
        The nested settings, as ``dask.config.collect`` reads them (no environment variables).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Malformed YAML, or not a mapping at the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cluster config {path} not found (a YAML file such as deploy/slurm/jobqueue.yaml)")
    return dask.config.collect(paths=[str(path)], env={})


def _flatten(settings: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested settings -> dotted keys, so that dask.config.set merges them into the defaults
    (setting ``{"jobqueue": {...}}`` directly would replace the whole ``jobqueue`` section)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _site_settings(config: str | Path | Mapping | None) -> dict[str, Any]:
    if config is None:
        return {}
    settings = config if isinstance(config, Mapping) else load_config(config)
    return _flatten(settings)


# ---- the kinds of cluster -----------------------------------------------------------------------


def _kind(spec: str) -> str:
    """"local" | "slurm" | "pbs" | "address"."""
    if not isinstance(spec, str):
        raise TypeError(f"cluster spec must be a string or a distributed.Client, got {type(spec).__name__}")
    if spec in ("local", "slurm", "pbs"):
        return spec
    if "://" in spec or _ADDRESS.fullmatch(spec):
        return "address"
    raise ValueError(
        f"unknown cluster {spec!r}: use 'local', 'slurm', 'pbs', the address of a running scheduler "
        "('tcp://host:8786', 'host:8786', 'tls://host:8786') or pass a distributed.Client"
    )


def _security(security):
    """None -> TLS from the dask config (``distributed.comm.tls.*``) when it names certificates,
    else no TLS; True -> temporary self-signed certificates (needs ``cryptography``)."""
    from distributed.security import Security

    if security is None:
        from_config = Security()
        return from_config if (from_config.require_encryption or from_config.tls_ca_file) else None
    if security is True:
        try:
            return Security.temporary()
        except ImportError as exc:
            raise ImportError(
                "security=True makes temporary TLS certificates and needs the 'cryptography' package "
                "(pip install cryptography), or give certificate files (docs/cluster.md, TLS)"
            ) from exc
    return security


def _local_cluster(n_workers: int | None, memory_limit, security, cluster_kwargs: dict):
    """LocalCluster sized to the machine: one single-threaded worker process per core, memory
    split evenly, BLAS pinned to one thread in each worker."""
    from dask.system import CPU_COUNT
    from distributed import LocalCluster
    from distributed.system import MEMORY_LIMIT

    n = n_workers or CPU_COUNT
    if n < 1:
        raise ValueError(f"n_workers must be >= 1, got {n}")
    # the workers' log lines (their own processes, printing to this one's stderr) pass at the level of
    # this process's 'distributed' logger, WARNING at least (LocalCluster's default): the CLI's
    # quiet default keeps worker warnings ("Unmanaged memory use is high" ...) out of its output
    quiet = max(logging.WARNING, logging.getLogger("distributed").getEffectiveLevel())
    kwargs = {"n_workers": n, "threads_per_worker": 1, "processes": True,
              "memory_limit": memory_limit or MEMORY_LIMIT // n, "security": security, "silence_logs": quiet}
    kwargs.update(cluster_kwargs)
    kwargs["env"] = {**BLAS_ENV, **kwargs.get("env", {})}
    log.info("LocalCluster: %d worker(s) x %d thread(s), memory limit %s per worker",
             n, kwargs["threads_per_worker"], kwargs["memory_limit"])
    return LocalCluster(**kwargs)


def _jobqueue_kwargs(kind: str, memory_limit, cluster_kwargs: dict) -> tuple[type, dict]:
    """The SLURMCluster / PBSCluster class and its keywords: the dask config (site YAML) fills
    what the keywords leave out; BLAS exports appended to the prologue; workers on this Python."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    kwargs = dict(cluster_kwargs)
    if memory_limit is not None:
        kwargs.setdefault("memory", memory_limit)
    for key in ("cores", "memory"):
        if kwargs.get(key) is None and dask.config.get(f"jobqueue.{kind}.{key}", None) is None:
            raise ValueError(
                f"{kind} jobs need '{key}' (per job): set jobqueue.{kind}.{key} in the cluster config "
                f"(--cluster-config, see deploy/{kind}/jobqueue.yaml) or pass {key}="
            )
    prologue = kwargs.pop("job_script_prologue", None)
    if prologue is None:
        prologue = dask.config.get(f"jobqueue.{kind}.job-script-prologue", None) or []
    exports = [f"export {k}={v}" for k, v in BLAS_ENV.items()]
    kwargs["job_script_prologue"] = [*prologue, *(e for e in exports if e not in prologue)]
    kwargs.setdefault("python", dask.config.get(f"jobqueue.{kind}.python", None) or sys.executable)
    return (SLURMCluster if kind == "slurm" else PBSCluster), kwargs


def _ipv4_interfaces() -> dict[str, str]:
    """This host's network interfaces that have an IPv4 address (what distributed can listen on)."""
    import socket

    import psutil

    return {name: info.address for name, infos in psutil.net_if_addrs().items()
            for info in infos if info.family == socket.AF_INET}


def _interface_source(kind: str, key: str, config, cluster_kwargs: Mapping) -> str:
    """Where the setting ``jobqueue.<kind>.<key>`` comes from, in words."""
    if key == "interface" and "interface" in cluster_kwargs:
        return "keyword interface="
    if key != "interface" and "interface" in (cluster_kwargs.get("scheduler_options") or {}):
        return "keyword scheduler_options="
    dotted = f"jobqueue.{kind}.{key}"
    if config is not None and dotted in {k.replace("_", "-") for k in _site_settings(config)}:
        return str(config) if isinstance(config, (str, Path)) else "config="
    return "dask config: ~/.config/dask/*.yaml or DASK_* variables"


def check_interface(kind: str, *, config: str | Path | Mapping | None = None, **cluster_kwargs: Any) -> None:
    """Check that the network interface a SLURM / PBS cluster would listen on exists on this host.

    dask-jobqueue's ``interface`` setting (``jobqueue.<kind>.interface``, or
    ``scheduler-options: {interface: ...}``) names the network the scheduler listens on and the
    workers connect through, e.g. ``ib0`` (InfiniBand). Where it does not exist the scheduler fails
    deep inside distributed (``'ib0' is not a valid network interface``) without saying which
    setting to change; this check says it before anything starts or is submitted.

    Parameters
    ----------
    kind : "slurm" or "pbs"
    config : site settings, as for :func:`cluster_client` (a YAML file or a mapping)
    **cluster_kwargs : SLURMCluster / PBSCluster keywords (``interface``, ``scheduler_options``)

    Raises
    ------
    ValueError
        The interface is not one of this host's, or has no IPv4 address; the message names the
        setting, the file it comes from, and the interfaces this host has.

    Notes
    -----
    The scheduler runs on this host, so the check is exact for it; the workers use the same name
    on the compute nodes, which this host cannot see (a wrong name there shows in the job logs).
    """
    with dask.config.set(_site_settings(config)):
        options = cluster_kwargs.get("scheduler_options")
        if options is None:
            options = dask.config.get(f"jobqueue.{kind}.scheduler-options", None) or {}
        candidates = [("scheduler-options.interface", options.get("interface")),
                      ("interface", cluster_kwargs.get("interface",
                                                       dask.config.get(f"jobqueue.{kind}.interface", None)))]
    have = _ipv4_interfaces()
    for key, interface in candidates:
        if interface is None or interface in have:
            continue
        source = _interface_source(kind, key, config, cluster_kwargs)
        listing = ", ".join(f"{name} {address}" for name, address in sorted(have.items()))
        raise ValueError(
            f"jobqueue.{kind}.{key} {interface!r} ({source}) is not a network interface of this host with an "
            f"IPv4 address (have: {listing}); set it to the interface the compute nodes reach this host by "
            "(`ip addr`), or remove it"
        )


def _jobqueue_cluster(kind: str, memory_limit, security, config, cluster_kwargs: dict):
    cls, kwargs = _jobqueue_kwargs(kind, memory_limit, cluster_kwargs)
    check_interface(kind, config=config, **cluster_kwargs)
    command = _SUBMIT[kind]
    if shutil.which(command) is None:
        raise FileNotFoundError(
            f"cluster {kind!r} submits jobs with {command!r}, which is not on PATH: run on a login node "
            f"of the {kind.upper()} cluster (or load its module), or use --cluster local / an address"
        )
    return cls(security=security, **kwargs)


def job_script(kind: str, *, config: str | Path | Mapping | None = None, memory_limit: str | int | None = None,
               **cluster_kwargs: Any) -> str:
    """The batch script of one worker job that :func:`cluster_client` would submit.

    Parameters
    ----------
    kind : "slurm" or "pbs"
    config : site settings, as for :func:`cluster_client`
    memory_limit : memory per job (``memory``)
    **cluster_kwargs : SLURMCluster / PBSCluster keywords (override the config)

    Returns
    -------
    str
        The script, with ``<scheduler-address>`` in place of the scheduler's address. Nothing
        is submitted and no scheduler starts, so it works without sbatch / qsub (check a site
        YAML before submitting).

    Raises
    ------
    ValueError
        Another kind, or cores / memory missing from both the config and the keywords.
    """
    if kind not in _SUBMIT:
        raise ValueError(f"job scripts exist for {sorted(_SUBMIT)}, not {kind!r}")
    with dask.config.set(_site_settings(config)):
        cls, kwargs = _jobqueue_kwargs(kind, memory_limit, cluster_kwargs)
        for key in ("scheduler_options", "shared_temp_directory"):  # cluster-only keywords
            kwargs.pop(key, None)
        job = cls.job_cls("<scheduler-address>", name="dummy-name", **kwargs)
        return job.job_script()


def _scale(cluster, kind: str, jobs, minimum_jobs, maximum_jobs) -> None:
    if kind == "local":
        if minimum_jobs is not None or maximum_jobs is not None:
            cluster.adapt(minimum=minimum_jobs or 0, maximum=maximum_jobs or len(cluster.workers))
        return
    if minimum_jobs is None and maximum_jobs is None:
        minimum_jobs = maximum_jobs = 1 if jobs is None else jobs
    if maximum_jobs is None:
        raise ValueError(f"adaptive scaling needs maximum_jobs (got minimum_jobs={minimum_jobs})")
    minimum_jobs = minimum_jobs or 0
    # adapt also with a fixed number of jobs: a lost job (walltime, preemption, scancel) is resubmitted
    log.info("%s: %d to %d job(s) of %s core(s) each", kind, minimum_jobs, maximum_jobs,
             cluster._job_kwargs.get("cores") or dask.config.get(f"jobqueue.{kind}.cores"))
    cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)


def _check_sizes(kind: str, n_workers, jobs, minimum_jobs, maximum_jobs) -> None:
    for name, value in (("n_workers", n_workers), ("jobs", jobs), ("minimum_jobs", minimum_jobs),
                        ("maximum_jobs", maximum_jobs)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if jobs is not None and (minimum_jobs is not None or maximum_jobs is not None):
        raise ValueError("give either jobs (a fixed number) or minimum_jobs / maximum_jobs (adaptive), not both")
    if minimum_jobs is not None and maximum_jobs is not None and minimum_jobs > maximum_jobs:
        raise ValueError(f"minimum_jobs={minimum_jobs} > maximum_jobs={maximum_jobs}")
    if kind == "local" and jobs is not None:
        raise ValueError("a local cluster has workers, not jobs: pass n_workers")
    if kind in ("slurm", "pbs") and n_workers is not None:
        raise ValueError(f"size a {kind} cluster in jobs (jobs= or minimum_jobs= / maximum_jobs=), not n_workers")
    if kind in ("address", "client") and any(v is not None for v in (n_workers, jobs, minimum_jobs, maximum_jobs)):
        raise ValueError("n_workers / jobs apply to clusters that romdask starts, not to a running scheduler")


@contextlib.contextmanager
def _attach(address: str, security, timeout: float) -> Iterator:
    from distributed import Client

    if address.startswith("tls://") and security is None:
        raise ValueError(
            f"the scheduler at {address} speaks TLS: give certificates (security=, or "
            "distributed.comm.tls.* in the cluster config; docs/cluster.md, TLS)"
        )
    try:
        client = Client(address, timeout=timeout, security=security)
    except (OSError, TimeoutError) as exc:
        raise TimeoutError(f"no Dask scheduler answered at {address} within {timeout:g} s: {exc}") from exc
    with client:
        yield client


@contextlib.contextmanager
def cluster_client(
    spec: Any = "local",
    *,
    config: str | Path | Mapping | None = None,
    n_workers: int | None = None,
    memory_limit: str | int | None = None,
    jobs: int | None = None,
    minimum_jobs: int | None = None,
    maximum_jobs: int | None = None,
    security: Any = None,
    timeout: float = 10,
    **cluster_kwargs: Any,
) -> Iterator:
    """A ``distributed.Client`` on a new or running cluster, closed (jobs cancelled) on exit.

    Parameters
    ----------
    spec : "local" (a LocalCluster on this machine), "slurm" (dask_jobqueue.SLURMCluster), "pbs"
        (PBSCluster), the address of a running scheduler ("tcp://host:8786", "host:8786",
        "tls://host:8786"), or a ``distributed.Client`` (used as is and not closed)
    config : site settings in dask's config format: a YAML file (``jobqueue.slurm.queue``,
        ``...account``, ``...walltime``, ``...cores``, ``...memory``, ``...job-script-prologue``,
        ``distributed.comm.tls.*`` ...) or the same nested mapping; applied with
        ``dask.config.set`` while the context is open. Keywords override it.
    n_workers : local only: worker processes (default: one per core), one thread each
    memory_limit : local: per worker (default: total memory / n_workers); slurm / pbs: per job
        (``memory``)
    jobs : slurm / pbs: a fixed number of batch jobs (default 1), kept: a lost job is resubmitted
    minimum_jobs, maximum_jobs : adaptive scaling between these numbers of jobs (local: workers)
    security : a ``distributed.security.Security``, True (temporary self-signed certificates), or
        None (TLS when the dask config names certificates, ``distributed.comm.tls.*``)
    timeout : seconds to wait for a running scheduler to answer (addresses only)
    **cluster_kwargs : passed to LocalCluster / SLURMCluster / PBSCluster (``cores``, ``queue``,
        ``walltime``, ``job_script_prologue``, ``scheduler_options``, ``log_directory`` ...)

    Returns
    -------
    contextmanager yielding distributed.Client
        The active default client while the context is open (dask computations run on it).

    Raises
    ------
    ValueError
        An unknown spec, inconsistent sizes, slurm / pbs jobs without cores or memory, a network
        ``interface`` this host does not have (:func:`check_interface`), a malformed config file.
    FileNotFoundError
        The config file, or the submit command (``sbatch`` / ``qsub``) is missing.
    TimeoutError
        No scheduler answered at the address within ``timeout``.
    ImportError
        ``security=True`` without the ``cryptography`` package.

    Notes
    -----
    Worker processes run with BLAS / OpenMP / numba pinned to one thread (:data:`BLAS_ENV`: in the
    LocalCluster's worker environment, exported by the job script's prologue on SLURM / PBS).
    Job scripts start workers with this Python (``sys.executable``) unless
    ``jobqueue.<kind>.python`` says otherwise, so install romdask in a shared environment.
    With a fixed number of jobs the cluster adapts between ``jobs`` and ``jobs``: a job that dies
    is resubmitted once the scheduler gives its worker up (``distributed.deploy.lost-worker-timeout``,
    15 s by default); the tasks it held are recomputed by the others meanwhile. The dashboard
    link is logged (logger ``romdask.cluster``, level INFO). The SLURM / PBS scheduler runs in this
    process: on a real site run it on a login node or inside a batch job (``deploy/``).
    """
    from distributed import Client

    if isinstance(spec, Client):
        _check_sizes("client", n_workers, jobs, minimum_jobs, maximum_jobs)
        yield spec
        return
    kind = _kind(spec)
    _check_sizes(kind, n_workers, jobs, minimum_jobs, maximum_jobs)
    with dask.config.set(_site_settings(config)):
        security = _security(security)
        if kind == "address":
            with _attach(spec, security, timeout) as client:
                log.info("dask dashboard: %s", client.dashboard_link)
                yield client
            return
        if kind == "local":
            cluster = _local_cluster(n_workers, memory_limit, security, cluster_kwargs)
        else:
            cluster = _jobqueue_cluster(kind, memory_limit, security, config, cluster_kwargs)
        with cluster:
            _scale(cluster, kind, jobs, minimum_jobs, maximum_jobs)
            with Client(cluster) as client:
                log.info("dask dashboard: %s", client.dashboard_link)
                yield client


def active_client():
    """The current default ``distributed.Client`` (the one library functions run on), or None
    when dask's local schedulers are in use."""
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


# ---- progress -----------------------------------------------------------------------------------


class _TaskCounter(SchedulerPlugin):
    """Scheduler plugin: tasks submitted and tasks finished (memory or erred) since registration,
    read by the client through a scheduler handler (an RPC: ``Client.run_on_scheduler`` would log
    "Run out-of-band function" at INFO on the scheduler at every redraw)."""

    name = "romdask-progress"
    handler = "romdask_progress"

    def __init__(self):
        self.total = 0
        self.done = 0

    def start(self, scheduler):
        def romdask_progress() -> tuple[int, int]:  # looks the plugin up: no reference once it is removed
            plugin = scheduler.plugins.get(_TaskCounter.name)
            return (plugin.done, plugin.total) if plugin is not None else (0, 0)

        scheduler.handlers[self.handler] = romdask_progress

    def update_graph(self, scheduler, *, tasks=(), **kwargs):
        self.total += len(tasks)

    def transition(self, key, start, finish, *args, **kwargs):
        if finish in ("memory", "erred") and start != finish:
            self.done += 1


def _counts(client) -> tuple[int, int]:
    """(done, total) of the scheduler's _TaskCounter, from any thread but the client's loop."""
    done, total = client.sync(getattr(client.scheduler, _TaskCounter.handler))
    return done, total


def _draw(done: int, total: int, elapsed: float, stream) -> None:
    width = 40
    frac = done / total if total else 0.0
    bar = "#" * int(width * frac)
    stream.write(f"\r[{bar:<{width}}] | {100 * frac:3.0f}% Completed | {done}/{total} tasks | {elapsed:.1f}s")
    stream.flush()


@contextlib.contextmanager
def _final_line(stream) -> Iterator[None]:
    """Dask's local schedulers: one line per computation when it ends (tasks and seconds)."""
    from dask.callbacks import Callback

    class _Count(Callback):
        def _start_state(self, dsk, state):
            self.total, self.start = sum(len(state[k]) for k in ("ready", "waiting", "cache")), time.perf_counter()

        def _finish(self, dsk, state, errored):
            _draw(self.total, self.total, time.perf_counter() - self.start, stream)
            stream.write("\n")
            stream.flush()

    with _Count():
        yield


@contextlib.contextmanager
def progress_bar(client=None, *, interval: float = 0.5, stream=None) -> Iterator[None]:
    """A text progress bar of every dask computation while the context is open.

    Parameters
    ----------
    client : None (dask's local schedulers: ``dask.diagnostics.ProgressBar``) or a
        ``distributed.Client`` (any cluster kind: counts tasks on its scheduler)
    interval : seconds between redraws (a stream that is not a terminal gets the final state only)
    stream : where to draw (default ``sys.stderr``)

    Returns
    -------
    contextmanager

    Notes
    -----
    With a Client, a small scheduler plugin counts tasks submitted and finished; the bar polls it
    from a thread through a scheduler handler (one small RPC per redraw, nothing logged). A remote
    scheduler needs romdask importable; if the plugin cannot be installed the bar is skipped with a
    warning and the computation runs.
    """
    stream = sys.stderr if stream is None else stream
    live = bool(getattr(stream, "isatty", lambda: False)())  # a log file gets the final line only
    if client is None:
        from dask.diagnostics import ProgressBar

        with ProgressBar(dt=interval, out=stream) if live else _final_line(stream):
            yield
        return
    counter = _TaskCounter()
    try:
        client.register_plugin(counter, name=_TaskCounter.name)
    except Exception as exc:  # a remote scheduler without romdask: no bar, same computation
        log.warning("no progress bar: the scheduler did not take romdask's plugin (%s)", exc)
        yield
        return
    stop = threading.Event()
    start = time.perf_counter()

    def poll():
        while live and not stop.wait(interval):
            with contextlib.suppress(Exception):
                _draw(*_counts(client), time.perf_counter() - start, stream)

    thread = threading.Thread(target=poll, name="romdask-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(Exception):
            _draw(*_counts(client), time.perf_counter() - start, stream)
            stream.write("\n")
            client.unregister_scheduler_plugin(_TaskCounter.name)
