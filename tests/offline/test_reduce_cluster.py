"""romdask.offline.reduce on a distributed cluster: independence of the number of subdomains,
of the scheduler (threads, 1 or 2 worker processes), and a worker killed in the middle of a run."""

from __future__ import annotations

import os
import signal
import threading

import distributed
import numpy as np
import pytest
from distributed.diagnostics.plugin import SchedulerPlugin

from romdask.hifi import solve
from romdask.materials import law_to_json
from romdask.offline.reduce import ReduceOptions, reduce
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_snapshots

FIELDS = ("displacement", "stress", "state")
TOL = 1e-5


class _Tee:
    """One solver run written into several stores (same frames in each)."""

    def __init__(self, writers):
        self.writers = writers

    def write(self, step, time, fields):
        for w in self.writers:
            w.write(step, time, {k: np.array(v, copy=True) for k, v in fields.items()})

    def close(self):
        return all([w.close() for w in self.writers])


def make_stores(paths_by_k):
    """The idiom of test_cli_reduce.make_store, with one store per number of subdomains."""
    problems = [plate_problem(n=3, n_cycles=0.5, amplitude=a) for a in (0.006, 0.004)]
    stores = {K: create_store(p, problems[0].mesh, n_subdomains=K) for K, p in paths_by_k.items()}
    for name, problem in zip(("a", "b"), problems):
        meta = {"loads": describe_loads(problem), "material": law_to_json(problem.material)}
        writers = [s.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta,
                            fields=FIELDS, allow_nan=("state",)) for s in stores.values()]
        solve(problem, writer=_Tee(writers), fields=FIELDS)
    return stores, problems[0].material


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    return make_stores({K: root / f"s{K}.zarr" for K in (1, 2, 4)})


def _cluster(n_workers):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None,
                                    # no dashboard, and the scheduler's HTTP server (health,
                                    # metrics) on a free port rather than 8787 (two clusters at once)
                                    scheduler_kwargs={"dashboard_address": ":0"})


@pytest.fixture(scope="module")
def cluster2():
    with _cluster(2) as cluster:
        yield cluster


def _reduced_forces(model, stress_at_points):
    """sum_k w_k E_k^T sigma_k per snapshot, and the no-cancellation scale sum_k |w_k E_k^T sigma_k|."""
    terms = np.einsum("k,kcn,skc->skn", model.weights, model.modes_strain, stress_at_points)
    return terms.sum(axis=1), np.linalg.norm(terms, axis=2).sum(axis=1)


def _positions(store, model):
    """Positions in the store's ip order of the model's global point ids."""
    ip = store.layout.ip_points
    order = np.argsort(ip)
    return order[np.searchsorted(ip, model.point_ids, sorter=order)]


def _assert_same(a, b, exact):
    check = np.testing.assert_array_equal if exact else (
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * np.abs(y).max()))
    np.testing.assert_array_equal(a.point_ids, b.point_ids)
    # ECM weights: bit-identical on any scheduler since the tasks take aligned inputs (issue 18
    # item 7, tests/reliability/test_deterministic_reduce.py)
    check(a.weights, b.weights)
    check(a.modes_strain, b.modes_strain)
    assert a.metadata["reduce"]["n_modes"] == b.metadata["reduce"]["n_modes"]


def test_same_model_for_1_2_4_subdomains(stores, cluster2):
    """Separate stores of the same runs with K = 1, 2, 4: same POD, ECM within tol in each, and
    the ECM reduced forces of the training snapshots match the full quadrature within 10 tol."""
    models, forces, tsqr = {}, {}, {}
    with distributed.Client(cluster2):
        for K, store in stores[0].items():
            law = stores[1]
            model = reduce(store.path, law, options=ReduceOptions(tol_ecm=TOL)).model
            full = reduce(store.path, law, options=ReduceOptions(ecm=False)).model
            report = model.metadata["reduce"]
            assert report["n_subdomains"] == K
            assert report["ecm_scope"] == ("global" if K == 1 else "subdomains")
            assert report["ecm_residual"] <= TOL and np.all(model.weights >= 0)
            assert len(report["points_per_subdomain"]) == K
            assert sum(report["points_per_subdomain"]) == report["ecm_points"] < report["n_points_full"]
            stress = open_snapshots(store.path).stress.values
            f_ecm, _ = _reduced_forces(model, stress[:, _positions(store, model)])
            f_full, scale = _reduced_forces(full, stress[:, _positions(store, full)])
            scale = np.maximum(scale, 1e-6 * scale.max())  # unloaded snapshots
            err = np.linalg.norm(f_ecm - f_full, axis=1) / scale
            assert err.max() <= 10 * TOL, err.max()
            models[K] = model
            tsqr[K] = np.asarray(reduce(store.path, law, options=ReduceOptions(ecm=False, pod_method="tsqr"))
                                 .report["singular_values"])
            forces[K] = (np.linalg.norm(f_full, axis=1), np.linalg.norm(f_ecm, axis=1), scale)
    ref = models[1].metadata["reduce"]
    s_ref = np.asarray(ref["singular_values"])
    for K, model in models.items():
        report = model.metadata["reduce"]
        assert report["n_modes"] == ref["n_modes"] == model.modes_strain.shape[2]
        assert report["n_points_full"] == ref["n_points_full"]
        s = np.asarray(report["singular_values"])
        assert s.shape == s_ref.shape
        # 1e-8 relative to s_0: the default Gram ("snapshots") POD's error on s_i is about
        # eps s_0^2 / s_i, so s_3 / s_0 ~ 2e-6 differs by ~1e-6 relative to itself across K
        np.testing.assert_allclose(s, s_ref, rtol=0, atol=1e-8 * s_ref[0])
        # the TSQR POD holds every kept singular value to 1e-8 relative to itself
        np.testing.assert_allclose(tsqr[K][: ref["n_modes"]], tsqr[1][: ref["n_modes"]], rtol=1e-8)
        np.testing.assert_allclose(s[: ref["n_modes"]], tsqr[1][: ref["n_modes"]], rtol=1e-5)
        # |reduced force| per snapshot is invariant to the modes' signs: same across K
        full_norm, ecm_norm, scale = forces[K]
        assert np.all(np.abs(full_norm - forces[1][0]) <= 10 * TOL * forces[1][2])
        assert np.all(np.abs(ecm_norm - forces[1][0]) <= 10 * TOL * forces[1][2])


