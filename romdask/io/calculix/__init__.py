"""Readers of CalculiX runs: the deck's mesh (.inp) and problem (loads, laws, steps), nodal
results (.frd), integration-point results of ``*EL PRINT`` (.dat), and :func:`read_calculix`
combining them into a Run; the ``.frd`` writer :func:`write_frd` (results where cgx users look
at them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.dat import DatBlock, DatResults, ip_layout, read_dat
from romdask.io.calculix.frd import FrdBlock, FrdElements, FrdResults, read_frd
from romdask.io.calculix.frd_writer import FRD_ENCODINGS, FRD_FIELDS, write_frd
from romdask.io.calculix.inp import read_inp
from romdask.io.calculix.problem import read_problem
from romdask.io.run import FieldSpec, Frame, ReaderError, Run

__all__ = [
    "DatBlock", "DatResults", "FRD_ENCODINGS", "FRD_FIELDS", "FrdBlock", "FrdElements", "FrdResults",
    "read_calculix", "read_dat", "read_frd", "read_inp", "read_problem", "write_frd",
]  # fmt: skip

logger = logging.getLogger(__name__)

_SUFFIXES = (".inp", ".frd", ".dat")
_VOIGT = ("xx", "yy", "zz", "xy", "xz", "yz")
_SDV14 = (
    "p",
    "eps_p_xx", "eps_p_yy", "eps_p_zz", "eps_p_xy", "eps_p_xz", "eps_p_yz",
    "back_xx", "back_yy", "back_zz", "back_xy", "back_xz", "back_yz",
    "rate",
)  # fmt: skip  (romdask.materials.CalculixViscoplastic.state_names)


def _stem(path: Path) -> Path:
    """``beam_a0.05`` for ``beam_a0.05.inp`` (only a CalculiX suffix is cut: dots in names stay)."""
    return path.with_name(path.name[: -len(path.suffix)]) if path.suffix.lower() in _SUFFIXES else path


def _find(path: Path | None, stem: Path, suffix: str) -> Path:
    return Path(path) if path is not None else stem.with_name(stem.name + suffix)


def _problem_metadata(inp: Path, mesh: Mesh, times: np.ndarray) -> dict:
    """``run_metadata`` of the deck's problem on the run's output times, or the reason it cannot
    be read (``problem_error``: the unsupported keywords and their lines)."""
    from romdask.problem.patterns import run_metadata

    try:
        return run_metadata(read_problem(inp, times=times, mesh=mesh))
    except (ValueError, TypeError) as exc:  # TypeError: patterns the description cannot hold
        logger.warning("%s: the load patterns and law are not recorded (romdask reduce will refuse this "
                       "run): %s", inp, exc)
        return {"problem_error": str(exc)}


def _check_mesh(frd: FrdResults, mesh: Mesh) -> None:
    """The .frd mesh must be the .inp mesh: known node ids, same connectivity for shared ids."""
    try:
        mesh.node_index(frd.node_ids)
    except KeyError as exc:
        raise ReaderError(frd.path, f"node ids not in the input deck: {exc.args[0]}") from None
    el_ids = mesh.element_ids
    for fe in frd.elements:
        if fe.type not in ("C3D4", "C3D10", "C3D8", "C3D20"):
            continue
        order = np.argsort(el_ids)
        pos = np.searchsorted(el_ids, fe.ids, sorter=order).clip(0, max(len(el_ids) - 1, 0))
        idx = order[pos]
        known = el_ids[idx] == fe.ids
        if not np.any(known):
            continue
        blk, local = mesh.element_block(idx[known])
        for k, b in enumerate(mesh.blocks):
            sel = blk == k
            if not np.any(sel):
                continue
            inp_conn = mesh.node_ids[b.connectivity[local[sel]]]
            frd_conn = fe.connectivity[known][sel]
            if inp_conn.shape != frd_conn.shape or not np.array_equal(inp_conn, frd_conn):
                bad = fe.ids[known][sel][0] if inp_conn.shape != frd_conn.shape else \
                    fe.ids[known][sel][np.flatnonzero((inp_conn != frd_conn).any(axis=1))[0]]
                raise ReaderError(frd.path, f"element {bad} differs from the input deck's "
                                            f"(is the .frd from another deck?)")


def _match_times(frd_times: np.ndarray, dat_times: np.ndarray) -> np.ndarray | None:
    """Index of the .dat time equal (to print precision) to each .frd time, or None."""
    if len(dat_times) == 0:
        return None
    tol = 1e-5 * np.maximum(np.abs(frd_times), 1e-30) + 1e-12 * np.abs(frd_times).max(initial=0.0)
    pos = np.searchsorted(dat_times, frd_times).clip(0, len(dat_times) - 1)
    best = np.where(
        np.abs(dat_times[pos] - frd_times) <= np.abs(dat_times[(pos - 1).clip(0)] - frd_times), pos, (pos - 1).clip(0)
    )
    if np.all(np.abs(dat_times[best] - frd_times) <= tol) and np.all(np.diff(dat_times) > 0):
        return best
    return None


def _frd_displacements(frd_path: Path, mesh: Mesh, allow_incomplete: bool):
    """(results, DISP blocks, their times) of a .frd checked against the deck's mesh."""
    results = read_frd(frd_path)
    if not results.complete and not allow_incomplete:
        raise ReaderError(frd_path, "no closing 9999 line: the run stopped early or the file is cut short "
                                    f"after {len(results.blocks)} result blocks (the last one may be a diverged "
                                    "attempt); pass allow_incomplete=True to read it anyway")
    _check_mesh(results, mesh)
    disp = results.select("DISP")
    if not disp:
        raise ReaderError(frd_path, f"no DISP blocks (found {results.fields() or 'no results'}); "
                                    f"add *NODE FILE or *NODE OUTPUT with U to the deck")
    for b in disp:
        if len(b.components) != 3:
            raise ReaderError(frd_path, f"{b.describe()} has {len(b.components)} components; 3 expected")
    times = np.array([b.time for b in disp])
    for k in range(1, len(times)):
        if times[k] <= times[k - 1]:
            raise ReaderError(frd_path, f"non-increasing times: {disp[k].describe()} after t={times[k - 1]:g}")
    return results, disp, times


