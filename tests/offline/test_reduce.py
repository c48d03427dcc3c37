"""The offline pipeline romdask.offline.reduce: exactness with all modes and the full quadrature,
ECM accuracy, Q-DEIM points, save/open, independence of the number of subdomains."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
from romdask.offline import inner
from romdask.offline.gappy import qdeim_points
from romdask.offline.reduce import ReduceOptions, reduce
from romdask.online.model import ReducedModel
from romdask.problem.patterns import describe_loads, loads_from_description
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_snapshots

FIELDS = ("displacement", "stress", "state")
AMPLITUDES = {"displacement": (0.006, 0.004), "pressure": (120.0, 80.0)}


def _write_store(path, loading, n_subdomains):
    mesh = plate_problem(n=3, n_cycles=0.5).mesh
    store = create_store(path, mesh, n_subdomains=n_subdomains)
    for name, amplitude in zip(("a", "b"), AMPLITUDES[loading]):
        problem = plate_problem(amplitude=amplitude, n=3, n_cycles=0.5, loading=loading)
        writer = store.writer(name, mesh=problem.mesh, times=problem.times, fields=FIELDS,
                              metadata={"loads": describe_loads(problem)}, allow_nan=("state",))
        # tight Newton tolerance: the HF residual on free dofs is then round-off
        solve(problem, writer=writer, fields=FIELDS, options=SolverOptions(rtol=1e-12))
    return store, problem.material


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    out = {}
    for loading, K in (("displacement", 1), ("displacement", 2), ("pressure", 2)):
        out[loading, K] = _write_store(tmp_path_factory.mktemp(f"{loading}{K}") / "s.zarr", loading, K)
    return out


def _reduced_forces(model, stress_at_points):
    """sum_k w_k E_k^T sigma_k per snapshot, and the no-cancellation scale sum_k |w_k E_k^T sigma_k|."""
    terms = np.einsum("k,kcn,skc->skn", model.weights, model.modes_strain, stress_at_points)
    return terms.sum(axis=1), np.linalg.norm(terms, axis=2).sum(axis=1)


def _coefficients(store, names, snap_run, snap_time, which):
    """value * amplitude(t) per snapshot for every Dirichlet (which=0) or load (which=1) pattern."""
    runs = store.runs(complete_only=True)
    rows = []
    for r, t in zip(snap_run, snap_time):
        patterns = loads_from_description(store.layout.mesh, runs[r]["metadata"]["loads"])[which]
        rows.append([p.value * (1.0 if p.amplitude is None else float(p.amplitude(t)))
                     for p in patterns if p.name in names])
    return np.array(rows).reshape(len(snap_run), len(names))


@pytest.mark.parametrize("case", [("displacement", 2), ("pressure", 2)])
def test_all_modes_and_full_quadrature_are_exact(stores, case):
    store, law = stores[case]
    reduction = reduce(store.path, law, options=ReduceOptions(tol_pod=1e-10, ecm=False, pod_method="tsqr"))
    model, modes = reduction.model, reduction.full["modes"].T
    layout = store.layout
    ds = open_snapshots(store.path)
    U = ds.displacement.values
    stress = ds.stress.values
    n_modes = model.modes_strain.shape[2]
    assert model.weights.size == layout.n_points and np.all(model.weights > 0)
    assert model.metadata["reduce"]["n_modes"] == n_modes == modes.shape[0]

    # lifting: u - sum a_i g_i, with g_i the unit indicator of pattern i's dofs
    snap_run, snap_time = ds.run.values.astype(str), ds.time.values
    lifting_names = list(model.lifting["lifting_names"]) if model.lifting else []
    lift = np.zeros_like(U)
    dirichlet = {bc.name: bc for bc in loads_from_description(
        layout.mesh, store.runs()["a"]["metadata"]["loads"])[0]}
    if lifting_names:
        A = _coefficients(store, lifting_names, snap_run, snap_time, 0)
        for i, name in enumerate(lifting_names):
            lift[:, dirichlet[name].dofs] += A[:, [i]]
    constrained = np.concatenate([bc.dofs for bc in dirichlet.values()])
    assert np.all(modes[:, constrained] == 0.0)  # inherited homogeneous conditions
    if case[0] == "displacement":
        assert lifting_names == ["top_displacement"] and model.load_vectors.shape == (0, n_modes)
        assert np.all(model.lifting["lifting_load"] == 0.0)
    else:
        assert not lifting_names and model.load_names == ("top_traction",)

    # gamma: M-orthogonal projection of the lifted snapshots; reconstruction to round-off
    # (solved with the modes' Gram: TSQR modes are M-orthonormal only to ~eps s_0 / s_min ~ 2e-8)
    chunks = ds.displacement.data.chunks[1]
    Psi = da.from_array(modes, chunks=(modes.shape[0], chunks))
    gram = inner(Psi, Psi, "l2", layout=layout).compute()
    gamma = np.linalg.solve(gram, inner(Psi, da.from_array(U - lift, chunks=(U.shape[0], chunks)), "l2",
                                        layout=layout).compute())
    error = np.linalg.norm(U - lift - gamma.T @ modes, axis=1)
    assert np.all(error <= 1e-11 * np.linalg.norm(U, axis=1).max())

    # reduced equilibrium of every training snapshot with the full quadrature
    positions = np.searchsorted(layout.ip_points, model.point_ids, sorter=np.argsort(layout.ip_points))
    positions = np.argsort(layout.ip_points)[positions]
    assert np.array_equal(layout.ip_points[positions], model.point_ids)
    f_int, scale = _reduced_forces(model, stress[:, positions])
    f_ext = np.zeros_like(f_int)
    if model.load_names:
        f_ext = _coefficients(store, list(model.load_names), snap_run, snap_time, 1) @ model.load_vectors
        assert np.abs(f_ext).max() > 1e-3 * scale.max()  # a real external load
    residual = np.linalg.norm(f_int - f_ext, axis=1)
    assert scale.max() > 0
    bound = np.maximum(np.linalg.norm(f_ext, axis=1), scale)
    bound = np.maximum(bound, 1e-6 * bound.max())  # unloaded snapshots (t = 0 and the end)
    assert np.all(residual <= 1e-8 * bound), (residual / np.maximum(bound, 1e-300)).max()


@pytest.mark.parametrize("K", [1, 2])
def test_ecm_model(stores, K, tmp_path):
    store, law = stores["displacement", K]
    tol = 1e-5
    model = reduce(store.path, law, options=ReduceOptions(tol_ecm=tol)).model
    full = reduce(store.path, law, options=ReduceOptions(ecm=False)).model
    report = model.metadata["reduce"]
    assert report["ecm_residual"] <= tol and np.all(model.weights >= 0)
    assert sum(report["points_per_subdomain"]) == report["ecm_points"] < store.layout.n_points / 2
    # reduced internal forces of the training snapshots: ECM vs full quadrature
    ds = open_snapshots(store.path)
    stress = ds.stress.values
    order = np.argsort(store.layout.ip_points)
    pos = lambda m: order[np.searchsorted(store.layout.ip_points, m.point_ids, sorter=order)]  # noqa: E731
    f_ecm, _ = _reduced_forces(model, stress[:, pos(model)])
    f_full, scale = _reduced_forces(full, stress[:, pos(full)])
    scale = np.maximum(scale, 1e-6 * scale.max())  # unloaded snapshots (t = 0 and the end)
    assert np.all(np.linalg.norm(f_ecm - f_full, axis=1) <= 10 * tol * scale)
    # Q-DEIM points of the stress and p bases are reduced points; the added ones weigh 0
    s = stress.reshape(stress.shape[0], -1)
    _, sv, vt = np.linalg.svd(s, full_matrices=False)
    basis = vt[: report["gappy_ranks"]["stress"]].T
    assert np.isin(store.layout.ip_points[qdeim_points(basis, 6)], model.point_ids).all()
    assert np.count_nonzero(model.weights == 0) == report["qdeim_points_added"]
    assert set(model.gappy) == {"stress", "p"}
    assert model.gappy["stress"].shape == (6 * model.weights.size, report["gappy_ranks"]["stress"])
    # save / open bit-exact
    path = model.save(tmp_path / "model.zarr")
    back = ReducedModel.open(path)
    for name in ("modes_strain", "weights", "point_ids", "load_vectors", "initial_state"):
        assert np.array_equal(getattr(back, name), getattr(model, name)), name
    assert np.array_equal(back.lifting["lifting_modes_strain"], model.lifting["lifting_modes_strain"])
    for q in model.gappy:
        assert np.array_equal(back.gappy[q], model.gappy[q])
    assert back.metadata["reduce"]["singular_values"] == report["singular_values"]


def test_same_model_for_one_and_two_subdomains(stores):
    reports = [reduce(stores["displacement", K][0].path, stores["displacement", K][1]).report for K in (1, 2)]
    s1, s2 = (np.array(r["singular_values"]) for r in reports)
    assert reports[0]["n_modes"] == reports[1]["n_modes"] >= 2
    k = reports[0]["n_modes"]
    np.testing.assert_allclose(s1[:k], s2[:k], rtol=0, atol=1e-8 * s1[0])  # Gram accuracy: eps s_0
    assert all(r["ecm_residual"] <= r["tol_ecm"] for r in reports)


def test_runs_need_load_descriptions(tmp_path):
    problem = plate_problem(n=3, n_cycles=0.5, increments_per_cycle=4)
    store = create_store(tmp_path / "s.zarr", problem.mesh, n_subdomains=1)
    solve(problem, writer=store.writer("bare", mesh=problem.mesh, times=problem.times), fields=("displacement",))
    with pytest.raises(ValueError, match=r"run .bare. has no load description: ingest it with --loads.*run_metadata\(problem\)"):
        reduce(store.path, problem.material)


def test_missing_stresses_are_replayed(tmp_path):
    problem = plate_problem(n=3, n_cycles=0.5, increments_per_cycle=8)
    store = create_store(tmp_path / "s.zarr", problem.mesh, n_subdomains=2)
    writer = store.writer("bare", mesh=problem.mesh, times=problem.times, metadata={"loads": describe_loads(problem)})
    solve(problem, writer=writer, fields=("displacement",))
    model = reduce(store.path, problem.material, options=ReduceOptions(ecm=False)).model
    assert model.metadata["reduce"]["stress_replayed"] is True
    assert model.metadata["reduce"]["p_source"] == "state"  # written by the replay
    ds = open_snapshots(store.path)
    assert "stress" in ds and "state" in ds and set(model.gappy) == {"stress", "p"}


def test_ecm_integrates_the_reactions_of_the_training_snapshots(stores):
    """The ECM integrands include the lifting strains: the reduced reaction
    ``sum_k w_k L_k^T sigma_k`` of every training snapshot matches the full-quadrature one
    ``g^T f_int`` (the HF reaction) within the ECM tolerance."""
    from romdask.fem.quadrature import internal_force, quadrature

    store, law = stores["displacement", 2]
    tol = 1e-5
    reduction = reduce(store.path, law, options=ReduceOptions(tol_ecm=tol))
    model, full = reduction.model, reduction.full
    layout = store.layout
    stress = open_snapshots(store.path).stress.values
    quad = quadrature(layout.mesh)
    g = full["lifting"]
    assert g.shape == (3 * layout.mesh.n_nodes, 1) and set(np.unique(g)) == {0.0, 1.0}
    hf = []
    for s in stress:
        field = np.zeros((layout.n_points, 6))
        field[layout.ip_points] = s
        hf.append(g.T @ internal_force(quad, field))
    hf = np.array(hf)
    order = np.argsort(layout.ip_points)
    pos = order[np.searchsorted(layout.ip_points, model.point_ids, sorter=order)]
    L = model.lifting["lifting_modes_strain"]
    reduced = np.einsum("k,kci,skc->si", model.weights, L, stress[:, pos])
    assert np.abs(hf).max() > 0
    assert np.abs(reduced - hf).max() <= 10 * tol * np.abs(hf).max()
    assert "1 liftings" in model.metadata["reduce"]["ecm_integrand_fields"]


def test_full_bases_for_reconstruction(stores, tmp_path):
    store, law = stores["displacement", 2]
    reduction = reduce(store.path, law)
    model, full = reduction.model, reduction.full
    assert reduction.report == {**model.metadata["reduce"], **reduction.timings}
    n_points = store.layout.n_points
    assert full["modes"].shape == (store.layout.mesh.n_dofs, model.n_modes)
    assert full["gappy_stress"].shape == (6 * n_points, model.gappy["stress"].shape[1])
    assert full["gappy_p"].shape == (n_points, model.gappy["p"].shape[1])
    # the model's Gappy rows are the full basis rows of its reduced points
    order = np.argsort(store.layout.ip_points)
    pos = order[np.searchsorted(store.layout.ip_points, model.point_ids, sorter=order)]
    assert np.array_equal(model.gappy["p"], full["gappy_p"][pos])
    assert np.array_equal(model.gappy["stress"], full["gappy_stress"].reshape(n_points, 6, -1)[pos].reshape(6 * pos.size, -1))
    # the ip layout of the positions: element and local point of each row
    layout = store.layout
    assert np.array_equal(full["ip_element"], layout.ip_element[layout.ip_points])
    assert np.array_equal(full["ip_local_point"], layout.ip_local[layout.ip_points])


# ---- the ECM rows: summed integrands, compression, lazy blocks ----------------------------------


def _snapshot_rows(stress, fields, n_modes, weights):
    """The uncompressed ECM rows ``(s, j)``: ``sigma_s . eps(g_j)`` with the lifting fields
    scaled so that their component-wise integrals have the norm of an average mode's."""
    b = np.einsum("skc,jkc,k->sjc", stress, fields, weights)
    scales = np.ones(fields.shape[0])
    mode_norm = np.linalg.norm(b[:, :n_modes]) / np.sqrt(n_modes)
    scales[n_modes:] = mode_norm / np.linalg.norm(b[:, n_modes:], axis=(0, 2))
    return np.einsum("skc,jkc->sjk", stress, fields * scales[:, None, None]).reshape(-1, stress.shape[1]), scales


