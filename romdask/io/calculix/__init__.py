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
#: .frd blocks read: name -> field
_FRD_READ = {"DISP": "displacement", "NDTEMP": "temperature", "FORC": "reaction_force"}
_NOT_AT_FRAMES = "not at every DISP frame (output time)"
#: .frd nodal extrapolations of what the .dat has at the integration points: name ->
#: (*EL PRINT keyword, romdask field)
_FRD_EXTRAPOLATED = {"STRESS": ("S", "stress"), "TOSTRAIN": ("E", "strain"), "PE": ("PEEQ", "p"),
                     "SDV": ("SDV", "state")}  # fmt: skip
#: other .frd nodal extrapolations of integration-point variables (*EL FILE ME, THE, ENER, ZZS, HFL)
_FRD_NODAL_OF_IP = ("MESTRAIN", "THSTRAIN", "ENER", "ZZSTR", "FLUX")
#: romdask kind -> its .dat header
_DAT_HEADERS = {"stress": "stresses", "strain": "strains", "state": "internal state variables",
                "p": "equivalent plastic strain"}  # fmt: skip
_DAT_OTHER_REASONS = {
    "displacements": "*NODE PRINT U: romdask reads the displacements of the .frd (DISP)",
    "forces": "*NODE PRINT RF: romdask reads the nodal forces of the .frd (*NODE FILE RF: FORC, as reaction_force)",
    "total force": "*NODE PRINT RF, TOTALS: romdask reads the nodal forces of the .frd (*NODE FILE RF: FORC)",
    "temperatures": "*NODE PRINT NT: romdask reads the temperatures of the .frd (*NODE FILE NT: NDTEMP)",
}


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


def _frd_at_frames(results, disp, name: str) -> list | None:
    """The ``name`` block of each ``DISP`` frame (same step and increment), or None when a frame
    has none."""
    blocks = results.select(name)
    by_frame = {(b.step, b.increment, b.counter): b for b in blocks}
    out = [by_frame.get((b.step, b.increment, b.counter)) for b in disp]
    if any(b is None for b in out):
        by_time = {(b.step, b.increment): b for b in blocks}
        out = [by_time.get((b.step, b.increment)) for b in disp]
    return None if any(b is None for b in out) else out


def _frd_temperatures(results, disp, frd_path: Path) -> list | None:
    """The ``NDTEMP`` block of each ``DISP`` frame (same step and increment), or None when the
    .frd has none; frames without one are logged and the field left out."""
    if not results.select("NDTEMP"):
        return None
    out = _frd_at_frames(results, disp, "NDTEMP")
    if out is None:
        logger.info("%s: NDTEMP (the nodal temperatures) not at every DISP frame: not read", frd_path)
        return None
    for b in out:
        if len(b.components) != 1:
            raise ReaderError(frd_path, f"{b.describe()} has {len(b.components)} components; 1 (T) expected")
    return out


def _frd_forces(results, disp, frd_path: Path) -> tuple[list | None, str]:
    """(The ``FORC`` block of each ``DISP`` frame, "") or (None, why it is not read; "" when the
    .frd has none)."""
    if not results.select("FORC"):
        return None, ""
    out = _frd_at_frames(results, disp, "FORC")
    why = "" if out is not None else _NOT_AT_FRAMES
    if out is not None and any(len(b.components) != 3 for b in out):
        why = f"{next(len(b.components) for b in out if len(b.components) != 3)} components; 3 (F1 F2 F3) expected"
    if why:
        logger.info("%s: FORC (the nodal forces) %s: not read", frd_path, why)
        return None, why
    return out, ""


def _frd_omitted(results, fields, not_read: dict[str, str]) -> dict[str, str]:
    """``"frd:<name>"`` -> why, for the .frd result blocks no field holds (``not_read``: the
    reasons of the blocks romdask reads when complete)."""
    omitted = {}
    for name in results.fields():
        if name in _FRD_READ and _FRD_READ[name] in fields:
            continue
        if name in not_read:
            why = not_read[name]
        elif name in _FRD_EXTRAPOLATED:
            keyword, field = _FRD_EXTRAPOLATED[name]
            why = "nodal extrapolation by CalculiX (averaged over the elements)"
            if field in fields or (field == "p" and "state" in fields and fields["state"].components == _SDV14):
                stored = f"'{field}'" if field in fields else "'state' (p first)"
                why += f"; romdask stores the integration-point values of the .dat (*EL PRINT {keyword}) as {stored}"
            else:
                why += f"; romdask reads integration-point values from the .dat: add *EL PRINT {keyword} for them"
        elif name in _FRD_NODAL_OF_IP:
            why = "nodal extrapolation by CalculiX of an integration-point variable; not read by romdask"
        elif name in ("ERROR", "HERROR"):
            why = "CalculiX's error estimate of its nodal extrapolation (written with *EL FILE S); not read by romdask"
        else:
            why = "not read by romdask"
        omitted[f"frd:{name}"] = why
    return omitted


