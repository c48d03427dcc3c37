"""The online artifact: :class:`ReducedModel`, its validation and its Zarr v3 format.

A reduced model holds only small dense arrays (reduced points x modes) and the constitutive laws
by class name and constructor parameters. It is saved to a versioned, checksummed Zarr v3 group
and read back without pickle, without Dask and without a mesh::

    model.zarr/
      zarr.json           attrs: format, version, checksums (per core array), checksum (the whole
                          model, :mod:`romdask.online.integrity`), laws, load/lifting names, metadata
      modes_strain        (r, 6, n)   strain of the modes at the reduced points (engineering shear)
      weights             (r,)        reduced quadrature weights
      point_ids           (r,)        global integration points in the training store
      load_vectors        (q, n)      reduced external loads, one row per pattern
      initial_state       (r, n_state_max), NaN beyond each law's state size
      materials/points_<i>            reduced points of law i (int64)
      lifting/modes_strain, lifting/load      optional (prescribed displacements)
      gappy/<quantity>    (r * k, m)  Gappy-POD basis rows at the reduced points
      temperature/nodes   (r, n_en)   version 2, thermal models: solver node ids of the temperature
                                      operator's row at each reduced point (-1 padding)
      temperature/weights (r, n_en)   its weights (0 padding): T_k = sum_j weights[k, j] T[nodes[k, j]]
      temperature/initial (r,)        optional: the training runs' initial temperature there
      full/               optional, never read by :meth:`ReducedModel.open` (see
                          :mod:`romdask.online.reconstruct`):
        modes             (n_dofs, n)          full modes, store dof order
        lifting           (n_dofs, n_l)        unit lifting vectors
        gappy_stress      (6 N, m_s)           stress basis, store ip positions, components fastest
        gappy_p           (N, m_p)             cumulated-plastic-strain basis
        ip_points         (N,) int64           global integration point of each store ip position
        temperature_nodes, temperature_weights (N, n_en)  thermal models: the temperature
                          operator's rows at every store ip position (solver node ids, -1 padding)
        initial_temperature (N,)               the training runs' initial temperature there
        ip_element, ip_local_point  (N,) int64 its element (index into full/mesh) and local point
        strain, lifting_strain      (6 N, n), (6 N, n_l) strains of the modes / liftings
        mesh/             the store's mesh (:mod:`romdask.online.full_mesh`)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from romdask.materials import Material, law_from_json, law_to_json
from romdask.online.integrity import (
    check_replaceable,
    clean_stale_temporaries,
    model_checksum,
    replace_atomically,
    verify_full,
    verify_model,
)
from romdask.online.thermal import check_temperature_operator
from romdask.online.indicator import Calibration
from romdask.serialize import compressors, plain

if TYPE_CHECKING:  # the solver imports this module
    from romdask.fem.mesh import Mesh
    from romdask.online.scenario import Scenario
    from romdask.online.solver import OnlineOptions, OnlineResult, OnlineState

__all__ = ["FORMAT", "FULL_KEYS", "VERSION", "ReducedModel", "open_full_modes", "open_model_group"]

FORMAT = "romdask-reduced-model"
VERSION = 2
#: versions :meth:`ReducedModel.open` reads (1: before temperatures)
READABLE_VERSIONS = (1, 2)
_LIFTING_KEYS = ("lifting_modes_strain", "lifting_names", "lifting_load")
#: arrays a model may carry under full/ (see :meth:`ReducedModel.save`)
FULL_KEYS = ("modes", "lifting", "gappy_stress", "gappy_p", "ip_points", "ip_element", "ip_local_point", "strain",
             "lifting_strain", "temperature_nodes", "temperature_weights", "initial_temperature")
#: integer arrays of full/, one row per store ip position
_FULL_INDEX_KEYS = ("ip_points", "ip_element", "ip_local_point")
#: arrays of full/ with one row per store ip position and n_en columns (the temperature operator)
_FULL_OPERATOR_KEYS = ("temperature_nodes", "temperature_weights")
#: integer arrays of the core group (materials/points_<i> too); every other one is float64
_INT_ARRAYS = ("point_ids", "temperature/nodes")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a float64 array; could not convert it: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}.")
    arr.setflags(write=False)
    return arr


def _int_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D integer array; got {arr.dtype} of shape {arr.shape}.")
    arr = np.array(arr, dtype=np.int64, copy=True, order="C")
    arr.setflags(write=False)
    return arr


def _names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"{name} must be a sequence of strings, not one string {value!r}.")
    try:
        names = tuple(str(v) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of strings; got {type(value).__name__}.") from None
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must be unique; got {list(names)}.")
    return names




def checksum(arr: np.ndarray) -> str:
    """sha256 of the raw little-endian bytes of a float64 or int64 array."""
    dtype = "<f8" if arr.dtype.kind == "f" else "<i8"
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=dtype).tobytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class ReducedModel:
    """The gathered reduced operators used by the online solver (immutable, arrays read-only).

    Shapes use ``n`` modes, ``r`` reduced points, ``q`` load patterns, ``n_l`` lifting modes.

    Parameters
    ----------
    modes_strain : (r, 6, n) strain of each mode at the reduced points (Voigt
        ``xx yy zz xy xz yz``, engineering shear).
    weights : (r,) reduced quadrature weights, finite and >= 0 (Q-DEIM points have weight 0).
    point_ids : (r,) int, distinct global integration-point indices in the training store.
    materials : sequence of ``(law, points)``, ``points`` indices into ``0..r-1``; together they
        cover every reduced point exactly once. Laws must be LinearElastic, CalculixViscoplastic
        or Chaboche, or any law of the registry (stored by class name and parameters,
        :func:`romdask.materials.law_to_json`).
    load_vectors : (q, n) reduced external loads, one row per load pattern.
    load_names : (q,) unique names of the load patterns.
    initial_state : (r, n_state_max) internal variables at t=0, ``n_state_max`` the largest
        ``law.n_state``; finite in a point's first ``law.n_state`` columns, NaN after.
    lifting : None or a mapping with exactly ``lifting_modes_strain (r, 6, n_l)``,
        ``lifting_names (n_l,)`` and ``lifting_load (n_l, n)`` for prescribed displacements.
    gappy : mapping quantity name (e.g. ``"stress"``, ``"p"``) -> basis rows at the reduced points
        ``(r * k, m)`` (k components per point, k = 1 allowed).
    metadata : JSON-serializable dict (tolerances, singular values, ECM residual, runs, units);
        kept as plain JSON types (tuples become lists).
    temperature : None (an athermal model: the laws get temperature 0) or, for a model trained
        on runs with temperatures, the temperature operator's rows at the reduced points:
        ``{"nodes": (r, n_en) int64 solver node ids (-1 padding), "weights": (r, n_en)
        (0 padding, rows summing to 1), "initial": (r,) the training runs' common initial
        temperature there (optional: absent when the runs' initial temperatures differ)}``
        (:mod:`romdask.online.thermal`). A thermal model needs a scenario with temperatures.

    Raises
    ------
    ValueError
        On any inconsistent shape, negative or non-finite weight, uncovered or doubly covered
        point, disallowed law type or non-JSON metadata, with a message saying how to fix it.

    Notes
    -----
    Memory ``8 r (6 n + n_state_max + 6 n_l + sum m k) + 8 q n`` bytes; everything is checked
    once at construction (O(size)).
    """

    modes_strain: np.ndarray
    weights: np.ndarray
    point_ids: np.ndarray
    materials: tuple[tuple[Material, np.ndarray], ...]
    load_vectors: np.ndarray
    load_names: tuple[str, ...]
    initial_state: np.ndarray
    lifting: Mapping[str, Any] | None = None
    gappy: Mapping[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    temperature: Mapping[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        modes = _float_array("modes_strain", self.modes_strain, 3)
        if modes.shape[1] != 6:
            raise ValueError(
                f"modes_strain must have shape (r, 6, n) (6 Voigt strain components); got {modes.shape}."
            )
        r, _, n = modes.shape
        if not np.all(np.isfinite(modes)):
            raise ValueError("modes_strain holds NaN or inf values; check the ECM gather.")
        put("modes_strain", modes)

        weights = _float_array("weights", self.weights, 1)
        if weights.shape != (r,):
            raise ValueError(f"weights must have shape ({r},) (one per reduced point); got {weights.shape}.")
        bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0.0))
        if bad.size:
            raise ValueError(
                f"weights must be finite and >= 0; reduced points {bad[:10].tolist()} have "
                f"{weights[bad[:10]].tolist()}. Re-run the ECM (nonnegative least squares)."
            )
        put("weights", weights)

        ids = _int_array("point_ids", self.point_ids)
        if ids.shape != (r,):
            raise ValueError(f"point_ids must have shape ({r},); got {ids.shape}.")
        if r and (ids.min() < 0 or np.unique(ids).size != r):
            raise ValueError("point_ids must be distinct non-negative store integration-point indices.")
        put("point_ids", ids)

        put("materials", self._check_materials(self.materials, r))

        loads = _float_array("load_vectors", self.load_vectors, 2)
        if loads.shape[1] != n:
            raise ValueError(f"load_vectors must have shape (q, {n}) for {n} modes; got {loads.shape}.")
        names = _names("load_names", self.load_names)
        if len(names) != loads.shape[0]:
            raise ValueError(
                f"load_names has {len(names)} names for {loads.shape[0]} load vectors; give one per row."
            )
        put("load_vectors", loads)
        put("load_names", names)

        n_state = max((law.n_state for law, _ in self.materials), default=0)
        state = _float_array("initial_state", self.initial_state, 2)
        if state.shape != (r, n_state):
            raise ValueError(
                f"initial_state must have shape ({r}, {n_state}) (the largest law state size); got "
                f"{state.shape}. Pad laws with fewer variables with NaN."
            )
        for i, (law, points) in enumerate(self.materials):
            block = state[points]
            if not np.all(np.isfinite(block[:, : law.n_state])) or not np.all(np.isnan(block[:, law.n_state :])):
                raise ValueError(
                    f"initial_state of the points of law {i} ({type(law).__name__}) must be finite in "
                    f"its first {law.n_state} columns and NaN after; use law.initial_state() and NaN padding."
                )
        put("initial_state", state)

        put("lifting", self._check_lifting(self.lifting, r, n))

        if not isinstance(self.gappy, Mapping):
            raise ValueError(f"gappy must be a mapping quantity -> basis rows; got {type(self.gappy).__name__}.")
        gappy = {}
        for key, basis in self.gappy.items():
            if not isinstance(key, str) or not _NAME.match(key):
                raise ValueError(
                    f"gappy quantity names must be letters, digits, '_', '.', '-' (not starting "
                    f"with '.' or '-'); got {key!r}."
                )
            basis = _float_array(f"gappy[{key!r}]", basis, 2)
            if r == 0 or basis.shape[0] % r or basis.shape[0] == 0:
                raise ValueError(
                    f"gappy[{key!r}] must have r * k rows (k components at each of the {r} reduced "
                    f"points); got shape {basis.shape}."
                )
            gappy[key] = basis
        put("gappy", gappy)

        put("temperature", check_temperature_operator(self.temperature, r))

        if not isinstance(self.metadata, Mapping):
            raise ValueError(f"metadata must be a dict; got {type(self.metadata).__name__}.")
        meta = plain(self.metadata, "metadata")
        json.dumps(meta)
        put("metadata", meta)

    @staticmethod
    def _check_materials(materials: Any, r: int) -> tuple[tuple[Material, np.ndarray], ...]:
        out = []
        count = np.zeros(r, np.int64)
        for i, item in enumerate(materials):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"materials[{i}] must be a pair (law, point indices); got {item!r}.")
            law, points = item
            law_to_json(law)  # raises on a disallowed type
            points = _int_array(f"materials[{i}] points", points)
            if points.size and (points.min() < 0 or points.max() >= r):
                raise ValueError(f"materials[{i}] points must be indices in 0..{r - 1} (reduced points).")
            np.add.at(count, points, 1)
            out.append((law, points))
        if np.any(count != 1):
            missing = np.flatnonzero(count == 0)
            twice = np.flatnonzero(count > 1)
            raise ValueError(
                f"materials must give every reduced point exactly one law; points without a law: "
                f"{missing[:10].tolist()}, points with several: {twice[:10].tolist()}."
            )
        return tuple(out)

    @staticmethod
    def _check_lifting(lifting: Any, r: int, n: int) -> dict[str, Any] | None:
        if lifting is None:
            return None
        if not isinstance(lifting, Mapping) or set(lifting) != set(_LIFTING_KEYS):
            keys = sorted(lifting) if isinstance(lifting, Mapping) else type(lifting).__name__
            raise ValueError(f"lifting must be None or a mapping with exactly {list(_LIFTING_KEYS)}; got {keys}.")
        modes = _float_array("lifting_modes_strain", lifting["lifting_modes_strain"], 3)
        n_l = modes.shape[2]
        if modes.shape[:2] != (r, 6):
            raise ValueError(f"lifting_modes_strain must have shape ({r}, 6, n_l); got {modes.shape}.")
        names = _names("lifting_names", lifting["lifting_names"])
        load = _float_array("lifting_load", lifting["lifting_load"], 2)
        if len(names) != n_l or load.shape != (n_l, n):
            raise ValueError(
                f"lifting needs lifting_names ({n_l},) and lifting_load ({n_l}, {n}) for {n_l} "
                f"lifting modes; got {len(names)} names and {load.shape}."
            )
        return {"lifting_modes_strain": modes, "lifting_names": names, "lifting_load": load}

    # ------------------------------------------------------------------ sizes
    @property
    def n_modes(self) -> int:
        return int(self.modes_strain.shape[2])

    @property
    def n_points(self) -> int:
        return int(self.modes_strain.shape[0])

    @property
    def n_state_max(self) -> int:
        return int(self.initial_state.shape[1])

    @property
    def thermal(self) -> bool:
        """True when the model was trained with temperatures (it carries a temperature operator)."""
        return self.temperature is not None

    @cached_property
    def calibration(self) -> Calibration | None:
        """The error indicator's calibration (``metadata["calibration"]``, written by
        :func:`romdask.offline.calibrate`), or None."""
        data = self.metadata.get("calibration")
        return None if data is None else Calibration.from_json(data)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the model by its name in the Zarr group."""
        out = {
            "modes_strain": self.modes_strain,
            "weights": self.weights,
            "point_ids": self.point_ids,
            "load_vectors": self.load_vectors,
            "initial_state": self.initial_state,
        }
        for i, (_, points) in enumerate(self.materials):
            out[f"materials/points_{i}"] = points
        if self.lifting is not None:
            out["lifting/modes_strain"] = self.lifting["lifting_modes_strain"]
            out["lifting/load"] = self.lifting["lifting_load"]
        for key, basis in self.gappy.items():
            out[f"gappy/{key}"] = basis
        for key, arr in (self.temperature or {}).items():
            out[f"temperature/{key}"] = arr
        return out

    def info(self) -> dict[str, Any]:
        """A JSON-serializable summary: sizes, laws, Gappy quantities and scalar metadata."""
        meta = {
            k: (v if not isinstance(v, (list, dict)) else f"<{type(v).__name__} of {len(v)}>")
            for k, v in self.metadata.items()
        }
        return {
            "format": FORMAT,
            "version": VERSION,
            "n_modes": self.n_modes,
            "n_points": self.n_points,
            "n_state_max": self.n_state_max,
            "load_names": list(self.load_names),
            "lifting_names": list(self.lifting["lifting_names"]) if self.lifting else [],
            "laws": [
                {**law_to_json(law), "n_points": int(points.size)} for law, points in self.materials
            ],
            "gappy": {k: list(v.shape) for k, v in self.gappy.items()},
            "thermal": self.thermal,
            "nbytes": int(sum(a.nbytes for a in self.arrays().values())),
            "metadata": meta,
        }

    # ------------------------------------------------------------------ online
    def solve(self, scenario: Scenario, options: OnlineOptions | None = None, *,
              initial: OnlineState | None = None) -> OnlineResult:
        """Run the reduced Newton solver on ``scenario`` (from ``initial`` at its first time, a
        restart): :func:`romdask.online.solver.solve`."""
        from romdask.online.solver import solve

        return solve(self, scenario, options, initial=initial)

    # ------------------------------------------------------------------ I/O
    def save(
        self,
        path: str | os.PathLike,
        full_modes: Any = None,
        *,
        full: Mapping[str, Any] | None = None,
        mesh: Mesh | None = None,
        overwrite: bool = False,
        compression: str | None = "lz4",
    ) -> Path:
        """Write the model to a new Zarr v3 group at ``path`` (atomically: written aside in a
        sibling ``<name>.tmp-<pid>@<host>.<random>``, swapped in when complete).

        Parameters
        ----------
        path : directory to create (e.g. ``model.zarr``).
        full_modes : optional (n_dofs, n) numpy or dask array of the full modes, written to
            ``path/full/modes`` (read lazily by :func:`open_full_modes`, never by :meth:`open`);
            the same as ``full={"modes": full_modes}``.
        full : optional mapping with some of :data:`FULL_KEYS` (``reduce(...).full``):
            ``modes`` (n_dofs, n), ``lifting`` (n_dofs, n_l), ``gappy_stress`` (6 N, m_s),
            ``gappy_p`` (N, m_p) (m = the model's Gappy ranks), ``strain`` (6 N, n),
            ``lifting_strain`` (6 N, n_l), ``ip_points``, ``ip_element``, ``ip_local_point``
            (N,) int, written under ``path/full/`` for :func:`romdask.online.open_full`.
        mesh : optional store mesh (``reduce(...).mesh``, store order: the rows of ``full``),
            written under ``path/full/mesh`` (:func:`romdask.online.read_full_mesh`).
        overwrite : replace an existing ``path`` if it is a romdask model (or an empty folder);
            anything else (a snapshot store, a folder of input files, a file) is refused before
            anything is written or deleted. Without it an existing path is refused.
        compression : "lz4" (default), "zstd" or None.

        Returns
        -------
        The path written.

        Raises
        ------
        ValueError
            ``path`` exists without ``overwrite``, or is not a romdask model (names what it holds).

        Notes
        -----
        The core group is a few times ``8 r n`` bytes. Dask ``full_modes`` are streamed chunk by
        chunk with the active scheduler (``dask.array.store``), then every array is read back
        once for the whole-model checksum (:mod:`romdask.online.integrity`). Temporaries of
        earlier saves to ``path`` whose process is dead are removed first.
        """
        path = Path(path)
        clean_stale_temporaries(path)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise ValueError(f"{path} already exists; pass overwrite=True to replace it or choose another path.")
        check_replaceable(path, FORMAT)  # before anything is written or deleted
        if full_modes is not None and full is not None and "modes" in full:
            raise ValueError("give the full modes once: full_modes= or full={'modes': ...}, not both.")
        full = dict(full or {})
        if full_modes is not None:
            full["modes"] = full_modes
        self._check_full(full)
        if mesh is not None and "modes" in full and int(full["modes"].shape[0]) != 3 * mesh.n_nodes:
            raise ValueError(f"the mesh has {mesh.n_nodes} nodes but the full modes {full['modes'].shape[0]} rows; "
                             "save the mesh of the store the model was reduced from (reduce(...).mesh).")
        return replace_atomically(path, lambda tmp: self._write(tmp, full, compression, mesh),
                                  lambda p: check_replaceable(p, FORMAT))

    def _check_full(self, full: Mapping[str, Any]) -> None:
        """Shapes of the full arrays against the model (see :meth:`save`)."""
        unknown = sorted(set(full) - set(FULL_KEYS))
        if unknown:
            raise ValueError(f"unknown full arrays {unknown}; allowed: {list(FULL_KEYS)}.")
        n_l = len(self.lifting["lifting_names"]) if self.lifting is not None else 0
        rows: dict[str, int] = {}
        for key, arr in full.items():
            shape = getattr(arr, "shape", None)
            ndim = 1 if key in (*_FULL_INDEX_KEYS, "initial_temperature") else 2
            if shape is None or len(shape) != ndim:
                raise ValueError(f"full[{key!r}] must be a {ndim}-D array; got {shape or type(arr).__name__}.")
            expected = {"modes": self.n_modes, "lifting": n_l, "strain": self.n_modes, "lifting_strain": n_l}.get(key)
            if key.startswith("gappy_"):
                quantity = key[len("gappy_"):]
                if quantity not in self.gappy:
                    raise ValueError(f"full[{key!r}] given but the model has no Gappy basis {quantity!r}.")
                expected = self.gappy[quantity].shape[1]
            if expected is not None and shape[1] != expected:
                name = "full_modes" if key == "modes" else f"full[{key!r}]"
                raise ValueError(f"{name} must have shape (n_rows, {expected}); got {tuple(shape)}.")
            rows[key] = int(shape[0])
        dofs = {rows[k] for k in ("modes", "lifting") if k in rows}
        six = ("gappy_stress", "strain", "lifting_strain")  # 6 rows per point, components fastest
        per_point = ("gappy_p", *_FULL_INDEX_KEYS, *_FULL_OPERATOR_KEYS, "initial_temperature")
        points = {rows[k] // (6 if k in six else 1) for k in (*six, *per_point) if k in rows}
        widths = {tuple(full[k].shape[1:]) for k in _FULL_OPERATOR_KEYS if k in full}
        if len(widths) > 1 or (widths and not self.thermal):
            raise ValueError(f"full temperature_nodes and temperature_weights must have the same shape, for a thermal "
                             f"model only; got {sorted(widths)} (thermal: {self.thermal}).")
        if len(dofs) > 1 or len(points) > 1 or any(rows.get(k, 0) % 6 for k in six):
            raise ValueError(
                f"full arrays disagree in size: rows {rows}; modes and lifting need n_dofs rows, "
                "gappy_stress, strain and lifting_strain 6 N, gappy_p, ip_points, ip_element and ip_local_point N rows."
            )

    def _write(self, path: Path, full: Mapping[str, Any], compression: str | None, mesh: Mesh | None) -> None:
        comp = compressors(compression)
        root = zarr.open_group(path, mode="w-", zarr_format=3)
        arrays = self.arrays()
        for name, arr in arrays.items():
            root.create_array(name, data=np.ascontiguousarray(arr), compressors=comp)
        for key, arr in full.items():
            _write_full(root, key, arr, comp)
        if mesh is not None:
            from romdask.online.full_mesh import write_full_mesh

            write_full_mesh(root.require_group("full"), mesh, comp)
        if full or mesh is not None:
            attrs = {"arrays": sorted(full), "n_modes": self.n_modes, "mesh": mesh is not None}
            if "modes" in full:
                attrs["n_dofs"] = int(full["modes"].shape[0])
            root["full"].attrs.update(attrs)
        lifting_names = list(self.lifting["lifting_names"]) if self.lifting is not None else None
        root.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "checksums": {name: checksum(arr) for name, arr in arrays.items()},
                "laws": [law_to_json(law) for law, _ in self.materials],
                "load_names": list(self.load_names),
                "lifting_names": lifting_names,
                "gappy": list(self.gappy),
                "thermal": self.thermal,
                "temperature": sorted(self.temperature or ()),
                "metadata": self.metadata,
            }
        )
        root.attrs["checksum"] = model_checksum(root)  # last: covers everything above

    @classmethod
    def open(cls, path: str | os.PathLike) -> ReducedModel:
        """Read a model written by :meth:`save` (eagerly; the full modes are not read).

        Raises
        ------
        ValueError
            Not a reduced model, another format version, an unknown law type (no class outside
            :data:`romdask.materials.LAWS` is ever imported), a checksum mismatch (names the array or
            attribute) or an invalid model.

        Notes
        -----
        The whole-model checksum (:mod:`romdask.online.integrity`) is checked first: every array
        but the ``full/`` ones is read and hashed, every attribute compared. Models saved before
        it (no ``checksum`` attribute) get the per-array ``checksums`` check only.
        """
        root = open_model_group(path)
        verify_model(root, path)
        attrs = root.attrs.asdict()
        laws = [law_from_json(entry) for entry in attrs.get("laws", [])]
        sums = attrs.get("checksums")
        if not isinstance(sums, Mapping):
            raise ValueError(f"{path}: the model has no checksums attribute; re-save it with romdask.")

        def read(name: str) -> np.ndarray:
            if name not in sums:
                raise ValueError(f"{path}: array {name!r} has no checksum; the model was edited or is incomplete.")
            try:
                arr = root[name]
            except KeyError:
                raise ValueError(f"{path}: array {name!r} is missing; the model is incomplete.") from None
            dtype = np.dtype("<i8") if name in _INT_ARRAYS or name.startswith("materials/") else np.dtype("<f8")
            if not isinstance(arr, zarr.Array) or arr.dtype != dtype:
                raise ValueError(f"{path}: {name!r} must be a {dtype.name} array; got {arr}.")
            for codec in arr.metadata.codecs:
                if not type(codec).__module__.startswith("zarr.codecs"):
                    raise ValueError(f"{path}: array {name!r} uses a foreign codec {type(codec).__name__}; refused.")
            try:
                data = arr[...]
            except Exception as exc:  # a corrupted chunk fails in the codec
                raise ValueError(f"{path}: array {name!r} cannot be read (corrupted chunk?): {exc}") from None
            if checksum(data) != sums[name]:
                raise ValueError(
                    f"{path}: checksum mismatch in array {name!r}; the file was corrupted or edited. "
                    "Re-save the model from the offline stage."
                )
            return data

        gappy_names = attrs.get("gappy", [])
        if not isinstance(gappy_names, list) or not all(isinstance(k, str) and _NAME.match(k) for k in gappy_names):
            raise ValueError(f"{path}: invalid gappy quantity names {gappy_names!r} in the attributes.")
        lifting_names = attrs.get("lifting_names")
        lifting = None
        if lifting_names is not None:
            lifting = {
                "lifting_modes_strain": read("lifting/modes_strain"),
                "lifting_names": lifting_names,
                "lifting_load": read("lifting/load"),
            }
        temperature = None
        if attrs.get("thermal"):  # version 2
            keys = attrs.get("temperature", [])
            if not isinstance(keys, list) or not {"nodes", "weights"} <= set(keys) <= {"nodes", "weights", "initial"}:
                raise ValueError(f"{path}: invalid temperature arrays {keys!r} in the attributes.")
            temperature = {key: read(f"temperature/{key}") for key in keys}
        return cls(
            modes_strain=read("modes_strain"),
            weights=read("weights"),
            point_ids=read("point_ids"),
            materials=tuple((law, read(f"materials/points_{i}")) for i, law in enumerate(laws)),
            load_vectors=read("load_vectors"),
            load_names=tuple(attrs.get("load_names", ())),
            initial_state=read("initial_state"),
            lifting=lifting,
            gappy={key: read(f"gappy/{key}") for key in gappy_names},
            metadata=attrs.get("metadata", {}),
            temperature=temperature,
        )


