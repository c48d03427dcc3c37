"""Thermomechanical CalculiX decks of the spinning blade, written the way a user writes them
(imported by tests/test_thermal_cli.py and the benchmark ``thermal``).

The part (``blade.inp``, included by every deck): the quarter blade of
:func:`romdask.problems.thermal.blade_mesh` (C3D8 or C3D10), node sets ROOT, YSYM, ZSYM and
one node set per chord row (ROW00, ROW01, ...), element set BLADE. Each deck: the temperature-
dependent law (``*ELASTIC``, ``*PLASTIC``, ``*CREEP,LAW=NORTON``, ``*EXPANSION,ZERO=0`` with
temperature columns, :data:`romdask.problems.thermal.MATERIAL_TABLES`), ``*DENSITY``,
``*INITIAL CONDITIONS,TYPE=TEMPERATURE`` (0), one ``*AMPLITUDE`` per chord row and one for the
spin, one ``*STEP`` (``*VISCO,DIRECT``, fixed increments) per segment of the flight cycle with
``*DLOAD`` ``BLADE,CENTRIF,omega^2,...`` and ``*TEMPERATURE,AMPLITUDE=ROWkk`` (node, T at the
hold), U and NT to the .frd, S and PEEQ to the .dat.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from romdask.materials import LinearElastic
from romdask.problems.thermal import (
    BLADE,
    MATERIAL_TABLES,
    flight_cycle,
    thermal_problem,
)

PERIOD = 100.0
INCREMENTS_PER_CYCLE = 40


def _num(x: float) -> str:
    return f"{float(x):.10g}"


def _ids(values) -> list[str]:
    v = [str(int(i)) for i in values]
    rows = [", ".join(v[i:i + 16]) for i in range(0, len(v), 16)]
    return [r + "," for r in rows[:-1]] + rows[-1:]


def _amplitude(name: str, table) -> list[str]:
    pairs = [f"{_num(t)}, {_num(v)}" for t, v in zip(table.times, table.values)]
    rows = [", ".join(pairs[i:i + 4]) for i in range(0, len(pairs), 4)]
    return [f"*AMPLITUDE, NAME={name}, TIME=TOTAL TIME"] + [r + "," for r in rows[:-1]] + rows[-1:]


def part_lines(size: int, element: str = "C3D8") -> list[str]:
    """``blade.inp``: nodes, elements, sets (solver ids 1..n)."""
    problem = thermal_problem(size, element=element, material=_ANY_LAW)
    mesh = problem.mesh
    lines = [f"** quarter blade, {element}, {mesh.n_nodes} nodes", "*NODE, NSET=NALL"]
    lines += [f"{i + 1}, {x:.12g}, {y:.12g}, {z:.12g}" for i, (x, y, z) in enumerate(mesh.nodes)]
    lines.append(f"*ELEMENT, TYPE={element}, ELSET=BLADE")
    lines += [", ".join(str(v) for v in (e + 1, *(c + 1))) for e, c in enumerate(mesh.blocks[0].connectivity)]
    for name in ("root", "ysym", "zsym"):
        lines += [f"*NSET, NSET={name.upper()}", *_ids(np.sort(mesh.node_sets[name]) + 1)]
    for pattern in problem.temperatures:
        lines += [f"*NSET, NSET={pattern.name.replace('_', '').upper()}", *_ids(pattern.nodes + 1)]
    return lines


def deck_lines(size: int, peak_temperature: float, omega: float, cycles: int, title: str,
               element: str = "C3D8", solver: str | None = None) -> list[str]:
    """A deck: the part included, the law, the flight cycles as amplitudes, one step per segment
    (``solver``: the ``*VISCO`` card's SOLVER=, default SPOOLES)."""
    problem = thermal_problem(size, cycles, peak_temperature, omega, period=PERIOD,
                              increments_per_cycle=INCREMENTS_PER_CYCLE, element=element, material=_ANY_LAW)
    t = MATERIAL_TABLES
    lines = [
        "*HEADING", title, "*INCLUDE, INPUT=blade.inp",
        "** nickel-superalloy-like law, temperature dependent (MPa, s, degrees C)",
        "*MATERIAL, NAME=ALLOY",
        "*ELASTIC", *[", ".join(_num(v) for v in row) for row in t["elastic"]],
        "*PLASTIC", *[", ".join(_num(v) for v in row) for row in t["plastic"]],
        "*CREEP, LAW=NORTON", *[", ".join(_num(v) for v in row) for row in t["norton"]],
        "*EXPANSION, ZERO=0", *[", ".join(_num(v) for v in row) for row in t["expansion"]],
        "*DENSITY", _num(BLADE["density"]),
        "*SOLID SECTION, ELSET=BLADE, MATERIAL=ALLOY",
        "*INITIAL CONDITIONS, TYPE=TEMPERATURE", "NALL, 0.",
        "** the blade rests on its root; symmetry of the chord and of the section",
        "*BOUNDARY", "ROOT, 1, 1", "YSYM, 2, 2", "ZSYM, 3, 3",
    ]
    amplitudes = flight_cycle(PERIOD, cycles)
    lines += _amplitude("SPIN", amplitudes["spin"])
    for pattern in problem.temperatures:
        lines += _amplitude(pattern.name.replace("_", "").upper(), pattern.amplitude)
    temperature = ["*TEMPERATURE, AMPLITUDE=" + p.name.replace("_", "").upper() for p in problem.temperatures]
    cards = []
    for p, card in zip(problem.temperatures, temperature):
        cards += [card] + [f"{i + 1}, {_num(v)}" for i, v in zip(p.nodes, p.values)]
    breakpoints = amplitudes["spin"].times
    dt = PERIOD / INCREMENTS_PER_CYCLE
    for t0, t1 in itertools.pairwise(breakpoints):
        lines += [
            f"** flight segment t = {t0:g} .. {t1:g} s",
            "*STEP, INC=1000", "*VISCO, DIRECT, CETOL=1.E6" + (f", SOLVER={solver}" if solver else ""),
            f"{dt:g}, {t1 - t0:g}",
            "*DLOAD, AMPLITUDE=SPIN", f"BLADE, CENTRIF, {_num(omega ** 2)}, 0., 0., 0., 0., 1., 0.",
            *cards,
            "*NODE FILE", "U, NT",
            "*EL PRINT, ELSET=BLADE", "S, PEEQ",
            "*END STEP",
        ]
    return lines


def write_blade(folder: str | Path, cases: dict[str, tuple[float, float, int]], size: int = 6,
                element: str = "C3D8", solver: str | None = None) -> dict[str, Path]:
    """``blade.inp`` and one deck per case ``name -> (peak temperature, omega, cycles)``
    (``size``: :func:`romdask.problems.thermal.blade_mesh`'s n, 6: 525 nodes, 19: 10,780)."""
    if "blade" in cases:
        raise ValueError("a case named 'blade' would overwrite the part blade.inp that every deck includes")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blade.inp").write_text("\n".join(part_lines(size, element)) + "\n")
    decks = {}
    for name, (peak, omega, cycles) in cases.items():
        title = f"spinning blade, peak {peak:g} C, omega {omega:g} rad/s, {cycles} flight cycle(s) of {PERIOD:g} s"
        decks[name] = folder / f"{name}.inp"
        decks[name].write_text("\n".join(deck_lines(size, peak, omega, cycles, title, element, solver)) + "\n")
    return decks


# the decks write the law's cards themselves: the generator gets any law
_ANY_LAW = LinearElastic(200000.0, 0.3)

#: the cases of the end-to-end test: two training flights of two cycles each (peak temperature,
#: rotation speed), a new flight between them over three cycles
CASES = {"train-925": (925.0, 1350.0, 2), "train-975": (975.0, 1450.0, 2), "new-950": (950.0, 1400.0, 3)}