def _dat_name(dat_results: DatResults, kind: str) -> str:
    """``"dat:stresses (set EALL)"``: a .dat kind by its header and sets."""
    sets = list(dict.fromkeys(b.set for b in dat_results.blocks if b.kind == kind))
    return f"dat:{_DAT_HEADERS[kind]} ({'sets' if len(sets) > 1 else 'set'} {', '.join(sets)})"


def _dat_fields(dat_path: Path, mesh: Mesh, times: np.ndarray):
    """(DatResults, kind -> (FieldSpec, blocks at each .frd time), times with the .dat's digits,
    omitted: "dat:..." -> why) for the .dat fields printed at every .frd time and every
    integration point."""
    dat_results = read_dat(dat_path)
    n_points = int(ip_layout(mesh)[0].sum())
    found: dict[str, list[list[DatBlock]]] = {}
    omitted: dict[str, str] = {}
    for kind in dat_results.kinds():
        kt = dat_results.times(kind)
        match = _match_times(times, kt)
        if match is None:
            logger.info("%s: %s not at every .frd output time: not read", dat_path, kind)
            omitted[_dat_name(dat_results, kind)] = "not printed at every .frd output time"
            continue
        per_time = [[b for b in dat_results.blocks if b.kind == kind and b.time == kt[i]] for i in match]
        if any(sum(b.n_rows for b in bl) < n_points for bl in per_time):
            logger.info("%s: %s not printed at all %d integration points: not read", dat_path, kind, n_points)
            omitted[_dat_name(dat_results, kind)] = f"not printed at all {n_points} integration points"
            continue
        found[kind] = per_time
    if "state" in found and "p" in found:
        found.pop("p")
        omitted[_dat_name(dat_results, "p")] = (
            "PEEQ is the first SDV of the viscoplastic law, stored in state" if found["state"][0][0].n_values == 14
            else "PEEQ is not stored next to the SDV (state)"
        )
    for header, set_name in dat_results.others:
        omitted[f"dat:{header} (set {set_name})"] = _DAT_OTHER_REASONS.get(
            header.lower(), "not read by romdask (it reads *EL PRINT S, E, SDV and PEEQ at the integration points)")
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
    return dat_results, out, times, omitted


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
        has one at every displacement frame; absent nodes get 0), ``"reaction_force"`` (node, 3:
        the ``FORC`` blocks of ``RF`` output, CalculiX's nodal forces: reactions at constrained
        nodes, the applied load at loaded free nodes; same rule) and, when the .dat has them at
        every output time for every integration point, ``"stress"``, ``"strain"`` (ip, 6, engineering shear), ``"state"`` (ip, n: the SDV,
        p first for the viscoplastic law) or else ``"p"`` (ip, 1: PEEQ). ``solver="calculix"``,
        ``solver_version`` from the .frd header. ``metadata``: ``frd_steps`` (step, increment)
        per frame, ``frd_encoding``, ``frd_complete``, ``omitted_fields`` (``"frd:STRESS"``,
        ``"dat:stresses (set EALL)"``, ``"dat:forces (set FIX)"``... -> why it is not stored, for
        every .frd and .dat block no field holds; empty: nothing left out); with
        ``problem_metadata``, ``loads`` and
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
    forces, forces_why = _frd_forces(results, disp, frd_path)
    if forces is not None:
        fields["reaction_force"] = FieldSpec("node", ("fx", "fy", "fz"))
    sources = [inp_path, frd_path]
    dat_results, dat_fields, dat_omitted = None, {}, {}
    if dat_path.is_file():
        dat_results, dat_fields, times, dat_omitted = _dat_fields(dat_path, mesh, times)
        fields.update({kind: spec for kind, (spec, _) in dat_fields.items()})
        sources.append(dat_path)
    not_read = {"NDTEMP": _NOT_AT_FRAMES, "FORC": forces_why}
    omitted = {**_frd_omitted(results, fields, not_read), **dat_omitted}
    if omitted:
        logger.info("%s: CalculiX results not stored: %s", stem, omitted)

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
            if forces is not None:
                ids, values = results.read(forces[k])
                force = np.zeros((mesh.n_nodes, 3))
                force[mesh.node_index(ids)] = values
                data["reaction_force"] = force
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
            "omitted_fields": omitted,
            **(_problem_metadata(inp_path, mesh, times) if problem_metadata else {}),
        },
    )
