"""`romdask demo`: the whole pipeline (train, reduce on a LocalCluster, predict, compare) on a small plate."""

import json
import re

import meshio
import numpy as np
import pytest

from romdask.cli import main


def test_demo_runs_the_pipeline_and_writes_plots_and_fields(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--nodes", "300", "--cycles", "2", "--workers", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "quarter plate with a hole" in text
    # what it will write, said first, and what it wrote, per output, at the end
    planned = float(re.search(r"will write about (\S+) MB into", text).group(1))
    written = float(re.search(r"wrote (\S+) MB into", text).group(1))
    assert 0.7 < planned / written < 1.3  # measured (2026-12): 21.5 MB planned, 22 MB written
    for name in ("store.zarr", "model.zarr", "rom.pvd + 81 .vtu", "hysteresis.png"):
        assert re.search(rf"^  {re.escape(name)} +[\d.,]+ [kM]B$", text, re.MULTILINE), name
    assert f"summary: {out / 'summary.json'}" in text
    for label in ("HF time", "online time", "speedup", "error displacement", "error von Mises",
                  "error plastic strain", "max error indicator"):
        assert label in text, label
    # an unseen amplitude in the trained range, cyclic extrapolation to 2 cycles; measured on this case
    # (2026-12): displacement 1.09e-4, von Mises 0.35 % (law replay) / 0.60 % (Gappy-POD)
    error = float(re.search(r"error displacement \(L2 time-space\)\s+(\S+)", text).group(1))
    assert 0 < error < 3e-4
    replay, gappy = map(float, re.search(r"error von Mises \(max, of max\)\s+(\S+) % law replay.*?, (\S+) % Gappy",
                                          text).groups())
    assert replay < 0.7 and gappy < 1.2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error_displacement"] == pytest.approx(error, rel=1e-2)
    assert summary["output_bytes"]["store.zarr"] > 1e6 and "hysteresis.png" in summary["files"]
    # the loops at the most loaded point (tests/test_demo_plots.py checks them in detail)
    assert re.search(r"most loaded point +\(.*\) mm, stress component yy", text)
    hf, rom = map(float, re.search(r"loop width \(plastic strain range\) +(\S+) HF, (\S+) ROM", text).groups())
    assert hf > 3e-4 and rom == pytest.approx(hf, rel=0.02)
    for png in ("singular_values", "reduced_points", "error_indicator", "hysteresis", "force_displacement"):
        assert (out / f"{png}.png").stat().st_size > 1000, png
    pvd = (out / "rom.pvd").read_text()
    assert pvd.count("<DataSet") == 81  # 2 cycles x 40 increments + t = 0
    peak = meshio.read(out / "rom_0010.vtu")  # first peak of the prescribed displacement
    top = peak.point_data["nset:top"].astype(bool)
    np.testing.assert_allclose(peak.point_data["displacement_hf"][top, 1], 0.006, rtol=1e-12)
    np.testing.assert_allclose(peak.point_data["displacement_rom"][top, 1], 0.006, rtol=1e-12)  # the lifting
    assert np.concatenate(peak.cell_data["von_mises_hf"]).max() > 200.0  # above initial yield