@pytest.mark.parametrize("rows", ["summed", "component"])
def test_compressed_ecm_rows_are_a_rotation_of_the_snapshot_rows(stores, rows):
    """Without truncation the compressed blocks are Q^T J for an orthogonal Q (same Gram matrix
    J^T J, so the same residual norms and the same ECM); moments summed over point blocks."""
    from romdask.offline.hyperreduction import integrand_block, integrand_moments, integrand_transform

    store, _ = stores["displacement", 2]
    stress = open_snapshots(store.path).stress.values
    n_points = stress.shape[1]
    fields = np.random.default_rng(0).standard_normal((4, n_points, 6)) * 1e-3
    fields[3] *= 50.0  # a "lifting" of another magnitude: rescaled
    weights = np.random.default_rng(1).uniform(0.5, 1.5, n_points)
    cuts = [slice(0, n_points // 3), slice(n_points // 3, n_points)]
    moments = [integrand_moments(stress[:, c], fields[:, c], weights[c]) for c in cuts]
    transform = integrand_transform(moments, 3, rows, 0.0)
    J = np.hstack([integrand_block(stress[:, c], fields[:, c], transform) for c in cuts])
    assert J.shape == (transform["n_rows"], n_points)
    reference, scales = _snapshot_rows(stress, fields, 3, weights)
    np.testing.assert_allclose(transform["scales"], scales, rtol=1e-10)
    if rows == "component":  # one row per Voigt component: (s, j, c)
        reference = np.einsum("skc,jkc->sjck", stress, fields * scales[:, None, None]).reshape(-1, n_points)
    gram, gram_ref = J.T @ J, reference.T @ reference
    assert np.abs(gram - gram_ref).max() <= 1e-10 * np.abs(gram_ref).max()
    # truncation drops rows only
    fewer = integrand_transform(moments, 3, rows, 1e-4)
    assert fewer["n_rows"] < transform["n_rows"] and fewer["n_rows"] % 4 == 0


@pytest.mark.parametrize("scope, rows",
                         [("subdomains", "summed"), ("global", "summed"), ("subdomains", "component")])
def test_ecm_residual_on_the_uncompressed_rows(stores, scope, rows):
    """The model's points and weights integrate the uncompressed rows (every snapshot x every
    mode and lifting, built here from the full modes) within tol_ecm: the compression of the
    rows costs nothing measurable (``1e-2 tol_ecm`` of the stress content is dropped)."""
    from romdask.fem.quadrature import quadrature, strain

    store, law = stores["displacement", 2]
    tol = 1e-4
    reduction = reduce(store.path, law, options=ReduceOptions(tol_ecm=tol, ecm_scope=scope, ecm_rows=rows))
    model, full, report = reduction.model, reduction.full, reduction.report
    assert report["ecm_scope"] == scope and report["ecm_residual"] <= tol
    assert report["ecm_rows"].startswith(rows)
    layout = store.layout
    quad = quadrature(layout.mesh)
    vectors = np.hstack([full["modes"], full["lifting"]])
    fields = np.stack([strain(quad, v)[layout.ip_points] for v in vectors.T])
    w = quad.weights[layout.ip_points]
    stress = open_snapshots(store.path).stress.values
    J, scales = _snapshot_rows(stress, fields, full["modes"].shape[1], w)
    if rows == "component":
        J = np.einsum("skc,jkc->sjck", stress, fields * scales[:, None, None]).reshape(-1, w.size)
    order = np.argsort(layout.ip_points)
    pos = order[np.searchsorted(layout.ip_points, model.point_ids, sorter=order)]
    b = J @ w
    residual = np.linalg.norm(J[:, pos] @ model.weights - b) / np.linalg.norm(b)
    assert residual <= tol
    assert residual == pytest.approx(report["ecm_residual"], rel=1e-2, abs=1e-3 * tol)
    # the rows are fewer than the snapshot rows, and far fewer points than the full quadrature
    assert int(report["ecm_rows"].split(" x ")[1]) < J.shape[0]
    assert report["ecm_points"] < layout.n_points / 4
    with pytest.raises(ValueError, match="ecm_rows must be"):
        ReduceOptions(ecm_rows="voigt")


def test_ecm_graph_builds_the_integrands_on_the_workers(stores, raise_on_compute):
    """The ECM stage is lazy, reads the stress and strain blocks itself (no numpy J inside, the
    graph is far smaller than J) and computes to the same points as the eager path; warm-started
    from its own points it meets the tolerance again."""
    import cloudpickle
    import dask

    from romdask.fem.quadrature import quadrature
    from romdask.offline.ecm import ecm_subdomains
    from romdask.offline.hyperreduction import (Hyperreduction, hyperreduce, integrand_block, integrand_moments,
                                                integrand_transform)
    from romdask.offline.replay import strains

    store, _ = stores["displacement", 2]
    layout = store.layout
    ds = open_snapshots(store.path)
    fields = strains(ds.displacement.data[5:9], layout)  # any lazy fields: 3 "modes", 1 "lifting"
    w = quadrature(layout.mesh).weights[layout.ip_points]
    with raise_on_compute():
        graph = hyperreduce(ds.stress.data, fields[:3], fields[3:], w, layout.ip_offsets, tol=1e-5)
    n_rows = ds.stress.shape[0] * 4
    J_bytes = 8 * n_rows * layout.n_points
    graph_bytes = len(cloudpickle.dumps(dict(graph.__dask_graph__())))
    assert graph_bytes < J_bytes / 4, (graph_bytes, J_bytes)
    result = graph.compute(scheduler="sync")
    assert isinstance(result, Hyperreduction) and result.report["ecm_scope"] == "subdomains"
    assert result.report["ecm_integrand_fields"] == "3 modes + 1 liftings"
    assert sum(result.report["points_per_subdomain"]) == result.points.size
    # eager reference on the same blocks
    stress, F = ds.stress.values, fields.compute()
    cuts = [slice(int(a), int(c)) for a, c in zip(layout.ip_offsets[:-1], layout.ip_offsets[1:])]
    with dask.config.set(scheduler="sync"):
        moments = [integrand_moments(stress[:, c], F[:, c], w[c]) for c in cuts]
        t = integrand_transform(moments, 3, "summed", 1e-7)
        eager = ecm_subdomains([integrand_block(stress[:, c], F[:, c], t) for c in cuts], [w[c] for c in cuts],
                               tol=1e-5)
    np.testing.assert_array_equal(result.points, eager.points)
    np.testing.assert_allclose(result.weights, eager.weights, rtol=1e-8)
    assert result.report["ecm_residual"] <= 1e-5
    # warm start (the enrichment loop): the previous points are offered first, in both scopes
    for scope in ("subdomains", "global"):
        with raise_on_compute():
            warm = hyperreduce(ds.stress.data, fields[:3], fields[3:], w, layout.ip_offsets, tol=1e-5, scope=scope,
                               initial=result.points)
        warm = warm.compute(scheduler="sync")
        assert warm.report["ecm_residual"] <= 1e-5
        assert np.isin(warm.points, result.points).mean() > 0.5, scope
    with pytest.raises(ValueError, match="scope must be"):
        hyperreduce(ds.stress.data, fields[:3], None, w, layout.ip_offsets, scope="auto")