def _frd_temperatures(results, disp, frd_path: Path) -> list | None:
    """The ``NDTEMP`` block of each ``DISP`` frame (same step and increment), or None when the
    .frd has none; frames without one are logged and the field left out."""
    temp = results.select("NDTEMP")
    if not temp:
        return None
    by_frame = {(b.step, b.increment, b.counter): b for b in temp}
    out = [by_frame.get((b.step, b.increment, b.counter)) for b in disp]
    if any(b is None for b in out):
        by_time = {(b.step, b.increment): b for b in temp}
        out = [by_time.get((b.step, b.increment)) for b in disp]
    if any(b is None for b in out):
        logger.info("%s: NDTEMP (the nodal temperatures) not at every DISP frame: not read", frd_path)
        return None
    for b in out:
        if len(b.components) != 1:
            raise ReaderError(frd_path, f"{b.describe()} has {len(b.components)} components; 1 (T) expected")
    return out


def _dat_fields(dat_path: Path, mesh: Mesh, times: np.ndarray):
    """(DatResults, kind -> (FieldSpec, blocks at each .frd time), times with the .dat's digits)
    for the .dat fields printed at every .frd time and every integration point."""
    dat_results = read_dat(dat_path)
    n_points = int(ip_layout(mesh)[0].sum())
    found: dict[str, list[list[DatBlock]]] = {}
    for kind in dat_results.kinds():
        kt = dat_results.times(kind)
        match = _match_times(times, kt)
        if match is None:
            logger.info("%s: %s not at every .frd output time: not read", dat_path, kind)
            continue
        per_time = [[b for b in dat_results.blocks if b.kind == kind and b.time == kt[i]] for i in match]
        if any(sum(b.n_rows for b in bl) < n_points for bl in per_time):
            logger.info("%s: %s not printed at all %d integration points: not read", dat_path, kind, n_points)
            continue
        found[kind] = per_time
    if "state" in found:
        found.pop("p", None)
    out = {}
    for kind, per_time in found.items():
        n = per_time[0][0].n_values
        if kind == "state":
            comps = _SDV14 if n == 14 else tuple(f"sdv{i + 1}" for i in range(n))
        else:
            comps = ("p",) if kind == "p" else _VOIGT
        out[kind] = (FieldSpec("ip", comps), per_time)
    if out:  # more digits: the .dat prints 7, the .frd 6 below t = 1 (10 from 1 to 1e10)
        dat_t = np.array([bl[0].time for bl in next(iter(out.values()))[1]])
        times = np.where((times < 1.0) | (times >= 1e10), dat_t, times)
    return dat_results, out, times


