"""Local reduced models (romdask.offline.local, issue 16): the run dissimilarity, PAM k-medoids,
the a-priori criterion and reduce_local, on runs of the plate with two traction patterns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from romdask.demo import FIELDS
from romdask.fem.quadrature import mass_matrix
from romdask.hifi.builtin import solve
from romdask.offline import local as local_module
from romdask.offline import reduce_local
from romdask.offline.local import (
    AUTO_GAIN,
    AUTO_SEPARATION,
    choose_clusters,
    cluster_criterion,
    dissimilarity,
    dissimilarity_from_gram,
    kmedoids,
)
from romdask.offline.reduce import reduce
from romdask.offline.training import training_data
from romdask.problem.patterns import run_metadata
from romdask.problems import plate_traction_problem
from romdask.store import create_store, open_snapshots

TOL = 1e-6  # the POD truncation (ReduceOptions.tol_pod's default), singular values s_i / s_0 > TOL
#: two planted families (tension along y on the top face, along x on the right face): plastic at the hole
TOP = {"t1": (150.0, 0.0), "t2": (190.0, 0.0)}
RIGHT = {"r1": (0.0, 150.0), "r2": (0.0, 190.0)}
#: elastic runs of the top family: all proportional to one displacement field (rank 1)
ELASTIC = {"e1": (20.0, 0.0), "e2": (30.0, 0.0), "e3": (45.0, 0.0), "e4": (60.0, 0.0)}
#: t1 written again under another name: its dissimilarity to t1 is that of t1 with itself
RUNS = {**TOP, **RIGHT, "t1_again": TOP["t1"], **ELASTIC}
FAMILIES = {frozenset(TOP), frozenset(RIGHT)}


def _problem(top, right):
    return plate_traction_problem(top, right, n=4, increments_per_cycle=20)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store of every run of RUNS in 3 subdomains (the Gram matrix is a sum of 3 blocks)."""
    path = tmp_path_factory.mktemp("local") / "s.zarr"
    s = create_store(path, _problem(*TOP["t1"]).mesh, n_subdomains=3)
    for name, loads in RUNS.items():
        p = _problem(*loads)
        writer = s.writer(name, mesh=p.mesh, times=p.times, fields=FIELDS, solver="romdask",
                          metadata=run_metadata(p), allow_nan=("state",))
        solve(p, writer=writer, fields=FIELDS)
    return s


@pytest.fixture(scope="module")
def dis(store):
    return dissimilarity(store.path)


@pytest.fixture(scope="module")
def local(store):
    return reduce_local(store.path, runs=[*TOP, *RIGHT])


def _index(dis, name):
    return dis.runs.index(name)


def _discarded_fraction(G, tol):
    """The energy share of the eigenvalues of a Gram block that a truncation at ``tol`` drops."""
    lam = np.linalg.eigvalsh(G)[::-1]
    return lam[lam <= tol * tol * lam[0]].sum() / lam.sum()


# ---- the dissimilarity ----------------------------------------------------------------------------


def test_matrix_symmetric_in_unit_interval(dis):
    assert dis.runs == tuple(sorted(RUNS))
    assert np.array_equal(dis.matrix, dis.matrix.T)
    assert np.array_equal(dis.matrix, np.maximum(dis.directed, dis.directed.T))
    assert np.all(dis.directed >= 0.0) and np.all(dis.directed <= 1.0)
    # the families are far apart: a top run's basis misses most of a right run
    i, j = _index(dis, "t1"), _index(dis, "r1")
    assert dis.matrix[i, j] > 0.3