def open_model_group(path: str | os.PathLike) -> zarr.Group:
    """The Zarr group of a saved model, read-only, after checking its format and version.

    Raises
    ------
    ValueError
        Not a Zarr v3 group, or another format or version.
    """
    try:
        root = zarr.open_group(path, mode="r", zarr_format=3)
    except Exception as exc:
        raise ValueError(f"{path} is not a Zarr v3 group (a romdask reduced model): {exc}") from None
    fmt, version = root.attrs.get("format"), root.attrs.get("version")
    if fmt != FORMAT or type(version) is not int or version not in READABLE_VERSIONS:
        raise ValueError(
            f"{path} has format {fmt!r} version {version!r}; this romdask reads {FORMAT!r} versions "
            f"{list(READABLE_VERSIONS)}. Re-save the model with a matching romdask."
        )
    return root


def _write_full(root: zarr.Group, key: str, arr: Any, comp: Any) -> None:
    """Stream one full array (numpy or dask) to ``full/<key>``, chunked along its rows."""
    import dask.array as da

    dtype = np.int64 if key in (*_FULL_INDEX_KEYS, "temperature_nodes") else np.float64
    n_rows = int(arr.shape[0])
    rows = int(arr.chunks[0][0]) if isinstance(arr, da.Array) else min(n_rows, 65536)
    if key in ("gappy_stress", "strain", "lifting_strain"):  # whole points per chunk: the (steps, N, 6) reshape stays chunk-local
        rows = max(6, rows - rows % 6)
    chunks = (max(1, rows), *(max(1, int(d)) for d in arr.shape[1:]))
    target = root.create_array(f"full/{key}", shape=tuple(arr.shape), dtype=dtype, chunks=chunks, compressors=comp)
    if int(np.prod(arr.shape)):
        da.store(da.asarray(arr).astype(dtype).rechunk(chunks), target, lock=False)


def open_full_modes(path: str | os.PathLike, lazy: bool = True) -> Any:
    """The full modes (n_dofs, n) saved with a model at ``path``.

    Parameters
    ----------
    path : the model group written by :meth:`ReducedModel.save` with ``full_modes``.
    lazy : True (default) -> a dask array over the Zarr chunks; False -> the ``zarr.Array``
        (read slices on demand).

    Raises
    ------
    ValueError
        No full modes, or a checksum mismatch (the model or its full modes were edited).

    Notes
    -----
    The modes are read once, chunk by chunk, to check their checksum (models saved before the
    whole-model checksum: nothing is read here but metadata).
    """
    root = open_model_group(path)
    if "full" not in root or "modes" not in root["full"]:
        raise ValueError(f"{path} holds no full modes; pass full_modes= to ReducedModel.save.")
    verify_full(root, path, ["full/modes"])
    arr = root["full/modes"]
    if arr.dtype != np.dtype("<f8"):
        raise ValueError(f"{path}: full/modes must be float64; got {arr.dtype}.")
    if not lazy:
        return arr
    import dask.array as da

    return da.from_zarr(arr)
