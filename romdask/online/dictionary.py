"""A dictionary of local reduced models (ROM-net): the models, the clusters of training runs they
were reduced from, and the classifier that picks one for a new scenario before any solve.

Saved as one Zarr v3 group, versioned and checksummed::

    dictionary.zarr/
      zarr.json         attrs: format "romdask-model-dictionary", version, roms (names), clusters
                        (member runs), medoids, selector (:mod:`romdask.online.selection`),
                        metadata (dissimilarity matrix, a-priori criterion, ...), members (the
                        whole-model checksum of each local model), checksum (sha256 of the
                        canonical JSON of every other attribute)
      roms/rom0/        a complete reduced model (:class:`~romdask.online.ReducedModel`, with its
      roms/rom1/        full bases and mesh): any tool that takes a model takes it
      ...

Opening checks the dictionary's checksum, then opens every local model (its own whole-model
checksum) and compares that checksum with the one the dictionary recorded: an edited attribute,
an edited array of a local model, or a local model swapped for another are all refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from romdask.online.integrity import check_replaceable, clean_stale_temporaries, is_model_dir, replace_atomically
from romdask.online.model import ReducedModel
from romdask.online.scenario import Scenario
from romdask.online.selection import LoadSelector, Ranking
from romdask.serialize import plain

if TYPE_CHECKING:
    from romdask.fem.mesh import Mesh
    from romdask.offline.local import LocalReduction
    from romdask.online.solver import OnlineOptions, OnlineResult

__all__ = ["FORMAT", "VERSION", "LocalPrediction", "ModelDictionary", "is_dictionary", "local_model_path"]

logger = logging.getLogger(__name__)

FORMAT = "romdask-model-dictionary"
VERSION = 1
#: the choices of :meth:`ModelDictionary.solve`
CHOICES = ("auto", "classifier", "best-of-2")


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def local_model_path(path: str | os.PathLike, name: str) -> Path:
    """The folder of the local model ``name`` (e.g. "rom0") inside a saved dictionary."""
    return Path(path) / "roms" / name


def is_dictionary(path: str | os.PathLike) -> bool:
    """True for a folder holding a saved :class:`ModelDictionary`."""
    return is_model_dir(Path(path), FORMAT)


@dataclass(frozen=True, eq=False)
class LocalPrediction:
    """Outcome of :meth:`ModelDictionary.solve`.

    Attributes
    ----------
    result : the OnlineResult of the kept local model
    rom : index of that model (``dictionary.names[rom]``)
    ranking : the classifier's ranking of the clusters
    tried : index -> largest error indicator of every local model solved (NaN: no indicator;
        inf: its solve failed)
    reason : why this model: "classifier", "best of 2 by the error indicator", "forced"
    """

    result: OnlineResult
    rom: int
    ranking: Ranking
    tried: Mapping[int, float]
    reason: str


@dataclass(frozen=True, eq=False)
class ModelDictionary:
    """Local reduced models, their clusters of training runs and their selector.

    Attributes
    ----------
    models : one ReducedModel per cluster
    clusters : the training runs of each model
    medoids : the medoid run of each cluster
    selector : the classifier from a scenario's loads to a cluster
    metadata : JSON-serializable: ``dissimilarity`` (runs, matrix), ``criterion`` (rows of
        :func:`romdask.offline.choose_clusters`), anything else
    """

    models: tuple[ReducedModel, ...]
    clusters: tuple[tuple[str, ...], ...]
    medoids: tuple[str, ...]
    selector: LoadSelector
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.models)
        if k == 0 or len(self.clusters) != k or len(self.medoids) != k:
            raise ValueError(f"a dictionary needs one cluster and one medoid per model; got {k} models, "
                             f"{len(self.clusters)} clusters, {len(self.medoids)} medoids")
        if not all(isinstance(m, ReducedModel) for m in self.models):
            raise ValueError("models must be ReducedModel instances")
        labels = set(int(c) for c in self.selector.labels)
        if not labels <= set(range(k)):
            raise ValueError(f"the selector knows clusters {sorted(labels)}; the dictionary has {k} models")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"rom{c}" for c in range(len(self.models)))

    @classmethod
    def from_reduction(cls, local: LocalReduction) -> ModelDictionary:
        """The dictionary of a :func:`romdask.offline.reduce_local` (selector trained on its runs)."""
        labels = {run: c for c, members in enumerate(local.clusters) for run in members}
        names: list[str] = []
        for reduction in local.reductions:
            model = reduction.model
            lifting = tuple(model.lifting["lifting_names"]) if model.lifting is not None else ()
            names += [n for n in (*lifting, *model.load_names) if n not in names]
        selector = LoadSelector.fit(local.scenarios, labels, names, local.temperatures)
        dis = local.dissimilarity
        metadata = {"dissimilarity": {"runs": list(dis.runs), "matrix": dis.matrix.tolist(), "tol": dis.tol,
                                      "ranks": dis.ranks.tolist()},
                    "criterion": [plain(row, "criterion") for row in local.criterion]}
        units = local.reductions[0].model.metadata.get("units")
        if units:
            metadata["units"] = dict(units)
        return cls(tuple(r.model for r in local.reductions), local.clusters, local.medoids, selector, metadata)

    # ------------------------------------------------------------------ online
    def select(self, scenario: Scenario) -> Ranking:
        """The classifier's ranking of the local models for ``scenario`` (no solve)."""
        return self.selector.rank(scenario)

    def solve(self, scenario: Scenario, options: OnlineOptions | None = None, *,
              choice: str | int = "auto", progress: Any = None) -> LocalPrediction:
        """Solve ``scenario`` with the local model the classifier picks.

        Parameters
        ----------
        scenario : the Scenario (patterns of the local models; a homogeneous condition that a
            local model does not know is dropped for it)
        options : OnlineOptions
        choice : "auto" (the classifier's model; when its choice is ambiguous, the best of its
            two first by the error indicator), "classifier" (its first, always), "best-of-2"
            (always both, keep the lower indicator) or a model index (forced)
        progress : passed to every local solve (:func:`romdask.online.solve`)

        Returns
        -------
        LocalPrediction

        Notes
        -----
        "best of 2" keeps the model whose largest error indicator over the scenario is lower; a
        model without indicator (no plastic-strain basis: NaN) loses against one with, and
        between two without, the classifier's first is kept. A solve that fails
        (:class:`~romdask.online.solver.OnlineConvergenceError`) counts as an infinite indicator.
        """
        from romdask.online.solver import OnlineConvergenceError, solve

        ranking = self.select(scenario)
        if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
            if not 0 <= int(choice) < len(self.models):
                raise ValueError(f"choice {choice}: the dictionary has local models 0..{len(self.models) - 1}")
            candidates, reason = [int(choice)], "forced"
        elif choice in CHOICES:
            two = choice == "best-of-2" or (choice == "auto" and ranking.ambiguous)
            candidates = list(ranking.order[:2] if two else ranking.order[:1])
            reason = "best of 2 by the error indicator" if len(candidates) > 1 else "classifier"
        else:
            raise ValueError(f"choice must be one of {CHOICES} or a local model index; got {choice!r}")
        results: dict[int, OnlineResult] = {}
        tried: dict[int, float] = {}
        failure: Exception | None = None
        for c in candidates:
            try:
                results[c] = solve(self.models[c], self._scenario_for(c, scenario), options, progress=progress)
            except OnlineConvergenceError as exc:
                if len(candidates) == 1:
                    raise
                failure = exc
                tried[c] = math.inf
                logger.warning("local model %s failed: %s", self.names[c], exc)
                continue
            indicator = results[c].indicator
            tried[c] = float(np.nanmax(indicator)) if np.any(np.isfinite(indicator)) else math.nan
        if not results:
            raise failure  # type: ignore[misc]

        def key(c: int) -> tuple[float, int]:
            value = tried[c]
            return (math.inf if math.isnan(value) else value, candidates.index(c))

        best = min(results, key=key)
        return LocalPrediction(results[best], best, ranking, tried, reason)

    def _scenario_for(self, c: int, scenario: Scenario) -> Scenario:
        """``scenario`` without the patterns local model ``c`` does not know, when they are zero
        (a pattern another cluster's runs used); a nonzero one is left for the model's check."""
        model = self.models[c]
        known = set(model.load_names) | set(model.lifting["lifting_names"] if model.lifting is not None else ())
        extra = [n for n in scenario.coefficients if n not in known and n not in scenario.homogeneous]
        if not extra:
            return scenario
        grid = np.union1d(scenario.times, scenario.breakpoints())
        zero = [n for n in extra if not any(scenario.values((n,), float(t))[0] != 0.0 for t in grid)]
        if not zero:
            return scenario
        coefficients = {n: v for n, v in scenario.coefficients.items() if n not in zero}
        return Scenario(scenario.times, coefficients, (*scenario.homogeneous, *zero), scenario.temperature)

    # ------------------------------------------------------------------ I/O
    def _attributes(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "roms": list(self.names),
                "clusters": [list(c) for c in self.clusters], "medoids": list(self.medoids),
                "selector": self.selector.to_json(), "metadata": plain(self.metadata, "metadata")}

    def save(self, path: str | os.PathLike, *, full: Sequence[Mapping[str, Any]] | None = None,
             meshes: Sequence[Mesh | None] | None = None, overwrite: bool = False,
             compression: str | None = "lz4") -> Path:
        """Write the dictionary to a new folder (atomically: aside, then renamed into place).

        Parameters
        ----------
        path : the folder to create (e.g. ``dictionary.zarr``)
        full, meshes : per local model, its full bases and mesh (``reduction.full``,
            ``reduction.mesh``; see :meth:`ReducedModel.save`), or None
        overwrite : replace an existing dictionary (or an empty folder); anything else is refused
            before anything is written or deleted
        compression : "lz4", "zstd" or None

        Returns
        -------
        The path written.
        """
        path = Path(path)
        k = len(self.models)
        full = [{} for _ in range(k)] if full is None else list(full)
        meshes = [None] * k if meshes is None else list(meshes)
        if len(full) != k or len(meshes) != k:
            raise ValueError(f"give one full mapping and one mesh per local model ({k}); got {len(full)}, {len(meshes)}")
        clean_stale_temporaries(path)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise ValueError(f"{path} already exists; pass overwrite=True to replace it or choose another path.")
        check_replaceable(path, FORMAT)
        for c, model in enumerate(self.models):
            model._check_full(full[c])

        def write(tmp: Path) -> None:
            root = zarr.open_group(tmp, mode="w-", zarr_format=3)
            root.require_group("roms")
            members = {}
            for name, model, f, mesh in zip(self.names, self.models, full, meshes):
                model._write(local_model_path(tmp, name), f, compression, mesh)
                members[name] = zarr.open_group(local_model_path(tmp, name), mode="r").attrs["checksum"]["sha256"]
            attrs = {**self._attributes(), "members": members}
            root.attrs.update({**attrs, "checksum": _sha(attrs)})

        return replace_atomically(path, write, lambda p: check_replaceable(p, FORMAT))

    @classmethod
    def open(cls, path: str | os.PathLike) -> ModelDictionary:
        """Read a dictionary written by :meth:`save`, every local model with it.

        Raises
        ------
        ValueError
            Not a dictionary or another version; an attribute edited (checksum mismatch); a local
            model edited, missing or replaced (names it).
        """
        path = Path(path)
        try:
            root = zarr.open_group(path, mode="r", zarr_format=3)
        except Exception as exc:
            raise ValueError(f"{path} is not a Zarr v3 group (a romdask model dictionary): {exc}") from None
        attrs = root.attrs.asdict()
        if attrs.get("format") != FORMAT or attrs.get("version") != VERSION:
            raise ValueError(f"{path} has format {attrs.get('format')!r} version {attrs.get('version')!r}; this romdask "
                             f"reads {FORMAT!r} version {VERSION}")
        recorded = attrs.pop("checksum", None)
        if recorded != _sha(attrs):
            raise ValueError(f"{path}: checksum mismatch in the dictionary's attributes; it was edited or corrupted. "
                             "Re-save it from the offline stage (romdask reduce --local).")
        roms, members = attrs.get("roms"), attrs.get("members")
        if not isinstance(roms, list) or not roms or roms != [f"rom{c}" for c in range(len(roms))] or \
                not isinstance(members, dict):
            # names, not paths: a dictionary only opens models inside its own roms/ folder
            raise ValueError(f"{path}: the local models must be named rom0..rom<k-1> with a checksum each; got "
                             f"roms {roms!r}. Re-save the dictionary from the offline stage.")
        models = []
        for name in roms:
            where = local_model_path(path, name)
            try:
                model = ReducedModel.open(where)
            except ValueError as exc:
                raise ValueError(f"{path}: local model {name!r}: {exc}") from None
            sha = zarr.open_group(where, mode="r").attrs["checksum"]["sha256"]
            if sha != members.get(name):
                raise ValueError(f"{path}: local model {name!r} is not the one saved with the dictionary (checksum "
                                 "differs): it was replaced. Re-save the dictionary from the offline stage.")
            models.append(model)
        selector = LoadSelector.from_json(attrs["selector"])
        return cls(tuple(models), tuple(tuple(c) for c in attrs["clusters"]), tuple(attrs["medoids"]), selector,
                   dict(attrs.get("metadata", {})))

    def info(self) -> dict[str, Any]:
        """Clusters, members, modes and points of every local model, and the criterion rows."""
        return {"roms": [{"name": name, "runs": list(runs), "medoid": medoid, "n_modes": m.n_modes,
                          "n_points": m.n_points}
                         for name, runs, medoid, m in zip(self.names, self.clusters, self.medoids, self.models)],
                "selector": {"kind": "nearest-neighbour", "patterns": list(self.selector.names),
                             "temperature": self.selector.thermal},
                "criterion": self.metadata.get("criterion", [])}
