"""`romdask demo --problem thermal`: the whole pipeline on the smallest spinning blade (255 nodes).

Slow (about a minute on 2 cores: a LocalCluster, three built-in flights of two cycles each); CI
runs it in its second stage (``-m slow``). The pipeline itself is also checked, faster, by
notebooks/03_thermomechanics.ipynb (tests/test_notebook.py).
"""

import json
import re

import meshio
import numpy as np
import pytest

from romdask.online import OnlineOptions

from romdask.cli import main

pytestmark = pytest.mark.slow


def test_thermal_demo_runs_the_pipeline_and_writes_plots_and_fields(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--problem", "thermal", "--nodes", "255", "--cycles", "2", "--workers", "1",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "spinning blade" in text and "255 nodes" in text
    planned = float(re.search(r"will write about (\S+) MB into", text).group(1))
    written = float(re.search(r"wrote (\S+) MB into", text).group(1))
    assert 0.5 < planned / written < 2
    for label in ("HF time", "online time", "speedup", "error displacement", "error von Mises",
                  "error plastic strain", "max error indicator"):
        assert label in text, label
    summary = json.loads((out / "summary.json").read_text())
    # the targets (displacement 1e-3, von Mises 1 %, p 2 % of the max) on an unseen flight
    # between the two training ones, extrapolated to two cycles
    assert summary["max_p"] > 5e-4 and summary["plastified"] > 0.02  # the flight plastifies
    assert 0 < summary["error_displacement"] < 1e-3
    assert summary["error_von_mises"] < 0.01 and summary["error_p"] < 0.02
    assert summary["max_temperature"] == pytest.approx(950.0)
    error = float(re.search(r"error displacement \(L2 time-space\)\s+(\S+)", text).group(1))
    assert summary["error_displacement"] == pytest.approx(error, rel=1e-2)
    for png in ("singular_values", "reduced_points", "error_indicator", "temperature", "plastic_strain"):
        assert (out / f"{png}.png").stat().st_size > 1000, png
        assert f"{png}.png" in summary["files"] and summary["output_bytes"][f"{png}.png"] > 1000, png
    assert summary["indicator_threshold"] == OnlineOptions().indicator_threshold and summary["units"]["time"] == "s"
    pvd = (out / "rom.pvd").read_text()
    assert pvd.count("<DataSet") == 81  # 2 cycles x 40 increments + t = 0
    hold = meshio.read(out / "rom_0016.vtu")  # t = 40 s: the hold
    temperature = hold.point_data["temperature"]
    assert temperature.max() == pytest.approx(950.0) and temperature.min() == pytest.approx(0.0)
    x = hold.points
    np.testing.assert_allclose(temperature[np.isclose(x[:, 0], 240.0)], 0.0)  # the root stays cold
