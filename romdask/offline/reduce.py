"""The offline pipeline: snapshot store -> :class:`Reduction` (a reduced model and its full bases).

:func:`reduce` composes named stages, each a function with one return type:

====================  ======================================  =====================================
stage                 function                                returns
====================  ======================================  =====================================
training data         :func:`~.training.training_data`        TrainingData (law, patterns, snapshots)
lifting               :func:`~.training.lift`                 Lifting (lazy lifted snapshots)
POD                   :func:`~.pod.pod`                       POD (lazy modes)
integration points    :func:`~.stages.point_fields`           PointFields (lazy strains, stress, p)
ECM                   :func:`~.hyperreduction.hyperreduce`    Delayed -> Hyperreduction
gather                :func:`~.stages.gather`                 Gathered (the one compute)
Gappy-POD             :func:`~.stages.dual_bases`             DualBases (bases, Q-DEIM points)
assemble              :func:`~.stages.assemble`               ReducedModel
====================  ======================================  =====================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.fem.quadrature import quadrature
from romdask.materials import Material
from romdask.online.model import ReducedModel

from romdask.threads import blas_single_thread
from .hyperreduction import full_quadrature, hyperreduce
from .pod import pod
from .stages import RUN_TIMINGS, append_snapshots, assemble, dual_bases, full_bases, gather, point_fields, replayed_snapshots
from .training import lift, training_data

__all__ = ["ReduceOptions", "Reduction", "reduce"]

_POD_METHODS = ("snapshots", "tsqr", "randomized")


@dataclass(frozen=True)
class ReduceOptions:
    """Tolerances and choices of :func:`reduce` (validated at construction).

    Parameters
    ----------
    tol_pod : POD truncation, keep the modes with ``s_i / s_0 > tol_pod`` (>= 0)
    tol_ecm : ECM tolerance (> 0), relative, on the reduced internal forces and reactions of
        the training snapshots
    product : POD inner product: "l2" (consistent mass) or None (Euclidean)
    gappy_tol : truncation (relative singular value, >= 0) of the Gappy-POD bases of "stress"
        and "p"
    ecm : False keeps every integration point with its full weight (no hyper-reduction; for
        checks)
    ecm_scope : "global" (:func:`~romdask.offline.ecm`), "subdomains"
        (:func:`~romdask.offline.ecm_subdomains`, point blocks = the store's subdomains) or
        "auto" (subdomains when the store has more than one)
    ecm_rows : "summed" (one integrand per snapshot and mode or lifting: the reduced forces) or
        "component" (one per Voigt component too: 6x the rows, 2.5-4.5x the points)
    pod_method : :func:`~romdask.offline.pod`'s method: "snapshots", "tsqr" or "randomized"
    gappy_scales : factors (> 0) of the training runs' loadings whose reduced solutions, the law
        replayed along them at every point, join the Gappy-POD snapshots
        (:func:`~romdask.offline.stages.replayed_snapshots`): Gappy-POD then rebuilds the stress
        and p of amplitudes between and around the training ones (plate with a hole, 1,105
        nodes, trained on 0.004 and 0.008 mm, (0.8, 1.2): von Mises error at 0.006 mm 1.93 % ->
        0.61 %, at 0.007 mm 2.13 % -> 1.02 %; docs/offline.md). Empty (default): the training
        snapshots only.

    Raises
    ------
    ValueError
        A tolerance out of range or an unknown choice, saying what is allowed.
    TypeError
        ``ecm`` not a bool.
    """

    tol_pod: float = 1e-6
    tol_ecm: float = 1e-5
    product: str | None = "l2"
    gappy_tol: float = 1e-6
    ecm: bool = True
    ecm_scope: str = "auto"
    ecm_rows: str = "summed"
    pod_method: str = "snapshots"
    gappy_scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "gappy_scales", tuple(float(f) for f in self.gappy_scales))
        if not all(np.isfinite(f) and f > 0 for f in self.gappy_scales):
            raise ValueError(f"gappy_scales must be positive finite factors; got {self.gappy_scales}")
        if not (self.tol_pod >= 0 and self.tol_ecm > 0 and self.gappy_tol >= 0):
            raise ValueError(f"need tol_pod >= 0, tol_ecm > 0, gappy_tol >= 0; got {self.tol_pod}, "
                             f"{self.tol_ecm}, {self.gappy_tol}")
        if self.product not in ("l2", None):
            raise ValueError(f"product must be 'l2' (consistent mass) or None (Euclidean); got {self.product!r}")
        if self.ecm_scope not in ("auto", "global", "subdomains"):
            raise ValueError(f"ecm_scope must be 'auto', 'global' or 'subdomains'; got {self.ecm_scope!r}")
        if self.ecm_rows not in ("summed", "component"):
            raise ValueError(f"ecm_rows must be 'summed' or 'component'; got {self.ecm_rows!r}")
        if self.pod_method not in _POD_METHODS:
            raise ValueError(f"pod_method must be one of {_POD_METHODS}; got {self.pod_method!r}")
        if not isinstance(self.ecm, bool):
            raise TypeError(f"ecm must be True or False; got {self.ecm!r}")

    def scope(self, n_subdomains: int) -> str:
        """The ECM scope on a store of ``n_subdomains`` ("auto" resolved)."""
        if self.ecm_scope != "auto":
            return self.ecm_scope
        return "subdomains" if n_subdomains > 1 else "global"

    def settings(self) -> dict[str, Any]:
        """The options recorded at the head of the report."""
        settings = {"tol_pod": self.tol_pod, "tol_ecm": self.tol_ecm, "gappy_tol": self.gappy_tol,
                    "product": self.product, "pod_method": self.pod_method}
        return settings | ({"gappy_scales": list(self.gappy_scales)} if self.gappy_scales else {})


@dataclass(frozen=True, eq=False)
class Reduction:
    """The outcome of :func:`reduce`: the model, its full bases and the store's mesh.

    Attributes
    ----------
    model : the ReducedModel (small; what the online stage needs)
    full : the mesh-sized arrays for reconstructions and exports, keys of
        :data:`romdask.online.FULL_KEYS` (see :func:`romdask.offline.stages.full_bases`)
    mesh : the store's mesh (store order: the rows of ``full``), saved under ``full/mesh``
    timings : seconds spent in parts of this run (``ecm_time``: the ECM tasks); not saved with
        the model, so that the same store and options save the same bytes
    """

    model: ReducedModel
    full: Mapping[str, np.ndarray] = field(default_factory=dict)
    mesh: Mesh | None = None
    timings: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "full", MappingProxyType(dict(self.full)))
        object.__setattr__(self, "timings", MappingProxyType(dict(self.timings)))

    @property
    def report(self) -> dict[str, Any]:
        """``model.metadata["reduce"]`` (tolerances, singular values, ECM, Gappy ranks,
        signature) and this run's :attr:`timings`."""
        return {**self.model.metadata["reduce"], **self.timings}

    def save(self, path: str | os.PathLike, *, overwrite: bool = False, compression: str | None = "lz4") -> Path:
        """Write the model with its full bases and mesh (atomically): :meth:`ReducedModel.save`;
        ``overwrite`` replaces a romdask model only (a store or a folder of inputs is refused).

        Returns
        -------
        The path written. Read back with :meth:`ReducedModel.open`,
        :func:`romdask.online.open_full` and :func:`romdask.online.read_full_mesh`.
        """
        return self.model.save(path, full=dict(self.full), mesh=self.mesh, overwrite=overwrite,
                               compression=compression)


def reduce(
    store_path: str | Path,
    law: Material | None = None,
    *,
    runs: Sequence[str] | None = None,
    options: ReduceOptions | None = None,
) -> Reduction:
    """Build a reduced model from the runs of a snapshot store (offline stage, end to end).

    Parameters
    ----------
    store_path : the snapshot store; every training run carries
        ``metadata={"loads": describe_loads(problem)}``
        (:func:`romdask.problem.patterns.run_metadata` writes it with the law)
    law : the constitutive law of every integration point; None: the runs'
        ``metadata["material"]`` (:func:`~romdask.offline.training.training_law`)
    runs : training run names (default: every complete run)
    options : ReduceOptions (default ``ReduceOptions()``)

    Returns
    -------
    Reduction
        ``model`` (one law for all points; ``point_ids`` are global integration points of the
        store mesh, ``layout.ip_points[position]``), ``full`` (modes, liftings, Gappy bases,
        strains, ip layout) and ``mesh``; ``reduction.save(path)`` writes them all.
        ``report`` (``model.metadata["reduce"]`` and the run's ``timings``): tolerances,
        singular values, modes, ECM residual and points per subdomain, Gappy ranks, where p came
        from, training runs and loads, the patterns' and mesh's signature, the romdask version.
        The same store and options give the same model bytes on any scheduler
        (docs/offline.md, "Determinism").

    Raises
    ------
    ValueError
        A run without load description or law, runs with different patterns or laws,
        overlapping nonzero Dirichlet patterns, a NaN in the cumulated plastic strain.
    TypeError
        ``options`` is not a ReduceOptions (e.g. a dict: ``ReduceOptions(**d)``).

    Notes
    -----
    Stages: :func:`~.training.training_data` -> :func:`~.training.lift` -> :func:`~.pod.pod`
    (the Gram matrix is computed here) -> :func:`~.stages.point_fields` and
    :func:`~.hyperreduction.hyperreduce` (lazy) -> :func:`~.stages.gather` (one
    ``dask.compute``) -> :func:`~.stages.dual_bases` -> :func:`~.stages.assemble`.
    Load patterns and liftings are UNIT patterns: the online coefficient of pattern ``i`` is
    ``value_i * amplitude_i(t)``. The ECM integrates the reduced internal forces AND the
    reactions of the liftings of every training snapshot.

    Cost: the POD, the strains, the ECM and the Gappy-POD bases are Dask graphs with one task
    per subdomain; only Gram matrices, integrals, the selected columns and the results travel.
    The modes, the mode strains and the Gappy bases are gathered in the driver for the model
    (``48 (n + m_stress) N`` bytes for N integration points, each held once: joined block by
    block, orthonormalized and Q-DEIM'd in place), not the stress snapshots; three
    passes over them (strains, Gram matrices and ECM; the Gappy bases; the values at the reduced
    points). Measurements and design notes: docs/offline.md.

    References
    ----------
    J. A. Hernandez et al., CMAME 313 (2017) 687-722 (ECM); Z. Drmac, S. Gugercin, SISC 38 (2016)
    (Q-DEIM); F. Casenave et al., arXiv:1812.07228 (the offline/online framework).
    """
    options = ReduceOptions() if options is None else options
    if not isinstance(options, ReduceOptions):
        raise TypeError(f"options must be a romdask.offline.ReduceOptions; got {type(options).__name__}")
    # one BLAS thread in this process for the whole reduction (the driver's factorizations too):
    # the model's bytes then do not depend on the process's BLAS thread count
    with blas_single_thread():
        return _reduce(store_path, law, runs, options)


def _reduce(store_path, law, runs, options: ReduceOptions) -> Reduction:
    data = training_data(store_path, law, runs=runs)
    lifting = lift(data)
    basis = pod(lifting.displacement, product=options.product, layout=data.store_path, tol=options.tol_pod,
                method=options.pod_method)
    fields = point_fields(data, basis.modes, lifting)
    layout = data.layout
    weights = quadrature(layout.mesh).weights[layout.ip_points]  # full weights, ip-field order
    if options.ecm:
        cubature = hyperreduce(fields.stress, fields.mode_strain, fields.lifting_strain, weights,
                               layout.ip_offsets, tol=options.tol_ecm, scope=options.scope(layout.n_subdomains),
                               rows=options.ecm_rows)
    else:
        cubature = full_quadrature(weights)
    gathered = gather(fields, cubature)
    duals = dual_bases(fields.stress, fields.p, tol=options.gappy_tol, grams=gathered.grams)
    model = assemble(data, lifting, basis, gathered, duals, settings=options.settings())
    if options.gappy_scales:  # Gappy bases from the training and the replayed snapshots
        got = gathered.fields
        stress, p, skipped = replayed_snapshots(model, data, got, options.gappy_scales)
        if stress.shape[0]:
            p_all = None if got.p is None else got.p if p is None else append_snapshots(got.p, p)
            duals = dual_bases(append_snapshots(got.stress, stress), p_all, tol=options.gappy_tol)
        settings = options.settings() | {"gappy_replayed_snapshots": int(stress.shape[0]), "gappy_left_out": skipped}
        model = assemble(data, lifting, basis, gathered, duals, settings=settings)
    timings = {k: float(v) for k, v in gathered.hyperreduction.report.items() if k in RUN_TIMINGS}
    return Reduction(model, full_bases(data, lifting, gathered, duals), layout.mesh, timings)
