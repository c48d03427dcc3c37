"""The named stages of romdask.offline.reduce: laziness, options, the law from the runs' metadata,
the sources of the cumulated plastic strain, and what a Reduction saves (full bases, mesh,
signature)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from romdask.hifi import solve
from romdask.hifi.builtin import SolverOptions
from romdask.materials import law_to_json
from romdask.offline import (
    Hyperreduction,
    ReduceOptions,
    Reduction,
    full_quadrature,
    hyperreduce,
    lift,
    pod,
    point_fields,
    reduce,
    training_data,
    training_law,
)
from romdask.online import ReducedModel, Scenario, open_full, read_full_mesh
from romdask.problem.patterns import describe_loads, problem_signature, run_metadata
from romdask.problems.plate import plate_problem
from romdask.store import create_store, open_snapshots

AMPLITUDES = {"a": 0.006, "b": 0.004}
#: how each store keeps the cumulated plastic strain p: the solver's state, a "p" field
#: (as CalculiX's PEEQ is read), or not at all (reduce then replays the law for p)
P_AS = ("state", "p", "none")


class _Tee:
    """One solver run written into several stores, p kept as each store wants it."""

    def __init__(self, writers):
        self.writers = writers

    def write(self, step, time, fields):
        for mode, writer in self.writers.items():
            out = {k: np.array(v, copy=True) for k, v in fields.items() if k in ("displacement", "stress")}
            if mode == "state":
                out["state"] = np.array(fields["state"], copy=True)
            elif mode == "p":
                out["p"] = np.array(fields["state"][:, :1], copy=True)
            writer.write(step, time, out)

    def close(self):
        return all([w.close() for w in self.writers.values()])


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Three stores of the same two runs (plate n=3, displacement loading, 2 subdomains)."""
    root = tmp_path_factory.mktemp("stages")
    problems = {name: plate_problem(amplitude=a, n=3, n_cycles=0.5) for name, a in AMPLITUDES.items()}
    mesh = problems["a"].mesh
    out = {mode: create_store(root / f"{mode}.zarr", mesh, n_subdomains=2) for mode in P_AS}
    for name, problem in problems.items():
        fields = {"state": ("displacement", "stress", "state"), "p": ("displacement", "stress", "p"),
                  "none": ("displacement", "stress")}
        writers = {mode: store.writer(name, mesh=problem.mesh, times=problem.times, fields=fields[mode],
                                      metadata=run_metadata(problem), allow_nan=("state",))
                   for mode, store in out.items()}
        solve(problem, writer=_Tee(writers), fields=("displacement", "stress", "state"),
              options=SolverOptions(rtol=1e-12))
    return out, problems


def test_options_are_validated():
    assert ReduceOptions() == ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5, product="l2", gappy_tol=1e-6, ecm=True,
                                            ecm_scope="auto", ecm_rows="summed", pod_method="snapshots")
    for bad, match in (({"tol_ecm": 0.0}, "tol_ecm > 0"), ({"product": "h1"}, "product must be"),
                       ({"ecm_scope": "all"}, "ecm_scope must be"), ({"pod_method": "svd"}, "pod_method must be"),
                       ({"gappy_tol": -1.0}, "gappy_tol >= 0")):
        with pytest.raises(ValueError, match=match):
            ReduceOptions(**bad)
    with pytest.raises(TypeError, match="ReduceOptions"):
        reduce("store.zarr", options={"tol_ecm": 1e-4})
    assert ReduceOptions().scope(1) == "global" and ReduceOptions().scope(4) == "subdomains"
    assert ReduceOptions(ecm_scope="global").scope(4) == "global"


