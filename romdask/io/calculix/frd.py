"""CalculiX result files (``.frd``): ASCII, binary float32 and binary float64.

The file is indexed once (headers only: binary blocks are skipped by their size, ASCII blocks by
their fixed line length), then every result block is read on demand from its byte offset, so a
file with thousands of frames is never held in memory.

Layout (CalculiX ``frd.c``, ``frdheader.c``, ``frdvector.c``): ``    2C`` nodes and ``    3C``
elements, each header ending with a format flag (1 ASCII, 2 binary); per result block a
``    1PSTEP`` line (block counter, increment, step), a ``  100CL`` line (total time in columns
13-24, record count in 25-36, format flag in column 75: 1 ASCII, 2 float32, 3 float64), a
``-4`` line (name, number of components) and one ``-5`` line per component (a 5th integer 1 marks
a component computed by the viewer, like ``ALL``, that is not stored). ASCII records are
``' -1' + I10 + n x E12.5`` (six values a line, then ``' -2'`` continuation lines), closed by
``' -3'``; binary records are int32 id + n x float32/float64 with no terminator. Binary node
coordinates are float64. ``' 9999'`` closes a complete file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from romdask.io.run import ReaderError

__all__ = ["FrdBlock", "FrdElements", "FrdResults", "read_frd", "FRD_ELEMENT_TYPES"]

logger = logging.getLogger(__name__)

#: .frd element type code -> (name, nodes per element); CalculiX names for the solids.
FRD_ELEMENT_TYPES = {
    1: ("C3D8", 8), 2: ("C3D6", 6), 3: ("C3D4", 4), 4: ("C3D20", 20), 5: ("C3D15", 15),
    6: ("C3D10", 10), 7: ("tr3", 3), 8: ("tr6", 6), 9: ("qu4", 4), 10: ("qu8", 8),
    11: ("be2", 2), 12: ("be3", 3),
}  # fmt: skip
#: he20: .frd position -> .inp position (an involution: swaps nodes 13-16 with 17-20).
HE20_FRD_TO_INP = np.r_[0:12, 16:20, 12:16]
_ENCODING = {1: "ascii", 2: "float32", 3: "float64"}


@dataclass(frozen=True)
class FrdElements:
    """Elements of one .frd type: ``connectivity`` holds node ids in CalculiX (.inp) order."""

    type: str
    code: int
    ids: np.ndarray
    connectivity: np.ndarray


@dataclass(frozen=True)
class FrdBlock:
    """Index entry of one result block (one field at one output time)."""

    index: int
    name: str
    step: int
    increment: int
    counter: int
    time: float
    components: tuple[str, ...]
    n_records: int
    encoding: str
    offset: int
    nbytes: int
    line: int  # line number of the first record (ASCII files), else 0

    def describe(self) -> str:
        return (f"result block {self.index + 1} ({self.name}, step {self.step}, increment "
                f"{self.increment}, t={self.time:g})")


@dataclass(frozen=True, eq=False)
class FrdResults:
    """An indexed .frd file; :meth:`read` / :meth:`frames` read blocks on demand."""

    path: Path
    version: str
    node_ids: np.ndarray
    nodes: np.ndarray
    elements: tuple[FrdElements, ...]
    blocks: tuple[FrdBlock, ...]
    complete: bool

    def fields(self) -> list[str]:
        """Names of the result fields, in order of first appearance (e.g. ``["DISP", "STRESS"]``)."""
        return list(dict.fromkeys(b.name for b in self.blocks))

    def select(self, name: str) -> list[FrdBlock]:
        return [b for b in self.blocks if b.name == name]

    def read(self, block: FrdBlock) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (n,), values (n, n_components) float64)`` of one block, as written: node ids of
        the .frd, components in ``block.components`` order (tensors SXX SYY SZZ SXY SYZ SZX,
        strains with tensor shear: no conversion here)."""
        with open(self.path, "rb") as f:
            f.seek(block.offset)
            data = f.read(block.nbytes)
        if len(data) != block.nbytes:
            raise ReaderError(self.path, f"{block.describe()} is truncated (the file changed since it was indexed?)")
        n = len(block.components)
        if block.encoding == "ascii":
            ids, values = _parse_ascii_records(data, block.n_records, n, self.path, block.line, block.describe())
        else:
            dtype = np.dtype([("id", "<i4"), ("v", "<f4" if block.encoding == "float32" else "<f8", (n,))])
            rec = np.frombuffer(data, dtype=dtype, count=block.n_records)
            ids, values = rec["id"].astype(np.int64), rec["v"].astype(np.float64)
        bad = ~np.isfinite(values)
        if np.any(bad):
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            where = f"line {block.line + _lines_per_record(n) * row}: " if block.encoding == "ascii" else ""
            raise ReaderError(self.path, f"{where}non-finite value {values[row][bad[row]][0]} for node "
                                         f"{ids[row]} in {block.describe()}")
        return ids, values

    def frames(self, name: str = "DISP") -> Iterator[tuple[FrdBlock, np.ndarray, np.ndarray]]:
        """``(block, ids, values)`` of every block of field ``name``, one at a time."""
        for block in self.select(name):
            ids, values = self.read(block)
            yield block, ids, values


