"""notebooks/01_quickstart.ipynb runs top to bottom (on a small plate) and reaches its figures."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert re.search(r"^NODES = \d+", first.source, re.M)
    first.source = re.sub(r"^NODES = \d+", "NODES = 300", first.source, flags=re.M)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = {i: "".join(o.get("text", "") for o in c.get("outputs", [])) for i, c in enumerate(nb.cells)}
    text = "\n".join(outputs.values())
    assert "speedup" in text and "displacement error" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images == 2  # the offline and the online figures
    error = float(re.search(r"displacement error \(L2 time-space\): (\S+)", text).group(1))
    assert error < 1e-2  # the quickstart's prediction is meaningful (demo figures: docs/user-guide.md)
    assert (tmp_path / "quickstart-output" / "rom.pvd").exists()
