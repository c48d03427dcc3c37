"""Write CalculiX result files (``.frd``) that CalculiX GraphiX (cgx) and :func:`read_frd` read.

The layout is ccx 2.20's own (``frd.c``, ``frdheader.c``, ``frdselect.c``, ``writeheading.c``):
``    1C``, ``    1U`` text lines, ``    2C`` nodes (only those used by elements, ascending ids),
``    3C`` elements (.frd type codes, he20 mid-edge nodes 13-16 and 17-20 swapped), then per
output time and field a ``    1PSTEP`` line (block counter, increment, step), a ``  100CL``
line (frame 100 + k, total time, record count, format flag in column 75), the ``-4`` name line,
one ``-5`` line per component and the records, closed by `` 9999``. ASCII records are
``' -1' + I10 + n x E12.5`` of the value cast to float32, as ccx prints them; binary records
are int32 id + float32 or float64 values (no ``-3``), binary coordinates float64.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.calculix.frd import HE20_FRD_TO_INP

__all__ = ["FRD_ENCODINGS", "FRD_FIELDS", "write_frd"]

logger = logging.getLogger(__name__)

#: the encodings of ccx's output cards: *NODE FILE, *NODE OUTPUT, *NODE OUTPUT,DOUBLE
FRD_ENCODINGS = ("ascii", "float32", "float64")
#: encoding -> format flags of the 2C, 3C and 100CL lines
_FLAGS = {"ascii": (1, 1, 1), "float32": (3, 2, 2), "float64": (3, 2, 3)}
#: romdask element type -> .frd element type code
_TYPE_CODES = {"C3D8": 1, "C3D4": 3, "C3D20": 4, "C3D20R": 4, "C3D10": 6}
_MAX_ID = 2**31 - 1  # int32 in binary files and in cgx
_TENSOR = ((1, 1), (2, 2), (3, 3), (1, 2), (2, 3), (3, 1))
_VOIGT_TO_FRD = np.array([0, 1, 2, 3, 5, 4])  # romdask xx yy zz xy xz yz -> .frd xx yy zz xy yz zx


@dataclass(frozen=True)
class _Layout:
    """The ``-5`` lines of a field: (label, type 1 scalar / 2 vector / 4 tensor, row, column)."""

    components: tuple[tuple[str, int, int, int], ...]
    with_all: bool = False  # the computed ``ALL`` (magnitude) component of vectors


#: fields written with CalculiX's names, components and conversions (input in romdask's
#: conventions, see docs/conventions.md)
FRD_FIELDS: Mapping[str, str] = {
    "DISP": "displacement (n_nodes, 3): D1 D2 D3 (+ ALL, computed by cgx)",
    "STRESS": "stress (n_nodes, 6), Voigt xx yy zz xy xz yz -> SXX SYY SZZ SXY SYZ SZX",
    "TOSTRAIN": "strain (n_nodes, 6), engineering shear -> EXX EYY EZZ EXY EYZ EZX, tensor shear",
    "PE": "equivalent plastic strain (n_nodes,): PE (CalculiX's PEEQ in the .frd)",
    "ERROR": "ccx's stress error estimate in percent (n_nodes,): STR(%)",
}
_LAYOUTS = {
    "DISP": _Layout((("D1", 2, 1, 0), ("D2", 2, 2, 0), ("D3", 2, 3, 0)), with_all=True),
    "STRESS": _Layout(tuple((f"S{a}", 4, i, j) for a, (i, j) in zip(("XX", "YY", "ZZ", "XY", "YZ", "ZX"), _TENSOR))),
    "TOSTRAIN": _Layout(tuple((f"E{a}", 4, i, j) for a, (i, j) in zip(("XX", "YY", "ZZ", "XY", "YZ", "ZX"), _TENSOR))),
    "PE": _Layout((("PE", 1, 0, 0),)),
    "ERROR": _Layout((("STR(%)", 1, 0, 0),)),
}


def _convert(name: str, values: np.ndarray) -> np.ndarray:
    """romdask conventions -> .frd conventions for the known fields."""
    if name == "STRESS":
        return values[:, _VOIGT_TO_FRD]
    if name == "TOSTRAIN":
        return values[:, _VOIGT_TO_FRD] * np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    return values


@dataclass(frozen=True, eq=False)
class _Field:
    name: str
    data: Any  # indexable by output time: numpy, dask or zarr array
    layout: _Layout
    per_step: bool  # (n_t,): one value per output time, written at every node


def _layout_of(name: str, k: int) -> _Layout:
    if name in _LAYOUTS:
        return _LAYOUTS[name]
    if k == 1:
        return _Layout(((name, 1, 0, 0),))
    return _Layout(tuple((f"C{i + 1}", 1, 0, 0) for i in range(k)))


def _check_fields(path: Path, node_fields: Mapping[str, Any], n_t: int, n_nodes: int) -> list[_Field]:
    fields = []
    for name, data in node_fields.items():
        if not isinstance(name, str) or not (1 <= len(name) <= 8) or not name.isascii() \
                or not name.isprintable() or " " in name:
            raise ValueError(f"{path}: field name {name!r} must be 1-8 ASCII characters without spaces "
                             f"(the .frd block name), e.g. one of {sorted(FRD_FIELDS)}")
        if not (hasattr(data, "shape") and hasattr(data, "__getitem__")):
            data = np.asarray(data, np.float64)
        shape = tuple(data.shape)
        if len(shape) not in (1, 2, 3) or shape[0] != n_t or (len(shape) > 1 and shape[1] != n_nodes):
            raise ValueError(f"{path}: field {name!r} has shape {shape}; expected (n_times, n_nodes[, k]) = "
                             f"({n_t}, {n_nodes}[, k]) or (n_times,) = ({n_t},) for one value per output time")
        k = shape[2] if len(shape) == 3 else 1
        layout = _layout_of(name, k)
        if len(layout.components) != k:
            raise ValueError(f"{path}: field {name!r} needs {len(layout.components)} components per node; "
                             f"got shape {shape} ({FRD_FIELDS[name]})")
        fields.append(_Field(name, data, layout, per_step=len(shape) == 1))
    return fields


def _check_ids(path: Path, ids: np.ndarray, what: str) -> None:
    if ids.size and (ids.min() < 1 or ids.max() > _MAX_ID):
        bad = ids[(ids < 1) | (ids > _MAX_ID)][0]
        raise ValueError(f"{path}: {what} id {bad} outside 1..{_MAX_ID} (the .frd stores int32 ids)")
    if np.unique(ids).size != ids.size:
        values, counts = np.unique(ids, return_counts=True)
        raise ValueError(f"{path}: duplicate {what} ids, e.g. {values[counts > 1][:5].tolist()}")


def _check_mesh(path: Path, mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """(used nodes in ascending id order, global elements in ascending id order)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{path}: write_frd needs a romdask Mesh; got {type(mesh).__name__}")
    if mesh.n_elements == 0:
        raise ValueError(f"{path}: the mesh has no elements (the .frd holds results of element nodes)")
    unknown = sorted({b.type for b in mesh.blocks} - set(_TYPE_CODES))
    if unknown:
        raise ValueError(f"{path}: element types {unknown} have no .frd code here; supported: {sorted(_TYPE_CODES)}")
    _check_ids(path, np.asarray(mesh.node_ids), "node")
    _check_ids(path, mesh.element_ids, "element")
    used = np.unique(np.concatenate([b.connectivity.ravel() for b in mesh.blocks]))
    used = used[np.argsort(mesh.node_ids[used], kind="stable")]
    return used, np.argsort(mesh.element_ids, kind="stable")