def test_lazy_stages_never_compute(stores, raise_on_compute):
    """training_data (stresses present), lift, point_fields and hyperreduce build graphs only;
    the POD computes its Gram matrix (and only that) in between."""
    store = stores[0]["none"]
    with raise_on_compute():
        data = training_data(store.path)  # law from the runs' metadata
        lifting = lift(data)
    assert data.runs == ("a", "b") and data.lifting_names == ("top_displacement",)
    assert lifting.vectors.shape == (1, data.layout.mesh.n_dofs) and lifting.coefficients.shape == (
        data.snapshots.sizes["snapshot"], 1)
    basis = pod(lifting.displacement, product="l2", layout=data.store_path, tol=1e-6)
    with raise_on_compute():
        fields = point_fields(data, basis.modes, lifting)
        weights = np.ones(data.layout.n_points)
        lazy = hyperreduce(fields.stress, fields.mode_strain, fields.lifting_strain, weights, data.layout.ip_offsets)
    assert fields.p_source == "replay" and fields.p.shape == (data.snapshots.sizes["snapshot"], data.layout.n_points)
    assert fields.mode_strain.shape == (basis.n_modes, data.layout.n_points, 6)
    assert not isinstance(lazy, Hyperreduction) and isinstance(full_quadrature(weights), Hyperreduction)


def test_law_from_the_runs_metadata(stores, tmp_path):
    store, problems = stores[0]["state"], stores[1]
    law = problems["a"].material
    assert training_law(store.path) == law
    implicit, explicit = reduce(store.path).model, reduce(store.path, law).model
    np.testing.assert_array_equal(implicit.modes_strain, explicit.modes_strain)
    assert implicit.materials[0][0] == law
    # runs without the law, runs with different laws: say how to fix
    other = create_store(tmp_path / "s.zarr", problems["a"].mesh, n_subdomains=1)
    for name, problem, meta in (("x", problems["a"], {"loads": describe_loads(problems["a"])}),
                                ("y", problems["b"], run_metadata(problems["b"]))):
        solve(problem, writer=other.writer(name, mesh=problem.mesh, times=problem.times, metadata=meta))
    with pytest.raises(ValueError, match=r"runs \['x'\] carry no metadata\['material'\].*--law law.yaml"):
        reduce(other.path)
    assert training_law(other.path, runs=["y"]) == law
    stiffer = dataclasses.replace(law, young=2 * law.young)
    meta = {**run_metadata(problems["a"]), "material": law_to_json(stiffer)}
    solve(problems["a"], writer=other.writer("z", mesh=problems["a"].mesh, times=problems["a"].times, metadata=meta))
    with pytest.raises(ValueError, match="different laws.*reduce the runs of each law separately"):
        training_law(other.path, runs=["y", "z"])


def test_plastic_strain_from_state_p_field_or_replay(stores):
    """p is the store's state[..., 0], else its p field, else the law replayed (not written):
    the same basis either way, and a finite error indicator online."""
    out = stores[0]
    reductions = {mode: reduce(out[mode].path) for mode in P_AS}
    assert {m: r.report["p_source"] for m, r in reductions.items()} == {"state": "state", "p": "p", "none": "replay"}
    reference = reductions["state"].model
    np.testing.assert_array_equal(reductions["p"].model.gappy["p"], reference.gappy["p"])
    np.testing.assert_array_equal(reductions["p"].model.point_ids, reference.point_ids)
    replayed = reductions["none"].model
    assert replayed.gappy["p"].shape == reference.gappy["p"].shape
    assert "state" not in open_snapshots(out["none"].path)  # the lazy replay wrote nothing
    # the replay of the law reproduces the solver's p (same increments): same Gappy basis up to signs
    s_ref = np.array(reference.metadata["reduce"]["gappy_singular_values"]["p"])
    s_rep = np.array(replayed.metadata["reduce"]["gappy_singular_values"]["p"])
    np.testing.assert_allclose(s_rep[: s_ref.size], s_ref, rtol=1e-6, atol=1e-9 * s_ref[0])
    scenario = Scenario.from_problem(plate_problem(amplitude=0.005, n=3, n_cycles=0.5))
    indicator = replayed.solve(scenario).indicator
    assert np.all(np.isfinite(indicator)) and indicator.max() > 0