def test_run_with_itself_is_the_discarded_energy(dis):
    """d(i, i)^2 = the energy fraction the truncation drops: sum of the eigenvalues lambda_k <= tol^2
    lambda_0 over sum of all; each is <= tol^2 lambda_0, so d(i, i) <= sqrt(n_snap) tol. The cancellation
    in 1 - captured / energy adds ~ n_snap eps to d^2, i.e. ~ 1e-7 to d."""
    n_snap = np.bincount(dis.snapshot_run)
    bound = np.sqrt(n_snap) * TOL + 1e-7
    assert np.all(np.diag(dis.matrix) <= bound)
    i, j = _index(dis, "t1"), _index(dis, "t1_again")
    assert dis.matrix[i, j] <= bound[i] and dis.matrix[j, i] <= bound[i]
    assert dis.ranks[i] == dis.ranks[j] > 1  # plastic: several modes
    # a coarse truncation discards a measurable share, and d^2 is exactly it (not d, not 1 - d)
    _, directed, ranks = dissimilarity_from_gram(dis.gram, dis.snapshot_run, 1e-2)
    for r in range(len(dis.runs)):
        rows = np.flatnonzero(dis.snapshot_run == r)
        share = _discarded_fraction(dis.gram[np.ix_(rows, rows)], 1e-2)
        assert directed[r, r] ** 2 == pytest.approx(share, abs=1e-12)
    assert directed[i, j] ** 2 == pytest.approx(directed[i, i] ** 2, abs=1e-12) and directed[i, i] > 1e-4
    assert np.all(ranks <= dis.ranks)


def test_directed_is_zero_when_the_basis_contains_the_run(dis):
    e1, e4, t2 = (_index(dis, n) for n in ("e1", "e4", "t2"))
    # elastic runs of one pattern: every snapshot is a multiple of one field, the spans are equal
    assert dis.ranks[e1] == dis.ranks[e4] == 1
    assert dis.directed[e4, e1] <= 1e-7 and dis.directed[e1, e4] <= 1e-7
    # t2's first increments are elastic: its basis holds e1's field up to its truncation (a small
    # snapshot of t2 may lie a few TOL outside the truncated basis); e1's basis misses t2's plasticity
    assert dis.directed[t2, e1] <= 10 * TOL
    assert dis.directed[e1, t2] > 0.05
    assert dis.matrix[e1, t2] == dis.directed[e1, t2]


@pytest.mark.parametrize("product", ["l2", None])
def test_subdomain_sum_equals_the_gathered_reference(store, dis, product):
    """Gathered snapshots and the assembled consistent mass matrix against the Gram matrix summed
    over the 3 subdomains: the Gram matrices agree to round-off (~1e-15 relative: the order of the
    sums). The dissimilarities then agree as far as their conditioning allows: each run's basis
    keeps the eigenvalues of its Gram block down to tol^2 lambda_0, which carry an absolute round-off
    ~ n eps lambda_0; at tol = 1e-4 (down to 1e-8 lambda_0) that is ~1e-8 relative and d^2 agrees to
    ~1e-9 (measured 2e-9); at tol = 1e-6 (down to 1e-12 lambda_0) these directions are only fixed to
    ~1e-4 and d^2 agrees to ~1e-7 (measured 1.5e-7), whichever way G is summed (method of snapshots:
    the Gram matrix squares the conditioning). Not 1e-10 at the default tol, then, for any G."""
    assert training_data(store.path).lifted == ()  # homogeneous Dirichlet only: lifted = raw snapshots
    ds = open_snapshots(store.path, runs=list(dis.runs))
    U = ds.displacement.values
    assert list(ds.run.values.astype(str)) == [dis.runs[r] for r in dis.snapshot_run]
    G = U @ (mass_matrix(store.layout.mesh) @ U.T) if product == "l2" else U @ U.T
    for tol, atol in ((1e-4, 1e-8), (TOL, 1e-6)):
        summed = dis if (product, tol) == ("l2", TOL) else dissimilarity(store.path, product=product, tol=tol)
        np.testing.assert_allclose(summed.gram, G, rtol=0, atol=1e-13 * np.abs(G).max())
        matrix, directed, ranks = dissimilarity_from_gram(G, summed.snapshot_run, tol)
        assert np.array_equal(ranks, summed.ranks)
        np.testing.assert_allclose(summed.directed ** 2, directed ** 2, rtol=0, atol=atol)
        np.testing.assert_allclose(summed.matrix ** 2, matrix ** 2, rtol=0, atol=atol)
    if product is None:  # another product, other numbers (the test compares the right ones)
        assert not np.allclose(summed.matrix, dis.matrix, rtol=1e-3)


