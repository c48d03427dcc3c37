"""The middle and last stages of a reduction: integration-point fields, the one gather, the
Gappy-POD bases of the dual quantities, and the assembly of the :class:`ReducedModel`.

:func:`point_fields` is lazy (strains of the modes and liftings, stress and cumulated plastic
strain snapshots); :func:`gather` computes the strains and the snapshots' Gram matrices together
with the lazy ECM of :func:`~romdask.offline.hyperreduction.hyperreduce` in ONE ``dask.compute``,
so that every block is read and every strain computed once; the stress and p snapshots are never
gathered: :func:`dual_bases` forms the Gappy-POD bases from the Gram matrices in per-subdomain
tasks (a second pass), :func:`assemble` reads the snapshots at the reduced points (a third, for
the indicator's scale) and :func:`full_bases` returns the gathered bases.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg
import scipy.linalg.blas
from dask.delayed import Delayed

from romdask.fem.temperature import temperature_operator
from romdask.online.model import ReducedModel
from romdask.online.scenario import Scenario
from romdask.online.solver import OnlineConvergenceError, TrainingEnvelopeWarning
from romdask.online.thermal import operator_rows
from romdask.problem.patterns import load_signature
from romdask.problem.vectors import unit_load_vector

from romdask.threads import aligned, one_blas_thread
from .gappy import point_rows, qdeim_points
from .hyperreduction import Hyperreduction
from .pod import POD, _eig_pod, combine, gram, gram_accuracy, tsqr_r
from .replay import integrate_history, replay, strains
from .training import Lifting, TrainingData, training_scenarios

__all__ = [
    "DualBases",
    "Gathered",
    "PointFields",
    "append_snapshots",
    "assemble",
    "dual_bases",
    "full_bases",
    "gather",
    "point_fields",
    "replayed_snapshots",
    "thermal_rows",
]

logger = logging.getLogger(__name__)

#: Voigt components per point of each dual quantity
DUAL_COMPONENTS = {"stress": 6, "p": 1}
#: keys of the hyper-reduction report that time this run: in ``Reduction.timings``, not saved
RUN_TIMINGS = ("ecm_time",)


@dataclass(frozen=True, eq=False)
class PointFields:
    """The modes and the fields at the integration points a reduced model is built from.

    Lazy dask arrays from :func:`point_fields`; once gathered (:func:`gather`) the modes and
    strains are numpy arrays, the stress and p snapshots stay lazy (mesh x snapshots sized: they
    stay on the workers). Points in the store's ip-field order (``layout.ip_points``).

    Attributes
    ----------
    modes : (n, n_dofs) POD modes, store dof order
    mode_strain : (n, N, 6) strains of the modes (engineering shear)
    stress : (n_snap, N, 6) stress snapshots
    lifting_strain : (n_l, N, 6) strains of the unit liftings, or None without lifting
    p : (n_snap, N) cumulated plastic strain snapshots, or None (a law without state)
    p_source : where p comes from: "state" (the store's ``state[..., 0]``), "p" (the store's
        p field, e.g. CalculiX's PEEQ), "replay" (the law replayed along the runs, not
        written) or None
    """

    modes: Any
    mode_strain: Any
    stress: Any
    lifting_strain: Any = None
    p: Any = None
    p_source: str | None = None


def _plastic_strain(data: TrainingData) -> tuple[da.Array | None, str | None]:
    ds = data.snapshots
    if "state" in ds:
        return ds.state.data[:, :, 0], "state"
    if "p" in ds:
        return ds.p.data[:, :, 0], "p"
    if data.law.n_state == 0:
        return None, None
    lazy = replay(data.store_path, data.law, runs=list(data.runs), write=False)
    return da.concatenate([lazy[r]["state"][:, :, 0] for r in data.runs], axis=0), "replay"


def point_fields(data: TrainingData, modes: da.Array, lifting: Lifting) -> PointFields:
    """The strains of the modes and liftings, the stress and p snapshots, lazily.

    Parameters
    ----------
    data : TrainingData (the store and its snapshots)
    modes : (n, n_dofs) lazy POD modes (``pod(...).modes``), one block per subdomain
    lifting : the Lifting of ``data``

    Returns
    -------
    PointFields of dask arrays, one block per subdomain along the points.

    Notes
    -----
    Nothing is computed. The strains are one task per subdomain reading its sub-mesh from the
    store (:func:`~romdask.offline.strains`). p is the store's ``state[..., 0]``, else its
    ``p`` field, else the law replayed along each run (:func:`~romdask.offline.replay` with
    ``write=False``: one task per (run, subdomain), the store is not modified), else None for
    a law without internal state.
    """
    mode_strain = strains(modes, data.store_path)  # sub-meshes read inside the tasks
    lifting_strain = strains(lifting.lazy_vectors(), data.store_path) if lifting.n_liftings else None
    p, source = _plastic_strain(data)
    return PointFields(modes, mode_strain, data.snapshots.stress.data, lifting_strain, p, source)


@dataclass(frozen=True, eq=False)
class Gathered:
    """The gathered :class:`PointFields` (modes and strains numpy, snapshots lazy), the computed
    reduced quadrature and the snapshots' Gram matrices (``"stress"``, ``"p"``: n_snap x n_snap)."""

    fields: PointFields
    hyperreduction: Hyperreduction
    grams: Mapping[str, np.ndarray]