def _check_times(path: Path, times) -> np.ndarray:
    times = np.asarray(times, np.float64)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"{path}: times must be a 1-D sequence of finite numbers; got {np.shape(times)}")
    if np.any(np.diff(times) <= 0):
        k = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
        raise ValueError(f"{path}: times must increase; time {k} is {float(times[k])!r} after {float(times[k - 1])!r}")
    return times


def _check_steps(path: Path, steps, n_t: int) -> np.ndarray:
    """(n_t, 2) int64 (step, increment) of every output time."""
    if steps is None:
        return np.column_stack([np.ones(n_t, np.int64), np.arange(1, n_t + 1)])
    a = np.asarray(steps)
    if a.shape == (n_t,) and np.issubdtype(a.dtype, np.integer):
        if n_t and (a.min() < 1 or np.any(np.diff(a) < 0)):
            raise ValueError(f"{path}: step numbers must be >= 1 and non-decreasing; got {a.tolist()[:10]}")
        increments = np.ones(n_t, np.int64)
        for k in range(1, n_t):
            increments[k] = increments[k - 1] + 1 if a[k] == a[k - 1] else 1
        return np.column_stack([a.astype(np.int64), increments])
    if a.shape == (n_t, 2) and np.issubdtype(a.dtype, np.integer) and (a.size == 0 or a.min() >= 1):
        return a.astype(np.int64)
    raise ValueError(f"{path}: steps must be {n_t} step numbers (int >= 1) or {n_t} (step, increment) pairs; "
                     f"got an array of shape {a.shape} and dtype {a.dtype}")