def test_zero_run_is_refused():
    G = np.diag([1.0, 2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        dissimilarity_from_gram(G, np.array([0, 0, 1, 1]))


# ---- k-medoids --------------------------------------------------------------------------------------


def _brute_force(D, k):
    return min(float(D[:, list(m)].min(axis=1).sum()) for m in itertools.combinations(range(len(D)), k))


def _partition(labels):
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}


def _blocks(sizes, seed, noise=0.1):
    """Symmetric dissimilarities of planted blocks: within-block ~U(0, noise), between ~U(0.7, 1)."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(sizes)), sizes)
    n = block.size
    D = np.where(block[:, None] == block[None, :], noise * rng.random((n, n)), 0.7 + 0.3 * rng.random((n, n)))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    perm = rng.permutation(n)  # the blocks are not contiguous
    return D[np.ix_(perm, perm)], block[perm]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sizes", [(4, 5), (3, 4, 2), (5, 2, 3)])
def test_pam_recovers_planted_blocks(sizes, seed):
    D, block = _blocks(sizes, seed)
    c = kmedoids(D, len(sizes))
    assert _partition(c.labels) == _partition(block)
    assert c.cost == pytest.approx(_brute_force(D, len(sizes)), rel=1e-12)
    assert c.cost == pytest.approx(sum(D[i, c.medoids[c.labels[i]]] for i in range(len(D))), rel=1e-12)
    assert np.array_equal(c.labels[c.medoids], np.arange(c.k))  # each medoid in its cluster
    first = [np.flatnonzero(c.labels == j)[0] for j in range(c.k)]
    assert first == sorted(first)  # numbered by their first member


def _random_symmetric(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 9))
    X = rng.random((n, n))
    D = (X + X.T) / 2
    np.fill_diagonal(D, 0.0)
    return D


@pytest.mark.parametrize("seed", range(40))
def test_kmedoids_is_exact_while_cheap(seed):
    """Up to EXACT_CHOICES choices of the medoids the search is exhaustive: the optimum."""
    D = _random_symmetric(seed)
    for k in (1, 2, 3):
        assert kmedoids(D, k).cost == pytest.approx(_brute_force(D, k), rel=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_pam_against_brute_force_on_random_matrices(seed, monkeypatch):
    """PAM (forced here): k = 1 is exact (BUILD's first medoid minimizes the sum). For k = 2, 3, PAM
    is a local search: on random symmetric matrices it stops on a worse swap-local optimum in ~7%
    of the cases (60 of 900 measured, seeds 0..299 and k = 1, 2, 3; 34 of 900 on Euclidean
    distances of random points), so what holds is: no single swap lowers its cost, and its cost is
    >= the optimum."""
    monkeypatch.setattr(local_module, "EXACT_CHOICES", 0)
    D = _random_symmetric(seed)
    n = len(D)
    assert kmedoids(D, 1).cost == pytest.approx(_brute_force(D, 1), rel=1e-12)
    for k in (2, 3):
        c = kmedoids(D, k)
        assert c.cost >= _brute_force(D, k) - 1e-12
        medoids = list(c.medoids)
        for position, candidate in itertools.product(range(k), range(n)):
            if candidate not in medoids:
                trial = medoids[:position] + [candidate] + medoids[position + 1:]
                assert D[:, trial].min(axis=1).sum() >= c.cost - 1e-12


def test_pam_with_duplicate_runs():
    """Runs ingested twice are at distance 0: when both are medoids each keeps its own cluster
    (was an IndexError: the second medoid's cluster came out empty)."""
    c = kmedoids(np.zeros((3, 3)), 3)
    assert np.array_equal(c.labels, [0, 1, 2]) and c.cost == 0.0
    D = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0.2], [1, 1, 0.2, 0]], float)
    c = kmedoids(D, 3)
    assert np.array_equal(c.labels, [0, 0, 1, 2]) and c.cost == 0.0
    c = kmedoids(D, 4)
    assert np.array_equal(c.labels, [0, 1, 2, 3]) and np.array_equal(c.medoids, [0, 1, 2, 3])


@pytest.mark.parametrize("D, k", [(np.zeros((3, 3)), 0), (np.zeros((3, 3)), 4), (np.zeros((3, 2)), 1),
                                  (np.full((2, 2), np.nan), 1)])
def test_kmedoids_checks_its_inputs(D, k):
    with pytest.raises(ValueError, match="k must be|finite square"):
        kmedoids(D, k)


