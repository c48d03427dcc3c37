"""A user's own CalculiX decks, written the way users write them (imported by the tests and used to
generate examples/calculix-part/).

A holed strip (one eighth, C3D10) meshed by romdask's specimen generator, then numbered the way
gmsh numbers a second-order mesh: node ids shuffled with gaps and the midside nodes numbered
before the corners, element ids shuffled with gaps. The mesh lives in ``part.inp`` (included by
every deck); the load is a traction on the named element-face surface ``LOAD`` (``*DLOAD`` with
label ``P``), cyclic through one ``*AMPLITUDE``; CalculiX's viscoplastic law (``*PLASTIC`` +
``*CREEP,LAW=NORTON`` in ``*VISCO`` steps), one step per monotonic load segment (CalculiX's
Newton extrapolates across a reversal inside a step), fixed increments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from romdask.fem.elements import get_element
from romdask.problems.specimen import specimen_mesh

#: elements along each half of the quarter arc: 715 nodes, 360 C3D10
MESH_N = 3
PERIOD = 10.0
INCREMENTS_PER_CYCLE = 40
PLASTIC = ((200.0, 0.0), (300.0, 0.01), (400.0, 0.1))
NORTON = (1.0e-9, 3.0, 0.0)


def _rows(items: list[str], per_line: int) -> list[str]:
    """Data lines of at most ``per_line`` entries; all but the last end with a comma (a
    continuation as CalculiX reads it)."""
    rows = [items[i:i + per_line] for i in range(0, len(items), per_line)]
    return [", ".join(r) + ("," if k < len(rows) - 1 else "") for k, r in enumerate(rows)]


def gmsh_numbering(seed: int = 7):
    """The specimen mesh and its gmsh-like solver ids: (mesh, node_ids, element_ids)."""
    mesh = specimen_mesh(n=MESH_N)
    rng = np.random.default_rng(seed)
    conn = mesh.blocks[0].connectivity
    corners = np.unique(conn[:, :4])
    midside = np.setdiff1d(np.arange(mesh.n_nodes), corners)
    order = np.concatenate([rng.permutation(midside), rng.permutation(corners)])  # midside first
    ids = np.cumsum(rng.integers(1, 4, size=mesh.n_nodes)) + 100  # increasing with gaps
    node_ids = np.empty(mesh.n_nodes, np.int64)
    node_ids[order] = ids
    element_ids = rng.permutation(np.cumsum(rng.integers(1, 3, size=mesh.n_elements)) + 5000)
    return mesh, node_ids, element_ids


def part_lines(seed: int = 7) -> list[str]:
    """``part.inp``: nodes, elements, node sets and the loaded surface, in gmsh-like numbering."""
    mesh, node_ids, element_ids = gmsh_numbering(seed)
    by_id = np.argsort(node_ids)
    lines = ["** holed strip, one eighth, C3D10 (gmsh-like numbering)", "*NODE, NSET=NALL"]
    lines += [f"{node_ids[i]}, {x:.12g}, {y:.12g}, {z:.12g}" for i in by_id for x, y, z in [mesh.nodes[i]]]
    lines.append("*ELEMENT, TYPE=C3D10, ELSET=PART")
    block = mesh.blocks[0]
    for e in np.argsort(element_ids):
        lines.append(", ".join(str(v) for v in (element_ids[e], *node_ids[block.connectivity[e]])))
    for name in ("xsym", "ysym", "zsym"):
        lines.append(f"*NSET, NSET={name.upper()}")
        lines += _rows([str(v) for v in np.sort(node_ids[mesh.node_sets[name]])], 16)
    n_faces = len(get_element("C3D10").faces)
    faces = mesh.surfaces["top"]
    assert faces[:, 1].max() < n_faces
    lines.append("*SURFACE, NAME=LOAD, TYPE=ELEMENT")
    lines += [f"{element_ids[e]}, S{f + 1}" for e, f in faces]
    return lines


def amplitude_lines(cycles: float) -> list[str]:
    """A fully reversed triangle wave 0 -> 1 -> -1 -> 0 per cycle (total time)."""
    times, values = [0.0], [0.0]
    for c in range(int(np.ceil(cycles))):
        for frac, v in ((0.25, 1.0), (0.75, -1.0), (1.0, 0.0)):
            if c + frac <= cycles + 1e-12:
                times.append((c + frac) * PERIOD)
                values.append(v)
    pairs = [f"{t:g}, {v:g}" for t, v in zip(times, values)]
    return ["*AMPLITUDE, NAME=CYCLE, TIME=TOTAL TIME", *_rows(pairs, 4)], times


def deck_lines(traction: float, cycles: float, title: str) -> list[str]:
    """A deck: the part included, the material, symmetry, the cyclic traction on LOAD."""
    amp, breakpoints = amplitude_lines(cycles)
    lines = [
        "*HEADING", title,
        "*INCLUDE, INPUT=part.inp",
        "** material: CalculiX's elastoviscoplastic law (MPa, mm, s)",
        "*Material, Name=STEEL", "*Elastic", "210000., 0.3", "*Plastic",
        *[f"{s:g}., {e:g}" for s, e in PLASTIC],
        "*Creep, Law=Norton", ", ".join(f"{v:g}" for v in NORTON),
        "*SOLID SECTION, ELSET=PART, MATERIAL=STEEL",
        "** symmetry planes",
        "*BOUNDARY", "XSYM, 1, 1", "YSYM, 2, 2", "ZSYM, 3, 3",
        *amp,
    ]
    dt = PERIOD / INCREMENTS_PER_CYCLE
    for t0, t1 in zip(breakpoints[:-1], breakpoints[1:]):
        lines += [
            f"** load segment t = {t0:g} .. {t1:g}",
            "*STEP, INC=1000", "*VISCO, DIRECT, CETOL=1.E6", f"{dt:g}, {t1 - t0:g}",
            "*DLOAD, AMPLITUDE=CYCLE", f"LOAD, P, {-traction:g}",
            "*NODE FILE", "U",
            "*EL PRINT, ELSET=PART", "S, PEEQ",
            "*END STEP",
        ]
    return lines


def write_part(folder: str | Path, cases: dict[str, tuple[float, float]], seed: int = 7) -> dict[str, Path]:
    """``part.inp`` and one deck per case ``name -> (traction [MPa], cycles)`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part.inp").write_text("\n".join(part_lines(seed)) + "\n")
    decks = {}
    for name, (traction, cycles) in cases.items():
        title = f"holed strip, traction {traction:g} MPa, {cycles:g} cycle(s) of {PERIOD:g} s"
        decks[name] = folder / f"{name}.inp"
        decks[name].write_text("\n".join(deck_lines(traction, cycles, title)) + "\n")
    return decks


#: the cases of examples/calculix-part/ and of the end-to-end test
CASES = {"train-90": (90.0, 1.0), "train-130": (130.0, 1.0), "new-110": (110.0, 3.0)}
