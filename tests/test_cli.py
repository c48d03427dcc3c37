"""`romdask demo`: the whole pipeline (train, reduce on a LocalCluster, predict, compare) on a small plate."""

import re

import meshio
import numpy as np

from romdask.cli import main


def test_demo_runs_the_pipeline_and_writes_plots_and_fields(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--nodes", "300", "--cycles", "2", "--workers", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "quarter plate with a hole" in text
    for label in ("HF time", "online time", "speedup", "error displacement", "error von Mises",
                  "error plastic strain", "max error indicator"):
        assert label in text, label
    error = float(re.search(r"error displacement \(L2 time-space\)\s+(\S+)", text).group(1))
    assert 0 < error < 1e-2  # an unseen amplitude in the trained range, cyclic extrapolation to 2 cycles
    for png in ("singular_values", "reduced_points", "error_indicator", "force_displacement"):
        assert (out / f"{png}.png").stat().st_size > 1000, png
    pvd = (out / "rom.pvd").read_text()
    assert pvd.count("<DataSet") == 81  # 2 cycles x 40 increments + t = 0
    peak = meshio.read(out / "rom_0010.vtu")  # first peak of the prescribed displacement
    top = peak.point_data["nset:top"].astype(bool)
    np.testing.assert_allclose(peak.point_data["displacement_hf"][top, 1], 0.006, rtol=1e-12)
    np.testing.assert_allclose(peak.point_data["displacement_rom"][top, 1], 0.006, rtol=1e-12)  # the lifting
    assert np.concatenate(peak.cell_data["von_mises_hf"]).max() > 200.0  # above initial yield