def _snapshot_rows(values: Any) -> da.Array:
    """Snapshots ``(n_snap, N)`` or ``(n_snap, N, c)`` (numpy or dask) as the dask matrix
    ``(n_snap, c N)`` (components fastest), chunked like ``values`` along the points."""
    if not isinstance(values, da.Array):
        values = da.from_array(np.asarray(values, np.float64), chunks=-1)
    return values.reshape(values.shape[0], -1) if values.ndim == 3 else values


@dataclass(frozen=True)
class _Blocks:
    """A dask array's blocks, to compute with other things and join by :meth:`join`."""

    blocks: list
    shape: tuple[int, ...]
    axis: int  # the one chunked axis (-1: a single block)

    @classmethod
    def of(cls, x: da.Array) -> _Blocks:
        chunked = [a for a, n in enumerate(x.numblocks) if n > 1]
        if len(chunked) != 1:
            return cls([x], x.shape, -1)
        # blocks as dask arrays: Delayed blocks (to_delayed) computed in one dask.compute with arrays
        # and a Delayed came back in the wrong places (dask 2026.11.0)
        axis = chunked[0]
        index = [0] * x.ndim
        blocks = []
        for i in range(x.numblocks[axis]):
            index[axis] = i
            blocks.append(x.blocks[tuple(index)])
        return cls(blocks, x.shape, axis)

    def join(self, computed: Sequence[Any]) -> np.ndarray:
        """The computed blocks (arrays, or distributed futures fetched one at a time) copied into
        one aligned array, each block let go once copied: the memory holds the array and the
        blocks not yet copied, not twice the array as a concatenation does."""
        computed = list(computed)
        if self.axis < 0:
            return aligned(_result(computed[0]))
        out = np.empty(self.shape)
        index = [slice(None)] * out.ndim
        start = 0
        for i in range(len(computed)):
            block, computed[i] = _result(computed[i]), None
            index[self.axis] = slice(start, start + block.shape[self.axis])
            out[tuple(index)] = block
            start += block.shape[self.axis]
            del block
        return out


def _result(item: Any) -> Any:
    """A computed value, or a distributed future's result (the future released)."""
    if not hasattr(item, "result") or isinstance(item, np.ndarray):
        return item
    value = item.result()
    item.release()
    return value