def test_reduction_saves_the_full_bases_the_mesh_and_the_signature(stores, tmp_path):
    store, problems = stores[0]["state"], stores[1]
    reduction = reduce(store.path, options=ReduceOptions(tol_ecm=1e-4))
    assert isinstance(reduction, Reduction)
    # the report is the model's plus this run's timings, which are not saved (same bytes per run)
    assert reduction.report == {**reduction.model.metadata["reduce"], **reduction.timings}
    assert "ecm_time" in reduction.timings and "ecm_time" not in reduction.model.metadata["reduce"]
    # the signature of the store's patterns and mesh is the problem's (any numbering)
    assert reduction.report["signature"] == problem_signature(problems["a"])
    path = reduction.save(tmp_path / "m.zarr")
    with pytest.raises(ValueError, match="exists"):
        reduction.save(path)
    model = ReducedModel.open(path)
    assert model.metadata["reduce"]["signature"] == reduction.report["signature"]
    mesh, layout = read_full_mesh(path), store.layout
    np.testing.assert_array_equal(mesh.nodes, layout.mesh.nodes)
    np.testing.assert_array_equal(mesh.node_ids, layout.mesh.node_ids)
    assert [b.type for b in mesh.blocks] == [b.type for b in layout.mesh.blocks]
    for got, want in zip(mesh.blocks, layout.mesh.blocks):
        np.testing.assert_array_equal(got.connectivity, want.connectivity)
        np.testing.assert_array_equal(got.ids, want.ids)
    full = open_full(path)
    assert full.mesh.n_nodes == layout.mesh.n_nodes and full.modes.shape[0] == 3 * full.mesh.n_nodes
    np.testing.assert_array_equal(full.ip_element, layout.ip_element[layout.ip_points])
    np.testing.assert_array_equal(full.ip_local_point, layout.ip_local[layout.ip_points])
    # an exporter's view: element id and local point of every row of the full dual bases
    element_ids = full.mesh.element_ids[full.ip_element]
    assert element_ids.shape == (layout.n_points,) and full.gappy["p"].shape[0] == layout.n_points
    # a model saved without the mesh (older models) still opens, without the extras
    old = reduction.model.save(tmp_path / "old.zarr", full={"modes": reduction.full["modes"]})
    assert ReducedModel.open(old).n_modes == model.n_modes
    assert open_full(old).mesh is None and open_full(old).ip_element is None
    with pytest.raises(ValueError, match="holds no mesh.*save"):
        read_full_mesh(old)
    with pytest.raises(ValueError, match="mesh has"):
        reduction.model.save(tmp_path / "bad.zarr", full={"modes": reduction.full["modes"]},
                             mesh=plate_problem(n=2).mesh)


def test_the_stress_snapshots_stay_on_the_workers(stores, monkeypatch):
    """reduce gathers no array of the snapshots' size (their Gram matrices, the Gappy bases and the
    values at the reduced points travel instead), and its Gappy bases are the optimal ones: the
    snapshots' projection error onto them is the dense SVD's discarded energy (Eckart-Young)."""
    import dask

    import romdask.offline.stages as stages

    store = stores[0]["state"]
    ds = open_snapshots(store.path)
    n_snap, n_points = ds.stress.shape[:2]
    gathered = []
    compute = dask.compute

    def spy(*args, **kwargs):
        out = compute(*args, **kwargs)
        stack = [out]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack += item.values()
            elif isinstance(item, (list, tuple)):
                stack += item
            elif isinstance(item, np.ndarray):
                gathered.append(item.shape)
        return out

    monkeypatch.setattr(stages.dask, "compute", spy)
    reduction = reduce(store.path, options=ReduceOptions(gappy_tol=1e-6))
    assert gathered and not [s for s in gathered if s and s[0] == n_snap and int(np.prod(s)) >= n_snap * n_points]
    stress = ds.stress.values.reshape(n_snap, -1)
    full = reduction.full
    for tol in (1e-6, 1e-10):  # the Gram route; below its accuracy floor, the TSQR route
        basis = stages.dual_bases(ds.stress.data, None, tol=tol).bases["stress"] if tol < 1e-6 else full["gappy_stress"]
        s = np.linalg.svd(stress, compute_uv=False)
        m = int(np.count_nonzero(s / s[0] > tol))
        assert basis.shape == (6 * n_points, m)
        np.testing.assert_allclose(basis.T @ basis, np.eye(m), atol=1e-12)
        residual = np.linalg.norm(stress.T - basis @ (basis.T @ stress.T))
        assert residual == pytest.approx(np.sqrt(np.sum(s[m:] ** 2)), rel=1e-6)