def test_same_model_on_threads_and_on_1_or_2_workers(stores, cluster2):
    store, law = stores[0][2], stores[1]
    with pytest.raises(ValueError):  # no active Client: dask's threaded scheduler
        distributed.default_client()
    options = ReduceOptions(tol_ecm=TOL)
    threads = reduce(store.path, law, options=options).model
    with _cluster(1) as cluster1, distributed.Client(cluster1):
        one = reduce(store.path, law, options=options).model
    with distributed.Client(cluster2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        two = reduce(store.path, law, options=options).model
    # points, weights and mode strains bit-identical (same graph, same per-task numpy calls on
    # aligned inputs, same reduction tree)
    _assert_same(one, threads, exact=True)
    _assert_same(two, threads, exact=True)
    assert one.metadata["reduce"]["singular_values"] == threads.metadata["reduce"]["singular_values"]
    assert two.metadata["reduce"]["singular_values"] == threads.metadata["reduce"]["singular_values"]


class _KillOnce(SchedulerPlugin):
    """Scheduler plugin (the LocalCluster's scheduler runs in this process): SIGKILL the worker
    process a task is sent to, once ``after`` tasks are in memory, i.e. mid-computation and with
    results held by workers that must then be recomputed."""

    def __init__(self, scheduler, after):
        self.scheduler = scheduler
        self.after = after
        self.in_memory = 0
        self.killed = []

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory":
            self.in_memory += 1
        if finish != "processing" or self.killed or self.in_memory < self.after:
            return
        ws = self.scheduler.tasks[key].processing_on
        if ws is None or ws.pid in (None, os.getpid()):
            return
        held = sum(1 for ts in self.scheduler.tasks.values() if ws in (ts.who_has or ()))
        if held == 0:  # wait for a worker whose results are needed later
            return
        self.killed.append((ws.address, ws.pid, key, held))
        os.kill(ws.pid, signal.SIGKILL)


def test_worker_killed_mid_reduce_gives_the_same_model(stores):
    store, law = stores[0][4], stores[1]
    with _cluster(2) as cluster, distributed.Client(cluster) as client:
        reference = reduce(store.path, law, options=ReduceOptions(tol_ecm=TOL)).model
        landed = 0
        for attempt in range(3):
            client.wait_for_workers(2, timeout=60)
            plugin = _KillOnce(cluster.scheduler, after=3 + 2 * attempt)
            cluster.scheduler.add_plugin(plugin, name=f"kill-{attempt}")
            try:
                out = {}

                def run():
                    try:
                        out["model"] = reduce(store.path, law, options=ReduceOptions(tol_ecm=TOL)).model
                    except BaseException as exc:  # reported below
                        out["error"] = exc

                t = threading.Thread(target=run)
                t.start()
                t.join(120)
                assert not t.is_alive(), "reduce hung after the worker was killed"
            finally:
                cluster.scheduler.remove_plugin(name=f"kill-{attempt}")
            assert "model" in out, f"reduce failed after the worker was killed: {out.get('error')!r}"
            _assert_same(out["model"], reference, exact=True)
            if plugin.killed:
                landed += 1
                _, pid, _, held = plugin.killed[0]
                assert held > 0
                # the nanny restarts the killed worker: two workers again, a new process
                client.wait_for_workers(2, timeout=60)
                assert pid not in [ws.pid for ws in cluster.scheduler.workers.values()]
                break
        assert landed >= 1, "the kill never landed during reduce"