def _compute_joined(joined: Mapping[str, _Blocks], *lazy: Any) -> tuple[dict[str, np.ndarray], list]:
    """``dask.compute`` of ``lazy`` and of the blocks of ``joined`` in one graph (shared blocks
    computed once); the blocks joined (:meth:`_Blocks.join`). On a distributed client the blocks
    stay on the workers until each is fetched and copied: the driver holds one block at a time."""
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is None or type(client).__name__ != "Client":
        blocks, *rest = dask.compute({k: b.blocks for k, b in joined.items()}, *lazy)
        return {k: joined[k].join(blocks.pop(k)) for k in joined}, rest
    flat = [block for b in joined.values() for block in b.blocks]
    futures = client.compute(flat + list(lazy))
    rest = client.gather(futures[len(flat):])
    out, start = {}, 0
    for k, b in joined.items():
        out[k] = b.join(futures[start:start + len(b.blocks)])
        start += len(b.blocks)
    return out, rest


def gather(fields: PointFields, hyperreduction: Delayed | Hyperreduction) -> Gathered:
    """Compute the lazy fields and the lazy ECM together: the ONE compute of a reduction.

    Parameters
    ----------
    fields : lazy PointFields (:func:`point_fields`)
    hyperreduction : the lazy ECM (:func:`~romdask.offline.hyperreduction.hyperreduce`) or a
        computed Hyperreduction (e.g. :func:`~romdask.offline.hyperreduction.full_quadrature`)

    Returns
    -------
    Gathered

    Notes
    -----
    One ``dask.compute`` on the active scheduler: shared blocks (the stress, the mode strains)
    are read / computed once for the ECM, the Gram matrices and the gathered arrays. Memory in
    the driver: the modes and mode strains (``8 n n_dofs + 48 n N`` bytes, joined block by block:
    :func:`_compute_joined`; the strains gathered as ``(N, 6, n)``, ``mode_strain`` a view) and the Gram matrices;
    the stress and p snapshots stay lazy (their Gram matrices are summed over per-subdomain
    tasks, :func:`~romdask.offline.pod.gram`), see "Scale limit" in docs/offline.md.
    """
    # the strains gathered points first, (N, 6, n): full_bases' (6 N, n) layout is then a view
    joined = {"modes": _Blocks.of(fields.modes), "mode_strain": _Blocks.of(fields.mode_strain.transpose(1, 2, 0))}
    if fields.lifting_strain is not None:
        joined["lifting_strain"] = _Blocks.of(fields.lifting_strain.transpose(1, 2, 0))
    lazy = {"gram_stress": gram(_snapshot_rows(fields.stress))}
    if fields.p is not None:
        lazy["gram_p"] = gram(_snapshot_rows(fields.p))
    t0 = time.perf_counter()
    arrays, (got, hyper) = _compute_joined(joined, lazy, hyperreduction)
    logger.info("strains, Gram matrices%s: %.1f s", " and ECM" if isinstance(hyperreduction, Delayed) else "",
                time.perf_counter() - t0)
    if hyper.report.get("ecm_scope"):
        logger.info("ECM (%s, %s rows): %d points, residual %.3g, %.1f s in the ECM tasks", hyper.report["ecm_scope"],
                    hyper.report["ecm_rows"], hyper.points.size, hyper.report["ecm_residual"],
                    hyper.report["ecm_time"])
    # aligned copies of what arrived unaligned from the workers: the products below then give the
    # same bytes on any scheduler (romdask.threads.aligned)
    got = {k: aligned(v) for k, v in got.items()}
    got.update(arrays)
    for k in ("mode_strain", "lifting_strain"):
        if k in got:
            got[k] = got[k].transpose(2, 0, 1)  # (n, N, 6) view
    grams = {q: got[f"gram_{q}"] for q in DUAL_COMPONENTS if f"gram_{q}" in got}
    gathered = PointFields(got["modes"], got["mode_strain"], fields.stress, got.get("lifting_strain"),
                           fields.p, fields.p_source)
    return Gathered(gathered, hyper, grams)


@dataclass(frozen=True, eq=False)
class DualBases:
    """Gappy-POD bases of the dual quantities and their Q-DEIM points (:func:`dual_bases`).

    Attributes
    ----------
    bases : quantity -> full basis, rows = store ip positions x components (components
        fastest): ``"stress"`` (6 N, m_s), ``"p"`` (N, m_p) when p is known
    singular_values : quantity -> all the singular values of its snapshots
    points : sorted Q-DEIM points of every basis (ip positions), to add to the ECM points
    """

    bases: Mapping[str, np.ndarray]
    singular_values: Mapping[str, np.ndarray]
    points: np.ndarray

    @property
    def ranks(self) -> dict[str, int]:
        return {q: int(b.shape[1]) for q, b in self.bases.items()}


