"""`romdask ingest` / `romdask reduce` on CalculiX files, as subprocesses (the user's commands).

The shipped CalculiX run of tests/io/data/calculix (no ccx needed): ingest records the deck's
load patterns and law; a deck with a keyword romdask cannot model is still ingested (its
snapshots stored, a warning) and ``romdask reduce`` then names the keyword and its line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from romdask.store import SnapshotStore, open_snapshots

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "io" / "data" / "calculix"


def _romdask(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "romdask.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _copy_run(folder: Path, name: str, edit=lambda text: text) -> list[str]:
    (folder / f"{name}.inp").write_text(edit((DATA / "c3d10.inp").read_text()))
    shutil.copy(DATA / "c3d10_float64.frd", folder / f"{name}.frd")
    shutil.copy(DATA / "c3d10_nodes.inc", folder)
    return [f"{name}.inp", f"{name}.frd"]


def test_ingest_records_patterns_and_law(tmp_path):
    files = _copy_run(tmp_path, "spec_a0.05")  # a dot in the name
    proc = _romdask("ingest", *files, "--store", "s.zarr", cwd=tmp_path)  # no --subdomains: the default
    assert proc.returncode == 0, proc.stderr
    assert "written: 1 run(s): spec_a0.05" in proc.stdout
    store = SnapshotStore.open(tmp_path / "s.zarr", mode="r")
    meta = store.runs()["spec_a0.05"]["metadata"]
    assert meta["material"]["type"] == "CalculixViscoplastic"
    assert {d["name"] for d in meta["loads"]["dirichlet"]} >= {"FIX", "LOAD"}
    assert store.n_subdomains == 1


def test_unsupported_deck_is_ingested_and_reduce_says_why(tmp_path):
    files = _copy_run(tmp_path, "hot", lambda t: t.replace("*SOLID SECTION", "*DEPVAR\n2\n*SOLID SECTION", 1))
    line = (tmp_path / "hot.inp").read_text().splitlines().index("*DEPVAR") + 1
    proc = _romdask("ingest", *files, "--store", "s.zarr", "--subdomains", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "*DEPVAR" in proc.stderr and "romdask reduce will refuse this run" in proc.stderr
    ds = open_snapshots(tmp_path / "s.zarr")
    assert ds.displacement.shape[0] == 3  # the snapshots are stored
    meta = SnapshotStore.open(tmp_path / "s.zarr", mode="r").runs()["hot"]["metadata"]
    assert f"line {line}: keyword *DEPVAR" in meta["problem_error"]
    proc = _romdask("reduce", "s.zarr", "--out", "m.zarr", cwd=tmp_path)
    assert proc.returncode == 1
    assert "could not read its CalculiX deck" in proc.stderr and f"line {line}: keyword *DEPVAR" in proc.stderr
    # the Python API says the same (the law given explicitly: reduce's own check)
    from romdask.materials import LinearElastic
    from romdask.offline import reduce

    with pytest.raises(ValueError, match=r"could not read its CalculiX deck .*keyword \*DEPVAR"):
        reduce(tmp_path / "s.zarr", LinearElastic(200000.0, 0.3))
