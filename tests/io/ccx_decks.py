"""Small CalculiX decks for the reader tests (imported by path from tests/io/test_calculix_*.py).

A box [0, 2] x [0, 1] x [0, 1] meshed with C3D8, C3D20(R) or C3D10 elements, non-contiguous node
and element ids, sets, a surface, an unused node, the nodes in an *INCLUDE file; the
viscoplastic law of /work/shared/notes/calculix.md under prescribed end displacements, one
*STEP per monotonic segment, *VISCO with fixed increments and a huge CETOL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

YOUNG, POISSON = 200000.0, 0.3
TABLE = [(200.0, 0.0), (300.0, 0.004), (400.0, 0.1)]
NORTON = (1e-9, 3.0, 0.2)
# (end x-displacement of the loaded face, step period, increments)
SEGMENTS = [(0.003, 1.0, 4), (-0.001, 1.0, 4)]
OUTPUT_CARDS = {"ascii": "*NODE FILE", "float32": "*NODE OUTPUT", "float64": "*NODE OUTPUT,DOUBLE"}
NODE_ID_OFFSET, ELEMENT_ID_OFFSET, UNUSED_NODE_ID = 100, 10, 99999

HEX20_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
               (0, 4), (1, 5), (2, 6), (3, 7)]  # fmt: skip
TET10_EDGES = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]
# Kuhn split of a hex (corners in Abaqus order) into 6 tets around the 0-6 diagonal
KUHN = [(0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6), (0, 5, 1, 6)]


def box_mesh(element_type: str, n=(2, 1, 1), size=(2.0, 1.0, 1.0)):
    """(coordinates (n_nodes, 3), connectivity (n_el, k) as 0-based rows) of a box."""
    nx, ny, nz = n
    grid = np.stack(np.meshgrid(*(np.linspace(0, s, m + 1) for s, m in zip(size, n)), indexing="ij"), -1)
    coords = [tuple(x) for x in grid.transpose(2, 1, 0, 3).reshape(-1, 3)]

    def nid(i, j, k):
        return i + (nx + 1) * (j + (ny + 1) * k)

    hexes = [[nid(i, j, k), nid(i + 1, j, k), nid(i + 1, j + 1, k), nid(i, j + 1, k),
              nid(i, j, k + 1), nid(i + 1, j, k + 1), nid(i + 1, j + 1, k + 1), nid(i, j + 1, k + 1)]
             for k in range(nz) for j in range(ny) for i in range(nx)]  # fmt: skip
    if element_type == "C3D8":
        return np.array(coords), np.array(hexes)
    mids: dict[tuple[int, int], int] = {}

    def mid(a, b):
        key = (min(a, b), max(a, b))
        if key not in mids:
            mids[key] = len(coords)
            coords.append(tuple((np.array(coords[a]) + np.array(coords[b])) / 2))
        return mids[key]

    if element_type in ("C3D20", "C3D20R"):
        cells = [h + [mid(h[a], h[b]) for a, b in HEX20_EDGES] for h in hexes]
    elif element_type in ("C3D10", "C3D4"):
        cells = []
        for h in hexes:
            for tet in KUHN:
                t = [h[v] for v in tet]
                x = np.array([coords[v] for v in t])
                if np.linalg.det(x[1:] - x[0]) < 0:
                    t[1], t[2] = t[2], t[1]
                cells.append(t if element_type == "C3D4" else t + [mid(t[a], t[b]) for a, b in TET10_EDGES])
    else:
        raise ValueError(element_type)
    return np.array(coords), np.array(cells)


def write_deck(directory: Path, element_type: str = "C3D8", encoding: str = "float64", *, name: str = "run",
               n=(2, 1, 1), segments=SEGMENTS, el_print=("S,E", "SDV")) -> dict:
    """Write ``name.inp`` (+ ``name_nodes.inc``); return what the deck holds (ids, coords, sets)."""
    directory = Path(directory)
    coords, cells = box_mesh(element_type, n)
    node_ids = NODE_ID_OFFSET + 2 * np.arange(len(coords))  # non-contiguous ids
    el_ids = ELEMENT_ID_OFFSET + np.arange(len(cells))
    fix = node_ids[np.isclose(coords[:, 0], 0.0)]
    load = node_ids[np.isclose(coords[:, 0], coords[:, 0].max())]
    inc = [f"{i},{x:.12e},{y:.12e},{z:.12e}" for i, (x, y, z) in zip(node_ids, coords)]
    inc.append(f"{UNUSED_NODE_ID},5.0,5.0,5.0")
    (directory / f"{name}_nodes.inc").write_text("\n".join(inc) + "\n")
    lines = ["*HEADING", "romdask reader test", "** nodes in an include file",
             f"*Node, NSET=NALL\n*INCLUDE,INPUT={name}_nodes.inc"]  # fmt: skip
    lines.append(f"*ELEMENT,TYPE={element_type},ELSET=EALL")
    for e, c in zip(el_ids, node_ids[cells]):
        vals = [str(e)] + [str(v) for v in c]
        # at most 16 entries a line, continuation lines end with a comma
        rows = [vals[i : i + 16] for i in range(0, len(vals), 16)]
        lines += [",".join(r) + ("," if k < len(rows) - 1 else "") for k, r in enumerate(rows)]
    lines += ["*NSET,NSET=FIX"] + [",".join(str(v) for v in fix[i : i + 8]) for i in range(0, len(fix), 8)]
    lines += ["*nset,nset=Load"] + [",".join(str(v) for v in load[i : i + 8]) for i in range(0, len(load), 8)]
    lines += ["*ELSET,ELSET=EFIRST,GENERATE", f"{el_ids[0]},{el_ids[-1]},2", "*ELSET,ELSET=EBOTH", "EFIRST,"
              f"{el_ids[-1]}", "*SURFACE,NAME=SEND", "EFIRST,S2", f"{el_ids[-1]},S3"]  # fmt: skip
    lines += ["*MATERIAL,NAME=STEEL", "*ELASTIC", f"{YOUNG!r},{POISSON!r}", "*PLASTIC"]
    lines += [f"{s!r},{e!r}" for s, e in TABLE]
    lines += ["*CREEP,LAW=NORTON", ",".join(repr(v) for v in NORTON)]
    # x = 0 face: u_x = 0, rigid motions removed at two corner nodes (no clamped-corner singularity)
    origin = node_ids[np.flatnonzero(np.all(np.isclose(coords, 0.0), axis=1))[0]]
    top = node_ids[np.flatnonzero(np.all(np.isclose(coords, [0.0, 0.0, coords[:, 2].max()]), axis=1))[0]]
    lines += ["*SOLID SECTION,ELSET=EALL,MATERIAL=STEEL", "*BOUNDARY", "FIX,1,1", f"{origin},2,3",
              f"{top},2,2"]  # fmt: skip
    for amp, period, n_inc in segments:
        lines += ["*STEP,INC=1000", "*VISCO,DIRECT,CETOL=1e6", f"{period / n_inc!r},{period!r}",
                  "*BOUNDARY", f"LOAD,1,1,{amp!r}", f"LOAD,2,2,{amp / 10!r}", OUTPUT_CARDS[encoding], "U"]  # fmt: skip
        for what in el_print:
            lines += ["*EL PRINT,ELSET=EALL", what]
        lines.append("*END STEP")
    (directory / f"{name}.inp").write_text("\n".join(lines) + "\n")
    return {"coords": coords, "cells": cells, "node_ids": node_ids, "element_ids": el_ids,
            "fix": fix, "load": load}  # fmt: skip


def run_ccx(directory: Path, name: str = "run") -> None:
    """Run ccx with romdask.hifi.calculix.run_ccx (one thread; CalculixError on failure).

    The decks here are written by hand on purpose (include files, non-contiguous ids, an
    unused node, mixed-case keywords): they exercise the readers on decks romdask did not write.
    """
    from romdask.hifi.calculix import run_ccx as _run

    _run(Path(directory) / f"{name}.inp", threads=1, timeout=120)


#: output cards of the nodal stress decks: the last card fixes the format of the whole .frd
STRESS_CARDS = {"ascii": ("*NODE FILE", "*EL FILE"), "float64": ("*NODE OUTPUT,DOUBLE", "*ELEMENT OUTPUT,DOUBLE")}


def write_stress_deck(directory: Path, element_type: str, encoding: str = "float64", *, name: str = "run",
                      n=(3, 2, 2), seed: int = 0) -> None:
    """A distorted 2 x 1 x 1 box (interior nodes moved by up to 0.08), clamped at x = 0 and
    pulled and bent at the other end into plasticity in 8 increments: non-uniform stress and
    plastic strain. ``*EL PRINT`` S and PEEQ (integration points, .dat) and ``*NODE`` / ``*EL``
    file output of U, S, PEEQ (nodal, .frd) in ``encoding``; gapped node and element ids."""
    coords, cells = box_mesh(element_type, n)
    top = coords.max(axis=0)
    inner = np.all((coords > 1e-9) & (coords < top - 1e-9), axis=1)
    coords = coords + np.where(inner[:, None], np.random.default_rng(seed).uniform(-0.08, 0.08, coords.shape), 0.0)
    node_ids, el_ids = 1 + 3 * np.arange(len(coords)), 5 + 2 * np.arange(len(cells))
    lines = ["*HEADING", "romdask extrapolation check", "*NODE, NSET=NALL"]
    lines += [f"{i},{float(x)!r},{float(y)!r},{float(z)!r}" for i, (x, y, z) in zip(node_ids, coords)]
    lines.append(f"*ELEMENT,TYPE={element_type},ELSET=EALL")
    for e, c in zip(el_ids, node_ids[cells]):
        vals = [str(e)] + [str(v) for v in c]
        rows = [vals[i : i + 16] for i in range(0, len(vals), 16)]
        lines += [",".join(r) + ("," if k < len(rows) - 1 else "") for k, r in enumerate(rows)]
    for set_name, ids in (("FIX", node_ids[np.isclose(coords[:, 0], 0.0)]),
                          ("LOAD", node_ids[np.isclose(coords[:, 0], top[0])])):  # fmt: skip
        lines += [f"*NSET,NSET={set_name}"] + [",".join(map(str, ids[i : i + 8])) for i in range(0, len(ids), 8)]
    lines += ["*MATERIAL,NAME=STEEL", "*ELASTIC", f"{YOUNG!r},{POISSON!r}", "*PLASTIC"]
    lines += [f"{s!r},{e!r}" for s, e in TABLE]
    lines += ["*CREEP,LAW=NORTON", ",".join(repr(v) for v in NORTON), "*SOLID SECTION,ELSET=EALL,MATERIAL=STEEL",
              "*BOUNDARY", "FIX,1,3", "*STEP,INC=1000", "*VISCO,DIRECT,CETOL=1e6", "0.125,1.0",
              "*BOUNDARY", "LOAD,1,1,0.0025", "LOAD,2,2,0.001"]  # fmt: skip
    node_card, element_card = STRESS_CARDS[encoding]
    lines += [node_card, "U", element_card, "S,PEEQ", "*EL PRINT,ELSET=EALL", "S", "*EL PRINT,ELSET=EALL", "PEEQ",
              "*END STEP"]  # fmt: skip
    (Path(directory) / f"{name}.inp").write_text("\n".join(lines) + "\n")


def mixed_mesh():
    """A romdask Mesh of one block per element type side by side (boxes of one element or 6
    tetrahedra), gapped ids (nodes 7, 10, 13, ..., elements from 1000 by 5), an unused node,
    blocks not in id order."""
    from romdask.fem.mesh import CellBlock, Mesh

    nodes, blocks, n = [], [], 0
    for k, t in enumerate(("C3D4", "C3D10", "C3D8", "C3D20R", "C3D20")):
        x, cells = box_mesh(t, (1, 1, 1))
        nodes.append(x + [3.0 * k, 0.5 * k, 0.0])
        blocks.append((t, cells + n))
        n += len(x)
    nodes.append([[50.0, 50.0, 50.0]])  # used by no element
    nodes = np.vstack(nodes) * 1.7 + 0.123
    node_ids = 7 + 3 * np.arange(len(nodes))
    sizes = np.array([len(c) for _, c in blocks])
    first = 1000 + 5 * (sizes.sum() - np.cumsum(sizes))  # the last block gets the lowest ids
    cell_blocks = [CellBlock(t, c, ids=first[i] + 5 * np.arange(len(c))) for i, (t, c) in enumerate(blocks)]
    return Mesh(nodes, tuple(cell_blocks), node_ids=node_ids)