def _orthonormal(combination: np.ndarray) -> np.ndarray:
    """The rows of ``combination (m, rows)`` made orthonormal columns ``(rows, m)``, in place: the
    Q of a thin QR with ``diag(R) > 0`` (signs kept), returned as the transposed view.

    Cholesky QR twice (CholeskyQR2, Yamamoto et al. 2015): ``R = chol(C C^T)``, ``C^T <- C^T R^-1``
    (a triangular solve in place), again; orthonormal to round-off for ``cond(C) < 1e8`` (here
    ~1: the method of snapshots' combination is orthonormal up to the Gram matrix's round-off).
    No copy of the ``(m, rows)`` matrix (a Householder QR needed ~4 of them: the driver's peak of
    a reduction). A Cholesky failure or a result not orthonormal to 1e-10 (a (nearly)
    rank-deficient combination) falls back to the Householder QR of the columns (the same span,
    and the same Q: each pass multiplies them by an upper triangle of positive diagonal).
    """
    m = combination.shape[0]
    if m == 0:
        return np.zeros((combination.shape[1], 0))
    columns = combination.T  # (rows, m), Fortran-ordered view: the solves below write into it
    try:
        for _ in range(2):
            r = scipy.linalg.cholesky(columns.T @ columns, lower=False, check_finite=False)
            scipy.linalg.blas.dtrsm(1.0, r, columns, side=1, lower=0, overwrite_b=1)
        if np.abs(columns.T @ columns - np.eye(m)).max() <= 1e-10:
            return columns
    except np.linalg.LinAlgError:
        pass
    q, r = np.linalg.qr(columns)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _kept(s: np.ndarray, tol: float) -> int:
    """How many singular values have ``s_i / s_0 > tol`` (at least one; none when all are 0)."""
    return 0 if s.size == 0 or s[0] == 0.0 else max(1, int(np.count_nonzero(s / s[0] > tol)))


def _scaled(coefficient: Any, factor: float) -> Any:
    return lambda t: factor * np.asarray(coefficient(t), np.float64)


