"""Local reduced models (ROM-net): a dissimilarity between training runs, k-medoids clusters of
runs, an a-priori criterion for the number of clusters, and one reduced model per cluster.

The dissimilarity measures how well one run's reduced basis represents another run: for runs i
and j with lifted displacement snapshots ``U_i``, ``U_j`` and the POD basis ``V_i`` of run i
(the product of the reduction, truncated like :func:`~romdask.offline.pod`)::

    d(i -> j)^2 = sum_s ||u_js - P_i u_js||^2 / sum_s ||u_js||^2      (P_i: projection on V_i)
    d(i, j)     = max(d(i -> j), d(j -> i))

``d(i -> j)`` is the root of the energy-weighted mean of ``sin^2`` of the angles between run j's
snapshots and run i's subspace: 0 when run i's basis represents run j exactly, 1 when it captures
nothing. Everything comes from the snapshot Gram matrix ``G = U^T M U``, summed over subdomains
(:func:`~romdask.offline.gram`): ``P_i`` in the snapshot coordinates is ``A_i = xi_i
lambda_i^-1/2`` from the eigenpairs of ``G_ii``, so ``sum_s ||P_i u_js||^2 = ||A_i^T G_ij||_F^2``.
No snapshot is gathered.

The a-priori criterion (:func:`cluster_criterion`) compares the cost of the online stage with k
local ROMs to the cost with one global ROM, before any reduction: each cluster's POD rank at the
reduction's tolerance is read from the eigenvalues of its block of ``G``; the online cost of a
reduced Newton iteration grows like ``n * n_points`` with the ECM points ``n_points`` about
proportional to the modes ``n``, so the expected relative cost is
``sum_c w_c n_c^2 / n_global^2`` (``w_c``: share of the training runs in cluster c). Checked on
the plate benchmark (docs/benchmarks.md, two load directions): predicted 0.28, measured online
time ratio 0.23-0.30. The ratio alone keeps falling with k (splitting one kind of runs by
amplitude lowers it too, and costs accuracy), so :func:`choose_clusters` also asks the clusters
to differ in kind (their separation). This criterion is our own reading of the paper's idea (is
a dictionary worth it, from the training data alone): its formula was not available here to
compare with.

References
----------
T. Daniel, F. Casenave, N. Akkari, D. Ryckelynck, "Model order reduction assisted by deep neural
networks (ROM-net)", AMSES 7 (2020); T. Daniel et al., "Physics-informed cluster analysis and a
priori efficiency criterion for the construction of local reduced-order bases", arXiv:2103.13683
(angle-based dissimilarities, k-medoids, the efficiency criterion).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np

from romdask.materials import Material
from romdask.online.scenario import Scenario
from romdask.online.selection import temperature_features

from romdask.threads import blas_single_thread
from .pod import gram
from .reduce import ReduceOptions, Reduction, reduce
from .training import TrainingData, lift, training_data, training_scenarios

__all__ = [
    "Clustering",
    "Dissimilarity",
    "LocalReduction",
    "choose_clusters",
    "cluster_criterion",
    "dissimilarity",
    "dissimilarity_from_gram",
    "kmedoids",
    "reduce_local",
    "training_scenarios",
    "training_temperatures",
]

logger = logging.getLogger(__name__)

#: a dictionary must lower the expected online cost below this fraction of the global ROM's to be chosen by "auto"
AUTO_GAIN = 0.7
#: and its clusters must differ in kind: the dissimilarity between any two medoids at least this (see choose_clusters)
AUTO_SEPARATION = 0.3
#: k-medoids is exhaustive up to this many choices of the medoids
EXACT_CHOICES = 20_000


@dataclass(frozen=True, eq=False)
class Dissimilarity:
    """Pairwise dissimilarity of training runs (:func:`dissimilarity`).

    Attributes
    ----------
    runs : (n_runs,) run names, the order of the rows
    matrix : (n_runs, n_runs) symmetric ``d(i, j)`` in [0, 1]
    directed : (n_runs, n_runs) ``d(i -> j)``: how badly run i's basis represents run j
    ranks : (n_runs,) POD rank of each run at ``tol``
    tol : relative singular-value truncation of the runs' bases
    gram : (n_snap, n_snap) the snapshot Gram matrix (lifted, in the product)
    snapshot_run : (n_snap,) index in ``runs`` of each snapshot
    """

    runs: tuple[str, ...]
    matrix: np.ndarray
    directed: np.ndarray
    ranks: np.ndarray
    tol: float
    gram: np.ndarray = field(repr=False)
    snapshot_run: np.ndarray = field(repr=False)


def _basis_coordinates(G: np.ndarray, tol: float) -> np.ndarray:
    """``A = xi lambda^-1/2`` of the eigenpairs of a Gram block with ``sqrt(lambda / lambda_0) > tol``:
    ``U A`` is the block's POD basis, orthonormal in the product."""
    lam, xi = np.linalg.eigh(G)
    lam, xi = lam[::-1], xi[:, ::-1]
    if lam.size == 0 or lam[0] <= 0.0:
        return np.zeros((G.shape[0], 0))
    keep = lam > (tol * tol) * lam[0]
    return xi[:, keep] / np.sqrt(lam[keep])