def read_calculix(
    path: str | Path | None = None,
    *,
    inp: str | Path | None = None,
    frd: str | Path | None = None,
    dat: str | Path | None = None,
    name: str | None = None,
    allow_incomplete: bool = False,
    problem_metadata: bool = True,
) -> Run:
    """A CalculiX run as a :class:`~romdask.io.run.Run`.

    Parameters
    ----------
    path : any of ``run.inp`` / ``run.frd`` / ``run.dat``; the other files are looked for with
        the same stem unless given explicitly.
    inp, frd, dat : explicit file paths (the .dat is optional).
    name : run name (default: the stem: the file name without .inp / .frd / .dat; other dots
        stay, ``beam_a0.05.inp`` -> ``beam_a0.05``).
    allow_incomplete : read a .frd without its closing ``9999`` (a run that stopped early).
        Beware: after a divergence CalculiX writes the last, NOT converged, attempt as a frame.
    problem_metadata : read the deck's load patterns and law into ``metadata`` (what
        :func:`romdask.offline.reduce` needs; False when the caller records them itself).

    Returns
    -------
    Run
        Mesh of the whole deck; times of the ``DISP`` blocks of the .frd; fields
        ``"displacement"`` (node, 3; nodes absent from a frame, e.g. not used by any element,
        get 0), ``"temperature"`` (node, 1: the ``NDTEMP`` blocks of ``NT`` output, when the .frd
        has one at every displacement frame; absent nodes get 0) and, when the .dat has them at
        every output time for every integration point, ``"stress"``, ``"strain"`` (ip, 6, engineering shear), ``"state"`` (ip, n: the SDV,
        p first for the viscoplastic law) or else ``"p"`` (ip, 1: PEEQ). ``solver="calculix"``,
        ``solver_version`` from the .frd header. ``metadata``: ``frd_steps`` (step, increment)
        per frame, ``frd_encoding``, ``frd_complete``; with ``problem_metadata``, ``loads`` and
        ``material`` (:func:`romdask.problem.patterns.run_metadata` of
        :func:`~romdask.io.calculix.problem.read_problem` on the .frd's output times) or, when
        romdask cannot model the deck, ``problem_error`` (the reason, logged as a warning: the
        snapshots are read all the same).

    Raises
    ------
    ReaderError
        Missing files (listing the paths looked for), unreadable or truncated files,
        non-finite values, non-increasing times, .frd nodes or elements not in the deck.

    Notes
    -----
    The files are indexed here (headers only); ``run.frames()`` reads one frame at a time
    (one .frd block plus the matching .dat blocks), so memory stays at a few frames.
    """
    given = [p for p in (path, inp, frd, dat) if p is not None]
    if not given:
        raise ReaderError("<none>", "read_calculix needs a path or inp=/frd=")
    stem = _stem(Path(path if path is not None else given[0]))
    inp_path, frd_path = _find(inp, stem, ".inp"), _find(frd, stem, ".frd")
    missing = [p for p in (inp_path, frd_path) if not p.is_file()]
    if missing:
        raise ReaderError(missing[0], "missing CalculiX file(s): " + ", ".join(str(p) for p in missing)
                          + f" (looked for {inp_path} and {frd_path}; pass inp=/frd= explicitly)")
    dat_path = _find(dat, stem, ".dat")
    if dat is not None and not dat_path.is_file():
        raise ReaderError(dat_path, "the .dat file does not exist")
    mesh = read_inp(inp_path)
    results, disp, times = _frd_displacements(frd_path, mesh, allow_incomplete)
    fields = {"displacement": FieldSpec("node", ("ux", "uy", "uz"))}
    temperatures = _frd_temperatures(results, disp, frd_path)
    if temperatures is not None:
        fields["temperature"] = FieldSpec("node", ("T",))
    sources = [inp_path, frd_path]
    dat_results, dat_fields = None, {}
    if dat_path.is_file():
        dat_results, dat_fields, times = _dat_fields(dat_path, mesh, times)
        fields.update({kind: spec for kind, (spec, _) in dat_fields.items()})
        sources.append(dat_path)

    def frames() -> Iterator[Frame]:
        for k, block in enumerate(disp):
            ids, values = results.read(block)
            try:
                idx = mesh.node_index(ids)
            except KeyError as exc:
                raise ReaderError(
                    frd_path, f"{block.describe()}: node ids not in the input deck: {exc.args[0]}"
                ) from None
            u = np.zeros((mesh.n_nodes, 3))
            u[idx] = values
            data = {"displacement": u}
            if temperatures is not None:
                ids, values = results.read(temperatures[k])
                temperature = np.zeros((mesh.n_nodes, 1))
                temperature[mesh.node_index(ids)] = values
                data["temperature"] = temperature
            for kind, (_, per_time) in dat_fields.items():
                data[kind] = dat_results.gather(mesh, per_time[k])
            yield Frame(k, float(times[k]), data)

    return Run(
        name=name if name is not None else stem.name,
        mesh=mesh,
        times=times,
        fields=fields,
        frames=frames,
        solver="calculix",
        solver_version=results.version,
        sources=tuple(sources),
        metadata={
            "frd_steps": [[b.step, b.increment] for b in disp],
            "frd_encoding": disp[0].encoding,
            "frd_complete": results.complete,
            **(_problem_metadata(inp_path, mesh, times) if problem_metadata else {}),
        },
    )