def replayed_snapshots(model: ReducedModel, data: TrainingData, fields: PointFields,
                       scales: Sequence[float]) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Stress and p snapshots of loadings the training runs did not cover, for the Gappy bases:
    each training run's loading times each factor of ``scales``, solved by ``model`` and the law
    replayed along the reduced strains at every point (:func:`~romdask.offline.replay.integrate_history`).

    Returns
    -------
    stress (n, N, 6), p (n, N) or None (a law without state), and a message per scaled loading
    left out (the online solve or the law failed)

    Notes
    -----
    Gappy-POD rebuilds a field within the span of its snapshots, and the stress of a new amplitude
    is not in the span of the training ones to better than ~1-2 % of the largest von Mises stress
    on the plate with a hole (its plastic zone changes shape): from the training basis, the
    Gappy error of 0.006 mm (trained on 0.004 and 0.008 mm) was 1.83 % at 10,360 nodes (best
    approximation in that basis 1.67 %), against 0.56 % for the law replay; with the replayed
    stresses of 0.005 and 0.007 mm added, 0.74 % (docs/offline.md). Cost: one online solve and
    one law replay at every point per scaled loading (``n_t N`` law evaluations; 3.3 s for four
    at 10,360 nodes), ``8 n_t N (6 + n_state)`` bytes each, all held until the Gappy bases.
    """
    if data.thermal:
        raise ValueError("gappy_scales: scaled loadings of thermal runs are not supported yet (the temperatures "
                         "would be scaled too); leave gappy_scales empty.")
    law, stresses, ps, skipped = data.law, [], [], []
    for run, scenario in training_scenarios(data).items():
        for factor in scales:
            coefficients = {k: c if k in scenario.homogeneous else _scaled(c, factor)
                            for k, c in scenario.coefficients.items()}
            scaled = Scenario(scenario.times, coefficients, scenario.homogeneous)
            try:
                with warnings.catch_warnings():  # leaving the training envelope is the point here
                    warnings.simplefilter("ignore", TrainingEnvelopeWarning)
                    result = model.solve(scaled)
            except OnlineConvergenceError as exc:
                skipped.append(f"{run} x {factor:g}: {exc}")
                continue
            strain = np.tensordot(result.coordinates, fields.mode_strain, 1)
            if fields.lifting_strain is not None:
                strain += np.tensordot(result.lifting_coefficients, fields.lifting_strain, 1)
            stress, state, failed = integrate_history(law, strain, result.times)
            if failed:
                skipped.append(f"{run} x {factor:g}: the law failed {failed} time(s) in the replay")
                continue
            stresses.append(stress)
            ps.append(state[..., 0] if law.n_state else None)
    for message in skipped:
        logger.warning("gappy_scales: left out %s", message)
    if not stresses:
        return np.zeros((0,) + fields.stress.shape[1:]), None, skipped
    p = np.concatenate(ps) if ps[0] is not None else None
    return np.concatenate(stresses), p, skipped


def append_snapshots(snapshots: Any, extra: np.ndarray) -> da.Array:
    """Lazy snapshots followed by in-memory ones, chunked alike along the points."""
    snapshots = snapshots if isinstance(snapshots, da.Array) else da.from_array(np.asarray(snapshots, np.float64))
    extra = da.from_array(np.asarray(extra, np.float64), chunks=((extra.shape[0],), *snapshots.chunks[1:]))
    return da.concatenate([snapshots, extra], axis=0)


_P_NOT_FINITE = ("the cumulated plastic strain p (the store's state[:, :, 0], its p field or the law replay) holds "
                 "NaN or inf; re-run the replay or check the solver's state output.")


#: largest block of a Gappy basis in its Q-DEIM tournament (bytes): scipy's pivoted QR takes ~6x
#: its input, so the driver's transient stays ~100 MB whatever the mesh
QDEIM_BLOCK_BYTES = 16 * 2**20


def _qdeim_blocks(chunks: Sequence[int], m: int) -> np.ndarray:
    """Row bounds of the Q-DEIM tournament of an ``m``-column basis chunked by ``chunks``: the
    subdomain blocks, each split into pieces of at most :data:`QDEIM_BLOCK_BYTES`."""
    most = max(m, QDEIM_BLOCK_BYTES // (8 * m))
    bounds = [0]
    for size in chunks:
        pieces = -(-size // most)
        bounds += (bounds[-1] + np.linspace(0, size, pieces + 1).astype(np.int64)[1:]).tolist()
    return np.asarray(bounds, np.int64)


@one_blas_thread
def dual_bases(stress: Any, p: Any, *, tol: float = 1e-6, grams: Mapping[str, np.ndarray] | None = None) -> DualBases:
    """POD bases of the stress and cumulated-plastic-strain snapshots and their Q-DEIM points.

    Parameters
    ----------
    stress : (n_snap, N, 6) stress snapshots, a dask array (one block per subdomain along the
        points, as :func:`point_fields` gives them) or numpy
    p : (n_snap, N) cumulated plastic strain snapshots (dask or numpy), or None
    tol : truncation, keep ``s_i / s_0 > tol`` (at least one mode)
    grams : their Gram matrices when already computed (:attr:`Gathered.grams`), else computed here

    Returns
    -------
    DualBases

    Raises
    ------
    ValueError
        p holds NaN or inf.

    Notes
    -----
    The method of snapshots, distributed as the displacement POD is
    (:func:`~romdask.offline.pod.pod`): the eigenvectors ``V`` of the ``(n_snap, n_snap)`` Gram
    matrix (summed over per-subdomain tasks), the basis ``values^T V_m / s_m`` formed in one
    task per subdomain and gathered block by block into one array (``8 m c N`` bytes: the ``m``
    kept modes, not the ``n_snap`` snapshots), made orthonormal in place (:func:`_orthonormal`:
    the thin QR's Q, signs kept), its Q-DEIM points chosen by blocks (the subdomains, cut to at
    most :data:`QDEIM_BLOCK_BYTES`: :func:`~romdask.offline.gappy.qdeim`'s tournament): the
    driver holds the basis once. The
    basis is a combination of the snapshots, so it lies in their span whatever the round-off.
    The Gram method's singular values
    carry digits down to ``s_0 sqrt(10 n_snap eps)`` (4e-7 s_0 for 80 snapshots; the smaller ones
    are set to 0); for a ``tol`` below that, the R factor of a TSQR (:func:`~romdask.offline.pod.tsqr_r`)
    and its SVD give them (the basis ``values^T V_m / s_m`` from its right singular vectors).
    Plate, 29,120 points, 82 stress snapshots: 0.19 s against 3.0 s for a dense SVD, the same 18
    modes (principal cosines 1 - 2e-12, projection residual equal to 10 digits). Two passes over
    the snapshots when ``grams`` is not given (one with it). Q-DEIM (Drmac & Gugercin 2016)
    picks ``m`` rows of each gathered basis; all the components of their points are kept.

    References
    ----------
    Z. Drmac, S. Gugercin, SISC 38 (2016) (Q-DEIM); F. Casenave et al., arXiv:1812.07228.
    """
    rows = {"stress": _snapshot_rows(stress)}
    if p is not None:
        rows["p"] = _snapshot_rows(p)
    # below the Gram method's accuracy, the R factor of a TSQR (U^T = Q R) instead of the Gram matrix
    deep = {q for q, U in rows.items() if tol < gram_accuracy(U.shape[0])}
    lazy = {q: tsqr_r(U) if q in deep else gram(U) for q, U in rows.items() if q in deep or q not in (grams or {})}
    small = {**(grams or {}), **{q: aligned(v) for q, v in zip(lazy, dask.compute(*lazy.values()))}}
    if "p" in small and not np.all(np.isfinite(small["p"])):
        raise ValueError(_P_NOT_FINITE)
    weights, values = {}, {}
    for q, U in rows.items():
        if q in deep:
            _, s, vt = np.linalg.svd(small[q])
            V = vt.T
        else:
            s, V = _eig_pod(small[q])
            s[s < gram_accuracy(U.shape[0]) * s[:1].max(initial=0.0)] = 0.0
        m = _kept(s, tol)
        weights[q], values[q] = (V[:, :m] / s[:m]).T, s
    combinations, _ = _compute_joined({q: _Blocks.of(combine(weights[q], rows[q])) for q in rows if weights[q].shape[0]})
    bases = {q: _orthonormal(combinations.pop(q) if q in combinations else np.zeros((0, rows[q].shape[1])))
             for q in rows}
    extra = [qdeim_points(b, DUAL_COMPONENTS[q], _qdeim_blocks(rows[q].chunks[1], b.shape[1]))
             for q, b in bases.items() if b.shape[1]]
    points = np.unique(np.concatenate(extra)) if extra else np.zeros(0, np.int64)
    return DualBases(bases, values, points.astype(np.int64))


def _unit_load(mesh, load, n_dofs: int) -> np.ndarray:
    return unit_load_vector(mesh, load)


def indicator_scales(fields: PointFields, points: np.ndarray) -> dict[str, float]:
    """The training scale of the error indicator (:mod:`romdask.online.indicator`): the largest
    norm over the snapshots of each dual quantity at the reduced ``points`` (a pass over the
    snapshot blocks that hold them; only the values at the points are gathered)."""
    lazy = {"stress": fields.stress[:, points, :]}
    if fields.p is not None:
        lazy["p"] = fields.p[:, points]
    (got,) = dask.compute(lazy)
    n_snap = fields.stress.shape[0]
    return {q: float(np.linalg.norm(np.asarray(v).reshape(n_snap, -1), axis=1).max(initial=0.0)) for q, v in got.items()}


def _report(data: TrainingData, basis: POD, gathered: Gathered, duals: DualBases, points: np.ndarray,
            settings: Mapping[str, Any]) -> dict[str, Any]:
    from romdask import __version__

    hyper = gathered.hyperreduction
    report: dict[str, Any] = dict(settings)
    if hyper.report.get("ecm_scope") is None:
        report["tol_ecm"] = None
    report.update(
        training_runs=list(data.runs), n_snapshots=int(gathered.fields.stress.shape[0]),
        singular_values=basis.singular_values.tolist(), n_modes=int(basis.n_modes),
        stress_replayed=data.stress_replayed, p_source=gathered.fields.p_source,
        n_subdomains=data.layout.n_subdomains, n_points_full=int(gathered.fields.stress.shape[1]),
    )
    # run timings (ecm_time) stay out of the model: the same store and options save the same bytes
    report.update({k: v for k, v in hyper.report.items() if k not in RUN_TIMINGS})
    report["gappy_singular_values"] = {q: s.tolist() for q, s in duals.singular_values.items()}
    report["indicator_scale"] = indicator_scales(gathered.fields, points)
    report["qdeim_points_added"] = int(points.size - hyper.points.size)
    report["gappy_ranks"] = duals.ranks
    report["training_loads"] = data.training_loads()
    report["load_coefficients"] = "value * amplitude(t) of each run's pattern (unit load vectors and liftings)"
    report["signature"] = load_signature(data.layout.mesh, data.dirichlet, data.loads, thermal=data.thermal)
    if data.thermal:
        report["thermal"] = {
            "temperature_source": {r: t.source for r, t in data.temperatures.items()},
            "initial_temperature_source": {r: t.initial_source for r, t in data.temperatures.items()},
            "common_initial_temperature": data.initial_temperature() is not None,
        }
    report["romdask_version"] = __version__
    return report


def thermal_rows(data: TrainingData, positions: np.ndarray) -> dict[str, np.ndarray] | None:
    """The temperature operator's rows at store ip ``positions`` (None for athermal runs).

    Returns
    -------
    dict
        ``nodes`` (r, n_en) solver node ids (-1 padding), ``weights`` (r, n_en), and
        ``initial`` (r,) the runs' common initial temperature there (absent when they differ).

    Notes
    -----
    Builds the whole operator (:func:`romdask.fem.temperature.temperature_operator`,
    ``n_points n_en`` entries) in the driver, as the mode strains already are.
    """
    if not data.thermal:
        return None
    mesh = data.layout.mesh
    operator = temperature_operator(mesh)
    rows = np.asarray(data.layout.ip_points, np.int64)[positions]
    nodes, weights = operator_rows(operator, rows, mesh.node_ids)
    out = {"nodes": nodes, "weights": weights}
    initial = data.initial_temperature()
    if initial is not None:
        out["initial"] = operator[rows] @ initial
    return out


@one_blas_thread
def assemble(data: TrainingData, lifting: Lifting, basis: POD, gathered: Gathered, duals: DualBases, *,
             settings: Mapping[str, Any]) -> ReducedModel:
    """The reduced model: operators at the ECM and Q-DEIM points, unit load vectors, report.

    Parameters
    ----------
    data, lifting, basis, gathered, duals : the outputs of the previous stages
    settings : JSON options recorded first in the report (``tol_pod``, ``tol_ecm``,
        ``gappy_tol``, ``product``, ``pod_method``)

    Returns
    -------
    ReducedModel
        Reduced points = ECM points and Q-DEIM points (weight 0), sorted; one law;
        ``metadata["reduce"]`` the report (see docs/offline.md), with the load patterns' and
        mesh's signature (:func:`romdask.problem.patterns.load_signature`).

    Notes
    -----
    ``load_vectors[p] = modes @ f_p`` with ``f_p`` the nodal force / pressure vector of value 1
    (full quadrature, never hyper-reduced): one assembly per pattern, O(n_dofs n). The lifting's
    internal-force contribution comes online from the law at the reduced points, so
    ``lifting_load`` is zero. Thermal runs: the temperature operator's rows at the reduced
    points (one operator for the ECM and the Q-DEIM points) and the common initial temperature
    (:func:`thermal_rows`).
    """
    fields, hyper = gathered.fields, gathered.hyperreduction
    mesh, law = data.layout.mesh, data.law
    points = np.union1d(hyper.points, duals.points) if duals.points.size else np.sort(hyper.points)
    weights = np.zeros(points.size)
    weights[np.searchsorted(points, hyper.points)] = hyper.weights
    gappy = {q: b[point_rows(points, DUAL_COMPONENTS[q])] for q, b in duals.bases.items()}
    n_dofs = 3 * mesh.n_nodes
    loads = data.loads
    F = np.array([_unit_load(mesh, load, n_dofs) for load in loads]).reshape(len(loads), n_dofs)
    lifting_operators = None
    if lifting.n_liftings:
        lifting_operators = {
            "lifting_modes_strain": fields.lifting_strain[:, points, :].transpose(1, 2, 0),
            "lifting_names": lifting.names,
            "lifting_load": np.zeros((lifting.n_liftings, basis.n_modes)),
        }
    return ReducedModel(
        modes_strain=fields.mode_strain[:, points, :].transpose(1, 2, 0),
        weights=weights,
        point_ids=data.layout.ip_points[points],
        materials=((law, np.arange(points.size)),),
        load_vectors=F @ fields.modes.T,
        load_names=tuple(load.name for load in loads),
        initial_state=law.initial_state(points.size),
        lifting=lifting_operators,
        gappy=gappy,
        metadata={"reduce": _report(data, basis, gathered, duals, points, settings)},
        temperature=thermal_rows(data, points),
    )


def full_bases(data: TrainingData, lifting: Lifting, gathered: Gathered, duals: DualBases) -> dict[str, np.ndarray]:
    """The mesh-sized arrays saved under ``full/`` for reconstructions and exports.

    Returns
    -------
    dict
        ``"modes"`` (n_dofs, n), ``"lifting"`` (n_dofs, n_l; absent without lifting),
        ``"gappy_stress"`` (6 N, m_s), ``"gappy_p"`` (N, m_p; absent without p), ``"strain"``
        (6 N, n) and ``"lifting_strain"`` (6 N, n_l) (components fastest), ``"ip_points"``,
        ``"ip_element"``, ``"ip_local_point"`` (N,) int64: the global point, the store element
        and the local point of each ip position; thermal runs: ``"temperature_nodes"``,
        ``"temperature_weights"`` (N, n_en) the temperature operator at every ip position
        (solver node ids) and ``"initial_temperature"`` (N,) (when the runs share one), for
        :func:`romdask.online.replay_law`. Rows = full-space index, columns = basis vectors;
        see :data:`romdask.online.FULL_KEYS`.
    """
    layout, fields = data.layout, gathered.fields
    n_modes, n_points = fields.mode_strain.shape[:2]
    ip_points = np.asarray(layout.ip_points, np.int64)
    full = {"modes": fields.modes.T, "gappy_stress": duals.bases["stress"], "ip_points": ip_points,
            "ip_element": np.asarray(layout.ip_element, np.int64)[ip_points],
            "ip_local_point": np.asarray(layout.ip_local, np.int64)[ip_points],
            "strain": fields.mode_strain.transpose(1, 2, 0).reshape(6 * n_points, n_modes)}
    if lifting.n_liftings:
        full["lifting"] = lifting.vectors.T
        full["lifting_strain"] = fields.lifting_strain.transpose(1, 2, 0).reshape(6 * n_points, lifting.n_liftings)
    if "p" in duals.bases:
        full["gappy_p"] = duals.bases["p"]
    thermal = thermal_rows(data, np.arange(n_points))
    if thermal is not None:
        full["temperature_nodes"], full["temperature_weights"] = thermal["nodes"], thermal["weights"]
        if "initial" in thermal:
            full["initial_temperature"] = thermal["initial"]
    return full