def test_orthonormal_in_place_as_a_householder_qr():
    """CholeskyQR2 in place: the Q of the thin QR with diag(R) > 0 (to round-off), also for a
    combination of condition 1e6; a rank-deficient one falls back to the Householder QR."""
    from romdask.offline.stages import _orthonormal

    rng = np.random.default_rng(5)
    for scales in (np.ones(9), np.logspace(0, -6, 9)):
        combination = rng.normal(size=(9, 5000)) * scales[:, None]
        q, r = np.linalg.qr(combination.T)
        expected = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        work = combination.copy()
        basis = _orthonormal(work)
        assert basis.shape == (5000, 9) and np.shares_memory(basis, work)
        np.testing.assert_allclose(basis, expected, rtol=0, atol=1e-13)
        np.testing.assert_allclose(basis.T @ basis, np.eye(9), rtol=0, atol=1e-14)
    for deficient in (np.vstack([combination[:3], combination[:1]]),  # exactly: Cholesky fails
                      np.vstack([combination[:3], combination[:1] + 1e-9 * combination[3:4]])):  # nearly
        basis = _orthonormal(deficient.copy())
        assert basis.shape == (5000, 4)
        np.testing.assert_allclose(basis.T @ basis, np.eye(4), rtol=0, atol=1e-12)
    assert _orthonormal(np.zeros((0, 7))).shape == (7, 0)


@pytest.mark.parametrize("scheduler", ["threads", "distributed"])
def test_blocks_joined_as_the_concatenation(scheduler):
    """_compute_joined: blocks along one chunked axis joined into one aligned array equal to the
    dask result, computed in one graph with other collections (and on a client fetched one block
    at a time, each future released); an array chunked along two axes is computed whole."""
    import dask
    import dask.array as da
    import distributed

    from romdask.offline.stages import _Blocks, _compute_joined

    x = da.from_array(np.arange(4 * 30 * 6, dtype=float).reshape(4, 30, 6), chunks=(4, (7, 13, 10), 6))
    y = da.from_array(np.arange(40.0).reshape(8, 5), chunks=(4, 3))
    joined = {"x": _Blocks.of(x), "xt": _Blocks.of(x.transpose(1, 2, 0)), "y": _Blocks.of(y)}
    assert joined["x"].axis == 1 and joined["xt"].axis == 0 and joined["y"].axis == -1
    lazy = (x.sum(), dask.delayed(lambda: "last")())

    def check():
        arrays, rest = _compute_joined(joined, *lazy)
        for key, ref in (("x", x), ("xt", x.transpose(1, 2, 0)), ("y", y)):
            got = arrays[key]
            assert got.flags.c_contiguous and got.flags.aligned
            np.testing.assert_array_equal(got, ref.compute(scheduler="sync"))
        assert rest == [x.sum().compute(scheduler="sync"), "last"]

    if scheduler == "threads":
        check()
        return
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        submitted = []
        compute = client.compute
        client.compute = lambda items: submitted.append(len(items)) or compute(items)
        check()
        assert submitted == [(3 + 3 + 1) + 2]  # one graph: the blocks of x, x^T and y, and lazy
        assert not client.futures  # every block's future released


def test_qdeim_blocks_split_the_subdomains_to_a_bounded_size():
    from romdask.offline.stages import QDEIM_BLOCK_BYTES, _qdeim_blocks

    chunks, m = (10, 700_000, 5, 300_000), 9
    bounds = _qdeim_blocks(chunks, m)
    assert bounds[0] == 0 and bounds[-1] == sum(chunks) and np.all(np.diff(bounds) > 0)
    assert set(np.cumsum((0,) + chunks).tolist()) <= set(bounds.tolist())  # subdomain bounds kept
    assert np.diff(bounds).max() * 8 * m <= QDEIM_BLOCK_BYTES
    np.testing.assert_array_equal(_qdeim_blocks((40, 60), 3), [0, 40, 100])
