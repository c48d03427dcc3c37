"""Enrich a reduced model with high-fidelity snapshots: new modes, Gappy bases, reduced points.

An :class:`Enrichable` holds a reduced model with what an enrichment changes (its full bases as
numpy arrays, the store mesh, the training stress energy) and the high-fidelity problem it
reduces (for the maps between the problem's and the store's node and point orders and the unit
load vectors). :func:`enrich` adds the snapshots of a few high-fidelity increments:

1. **modes**: the snapshots (displacement minus lifting) are orthogonalized against the modes in
   the model's POD product (two Gram-Schmidt passes) and the POD of the remainders adds the
   directions whose singular value exceeds ``tol_pod`` times the training's largest: the exact
   incremental POD of ``[training snapshots, new snapshots]`` on the span, the old modes kept as
   they are (their operators and the reduced coordinates of a running computation stay valid);
2. **Gappy-POD bases** of the stress and p: SVD of ``[Phi diag(s), new snapshots]`` (the
   training snapshots through their truncated SVD), truncated at the model's ``gappy_tol``;
3. **ECM**: the integrands of the enriched stress "energy" basis ``Phi diag(s)`` (the rotated,
   truncated training and new stress snapshots: the same Gram matrix, hence the same compressed
   rows up to the truncation) against every mode and lifting, warm-started from the model's ECM
   points (:func:`romdask.offline.hyperreduce`, one block); the Q-DEIM points of the new Gappy
   bases and the indicator's points are added with weight 0;
4. the error indicator stays measured at the reduced points of the model as trained
   (``metadata["reduce"]["indicator_points"]``), with its training scale: there its calibration
   holds. Measured at every point of the enriched model it lost up to a factor 3 in sensitivity
   (plate, 3 cycles, 188 -> 2,033 points): the points added where the new snapshots are well
   represented dilute a misfit that stays where the reduced model is wrong;
5. the reduced operators at the new points (:class:`~romdask.online.ReducedModel`), the full
   bases extended (:attr:`Enrichable.full`).

The mesh-sized work is the strains of the new modes (one pass), the SVDs of ``(6 N, m + w)``
matrices and the ECM on ``(m + w)(n + n_l)`` compressed rows: seconds for 10^4 points, no store.

References
----------
F. Casenave, N. Akkari, "An error indicator-based adaptive reduced order model for nonlinear
structural mechanics", Math. Comput. Appl. 24(2) (2019); M. Brand, "Incremental singular value
decomposition of uncertain data with missing values", ECCV 2002 (incremental SVD).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from romdask.fem.mesh import Mesh
from romdask.fem.quadrature import Quadrature, mass_matrix, quadrature, strain
from romdask.offline.gappy import point_rows, qdeim_points
from romdask.offline.hyperreduction import hyperreduce
from romdask.online import ReducedModel, open_full, read_full_mesh
from romdask.problem import Problem
from romdask.problem.vectors import unit_load_vector
from romdask.store.layout import ip_layout, mesh_difference, node_map

__all__ = ["Enrichable", "enrich", "enrichable"]

#: Voigt components of the Gappy quantities
_COMPONENTS = {"stress": 6, "p": 1}


@dataclass(frozen=True, eq=False)
class Enrichable:
    """A reduced model ready for :func:`enrich` (:func:`enrichable` builds it from a saved model).

    Attributes
    ----------
    model : the ReducedModel (one law)
    full : the full bases as numpy arrays (keys of :data:`romdask.online.FULL_KEYS`; rows in the
        store's dof / ip-position order)
    singular_values : quantity -> the singular values of the kept Gappy modes (their training energy)
    mesh : the store mesh; quad : its quadrature (strains of new modes)
    problem : the high-fidelity problem; dof_map, ip_map : ``store_values = problem_values[map]``
        for dofs and for integration points (ip positions)
    weights : (N,) full quadrature weights at the ip positions
    mass : the POD product matrix in the store's dof order, or None (Euclidean)
    loads : (q, n_dofs) unit load vectors of the model's load patterns, store dof order
    """

    model: ReducedModel
    full: dict[str, np.ndarray]
    singular_values: dict[str, np.ndarray]
    mesh: Mesh
    quad: Quadrature
    problem: Problem
    dof_map: np.ndarray
    ip_map: np.ndarray
    weights: np.ndarray
    mass: sp.csr_matrix | None
    loads: np.ndarray

    @property
    def report(self) -> dict[str, Any]:
        return self.model.metadata["reduce"]

    @cached_property
    def positions(self) -> np.ndarray:
        """The model's reduced points as ip positions (rows of the full arrays)."""
        return self.positions_of(self.model.point_ids)

    def positions_of(self, point_ids: np.ndarray) -> np.ndarray:
        """Global point ids as ip positions (rows of the full arrays)."""
        inverse = np.empty(int(self.full["ip_points"].max()) + 1, np.int64)
        inverse[self.full["ip_points"]] = np.arange(self.full["ip_points"].size)
        return inverse[np.asarray(point_ids, np.int64)]

    @property
    def indicator_points(self) -> np.ndarray:
        """Global ids of the points the indicator is measured at: those of the model as trained
        (where its training scale and calibration were measured), kept by every enrichment."""
        ids = self.report.get("indicator_points")
        return self.model.point_ids if ids is None else np.asarray(ids, np.int64)

    def project(self, displacement: np.ndarray, lifting_coefficients: np.ndarray) -> np.ndarray:
        """Reduced coordinates of store-ordered displacements (rows): ``Phi^T P (u - L a)``."""
        lifted = displacement - lifting_coefficients @ self.full["lifting"].T if "lifting" in self.full else displacement
        return self._product(lifted) @ self.full["modes"]

    def _product(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.mass is None else np.asarray(self.mass @ rows.T).T

    def to_store(self, displacement: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Problem-ordered (..., n_dofs) displacements and (..., n_points, k) point values in the
        store's orders."""
        return displacement[..., self.dof_map], points[..., self.ip_map, :]

    def to_problem_dofs(self, displacement: np.ndarray) -> np.ndarray:
        out = np.empty_like(displacement)
        out[..., self.dof_map] = displacement
        return out

    def to_problem_points(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(values.shape[:-2] + (self.quad.n_points, values.shape[-1]))
        out[..., self.ip_map, :] = values
        return out

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """The (enriched) model with its full bases and mesh (:meth:`ReducedModel.save`)."""
        return self.model.save(path, full=self.full, mesh=self.mesh, overwrite=overwrite)


def _point_map(store: Mesh, full: dict[str, np.ndarray], problem_mesh: Mesh) -> np.ndarray:
    _, _, offset = ip_layout(problem_mesh)
    element = problem_mesh.element_index(store.element_ids)
    return offset[element[full["ip_element"]]] + full["ip_local_point"]


def enrichable(model_path: str | os.PathLike, problem: Problem) -> Enrichable:
    """Open a saved reduced model (with its full bases and mesh) for :func:`enrich`.

    Parameters
    ----------
    model_path : a model saved by ``reduce(...).save(path)`` (full bases and mesh)
    problem : the high-fidelity problem the model reduces (its mesh equals the store's up to
        numbering; its load patterns the model's)

    Raises
    ------
    ValueError
        No full bases or mesh, a thermal model or one with several laws (not supported yet), a
        mesh or load patterns that differ from the model's.
    """
    model = ReducedModel.open(model_path)
    if model.thermal:
        raise ValueError(f"{model_path}: enrichment of thermal models is not supported yet")
    if len(model.materials) != 1:
        raise ValueError(f"{model_path}: enrichment needs a one-law model; this one has {len(model.materials)}")
    lazy = open_full(model_path)
    if lazy.strain is None or lazy.modes is None or not lazy.has_mesh or lazy.ip_element is None:
        raise ValueError(f"{model_path}: enrichment needs the full modes, strains, layout and mesh saved with the model "
                         "(reduce(...).save(path))")
    mesh = read_full_mesh(model_path)
    difference = mesh_difference(mesh, problem.mesh)
    if difference is not None:
        raise ValueError(f"the problem's mesh is not the model's ({model_path}): {difference}")
    names = tuple(load.name for load in problem.loads)
    if names != model.load_names:
        raise ValueError(f"the problem's loads {list(names)} are not the model's {list(model.load_names)}")
    full = {k: np.asarray(getattr(lazy, k)) for k in ("modes", "lifting", "strain", "lifting_strain", "ip_points",
                                                       "ip_element", "ip_local_point") if getattr(lazy, k) is not None}
    full.update({f"gappy_{q}": np.asarray(b) for q, b in lazy.gappy.items()})
    report = model.metadata["reduce"]
    values = {q: np.asarray(report["gappy_singular_values"][q][: full[f"gappy_{q}"].shape[1]])
              for q in lazy.gappy}
    nodes = node_map(mesh, problem.mesh)
    dof_map = (3 * nodes[:, None] + np.arange(3)).ravel()
    quad = quadrature(mesh)
    weights = quad.weights[full["ip_points"]]
    mass = mass_matrix(mesh, 1.0).tocsr() if report.get("product") == "l2" else None
    loads = np.array([unit_load_vector(problem.mesh, load)[dof_map] for load in problem.loads]).reshape(
        len(problem.loads), mesh.n_dofs)
    return Enrichable(model, full, values, mesh, quad, problem, dof_map, _point_map(mesh, full, problem.mesh),
                      weights, mass, loads)


def _new_modes(base: Enrichable, lifted: np.ndarray, tol: float) -> np.ndarray:
    """(k, n_dofs) new modes: the POD of the snapshots' remainders off the modes (product P),
    singular values above ``tol`` times the training's largest."""
    modes = base.full["modes"]
    rest = lifted.copy()
    for _ in range(2):  # twice is enough (Kahan-Parlett)
        rest -= (base._product(rest) @ modes) @ modes.T
    gram = base._product(rest) @ rest.T
    values, vectors = np.linalg.eigh((gram + gram.T) / 2)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    s0 = float(base.report["singular_values"][0])
    keep = values > (tol * s0) ** 2
    new = (vectors[:, keep] / np.sqrt(values[keep])).T @ rest
    for _ in range(2):  # orthonormal against the modes and among themselves, to round-off
        new -= (base._product(new) @ modes) @ modes.T
        q = np.linalg.cholesky(base._product(new) @ new.T) if new.shape[0] else np.zeros((0, 0))
        new = np.linalg.solve(q, new) if new.shape[0] else new
    return new


def _dual_update(basis: np.ndarray, values: np.ndarray, snapshots: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """SVD of ``[basis diag(values), snapshots^T]`` truncated at ``s_i / s_0 > tol``."""
    u, s, _ = np.linalg.svd(np.hstack([basis * values, snapshots.T]), full_matrices=False)
    m = max(1, int(np.count_nonzero(s / s[0] > tol)))
    return u[:, :m], s[:m]


def _strains(base: Enrichable, modes: np.ndarray) -> np.ndarray:
    """(6 N, k) strains of store-ordered modes (k, n_dofs) at the ip positions."""
    points = base.full["ip_points"]
    return np.stack([strain(base.quad, m)[points].ravel() for m in modes], axis=1) if len(modes) else \
        np.zeros((6 * points.size, 0))


def enrich(base: Enrichable, displacement: np.ndarray, stress: np.ndarray, state: np.ndarray,
           lifting_coefficients: np.ndarray, *, tol_pod: float | None = None, tol_ecm: float | None = None,
           gappy_tol: float | None = None) -> tuple[Enrichable, dict[str, Any]]:
    """The model enriched with high-fidelity snapshots (see the module's notes).

    Parameters
    ----------
    base : the model to enrich
    displacement : (w, n_dofs) displacements, the PROBLEM's dof order
    stress : (w, n_points, 6) stresses; state : (w, n_points, n_state) internal variables (p
        first), the problem's quadrature order
    lifting_coefficients : (w, n_l) the liftings' coefficients at those times
    tol_pod, tol_ecm, gappy_tol : the truncations of the new modes (relative to the training's
        largest singular value), the ECM and the Gappy bases; default: the model's

    Returns
    -------
    (Enrichable, report): the enriched model (new modes appended: the old reduced coordinates
    are its first ones) and ``{"new_modes", "n_modes", "n_points", "ecm_points", "ecm_residual", "ecm_seconds",
    "gappy_ranks"}`` (``ecm_seconds``: the integrand rows and the ECM, most of an enrichment's time
    on large models).
    """
    report = base.report
    u, sigma = base.to_store(np.atleast_2d(displacement), np.asarray(stress))
    p = np.asarray(state)[..., base.ip_map, 0] if base.model.n_state_max else None
    lifted = u - lifting_coefficients @ base.full["lifting"].T if "lifting" in base.full else u
    tol_pod = float(report["tol_pod"]) if tol_pod is None else float(tol_pod)
    new = _new_modes(base, lifted, tol_pod)
    full = dict(base.full)
    full["modes"] = np.hstack([base.full["modes"], new.T])
    full["strain"] = np.hstack([base.full["strain"], _strains(base, new)])
    values = dict(base.singular_values)
    tol = float(report["gappy_tol"]) if gappy_tol is None else float(gappy_tol)
    n_snap = sigma.shape[0]
    full["gappy_stress"], values["stress"] = _dual_update(base.full["gappy_stress"], values["stress"],
                                                          sigma.reshape(n_snap, -1), tol)
    if p is not None and "gappy_p" in full:
        full["gappy_p"], values["p"] = _dual_update(base.full["gappy_p"], values["p"], p, tol)
    n_points, n_modes = base.weights.size, full["modes"].shape[1]
    mode_strain = full["strain"].reshape(n_points, 6, n_modes).transpose(2, 0, 1)
    lifting_strain = (full["lifting_strain"].reshape(n_points, 6, -1).transpose(2, 0, 1)
                      if "lifting_strain" in full else None)
    energy = (full["gappy_stress"] * values["stress"]).T.reshape(-1, n_points, 6)
    old = base.positions[base.model.weights > 0]
    t0 = time.perf_counter()
    if report.get("tol_ecm") is None:  # a model without hyper-reduction stays so
        ecm_points, ecm_weights, residual = np.arange(n_points), base.weights, 0.0
    else:
        cubature = hyperreduce(energy, mode_strain, lifting_strain, base.weights, np.array([0, n_points]),
                               tol=float(report["tol_ecm"] if tol_ecm is None else tol_ecm), scope="global",
                               rows=str(report.get("ecm_rows", "summed")).split()[0], initial=old).compute(scheduler="sync")
        ecm_points, ecm_weights = cubature.points, cubature.weights
        residual = float(cubature.report["ecm_residual"])
    ecm_seconds = time.perf_counter() - t0
    extra = [qdeim_points(full[f"gappy_{q}"], _COMPONENTS[q]) for q in values]
    indicator_points = base.indicator_points
    points = np.union1d(ecm_points, np.concatenate([*extra, base.positions_of(indicator_points)]))
    weights = np.zeros(points.size)
    weights[np.searchsorted(points, ecm_points)] = ecm_weights
    model = base.model
    law = model.materials[0][0]
    lifting = None
    if model.lifting is not None:
        lifting = {"lifting_modes_strain": lifting_strain[:, points, :].transpose(1, 2, 0),
                   "lifting_names": model.lifting["lifting_names"],
                   "lifting_load": np.zeros((lifting_strain.shape[0], n_modes))}
    metadata = dict(model.metadata)
    enrichments = [*metadata.get("enrichments", []),
                   {"new_modes": int(new.shape[0]), "snapshots": int(n_snap), "n_modes": int(n_modes),
                    "n_points": int(points.size), "ecm_points": int(ecm_points.size), "ecm_residual": residual,
                    "ecm_seconds": float(ecm_seconds),
                    "gappy_ranks": {q: int(full[f"gappy_{q}"].shape[1]) for q in values}}]
    metadata["enrichments"] = enrichments
    # the Gappy singular values of the enriched bases (the kept ones: the incremental SVD knows no others)
    metadata["reduce"] = {**report, "gappy_singular_values": {q: [float(v) for v in values[q]] for q in values},
                          "indicator_points": [int(i) for i in np.sort(indicator_points)]}
    enriched = replace(
        model, modes_strain=mode_strain[:, points, :].transpose(1, 2, 0), weights=weights,
        point_ids=full["ip_points"][points], materials=((law, np.arange(points.size)),),
        load_vectors=base.loads @ full["modes"], initial_state=law.initial_state(points.size), lifting=lifting,
        gappy={q: full[f"gappy_{q}"][point_rows(points, _COMPONENTS[q])] for q in values}, metadata=metadata,
    )
    return replace(base, model=enriched, full=full, singular_values=values), enrichments[-1]