def _lines_per_record(n: int) -> int:
    return max(1, -(-n // 6))


def _parse_ascii_records(data: bytes, count: int, n: int, path, line0: int, what: str):
    """Fixed-width ASCII records: ' -1' I10 then E12.5 fields (6 a line, ' -2' continuations)."""
    lines = data.splitlines()
    per = _lines_per_record(n)
    if len(lines) != count * per:
        raise ReaderError(path, f"line {line0}: {what} has {len(lines)} record lines; {count * per} expected")
    ids = np.empty(count, np.int64)
    values = np.empty((count, n), np.float64)
    try:
        # fast path: record lines of the exact width -> vectorized column slicing
        for k in range(per):
            m = min(6, n - 6 * k)
            width = 13 + 12 * m
            buf = np.array(lines[k::per]) if count else np.zeros(0, f"S{width}")
            if buf.dtype.itemsize != width or np.any(np.char.str_len(buf) != width):
                raise ValueError("ragged lines")  # (longer lines make the itemsize larger)
            if not np.all(np.char.startswith(buf, b" -1" if k == 0 else b" -2")):
                raise ValueError("bad record marks")
            rec = np.frombuffer(buf.tobytes(), dtype=[("mark", "S3"), ("id", "S10"), ("v", "S12", (m,))])
            if k == 0:
                ids[:] = rec["id"].astype(np.int64)
            values[:, 6 * k : 6 * k + m] = rec["v"].astype(np.float64)
        return ids, values
    except ValueError:
        pass
    # slow path: find the offending line
    for r in range(count):
        for k in range(per):
            i = r * per + k
            text = lines[i].rstrip()
            width = 13 + 12 * min(6, n - 6 * k)
            where = f"line {line0 + i}"
            mark = b" -1" if k == 0 else b" -2"
            if not text.startswith(mark) or len(text) != width:
                raise ReaderError(path, f"{where}: malformed record in {what} "
                                        f"(expected '{mark.decode()}' and {width} columns): {text[:80]!r}")
            try:
                if k == 0:
                    ids[r] = int(text[3:13])
                for c in range((width - 13) // 12):
                    field = text[13 + 12 * c : 25 + 12 * c]
                    values[r, 6 * k + c] = float(field)
            except ValueError:
                raise ReaderError(path, f"{where}: cannot read number {field.decode(errors='replace')!r} "
                                        f"in {what}") from None
    raise ReaderError(path, f"line {line0}: unreadable records in {what}")  # pragma: no cover


class _Scanner:
    """Reads header lines of a .frd file while tracking byte offsets and line numbers."""

    def __init__(self, path: Path, f):
        self.path, self.f = path, f
        self.size = os.fstat(f.fileno()).st_size
        self.line = 0  # number of the last line read (meaningful while the file is ASCII)

    def readline(self) -> bytes:
        text = self.f.readline()
        self.line += 1
        return text

    def error(self, problem: str) -> ReaderError:
        return ReaderError(self.path, problem)

    def need(self, nbytes: int, what: str) -> bytes:
        start = self.f.tell()
        if nbytes < 0 or start + nbytes > self.size:  # a header's count checked before allocating
            raise self.error(f"{what} is truncated or its header is wrong: it needs {nbytes:,} bytes from byte "
                             f"{start}, the file has {self.size - start:,} left")
        data = self.f.read(nbytes)
        if len(data) != nbytes:
            raise self.error(f"{what} is truncated: it needs {nbytes} bytes from byte {start}, "
                             f"the file ends after {len(data)}")
        return data


def _skip_ascii_block(sc: _Scanner, count: int, n: int, what: str) -> tuple[int, int]:
    """Skip ``count`` ASCII records of ``n`` values and the ' -3' line; return (offset, nbytes)
    of the records. The size is guessed from the fixed line lengths and checked against the
    ' -3' line; the records are scanned line by line only when the guess fails."""
    f = sc.f
    start = f.tell()
    per = _lines_per_record(n)
    first = f.readline()
    f.seek(start)
    eol = 2 if first.endswith(b"\r\n") else 1
    record = sum(13 + 12 * min(6, n - 6 * k) + eol for k in range(per))
    guess = count * record
    if start + guess + 3 <= sc.size:
        f.seek(start + guess)
        if f.readline().rstrip() == b" -3":
            sc.line += count * per + 1
            return start, guess
    # fall back to line by line
    f.seek(start)
    n_lines = 0
    while True:
        pos = f.tell()
        text = f.readline()
        if not text:
            raise sc.error(f"{what} is truncated: the file ends after {n_lines // per} of {count} records "
                           f"(line {sc.line + n_lines + 1})")
        if text.rstrip() == b" -3":
            break
        if not text.startswith((b" -1", b" -2")):
            raise sc.error(f"line {sc.line + n_lines + 1}: {what}: unexpected line {text[:80]!r} "
                           f"after {n_lines // per} of {count} records")
        n_lines += 1
    if n_lines != count * per:
        raise sc.error(f"line {sc.line + n_lines + 1}: {what} has {n_lines // per} records; {count} announced")
    sc.line += n_lines + 1
    return start, pos - start


def _read_nodes(sc: _Scanner, count: int, flag: int):
    what = f"the node block ({count} nodes, line {sc.line})"
    if flag == 1:
        line0 = sc.line + 1
        offset, nbytes = _skip_ascii_block(sc, count, 3, what)
        sc.f.seek(offset)
        data = sc.f.read(nbytes)
        sc.f.readline()
        ids, xyz = _parse_ascii_records(data, count, 3, sc.path, line0, "the node block")
        return ids, xyz
    width = 8 if flag == 3 else 4
    dtype = np.dtype([("id", "<i4"), ("x", f"<f{width}", (3,))])
    rec = np.frombuffer(sc.need(count * dtype.itemsize, what), dtype=dtype)
    return rec["id"].astype(np.int64), rec["x"].astype(np.float64)


def _read_elements(sc: _Scanner, count: int, flag: int):
    what = f"the element block ({count} elements)"
    out: list[tuple[int, int, list[int]]] = []
    if flag == 1:
        for _ in range(count):
            head = sc.readline()
            if not head:
                raise sc.error(f"{what} is truncated after {len(out)} elements")
            if not head.startswith(b" -1"):
                raise sc.error(f"line {sc.line}: {what}: expected ' -1' element line, got {head[:80]!r}")
            try:
                eid, code = int(head[3:13]), int(head[13:18])
            except ValueError:
                raise sc.error(f"line {sc.line}: cannot read element line {head[:80]!r}") from None
            if code not in FRD_ELEMENT_TYPES:
                raise sc.error(f"line {sc.line}: unknown .frd element type {code} (element {eid})")
            n = FRD_ELEMENT_TYPES[code][1]
            conn: list[int] = []
            while len(conn) < n:
                text = sc.readline().rstrip()
                if not text.startswith(b" -2"):
                    raise sc.error(f"line {sc.line}: element {eid}: expected ' -2' node line, got {text[:80]!r}")
                try:
                    conn.extend(int(text[i : i + 10]) for i in range(3, len(text), 10))
                except ValueError:
                    raise sc.error(f"line {sc.line}: cannot read node ids of element {eid}") from None
            if len(conn) != n:
                raise sc.error(f"line {sc.line}: element {eid} has {len(conn)} nodes; {n} expected")
            out.append((eid, code, conn))
        end = sc.readline()
        if end.rstrip() != b" -3":
            raise sc.error(f"line {sc.line}: {what}: expected ' -3', got {end[:80]!r}")
    else:
        for _ in range(count):
            head = np.frombuffer(sc.need(16, what), "<i4")
            eid, code = int(head[0]), int(head[1])
            if code not in FRD_ELEMENT_TYPES:
                raise sc.error(f"{what}: unknown .frd element type {code} (element {eid}) at byte {sc.f.tell() - 16}")
            n = FRD_ELEMENT_TYPES[code][1]
            out.append((eid, code, np.frombuffer(sc.need(4 * n, what), "<i4").tolist()))
    groups: dict[int, tuple[list, list]] = {}
    for eid, code, conn in out:
        g = groups.setdefault(code, ([], []))
        g[0].append(eid)
        g[1].append(conn)
    elements = []
    for code, (ids, conns) in groups.items():
        conn = np.array(conns, np.int64)
        if code == 4:
            conn = conn[:, HE20_FRD_TO_INP]
        elements.append(FrdElements(FRD_ELEMENT_TYPES[code][0], code, np.array(ids, np.int64), conn))
    return tuple(elements)


def read_frd(path: str | Path) -> FrdResults:
    """Index a CalculiX ``.frd`` file (any of the three encodings).

    Parameters
    ----------
    path : the .frd file

    Returns
    -------
    FrdResults
        Nodes (ids and coordinates: 6 digits in ASCII files, float64 in binary ones), elements
        (he20 mid-edge nodes back in .inp order), the index of result blocks and
        ``complete`` (the closing ``9999`` was found; a run that stopped early has none).
        Values are read block by block with :meth:`FrdResults.read` / :meth:`FrdResults.frames`.

    Raises
    ------
    ReaderError
        Missing file, a block cut short (in any encoding), unexpected lines, unknown element
        types; with the line (ASCII) or the byte offset and the block.

    Notes
    -----
    Indexing reads the header lines and seeks over the data blocks: cost proportional to the
    number of blocks (plus the mesh), memory for the mesh only.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ReaderError(path, f"cannot open the result file ({exc.strerror})") from None
    version = ""
    node_ids = nodes = None
    elements: tuple[FrdElements, ...] = ()
    blocks: list[FrdBlock] = []
    complete = False
    pstep = (0, 0, 0)
    with f:
        sc = _Scanner(path, f)
        while True:
            text = sc.readline()
            if not text:
                break
            key = text[:6]
            if key == b"    1C" or text.strip() == b"":
                continue
            if key == b"    1U":
                if text[6:13] == b"VERSION":
                    version = text[13:].decode(errors="replace").strip().removeprefix("Version").strip()
                continue
            if text.startswith(b"    1P"):
                if text.startswith(b"    1PSTEP"):
                    try:
                        pstep = (int(text[24:36]), int(text[36:48]), int(text[48:60]))
                    except ValueError:
                        raise sc.error(f"line {sc.line}: cannot read the 1PSTEP line {text[:80]!r}") from None
                continue
            if key in (b"    2C", b"    3C"):
                try:
                    count, flag = int(text[24:36]), int(text[36:].split()[-1])
                except (ValueError, IndexError):
                    raise sc.error(f"line {sc.line}: cannot read the header {text[:80]!r}") from None
                if count < 0:
                    raise sc.error(f"line {sc.line}: the header {text[:80]!r} announces {count} records")
                if key == b"    2C":
                    if node_ids is not None:
                        logger.warning("%s: a second node block (line %d) is ignored", path, sc.line)
                        _read_nodes(sc, count, flag)
                    else:
                        node_ids, nodes = _read_nodes(sc, count, flag)
                else:
                    els = _read_elements(sc, count, flag)
                    if not elements:
                        elements = els
                continue
            if text.startswith(b"  100CL"):
                blocks.append(_index_block(sc, text, pstep, len(blocks)))
                continue
            if text.strip() == b"9999":
                complete = True
                break
            raise sc.error(f"line {sc.line} (byte {f.tell() - len(text)}): unexpected line {text[:80]!r}")
    if node_ids is None:
        raise ReaderError(path, "no node block (2C) found: not a CalculiX .frd file?")
    if not complete:
        logger.warning("%s: no closing 9999 line: the run may have stopped early", path)
    return FrdResults(path, version, node_ids, nodes, elements, tuple(blocks), complete)


def _index_block(sc: _Scanner, cl: bytes, pstep, index: int) -> FrdBlock:
    try:
        time = float(cl[12:24])
        count = int(cl[24:36])
        flag = int(cl[74:75]) if len(cl.rstrip()) >= 75 else 1
    except ValueError:
        raise sc.error(f"line {sc.line}: cannot read the 100CL line {cl[:80]!r}") from None
    if flag not in _ENCODING:
        raise sc.error(f"line {sc.line}: unknown format flag {flag} in column 75 of the 100CL line")
    head = sc.readline()
    if not head.startswith(b" -4"):
        raise sc.error(f"line {sc.line}: expected the ' -4' line after 100CL, got {head[:80]!r}")
    parts = head[3:].split()
    try:
        name, n_declared = parts[0].decode(), int(parts[1])
    except (IndexError, ValueError, UnicodeDecodeError):
        raise sc.error(f"line {sc.line}: cannot read the ' -4' line {head[:80]!r}") from None
    components = []
    for _ in range(n_declared):
        comp = sc.readline()
        if not comp.startswith(b" -5"):
            raise sc.error(f"line {sc.line}: expected a ' -5' component line, got {comp[:80]!r}")
        tokens = comp[3:].split()
        computed = len(tokens) >= 6 and tokens[5].startswith(b"1")
        if not computed:
            components.append(tokens[0].decode(errors="replace"))
    n = len(components)
    encoding = _ENCODING[flag]
    block = FrdBlock(index, name, pstep[2], pstep[1], pstep[0], time, tuple(components), count,
                     encoding, 0, 0, 0)  # fmt: skip
    what = block.describe()
    if encoding == "ascii":
        line0 = sc.line + 1
        offset, nbytes = _skip_ascii_block(sc, count, n, what)
        sc.f.seek(offset + nbytes)
        sc.f.readline()  # the ' -3'
    else:
        line0 = 0
        width = 4 if encoding == "float32" else 8
        offset = sc.f.tell()
        nbytes = count * (4 + n * width)
        if offset + nbytes > sc.size:
            raise sc.error(f"{what} is truncated: it needs {nbytes} bytes from byte {offset}, "
                           f"the file ends after {sc.size - offset}")
        sc.f.seek(offset + nbytes)
    return FrdBlock(index, name, pstep[2], pstep[1], pstep[0], time, tuple(components), count,
                    encoding, offset, nbytes, line0)  # fmt: skip
