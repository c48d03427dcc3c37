"""Small CalculiX decks with temperatures, shared by the io tests (hard-coded ccx results) and the
hifi tests (the same decks run by ccx)."""

# one unit cube, C3D8, node ids with gaps; sets A (2 nodes) and B (2 nodes) with gapped ids
CUBE = """*NODE, NSET=NALL
1, 0, 0, 0
12, 1, 0, 0
23, 1, 1, 0
34, 0, 1, 0
45, 0, 0, 1
56, 1, 0, 1
67, 1, 1, 1
78, 0, 1, 1
*ELEMENT, TYPE=C3D8, ELSET=EALL
5, 1, 12, 23, 34, 45, 56, 67, 78
*NSET, NSET=A
1, 12
*NSET, NSET=B
23, 34
"""
MATERIAL = """*MATERIAL, NAME=M
*ELASTIC
200000., 0.3
*PLASTIC
1000., 0.
*CREEP, LAW=NORTON
1e-30, 2., 0.
*EXPANSION
1e-5
*SOLID SECTION, ELSET=EALL, MATERIAL=M
*BOUNDARY
1, 1, 3
12, 2, 3
34, 1, 1
34, 3, 3
45, 1, 2
"""
VISCO = "*VISCO, DIRECT, CETOL=1e6"
# six steps: no amplitude (A), nothing, step-time amplitude (B), no amplitude (A) -- B keeps its
# step-time amplitude --, total-time amplitude (node 45), nothing
RULES = """*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*AMPLITUDE, NAME=UP
0., 0., 1., 1.
*AMPLITUDE, NAME=TOT, TIME=TOTAL TIME
0., 0., 10., 10.
*STEP
{proc}
0.25, 1.
*TEMPERATURE
A, 120.
*END STEP
*STEP
{proc}
0.5, 1.
*END STEP
*STEP
{proc}
0.25, 1.
*TEMPERATURE, AMPLITUDE=UP
B, 100.
*END STEP
*STEP
{proc}
0.5, 1.
*TEMPERATURE
A, 50.
*END STEP
*STEP
{proc}
0.5, 1.
*TEMPERATURE, AMPLITUDE=TOT
45, 10.
*END STEP
*STEP
{proc}
0.5, 1.
*END STEP
"""
TIMES = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]
# ccx 2.20's NT of nodes (A, B, 45), *VISCO: a card without amplitude applies at once
NT_VISCO = [(120, 20, 20)] * 6 + [(120, 25, 20), (120, 50, 20), (120, 75, 20), (120, 100, 20), (50, 50, 20),
                                  (50, 100, 20), (50, 50, 45), (50, 100, 50), (50, 50, 55), (50, 100, 60)]
# *STATIC (and *VISCO with *STEP,AMPLITUDE=RAMP): ramped over the step from the value at its start
NT_STATIC = [(45, 20, 20), (70, 20, 20), (95, 20, 20), (120, 20, 20)] + NT_VISCO[4:10] + [(85, 50, 20)] + NT_VISCO[11:]


FILE_STEPS = """*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*STEP
{proc}
0.5, 1.
*TEMPERATURE, FILE=heat.frd, BSTEP=2
*END STEP
*STEP
{proc}
0.5, 1.
*END STEP
*STEP
{proc}
0.5, 1.
*TEMPERATURE, FILE=heat.frd
*END STEP
"""


# body loads step after step: a gravity under a step-time amplitude (its value reached is kept in
# the next steps), a centrifugal load without amplitude (at once in *VISCO, ramped in *STATIC)
# replaced in step 3; a stiff, barely nonlinear law so that ccx takes every increment
BODY_RULES = """*NODE, NSET=NALL
1, 0, 0, 0
2, 10, 0, 0
3, 10, 10, 0
4, 0, 10, 0
5, 0, 0, 10
6, 10, 0, 10
7, 10, 10, 10
8, 0, 10, 10
9, 20, 0, 0
10, 20, 10, 0
11, 20, 0, 10
12, 20, 10, 10
*ELEMENT, TYPE=C3D8, ELSET=EALL
1, 1, 2, 3, 4, 5, 6, 7, 8
2, 2, 9, 10, 3, 6, 11, 12, 7
*NSET, NSET=LEFT
1, 4, 5, 8
*ELSET, ELSET=E2
2
*MATERIAL, NAME=M
*ELASTIC
200000., 0.3
*PLASTIC
1e5, 0.
*CREEP, LAW=NORTON
1e-30, 2., 0.
*DENSITY
7.8e-9
*SOLID SECTION, ELSET=EALL, MATERIAL=M
*AMPLITUDE, NAME=UP
0., 0., 1., 1.
*BOUNDARY
LEFT, 1, 3
*STEP
{proc}
0.25, 1.
*DLOAD, AMPLITUDE=UP
EALL, GRAV, 1e6, 0., -1., 0.
*DLOAD
E2, CENTRIF, 1e8, 0., 0., 0., 0., 0., 1.
*CONTROLS, PARAMETERS=FIELD
1e-9, 1e-9, , , 1e-9, 1e-9
*NODE OUTPUT, DOUBLE
U
*END STEP
*STEP
{proc}
0.5, 1.
*END STEP
*STEP
{proc}
0.5, 1.
*DLOAD
E2, CENTRIF, 3e8, 0., 0., 0., 0., 0., 1.
*END STEP
"""

# the cube and its supports numbered 1..8 (ccx's reset below hits node NUMBER 2 or 5)
def _renumbered(text: str) -> str:
    for old, new in (("12", "2"), ("23", "3"), ("34", "4"), ("45", "5"), ("56", "6"), ("67", "7"), ("78", "8")):
        text = text.replace(f"\n{old},", f"\n{new},").replace(f", {old}", f", {new}")
    return text.replace("\n5, 1, 2, 3, 4, 5, 6, 7, 8", "\n1, 1, 2, 3, 4, 5, 6, 7, 8")


CUBE_1_8 = _renumbered(CUBE)
MATERIAL_1_8 = _renumbered(MATERIAL).replace("*SOLID", "*DENSITY\n7.8e-9\n*SOLID")

# FILE= keeps a node's amplitude (ccx sets only the values), and ccx 2.20 drops step-time
# temperature amplitudes at the end of a step for ONE node only: number 3 nbody + 2 (node 2
# without body loads, node 5 with one) -- CalculiX.c's reset lacks its loop over the nodes.
FILE_AMPLITUDES = """*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*AMPLITUDE, NAME=UP
0., 0., 1., 1.
*STEP, AMPLITUDE=RAMP
{proc}
0.25, 1.
{body}*TEMPERATURE, FILE=heat.frd, BSTEP=1
*END STEP
*STEP
{proc}
0.25, 1.
*TEMPERATURE, AMPLITUDE=UP
NALL, 50.
*END STEP
*STEP
{proc}
0.5, 1.
*TEMPERATURE, FILE=heat.frd, BSTEP=2
*END STEP
*STEP, AMPLITUDE=RAMP
{proc}
0.5, 1.
*TEMPERATURE
B, 70.
*END STEP
*STEP
{proc}
0.5, 1.
*TEMPERATURE, FILE=heat.frd, BSTEP=1
*END STEP
"""
