"""Temperature columns of CalculiX's material cards: read into laws (io.calculix.laws), written
back (hifi.calculix.deck._material_lines), densities, and errors naming the file and line."""

import numpy as np
import pytest

from romdask.hifi.calculix.deck import _material_lines
from romdask.io.calculix.cards import deck_cards
from romdask.io.calculix.laws import deck_laws, material_density
from romdask.io.run import ReaderError
from romdask.materials import CalculixViscoplastic, LinearElastic

THERMAL = """*MATERIAL, NAME=HOT
*DENSITY
7.8e-9
*ELASTIC
200000., 0.3, 20.
180000., 0.31, 220.
*PLASTIC, HARDENING=KINEMATIC
200., 0., 20.
300., 0.01, 20.
150., 0., 220.
200., 0.02, 220.
*CREEP, LAW=NORTON
1e-9, 3., 0.2, 20.
4e-9, 2.5, 0.1, 420.
*EXPANSION, ZERO=10.
1.2e-5, 20.
1.5e-5, 420.
*MATERIAL, NAME=COLD
*ELASTIC
210000., 0.29
*EXPANSION
1.1e-5
*MATERIAL, NAME=PLAIN
*ELASTIC
210000., 0.29, 100.
*PLASTIC
250., 0., 100.
300., 0.1, 100.
"""


def _cards(tmp_path, text):
    path = tmp_path / "m.inp"
    path.write_text(text)
    return deck_cards(path)


def test_read_temperature_tables(tmp_path):
    laws = deck_laws(_cards(tmp_path, THERMAL), visco=True)
    hot = laws["HOT"]
    assert hot == CalculixViscoplastic(
        elastic=[(200000.0, 0.3, 20.0), (180000.0, 0.31, 220.0)], hardening="kinematic",
        plastic=[(200.0, 0.0, 20.0), (300.0, 0.01, 20.0), (150.0, 0.0, 220.0), (200.0, 0.02, 220.0)],
        norton=[(1e-9, 3.0, 0.2, 20.0), (4e-9, 2.5, 0.1, 420.0)], expansion=[(1.2e-5, 20.0), (1.5e-5, 420.0)],
        expansion_zero=10.0,
    )  # fmt: skip
    assert hot.thermal
    assert laws["COLD"] == LinearElastic(210000.0, 0.29, expansion=[(1.1e-5, 0.0)]) and laws["COLD"].thermal
    # one temperature only: temperature independent
    assert laws["PLAIN"] == CalculixViscoplastic(210000.0, 0.29, [(250.0, 0.0), (300.0, 0.1)])
    assert not laws["PLAIN"].thermal
    assert material_density(_cards(tmp_path, THERMAL)) == {"HOT": 7.8e-9, "COLD": None, "PLAIN": None}


def test_creep_rows_with_one_elastic_row_are_taken_at_its_temperature(tmp_path):
    text = "*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3,120.\n*PLASTIC\n200.,0.\n*CREEP\n1e-9,3.,0.,20.\n3e-9,5.,1.,220.\n"
    law = deck_laws(_cards(tmp_path, text), visco=True)["A"]
    assert np.allclose(law.norton, (2e-9, 4.0, 0.5), rtol=1e-15) and not law.thermal


@pytest.mark.parametrize("law", [
    CalculixViscoplastic(elastic=[(200000.0, 0.3, 20.0), (180000.0, 0.31, 220.0)], hardening="combined",
                         plastic=[(200.0, 0.0, 20.0), (300.0, 0.01, 20.0), (150.0, 0.0, 220.0)],
                         cyclic_hardening=[(200.0, 0.0, 20.0), (250.0, 0.02, 20.0), (100.0, 0.0, 300.0)],
                         norton=[(1e-9, 3.0, 0.2, 20.0), (4e-9, 2.5, 0.1, 420.0)], expansion=1.3e-5,
                         expansion_zero=-5.0),
    CalculixViscoplastic(elastic=[(200000.0, 0.3, 20.0), (180000.0, 0.31, 220.0)], norton=(1e-9, 3.0, 0.0)),
    LinearElastic(elastic=[(200000.0, 0.3, 20.0), (180000.0, 0.31, 220.0)], expansion=[(1e-5, 0.0), (2e-5, 100.0)]),
    CalculixViscoplastic(2e5, 0.3, [(200.0, 0.0), (300.0, 0.1)], norton=(1e-9, 3.0, 0.0)),
])  # fmt: skip
def test_write_then_read_gives_the_law_back(tmp_path, law):
    lines = _material_lines(law, "M1", "test")
    assert any("*EXPANSION" in line for line in lines) == (law.expansion is not None)
    back = deck_laws(_cards(tmp_path, "\n".join(lines) + "\n"), visco=True)["M1"]
    assert back == law and np.array_equal(back.params, law.params)


@pytest.mark.parametrize("text, match", [
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3,220.\n1e5,0.3,20.\n", r"m.inp: line 4: .*temperature 20 after 220"),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*PLASTIC\n200.,0.,20.\n210.,0.1,20.\n100.,0.,10.\n",
     r"line 7: .*\*PLASTIC: temperature 10 after 20"),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*PLASTIC\n200.,0.,20.\n210.,0.1,220.\n220.,0.2,20.\n",
     r"line 7: .*temperature 20 after 220"),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*PLASTIC\n200.,0.,20.\n210.,0.1,20.\n100.,0.,220.\n110.,0.,220.\n",
     r"line 8: .*plastic strain 0 after 0 at temperature 220"),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*EXPANSION,TYPE=ORTHO\n1e-5,1e-5,1e-5\n", r"line 4: .*TYPE=ISO"),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*EXPANSION,ZERO=abc\n1e-5\n", r"line 4: cannot read \*EXPANSION ZERO="),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*EXPANSION\n1e-5,300.\n2e-5,x\n", r"line 6: cannot read temperature 'x'"),
    ("*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*PLASTIC\n200.,0.,20.\n210.,0.01,20.\n100.,0.02,220.\n110.,0.03,220.\n",
     r"line 1: material A: .*disjoint"),
])  # fmt: skip
def test_malformed_tables_name_file_and_line(tmp_path, text, match):
    with pytest.raises(ReaderError, match=match):
        deck_laws(_cards(tmp_path, text), visco=True)


def test_temperature_dependent_density_is_refused(tmp_path):
    text = "*MATERIAL,NAME=A\n*ELASTIC\n2e5,0.3\n*DENSITY\n7.8e-9,20.\n7.7e-9,220.\n"
    with pytest.raises(ReaderError, match=r"m.inp: line 6: material A: temperature-dependent \*DENSITY"):
        material_density(_cards(tmp_path, text))