def test_families_among_all_runs(dis):
    """k = 2 over every run (elastic, duplicate, both families): the top runs against the right runs."""
    c = kmedoids(dis.matrix, 2)
    top = {n for n in dis.runs if n not in RIGHT}
    assert {frozenset(dis.runs[i] for i in c.members(j)) for j in range(2)} == {frozenset(top), frozenset(RIGHT)}


# ---- the criterion and reduce_local -------------------------------------------------------------------


def _subset(store, runs):
    return dissimilarity(store.path, runs)


def test_reduce_local_recovers_the_families(local):
    assert {frozenset(c) for c in local.clusters} == FAMILIES
    assert all(m in c for m, c in zip(local.medoids, local.clusters))
    rows = local.criterion
    assert [r["k"] for r in rows] == [1, 2] and [r["chosen"] for r in rows] == [False, True]
    assert rows[1]["cost_ratio"] < AUTO_GAIN and rows[1]["runs"] == [2, 2]
    # the a-priori ranks are the POD ranks of the reductions, before any reduction
    assert rows[1]["modes"] == [r.model.n_modes for r in local.reductions]
    assert rows[0]["global_modes"] > max(rows[1]["modes"])


def test_each_local_model_is_reduce_of_its_members(store, local):
    for members, reduction in zip(local.clusters, local.reductions):
        alone = reduce(store.path, runs=list(members)).model
        ours, theirs = reduction.model.arrays(), alone.arrays()
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert ours[name].dtype == theirs[name].dtype and ours[name].tobytes() == theirs[name].tobytes(), name
        assert reduction.model.metadata["reduce"]["training_runs"] == list(members)


def test_auto_chooses_one_model_for_one_family(store):
    """Elastic runs of one pattern: every cluster has rank 1 like the whole, a dictionary saves
    nothing (cost ratio 1), so "auto" keeps one model although every k is admissible (min_runs=1)."""
    clustering, rows = choose_clusters(_subset(store, list(ELASTIC)), min_runs=1)
    assert clustering.k == 1 and [r["k"] for r in rows] == [1, 2, 3, 4]
    assert all(r["cost_ratio"] == pytest.approx(1.0) for r in rows)
    assert [r["chosen"] for r in rows] == [True, False, False, False]
    # 3 plastic runs of the top family, k up to 3 tried: any split leaves a run alone
    clustering, rows = choose_clusters(_subset(store, ["t1", "t2", "t1_again"]), k_max=3)
    assert clustering.k == 1 and [r["k"] for r in rows] == [1, 2, 3] and rows[0]["chosen"]
    assert all(r["min_runs"] < 2 for r in rows[1:])


def test_auto_does_not_split_one_family_by_amplitude(store):
    """Plastic and elastic runs of the top family: splitting them by amplitude lowers the cost ratio
    below AUTO_GAIN, but the medoids are close (one kind of response): "auto" keeps one model."""
    clustering, rows = choose_clusters(_subset(store, ["t1", "t2", "e3", "e4"]), min_runs=1)
    assert clustering.k == 1 and rows[0]["chosen"]
    assert any(r["cost_ratio"] < AUTO_GAIN for r in rows[1:])  # the cost alone would split them
    assert all(r["separation"] < AUTO_SEPARATION for r in rows[1:])
    # the two families are far apart
    assert local_module.cluster_criterion(_subset(store, [*TOP, *RIGHT]), kmedoids(
        _subset(store, [*TOP, *RIGHT]).matrix, 2))["separation"] > 0.5


def test_given_k_is_honoured(store, local):
    d = local.dissimilarity
    clustering, rows = choose_clusters(d, 3)
    assert clustering.k == 3 and len(rows) == 1 and rows[0]["k"] == 3 and rows[0]["chosen"]
    assert rows[0] == {**cluster_criterion(d, clustering, TOL), "chosen": True}
    one = reduce_local(store.path, runs=[*TOP, *RIGHT], k=1)
    assert one.clusters == ((*TOP, *RIGHT),) and len(one.reductions) == 1
    assert one.reductions[0].model.n_modes == local.criterion[0]["global_modes"]


@pytest.mark.parametrize("kwargs, message", [({"k": "two"}, "k must be"), ({"k": True}, "k must be"),
                                             ({"k": 0}, "k must be"), ({"k_max": 0}, "k_max")])
def test_choose_clusters_checks_its_inputs(local, kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose_clusters(local.dissimilarity, **kwargs)
