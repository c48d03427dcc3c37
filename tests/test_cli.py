import meshio
import numpy as np

from romdask.cli import main


def test_demo_solves_the_plate_and_writes_fields(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--nodes", "200", "--cycles", "0.5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "quarter plate with a hole" in text and "20 / " in text  # 20 increments for half a cycle
    pvd = (out / "plate.pvd").read_text()
    assert pvd.count("<DataSet") == 21
    last = meshio.read(out / "plate_0020.vtu")
    u = last.point_data["displacement"]
    top = last.point_data["nset:top"].astype(bool)
    # half a fully reversed cycle ends at zero prescribed displacement on top
    np.testing.assert_allclose(u[top, 1], 0.0, atol=1e-15)
    peak = meshio.read(out / "plate_0010.vtu")
    np.testing.assert_allclose(peak.point_data["displacement"][top, 1], 0.006, rtol=1e-12)
    # the default amplitude plastifies a zone at the hole: residual plastic strain remains
    p = np.concatenate(last.cell_data["p"])
    assert 0 < np.count_nonzero(p) < len(p)
    assert np.concatenate(peak.cell_data["von_mises"]).max() > 200.0  # above initial yield