def _check_texts(path: Path, frame_text, n_t: int) -> list[str]:
    texts = [""] * n_t if frame_text is None else [str(t) for t in frame_text]
    if len(texts) != n_t:
        raise ValueError(f"{path}: frame_text needs one text per output time ({n_t}); got {len(texts)}")
    for text in texts:
        if not text.isascii() or not text.isprintable() or len(text) > 12:
            raise ValueError(f"{path}: frame text {text!r} must be printable ASCII of at most 12 characters "
                             "(the description field of the 100CL line)")
    return texts


def _text_line(text: str, path: Path) -> bytes:
    if not text.isascii() or not text.isprintable() or len(text) > 66:
        raise ValueError(f"{path}: description {text!r} must be printable ASCII of at most 66 characters")
    return f"    1U{text:<66}\n".encode()


def _header(description: str, path: Path) -> bytes:
    from romdask import __version__

    return (b"    1C\n" + _text_line(description, path) + _text_line("PGM               romdask", path)
            + _text_line(f"VERSION           romdask {__version__}", path))  # fmt: skip


def _ascii_records(ids: np.ndarray, values: np.ndarray) -> bytes:
    """' -1' I10 + up to six E12.5 a line, ' -2' continuation lines (ccx's frdselect)."""
    k = values.shape[1]
    fmt = " -1%10d" + "%12.5E" * min(k, 6) + "\n"
    for start in range(6, k, 6):
        fmt += " -2          " + "%12.5E" * min(6, k - start) + "\n"
    rows = values.astype(np.float64).tolist()
    return "".join([fmt % (i, *row) for i, row in zip(ids.tolist(), rows)]).encode()


def _binary_records(ids: np.ndarray, values: np.ndarray, dtype: str) -> bytes:
    rec = np.empty(len(ids), [("id", "<i4"), ("v", dtype, (values.shape[1],))])
    rec["id"], rec["v"] = ids, values
    return rec.tobytes()


def _write_nodes(f: BinaryIO, mesh: Mesh, used: np.ndarray, encoding: str) -> None:
    flag = _FLAGS[encoding][0]
    f.write(f"    2C{'':18}{len(used):12d}{flag:38d}\n".encode())
    ids, xyz = mesh.node_ids[used], mesh.nodes[used]
    if encoding == "ascii":
        f.write(_ascii_records(ids, _as_float32(xyz, "a node coordinate", ids)) + b" -3\n")
    else:
        f.write(_binary_records(ids, xyz, "<f8"))


