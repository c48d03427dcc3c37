"""Reader of Z-set (Zebulon) results: ``.geof`` mesh, ``.ut`` header, binary ``.node`` / ``.integ``.

Format facts (established from public sources, see the hand-back notes in the module tests):

- ``.geof`` (ASCII, ``%`` comments): ``***geometry``, ``**node`` then ``n_nodes dim`` and lines
  ``id x y z``; ``**element`` then ``n_elements`` and lines ``id type n1 n2 ...`` (node ids);
  ``***group`` with ``**nset name`` / ``**elset name`` followed by ids, ``**faset`` / ``**bset`` /
  ``**liset`` (faces, skipped here); ``***return`` ends the file.
- ``.ut`` (ASCII): ``**meshfile <file>.geof``, ``**node <nodal field names>``, ``**integ <ip field
  names>``, ``**element <element field names>``, then one line per output time
  ``map card increment cycle time``; the time is the last column.
- ``.node``: big-endian float32, for each output time, for each nodal field, all nodes in the
  ``.geof`` order. ``.integ``: big-endian float32, for each output time, for each element (file
  order), for each ip field, the element's integration points.
- Domain decomposition: ``<name>-001.ut``, ``<name>-002.ut``... each with its own ``.node`` /
  ``.integ`` and ``**meshfile <name>-pmeshes/<name>-001.geof``; the subdomain meshes keep the
  GLOBAL node and element ids. ``<name>.cut`` names the global mesh (``**global_mesh``). The
  global ``.geof`` carries the element sets ``domain000``, ``domain001``... (0-based:
  ``domain000`` = the elements of ``<name>-001``); every subdomain ``.geof`` keeps them all, the
  other domains' sets empty. Interface nodal values (``U``, ``RU``) are equal in the subdomain
  files. (Checked on BasicTools ``TestData/UtParExample/cube``: 69 ip variables, RU1..RU3; read
  decomposed or merged, every field agrees exactly.)
- Output tensors are plain tensor components in the order ``11 22 33 12 23 31`` (strain ``eto``
  with TENSOR shear, no sqrt(2) factor): checked against the strains recomputed from ``U`` on
  a real Z-set result (BasicTools ``TestData/UtExample/cube``).

Node orders (Z-set -> CalculiX): c3d8 identical (checked on the same result: strains at the
points agree to 1e-10); c3d20 ``[0 2 4 6 12 14 16 18 1 3 5 7 13 15 17 19 8 9 10 11]`` (checked on
the geometry of BasicTools ``TestData/cube.geof``: corners and midsides alternate around the
bottom face, then the four vertical midsides, then the top face). Tetrahedra: NOT established
from a Z-set result; the reader detects the c3d10 midside layout and the orientation from the
geometry (see :func:`_tet_permutation`) and records the choice in ``Run.metadata``.

Integration points: c3d8 uses CalculiX's 2x2x2 order (checked). c3d20 (27) / c3d20r (8) /
c3d10_4 (4) are assumed to share CalculiX's order (not checked; noted in the metadata). c3d4
(4 points in Z-set, 1 in CalculiX) and c3d10 (5 vs 4) use other rules: the run then carries no
integration-point fields and the metadata says why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from romdask.fem.elements import get_element
from romdask.fem.mesh import CellBlock, Mesh
from romdask.fem.partition import Partition
from romdask.io.run import FieldSpec, Frame, ReaderError, Run

__all__ = ["read_zset", "read_geof", "ZSET_ELEMENTS"]

logger = logging.getLogger(__name__)

_HEX20 = (0, 2, 4, 6, 12, 14, 16, 18, 1, 3, 5, 7, 13, 15, 17, 19, 8, 9, 10, 11)
#: Z-set type -> (romdask type, Z-set points per element, ip status)
ZSET_ELEMENTS = {
    "c3d8": ("C3D8", 8, "checked"),
    "c3d20": ("C3D20", 27, "assumed"),
    "c3d20r": ("C3D20R", 8, "assumed"),
    "c3d4": ("C3D4", 4, "incompatible"),
    "c3d4r": ("C3D4", 1, "checked"),
    "c3d10": ("C3D10", 5, "incompatible"),
    "c3d10_4": ("C3D10", 4, "assumed"),
}
_PERM = {"c3d20": _HEX20, "c3d20r": _HEX20}
# c3d10 candidates: ccx[i] = zset[perm[i]]
_TET10_CANDIDATES = {
    "basictools": (2, 0, 1, 9, 5, 3, 4, 8, 6, 7),  # BasicTools ZsetTools.PermutationZSetToBasicTools
    "ring": (0, 2, 4, 9, 1, 3, 5, 6, 7, 8),  # base ring corner/midside alternating, like c3d20
}
_TET10_EDGES = ((0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3))
_FLIP = {4: (0, 2, 1, 3), 10: (0, 2, 1, 3, 6, 5, 4, 7, 9, 8)}
_VOIGT = ("11", "22", "33", "12", "31", "23")  # romdask xx yy zz xy xz yz


# ---- .geof -------------------------------------------------------------------------------------


@dataclass
class _Geof:
    node_ids: np.ndarray
    nodes: np.ndarray
    el_ids: np.ndarray
    el_types: list[str]
    el_conn: list[list[int]]  # node ids, Z-set order
    nsets: dict[str, np.ndarray]
    elsets: dict[str, np.ndarray]


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise ReaderError(path, f"cannot read: {err}") from None
    out = []
    for line in text.splitlines():
        line = line.split("%", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _parse_geof(path: Path) -> _Geof:
    if not path.is_file():
        raise ReaderError(path, "mesh file not found")
    lines = _lines(path)
    g = _Geof(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0, np.int64), [], [], {}, {})
    i = 0
    try:
        while i < len(lines):
            head = lines[i].split()
            key = head[0].lower()
            if key == "***return":
                break
            if key == "**node":
                n, dim = map(int, lines[i + 1].split()[:2])
                if dim != 3:
                    raise ReaderError(path, f"{dim}-D mesh; only 3-D solids are supported")
                rows = [lines[i + 2 + k].split() for k in range(n)]
                if any(len(r) != 4 for r in rows):
                    raise ReaderError(path, "a **node line does not have 'id x y z'")
                a = np.array(rows, dtype=np.float64)
                g.node_ids, g.nodes = a[:, 0].astype(np.int64), a[:, 1:]
                i += 2 + n
                continue
            if key == "**element":
                n = int(lines[i + 1].split()[0])
                ids = []
                for k in range(n):
                    s = lines[i + 2 + k].split()
                    t = s[1].lower()
                    if t not in ZSET_ELEMENTS:
                        raise ReaderError(path, f"element {s[0]}: unsupported element type {s[1]!r}; "
                                                f"supported: {', '.join(ZSET_ELEMENTS)}")
                    ids.append(int(s[0]))
                    g.el_types.append(t)
                    g.el_conn.append([int(x) for x in s[2:]])
                g.el_ids = np.array(ids, np.int64)
                i += 2 + n
                continue
            if key in ("**nset", "**elset"):
                ids = []
                i += 1
                while i < len(lines) and not lines[i].startswith("*"):
                    ids.extend(int(x) for x in lines[i].split())
                    i += 1
                (g.nsets if key == "**nset" else g.elsets)[head[1]] = np.array(ids, np.int64)
                continue
            i += 1
    except ReaderError:
        raise
    except (ValueError, IndexError) as err:
        raise ReaderError(path, f"malformed geof near line {i + 1} of the content: {err}") from None
    if len(g.node_ids) == 0 or len(g.el_ids) == 0:
        raise ReaderError(path, "no **node or no **element section")
    return g


def _tet_permutation(path: Path, ztype: str, x: np.ndarray) -> tuple[tuple[int, ...], dict]:
    """CalculiX order of Z-set tetrahedra, from the geometry ``x`` (n_el, n_nodes, 3).

    c3d10: the candidate whose midside nodes lie closest to the midpoints of their edges;
    then both types: swap nodes so that CalculiX's volume (x2-x1)x(x3-x1).(x4-x1) is positive.
    """
    note = {}
    perm = tuple(range(x.shape[1]))
    if ztype.startswith("c3d10"):
        errs = {}
        for name, p in _TET10_CANDIDATES.items():
            y = x[:, p]
            scale = np.linalg.norm(y[:, 1] - y[:, 0], axis=1).mean() or 1.0
            errs[name] = max(np.abs(y[:, 4 + k] - (y[:, i] + y[:, j]) / 2).max()
                             for k, (i, j) in enumerate(_TET10_EDGES)) / scale
        best = min(errs, key=errs.get)
        if errs[best] > 0.25:
            raise ReaderError(path, f"{ztype}: no known node order puts the midside nodes on the edges "
                                    f"(relative offsets {errs})")
        perm = _TET10_CANDIDATES[best]
        note["c3d10_node_order"] = best
    y = x[:, perm]
    vol = np.einsum("ij,ij->i", np.cross(y[:, 1] - y[:, 0], y[:, 2] - y[:, 0]), y[:, 3] - y[:, 0])
    if np.all(vol < 0):
        perm = tuple(perm[k] for k in _FLIP[len(perm)])
        note[f"{ztype}_orientation"] = "reversed vs CalculiX (nodes 2 and 3 swapped)"
    elif np.any(vol <= 0):
        raise ReaderError(path, f"{ztype}: elements of both orientations (or flat); cannot map to CalculiX")
    else:
        note[f"{ztype}_orientation"] = "same as CalculiX"
    return perm, note


def read_geof(path: str | Path) -> tuple[Mesh, np.ndarray, dict]:
    """Read a ``.geof`` mesh.

    Returns
    -------
    mesh : Mesh in CalculiX node order, elements grouped by type (first appearance order)
    file_element : (n_elements,) index in the ``.geof`` element list of each global element
    notes : node-order decisions taken from the geometry (JSON-serializable)
    """
    path = Path(path)
    g = _parse_geof(path)
    index = {int(k): i for i, k in enumerate(g.node_ids)}
    if len(index) != len(g.node_ids):
        raise ReaderError(path, "repeated node ids")
    types = np.array(g.el_types)
    order, blocks, notes = [], [], {}
    for rtype in dict.fromkeys(ZSET_ELEMENTS[t][0] for t in g.el_types):
        conn_rows, els = [], []
        for zt in dict.fromkeys(t for t in g.el_types if ZSET_ELEMENTS[t][0] == rtype):
            sel = np.flatnonzero(types == zt)
            try:
                conn = np.array([[index[n] for n in g.el_conn[e]] for e in sel], np.int64)
            except KeyError as err:
                raise ReaderError(path, f"{zt} element refers to unknown node id {err}") from None
            n_nodes = get_element(rtype).n_nodes
            if conn.ndim != 2 or conn.shape[1] != n_nodes:
                raise ReaderError(path, f"{zt} elements need {n_nodes} nodes")
            if rtype in ("C3D4", "C3D10"):
                perm, note = _tet_permutation(path, zt, g.nodes[conn])
                notes.update(note)
            else:
                perm = _PERM.get(zt, tuple(range(n_nodes)))
            conn = conn[:, perm]
            if rtype.startswith("C3D8") or rtype.startswith("C3D20"):
                dn = get_element(rtype).shape_derivatives(np.zeros((1, 3)))[0]
                det = np.linalg.det(np.einsum("ena,nb->eab", g.nodes[conn], dn))
                if np.any(det <= 0):
                    raise ReaderError(path, f"{zt} element {g.el_ids[sel[np.argmax(det <= 0)]]} is inverted")
            conn_rows.append(conn)
            els.append(sel)
        sel = np.concatenate(els)
        blocks.append(CellBlock(rtype, np.concatenate(conn_rows), g.el_ids[sel]))
        order.append(sel)
    file_element = np.concatenate(order)
    el_index = {int(k): i for i, k in enumerate(g.el_ids[file_element])}
    try:
        nsets = {k: np.array([index[int(n)] for n in v], np.int64) for k, v in g.nsets.items()}
        elsets = {k: np.array([el_index[int(e)] for e in v], np.int64) for k, v in g.elsets.items()}
    except KeyError as err:
        raise ReaderError(path, f"a set refers to unknown id {err}") from None
    mesh = Mesh(g.nodes, tuple(blocks), g.node_ids, nsets, elsets)
    return mesh, file_element, notes


# ---- .ut ---------------------------------------------------------------------------------------


@dataclass
class _Ut:
    path: Path
    meshfile: Path
    node: list[str]
    integ: list[str]
    element: list[str]
    times: np.ndarray


def _parse_ut(path: Path) -> _Ut:
    if not path.is_file():
        raise ReaderError(path, "file not found")
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    meshfile, node, integ, element, times = None, [], [], [], []
    it = iter(lines)
    for line in it:
        s = line.split()
        key = s[0].lower()
        if key == "**meshfile":
            meshfile = s[1] if len(s) > 1 else next(it, None)
        elif key == "**node":
            node = s[1:]
        elif key == "**integ":
            integ = s[1:]
        elif key == "**element":
            element = s[1:]
        elif line.startswith("*"):
            continue
        else:
            try:
                times.append(float(s[-1]))
            except ValueError:
                raise ReaderError(path, f"bad time line {line!r}") from None
            if len(s) != 5:
                raise ReaderError(path, f"time line {line!r} needs 5 columns (map card increment cycle time)")
    if meshfile is None:
        raise ReaderError(path, "no **meshfile")
    mf = Path(meshfile)
    return _Ut(path, mf if mf.is_absolute() else path.parent / mf, node, integ, element, np.array(times))


@dataclass
class _Part:
    ut: _Ut
    nodes: np.ndarray  # global node index of each part node
    elements: np.ndarray  # global element index of each part element (file order)
    float_start: np.ndarray  # offset (in floats) of each part element inside one time of .integ
    n_ip: np.ndarray  # Z-set points of each part element
    node_file: Path
    integ_file: Path


def _check_size(path: Path, need: int) -> None:
    if not path.is_file():
        raise ReaderError(path, "result file not found")
    have = path.stat().st_size
    if have < need:
        raise ReaderError(path, f"truncated: {have} bytes, the .ut header implies {need}")


def _part(ut: _Ut, geof_mesh: Mesh, file_element, zset_types, global_mesh: Mesh, n_steps, need_integ) -> _Part:
    try:
        nodes = global_mesh.node_index(geof_mesh.node_ids)
        elements = global_mesh.element_index(geof_mesh.element_ids[np.argsort(file_element)])
    except KeyError as err:
        raise ReaderError(ut.meshfile, f"inconsistent pmeshes: {err} not in the global mesh") from None
    if not np.allclose(global_mesh.nodes[nodes], geof_mesh.nodes, rtol=1e-9, atol=1e-12):
        raise ReaderError(ut.meshfile, "inconsistent pmeshes: node coordinates differ from the global mesh")
    n_ip = np.array([ZSET_ELEMENTS[t][1] for t in zset_types], np.int64)
    start = np.concatenate([[0], np.cumsum(n_ip * len(ut.integ))[:-1]])
    stem = ut.path.with_suffix("")
    p = _Part(ut, nodes, elements, start, n_ip, stem.with_suffix(".node"), stem.with_suffix(".integ"))
    _check_size(p.node_file, 4 * n_steps * len(ut.node) * len(nodes))
    if need_integ:
        _check_size(p.integ_file, 4 * n_steps * len(ut.integ) * int(n_ip.sum()))
    return p


def _zset_types(path: Path) -> list[str]:
    return _parse_geof(path).el_types


#: nodal fields of a .ut taken as the temperature (Z-set's thermal dof TP first)
_TEMPERATURE_NAMES = ("TP", "temperature")

_TENSOR_COMPONENTS = ("xx", "yy", "zz", "xy", "xz", "yz")
#: names a Z-set variable cannot take in the store (the run group's own arrays)
_RESERVED = ("time", "step")
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Plan:
    """Where each romdask field of a run comes from."""

    fields: dict[str, FieldSpec]
    node: dict[str, list[int]]  # node field -> columns of the .node variables
    ip: dict[str, tuple[list[int], np.ndarray]]  # ip field -> (columns of the .integ variables, scale)
    sources: dict[str, list[str]]  # field -> Z-set variables, in component order
    omitted: dict[str, str]  # Z-set variable -> why it is not stored


def _groups(names: list[str]) -> list[tuple[str, str, list[str]]]:
    """(kind, stem, members) of the variables of a .ut line, in order of first appearance.

    "tensor": ``<stem>11 22 33 12 23 31`` all present (members in romdask's Voigt order
    xx yy zz xy xz yz); "vector": ``<stem>1`` .. ``<stem>n`` (n >= 2, numbers 1..n exactly);
    "scalar": any other variable. A repeated variable is the kind "repeated".
    """
    present = set(names)
    taken: dict[str, tuple[str, str, list[str]]] = {}
    for n in names:
        stem = n[:-2]
        if n not in taken and n[-2:] in _VOIGT and stem and all(stem + v in present for v in _VOIGT):
            group = ("tensor", stem, [stem + v for v in _VOIGT])
            taken.update(dict.fromkeys(group[2], group))
    numbered: dict[str, list[tuple[int, str]]] = {}
    for n in dict.fromkeys(names):
        m = re.fullmatch(r"(.*\D)([1-9]\d*)", n)
        if n not in taken and m:
            numbered.setdefault(m[1], []).append((int(m[2]), n))
    for stem, members in numbered.items():
        if len(members) >= 2 and sorted(k for k, _ in members) == list(range(1, len(members) + 1)):
            group = ("vector", stem, [n for _, n in sorted(members)])
            taken.update(dict.fromkeys(group[2], group))
    out: list[tuple[str, str, list[str]]] = []
    seen: set[str] = set()
    emitted: set[int] = set()
    for n in names:
        if n in seen:
            out.append(("repeated", n, [n]))
            continue
        seen.add(n)
        group = taken.get(n) or ("scalar", n, [n])
        if id(group) not in emitted:
            emitted.add(id(group))
            out.append(group)
    return out


def _plan(node_names: list[str], integ_names: list[str], ip_excluded: str | None) -> _Plan:
    """Every variable of the .ut header either becomes (part of) a field or is listed in
    ``omitted`` with the reason."""
    fields: dict[str, FieldSpec] = {}
    node: dict[str, list[int]] = {}
    ip: dict[str, tuple[list[int], np.ndarray]] = {}
    sources: dict[str, list[str]] = {}
    omitted: dict[str, str] = {}

    def add(name: str, location: str, kind: str, members: list[str], comps: tuple[str, ...], scale=None) -> None:
        if not _FIELD_NAME.fullmatch(name) or name in _RESERVED:
            for v in members:
                omitted[v] = f"field name {name!r} is not usable in the store (letters, digits, '_'; not time/step)"
            return
        if name in fields:
            for v in members:
                omitted[v] = f"field name {name!r} already taken by {sources[name]}"
            return
        names = node_names if location == "node" else integ_names
        cols = [names.index(v) for v in members]
        fields[name] = FieldSpec(location, comps)
        sources[name] = list(members)
        if location == "node":
            node[name] = cols
        else:
            ip[name] = (cols, np.ones(len(cols)) if scale is None else np.array(scale, np.float64))

    groups = _groups(node_names)
    temperature = next((c for c in _TEMPERATURE_NAMES if c in node_names), None)
    add("displacement", "node", "vector", ["U1", "U2", "U3"], ("ux", "uy", "uz"))
    if temperature is not None:
        add("temperature", "node", "scalar", [temperature], ("T",))
    used = {"U1", "U2", "U3", temperature}
    for kind, stem, members in groups:
        if kind == "repeated":
            omitted[stem] = "repeated in the **node line (the first one is read)"
            continue
        members = [v for v in members if v not in used]
        if not members:
            continue
        elif kind == "vector" and stem == "RU" and len(members) == 3:
            add("reaction_force", "node", kind, members, ("fx", "fy", "fz"))
        else:
            add(stem.rstrip("_") or stem, "node", kind, members, tuple(members))
    if integ_names and ip_excluded:
        for v in integ_names:
            omitted[v] = ip_excluded
        return _Plan(fields, node, ip, sources, omitted)
    groups = _groups(integ_names)
    p_name = next((c for c in ("epcum", "evcum") if c in integ_names), None)
    for kind, stem, members in groups:
        if kind == "repeated":
            omitted[stem] = "repeated in the **integ line (the first one is read)"
        elif kind == "tensor" and stem == "sig":
            add("stress", "ip", kind, members, _TENSOR_COMPONENTS)
        elif kind == "tensor" and stem == "eto":  # Z-set: tensor shear -> romdask: engineering
            add("strain", "ip", kind, members, _TENSOR_COMPONENTS, (1, 1, 1, 2, 2, 2))
        elif kind == "tensor":  # tensor components, like romdask's internal state variables
            add(stem.rstrip("_") or stem, "ip", kind, members, _TENSOR_COMPONENTS)
        elif members == [p_name]:
            add("p", "ip", kind, members, ("p",))
        else:
            add(stem.rstrip("_") or stem, "ip", kind, members, tuple(members))
    return _Plan(fields, node, ip, sources, omitted)


def _domain_partition(path: Path, mesh: Mesh) -> Partition | None:
    """The partition given by Z-set's domain element sets ``domain000``, ``domain001``... of a
    ``.geof`` (Z-set writes them into the mesh of a run split for parallel computing; each
    subdomain mesh of the split keeps them all, the other domains' sets empty): names
    ``domain`` + at least 3 digits, as Z-set writes them. None when the mesh has fewer than two
    non-empty domain sets."""
    found = {int(m[1]): name for name in mesh.element_sets if (m := re.fullmatch(r"domain(\d{3,})", name))}
    numbers = sorted(found)
    if numbers != list(range(len(numbers))):
        raise ReaderError(path, f"Z-set domain element sets {sorted(found.values())}: numbers {numbers} are not "
                                f"0..{len(numbers) - 1}")
    used = [k for k in numbers if len(mesh.element_sets[found[k]])]
    if len(used) < 2:
        return None
    count = np.zeros(mesh.n_elements, np.int64)
    element_part = np.zeros(mesh.n_elements, np.int64)
    for part, k in enumerate(used):
        members = np.unique(mesh.element_sets[found[k]])
        count[members] += 1
        element_part[members] = part
    if np.any(count != 1):
        ids = mesh.element_ids
        none, several = ids[count == 0], ids[count > 1]
        raise ReaderError(path, f"Z-set domain element sets {found[used[0]]}..{found[used[-1]]} do not split the "
                                f"mesh: {none.size} element(s) in none (ids {none[:10].tolist()}), {several.size} "
                                f"in several (ids {several[:10].tolist()}); fix or remove the domain sets")
    return _element_partition(mesh, element_part, len(used))


def _element_partition(mesh: Mesh, element_part: np.ndarray, n_parts: int) -> Partition:
    """Partition with the given element subdomains; a node belongs to the lowest subdomain of
    its elements (romdask's rule, :class:`~romdask.fem.partition.Partition`)."""
    node_part = np.full(mesh.n_nodes, n_parts, np.int64)
    for b, start in zip(mesh.blocks, mesh.block_offsets):
        parts = np.broadcast_to(element_part[start:start + len(b), None], b.connectivity.shape)
        np.minimum.at(node_part, b.connectivity.ravel(), parts.ravel())
    node_part[node_part == n_parts] = 0
    return Partition(n_parts, element_part, node_part)



def read_zset(path: str | Path, *, name: str | None = None) -> Run:
    """Read a Z-set result given its ``.ut`` file (monolithic or domain-decomposed).

    Parameters
    ----------
    path : ``<name>.ut``. When it does not exist but ``<name>-001.ut``, ``<name>-002.ut``... do
        (a domain-decomposed run), the subdomain results are gathered.
    name : run name (default: the file stem)

    Returns
    -------
    Run whose fields hold every variable of the ``.ut`` header (``metadata["zset_fields"]``:
    field -> its Z-set variables in component order), or list it in
    ``metadata["omitted_fields"]`` (variable -> reason):

    - nodal: "displacement" (U1 U2 U3), "temperature" (TP or temperature; component T),
      "reaction_force" (RU1 RU2 RU3; fx fy fz), any other ``<stem>1..<stem>n`` as field
      ``<stem>`` and any other variable as a field of its own name;
    - integration points, when the element rules match CalculiX's (else all omitted):
      "stress" (sig11..sig31), "strain" (eto.., engineering shear), "p" (epcum, else evcum),
      every other tensor ``<stem>11 22 33 12 23 31`` as field ``<stem>`` (trailing "_"
      dropped; components xx yy zz xy xz yz, tensor shear as Z-set writes it),
      ``<stem>1..<stem>n`` as field ``<stem>`` (components named by the variables), any other
      variable as a field of its own name;
    - omitted: element variables (``**element``: their file is not read), names the store
      cannot take or that clash with a field already made, repeated names.

    ``Run.partition``: the solver's split, a :class:`~romdask.fem.partition.Partition` with
    each element in its own subdomain (a node shared by several goes to the lowest): the
    subdomain files of a decomposed run (``<name>-001.ut`` is subdomain 0) or, for one
    ``.ut``, the element sets ``domain000``, ``domain001``... that Z-set writes into the
    ``.geof`` of a mesh split for a parallel run; None otherwise. ``metadata["partition"]``
    says which.

    Raises
    ------
    ReaderError
        Missing .geof/.node/.integ, truncated binaries, unknown element types, NaN/Inf values,
        non-increasing times, inconsistent pmeshes, domain element sets that do not put every
        element in exactly one domain.

    Notes
    -----
    Each frame reads one output time (a contiguous slice of each binary file); memory: one
    time of the run.

    References
    ----------
    Casenave, Akkari, Bordeu, Rey, Ryckelynck, "A nonintrusive distributed reduced order
    modeling framework for nonlinear structural mechanics", arXiv:1812.07228 (Z-set runs).
    """
    path = Path(path)
    stem = path.with_suffix("")
    if path.is_file():
        uts = [_parse_ut(path)]
        decomposed = False
    else:
        subs = sorted(path.parent.glob(f"{stem.name}-[0-9][0-9][0-9].ut"))
        if not subs:
            raise ReaderError(path, "file not found (nor subdomain files <name>-001.ut ...)")
        numbers = [int(re.search(r"-(\d{3})\.ut$", s.name).group(1)) for s in subs]
        if numbers != list(range(1, len(subs) + 1)):
            raise ReaderError(path, f"inconsistent pmeshes: subdomain numbers {numbers} are not 1..{len(subs)}")
        uts = [_parse_ut(s) for s in subs]
        decomposed = True
    times = uts[0].times
    for u in uts[1:]:
        if u.node != uts[0].node or u.integ != uts[0].integ or u.element != uts[0].element or not np.array_equal(u.times, times):
            raise ReaderError(u.path, f"inconsistent pmeshes: fields or times differ from {uts[0].path.name}")
    node_names, integ_names = uts[0].node, uts[0].integ
    missing = [c for c in ("U1", "U2", "U3") if c not in node_names]
    if missing:
        raise ReaderError(uts[0].path, f"no displacement: missing nodal fields {missing}; present {node_names}")

    notes: dict = {}
    if decomposed:
        global_geof = None
        cut = stem.with_suffix(".cut")
        if cut.is_file():
            m = re.search(r"\*\*global_mesh\s+(\S+)", cut.read_text(errors="replace"))
            if m:
                global_geof = cut.parent / m.group(1)
        if global_geof is None:
            global_geof = stem.with_suffix(".geof")
        global_mesh, _, notes = read_geof(global_geof)
    parts_geo = []
    for u in uts:
        mesh_u, fe_u, n_u = read_geof(u.meshfile)
        notes.update(n_u)
        parts_geo.append((u, mesh_u, fe_u, _zset_types(u.meshfile)))
    if not decomposed:
        global_mesh = parts_geo[0][1]

    statuses = {ZSET_ELEMENTS[t][2] for *_, types in parts_geo for t in set(types)}
    zset_types_all = sorted({t for *_, types in parts_geo for t in types})
    ip_excluded = None
    if "incompatible" in statuses:
        ip_excluded = (f"integration-point variable: Z-set element types {zset_types_all} use integration rules "
                       "other than CalculiX's (c3d4: 4 points vs 1, c3d10: 5 vs 4)")
    plan = _plan(node_names, integ_names, ip_excluded)
    if plan.ip and "assumed" in statuses:
        notes["ip_order"] = (f"Z-set point order of {zset_types_all} assumed equal to CalculiX's "
                             "(established for c3d8 only)")
    need_integ = bool(plan.ip)
    parts = [_part(u, m, fe, types, global_mesh, len(times), need_integ) for u, m, fe, types in parts_geo]

    covered = np.zeros(global_mesh.n_nodes, np.int64)
    el_covered = np.zeros(global_mesh.n_elements, np.int64)
    for p in parts:
        covered[p.nodes] += 1
        el_covered[p.elements] += 1
    if np.any(covered == 0) or np.any(el_covered != 1):
        raise ReaderError(uts[0].meshfile if not decomposed else global_geof,
                          f"inconsistent pmeshes: {int(np.sum(covered == 0))} nodes without results, "
                          f"{int(np.sum(el_covered != 1))} elements not in exactly one subdomain")
    if decomposed:
        element_part = np.zeros(global_mesh.n_elements, np.int64)
        for k, p in enumerate(parts):
            element_part[p.elements] = k
        partition = _element_partition(global_mesh, element_part, len(parts))
        notes["partition"] = (f"Z-set subdomains: {uts[0].path.name} .. {uts[-1].path.name} (0-based); "
                              "interface nodes in the lowest subdomain")
    else:
        partition = _domain_partition(uts[0].meshfile, global_mesh)
        if partition is not None:
            notes["partition"] = (f"Z-set domains: the {partition.n_parts} non-empty element sets domain000.. of "
                                  f"{uts[0].meshfile.name}, in order; interface nodes in the lowest subdomain")

    # romdask integration-point offsets of each global element
    n_pts = np.concatenate([np.full(len(b), get_element(b.type).n_points) for b in global_mesh.blocks])
    ip_start = np.concatenate([[0], np.cumsum(n_pts)])
    n_points = int(ip_start[-1])
    n_node_f, n_integ_f = len(node_names), len(integ_names)

    def frames() -> Iterator[Frame]:
        for k, t in enumerate(times):
            node = {f: np.full((global_mesh.n_nodes, len(c)), np.nan) for f, c in plan.node.items()}
            ip = {f: np.empty((n_points, len(c))) for f, (c, _) in plan.ip.items()}
            for p in parts:
                n = len(p.nodes)
                raw = np.fromfile(p.node_file, ">f4", count=n_node_f * n, offset=4 * k * n_node_f * n)
                if raw.size != n_node_f * n:
                    raise ReaderError(p.node_file, f"truncated at time {k}")
                raw = raw.reshape(n_node_f, n)
                for f, cols in plan.node.items():
                    val = raw[cols].T.astype(np.float64)
                    if not np.all(np.isfinite(val)):
                        raise ReaderError(p.node_file, f"time {k} (t={t:g}): non-finite {f}")
                    seen = ~np.isnan(node[f][p.nodes, 0])
                    if np.any(seen) and not np.allclose(node[f][p.nodes[seen]], val[seen], rtol=1e-5,
                                                        atol=1e-6 * max(np.abs(val).max(), 1e-30)):
                        raise ReaderError(p.node_file, f"time {k}: interface {f} values differ between subdomains")
                    node[f][p.nodes] = val
                if plan.ip:
                    per_time = n_integ_f * int(p.n_ip.sum())
                    raw = np.fromfile(p.integ_file, ">f4", count=per_time, offset=4 * k * per_time)
                    if raw.size != per_time:
                        raise ReaderError(p.integ_file, f"truncated at time {k}")
                    for nip in np.unique(p.n_ip):
                        sel = np.flatnonzero(p.n_ip == nip)
                        idx = (p.float_start[sel][:, None, None] + np.arange(n_integ_f)[None, :, None] * nip
                               + np.arange(nip)[None, None, :])
                        vals = raw[idx]  # (n_el, n_integ, nip) float32
                        rows = (ip_start[p.elements[sel]][:, None] + np.arange(nip)[None, :]).ravel()
                        for f, (cols, scale) in plan.ip.items():
                            ip[f][rows] = vals[:, cols, :].transpose(0, 2, 1).reshape(-1, len(cols)) * scale
            data = dict(node)
            for f, a in ip.items():
                if not np.all(np.isfinite(a)):
                    raise ReaderError(parts[0].integ_file, f"time {k} (t={t:g}): non-finite {f}")
                data[f] = a
            yield Frame(k, float(t), data)

    sources = [x for p in parts for x in (p.ut.path, p.ut.meshfile, p.node_file)
               + ((p.integ_file,) if need_integ else ())]
    if decomposed:
        sources.insert(0, global_geof)
    if uts[0].element:
        plan.omitted.update(dict.fromkeys(uts[0].element, "element variable (**element): its file is not read"))
    notes.update({"format": "zset", "decomposed": decomposed, "zset_element_types": zset_types_all,
                  "zset_node_fields": node_names, "zset_integ_fields": integ_names,
                  "zset_element_fields": uts[0].element, "zset_fields": plan.sources,
                  "omitted_fields": plan.omitted,
                  "tensor_convention": "Z-set files: tensor components 11 22 33 12 23 31 (no sqrt2); converted to "
                                       "xx yy zz xy xz yz; strain (eto) shear x2 (engineering), other tensors "
                                       "keep tensor components"})
    if plan.omitted:
        logger.info("%s: Z-set variables not stored: %s", path, plan.omitted)
    return Run(name=name or stem.name, mesh=global_mesh, times=times, fields=plan.fields, frames=frames,
               solver="zset", sources=tuple(sources), partition=partition, metadata=notes)