def dissimilarity_from_gram(G: np.ndarray, snapshot_run: np.ndarray, tol: float = 1e-6
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run dissimilarities from the snapshot Gram matrix (the numpy part of :func:`dissimilarity`).

    Parameters
    ----------
    G : (n_snap, n_snap) Gram matrix of the lifted snapshots in the POD's product
    snapshot_run : (n_snap,) run index of each snapshot, 0..n_runs-1 (every index present)
    tol : relative singular-value truncation of each run's basis (as ``pod(tol=...)``)

    Returns
    -------
    matrix, directed, ranks (see :class:`Dissimilarity`)

    Raises
    ------
    ValueError
        A run whose snapshots are all zero (nothing to compare), naming its index.
    """
    G = np.asarray(G, np.float64)
    snapshot_run = np.asarray(snapshot_run)
    n_runs = int(snapshot_run.max()) + 1
    rows = [np.flatnonzero(snapshot_run == i) for i in range(n_runs)]
    energy = np.array([np.trace(G[np.ix_(r, r)]) for r in rows])
    empty = np.flatnonzero(energy <= 0.0)
    if empty.size:
        raise ValueError(f"runs at positions {empty.tolist()} have zero (lifted) displacement snapshots: no basis to "
                         "compare; leave them out of the training runs")
    bases = [_basis_coordinates(G[np.ix_(r, r)], tol) for r in rows]
    directed = np.zeros((n_runs, n_runs))
    for i in range(n_runs):
        for j in range(n_runs):
            captured = np.linalg.norm(bases[i].T @ G[np.ix_(rows[i], rows[j])]) ** 2
            directed[i, j] = np.sqrt(max(0.0, 1.0 - captured / energy[j]))
    matrix = np.maximum(directed, directed.T)
    return matrix, directed, np.array([b.shape[1] for b in bases])


def dissimilarity(store_path: str | Path, runs: Sequence[str] | None = None, *, law: Material | None = None,
                  product: str | None = "l2", tol: float = 1e-6) -> Dissimilarity:
    """The pairwise dissimilarity of the training runs of a snapshot store (one Dask compute).

    Parameters
    ----------
    store_path : the snapshot store
    runs : the runs (default: every complete run); they share the load patterns
        (:func:`~romdask.offline.training_data`)
    law : the law, when the runs carry none (only read to check the runs, as ``reduce``)
    product : "l2" (consistent mass, the POD's default) or None (Euclidean)
    tol : relative singular-value truncation of each run's POD basis

    Returns
    -------
    Dissimilarity

    Notes
    -----
    The snapshot Gram matrix is one task per subdomain and a tree sum
    (:func:`~romdask.offline.gram`): memory ``8 n_snap^2`` bytes per task, nothing mesh-sized
    leaves the workers. The rest is dense linear algebra on ``G`` in the driver: an eigh per run
    and a product per pair, ``O(n_runs^2 n_snap_run^3)``.
    """
    return _dissimilarity(training_data(store_path, law, runs=runs), product, tol)


def _dissimilarity(data: TrainingData, product: str | None, tol: float) -> Dissimilarity:
    if not tol >= 0.0:
        raise ValueError(f"tol must be >= 0; got {tol}")
    lifting = lift(data)
    with blas_single_thread():
        (G,) = dask.compute(gram(lifting.displacement, product, layout=data.store_path))
        index = {name: i for i, name in enumerate(data.runs)}
        snapshot_run = np.array([index[r] for r in data.snapshot_run])
        matrix, directed, ranks = dissimilarity_from_gram(G, snapshot_run, tol)
    return Dissimilarity(tuple(data.runs), matrix, directed, ranks, float(tol), np.asarray(G), snapshot_run)


# ---- k-medoids ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Clustering:
    """Clusters of training runs (:func:`kmedoids` on a :class:`Dissimilarity`).

    Attributes
    ----------
    labels : (n_runs,) cluster of each run, 0..k-1, numbered by their first member
    medoids : (k,) run index of each cluster's medoid
    cost : sum over the runs of the dissimilarity to their medoid
    """

    labels: np.ndarray
    medoids: np.ndarray
    cost: float

    @property
    def k(self) -> int:
        return int(self.medoids.size)

    def members(self, c: int) -> np.ndarray:
        return np.flatnonzero(self.labels == c)


def _total(D: np.ndarray, medoids: list[int]) -> float:
    return float(D[:, medoids].min(axis=1).sum())


def _exhaustive(D: np.ndarray, k: int) -> list[int]:
    """The medoids of least cost among all ``C(n, k)`` choices (first in lexicographic order on ties)."""
    best, best_cost = None, np.inf
    for chunk in _chunks(itertools.combinations(range(D.shape[0]), k), 4096):
        sets = np.array(chunk)
        costs = D[:, sets].min(axis=2).sum(axis=0)
        i = int(np.argmin(costs))
        if costs[i] < best_cost:
            best, best_cost = sets[i].tolist(), float(costs[i])
    return best


def _chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def kmedoids(D: np.ndarray, k: int) -> Clustering:
    """k-medoids of a dissimilarity matrix: exact when there are at most :data:`EXACT_CHOICES`
    choices of k medoids among n runs, else PAM (BUILD, then SWAP until no swap lowers the cost).

    Parameters
    ----------
    D : (n, n) symmetric dissimilarities, zero diagonal up to rounding
    k : number of clusters, 1 <= k <= n

    Returns
    -------
    Clustering (deterministic: ties go to the lowest index)

    Notes
    -----
    PAM is a local search: on random dissimilarity matrices it stopped at a worse clustering than
    the optimum in 7 % of the cases (k = 2, 3; 900 matrices of 8-12 runs), hence the exhaustive
    search while it is cheap (``C(n, k) <= 20,000``: 20 runs and k <= 4, 30 runs and k <= 3; a
    vectorized ``O(C(n, k) n k)``). PAM: each SWAP pass evaluates all ``k (n - k)`` swaps,
    ``O(k^2 n^2)`` per pass with a few passes, for the hundreds of runs beyond. Written here
    (60 lines) rather than depending on a compiled package for it.

    References
    ----------
    L. Kaufman, P. J. Rousseeuw, "Partitioning Around Medoids (Program PAM)", Finding Groups in
    Data (1990), ch. 2.
    """
    D = np.asarray(D, np.float64)
    n = D.shape[0]
    if D.ndim != 2 or D.shape != (n, n) or not np.all(np.isfinite(D)):
        raise ValueError(f"D must be a finite square matrix; got shape {D.shape}")
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must be between 1 and the number of runs ({n}); got {k}")
    k = int(k)
    if math.comb(n, k) <= EXACT_CHOICES:
        medoids = _exhaustive(D, k)
        return _clustering(D, medoids, _total(D, medoids))
    medoids = [int(np.argmin(D.sum(axis=0)))]
    while len(medoids) < k:  # BUILD: the run that lowers the cost most
        nearest = D[:, medoids].min(axis=1)
        gains = np.maximum(nearest[:, None] - D, 0.0).sum(axis=0)
        gains[medoids] = -np.inf
        medoids.append(int(np.argmax(gains)))
    cost = _total(D, medoids)
    while True:  # SWAP: the best improving exchange of a medoid with another run
        best = (cost, -1, -1)
        for position in range(k):
            for candidate in range(n):
                if candidate in medoids:
                    continue
                trial = medoids[:position] + [candidate] + medoids[position + 1:]
                c = _total(D, trial)
                if c < best[0] - 1e-12 * max(1.0, cost):
                    best = (c, position, candidate)
        if best[1] < 0:
            break
        cost, position, candidate = best
        medoids[position] = candidate
    return _clustering(D, medoids, cost)


def _clustering(D: np.ndarray, medoids: list[int], cost: float) -> Clustering:
    k = len(medoids)
    nearest = np.argmin(D[:, medoids], axis=1)
    nearest[medoids] = np.arange(k)  # each medoid in its own cluster (duplicate runs: D[m1, m2] = 0 ties)
    order = np.argsort([np.flatnonzero(nearest == c)[0] for c in range(k)], kind="stable")
    renumber = np.empty(k, int)
    renumber[order] = np.arange(k)
    return Clustering(renumber[nearest], np.array(medoids)[order], cost)


# ---- the a-priori criterion -----------------------------------------------------------------------


def _rank(G: np.ndarray, tol: float) -> int:
    lam = np.linalg.eigvalsh(G)[::-1]
    return 0 if lam.size == 0 or lam[0] <= 0 else int(np.count_nonzero(lam > (tol * tol) * lam[0]))


def cluster_criterion(dis: Dissimilarity, clustering: Clustering, tol: float = 1e-6) -> dict[str, Any]:
    """The a-priori efficiency of a dictionary of ``clustering.k`` local ROMs against one global ROM.

    Parameters
    ----------
    dis : the Dissimilarity (its Gram matrix)
    clustering : clusters of ``dis.runs``
    tol : the POD truncation of the reduction (``ReduceOptions.tol_pod``)

    Returns
    -------
    dict
        ``k``, ``modes`` (POD rank of each cluster at ``tol``), ``global_modes``, ``runs`` (runs
        per cluster), ``cost_ratio`` (``sum_c w_c n_c^2 / n_global^2``, the expected online cost
        relative to the global ROM; < 1: the dictionary is cheaper online), ``spread`` (mean
        dissimilarity of the runs to their medoid), ``separation`` (smallest dissimilarity
        between two medoids; None for k = 1) and ``min_runs`` (smallest cluster).

    Notes
    -----
    No reduction is made: the ranks are the eigenvalues of the clusters' blocks of the Gram matrix.
    """
    G, snap = dis.gram, dis.snapshot_run
    n_global = max(1, _rank(G, tol))
    modes, runs = [], []
    for c in range(clustering.k):
        members = clustering.members(c)
        rows = np.flatnonzero(np.isin(snap, members))
        modes.append(_rank(G[np.ix_(rows, rows)], tol))
        runs.append(int(members.size))
    weights = np.array(runs) / sum(runs)
    ratio = float(np.sum(weights * np.square(modes)) / n_global**2)
    between = dis.matrix[np.ix_(clustering.medoids, clustering.medoids)]
    separation = float(between[~np.eye(clustering.k, dtype=bool)].min()) if clustering.k > 1 else None
    return {"k": clustering.k, "modes": modes, "global_modes": n_global, "runs": runs, "cost_ratio": ratio,
            "spread": clustering.cost / len(dis.runs), "separation": separation, "min_runs": min(runs)}


def choose_clusters(dis: Dissimilarity, k: int | str = "auto", *, tol: float = 1e-6, k_max: int | None = None,
                    min_runs: int = 2) -> tuple[Clustering, list[dict[str, Any]]]:
    """k-medoids clusters of the runs, ``k`` given or chosen by the a-priori criterion.

    Parameters
    ----------
    dis : Dissimilarity of the training runs
    k : number of clusters, or "auto": the k in 1..``k_max`` with the lowest
        :func:`cluster_criterion` cost ratio among the clusterings whose clusters all hold at
        least ``min_runs`` runs and whose medoids are at least :data:`AUTO_SEPARATION` apart; a
        dictionary (k > 1) only when its cost ratio is below :data:`AUTO_GAIN` (otherwise one
        global ROM: k = 1)
    tol : the reduction's POD truncation
    k_max : largest k tried by "auto" (default ``n_runs // min_runs``, at most 8)
    min_runs : smallest cluster "auto" accepts (a local ROM trained on one run extrapolates)

    Returns
    -------
    (Clustering, criterion rows): one row per k tried (the given k only, when k is an int), with
    ``chosen`` set on the chosen row.

    Notes
    -----
    Why a separation: splitting one family of runs by amplitude also lowers the cost ratio (4
    plastic runs of the plate under one traction, 120-190 MPa: 12 + 17 modes against 23, ratio
    0.41), but a local ROM of the low amplitudes then extrapolates for a scenario between the two
    clusters, where the global ROM interpolates. Measured on the quarter plate (n = 4, one cycle):
    runs of one load direction, 60 to 190 MPa, elastic and plastic, are at most 0.19 apart;
    tension on the top and on the right face are 0.59-0.83 apart. An explicit ``k`` is not
    subject to it.
    """
    n = len(dis.runs)
    if k != "auto":
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"k must be a number of clusters or 'auto'; got {k!r}")
        clustering = kmedoids(dis.matrix, int(k))
        row = cluster_criterion(dis, clustering, tol)
        return clustering, [{**row, "chosen": True}]
    if k_max is not None and not 1 <= int(k_max):
        raise ValueError(f"k_max must be >= 1; got {k_max}")
    k_max = min(8, max(1, n // max(1, min_runs))) if k_max is None else min(int(k_max), n)
    rows, clusterings = [], []
    for kk in range(1, k_max + 1):
        clustering = kmedoids(dis.matrix, kk)
        clusterings.append(clustering)
        rows.append({**cluster_criterion(dis, clustering, tol), "chosen": False})
    admissible = [i for i, r in enumerate(rows)
                  if r["k"] == 1 or (r["min_runs"] >= min_runs and r["separation"] >= AUTO_SEPARATION)]
    best = min(admissible, key=lambda i: (rows[i]["cost_ratio"], rows[i]["k"]))
    if rows[best]["cost_ratio"] > AUTO_GAIN:
        best = 0
    rows[best]["chosen"] = True
    return clusterings[best], rows


# ---- the dictionary ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LocalReduction:
    """The outcome of :func:`reduce_local`: one :class:`~romdask.offline.Reduction` per cluster.

    Attributes
    ----------
    reductions : one Reduction per cluster (model, full bases, mesh)
    clusters : (k,) the member runs of each cluster
    medoids : (k,) the medoid run of each cluster
    dissimilarity : the Dissimilarity of all the training runs
    criterion : the a-priori criterion rows (:func:`choose_clusters`)
    scenarios : run name -> the run's Scenario (:func:`training_scenarios`)
    temperatures : thermal runs: run name -> its temperature features (:func:`training_temperatures`)
    """

    reductions: tuple[Reduction, ...]
    clusters: tuple[tuple[str, ...], ...]
    medoids: tuple[str, ...]
    dissimilarity: Dissimilarity
    criterion: tuple[dict[str, Any], ...]
    scenarios: Mapping[str, Scenario] = field(default_factory=dict, repr=False)
    temperatures: Mapping[str, np.ndarray] | None = field(default=None, repr=False)

    def dictionary(self):
        """The :class:`~romdask.online.ModelDictionary` of the local models (classifier trained on
        the runs' load descriptions)."""
        from romdask.online.dictionary import ModelDictionary

        return ModelDictionary.from_reduction(self)

    def save(self, path: str | Path, *, overwrite: bool = False, compression: str | None = "lz4") -> Path:
        """Write the dictionary with every local model's full bases and mesh (atomically):
        :meth:`romdask.online.ModelDictionary.save`."""
        return self.dictionary().save(path, full=[dict(r.full) for r in self.reductions],
                                      meshes=[r.mesh for r in self.reductions], overwrite=overwrite,
                                      compression=compression)


def reduce_local(store_path: str | Path, law: Material | None = None, *, runs: Sequence[str] | None = None,
                 k: int | str = "auto", options: ReduceOptions | None = None, k_max: int | None = None,
                 min_runs: int = 2) -> LocalReduction:
    """A dictionary of local reduced models: runs clustered by their dissimilarity, one
    :func:`~romdask.offline.reduce` per cluster.

    Parameters
    ----------
    store_path, law, runs, options : as :func:`~romdask.offline.reduce`
    k : number of local models, or "auto" (:func:`choose_clusters`)
    k_max, min_runs : bounds of "auto"

    Returns
    -------
    LocalReduction

    Notes
    -----
    Cost: one Gram matrix of every training snapshot (:func:`dissimilarity`), then the reductions
    of the clusters, submitted together from driver threads: on a distributed cluster their task
    graphs run side by side. Each cluster's model is what ``reduce(store, law, runs=members)``
    gives, byte for byte.
    """
    options = ReduceOptions() if options is None else options
    if not isinstance(options, ReduceOptions):
        raise TypeError(f"options must be a romdask.offline.ReduceOptions; got {type(options).__name__}")
    data = training_data(store_path, law, runs=runs)  # replays the law into the store first if needed
    dis = _dissimilarity(data, options.product, options.tol_pod)
    clustering, rows = choose_clusters(dis, k, tol=options.tol_pod, k_max=k_max, min_runs=min_runs)
    clusters = tuple(tuple(dis.runs[i] for i in clustering.members(c)) for c in range(clustering.k))
    logger.info("%d cluster(s) of runs: %s", clustering.k, "; ".join(", ".join(c) for c in clusters))
    # the BLAS thread count set from this thread (romdask.threads): each model is then the bytes
    # of reduce(store, law, runs=members)
    with blas_single_thread(), ThreadPoolExecutor(max_workers=max(1, min(len(clusters), 4))) as pool:
        reductions = tuple(pool.map(lambda members: reduce(store_path, law, runs=list(members), options=options),
                                    clusters))
    medoids = tuple(dis.runs[i] for i in clustering.medoids)
    return LocalReduction(reductions, clusters, medoids, dis, tuple(rows), training_scenarios(data),
                          training_temperatures(data))


def training_temperatures(data: TrainingData) -> dict[str, np.ndarray] | None:
    """Each thermal training run's temperature features
    (:func:`romdask.online.selection.temperature_features` at its output times), None for athermal runs.

    Notes
    -----
    Reads each run's nodal temperature field (or evaluates its description) one run at a time:
    ``8 n_t n_nodes`` bytes in the driver while a run is summarized.
    """
    if data.temperatures is None:
        return None
    sources = [(k, None) for k in range(data.layout.n_subdomains)]
    out = {}
    for run, temperature in data.temperatures.items():
        times = np.unique(data.snapshot_time[data.snapshot_run == run])
        history = temperature.local(None, sources).history(data.store_path, run, times)
        out[run] = temperature_features(history, temperature.initial)
    return out
