"""Integration-point results of ``*EL PRINT`` in a CalculiX ``.dat`` file.

A block is a header line ``<what> (elem, integ.pnt.,...) for set <SET> and time <t>``, a blank
line and one row per integration point: element id, point number (1-based, CalculiX order),
values (7 significant digits). Stresses are ``sxx syy szz sxy sxz syz`` (tensor components);
strains ``exx eyy ezz exy exz eyz`` with TENSOR shear; ``internal state variables`` the SDV of
the material law; ``equivalent plastic strain`` PEEQ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from romdask.fem.mesh import Mesh
from romdask.io.run import ReaderError

__all__ = ["DatBlock", "DatResults", "read_dat", "IP_PER_ELEMENT", "ip_layout"]

#: Integration points per element type in CalculiX (C3D20R: reduced 2x2x2, C3D20: 3x3x3).
IP_PER_ELEMENT = {"C3D4": 1, "C3D10": 4, "C3D8": 8, "C3D20R": 8, "C3D20": 27}
#: .dat header -> (romdask kind, expected number of values or None)
_KINDS = {
    "stresses": ("stress", 6),
    "strains": ("strain", 6),
    "internal state variables": ("state", None),
    "equivalent plastic strain": ("p", 1),
}
_HEADER = re.compile(r"^\s*(.*?)\s*\(elem, integ\.pnt\..*?\)\s*for set\s+(\S+)\s+and time\s+(\S+)\s*$")
#: any block header: "<what> [(columns)] for set <SET> and time <t>" (*NODE PRINT, totals, ...)
_ANY_HEADER = re.compile(r"^\s*([^(]*?)\s*(?:\(.*\))?\s*for set\s+(\S+)\s+and time\s+(\S+)\s*$")
_FORTRAN_EXP = re.compile(rb"(?<=[0-9.])([+-])(?=\d{3}\b)")


@dataclass(frozen=True)
class DatBlock:
    """Index entry of one ``*EL PRINT`` block."""

    kind: str  # "stress", "strain", "state", "p"
    set: str
    time: float
    n_rows: int
    n_values: int
    offset: int
    line: int  # line number of the first row


@dataclass(frozen=True, eq=False)
class DatResults:
    """An indexed .dat file: integration-point blocks read on demand."""

    path: Path
    blocks: tuple[DatBlock, ...]
    #: (header text before its column list, set) of the blocks not indexed (``*NODE PRINT``
    #: ``displacements``, ``forces``, ``total force``; other ``*EL PRINT`` variables...), once each
    others: tuple[tuple[str, str], ...] = ()

    def times(self, kind: str) -> np.ndarray:
        """Distinct output times of ``kind`` blocks, in file order."""
        return np.array(list(dict.fromkeys(b.time for b in self.blocks if b.kind == kind)), np.float64)

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(b.kind for b in self.blocks))

    def read(self, block: DatBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(element ids, point numbers (1-based), values (n_rows, n_values))`` as printed
        (CalculiX order and conventions)."""
        with open(self.path, "rb") as f:
            f.seek(block.offset)
            rows = [f.readline() for _ in range(block.n_rows)]
        data = np.empty((block.n_rows, block.n_values + 2), np.float64)
        for i, row in enumerate(rows):
            tokens = row.split()
            if len(tokens) != block.n_values + 2:
                raise ReaderError(self.path, f"line {block.line + i}: {len(tokens)} columns; "
                                             f"{block.n_values + 2} expected in this {block.kind} block")
            try:
                data[i] = [float(t) for t in tokens]
            except ValueError:
                try:  # Fortran drops the E of 3-digit exponents: 1.234567-100
                    data[i] = [float(_FORTRAN_EXP.sub(rb"E\1", t)) for t in tokens]
                except ValueError:
                    raise ReaderError(self.path, f"line {block.line + i}: cannot read the numbers in "
                                                 f"{row.strip()[:100]!r}") from None
        bad = ~np.isfinite(data)
        if np.any(bad):
            i = int(np.flatnonzero(bad.any(axis=1))[0])
            raise ReaderError(self.path, f"line {block.line + i}: non-finite value in the {block.kind} block "
                                         f"at time {block.time:g}")
        return data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2:]

    def read_converted(self, block: DatBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`read`, values in romdask's conventions (strain: engineering shear)."""
        el, ip, values = self.read(block)
        if block.kind == "strain":
            values = values.copy()
            values[:, 3:] *= 2.0
        return el, ip, values

    def frame(self, mesh: Mesh, kind: str, time_index: int) -> np.ndarray:
        """``kind`` at the ``time_index``-th output time of that kind, as an (n_points, k) array
        in romdask's integration-point order for ``mesh`` (all sets printed at that time merged).
        Raises ReaderError unless every integration point of the mesh is covered."""
        t = self.times(kind)[time_index]
        return self.gather(mesh, [b for b in self.blocks if b.kind == kind and b.time == t])

    def gather(self, mesh: Mesh, blocks: list[DatBlock]) -> np.ndarray:
        """Blocks of one kind and time merged into an (n_points, k) array (see :meth:`frame`)."""
        if not blocks:
            raise ReaderError(self.path, "no blocks to gather")
        return _gather(self.path, mesh, blocks, self.read_converted, blocks[0].kind, blocks[0].time)

    def frames(self, mesh: Mesh, kind: str) -> Iterator[tuple[float, np.ndarray]]:
        for i, t in enumerate(self.times(kind)):
            yield float(t), self.frame(mesh, kind, i)


def ip_layout(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """(points per global element, global index of each element's first point)."""
    n_ip = np.concatenate([np.full(len(b), IP_PER_ELEMENT[b.type], np.int64) for b in mesh.blocks])
    first = np.concatenate([[0], np.cumsum(n_ip)[:-1]]).astype(np.int64)
    return n_ip, first


def _gather(path, mesh: Mesh, blocks, reader, kind: str, t: float) -> np.ndarray:
    n_ip, first = ip_layout(mesh)
    n_points = int(n_ip.sum())
    out = None
    filled = np.zeros(n_points, bool)
    for b in blocks:
        el_ids, ip, values = reader(b)
        try:
            el = mesh.element_index(el_ids)
        except KeyError as exc:
            raise ReaderError(path, f"line {b.line}: {kind} block at time {t:g} names elements not in the mesh: "
                                    f"{exc.args[0]}") from None
        if np.any(ip < 1) or np.any(ip > n_ip[el]):
            i = int(np.flatnonzero((ip < 1) | (ip > n_ip[el]))[0])
            raise ReaderError(path, f"line {b.line + i}: point {ip[i]} of element {el_ids[i]} outside "
                                    f"1..{n_ip[el[i]]} for its type")
        if out is None:
            out = np.zeros((n_points, values.shape[1]), np.float64)
        elif values.shape[1] != out.shape[1]:
            raise ReaderError(path, f"line {b.line}: {values.shape[1]} values per point; {out.shape[1]} in "
                                    f"the other {kind} blocks at time {t:g}")
        idx = first[el] + ip - 1
        out[idx] = values
        filled[idx] = True
    if out is None or not filled.all():
        missing = int((~filled).sum())
        raise ReaderError(path, f"{kind} at time {t:g} misses {missing} of {n_points} integration points "
                                f"(print it with *EL PRINT for all elements)")
    return out


def read_dat(path: str | Path) -> DatResults:
    """Index the ``*EL PRINT`` integration-point blocks of a CalculiX ``.dat`` file.

    Parameters
    ----------
    path : the .dat file

    Returns
    -------
    DatResults
        ``blocks`` (kind "stress", "strain", "state" (SDV), "p" (PEEQ); set; time; rows);
        :meth:`DatResults.frame` gives one output time as an (n_points, k) array in romdask's
        integration-point order and conventions (stress xx yy zz xy xz yz; strain with
        engineering shear; SDV unchanged: for the viscoplastic law p comes first).
        Other blocks (``*NODE PRINT``, forces, ...) are skipped; ``others`` names them.

    Notes
    -----
    Indexing reads the file once line by line (headers and row counts); values are parsed on
    demand, one block at a time.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ReaderError(path, f"cannot open the .dat file ({exc.strerror})") from None
    blocks: list[DatBlock] = []
    others: dict[tuple[str, str], None] = {}
    with f:
        number = 0
        current = None  # [kind, set, time, n_values, offset, first line, n_rows]
        while True:
            offset = f.tell()
            raw = f.readline()
            if not raw:
                break
            number += 1
            text = raw.strip()
            if not text:
                if current is not None and current[6]:
                    blocks.append(_close(current))
                    current = None
                continue
            if b"for set" in text and b"and time" in text:
                if current is not None and current[6]:
                    blocks.append(_close(current))
                current = None
                m = _HEADER.match(text.decode(errors="replace"))
                if m is None or m.group(1).strip().lower() not in _KINDS:
                    other = _ANY_HEADER.match(text.decode(errors="replace"))
                    if other is not None:
                        others[(other.group(1).strip(), other.group(2))] = None
                    continue
                name = m.group(1).strip().lower()
                try:
                    t = float(m.group(3))
                except ValueError:
                    raise ReaderError(path, f"line {number}: cannot read the time {m.group(3)!r}") from None
                current = [_KINDS[name][0], m.group(2), t, _KINDS[name][1], None, None, 0]
                continue
            if current is not None:
                if current[6] == 0:
                    current[4], current[5] = offset, number
                    n = len(text.split()) - 2
                    if current[3] is None:
                        current[3] = n
                    if n != current[3] or n < 1:
                        raise ReaderError(path, f"line {number}: {n} values per point in a {current[0]} block; "
                                                f"{current[3]} expected")
                current[6] += 1
        if current is not None and current[6]:
            blocks.append(_close(current))
    return DatResults(path, tuple(blocks), tuple(others))


def _close(c) -> DatBlock:
    kind, set_name, t, n_values, offset, line, n_rows = c
    return DatBlock(kind, set_name, t, n_rows, n_values, offset, line)