def _element_rows(mesh: Mesh, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(ids, .frd type codes, node ids in .frd order) of the elements in ``order``."""
    blocks, local = mesh.element_block(order)
    conns = []
    for b, i in zip(blocks.tolist(), local.tolist()):
        block = mesh.blocks[b]
        conn = mesh.node_ids[block.connectivity[i]]
        conns.append(conn[HE20_FRD_TO_INP] if len(conn) == 20 else conn)
    codes = np.array([_TYPE_CODES[mesh.blocks[b].type] for b in blocks.tolist()], np.int64)
    return mesh.element_ids[order], codes, conns


def _write_elements(f: BinaryIO, mesh: Mesh, order: np.ndarray, encoding: str) -> None:
    flag = _FLAGS[encoding][1]
    f.write(f"    3C{'':18}{len(order):12d}{flag:38d}\n".encode())
    ids, codes, conns = _element_rows(mesh, order)
    if encoding == "ascii":
        lines = []
        for eid, code, conn in zip(ids.tolist(), codes.tolist(), conns):
            lines.append(f" -1{eid:10d}{code:5d}{0:5d}{1:5d}\n")
            nodes = conn.tolist()
            for s in range(0, len(nodes), 10):
                lines.append(" -2" + "".join(f"{n:10d}" for n in nodes[s : s + 10]) + "\n")
        f.write("".join(lines).encode() + b" -3\n")
    else:
        for eid, code, conn in zip(ids.tolist(), codes.tolist(), conns):
            f.write(np.array([eid, code, 0, 1, *conn.tolist()], "<i4").tobytes())


def _format_time(t: float) -> str:
    """Total time in 12 characters as ccx writes it: E12.5 below 1 (and from 1e10), else
    fixed with 10 significant digits."""
    if t <= 0.0 or not (0.0 <= np.log10(t) < 10.0):
        return f"{t:12.5E}"
    decimals = 10 - int(np.floor(np.log10(t) + 1.0))
    return f"{t:12.{max(decimals, 0)}f}"


def _block_header(field: _Field, counter: int, frame: int, t: float, step: tuple[int, int], n: int,
                  encoding: str, text: str) -> bytes:
    flag = _FLAGS[encoding][2]
    pstep = f"    1PSTEP{'':14}{counter:12d}{step[1]:12d}{step[0]:12d}"
    cl = f"  100CL{100 + frame:5d}{_format_time(t)}{n:12d}{text:<12}{'':9}0{frame:5d}{'':11}{flag}"
    comps = field.layout.components
    n_declared = len(comps) + field.layout.with_all
    lines = [f"{pstep:<70}", cl, f" -4  {field.name:<8}{n_declared:5d}{1:5d}"]
    lines += [f" -5  {label:<8}{1:5d}{kind:5d}{row:5d}{col:5d}" for label, kind, row, col in comps]
    if field.layout.with_all:
        lines.append(f" -5  {'ALL':<8}{1:5d}{2:5d}{0:5d}{0:5d}{1:5d}ALL")
    return ("\n".join(lines) + "\n").encode()


def _as_float32(values: np.ndarray, what: str, ids: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        v32 = values.astype(np.float32)
    bad = ~np.isfinite(v32)
    if np.any(bad):
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"{what} {float(values[row][bad[row]][0])!r} at id {ids[row]} is beyond float32 (ASCII and "
                         f"float32 .frd files hold float32); write with encoding='float64'")
    return v32


def _step_values(path: Path, field: _Field, step: int, t: float, mesh: Mesh, used: np.ndarray) -> np.ndarray:
    """(n_used, k) float64 values of ``field`` at output ``step`` for the written nodes."""
    raw = np.asarray(field.data[step], np.float64)
    if field.per_step:
        values = np.full((len(used), 1), float(raw))
    else:
        values = _convert(field.name, raw.reshape(mesh.n_nodes, -1)[used])
    bad = ~np.isfinite(values)
    if np.any(bad):
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"{path}: field {field.name!r} at output {step} (t={t:g}) has the non-finite value "
                         f"{values[row][bad[row]][0]} at node id {mesh.node_ids[used[row]]}")
    return values


def _write_results(f: BinaryIO, path: Path, mesh: Mesh, used: np.ndarray, times: np.ndarray,
                   steps: np.ndarray, fields: list[_Field], encoding: str, texts: list[str]) -> None:
    ids = mesh.node_ids[used]
    counter = 0
    for k, t in enumerate(times.tolist()):
        for field in fields:
            values = _step_values(path, field, k, t, mesh, used)
            counter += 1
            f.write(_block_header(field, counter, k + 1, t, tuple(steps[k]), len(used), encoding, texts[k]))
            if encoding == "float64":
                f.write(_binary_records(ids, values, "<f8"))
                continue
            what = f"{path}: field {field.name!r} at output {k} (t={t:g}): value"
            v32 = _as_float32(values, what, ids)
            if encoding == "ascii":
                f.write(_ascii_records(ids, v32) + b" -3\n")
            else:
                f.write(_binary_records(ids, v32, "<f4"))


def write_frd(
    path: str | os.PathLike,
    mesh: Mesh,
    times: Sequence[float] | np.ndarray,
    node_fields: Mapping[str, Any],
    *,
    steps: Sequence[int] | np.ndarray | None = None,
    encoding: str = "ascii",
    description: str = "romdask prediction",
    frame_text: Sequence[str] | None = None,
) -> Path:
    """Write nodal results as a CalculiX ``.frd`` file (read by cgx, :func:`read_frd` and
    :func:`~romdask.io.calculix.read_calculix` with the matching ``.inp``).

    Parameters
    ----------
    path : the file to write (parent folders are created; an existing file is replaced)
    mesh : Mesh (C3D4, C3D10, C3D8, C3D20, C3D20R); its solver ids are written
    times : (n_t,) increasing total times of the output frames
    node_fields : ``.frd`` block name (1-8 characters) -> array indexable by output time,
        ``(n_t, n_nodes[, k])`` in the mesh's node order and romdask's conventions: a numpy,
        dask or zarr array (read one output time at a time). Known names (:data:`FRD_FIELDS`)
        get CalculiX's components and conversions: ``DISP`` (3), ``STRESS`` (6, Voigt
        ``xx yy zz xy xz yz`` reordered to ``SXX SYY SZZ SXY SYZ SZX``), ``TOSTRAIN`` (6,
        engineering shear halved), ``PE`` (1, equivalent plastic strain). Other names are
        scalars (component named like the block) or ``k`` scalar components ``C1..Ck``; an
        ``(n_t,)`` array is one value per output time written at every node (e.g. a ROM error
        indicator, ``"ERRIND"``; avoid ``ERROR``, ccx's error estimate in percent). Blocks are
        written in the order of the mapping, ``DISP`` first for read_calculix.
    steps : None (all frames in step 1, increments 1..n_t), n_t step numbers (increments counted
        inside each step) or (n_t, 2) (step, increment) pairs, for the ``1PSTEP`` lines
    encoding : "ascii" (ccx's ``*NODE FILE``: 6 significant digits, values cast to float32),
        "float32" (``*NODE OUTPUT``) or "float64" (``*NODE OUTPUT,DOUBLE``, exact); binary
        coordinates are float64
    description : the first ``1U`` line (cgx's model name), printable ASCII, at most 66 characters
    frame_text : one text per output time, at most 12 characters, written in the description
        field of every ``100CL`` line of that time (cgx lists it with each dataset), e.g. the
        error indicator ``"ind=1.23E-03"``

    Returns
    -------
    Path of the written file.

    Raises
    ------
    ValueError
        Fields of the wrong shape or non-finite values (naming the field, output time and node
        id), ids outside 1..2**31-1 or repeated, non-increasing times, bad steps, an empty
        mesh, values beyond float32 for the ASCII / float32 encodings.

    Notes
    -----
    Only nodes used by elements are written, in ascending id order, as ccx does; elements in
    ascending id order. The file is written to a temporary file next to ``path`` and renamed
    at the end: an error leaves no partial ``.frd``. Memory: one output time of one field
    (plus the mesh); cost dominated by the ASCII formatting, about 1 s per 10^6 values, binary
    encodings are ~50 x faster and larger for float64. Size per block: ASCII
    ``n_nodes (14 + 12 k)`` bytes, binary ``n_nodes (4 + 4 k)`` or ``(4 + 8 k)``.
    """
    path = Path(path)
    if encoding not in FRD_ENCODINGS:
        raise ValueError(f"{path}: encoding must be one of {FRD_ENCODINGS}; got {encoding!r}")
    used, order = _check_mesh(path, mesh)
    times = _check_times(path, times)
    steps = _check_steps(path, steps, len(times))
    fields = _check_fields(path, node_fields, len(times), mesh.n_nodes)
    texts = _check_texts(path, frame_text, len(times))
    header = _header(description, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(header)
            _write_nodes(f, mesh, used, encoding)
            _write_elements(f, mesh, order, encoding)
            _write_results(f, path, mesh, used, times, steps, fields, encoding, texts)
            f.write(b" 9999\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("%s: %d nodes, %d elements, %d output times x %d fields (%s)", path, len(used), len(order),
                len(times), len(fields), encoding)
    return path
